import itertools
import math

import numpy as np
import pytest
import torch

from pointillist.vae.losses import beta_schedule, chamfer_distance, kl_divergence


def _brute_force_chamfer(a: np.ndarray, b: np.ndarray) -> float:
    forward = sum(min(float(np.sum((x - y) ** 2)) for y in b) for x in a) / len(a)
    backward = sum(min(float(np.sum((x - y) ** 2)) for x in a) for y in b) / len(b)
    return forward + backward


@pytest.mark.parametrize("dims", [2, 3])
def test_chamfer_matches_brute_force_with_padding_and_unequal_counts(dims):
    rng = np.random.default_rng(dims)
    counts_a, counts_b = [5, 2, 7], [3, 6, 7]
    clouds_a = [rng.normal(size=(n, dims)) for n in counts_a]
    clouds_b = [rng.normal(size=(n, dims)) for n in counts_b]

    def padded(clouds):
        out = np.full((len(clouds), 7, dims), 1e3)  # padding far away: must be ignored
        mask = np.zeros((len(clouds), 7), bool)
        for i, c in enumerate(clouds):
            out[i, : len(c)], mask[i, : len(c)] = c, True
        return torch.tensor(out), torch.tensor(mask)

    a, mask_a = padded(clouds_a)
    b, mask_b = padded(clouds_b)
    got = chamfer_distance(a, mask_a, b, mask_b).numpy()
    want = [_brute_force_chamfer(x, y) for x, y in zip(clouds_a, clouds_b, strict=True)]
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_chamfer_is_zero_for_identical_sets_in_any_order_and_has_finite_gradients():
    points = torch.randn(2, 6, 2, dtype=torch.float64)
    mask = torch.tensor([[True] * 6, [True] * 4 + [False] * 2])
    recon = points[:, torch.randperm(6)].clone().requires_grad_(True)
    loss = chamfer_distance(points, torch.ones_like(mask), recon, torch.ones_like(mask))
    assert torch.allclose(loss, torch.zeros(2, dtype=torch.float64))
    chamfer_distance(points, mask, recon, mask).sum().backward()
    assert torch.isfinite(recon.grad).all()


def test_kld_matches_torch_distributions():
    mu = torch.randn(5, 8, dtype=torch.float64)
    logvar = torch.randn(5, 8, dtype=torch.float64)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    want = torch.distributions.kl_divergence(q, p).sum(1)
    torch.testing.assert_close(kl_divergence(mu, logvar), want)
    assert torch.allclose(kl_divergence(torch.zeros(1, 8), torch.zeros(1, 8)), torch.zeros(1))


def test_beta_schedule_sigmoid_warmup():
    beta = 0.5
    assert beta_schedule(0, beta, 5000) == pytest.approx(beta / (1 + math.exp(6)))
    assert beta_schedule(0, beta, 5000) < 0.003 * beta
    assert beta_schedule(2500, beta, 5000) == pytest.approx(beta / 2)
    assert beta_schedule(4999, beta, 5000) == pytest.approx(beta, rel=3e-3)
    assert beta_schedule(5000, beta, 5000) == beta
    assert beta_schedule(123_456, beta, 5000) == beta
    values = [beta_schedule(t, beta, 5000) for t in range(0, 5001, 250)]
    assert all(b > a for a, b in itertools.pairwise(values))
