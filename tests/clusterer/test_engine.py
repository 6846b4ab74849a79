"""engine: the method registry, parameter checks, and clustering a LocalizationTable."""

import numpy as np
import pytest

from pointillist.clusterer.engine import (
    METHODS,
    NO_NEIGHBOUR_NM,
    cluster_points,
    cluster_table,
    make_clusterer,
)
from pointillist.core.config import plain_params
from pointillist.core.errors import InvalidInput
from pointillist.core.table import LocalizationTable


def two_blobs(seed: int = 0) -> LocalizationTable:
    """Two tight groups of 30 localizations 1 µm apart, and 20 sparse ones 100 nm apart."""
    rng = np.random.default_rng(seed)
    blobs = np.concatenate([rng.normal(c, 10.0, (30, 2)) for c in ((500, 500), (1500, 500))])
    background = np.column_stack([np.linspace(50, 1950, 20), np.full(20, 1800.0)])
    xy = np.concatenate([blobs, background])
    return LocalizationTable({"x": xy[:, 0], "y": xy[:, 1], "photons": np.full(len(xy), 500.0)})


def test_cluster_table_labels_rows_and_summarises_clusters():
    table = two_blobs()
    result = cluster_table(table, "dbscan", {"eps_nm": 30.0, "min_samples": 5})
    labels = result.localizations["cluster"]
    assert result.n_clusters == 2 and result.localizations.columns == [
        "x",
        "y",
        "photons",
        "cluster",
    ]
    assert len(set(labels[:30])) == 1 and len(set(labels[30:60])) == 1 and labels[0] != labels[30]
    stats = result.clusters
    assert sorted(stats["n_localizations"]) == [30, 30]
    np.testing.assert_allclose(stats["nn_distance_nm"], 1000.0, atol=10.0)
    assert np.all(stats["radius_of_gyration_nm"] < 25) and np.all(stats["hull_area_nm2"] > 0)
    assert result.clustered_fraction == 60 / 80


def test_a_lone_cluster_has_the_no_neighbour_sentinel_and_stale_labels_are_replaced():
    table = two_blobs().select(np.arange(30)).with_columns(cluster=np.full(30, 7))
    result = cluster_table(table, "dbscan", {"eps_nm": 30.0, "min_samples": 5})
    assert result.n_clusters == 1
    assert result.clusters["nn_distance_nm"][0] == NO_NEIGHBOUR_NM
    assert set(result.localizations["cluster"]) <= {-1, 0}


def test_struct_numbers_become_ints_for_integer_hyperparameters():
    assert plain_params({"min_cluster_size": 5.0, "eps_nm": 12.5, "m": {"k": 2.0}}) == {
        "min_cluster_size": 5,
        "eps_nm": 12.5,
        "m": {"k": 2},
    }
    table = two_blobs()
    result = cluster_table(table, "hdbscan", plain_params({"min_cluster_size": 20.0}))
    assert result.n_clusters == 2


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (LocalizationTable(), "no columns"),
        (LocalizationTable({"x": [], "y": []}), "no localizations"),
    ],
)
def test_tables_that_cannot_be_clustered(table, message):
    with pytest.raises(InvalidInput, match=message):
        cluster_table(table)


def test_unknown_method_and_parameters_are_named():
    with pytest.raises(InvalidInput, match="unknown clustering method 'kmeans'"):
        cluster_points(np.zeros((3, 2)), "kmeans")
    with pytest.raises(InvalidInput, match=r"unknown parameter\(s\) \['eps'\]"):
        make_clusterer("dbscan", {"eps": 3})
    with pytest.raises(InvalidInput, match="eps_nm must be > 0"):
        cluster_points(np.ones((10, 2)), "dbscan", {"eps_nm": -1})
    with pytest.raises(InvalidInput, match="NaN"):
        cluster_points(np.array([[0.0, np.nan], [1.0, 1.0]]), "dbscan", {"eps_nm": 5})


class SizeClassifier:
    """A classifying estimator for the test: DBSCAN clusters, class 1 for those > 25 points."""

    def __init__(self, eps_nm: float = 30.0) -> None:
        self.eps_nm = eps_nm

    def fit_predict(self, points_xy: np.ndarray) -> np.ndarray:
        params = {"eps_nm": self.eps_nm, "min_samples": 5}
        labels = cluster_points(points_xy, "dbscan", params).labels
        sizes = np.bincount(labels[labels >= 0])
        self.classes_ = np.where(labels >= 0, (sizes[np.maximum(labels, 0)] > 25).astype(int), -1)
        self.class_names_ = ("small", "large")
        return labels


def test_a_classifying_method_adds_class_columns(monkeypatch):
    monkeypatch.setitem(METHODS, "sized", f"{__name__}:SizeClassifier")
    table = two_blobs()
    small = np.concatenate([np.arange(20), np.arange(30, 80)])  # blob 1 keeps 20 of its 30
    result = cluster_table(table.select(small), "sized", {"eps_nm": 30.0})
    assert result.clustering.class_names == ("small", "large")
    cls, labels = result.localizations["class"], result.localizations["cluster"]
    np.testing.assert_array_equal(cls[labels < 0], -1)
    assert sorted(result.clusters["class"]) == [0, 1]
    np.testing.assert_array_equal(result.clusters["class_fraction"], 1.0)
    stats = result.clusters
    assert list(stats["n_localizations"][stats["class"] == 0]) == [20]
    assert list(stats["n_localizations"][stats["class"] == 1]) == [30]
