"""The ``cluster`` step of `pointillist run`: the run's localizations -> clusters.

A run spec can go simulate clusters -> cluster, read a table -> cluster, or simulate
frames -> localize -> cluster. The step labels the localizations (a ``cluster`` column,
-1 = non-clustered), writes the per-cluster table to ``clusters.csv``, and reports a
cluster map, a summary of the per-cluster statistics and, when the table carries
ground-truth cluster labels (a ``label`` column, 0 = non-clustered, as the simulator and
the Nieves et al. files have), the MIRO paper's metrics against them.
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from pointillist.clusterer.engine import (
    NO_NEIGHBOUR_NM,
    TableClustering,
    cluster_table,
)
from pointillist.clusterer.metrics import evaluate_clustering
from pointillist.core.config import plain_params
from pointillist.core.errors import InvalidInput
from pointillist.core.io import write_csv_table
from pointillist.pipeline import RunContext, register_step

TRUTH_NOISE_LABEL = 0
"""Non-clustered value of a ground-truth ``label`` column (simulator, Nieves et al.)."""

SUMMARISED = ("n_localizations", "radius_of_gyration_nm", "hull_area_nm2", "nn_distance_nm")


def statistics_summary(result: TableClustering) -> list[dict[str, object]]:
    """Rows (statistic, median, mean, 10th and 90th percentile) over the clusters."""
    rows = []
    for name in SUMMARISED:
        values = np.asarray(result.clusters[name], dtype=np.float64)
        if name == "nn_distance_nm":
            values = values[values != NO_NEIGHBOUR_NM]
        if not len(values):
            continue
        p10, median, p90 = np.percentile(values, [10, 50, 90])
        rows.append(
            {
                "statistic": name,
                "median": f"{median:.4g}",
                "mean": f"{values.mean():.4g}",
                "p10": f"{p10:.4g}",
                "p90": f"{p90:.4g}",
            }
        )
    return rows


def cluster_map(result: TableClustering) -> plt.Figure:
    """Localizations coloured by cluster (non-clustered in grey), equal nm axes."""
    table, labels = result.localizations, result.clustering.labels
    x, y = table["x"], table["y"]
    noise = labels < 0
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.scatter(x[noise], y[noise], s=1, c="0.75", linewidths=0, rasterized=True)
    ax.scatter(
        x[~noise],
        y[~noise],
        s=2,
        c=labels[~noise] % 20,
        cmap="tab20",
        vmin=0,
        vmax=19,
        linewidths=0,
        rasterized=True,
    )
    ax.set_aspect("equal")
    ax.set_xlabel("x [nm]")
    ax.set_ylabel("y [nm]")
    ax.set_title(f"{result.clustering.method}: {result.n_clusters} clusters")
    return fig


@register_step("cluster")
def cluster_step(ctx: RunContext, params: dict[str, Any]) -> None:
    """Params: method (dbscan|hdbscan|miro|caml, default dbscan) and the method's own
    parameters (eps_nm, min_samples, min_cluster_size, model, ...)."""
    if ctx.locs is None or not len(ctx.locs):
        raise InvalidInput(
            "cluster: the run has no localizations (use a table or clusters source, "
            "or a localize step first)"
        )
    method = params.pop("method", "dbscan")
    result = cluster_table(ctx.locs, method, plain_params(params))
    ctx.locs = result.localizations
    labels = result.clustering.labels
    ctx.counters["clusters"] = result.n_clusters
    ctx.counters["clustered_localizations"] = int((labels >= 0).sum())
    ctx.report.text(result.summary() + ".")
    ctx.report.figure(
        cluster_map(result),
        "cluster-map",
        f"Cluster map ({method}): localizations coloured by cluster, non-clustered in grey.",
    )
    if result.n_clusters:
        write_csv_table(result.clusters, ctx.out_dir / "clusters.csv")
        ctx.report.text("Per-cluster statistics (all clusters in clusters.csv):")
        ctx.report.table(statistics_summary(result))
    if "label" in ctx.locs:
        points = np.column_stack([ctx.locs["x"], ctx.locs["y"]]).astype(np.float64)
        scores = evaluate_clustering(
            points, ctx.locs["label"], labels, true_noise_label=TRUTH_NOISE_LABEL
        )
        ctx.report.text("Against the table's ground-truth labels (MIRO paper's metrics):")
        ctx.report.table([{k: f"{v:.3f}" for k, v in scores.items()}])
