"""Projections: poses are uniform on SO(3), recorded correctly, and the noise is as set."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from pointillist.core.errors import InvalidInput
from pointillist.simulator.projections import (
    ProjectionSimConfig,
    cylinders_points,
    rabbit_points,
    simulate_projections,
    torus_points,
)


def _rotations(poses: dict[str, np.ndarray]) -> Rotation:
    return Rotation.from_quat(np.column_stack([poses[k] for k in ("qx", "qy", "qz", "qw")]))


def test_projected_extent_of_a_ring_matches_its_pose() -> None:
    # A ring of radius R in the model's xy plane: in a view with rotation matrix M its
    # projection spans x in ±R·sqrt(1 − M[0, 2]²) and y in ±R·sqrt(1 − M[1, 2]²).
    cfg = ProjectionSimConfig(n_views=50, n_points=4000, torus_tube_radius_nm=0.0, scatter_nm=0)
    locs, poses, model = simulate_projections(cfg, 0)
    np.testing.assert_allclose(np.hypot(model[:, 0], model[:, 1]), 200.0)
    matrix = _rotations(poses).as_matrix()
    for v in range(50):
        view = locs["particle"] == v
        half_x = 200.0 * np.sqrt(1 - matrix[v, 0, 2] ** 2)
        half_y = 200.0 * np.sqrt(1 - matrix[v, 1, 2] ** 2)
        assert np.abs(locs["x"][view]).max() == pytest.approx(half_x, abs=0.2)
        assert np.abs(locs["y"][view]).max() == pytest.approx(half_y, abs=0.2)
        # Area of the projected ellipse: π R² |cos tilt|, tilt = angle of the ring's axis to z.
        xy = np.column_stack([locs["x"][view], locs["y"][view]]).astype(np.float64)
        axes = np.sqrt(2 * np.linalg.eigvalsh(np.cov(xy.T)))
        assert axes.prod() == pytest.approx(200.0**2 * abs(matrix[v, 2, 2]), abs=200.0)


def test_poses_are_uniform_on_so3() -> None:
    _, poses, _ = simulate_projections(ProjectionSimConfig(n_views=20000, n_points=1), 1)
    axis = _rotations(poses).apply([0.0, 0.0, 1.0])
    # The model's z axis points uniformly over the sphere: each coordinate is uniform on
    # [-1, 1] (Archimedes), so its mean is 0 and its mean square 1/3.
    np.testing.assert_allclose(axis.mean(axis=0), 0.0, atol=0.02)
    np.testing.assert_allclose((axis**2).mean(axis=0), 1 / 3, atol=0.01)
    hist = np.histogram(axis[:, 2], bins=10, range=(-1, 1))[0]
    np.testing.assert_allclose(hist / 20000, 0.1, atol=0.01)
    # The rotation angle of a uniform rotation has density (1 − cos θ)/π: mean π/2 + 2/π.
    angle = _rotations(poses).magnitude()
    assert angle.mean() == pytest.approx(np.pi / 2 + 2 / np.pi, rel=0.01)


def test_scatter_missing_and_multiple_binding() -> None:
    cfg = ProjectionSimConfig(
        n_views=400,
        n_points=100,
        scatter_nm=20.0,
        missing_fraction=0.3,
        extra_localizations=1.5,
        translation_nm=50.0,
    )
    locs, poses, model = simulate_projections(cfg, 2)
    assert len(locs) / 400 == pytest.approx(100 * 0.7 * 2.5, rel=0.02)
    per_site = np.bincount(locs["particle"] * 100 + locs["site"], minlength=40000)
    assert np.mean(per_site == 0) == pytest.approx(0.3, abs=0.01)
    assert per_site[per_site > 0].var() == pytest.approx(1.5, rel=0.05)  # 1 + Poisson(1.5)
    # Residuals from the true projected positions are the scatter; shifts are the pose's.
    rotated = _rotations(poses)[locs["particle"]].apply(model[locs["site"]])
    shift = np.column_stack([poses["tx_nm"], poses["ty_nm"]])[locs["particle"]]
    residual = np.column_stack([locs["x"], locs["y"]]) - rotated[:, :2] - shift
    np.testing.assert_allclose(residual.std(axis=0), 20.0, rtol=0.02)
    np.testing.assert_allclose(residual.mean(axis=0), 0.0, atol=0.3)
    assert np.std(poses["tx_nm"]) == pytest.approx(50.0, rel=0.1)


def test_models_and_user_points() -> None:
    torus = torus_points(20000, 200.0, 40.0, 3)
    ring = np.hypot(torus[:, 0], torus[:, 1])
    tube = np.hypot(ring - 200.0, torus[:, 2])
    np.testing.assert_allclose(tube, 40.0)
    # Uniform by area (element ∝ R + r cos v): the outer half of the tube holds 1/2 + r/(πR).
    assert np.mean(ring > 200.0) == pytest.approx(0.5 + 40 / (np.pi * 200), abs=0.01)
    cylinders = cylinders_points()
    assert np.ptp(cylinders[:, 0]) == pytest.approx(415.0)
    tetra = np.array([[0.0, 0.0, 0.0], [100.0, 0.0, 0.0], [0.0, 100.0, 0.0], [0.0, 0.0, 100.0]])
    locs, poses, model = simulate_projections(
        ProjectionSimConfig(n_views=30, scatter_nm=0.0), 4, points_nm=tetra
    )
    np.testing.assert_array_equal(model, tetra)
    assert len(locs) == 120
    # The edge from site 0 (the origin) along the model's x axis projects to a length of
    # 100·sqrt(1 − n_z²), n = R·x̂ the edge's direction in the view.
    edge = np.hypot(locs["x"][locs["site"] == 1], locs["y"][locs["site"] == 1])
    n_z = _rotations(poses).apply([1.0, 0.0, 0.0])[:, 2]
    np.testing.assert_allclose(edge, 100.0 * np.sqrt(1 - n_z**2), rtol=1e-5)


def test_reproducible_and_validated() -> None:
    cfg = ProjectionSimConfig(n_views=10, model="cylinders", extra_localizations=1.0)
    a, b = simulate_projections(cfg, 5), simulate_projections(cfg, 5)
    np.testing.assert_array_equal(a.localizations["x"], b.localizations["x"])
    np.testing.assert_array_equal(a.poses["qw"], b.poses["qw"])
    with pytest.raises(InvalidInput, match="missing_fraction"):
        ProjectionSimConfig(missing_fraction=1.0)
    with pytest.raises(InvalidInput, match="model"):
        ProjectionSimConfig.from_params({"model": "bunny"})
    with pytest.raises(InvalidInput, match="points_nm"):
        simulate_projections(ProjectionSimConfig(), 0, points_nm=np.zeros((4, 2)))


def test_rabbit_is_asymmetric_and_fixed() -> None:
    from pointillist.reconstructor.align import MIRROR, align

    rabbit = rabbit_points()
    assert rabbit.shape == (220, 3) and np.array_equal(rabbit, rabbit_points())
    assert 350 < np.ptp(rabbit[:, 0]) < 450 and 350 < np.ptp(rabbit[:, 2]) < 450
    # No rotation maps the rabbit onto its mirror image: it has no plane of symmetry.
    assert align(rabbit @ MIRROR, rabbit, allow_mirror=False).rmsd > 15
