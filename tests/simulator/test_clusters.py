"""Cluster scenarios: counts, widths, shapes and blinking match the MIRO / Nieves specs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pointillist.core.errors import InvalidInput
from pointillist.core.table import LocalizationTable
from pointillist.simulator.clusters import (
    SCENARIOS,
    ArcClusters,
    ClusterSimConfig,
    blink_molecules,
    simulate_clusters,
)

NIEVES = Path("/work/shared/data/nieves2023")


def _clusters(table: LocalizationTable, key: str = "label") -> list[np.ndarray]:
    xy = np.column_stack([table["x"], table["y"]]).astype(np.float64)
    labels = table[key]
    return [xy[labels == k] for k in range(1, labels.max() + 1)]


def _pooled_sd(clusters: list[np.ndarray]) -> float:
    """Per-axis sd of positions around their cluster's mean (unbiased, pooled)."""
    squares = sum(((c - c.mean(axis=0)) ** 2).sum() for c in clusters)
    return float(np.sqrt(squares / sum(2 * (len(c) - 1) for c in clusters)))


@pytest.mark.parametrize(
    ("scenario", "sizes", "sigma"),
    [
        ("scenario5", {15: 100}, {15: 25.0}),
        ("scenario8", {5: 10, 15: 10}, {5: 25.0, 15: 25.0}),
        ("scenario9", {15: 10, 135: 10}, {15: 25.0, 135: 75.0}),
    ],
)
def test_nieves_gaussian_scenarios(scenario: str, sizes: dict, sigma: dict) -> None:
    fields = [simulate_clusters(ClusterSimConfig(scenario=scenario), s) for s in range(6)]
    for table in fields:
        clusters = _clusters(table)
        size, count = np.unique([len(c) for c in clusters], return_counts=True)
        assert dict(zip(size.tolist(), count.tolist(), strict=True)) == sizes
        n_clustered = sum(n * k for n, k in sizes.items())
        assert np.sum(table["label"] == 0) == n_clustered  # 50% clustered
        background = table["label"] == 0
        assert table["x"][background].min() >= 0 and table["x"][background].max() < 2000
    for n, expected in sigma.items():
        same_size = [c for t in fields for c in _clusters(t) if len(c) == n]
        assert _pooled_sd(same_size) == pytest.approx(expected, rel=0.05)


def test_scenario6_elliptical_clusters() -> None:
    along, across = [], []
    for seed in range(10):
        table = simulate_clusters(ClusterSimConfig(scenario="scenario6"), seed)
        clusters = _clusters(table)
        assert [len(c) for c in clusters] == [50] * 20
        assert np.sum(table["label"] == 0) == 1000
        for c in clusters:
            centered = c - c.mean(axis=0)
            _, vectors = np.linalg.eigh(np.cov(centered.T))
            along.append(centered @ vectors[:, 1])
            across.append(centered @ vectors[:, 0])
    # What the same analysis gives on the benchmark's files: 77.2 nm and 14.2 nm.
    assert np.std(np.concatenate(along)) == pytest.approx(77.2, rel=0.03)
    assert np.std(np.concatenate(across)) == pytest.approx(14.2, rel=0.04)


def test_multiple_blinking_detections_and_precision() -> None:
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 1e6, (40000, 2))
    shifted, molecule, sigma = blink_molecules(xy, 3.9, 12.9, 0.27, rng)
    counts = np.bincount(molecule, minlength=len(xy))
    assert counts.mean() == pytest.approx(3.9, rel=0.02)
    assert counts.var() == pytest.approx(3.9 * 4.9, rel=0.05)  # geometric on {0, 1, ...}
    assert np.mean(counts == 0) == pytest.approx(1 / 4.9, rel=0.05)
    assert np.median(sigma) == pytest.approx(12.9, rel=0.02)
    assert np.log(sigma).std() == pytest.approx(0.27, rel=0.03)
    z = (shifted - xy[molecule]) / sigma[:, None]
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=0.02)
    np.testing.assert_allclose(z.std(axis=0), 1.0, rtol=0.02)
    # Displacement quantiles measured on isolated molecules of the benchmark (scenario 8).
    r = np.hypot(*(shifted - xy[molecule]).T)
    np.testing.assert_allclose(
        np.quantile(r, [0.25, 0.5, 0.75, 0.9]), [9.7, 15.2, 22.1, 30.1], rtol=0.06
    )


def test_blinking_scenario_keeps_labels_per_molecule() -> None:
    table = simulate_clusters(ClusterSimConfig(scenario="scenario8", blinking=True), 1)
    assert {"molecule", "uncertainty"} <= set(table.columns)
    molecule, label = table["molecule"], table["label"]
    for m in np.unique(molecule)[:200]:
        assert len(np.unique(label[molecule == m])) == 1
    assert len(table) / 400 == pytest.approx(3.9, rel=0.2)
    assert np.mean(label == 0) == pytest.approx(0.5, abs=0.08)


def _radial(clusters: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([np.hypot(*(c - c.mean(axis=0)).T) for c in clusters])


def test_ring_and_c_shaped_clusters() -> None:
    rings = [simulate_clusters(ClusterSimConfig(scenario="ring"), s) for s in range(3)]
    for table in rings:
        clusters = _clusters(table)
        assert 60 <= len(clusters) <= 70
        assert all(60 <= len(c) <= 80 for c in clusters)
        assert np.mean(table["label"] == 0) == pytest.approx(0.07, abs=0.005)
    # Full circle, centroid at the centre: E r² = R² + sd², E r ≈ R.
    r = _radial([c for t in rings for c in _clusters(t)])
    assert np.mean(r**2) == pytest.approx(250.0**2 + 50.0**2, rel=0.03)
    assert np.mean(r) == pytest.approx(250.0, rel=0.02)
    shapes = [simulate_clusters(ClusterSimConfig(scenario="c_shape"), s) for s in range(3)]
    for table in shapes:
        clusters = _clusters(table)
        assert 30 <= len(clusters) <= 60
        assert all(30 <= len(c) <= 60 for c in clusters)
        assert np.mean(table["label"] == 0) == pytest.approx(0.06, abs=0.006)
    # A half circle's centroid is 2R/π from its centre: E r² = R² + sd² − (2R/π)².
    r = _radial([c for t in shapes for c in _clusters(t)])
    assert np.mean(r**2) == pytest.approx(250**2 + 50**2 - (500 / np.pi) ** 2, rel=0.04)


def test_c_shapes_are_half_circles() -> None:
    cfg = ClusterSimConfig.from_params({"scenario": "c_shape", "radial_sd_nm": 0})
    for c in _clusters(simulate_clusters(cfg, 2)):
        # Exact circle fit (no radial noise): x² + y² = 2ax + 2by + k.
        design = np.column_stack([2 * c, np.ones(len(c))])
        (a, b, k), *_ = np.linalg.lstsq(design, (c**2).sum(axis=1), rcond=None)
        assert np.sqrt(k + a**2 + b**2) == pytest.approx(250.0, rel=1e-6)
        angle = np.sort(np.arctan2(c[:, 1] - b, c[:, 0] - a))
        gaps = np.diff(np.concatenate([angle, angle[:1] + 2 * np.pi]))
        span = 2 * np.pi - gaps.max()
        assert np.pi * 0.75 < span <= np.pi + 1e-9


def test_multiscale_rings_of_clusters() -> None:
    table = simulate_clusters(ClusterSimConfig(scenario="multiscale_rings"), 3)
    assert 40 <= table["ring"].max() <= 60
    assert np.mean(table["label"] == 0) == pytest.approx(0.015, abs=0.003)
    assert np.all((table["ring"] == 0) == (table["label"] == 0))
    clusters = _clusters(table)
    assert all(6 <= len(c) <= 30 for c in clusters)
    assert _pooled_sd(clusters) == pytest.approx(15.0, rel=0.05)
    radii = []
    for ring in range(1, table["ring"].max() + 1):
        members = np.unique(table["label"][table["ring"] == ring])
        assert 5 <= len(members) <= 9
        means = np.array([clusters[k - 1].mean(axis=0) for k in members])
        radii.append(np.hypot(*(means - means.mean(axis=0)).T))
    assert np.mean(np.concatenate(radii)) == pytest.approx(40.0, rel=0.05)


def test_npc_corners_are_elongated_radially_around_radius_50() -> None:
    cfg = ClusterSimConfig.from_params(
        {
            "scenario": "npc",
            "n_npcs": [100, 100],
            "localizations_per_corner": [80, 80],
            "fov_nm": 50000,
        }
    )
    table = simulate_clusters(cfg, 4)
    assert table["ring"].max() == 100 and table["label"].max() == 800
    assert np.mean(table["label"] == 0) == pytest.approx(0.03, abs=0.003)
    radial, tangential, radius = [], [], []
    for npc in range(1, 101):
        in_npc = table["ring"] == npc
        xy = np.column_stack([table["x"][in_npc], table["y"][in_npc]]).astype(np.float64)
        xy -= xy.mean(axis=0)
        radius.append(np.hypot(*xy.T))
        for k in np.unique(table["label"][in_npc]):
            corner = xy[table["label"][in_npc] == k]
            axis = corner.mean(axis=0) / np.linalg.norm(corner.mean(axis=0))
            radial.append(corner @ axis)
            tangential.append(corner @ np.array([-axis[1], axis[0]]))
    assert np.median(np.concatenate(radius)) == pytest.approx(50.0, abs=2.0)
    # Expected spread: in direction ψ the sd is reach(ψ) / 1.8, reach being the distance from
    # the point at r = 50 nm to the edge of the corner's triangle (apex at the centre, apex
    # angle 45°, height 100 nm), found here by bisection on an inside-the-triangle test.
    psi = np.linspace(0, 2 * np.pi, 3600, endpoint=False)
    lo, hi = np.zeros_like(psi), np.full_like(psi, 200.0)
    for _ in range(60):
        mid = (lo + hi) / 2
        x, y = 50 + mid * np.cos(psi), mid * np.sin(psi)
        inside = (x >= 0) & (x <= 100) & (np.abs(y) <= x * np.tan(np.pi / 8))
        lo, hi = np.where(inside, mid, lo), np.where(inside, hi, mid)
    sd = lo / 1.8
    radial_var = np.mean((sd * np.cos(psi)) ** 2) - np.mean(sd * np.cos(psi)) ** 2 * 2 / np.pi
    tangential_var = np.mean((sd * np.sin(psi)) ** 2)
    assert np.std(np.concatenate(radial)) == pytest.approx(np.sqrt(radial_var), rel=0.03)
    assert np.std(np.concatenate(tangential)) == pytest.approx(np.sqrt(tangential_var), rel=0.03)
    assert radial_var > 1.8 * tangential_var  # corners are elongated along the radius


def test_from_params_overrides_the_scenario_and_rejects_unknowns() -> None:
    cfg = ClusterSimConfig.from_params({"scenario": "ring", "radius_nm": 300.0, "blinking": True})
    assert isinstance(cfg.layout, ArcClusters)
    assert cfg.layout.radius_nm == 300.0 and cfg.layout.arc_deg == 360.0 and cfg.blinking
    assert ClusterSimConfig.from_params({"scenario": "scenario9"}).layout == SCENARIOS["scenario9"]
    with pytest.raises(InvalidInput, match="fold"):
        ClusterSimConfig.from_params({"scenario": "ring", "fold": [5, 9]})
    with pytest.raises(InvalidInput, match="scenario must be one of"):
        ClusterSimConfig.from_params({"scenario": "scenario7"})
    with pytest.raises(InvalidInput, match="n_clusters"):
        ClusterSimConfig.from_params({"scenario": "c_shape", "n_clusters": [60, 30]})
    with pytest.raises(InvalidInput, match="takes a GaussianClusters layout"):
        ClusterSimConfig(scenario="scenario5", layout=ArcClusters())


def test_same_seed_same_field() -> None:
    cfg = ClusterSimConfig(scenario="npc", blinking=True)
    a, b = simulate_clusters(cfg, 9), simulate_clusters(cfg, 9)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    assert not np.array_equal(a["x"], simulate_clusters(cfg, 10)["x"])


@pytest.mark.skipif(not NIEVES.exists(), reason="benchmark data not present")
@pytest.mark.parametrize(
    ("scenario", "pattern"),
    [
        ("scenario5", "ground-truth-scenario-5/highden_MoleculeList_{}.csv"),
        ("scenario8", "ground-truth-scenario-8/diffden_MoleculeList_{}.csv"),
        ("scenario9", "ground-truth-scenario-9/dsigsden_new_MoleculeList_{}.csv"),
    ],
)
def test_scenarios_match_the_benchmark_files(scenario: str, pattern: str) -> None:
    for k in (1, 2, 3):
        data = np.loadtxt(NIEVES / pattern.format(k), delimiter=",", skiprows=1)
        real = LocalizationTable({"x": data[:, 0], "y": data[:, 1], "label": data[:, 2]})
        ours = simulate_clusters(ClusterSimConfig(scenario=scenario), k)
        assert len(ours) == len(real)
        assert np.sum(ours["label"] == 0) == np.sum(real["label"] == 0)
        assert sorted(map(len, _clusters(ours))) == sorted(map(len, _clusters(real)))
        assert _pooled_sd(_clusters(ours)) == pytest.approx(_pooled_sd(_clusters(real)), rel=0.1)
