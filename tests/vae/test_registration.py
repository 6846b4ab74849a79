"""Joint registration: randomly rotated and shifted simulated particles come into one frame."""

from __future__ import annotations

import numpy as np
import pytest

from pointillist.core.errors import InvalidInput
from pointillist.simulator.particles import ParticleSimConfig, simulate_particles
from pointillist.vae.registration import (
    RegistrationConfig,
    apply_transform,
    register_particles,
    register_super_particles,
    rotate_in_plane,
)


def simulated_clouds(
    kind: str, n: int, seed: int = 1, **options: float
) -> tuple[list[np.ndarray], np.ndarray]:
    """Clouds of particles with >= 3 localizations and their true rotations (rad)."""
    config = ParticleSimConfig(kind=kind, n_particles=n, **options)
    sim = simulate_particles(config, seed=seed)
    columns = ["x", "y", "z"] if kind != "npc2d" else ["x", "y"]
    points = np.column_stack([sim.localizations[c] for c in columns]).astype(np.float64)
    particle = sim.localizations["particle"]
    clouds = [points[particle == i] for i in range(n)]
    keep = [i for i in range(n) if len(clouds[i]) >= 3]
    return [clouds[i] for i in keep], sim.truth["rotation_rad"][keep]


def angle_errors_deg(total_rad: np.ndarray, fold: int) -> np.ndarray:
    """|deviation| of each total rotation from their common value, modulo 360°/fold."""
    unit = np.exp(1j * fold * total_rad)
    reference = np.angle(unit.mean())
    return np.abs(np.degrees(np.angle(unit * np.exp(-1j * reference)) / fold))


def test_npc2d_with_random_rotations_and_offsets_fuses_into_eight_corners():
    clouds, truth = simulated_clouds("npc2d", 40, localizations_per_site=15, radius_spread_nm=2.0)
    rng = np.random.default_rng(0)
    offsets = rng.uniform(-20, 20, (len(clouds), 2))
    shifted = [c + o for c, o in zip(clouds, offsets, strict=True)]
    reg = register_particles(shifted)
    # R(θ_i) R(φ_i) is the same rotation for all particles, modulo the 8-fold symmetry.
    errors = angle_errors_deg(reg.rotation_rad + truth, 8)
    assert np.mean(errors < 5) >= 0.9, np.sort(errors)[-5:]
    # Each particle's true centre (its offset) lands on one common point.
    centres = np.stack(
        [
            apply_transform(o[None], r, t)[0]
            for o, r, t in zip(offsets, reg.rotation_rad, reg.translation_nm, strict=True)
        ]
    )
    assert np.median(np.linalg.norm(centres - np.median(centres, axis=0), axis=1)) < 3.0
    # The fused cloud: points concentrated at 8 angular peaks around the common centre.
    fused = reg.points - np.median(centres, axis=0)
    angle = np.arctan2(fused[:, 1], fused[:, 0])
    peak = np.angle(np.exp(1j * 8 * angle).mean()) / 8
    offset = np.angle(np.exp(1j * 8 * (angle - peak))) / 8  # distance to nearest corner, rad
    assert np.mean(np.abs(offset) < np.pi / 16) > 0.8  # uniform angles would give 0.5
    assert len(reg.points) == sum(len(c) for c in clouds)


def test_tetrahedron_3d_rotations_recovered_modulo_threefold_symmetry():
    clouds, truth = simulated_clouds("tetrahedron", 30, dol=1.0, localizations_per_site=15)
    reg = register_particles(clouds)
    errors = angle_errors_deg(reg.rotation_rad + truth, 3)
    assert np.mean(errors < 5) >= 0.9, np.sort(errors)[-5:]
    assert reg.points.shape[1] == 3 and reg.translation_nm.shape == (len(clouds), 3)
    # The rotation is about z: each particle's z spread is unchanged.
    for i in (0, 7):
        assert np.std(reg.aligned(i)[:, 2]) == pytest.approx(np.std(clouds[i][:, 2]))


def test_registration_points_are_the_transformed_inputs():
    clouds, _ = simulated_clouds("npc2d", 12, seed=3)
    reg = register_particles(clouds, RegistrationConfig(em_iterations=5))
    for i in (0, 5, 11):
        expected = apply_transform(clouds[i], reg.rotation_rad[i], reg.translation_nm[i])
        np.testing.assert_allclose(reg.aligned(i), expected)


def test_initial_transforms_skip_the_search_and_keep_a_good_alignment():
    clouds, truth = simulated_clouds("npc2d", 30, localizations_per_site=15)
    reg = register_particles(clouds)
    again = register_particles(
        clouds[:15],
        initial_rotation_rad=reg.rotation_rad[:15],
        initial_translation_nm=reg.translation_nm[:15],
    )
    errors = angle_errors_deg(again.rotation_rad + truth[:15], 8)
    assert np.mean(errors < 5) >= 0.9


def test_super_particles_rotated_apart_are_brought_back_together():
    clouds, truth = simulated_clouds("npc2d", 60, localizations_per_site=15)
    upright = [rotate_in_plane(c, -a) for c, a in zip(clouds, truth, strict=True)]
    groups = [np.concatenate(upright[i : i + 15]) for i in range(0, 60, 15)]
    turns = np.array([0.0, 0.4, 1.1, 2.5])
    turned = [rotate_in_plane(g, a) for g, a in zip(groups, turns, strict=True)]
    reg = register_super_particles(turned)
    errors = angle_errors_deg(reg.rotation_rad + turns, 8)
    assert errors.max() < 4, errors


def test_rotate_in_plane_keeps_z_and_turns_xy():
    points = np.array([[1.0, 0.0, 5.0]])
    np.testing.assert_allclose(rotate_in_plane(points, np.pi / 2), [[0.0, 1.0, 5.0]], atol=1e-12)


@pytest.mark.parametrize(
    "clouds",
    [[], [np.zeros((3, 2)), np.zeros((3, 3))], [np.zeros((3, 4))], [np.full((3, 2), np.nan)]],
)
def test_bad_clouds_are_rejected(clouds):
    with pytest.raises(InvalidInput):
        register_particles(clouds)
