"""Per-cluster statistics against values computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from pointillist.clusterer.cluster_stats import (
    cluster_centroids,
    cluster_statistics,
    convex_hull,
    dense_cluster_index,
)
from pointillist.core.errors import InvalidInput
from pointillist.simulator.clusters import ClusterSimConfig, simulate_clusters


def _square_and_line():
    """Cluster 7: a 20 nm square with its centre (5 points); cluster 3: 3 collinear points."""
    square = np.array([[0, 0], [20, 0], [20, 20], [0, 20], [10, 10]], dtype=float) + 100
    line = np.array([[500, 500], [510, 500], [520, 500]], dtype=float)
    xy = np.concatenate([square, line, [[900.0, 900.0]]])
    labels = np.array([7] * 5 + [3] * 3 + [-1])
    return xy, labels


def test_statistics_of_hand_clusters() -> None:
    xy, labels = _square_and_line()
    stats = cluster_statistics(xy, labels)
    assert stats["cluster"].tolist() == [3, 7]
    assert stats["x"] == pytest.approx([510, 110]) and stats["y"] == pytest.approx([500, 110])
    assert stats["n_localizations"].tolist() == [3, 5]
    # square: four corners at 10·√2 nm, centre at 0 → rg² = 4·200/5
    assert stats["radius_of_gyration_nm"] == pytest.approx([np.sqrt(200 / 3), np.sqrt(160)])
    assert stats["hull_area_nm2"] == pytest.approx([0.0, 400.0])
    gap = np.hypot(400, 390)
    assert stats["nn_distance_nm"] == pytest.approx([gap, gap])
    assert len({len(v) for v in stats.values()}) == 1


def test_majority_class_and_its_share() -> None:
    xy, labels = _square_and_line()
    classes = np.array([2, 2, 2, 1, 1, 0, 1, 1, 5])
    stats = cluster_statistics(xy, labels, classes=classes)
    assert stats["class"].tolist() == [1, 2]
    assert stats["class_fraction"] == pytest.approx([2 / 3, 3 / 5])
    with pytest.raises(InvalidInput, match="non-negative"):
        cluster_statistics(xy, labels, classes=classes - 3)


def test_noise_label_is_explicit() -> None:
    xy, labels = _square_and_line()
    zero_based = np.where(labels == -1, 0, labels)
    ids, index = dense_cluster_index(zero_based, noise_label=0)
    assert ids.tolist() == [3, 7] and index.tolist() == [1] * 5 + [0] * 3 + [-1]
    assert cluster_statistics(xy, zero_based, noise_label=0)["n_localizations"].tolist() == [3, 5]


def test_single_and_no_cluster() -> None:
    xy, labels = _square_and_line()
    one = cluster_statistics(xy, np.where(labels == 7, 7, -1))
    assert one["hull_area_nm2"].tolist() == [400.0] and np.isnan(one["nn_distance_nm"]).all()
    none = cluster_statistics(xy, np.full(len(xy), -1))
    assert all(len(v) == 0 for v in none.values())


def test_simulated_scenario_matches_its_layout() -> None:
    table = simulate_clusters(ClusterSimConfig.from_params({"scenario": "scenario8"}), seed=3)
    xy = np.column_stack([table["x"], table["y"]])
    stats = cluster_statistics(xy, table["label"], noise_label=0)
    assert sorted(stats["n_localizations"].tolist()) == [5] * 10 + [15] * 10
    big = stats["n_localizations"] == 15
    # isotropic Gaussian σ = 25 nm: E[rg²] = 2σ²(n−1)/n
    rg2 = np.mean(stats["radius_of_gyration_nm"][big] ** 2)
    assert rg2 == pytest.approx(2 * 25**2 * 14 / 15, rel=0.3)
    ids, centroids, counts = cluster_centroids(xy, table["label"], noise_label=0)
    brute = np.array([xy[table["label"] == k].mean(axis=0) for k in ids])
    assert centroids == pytest.approx(brute) and np.array_equal(counts, stats["n_localizations"])
    assert (stats["hull_area_nm2"] > 0).all()


def test_convex_hull_is_counter_clockwise_or_none() -> None:
    hull = convex_hull(np.array([[0, 0], [0, 1], [1, 1], [1, 0], [0.5, 0.5]], dtype=float))
    signed = np.sum(hull[:, 0] * np.roll(hull[:, 1], -1) - np.roll(hull[:, 0], -1) * hull[:, 1])
    assert len(hull) == 4 and signed > 0
    assert convex_hull(np.zeros((2, 2))) is None
    assert convex_hull(np.array([[0, 0], [1, 1], [2, 2.0]])) is None


def test_bad_input() -> None:
    with pytest.raises(InvalidInput, match="shape"):
        cluster_statistics(np.zeros((4, 3)), np.zeros(4, int))
    with pytest.raises(InvalidInput, match="entries"):
        cluster_statistics(np.zeros((4, 2)), np.zeros(3, int))
    with pytest.raises(InvalidInput, match="NaN"):
        cluster_statistics(np.array([[0, np.inf]]), np.zeros(1, int))
