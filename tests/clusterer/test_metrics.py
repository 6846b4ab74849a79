"""Metrics of the MIRO paper: its worked example (Tables 2 and 3) and hand cases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from pointillist.clusterer.metrics import (
    METRIC_NAMES,
    adjusted_rand_index_clustered,
    convex_hull_iou,
    evaluate_clustering,
    match_clusters,
    pair_centroids,
    robust_adjusted_rand_index,
)
from pointillist.core.errors import InvalidInput

SPLIT_OFFSET_NM = 100.0


def _centre(cluster: int) -> np.ndarray:
    """Ground-truth cluster k (1..20) sits on a 5 × 4 grid, 1000 nm apart."""
    k = cluster - 1
    return np.array([1000.0 * (k % 5) + 500, 1000.0 * (k // 5) + 500])


def _realise(counts: np.ndarray, where: dict[int, tuple[int, float]], seed: int = 0):
    """Points and labels whose confusion matrix (rows truth, columns prediction) is `counts`.

    Row/column 0 is non-clustered (label 0 in truth, -1 in prediction). Predicted cluster j
    lies at the centre of true cluster where[j][0] shifted by where[j][1] nm in x; true
    background predicted as background is spread over a far band of the field.
    """
    rng = np.random.default_rng(seed)
    xy, true, pred = [], [], []
    for i, j in zip(*np.nonzero(counts), strict=True):
        n = counts[i, j]
        if i == 0 and j == 0:
            pts = rng.uniform([0, 5000], [5000, 6000], size=(n, 2))
        else:
            owner, shift = where[j] if j else (i, 0.0)
            pts = _centre(owner) + np.array([shift, 0.0]) + rng.normal(0, 5, size=(n, 2))
        xy.append(pts)
        true += [i] * n
        pred += [j if j else -1] * n
    return np.concatenate(xy), np.array(true), np.array(pred)


def _method_a():
    """Table 2: 20 % of the background in clusters (10 each), 10 % of each cluster missed."""
    counts = np.zeros((21, 21), dtype=int)
    counts[0, 0], counts[0, 1:] = 800, 10
    for k in range(1, 21):
        counts[k, 0], counts[k, k] = 5, 45
    return _realise(counts, {j: (j, 0.0) for j in range(1, 21)})


def _method_b():
    """Table 3: 18 % of clustered points missed, clusters 11-20 split in two (21 + 20)."""
    counts = np.zeros((21, 31), dtype=int)
    counts[0, 0] = 900
    where = {}
    for k in range(1, 11):
        counts[k, 0], counts[k, k], counts[0, k] = 9, 41, 5
        where[k] = (k, 0.0)
    for s in range(10):
        k, near, far = 11 + s, 11 + 2 * s, 12 + 2 * s
        counts[k, 0], counts[k, near], counts[k, far], counts[0, near] = 9, 21, 20, 5
        where[near], where[far] = (k, 0.0), (k, SPLIT_OFFSET_NM)
    return _realise(counts, where)


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        (
            _method_a,
            {
                "ari": 0.62,
                "ari_dagger": 0.67,
                "ami": 0.70,
                "ari_c": 0.80,
                "jic": 1.0,
                "rmsre_n": 0.10,
            },
        ),
        (
            _method_b,
            {
                "ari": 0.65,
                "ari_dagger": 0.47,
                "ami": 0.67,
                "ari_c": 0.46,
                "jic": 0.67,
                "rmsre_n": 0.34,
            },
        ),
    ],
    ids=["A", "B"],
)
def test_paper_worked_example(method, expected: dict[str, float]) -> None:
    xy, true, pred = method()
    assert len(true) == 2000 and (true == 0).sum() == 1000
    scores = evaluate_clustering(xy, true, pred, true_noise_label=0, pred_noise_label=-1)
    assert list(scores) == list(METRIC_NAMES)
    for name, value in expected.items():
        assert round(scores[name], 2) == pytest.approx(value), name
    # A: paired centroids coincide; B: each split cluster's centroid is 40 nm off its
    # larger half (30 points at the centre, 20 at +100 nm), for 10 of the 20 pairs
    assert scores["rmse_xy_nm"] == pytest.approx(
        0.0 if method is _method_a else np.sqrt(0.5 * 40.0**2), abs=2.0
    )


def test_worked_example_b_pairs_the_larger_half_of_a_split_cluster() -> None:
    xy, true, pred = _method_b()
    match = match_clusters(xy, true, pred, true_noise_label=0)
    assert (match.tp, match.fp, match.fn) == (20, 10, 0)
    sizes = match.pred_counts[match.pred_index]
    assert sorted(set(sizes.tolist())) == [26, 46]  # 21 + 5 background, 41 + 5


def test_identical_labelings_score_perfectly_and_ignore_label_names() -> None:
    xy, true, _ = _method_a()
    renamed = np.where(true == 0, -1, 100 + 7 * true)  # other names, other noise label
    scores = evaluate_clustering(xy, true, renamed, true_noise_label=0)
    assert scores == pytest.approx(
        {
            "ari": 1,
            "ari_dagger": 1,
            "ami": 1,
            "ari_c": 1,
            "iou": 1,
            "jic": 1,
            "rmsre_n": 0,
            "rmse_xy_nm": 0,
        }
    )


def test_partition_metrics_are_symmetric_and_relabel_invariant() -> None:
    xy, true, pred = _method_b()
    perm = np.random.default_rng(1).permutation(40) + 5
    relabelled = np.where(pred < 0, -1, perm[np.maximum(pred, 0)])
    a = evaluate_clustering(xy, true, pred, true_noise_label=0)
    b = evaluate_clustering(xy, true, relabelled, true_noise_label=0)
    assert a == pytest.approx(b)
    assert robust_adjusted_rand_index(pred, true) == pytest.approx(a["ari_dagger"])


def test_ari_c_ignores_background_but_not_missed_cluster_points() -> None:
    true = np.array([0, 0, 0, 1, 1, 2, 2])
    assert (
        adjusted_rand_index_clustered(true, np.array([5, 5, 6, 1, 1, 2, 2]), true_noise_label=0)
        == 1
    )
    assert (
        adjusted_rand_index_clustered(true, np.array([0, 0, 0, 1, 0, 2, 2]), true_noise_label=0) < 1
    )


def test_all_background_edge_cases() -> None:
    xy = np.random.default_rng(2).uniform(0, 1000, size=(50, 2))
    none = np.full(50, -1)
    both_empty = evaluate_clustering(xy, none, none)
    assert {k: both_empty[k] for k in ("ari", "ari_dagger", "ami", "iou", "jic")} == {
        "ari": 1,
        "ari_dagger": 1,
        "ami": 1,
        "iou": 1,
        "jic": 1,
    }
    assert np.isnan(both_empty["ari_c"]) and np.isnan(both_empty["rmsre_n"])
    some = none.copy()
    some[:10], some[10:20] = 3, 4
    found_nothing = evaluate_clustering(xy, some, none)
    assert found_nothing["jic"] == 0 and found_nothing["iou"] == 0
    assert found_nothing["ari_dagger"] == 0 and found_nothing["ari_c"] == 0
    assert np.isnan(found_nothing["rmse_xy_nm"])
    invented = evaluate_clustering(xy, none, some)
    assert invented["jic"] == 0 and invented["iou"] == 0 and np.isnan(invented["ari_c"])


def test_iou_of_two_overlapping_squares_matches_the_exact_area() -> None:
    # truth: square [0, 100]²; prediction: square [50, 150] × [0, 100]; plus corner points
    sq = np.array([[0, 0], [100, 0], [100, 100], [0, 100], [50, 50]], dtype=float)
    xy = np.concatenate([sq, sq + np.array([50.0, 0.0]), [[-100, -100], [300, 300]]])
    true = np.array([1] * 5 + [-1] * 5 + [-1, -1])
    pred = np.array([-1] * 5 + [4] * 5 + [-1, -1])
    iou = convex_hull_iou(xy, true, pred, grid_px=800)
    assert iou == pytest.approx(5000 / 15000, abs=0.01)


def test_pairing_respects_the_distance_threshold_and_is_one_to_one() -> None:
    true_c = np.array([[0.0, 0.0], [100.0, 0.0]])
    pred_c = np.array([[10.0, 0.0], [30.0, 0.0], [500.0, 0.0]])
    ti, pi = pair_centroids(true_c, pred_c, xi_nm=40)
    assert ti.tolist() == [0] and pi.tolist() == [0]
    ti, pi = pair_centroids(true_c, pred_c, xi_nm=80)  # the 2nd true cluster takes the 30 nm one
    assert sorted(zip(ti.tolist(), pi.tolist(), strict=True)) == [(0, 0), (1, 1)]


def test_bad_input_is_rejected_with_the_reason() -> None:
    xy = np.zeros((3, 2))
    with pytest.raises(InvalidInput, match="entries"):
        evaluate_clustering(xy, np.zeros(3, int), np.zeros(2, int))
    with pytest.raises(InvalidInput, match="NaN"):
        evaluate_clustering(np.full((3, 2), np.nan), np.zeros(3, int), np.zeros(3, int))
    with pytest.raises(InvalidInput, match="unknown metric"):
        evaluate_clustering(xy, np.zeros(3, int), np.zeros(3, int), metrics=["f1"])
    with pytest.raises(InvalidInput, match="integers"):
        evaluate_clustering(xy, np.array([0.5, 1, 2]), np.zeros(3, int))


def test_pairing_by_groups_equals_one_dense_assignment() -> None:
    rng = np.random.default_rng(5)
    true_c = rng.uniform(0, 1000, size=(60, 2))
    pred_c = np.concatenate(
        [true_c[:50] + rng.normal(0, 20, (50, 2)), rng.uniform(0, 1000, (15, 2))]
    )
    xi = 60.0
    ti, pi = pair_centroids(true_c, pred_c, xi)
    assert len(set(ti.tolist())) == len(ti) and len(set(pi.tolist())) == len(pi)
    dist = np.hypot(*(true_c[:, None, :] - pred_c[None, :, :]).transpose(2, 0, 1))
    assert (dist[ti, pi] <= xi).all()
    big = xi * 100
    rows, cols = linear_sum_assignment(np.where(dist <= xi, dist, big))
    ok = dist[rows, cols] <= xi
    assert len(ti) == ok.sum()
    assert dist[ti, pi].sum() == pytest.approx(dist[rows[ok], cols[ok]].sum())
