"""`pointillist cluster` end to end on simulated fields, and its errors."""

import numpy as np
import pytest
from click.testing import CliRunner

from pointillist.cli import main
from pointillist.clusterer.metrics import evaluate_clustering
from pointillist.core.io import read_csv_table, read_table, write_table
from pointillist.core.table import LocalizationTable
from pointillist.simulator.clusters import ClusterSimConfig, simulate_clusters


@pytest.fixture(scope="module")
def field(tmp_path_factory):
    """A scenario-5 field of view (100 clusters of 15 molecules, half background)."""
    path = tmp_path_factory.mktemp("field") / "locs.csv"
    write_table(simulate_clusters(ClusterSimConfig(scenario="scenario5"), 3), path)
    return path


def invoke(*args: str):
    return CliRunner().invoke(main, ["cluster", *map(str, args)])


def test_dbscan_labels_the_field_and_writes_the_per_cluster_table(field, tmp_path):
    out = tmp_path / "out.csv"
    result = invoke(field, "-o", out, "--method", "dbscan", "--eps-nm", 30, "--min-samples", 5)
    assert result.exit_code == 0, result.output
    labelled = read_table(out)
    truth = read_table(field)
    assert len(labelled) == len(truth) and set(labelled.columns) >= {"x", "y", "label", "cluster"}
    labels = labelled["cluster"]
    xy = np.column_stack([labelled["x"], labelled["y"]]).astype(float)
    scores = evaluate_clustering(xy, labelled["label"], labels, true_noise_label=0)
    assert scores["ari_c"] > 0.3 and scores["jic"] > 0.4
    stats = read_csv_table(tmp_path / "out.clusters.csv")
    n_clusters = int(labels.max()) + 1
    assert len(stats) == n_clusters and f"{n_clusters} clusters" in result.output
    assert stats["n_localizations"].sum() == (labels >= 0).sum()
    assert set(stats.columns) >= {
        "cluster",
        "x",
        "y",
        "n_localizations",
        "radius_of_gyration_nm",
        "hull_area_nm2",
        "nn_distance_nm",
    }
    assert np.all(stats["nn_distance_nm"] > 0)


def test_hdbscan_to_parquet_with_param_and_explicit_stats_path(field, tmp_path):
    out, stats = tmp_path / "out.parquet", tmp_path / "per-cluster.parquet"
    result = invoke(
        field, "-o", out, "--stats", stats, "--method", "hdbscan", "--min-cluster-size", 8,
        "--param", "min_samples=4",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    labelled, table = read_table(out), read_table(stats)
    assert labelled["cluster"].max() + 1 == len(table) > 20
    assert "hdbscan" in result.output and "% clustered" in result.output


def test_picasso_output_needs_a_pixel_size(field, tmp_path):
    out = tmp_path / "out.hdf5"
    result = invoke(field, "-o", out, "--eps-nm", 30)
    assert result.exit_code != 0 and "--pixel-size-nm" in result.output
    result = invoke(field, "-o", out, "--eps-nm", 30, "--pixel-size-nm", 100)
    assert result.exit_code == 0, result.output
    back, labelled_csv = read_table(out), tmp_path / "out.csv"
    assert invoke(field, "-o", labelled_csv, "--eps-nm", 30).exit_code == 0
    np.testing.assert_array_equal(back["cluster"], read_table(labelled_csv)["cluster"])


def test_no_clusters_writes_no_per_cluster_table(tmp_path):
    path = tmp_path / "sparse.csv"
    grid = np.arange(0, 10_000, 1000.0)
    write_table(LocalizationTable({"x": grid, "y": grid}), path)
    result = invoke(path, "-o", tmp_path / "out.csv", "--eps-nm", 10)
    assert result.exit_code == 0, result.output
    assert "no clusters" in result.output and not (tmp_path / "out.clusters.csv").exists()
    assert set(read_table(tmp_path / "out.csv")["cluster"]) == {-1}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--min-cluster-size", "5"], "unknown parameter(s) ['min_cluster_size']"),
        (["--param", "eps"], "--param expects key=value"),
        (["--eps-nm", "30", "--param", "eps_nm=20"], "'eps_nm' is given twice"),
        (["--eps-nm", "-3"], "eps_nm must be > 0"),
        (["--method", "kmeans"], "Invalid value for '--method'"),
    ],
)
def test_bad_parameters_are_clear_errors(field, tmp_path, args, message):
    result = invoke(field, "-o", tmp_path / "out.csv", *args)
    assert result.exit_code != 0 and message in result.output, result.output


def test_a_table_without_y_is_rejected(tmp_path):
    path = tmp_path / "x_only.csv"
    path.write_text("x,z\n1,2\n3,4\n")
    result = invoke(path, "-o", tmp_path / "out.csv")
    assert result.exit_code != 0 and "'y'" in result.output, result.output
