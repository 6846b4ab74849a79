"""analyze(): correlations, bins and super-particles along a latent that knows the radius."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from scipy.stats import spearmanr

from pointillist.core.errors import InvalidInput
from pointillist.simulator.particles import ParticleSimConfig, simulate_particles
from pointillist.vae.analysis import HeterogeneityAnalysis, analyze
from pointillist.vae.registration import RegistrationConfig

FAST = RegistrationConfig(em_iterations=10, search_rounds=2)


def npc_particles(n: int) -> tuple[SimpleNamespace, np.ndarray]:
    """Particles-like object (points, ids, dims) of simulated 2D NPCs and their true radii."""
    config = ParticleSimConfig(
        kind="npc2d", n_particles=n, radius_spread_nm=8.0, localizations_per_site=15
    )
    sim = simulate_particles(config, seed=7)
    points = np.column_stack([sim.localizations["x"], sim.localizations["y"]]).astype(float)
    particle = sim.localizations["particle"]
    keep = [i for i in range(n) if (particle == i).sum() >= 3]
    particles = SimpleNamespace(
        points=[points[particle == i] for i in keep], ids=np.array(keep) + 100, dims=2
    )
    return particles, sim.truth["radius_nm"][keep]


@pytest.fixture(scope="module")
def result() -> tuple[HeterogeneityAnalysis, list[tuple[str, int, int]]]:
    particles, radius = npc_particles(64)
    rng = np.random.default_rng(0)
    # A fake latent space: latent_1 is the radius (plus noise), latent_0 and latent_2 are noise.
    latent = rng.normal(size=(len(radius), 3))
    latent[:, 1] = -(radius + rng.normal(0, 1.0, len(radius)))
    calls: list[tuple[str, int, int]] = []
    analysis = analyze(
        particles,
        latent,
        kind="npc2d",
        n_bins=4,
        registration=FAST,
        progress=lambda *args: calls.append(args),
    )
    return analysis, calls


def test_correlations_find_the_radius_dimension(result):
    analysis, _ = result
    assert analysis.parameter_names == ("radius_nm", "n_localizations")
    assert analysis.pearson.shape == analysis.spearman.shape == (3, 2)
    assert analysis.best_dimensions["radius_nm"] == 1
    assert analysis.spearman[1, 0] < -0.8
    assert np.all(np.abs(analysis.spearman[[0, 2], 0]) < 0.5)
    assert analysis.baseline.shape == (len(analysis.ids), 3)
    assert analysis.baseline_spearman.shape == (3, 2)


def test_bins_partition_the_particles_in_latent_order(result):
    analysis, _ = result
    for dimension, bins in enumerate(analysis.bins):
        members = np.concatenate([b.members for b in bins])
        assert sorted(members) == list(range(len(analysis.ids)))
        coordinate = analysis.latent[members, dimension]
        assert np.all(np.diff(coordinate) >= 0)
        sizes = [len(b.members) for b in bins]
        assert max(sizes) - min(sizes) <= 1
        total = sum(len(analysis.parameters["n_localizations"][b.members]) for b in bins)
        assert total == len(analysis.ids)


def test_super_particle_radius_shrinks_along_the_radius_dimension(result):
    analysis, _ = result
    bins = analysis.bins[1]
    radii = [b.estimates["radius_nm"] for b in bins]
    assert spearmanr(np.arange(len(radii)), radii)[0] == pytest.approx(-1.0)
    assert radii[0] - radii[-1] > 8.0
    for b in bins:
        n = int(analysis.parameters["n_localizations"][b.members].sum())
        assert len(b.points) == b.estimates["n_localizations"] == n
        # FWHM/√n over all localizations of the bin: well below a nanometre here.
        assert 0 < b.estimates["radius_precision_nm"] < 1.5
    per_particle = analysis.bin_values(1, "radius_nm")
    assert np.mean(per_particle[0]) > np.mean(per_particle[-1])


def test_per_particle_table_and_progress(result):
    analysis, calls = result
    table = analysis.per_particle_table()
    assert list(table)[:4] == ["particle", "latent_0", "latent_1", "latent_2"]
    assert {"radius_nm", "radius_precision_nm", "n_localizations"} <= set(table)
    np.testing.assert_array_equal(table["particle"], analysis.ids)
    assert len({len(v) for v in table.values()}) == 1
    assert calls[0] == ("register", 0, 1) and calls[-1] == ("dimension", 3, 3)
    rows = analysis.correlation_rows()
    assert rows[1]["dimension"] == "latent_1" and rows[1]["ρ radius_nm"].startswith("-0.")
    assert analysis.correlation_rows(baseline=True)[0]["dimension"] == "pca_0"


def test_independent_axes_find_a_radius_shared_by_two_dimensions():
    particles, radius = npc_particles(64)
    rng = np.random.default_rng(1)
    shared = (radius - radius.mean()) / radius.std()
    other = rng.choice([-1.0, 1.0], len(radius))  # an independent two-state factor
    latent = np.column_stack([shared + other, shared - other, 1e-7 * rng.normal(size=len(radius))])
    for j in range(2):
        assert abs(spearmanr(latent[:, j], radius)[0]) < 0.85
    analysis = analyze(
        particles, latent, kind="npc2d", n_bins=4, registration=FAST, axes="independent"
    )
    assert analysis.axes == "independent" and analysis.coordinates.shape == (len(radius), 2)
    on_axes = [abs(spearmanr(c, radius)[0]) for c in analysis.coordinates.T]
    assert max(on_axes) > 0.95
    best = analysis.best_dimensions["radius_nm"]  # against the model-based radius
    assert best == int(np.argmax(on_axes)) and abs(analysis.spearman[best, 0]) > 0.75
    assert len(analysis.bins) == 2 and analysis.axis_name(best) == f"ic_{best}"
    table = analysis.per_particle_table()
    assert list(table)[:6] == ["particle", "latent_0", "latent_1", "latent_2", "ic_0", "ic_1"]
    assert analysis.correlation_rows(baseline=True)[0]["dimension"] == "pca_ic_0"
    with pytest.raises(InvalidInput):
        analyze(particles, latent, kind="npc2d", n_bins=4, axes="rotated")


def test_plain_arrays_and_kind_none_work():
    particles, radius = npc_particles(12)
    latent = np.column_stack([radius, np.arange(len(radius))])
    analysis = analyze(particles.points, latent, kind=None, n_bins=3, registration=FAST)
    assert analysis.parameter_names == ("n_localizations",)
    np.testing.assert_array_equal(analysis.ids, np.arange(len(radius)))
    assert set(analysis.bins[0][0].estimates) == {"n_localizations"}


@pytest.mark.parametrize(
    ("latent", "n_bins"),
    [(np.zeros((5, 2)), 2), (np.full((12, 2), np.nan), 2), (np.zeros((12, 2)), 13)],
)
def test_bad_latent_or_bins_are_rejected(latent, n_bins):
    points = list(np.random.default_rng(0).normal(0, 50, (12, 20, 2)))
    with pytest.raises(InvalidInput):
        analyze(points, latent, n_bins=n_bins)
