"""The ``cluster`` step of `pointillist run`: simulate/read -> cluster, localize -> cluster."""

import numpy as np
import pytest

from pointillist.core import runspec
from pointillist.core.errors import InvalidInput
from pointillist.core.io import read_csv_table, read_table
from pointillist.pipeline import run_pipeline


def test_simulated_clusters_are_clustered_mapped_and_scored(tmp_path):
    spec = runspec.load_yaml("""
source: {simulation: {kind: clusters, seed: 2, params: {scenario: scenario5}}}
steps:
  - {name: cluster, params: {method: dbscan, eps_nm: 30, min_samples: 5}}
  - {name: export, params: {path: labelled.parquet}}
""")
    status = run_pipeline(spec, tmp_path)
    labelled = read_table(tmp_path / "labelled.parquet")
    stats = read_csv_table(tmp_path / "clusters.csv")
    assert status.counters["clusters"] == len(stats) == labelled["cluster"].max() + 1 > 20
    assert status.counters["clustered_localizations"] == (labelled["cluster"] >= 0).sum()
    report = (tmp_path / "report.md").read_text()
    assert "cluster-map.png" in report and (tmp_path / "cluster-map.png").stat().st_size > 10_000
    assert "radius_of_gyration_nm" in report  # the per-cluster summary
    lines = report.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("| ari | ari_dagger |"))
    cells = [line.strip(" |").split(" | ") for line in (lines[at], lines[at + 2])]
    scores = dict(zip(*cells, strict=True))  # the ground-truth scores table
    assert 0.3 < float(scores["ari_c"]) <= 1.0 and 0.3 < float(scores["jic"]) <= 1.0

    # the saved spec re-runs on the exported table: a table source -> cluster, same labels
    saved = runspec.read_spec(tmp_path / "spec.yaml")
    saved.source.file = str(tmp_path / "labelled.parquet")
    again = run_pipeline(saved, tmp_path / "again")
    assert again.counters["clusters"] == status.counters["clusters"]
    relabelled = read_table(tmp_path / "again" / "labelled.parquet")
    np.testing.assert_array_equal(relabelled["cluster"], labelled["cluster"])


def test_localize_then_cluster(tmp_path):
    spec = runspec.load_yaml("""
source:
  simulation: {kind: frames, seed: 1, params: {n_frames: 20, height_px: 32, width_px: 32,
               emitters: {density_per_um2: 8}, blinking: {photons: 3000}}}
steps:
  - {name: localize, params: {method: mle, model: 2d}}
  - {name: cluster, params: {method: hdbscan, min_cluster_size: 5}}
  - {name: export, params: {path: labelled.parquet}}
""")
    status = run_pipeline(spec, tmp_path)
    labelled = read_table(tmp_path / "labelled.parquet")
    assert len(labelled) == status.counters["localizations"] > 10
    assert {"frame", "photons", "cluster"} <= set(labelled.columns)
    assert status.counters["clusters"] == labelled["cluster"].max() + 1
    assert "hdbscan:" in (tmp_path / "report.md").read_text()


def test_a_run_without_localizations_or_with_bad_params_is_refused(tmp_path):
    spec = runspec.load_yaml("""
source: {simulation: {kind: frames, params: {n_frames: 2, height_px: 16, width_px: 16}}}
steps: [{name: cluster}]
""")
    with pytest.raises(InvalidInput, match="no localizations"):
        run_pipeline(spec, tmp_path / "a")
    spec = runspec.load_yaml("""
source: {simulation: {kind: clusters, params: {scenario: scenario5}}}
steps: [{name: cluster, params: {method: dbscan, min_cluster_size: 3}}]
""")
    with pytest.raises(InvalidInput, match=r"unknown parameter\(s\) \['min_cluster_size'\]"):
        run_pipeline(spec, tmp_path / "b")


def test_the_steps_method_field_chooses_the_method(tmp_path):
    spec = runspec.load_yaml("""
source: {simulation: {kind: clusters, seed: 3, params: {scenario: scenario8}}}
steps:
  - {name: cluster, method: hdbscan, params: {min_cluster_size: 4}}
""")
    run_pipeline(spec, tmp_path)
    assert "hdbscan:" in (tmp_path / "report.md").read_text()
