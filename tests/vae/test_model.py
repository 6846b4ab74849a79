import copy

import numpy as np
import pytest
import torch

from pointillist.vae.model import PcVae, PcVaeConfig, pad_packed, segment_mean
from pointillist.vae.training import pack

SMALL = PcVaeConfig(
    encoder_widths=(16, 32, 64), head_width=32, decoder_widths=(32, 32, 64), point_channels=32
)


def _clouds(dims: int, counts=(5, 9, 3, 12), seed=0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(n, dims)).astype(np.float32) for n in counts]


def _trained_statistics(model: PcVae, dims: int) -> PcVae:
    """Run a few training-mode forwards so batch-norm running statistics are not trivial."""
    model.train()
    with torch.no_grad():
        for seed in range(3):
            model(*pack(_clouds(dims, seed=seed + 10), torch.device("cpu")))
    return model.eval()


@pytest.mark.parametrize("dims", [2, 3])
def test_encoder_is_permutation_invariant(dims):
    torch.manual_seed(0)
    model = _trained_statistics(PcVae(PcVaeConfig(dims=dims)), dims)
    clouds = _clouds(dims)
    rng = np.random.default_rng(1)
    permuted = [c[rng.permutation(len(c))] for c in clouds]
    mu, logvar = model.encoder(*pack(clouds, torch.device("cpu")))
    mu_p, logvar_p = model.encoder(*pack(permuted, torch.device("cpu")))
    torch.testing.assert_close(mu, mu_p, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(logvar, logvar_p, rtol=1e-5, atol=1e-5)


def test_encoder_in_training_mode_is_permutation_invariant_too():
    torch.manual_seed(0)
    model = PcVae(SMALL).train()
    clouds = _clouds(2)
    reversed_points = [c[::-1].copy() for c in clouds]
    # copies: a training-mode forward updates the running statistics
    mu, _ = copy.deepcopy(model).encoder(*pack(clouds, torch.device("cpu")))
    mu_r, _ = copy.deepcopy(model).encoder(*pack(reversed_points, torch.device("cpu")))
    torch.testing.assert_close(mu, mu_r, rtol=1e-5, atol=1e-5)


def test_encoding_does_not_depend_on_batch_composition():
    torch.manual_seed(0)
    model = _trained_statistics(PcVae(SMALL), 2)
    clouds = _clouds(2)
    together, _ = model.encoder(*pack(clouds, torch.device("cpu")))
    alone = torch.cat([model.encoder(*pack([c], torch.device("cpu")))[0] for c in clouds])
    reordered, _ = model.encoder(*pack(clouds[::-1], torch.device("cpu")))
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(together, reordered.flip(0), rtol=1e-5, atol=1e-5)


def test_training_batch_norm_ignores_padding():
    """Only the particles' own points feed batch statistics: a far-out point changes them."""
    torch.manual_seed(0)
    model = PcVae(SMALL).train()
    clouds = _clouds(2, counts=(4, 6))
    model.encoder(*pack(clouds, torch.device("cpu")))
    packed = np.concatenate(clouds)
    first_layer = model.encoder.point_mlp[0]
    with torch.no_grad():
        features = first_layer(torch.from_numpy(packed))
    expected = 0.1 * features.mean(0)  # momentum 0.1 from zero running means
    torch.testing.assert_close(model.encoder.point_mlp[1].running_mean, expected)


def test_decoder_emits_one_point_per_localization():
    torch.manual_seed(0)
    model = PcVae(PcVaeConfig(dims=3)).train()
    points, segment, counts = pack(_clouds(3), torch.device("cpu"))
    out = model(points, segment, counts)
    assert out.mu.shape == out.logvar.shape == out.z.shape == (4, 8)
    assert out.reconstruction.shape == points.shape
    assert torch.isfinite(out.reconstruction).all()


def test_pad_packed_and_segment_mean():
    values = torch.arange(10.0).reshape(5, 2)
    segment = torch.tensor([0, 0, 0, 1, 1])
    counts = torch.tensor([3, 2])
    padded, mask, position = pad_packed(values, segment, counts)
    assert padded.shape == (2, 3, 2)
    assert mask.tolist() == [[True, True, True], [True, True, False]]
    torch.testing.assert_close(padded[segment, position], values)
    assert padded[1, 2].tolist() == [0.0, 0.0]
    torch.testing.assert_close(
        segment_mean(values, segment, counts), torch.tensor([[2.0, 3], [7, 8]])
    )


@pytest.mark.parametrize("seeds", ["random", "fixed"])
def test_fixed_seeds_make_decoding_deterministic(seeds):
    torch.manual_seed(0)
    model = _trained_statistics(PcVae(PcVaeConfig(**(SMALL.to_dict() | {"seeds": seeds}))), 2)
    _, segment, counts = pack(_clouds(2), torch.device("cpu"))
    z = torch.randn(4, 8)
    with torch.no_grad():
        first, second = (model.decoder(z, segment, counts) for _ in range(2))
    assert torch.equal(first, second) == (seeds == "fixed")


def test_population_norm_trains_with_the_statistics_it_evaluates_with():
    """A training-mode forward updates the running statistics and then normalises with
    them, so it equals an evaluation-mode forward with the updated statistics."""
    torch.manual_seed(0)
    model = PcVae(PcVaeConfig(**(SMALL.to_dict() | {"population_norm": True}))).train()
    packed = pack(_clouds(2), torch.device("cpu"))
    before = model.encoder.point_mlp[1].running_mean.clone()
    trained_mu, _ = model.encoder(*packed)
    assert not torch.equal(before, model.encoder.point_mlp[1].running_mean)
    evaluated_mu, _ = model.eval().encoder(*packed)
    torch.testing.assert_close(trained_mu, evaluated_mu)
