"""PCA baseline: rotation-invariant features, a component that follows the radius."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from pointillist.core.errors import InvalidInput, NotReady
from pointillist.simulator.particles import ParticleSimConfig, simulate_particles
from pointillist.vae.baseline import DistanceHistogramPCA, pca_baseline
from pointillist.vae.registration import rotate_in_plane


def npc_clouds(n: int, seed: int = 5) -> tuple[list[np.ndarray], np.ndarray]:
    config = ParticleSimConfig(
        kind="npc2d", n_particles=n, radius_spread_nm=8.0, localizations_per_site=15
    )
    sim = simulate_particles(config, seed=seed)
    points = np.column_stack([sim.localizations["x"], sim.localizations["y"]]).astype(float)
    particle = sim.localizations["particle"]
    keep = [i for i in range(n) if (particle == i).sum() >= 3]
    return [points[particle == i] for i in keep], sim.truth["radius_nm"][keep]


def test_a_component_follows_the_radius():
    clouds, radius = npc_clouds(120)
    components = pca_baseline(clouds, n_components=4)
    assert components.shape == (len(clouds), 4)
    best = max(abs(spearmanr(components[:, j], radius)[0]) for j in range(4))
    assert best > 0.7


def test_features_ignore_rotation_translation_and_order():
    clouds, _ = npc_clouds(20)
    model = DistanceHistogramPCA(n_components=3).fit(clouds)
    rng = np.random.default_rng(0)
    moved = [rotate_in_plane(c, rng.uniform(0, 2 * np.pi)) + rng.normal(0, 50, 2) for c in clouds]
    np.testing.assert_allclose(model.transform(moved), model.transform(clouds), atol=1e-9)


def test_unfitted_and_too_few_particles_are_errors():
    clouds, _ = npc_clouds(5)
    with pytest.raises(NotReady):
        DistanceHistogramPCA().transform(clouds)
    with pytest.raises(InvalidInput):
        DistanceHistogramPCA().fit(clouds[:1])
    assert pca_baseline(clouds, n_components=8).shape[1] <= len(clouds)
