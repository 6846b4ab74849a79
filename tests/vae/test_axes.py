import numpy as np
import pytest
from scipy.stats import spearmanr

from pointillist.core.errors import InvalidInput
from pointillist.vae.axes import fit_independent_axes


def mixed_latent(n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two independent factors spread over four of six latent dimensions, two inactive."""
    rng = np.random.default_rng(seed)
    factors = np.column_stack([rng.uniform(-1, 1, n), rng.laplace(0, 0.5, n)])
    mixing = np.array([[0.6, 0.8], [0.7, -0.5], [0.5, 0.4], [-0.4, 0.6]])
    latent = np.zeros((n, 6))
    latent[:, :4] = factors @ mixing.T + 0.001 * rng.normal(size=(n, 4))
    latent[:, 4:] = 1e-6 * rng.normal(size=(n, 2))
    return latent, factors


def best_abs_rho(coordinates: np.ndarray, values: np.ndarray) -> float:
    return max(abs(spearmanr(c, values).statistic) for c in coordinates.T)


def test_independent_axes_unmix_factors_shared_by_latent_dimensions() -> None:
    latent, factors = mixed_latent()
    axes = fit_independent_axes(latent)
    coordinates = axes.transform(latent)
    assert coordinates.shape == (len(latent), 2)  # the inactive dimensions are left out
    np.testing.assert_allclose(coordinates.std(0), 1.0, atol=0.05)
    for factor in factors.T:
        assert best_abs_rho(latent, factor) < 0.9  # no single latent dimension holds it
        assert best_abs_rho(coordinates, factor) > 0.98
    # the axis moving the latent means most comes first
    norms = np.linalg.norm(axes.mixing, axis=0)
    assert norms[0] >= norms[1]


def test_independent_axes_are_deterministic_and_reject_bad_input() -> None:
    latent, _ = mixed_latent(300, seed=1)
    a, b = fit_independent_axes(latent, seed=3), fit_independent_axes(latent, seed=3)
    np.testing.assert_array_equal(a.transform(latent), b.transform(latent))
    with pytest.raises(InvalidInput):
        fit_independent_axes(np.zeros((2, 4)))
    with pytest.raises(InvalidInput):
        fit_independent_axes(np.zeros(10))
