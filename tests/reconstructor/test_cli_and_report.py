"""`pointillist simulate projections` -> `pointillist reconstruct` -> report, end to end."""

import pandas as pd
from click.testing import CliRunner

from pointillist.cli import main
from pointillist.core import runspec
from pointillist.pipeline import run_pipeline

TINY = [
    "--points",
    "20",
    "--epochs",
    "2",
    "--runs",
    "2",
    "--image-px",
    "32",
    "-p",
    "width=4",
    "-p",
    "batch_size=8",
    "-p",
    "sigma_start_nm=50",
]


def test_reconstruct_simulated_views_with_truth(tmp_path):
    runner = CliRunner()
    views = tmp_path / "views.csv"
    done = runner.invoke(
        main, ["simulate", "projections", "-o", str(views), "-p", "n_views=40", "-p", "n_points=30"]
    )
    assert done.exit_code == 0, done.output
    model = tmp_path / "views.model.csv"
    assert len(pd.read_csv(model)) == 30
    out = tmp_path / "recon"
    done = runner.invoke(
        main, ["reconstruct", str(views), "-o", str(out), "--truth", str(model), *TINY]
    )
    assert done.exit_code == 0, done.output
    assert (
        "RMSD" in done.output
        and "random cloud" in done.output
        and "lowest final loss" in done.output
    )
    for name in (
        "report.html",
        "report.md",
        "model_3d.html",
        "model.png",
        "loss.png",
        "views.png",
        "runs.png",
        "model.csv",
        "points.csv",
        "poses.csv",
    ):
        assert (out / name).stat().st_size > 0, name
    assert "plotly" in (out / "model_3d.html").read_text()[:200000].lower()
    assert len(pd.read_csv(out / "model.csv")) == 20
    points = pd.read_csv(out / "points.csv")
    assert sorted(points["label"].unique()) == [0, 1]
    poses = pd.read_csv(out / "poses.csv")
    assert len(poses) == 40 and {"rx", "ry", "rz", "tx_nm", "ty_nm", "sigma_nm"} <= set(poses)
    report = (out / "report.md").read_text()
    assert "RMSD [nm]" in report and "model_3d.html" in report


def test_clear_errors(tmp_path):
    runner = CliRunner()
    table = tmp_path / "locs.csv"
    pd.DataFrame({"x [nm]": [1.0, 2.0, 3.0], "y [nm]": [1.0, 2.0, 3.0]}).to_csv(table, index=False)
    done = runner.invoke(main, ["reconstruct", str(table), "-o", str(tmp_path / "r")])
    assert done.exit_code != 0 and "particle" in done.output
    done = runner.invoke(main, ["reconstruct", str(table), "-p", "n_point=3"])
    assert done.exit_code != 0 and "unknown reconstructor parameter" in done.output


def test_pipeline_simulated_projections_to_reconstruct_step(tmp_path):
    spec = runspec.load_yaml("""
source: {simulation: {kind: projections, seed: 2, params: {n_views: 30, n_points: 25}}}
steps:
  - {name: reconstruct, params: {n_points: 16, epochs: 1, image_px: 32, width: 4, batch_size: 8}}
""")
    status = run_pipeline(spec, tmp_path)
    assert status.counters["views"] == 30
    report = (tmp_path / "report.md").read_text()
    assert "random cloud" in report and "reconstruction/model_3d.html" in report
    assert (tmp_path / "reconstruction" / "model_3d.html").exists()
