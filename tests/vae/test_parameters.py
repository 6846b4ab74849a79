"""Model-based parameters against exact toy geometry and simulated truth."""

from __future__ import annotations

import numpy as np
import pytest

from pointillist.core.errors import InvalidInput
from pointillist.simulator.particles import ParticleSimConfig, simulate_particles
from pointillist.vae.parameters import (
    estimate_parameters,
    fwhm,
    npc2d_radius,
    npc3d_radius_height,
    precision_name,
    tetrahedron_height,
)


def ring(radius: float, n: int, z: float | None = None) -> np.ndarray:
    angle = np.linspace(0, 2 * np.pi, n, endpoint=False)
    points = [radius * np.cos(angle), radius * np.sin(angle)]
    return np.column_stack(points if z is None else [*points, np.full(n, z)])


def simulated(kind: str, n: int, **options: float) -> tuple[list[np.ndarray], dict]:
    sim = simulate_particles(ParticleSimConfig(kind=kind, n_particles=n, **options), seed=4)
    columns = ["x", "y", "z"] if kind != "npc2d" else ["x", "y"]
    points = np.column_stack([sim.localizations[c] for c in columns]).astype(np.float64)
    particle = sim.localizations["particle"]
    keep = [i for i in range(n) if (particle == i).sum() >= 3]
    truth = {k: np.asarray(v)[keep] for k, v in sim.truth.items()}
    return [points[particle == i] for i in keep], truth


def test_fwhm_of_a_normal_sample_is_2_355_sigma():
    values = np.random.default_rng(0).normal(5.0, 10.0, 5000)
    assert fwhm(values) == pytest.approx(2.3548 * 10.0, rel=0.06)
    assert np.isnan(fwhm(np.ones(10)))


def test_exact_geometry():
    shifted_ring = ring(50.0, 64) + np.array([30.0, -12.0])
    assert npc2d_radius(shifted_ring)["radius_nm"] == pytest.approx(50.0)
    npc = np.concatenate([ring(40.0, 32, z=-20.0), ring(40.0, 32, z=25.0)]) + np.ones(3)
    estimate = npc3d_radius_height(npc)
    assert estimate["radius_nm"] == pytest.approx(40.0)
    assert estimate["height_nm"] == pytest.approx(45.0)
    rng = np.random.default_rng(1)
    base = np.column_stack([rng.normal(0, 30, (300, 2)), rng.normal(0.0, 4.0, 300)])
    apex = np.column_stack([rng.normal(0, 4, (100, 2)), rng.normal(70.0, 4.0, 100)])
    tetra = tetrahedron_height(np.concatenate([base, apex]))
    assert tetra["height_nm"] == pytest.approx(70.0, abs=1.5)
    # FWHM/√n: ~2.355·4/√300 and ~2.355·4/√100 in quadrature, about 1.1 nm.
    assert 0.5 < tetra["height_precision_nm"] < 2.0


def test_npc2d_radius_follows_simulated_truth():
    clouds, truth = simulated("npc2d", 150, radius_spread_nm=8.0, localizations_per_site=20)
    table = estimate_parameters(clouds, "npc2d")
    assert np.corrcoef(table["radius_nm"], truth["radius_nm"])[0, 1] > 0.85
    assert abs(np.mean(table["radius_nm"] - truth["radius_nm"])) < 4.0
    # FWHM of the radial histogram (~2.355 × 8 nm) over √(~110 localizations).
    assert 1.0 < np.median(table["radius_precision_nm"]) < 3.5
    np.testing.assert_array_equal(table["n_localizations"], [len(c) for c in clouds])


def test_npc3d_radius_and_height_follow_simulated_truth():
    clouds, truth = simulated(
        "npc3d", 150, radius_spread_nm=8.0, ring_distance_spread_nm=8.0, localizations_per_site=20
    )
    table = estimate_parameters(clouds, "npc3d")
    assert set(table) == {
        "n_localizations",
        "radius_nm",
        "radius_precision_nm",
        "height_nm",
        "height_precision_nm",
    }
    assert np.corrcoef(table["radius_nm"], truth["radius_nm"])[0, 1] > 0.8
    assert np.corrcoef(table["height_nm"], truth["ring_distance_nm"])[0, 1] > 0.6


def test_tetrahedron_height_follows_simulated_truth():
    clouds, truth = simulated("tetrahedron", 60, dol=1.0, localizations_per_site=30)
    table = estimate_parameters(clouds, "tetrahedron")
    assert np.corrcoef(table["height_nm"], truth["height_nm"])[0, 1] > 0.95
    assert abs(np.median(table["height_nm"] - truth["height_nm"])) < 4.0


def test_kind_none_gives_counts_only_and_bad_inputs_are_rejected():
    table = estimate_parameters([np.zeros((4, 2)), np.zeros((7, 2))], None)
    assert list(table) == ["n_localizations"]
    np.testing.assert_array_equal(table["n_localizations"], [4, 7])
    assert precision_name("height_nm") == "height_precision_nm"
    with pytest.raises(InvalidInput):
        estimate_parameters([np.zeros((4, 2))], "cube")
    with pytest.raises(InvalidInput):
        estimate_parameters([np.zeros((4, 2))], "npc3d")
