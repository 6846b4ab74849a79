"""Particles: geometry parameters, labelling and precision recovered from the data."""

from __future__ import annotations

import numpy as np
import pytest

from pointillist.core.errors import InvalidInput
from pointillist.simulator.emitters import npc_sites, rotate_z
from pointillist.simulator.particles import ParticleSimConfig, simulate_particles


def _per_particle(values: np.ndarray, particle: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(particle, weights=values, minlength=n) / np.bincount(particle, minlength=n)


def test_npc2d_radius_is_the_mean_radial_coordinate() -> None:
    cfg = ParticleSimConfig(n_particles=400, radius_spread_nm=5.0, precision_nm=5.0)
    locs, truth = simulate_particles(cfg, 0)
    assert "z" not in locs.columns
    radius = truth["radius_nm"]
    assert radius.mean() == pytest.approx(55.0, abs=0.8)
    assert radius.std() == pytest.approx(5.0, rel=0.1)
    # PC-VAE's radius estimate: mean radial coordinate of the (centred) localizations.
    r = np.hypot(locs["x"], locs["y"]).astype(np.float64)
    estimate = _per_particle(r, locs["particle"], 400)
    # Isotropic error σ adds σ²/(2R) to the mean distance from a circle of radius R.
    bias = cfg.precision_nm**2 / (2 * radius)
    assert np.mean(estimate - radius - bias) == pytest.approx(0.0, abs=0.3)
    assert np.corrcoef(estimate, radius)[0, 1] > 0.9


def test_labelling_and_localizations_per_site() -> None:
    cfg = ParticleSimConfig(n_particles=2000, dol=0.5, dol_spread=0.3, localizations_per_site=6)
    locs, truth = simulate_particles(cfg, 1)
    assert truth["dol"].min() >= 0.2 and truth["dol"].max() <= 0.8
    assert truth["dol"].mean() == pytest.approx(0.5, abs=0.01)
    # 8 sites per 2D NPC, each labelled with the particle's DOL.
    assert np.corrcoef(truth["n_labeled"], truth["dol"])[0, 1] > 0.6
    assert truth["n_labeled"].sum() / (8 * 2000) == pytest.approx(0.5, rel=0.03)
    per_site = np.bincount(locs["particle"] * 8 + locs["site"], minlength=8 * 2000)
    observed = per_site[per_site > 0]
    assert len(locs) == truth["n_localizations"].sum()
    # Labelled sites give Poisson(6) localizations (those giving 0 are not seen).
    assert observed.mean() == pytest.approx(6 / (1 - np.exp(-6)), rel=0.02)


def test_localization_error_around_the_true_rotated_sites() -> None:
    cfg = ParticleSimConfig(kind="npc3d", n_particles=300, sites_per_corner=2, precision_nm=6.0)
    locs, truth = simulate_particles(cfg, 2)
    sites = npc_sites(truth["radius_nm"], truth["ring_distance_nm"], 2, 2, 12.0)
    sites = rotate_z(sites, truth["rotation_rad"])
    assert sites.shape[1] == 32  # PC-VAE's 3D NPCs: 32 sites in two rings
    true = sites[locs["particle"], locs["site"]]
    error = np.column_stack([locs["x"], locs["y"], locs["z"]]) - true
    np.testing.assert_allclose(error.std(axis=0), [6.0, 6.0, 20.0], rtol=0.03)
    np.testing.assert_allclose(error.mean(axis=0), 0.0, atol=0.5)


def test_npc3d_ring_distance_from_the_z_histogram() -> None:
    cfg = ParticleSimConfig(
        kind="npc3d", n_particles=300, ring_distance_spread_nm=6.0, precision_z_nm=8.0
    )
    locs, truth = simulate_particles(cfg, 3)
    z, particle = locs["z"].astype(np.float64), locs["particle"]
    upper = _per_particle(np.where(z > 0, z, 0), particle, 300) / _per_particle(
        (z > 0).astype(float), particle, 300
    )
    lower = _per_particle(np.where(z < 0, z, 0), particle, 300) / _per_particle(
        (z < 0).astype(float), particle, 300
    )
    estimate = upper - lower
    assert np.corrcoef(estimate, truth["ring_distance_nm"])[0, 1] > 0.8
    assert np.median(estimate - truth["ring_distance_nm"]) == pytest.approx(0.0, abs=1.5)


def test_tetrahedron_heights_uniform_and_recovered_from_apex() -> None:
    cfg = ParticleSimConfig(kind="tetrahedron", n_particles=1000, dol=1.0, precision_z_nm=5.0)
    locs, truth = simulate_particles(cfg, 4)
    height = truth["height_nm"]
    assert height.min() >= 40.0 and height.max() <= 110.0
    assert height.mean() == pytest.approx(75.0, abs=1.5)
    assert height.var() == pytest.approx(70.0**2 / 12, rel=0.1)
    apex = locs["site"] == 3
    z_apex = _per_particle(locs["z"][apex].astype(np.float64), locs["particle"][apex], 1000)
    z_base = _per_particle(locs["z"][~apex].astype(np.float64), locs["particle"][~apex], 1000)
    n_apex = np.bincount(locs["particle"][apex], minlength=1000)
    n_base = np.bincount(locs["particle"][~apex], minlength=1000)
    standard_error = cfg.precision_z_nm * np.sqrt(1 / n_apex + 1 / n_base)
    score = (z_apex - z_base - height) / standard_error
    assert abs(score.mean()) < 0.1 and score.std() == pytest.approx(1.0, rel=0.08)
    # Base triangle: circumradius 50 nm, laterally under the apex.
    base_r = np.hypot(locs["x"][~apex], locs["y"][~apex])
    assert np.mean(base_r) == pytest.approx(50.0, abs=1.5)


def test_reproducible_and_validated() -> None:
    cfg = ParticleSimConfig(kind="npc3d", n_particles=20)
    a, b = simulate_particles(cfg, 5), simulate_particles(cfg, 5)
    np.testing.assert_array_equal(a.localizations["x"], b.localizations["x"])
    np.testing.assert_array_equal(a.truth["radius_nm"], b.truth["radius_nm"])
    with pytest.raises(InvalidInput, match="dol"):
        ParticleSimConfig(dol=0.9, dol_spread=0.2)
    with pytest.raises(InvalidInput, match="uniform range"):
        ParticleSimConfig.from_params({"radius_distribution": "uniform", "radius_spread_nm": 60})
    with pytest.raises(InvalidInput, match="kind"):
        ParticleSimConfig.from_params({"kind": "cube"})
    uniform = ParticleSimConfig(n_particles=3000, radius_distribution="uniform")
    radius = simulate_particles(uniform, 6).truth["radius_nm"]
    assert radius.min() >= 51.0 and radius.max() <= 59.0
    assert radius.std() == pytest.approx(8 / np.sqrt(12), rel=0.05)
