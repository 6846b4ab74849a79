"""`pointillist cluster locs.csv --method dbscan -o out.csv`: cluster a localization table.

Reads any table `pointillist.core.io` reads (ThunderSTORM/plain CSV, Picasso HDF5, native
Parquet), clusters x, y (nm) with the same `engine.cluster_table` the service and the
pipeline use, and writes the table with a `cluster` column (-1 = non-clustered; `class`
too when the method classifies) plus the per-cluster table (centroid, localization count,
radius of gyration, convex-hull area, distance to the nearest other cluster, class).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import numpy as np

from pointillist.clusterer.engine import METHODS, TableClustering, cluster_table
from pointillist.core.config import method_params
from pointillist.core.errors import InvalidInput
from pointillist.core.io import read_table, write_table

PICASSO_SUFFIXES = (".hdf5", ".h5")


def stats_path(output: Path, stats: str | None) -> Path:
    """``--stats`` or ``<output stem>.clusters.csv`` beside the output."""
    return Path(stats) if stats else output.with_name(f"{output.stem}.clusters.csv")


def write_result(
    result: TableClustering, output: Path, stats: Path, pixel_size_nm: float | None
) -> bool:
    """Write the labelled table and the per-cluster table (none without clusters).

    Picasso HDF5 needs the pixel size; a ``.csv`` per-cluster table is plain CSV (its
    columns are not localizations, so no ThunderSTORM headers). Returns whether the
    per-cluster table was written.
    """

    def options(path: Path) -> dict[str, Any]:
        if path.suffix.lower() not in PICASSO_SUFFIXES:
            return {}
        if pixel_size_nm is None:
            raise InvalidInput(f"{path}: Picasso HDF5 output needs --pixel-size-nm")
        return {"pixel_size_nm": pixel_size_nm}

    write_table(result.localizations, output, **options(output))
    if not result.n_clusters:
        return False
    fmt = "csv" if stats.suffix.lower() == ".csv" else None
    write_table(result.clusters, stats, format=fmt, **options(stats))
    return True


@click.command("cluster")
@click.argument("table_path", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="Labelled table (.csv ThunderSTORM, .hdf5 Picasso, .parquet native).",
)
@click.option(
    "--stats",
    type=click.Path(dir_okay=False),
    help="Per-cluster table [default: <output stem>.clusters.csv].",
)
@click.option("--method", type=click.Choice(sorted(METHODS)), default="dbscan", show_default=True)
@click.option("--model", help="miro/caml: shipped model name or weights file.")
@click.option("--eps-nm", type=float, help="dbscan: neighbourhood radius [default: k-distance].")
@click.option("--min-samples", type=int, help="dbscan/hdbscan: neighbours of a core point.")
@click.option("--min-cluster-size", type=int, help="hdbscan: smallest cluster.")
@click.option(
    "-p",
    "--param",
    "extra",
    multiple=True,
    metavar="KEY=VALUE",
    help="Any other parameter of the method (value read as YAML); repeatable.",
)
@click.option("--pixel-size-nm", type=float, help="Pixel size for Picasso HDF5 output.")
def cluster(
    table_path: str,
    output: str,
    stats: str | None,
    method: str,
    extra: tuple[str, ...],
    pixel_size_nm: float | None,
    **named: Any,
) -> None:
    """Cluster the localizations of a table; adds a `cluster` column (-1 = non-clustered)."""
    params = method_params(named, extra)
    table = read_table(table_path)
    click.echo(f"clustering {len(table)} localizations with {method} ...", err=True)
    result = cluster_table(table, method, params)
    out, stats_file = Path(output), stats_path(Path(output), stats)
    wrote_stats = write_result(result, out, stats_file, pixel_size_nm)
    labels = result.clustering.labels
    message = result.summary()
    if result.clustering.classes is not None and result.n_clusters:
        names = result.clustering.class_names
        counts = np.bincount(result.clusters["class"], minlength=len(names))
        message += "; clusters per class: " + ", ".join(
            f"{names[i] if i < len(names) else i}: {int(c)}" for i, c in enumerate(counts)
        )
    click.echo(message)
    click.echo(
        f"wrote {out} ({int((labels >= 0).sum())} clustered)"
        + (f" and {stats_file}" if wrote_stats else "; no clusters, so no per-cluster table")
    )
