"""One entry point for every clustering method: CLI, service and pipeline share it.

`cluster_points` clusters an (n, 2) array in nm; `cluster_table` clusters the x, y of a
LocalizationTable and returns the table with a `cluster` column plus the per-cluster
statistics as a table, which is what the CLI writes, the service publishes and the
pipeline step reports.

A method is an estimator class with keyword-only-friendly constructor parameters and
`fit_predict(points_xy_nm) -> labels` (-1 = non-clustered, clusters 0..C-1). Methods
that also classify clusters (MIRO's multi-shape model, CAML's multi-class model) set
`classes_` (one class index per localization, -1 for non-clustered) and `class_names_`
after fitting. Methods are imported lazily, so DBSCAN does not pay for torch.
"""

from __future__ import annotations

import importlib
import inspect
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pointillist.clusterer.cluster_stats import check_points, cluster_statistics
from pointillist.core.errors import InvalidInput, NotReady
from pointillist.core.table import LocalizationTable

METHODS: dict[str, str] = {
    "dbscan": "pointillist.clusterer.baselines:DBSCANClusterer",
    "hdbscan": "pointillist.clusterer.baselines:HDBSCANClusterer",
    "miro": "pointillist.clusterer.miro.clusterer:MiroClusterer",
    "caml": "pointillist.clusterer.caml.clusterer:CamlClusterer",
}
"""Method name → "module:class" of its estimator."""


@dataclass(frozen=True)
class Clustering:
    """Result of `cluster_points`: per-localization labels (and classes) plus the method used."""

    labels: np.ndarray
    method: str
    params: dict[str, Any] = field(default_factory=dict)
    classes: np.ndarray | None = None
    class_names: tuple[str, ...] = ()

    @property
    def n_clusters(self) -> int:
        return int(self.labels.max(initial=-1)) + 1

    def statistics(self, points_xy: np.ndarray) -> dict[str, np.ndarray]:
        """Per-cluster table (`cluster_stats.cluster_statistics`), with class when classified."""
        classes = None
        if self.classes is not None:
            classes = np.where(self.classes < 0, 0, self.classes)
        return cluster_statistics(points_xy, self.labels, classes=classes)


def estimator_class(method: str) -> type:
    """The estimator class registered for `method`: InvalidInput for an unknown name,
    NotReady when its module cannot be imported (e.g. torch is not installed)."""
    if method not in METHODS:
        raise InvalidInput(f"unknown clustering method {method!r}; known: {sorted(METHODS)}")
    module, name = METHODS[method].split(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise NotReady(f"clustering method {method!r} is not available here: {exc}") from exc


def make_clusterer(method: str, params: Mapping[str, Any] | None = None) -> Any:
    """An estimator for `method` built from `params`; unknown parameter names are rejected."""
    cls = estimator_class(method)
    params = dict(params or {})
    accepted = {
        name
        for name, p in inspect.signature(cls).parameters.items()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    unknown = sorted(set(params) - accepted)
    if unknown:
        raise InvalidInput(
            f"method {method!r}: unknown parameter(s) {unknown}; known: {sorted(accepted)}"
        )
    try:
        return cls(**params)
    except TypeError as exc:
        raise InvalidInput(f"method {method!r}: {exc}") from exc


def cluster_points(
    points_xy: np.ndarray, method: str = "dbscan", params: Mapping[str, Any] | None = None
) -> Clustering:
    """Cluster one field of view (n, 2) in nm with `method` and its `params`."""
    points = check_points(points_xy)
    estimator = make_clusterer(method, params)
    labels = np.asarray(estimator.fit_predict(points), dtype=np.int64)
    classes = getattr(estimator, "classes_", None)
    return Clustering(
        labels=labels,
        method=method,
        params=dict(params or {}),
        classes=None if classes is None else np.asarray(classes, dtype=np.int64),
        class_names=tuple(getattr(estimator, "class_names_", ())),
    )


NO_NEIGHBOUR_NM = -1.0
"""nn_distance_nm of a cluster without another cluster in the field. Tables stay finite
(files and bus messages reject NaN), so a sentinel that no distance can take."""


@dataclass(frozen=True)
class TableClustering:
    """`cluster_table`'s result: the labelled localizations, the per-cluster table and the
    clustering itself; `seconds` is the time spent in the method."""

    clustering: Clustering
    localizations: LocalizationTable
    clusters: LocalizationTable
    seconds: float

    @property
    def n_clusters(self) -> int:
        return self.clustering.n_clusters

    @property
    def clustered_fraction(self) -> float:
        """Share of the localizations assigned to a cluster."""
        labels = self.clustering.labels
        return float(np.mean(labels >= 0)) if len(labels) else 0.0

    def summary(self) -> str:
        """One line for the CLI, the service's log and events, and run reports."""
        return (
            f"{self.clustering.method}: {self.n_clusters} clusters in "
            f"{len(self.localizations)} localizations ({100 * self.clustered_fraction:.1f}% "
            f"clustered) in {self.seconds:.2f} s"
        )


def table_points(table: LocalizationTable) -> np.ndarray:
    """The (n, 2) float64 x, y (nm) of a table with at least one localization."""
    if not table.columns:
        raise InvalidInput("nothing to cluster: the table has no columns")
    missing = [c for c in ("x", "y") if c not in table]
    if missing:
        raise InvalidInput(f"cannot cluster: missing column(s) {missing}")
    if len(table) == 0:
        raise InvalidInput("nothing to cluster: the table has no localizations")
    return check_points(np.column_stack([table["x"], table["y"]]).astype(np.float64))


def statistics_table(points_xy: np.ndarray, clustering: Clustering) -> LocalizationTable:
    """`Clustering.statistics` as a table (x, y = centroids), nn distance sentinel filled."""
    stats = clustering.statistics(points_xy)
    nn = stats["nn_distance_nm"]
    stats["nn_distance_nm"] = np.where(np.isnan(nn), NO_NEIGHBOUR_NM, nn)
    return LocalizationTable(stats)


def cluster_table(
    table: LocalizationTable, method: str = "dbscan", params: Mapping[str, Any] | None = None
) -> TableClustering:
    """Cluster the x, y (nm) of `table` (a z column is ignored: the methods are 2-D).

    The labelled table is the input with a `cluster` column (-1 = non-clustered) and,
    when the method classifies, a `class` column (-1 for non-clustered); any `cluster`
    or `class` column the input had is replaced, so stale labels never survive.
    """
    points = table_points(table)
    start = time.perf_counter()
    clustering = cluster_points(points, method, params)
    seconds = time.perf_counter() - start
    columns = {k: v for k, v in table.items() if k not in ("cluster", "class")}
    columns["cluster"] = clustering.labels
    if clustering.classes is not None:
        columns["class"] = np.where(clustering.labels >= 0, clustering.classes, -1)
    return TableClustering(
        clustering=clustering,
        localizations=LocalizationTable(columns, check_finite=False),
        clusters=statistics_table(points, clustering),
        seconds=seconds,
    )
