"""The reconstruction report: a rotatable 3D view, PNG snapshots, curves, tables, CSVs.

Files written to the report folder:
- report.md / report.html (`pointillist.core.report.Report`): runs, losses, evaluation;
- model_3d.html: the kept model (`Consensus.best`; and the other runs and the ground truth, when
  present, as legend-toggled traces) as a plotly 3D scatter, self-contained (plotly.js
  embedded, no network needed to open it);
- model.png (three orthogonal projections plus a perspective snapshot), loss.png
  (loss and input/output σ per epoch), views.png (input views next to the model rendered
  in its predicted pose), runs.png (every run aligned onto the kept one);
- model.csv (the kept run's points, nm), points.csv (every run, ``label`` = run),
  poses.csv (the kept run's pose per view).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch
from matplotlib.figure import Figure

from pointillist.core.report import Report
from pointillist.reconstructor.engine import ReconstructResult
from pointillist.reconstructor.geometry import project
from pointillist.reconstructor.render import render

PROJECTIONS = (("x", "y", 0, 1), ("x", "z", 0, 2), ("y", "z", 1, 2))
N_EXAMPLE_VIEWS = 6


def write_report(result: ReconstructResult, out_dir: str | Path) -> list[Path]:
    """Write every report file (module docstring) to out_dir; returns their paths."""
    out_dir = Path(out_dir)
    report = Report("HOLLy 3D reconstruction", out_dir)
    report.text(" ".join(result.summary_lines()[:1]))
    report.text(
        "Rotatable 3D view of the kept model (other runs and the ground truth can be "
        "shown from the legend): model_3d.html. Points: model.csv (kept run), points.csv "
        "(all runs, label = run), poses per view: poses.csv. 2D projections cannot tell a "
        "structure from its mirror image; the evaluation aligns either."
    )
    report.heading("Runs")
    report.table(_run_rows(result))
    if len(result.runs) > 1:
        c = result.consensus
        report.text(
            f"Model: run {c.best} (the lowest final loss among the runs that are not "
            f"outliers); medoid run {c.medoid}; median RMSD between runs {c.spread:.1f} nm"
            + (
                f"; outlier run(s) {c.outliers} (mean RMSD to the others > 2× that)."
                if c.outliers
                else "; no outlier run."
            )
        )
    report.heading("Model")
    report.figure(
        _model_figure(result),
        "model",
        "Kept model: three orthogonal projections and a perspective view"
        + (" (ground truth in orange, aligned)." if result.truth_nm is not None else "."),
    )
    if len(result.runs) > 1:
        report.figure(
            _runs_figure(result), "runs", "Every run aligned onto the kept one (x-y and x-z)."
        )
    report.heading("Training")
    report.figure(
        _loss_figure(result),
        "loss",
        "Masked L1 loss per epoch (unit-intensity images) and the input σ curriculum "
        "with the mean predicted output σ.",
    )
    report.figure(
        _views_figure(result),
        "views",
        "Input views (top, at the final input σ) and the kept model rendered in "
        "each view's predicted pose with its output σ (bottom).",
    )
    md = report.write()
    files = [md, out_dir / "report.html"]
    files += sorted(out_dir.glob("*.png"))
    files.append(_write_plotly(result, out_dir / "model_3d.html"))
    files += _write_tables(result, out_dir)
    return files


def _run_rows(result: ReconstructResult) -> list[dict[str, object]]:
    rows = []
    for i, run in enumerate(result.runs):
        last = run.history[-1]
        row: dict[str, object] = {
            "run": i,
            "seed": run.config.seed,
            "epochs": int(last["epoch"]),
            "final loss": f"{last['loss']:.4f}",
            "output σ [nm]": f"{last['sigma_out_nm']:.1f}",
            "time [s]": f"{run.seconds:.0f}",
            "images/s": f"{sum(h['images'] for h in run.history) / max(run.seconds, 1e-9):.0f}",
        }
        if result.evaluations is not None:
            e = result.evaluations[i]
            row["RMSD [nm]"] = f"{e.rmsd_nm:.1f}"
            row["random cloud [nm]"] = f"{e.baseline_rmsd_nm:.1f} ± {e.baseline_sd_nm:.1f}"
            row["ratio"] = f"{e.ratio:.2f}"
            row["mirror image"] = "yes" if e.mirrored else "no"
        if len(result.runs) > 1:
            row["kept"] = "yes" if i == result.consensus.best else ""
        rows.append(row)
    return rows


def _model_figure(result: ReconstructResult) -> Figure:
    model = result.model_nm
    fig = plt.figure(figsize=(13, 3.6))
    for k, (a, b, i, j) in enumerate(PROJECTIONS):
        ax = fig.add_subplot(1, 4, k + 1)
        if result.truth_nm is not None:
            ax.scatter(
                result.truth_nm[:, i],
                result.truth_nm[:, j],
                s=10,
                c="tab:orange",
                alpha=0.6,
                label="truth",
            )
        ax.scatter(model[:, i], model[:, j], s=8, c="tab:blue", label="model")
        ax.set_aspect("equal")
        ax.set_xlabel(f"{a} [nm]")
        ax.set_ylabel(f"{b} [nm]")
    ax3 = fig.add_subplot(1, 4, 4, projection="3d")
    if result.truth_nm is not None:
        ax3.scatter(*result.truth_nm.T, s=6, c="tab:orange", alpha=0.5)
    ax3.scatter(*model.T, s=6, c="tab:blue")
    ax3.set_box_aspect(
        np.ptp(
            np.vstack([model, result.truth_nm if result.truth_nm is not None else model]), axis=0
        )
        + 1e-9
    )
    ax3.set_axis_off()
    fig.axes[0].legend(loc="upper right", fontsize=7)
    return fig


def _runs_figure(result: ReconstructResult) -> Figure:
    clouds = result.consensus.aligned
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.2))
    for k, cloud in enumerate(clouds):
        for ax, (_, _, i, j) in zip(axes, PROJECTIONS[:2], strict=False):
            ax.scatter(cloud[:, i], cloud[:, j], s=5, alpha=0.6, label=f"run {k}")
    for ax, (a, b, _, _) in zip(axes, PROJECTIONS[:2], strict=False):
        ax.set_aspect("equal")
        ax.set_xlabel(f"{a} [nm]")
        ax.set_ylabel(f"{b} [nm]")
    axes[0].legend(fontsize=7)
    return fig


def _loss_figure(result: ReconstructResult) -> Figure:
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    for k, run in enumerate(result.runs):
        epochs = [h["epoch"] for h in run.history]
        left.plot(epochs, [h["loss"] for h in run.history], marker=".", label=f"run {k}")
        right.plot(epochs, [h["sigma_out_nm"] for h in run.history], label=f"output σ, run {k}")
    first = result.runs[0].history
    right.step(
        [h["epoch"] for h in first],
        [h["sigma_in_nm"] for h in first],
        "k--",
        where="mid",
        label="input σ",
    )
    left.set_xlabel("epoch")
    left.set_ylabel("masked L1 loss")
    right.set_xlabel("epoch")
    right.set_ylabel("σ [nm]")
    left.legend(fontsize=7)
    right.legend(fontsize=7)
    return fig


@torch.no_grad()
def _views_figure(result: ReconstructResult) -> Figure:
    run = result.runs[result.consensus.best]
    config = run.config
    views = result.views
    index = np.linspace(0, len(views) - 1, min(N_EXAMPLE_VIEWS, len(views))).astype(int)
    sigma_in = run.history[-1]["sigma_in_nm"]
    inputs = views.render(torch.from_numpy(index), sigma_in, config.image_px, None)
    poses = run.poses
    rotvec = torch.tensor(np.column_stack([poses["rx"], poses["ry"], poses["rz"]])[index])
    shift = (
        torch.tensor(np.column_stack([poses["tx_nm"], poses["ty_nm"]])[index]) / run.half_width_nm
    )
    sigma_out = torch.tensor(poses["sigma_nm"][index]) / run.half_width_nm
    points = torch.tensor(run.points_nm / run.half_width_nm)
    outputs = render(project(points, rotvec, shift), sigma_out, config.image_px)
    fig, axes = plt.subplots(2, len(index), figsize=(2 * len(index), 4.2), squeeze=False)
    extent = (-run.half_width_nm, run.half_width_nm, -run.half_width_nm, run.half_width_nm)
    for k in range(len(index)):
        for row, images in enumerate((inputs, outputs)):
            ax = axes[row, k]
            ax.imshow(images[k].numpy(), origin="lower", extent=extent, cmap="hot")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[0, k].set_title(f"view {int(views.ids[index[k]])}", fontsize=8)
    axes[0, 0].set_ylabel("input")
    axes[1, 0].set_ylabel("model")
    return fig


def _write_plotly(result: ReconstructResult, path: Path) -> Path:
    fig = go.Figure()
    clouds = (
        [e.alignment.aligned for e in result.evaluations]
        if result.evaluations is not None
        else result.consensus.aligned
    )
    best = result.consensus.best
    for k, cloud in enumerate(clouds):
        fig.add_trace(
            go.Scatter3d(
                x=cloud[:, 0],
                y=cloud[:, 1],
                z=cloud[:, 2],
                mode="markers",
                marker={"size": 3},
                name=f"run {k}" + (" (kept)" if k == best else ""),
                visible=True if k == best else "legendonly",
            )
        )
    if result.truth_nm is not None:
        t = result.truth_nm
        fig.add_trace(
            go.Scatter3d(
                x=t[:, 0],
                y=t[:, 1],
                z=t[:, 2],
                mode="markers",
                marker={"size": 3, "color": "orange"},
                name="ground truth",
            )
        )
    fig.update_layout(
        title="HOLLy reconstruction (nm)",
        scene={
            "aspectmode": "data",
            "xaxis_title": "x [nm]",
            "yaxis_title": "y [nm]",
            "zaxis_title": "z [nm]",
        },
    )
    fig.write_html(path, include_plotlyjs=True, full_html=True)
    return path


def _write_tables(result: ReconstructResult, out_dir: Path) -> list[Path]:
    model = result.model_nm
    paths = [out_dir / "model.csv", out_dir / "points.csv", out_dir / "poses.csv"]
    pd.DataFrame({"x": model[:, 0], "y": model[:, 1], "z": model[:, 2]}).to_csv(
        paths[0], index=False
    )
    points = result.points_table()
    pd.DataFrame({c: points[c] for c in points.columns}).to_csv(paths[1], index=False)
    pd.DataFrame(result.poses_table()).to_csv(paths[2], index=False)
    return paths
