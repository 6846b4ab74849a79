import numpy as np
import pytest

from pointillist.core import runspec
from pointillist.core.errors import InvalidInput
from pointillist.core.io import read_table
from pointillist.pipeline import run_pipeline
from pointillist.v1 import run_pb2

SPEC = """
name: rings
source:
  simulation: {kind: clusters, seed: 4, params: {scenario: ring}}
steps:
  - {name: render, params: {pixel_size_nm: 20}}
  - {name: export, params: {path: locs.parquet}}
"""


def test_saved_spec_runs_and_reruns_on_other_data(tmp_path):
    spec = runspec.load_yaml(SPEC)
    status = run_pipeline(spec, tmp_path / "a")
    assert status.state == run_pb2.RUN_STATE_SUCCEEDED
    locs = read_table(tmp_path / "a" / "locs.parquet")
    assert status.counters["localizations"] == len(locs) > 1000
    assert set(np.unique(locs["label"])) >= {0, 1}
    assert (tmp_path / "a" / "render-locs.png").stat().st_size > 1000
    assert "render-locs.png" in (tmp_path / "a" / "report.md").read_text()
    # the saved spec re-runs on a file instead of its simulation
    saved = runspec.read_spec(tmp_path / "a" / "spec.yaml")
    assert saved.steps == spec.steps
    saved.source.file = str(tmp_path / "a" / "locs.parquet")
    again = run_pipeline(saved, tmp_path / "b")
    assert again.counters["localizations"] == len(locs)


def test_unknown_step_and_missing_table_are_clear(tmp_path):
    spec = runspec.load_yaml("source: {file: x.csv}\nsteps: [{name: frobnicate}]")
    with pytest.raises(InvalidInput, match="unknown step 'frobnicate'"):
        run_pipeline(spec, tmp_path)
    spec = runspec.load_yaml(
        "source: {simulation: {kind: clusters}}\nsteps: [{name: render, params: {source: truth}}]"
    )
    with pytest.raises(InvalidInput, match="no 'truth'"):
        run_pipeline(spec, tmp_path)


def test_frames_source_with_a_localize_step_is_evaluated(tmp_path):
    spec = runspec.load_yaml("""
source:
  simulation: {kind: frames, seed: 1, params: {n_frames: 20, height_px: 32, width_px: 32,
               emitters: {density_per_um2: 8}, blinking: {photons: 3000}}}
steps:
  - {name: localize, params: {method: mle, model: 2d}}
  - {name: export, params: {path: locs.csv}}
""")
    status = run_pipeline(spec, tmp_path)
    assert status.counters["localizations"] > 10
    assert "jaccard" in (tmp_path / "report.md").read_text()
