"""Emitter sampling: CSR density, LUENN filaments, NPC geometry."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from pointillist.simulator.emitters import (
    EmitterConfig,
    csr,
    microtubules,
    npc_sites,
    rotate_z,
    sample_emitters,
)


def test_csr_density_and_uniformity() -> None:
    pts = csr(100.0, (10000.0, 5000.0), (-300.0, 300.0), 0)
    assert len(pts) == pytest.approx(100 * 50, abs=4 * np.sqrt(5000))
    # Uniform: each quarter of the field holds a quarter of the points.
    quarter = np.histogram2d(pts[:, 0], pts[:, 1], bins=2, range=[[0, 1e4], [0, 5e3]])[0]
    np.testing.assert_allclose(quarter / len(pts), 0.25, atol=0.02)
    assert pts[:, 2].min() >= -300 and pts[:, 2].max() <= 300
    # Poisson process: mean nearest-neighbour distance 1 / (2 sqrt(density)) (2D).
    nn = cKDTree(pts[:, :2]).query(pts[:, :2], k=2)[0][:, 1]
    assert nn.mean() == pytest.approx(0.5 / np.sqrt(100 / 1e6), rel=0.05)


def test_microtubules_span_the_field_with_continuously_varying_z() -> None:
    fov, n = (6400.0, 6400.0), 5000
    pts = microtubules(3, n, fov, (-500.0, 500.0), 150.0, 1500.0, 1)
    assert pts.shape == (3 * n, 3)
    for filament in np.split(pts, 3):
        extent = filament[:, :2].max(axis=0) - filament[:, :2].min(axis=0)
        assert extent.max() > 0.9 * 6400  # crosses the field edge to edge
        assert filament[:, 2].min() < -450 and filament[:, 2].max() > 450  # whole depth
        # A curve, not a cloud: the nearest neighbours are close in 3D, so z is continuous.
        nn = cKDTree(filament).query(filament, k=2)[0][:, 1]
        assert np.median(nn) < 10.0
    # Different seeds, different structures.
    other = microtubules(3, n, fov, (-500.0, 500.0), 150.0, 1500.0, 2)
    assert not np.allclose(other, pts)


def test_npc_sites_geometry() -> None:
    sites = npc_sites(np.array([50.0, 60.0]), np.array([40.0, 50.0]), 2, 2, 12.0)
    assert sites.shape == (2, 32, 3)
    radius = np.hypot(sites[..., 0], sites[..., 1])
    np.testing.assert_allclose(radius, np.broadcast_to([[50.0], [60.0]], radius.shape))
    np.testing.assert_allclose(np.unique(sites[0, :, 2]), [-20.0, 20.0])
    np.testing.assert_allclose(np.unique(sites[1, :, 2]), [-25.0, 25.0])
    # 8-fold symmetry: rotating by 45 degrees maps the site set onto itself.
    turned = rotate_z(sites, np.full(2, np.pi / 4))
    for p in range(2):
        d = cKDTree(sites[p]).query(turned[p])[0]
        assert d.max() < 1e-9
    # Two sites per corner, 12 nm apart along the ring.
    gaps = cKDTree(sites[0]).query(sites[0], k=2)[0][:, 1]
    np.testing.assert_allclose(gaps, 12.0, rtol=0.01)


@pytest.mark.parametrize("structure", ["csr", "microtubules", "npc", "clusters"])
def test_sample_emitters_in_2d_lie_in_the_focal_plane(structure: str) -> None:
    cfg = EmitterConfig(structure=structure, points_per_filament=500)
    pts = sample_emitters(cfg, (3000.0, 2000.0), 3)
    assert len(pts) > 0
    np.testing.assert_array_equal(pts[:, 2], 0.0)
    np.testing.assert_array_equal(pts, sample_emitters(cfg, (3000.0, 2000.0), 3))


def test_clusters_have_the_configured_size_and_width() -> None:
    cfg = EmitterConfig(
        structure="clusters", n_structures=1, emitters_per_cluster=5000, z_range_nm=(-1, 1)
    )
    pts = sample_emitters(cfg, (5000.0, 5000.0), 4)
    assert len(pts) == pytest.approx(5000, abs=4 * np.sqrt(5000))
    np.testing.assert_allclose(pts.std(axis=0), cfg.cluster_sigma_nm, rtol=0.05)
