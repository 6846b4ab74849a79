"""DBSCAN/HDBSCAN baselines, the k-distance heuristic and the grid tuning."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.cluster import DBSCAN

from pointillist.clusterer.baselines import (
    DBSCANClusterer,
    HDBSCANClusterer,
    dbscan,
    k_distance_eps,
    k_distances,
    knee_index,
    tune_dbscan,
)
from pointillist.clusterer.metrics import evaluate_clustering
from pointillist.core.errors import InvalidInput
from pointillist.core.io import read_csv_table
from pointillist.simulator.clusters import ClusterSimConfig, simulate_clusters

NIEVES = Path("/work/shared/data/nieves2023")


def _field(scenario: str, seed: int, **params) -> tuple[np.ndarray, np.ndarray]:
    config = ClusterSimConfig.from_params({"scenario": scenario, **params})
    table = simulate_clusters(config, seed)
    return np.column_stack([table["x"], table["y"]]), table["label"]


def test_k_distances_match_brute_force_and_subsample() -> None:
    xy = np.random.default_rng(0).uniform(0, 1000, size=(300, 2))
    brute = np.sort(np.sort(cdist(xy, xy), axis=1)[:, 3])  # column 0 is the point itself
    assert k_distances(xy, 3) == pytest.approx(brute)
    sub = k_distances(xy, 3, max_points=50)
    assert len(sub) == 50 and np.isin(sub, brute).all()


def test_knee_is_where_a_flat_curve_turns_steep() -> None:
    curve = np.concatenate([np.linspace(10, 12, 600), np.linspace(12, 300, 400)])
    assert abs(knee_index(curve) - 600) <= 2


def test_heuristic_eps_is_a_core_distance_and_sits_between_cluster_and_background() -> None:
    xy, _ = _field("scenario8", 0)
    eps = k_distance_eps(xy, min_samples=4)
    kd = k_distances(xy, 3)
    assert 25 < eps < 100  # clusters σ = 25 nm; background spacing ~ 140 nm
    model = DBSCANClusterer(min_samples=4).fit(xy)
    assert model.eps_nm_ == eps
    core = np.zeros(len(xy), dtype=bool)
    core[DBSCAN(eps=eps, min_samples=4).fit(xy).core_sample_indices_] = True
    assert core.mean() == pytest.approx(np.mean(kd <= eps))


def test_heuristic_dbscan_on_simulated_scenario8() -> None:
    scores = []
    for seed in range(3):
        xy, truth = _field("scenario8", seed)
        scores.append(evaluate_clustering(xy, truth, dbscan(xy), true_noise_label=0))
    assert np.mean([s["ari"] for s in scores]) > 0.7  # measured 0.81
    assert np.mean([s["jic"] for s in scores]) > 0.7  # measured 0.82


def test_heuristic_dbscan_on_real_nieves_scenario8_file() -> None:
    table = read_csv_table(
        NIEVES / "ground-truth-scenario-8" / "diffden_MoleculeList_1.csv",
        columns={"index": "label"},
    )
    xy, truth = np.column_stack([table["x"], table["y"]]), table["label"]
    perfect = evaluate_clustering(xy, truth, truth, true_noise_label=0, pred_noise_label=0)
    assert perfect == pytest.approx(
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
    scores = evaluate_clustering(xy, truth, dbscan(xy), true_noise_label=0)
    assert scores["ari"] > 0.7 and scores["ari_c"] > 0.9  # measured 0.75, 0.99
    assert scores["jic"] > 0.75  # measured 0.86


def test_blinking_needs_min_samples_above_the_detections_per_molecule() -> None:
    xy, truth = _field("scenario8", 1, blinking=True)
    low = evaluate_clustering(xy, truth, dbscan(xy, min_samples=4), true_noise_label=0)
    high = evaluate_clustering(xy, truth, dbscan(xy, min_samples=20), true_noise_label=0)
    assert high["ari"] > 0.5 > low["ari"]  # measured 0.67 vs 0.1


def test_explicit_parameters_are_plain_dbscan() -> None:
    xy, _ = _field("scenario6", 2)
    ours = DBSCANClusterer(eps_nm=30, min_samples=5).fit(xy)
    theirs = DBSCAN(eps=30, min_samples=5).fit_predict(xy)
    assert np.array_equal(ours.labels_, theirs) and ours.eps_nm_ == 30
    assert ours.n_clusters_ == theirs.max() + 1


def test_hdbscan_finds_the_elliptic_clusters() -> None:
    xy, truth = _field("scenario6", 2)
    model = HDBSCANClusterer(min_cluster_size=10).fit(xy)
    assert model.labels_.min() == -1 and model.n_clusters_ == model.labels_.max() + 1
    scores = evaluate_clustering(xy, truth, model.labels_, true_noise_label=0)
    assert scores["ari_c"] > 0.5 and scores["jic"] > 0.3
    assert (HDBSCANClusterer().fit_predict(xy[:4]) == -1).all()


def test_tune_dbscan_picks_the_best_grid_pair() -> None:
    fields = [_field("scenario8", seed) for seed in (10, 11)]
    xy, truth = zip(*fields, strict=True)
    grid = {"eps_nm": [20, 50, 150], "min_samples": [3, 5, 8]}
    best = tune_dbscan(xy, truth, grid, true_noise_label=0)
    assert best.scores.shape == (3, 3)
    assert (best.eps_nm, best.min_samples) == (50.0, 5)
    assert best.score == pytest.approx(np.nanmax(best.scores))
    manual = np.mean(
        [
            evaluate_clustering(p, t, dbscan(p, 50, 5), true_noise_label=0, metrics=["ari"])["ari"]
            for p, t in fields
        ]
    )
    assert best.score == pytest.approx(manual)
    worst = tune_dbscan(xy, truth, grid, metric="rmse_xy_nm", true_noise_label=0)
    assert worst.score == pytest.approx(np.nanmin(worst.scores))
    assert best.clusterer().eps_nm == 50.0


def test_bad_input_is_rejected_with_the_reason() -> None:
    xy, truth = _field("scenario8", 0)
    with pytest.raises(InvalidInput, match="min_samples"):
        DBSCANClusterer(min_samples=1).fit(xy)
    with pytest.raises(InvalidInput, match="eps_nm"):
        DBSCANClusterer(eps_nm=-3).fit(xy)
    with pytest.raises(InvalidInput, match="NaN"):
        dbscan(np.full((5, 2), np.nan), 10)
    with pytest.raises(InvalidInput, match="k-distance"):
        k_distances(xy[:3], 3)
    with pytest.raises(InvalidInput, match="grid"):
        tune_dbscan([xy], [truth], {"eps": [10]})
    with pytest.raises(InvalidInput, match="metric"):
        tune_dbscan([xy], [truth], {"eps_nm": [10], "min_samples": [4]}, metric="f1")
    with pytest.raises(InvalidInput, match="cluster_selection_method"):
        HDBSCANClusterer(cluster_selection_method="top").fit(xy)
