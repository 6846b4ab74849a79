"""The heterogeneity report: figures in the style of the PC-VAE paper, tables, latent CSV.

`write_report(analysis, out_dir)` writes, with matplotlib's Agg backend:
- super_particles_top.png (and super_particles_side.png for 3D): super-particles of
  bins 1, 5, 10, 15, 20 along every analysed axis (independent axes ic_j or latent
  dimensions latent_j, see `pointillist.vae.analysis`; paper Figs. 2, 7, 9);
- bins_<parameter>.png: all bins along the parameter's best dimension, each panel with
  the fused cloud's estimate ± precision (Figs. 5, 8, 10, 11); heights are shown in
  side view (x, z), everything else in top view (x, y);
- scatter.png: latent coordinate vs parameter per dimension with Pearson r and
  Spearman ρ (Fig. 3); violins_<parameter>.png: per-bin distributions of the parameter
  along its best dimension with mean ± sd (Fig. 4);
- report.md / report.html (`pointillist.core.report.Report`) with the r/ρ tables of
  the latent dimensions and of the PCA baseline, and latent.csv (one row per particle).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pointillist.core.render import render_histogram
from pointillist.core.report import Report
from pointillist.vae.analysis import HeterogeneityAnalysis, SuperParticle
from pointillist.vae.parameters import precision_name

PAPER_BINS = (1, 5, 10, 15, 20)
"""Bins (1-based) shown per latent dimension, as in the paper's overview figures."""

PIXELS_ACROSS = 64
"""Pixels across a super-particle panel."""

TOP, SIDE = (0, 1), (0, 2)
"""Coordinate axes of the top (x, y) and side (x, z) views."""


def write_report(analysis: HeterogeneityAnalysis, out_dir: str | Path) -> Path:
    """Write the figures, report.md/.html and latent.csv to out_dir; returns report.md."""
    out_dir = Path(out_dir)
    report = Report("PC-VAE heterogeneity analysis", out_dir)
    n, d = analysis.latent.shape
    k = analysis.coordinates.shape[1]
    n_bins = len(analysis.bins[0])
    along = (
        f"the {k} independent axes of the latent means (ICA; ic_0 moves the means most)"
        if analysis.axes == "independent"
        else f"the {k} latent dimensions"
    )
    report.text(
        f"{n} particles ({analysis.dims}D, kind {analysis.kind or 'unspecified'}), "
        f"{d} latent dimensions, analysed along {along}, {n_bins} equal-count bins per "
        "axis, numbered from 0. Super-particles: joint registration (JRMPC) of each bin's "
        "particles, bins registered to each other."
    )
    report.heading("Best axis per parameter (largest |Spearman ρ|)")
    report.table(_best_rows(analysis))
    report.heading("Correlation of the axes with the parameters")
    report.table(analysis.correlation_rows())
    report.heading("Baseline: PCA of pairwise/radial distance histograms")
    report.table(analysis.correlation_rows(baseline=True))

    report.heading("Super-particles along every axis")
    shown = _shown_bins(n_bins)
    views = [("top", TOP)] + ([("side", SIDE)] if analysis.dims == 3 else [])
    for name, view in views:
        report.figure(
            _overview(analysis, shown, view),
            f"super_particles_{name}",
            f"Super-particles of bins {', '.join(str(b + 1) for b in shown)} (columns) for "
            f"every axis (rows), {name} view.",
        )
    for parameter, dimension in analysis.best_dimensions.items():
        report.heading(f"{parameter} along {analysis.axis_name(dimension)}")
        view = SIDE if parameter.startswith("height") and analysis.dims == 3 else TOP
        report.figure(
            _all_bins(analysis.bins[dimension], parameter, view),
            f"bins_{parameter}",
            f"All {n_bins} bins along {analysis.axis_name(dimension)}, the axis most "
            f"correlated with {parameter}; each panel gives the super-particle's estimate "
            "± FWHM/√n.",
        )
        report.table(_bin_rows(analysis.bins[dimension], parameter))
        report.figure(
            _violins(analysis, dimension, parameter),
            f"violins_{parameter}",
            f"Per-particle {parameter} in each bin along {analysis.axis_name(dimension)} "
            "(mean ± sd).",
        )
    report.heading("Axis coordinates against the parameters")
    report.figure(
        _scatter(analysis),
        "scatter",
        "Coordinate on each axis vs per-particle parameter, with Pearson r and Spearman ρ.",
    )
    pd.DataFrame(analysis.per_particle_table()).to_csv(out_dir / "latent.csv", index=False)
    report.text("Per-particle latent coordinates and parameters: latent.csv.")
    return report.write()


def _shown_bins(n_bins: int) -> list[int]:
    """0-based bins to show per dimension: the paper's 1, 5, 10, 15, 20 for 20 bins,
    else five evenly spread."""
    if n_bins == 20:
        return [b - 1 for b in PAPER_BINS]
    spread = np.round(np.linspace(0, n_bins - 1, min(5, n_bins))).astype(int)
    return sorted(set(spread.tolist()))


def _best_rows(analysis: HeterogeneityAnalysis) -> list[dict[str, object]]:
    rows = []
    for k, name in enumerate(analysis.parameter_names):
        j = analysis.best_dimensions[name]
        baseline = np.nan_to_num(np.abs(analysis.baseline_spearman[:, k]), nan=-1.0)
        b = int(np.argmax(baseline))
        rows.append(
            {
                "parameter": name,
                "best axis": analysis.axis_name(j),
                "ρ": f"{analysis.spearman[j, k]:+.3f}",
                "r": f"{analysis.pearson[j, k]:+.3f}",
                "best PCA axis": analysis.baseline_name(b),
                "PCA ρ": f"{analysis.baseline_spearman[b, k]:+.3f}",
            }
        )
    return rows


def _bin_rows(bins: list[SuperParticle], parameter: str) -> list[dict[str, object]]:
    precision = bins[0].estimates.get(precision_name(parameter))
    rows = []
    for b, bin_ in enumerate(bins):
        row: dict[str, object] = {
            "bin": b + 1,
            "particles": len(bin_.members),
            "latent from": f"{bin_.latent_range[0]:.3g}",
            "latent to": f"{bin_.latent_range[1]:.3g}",
            parameter: f"{bin_.estimates[parameter]:.1f}",
        }
        if precision is not None:
            row["precision (nm)"] = f"{bin_.estimates[precision_name(parameter)]:.2f}"
        rows.append(row)
    return rows


def _frame(clouds: list[np.ndarray], view: tuple[int, int]) -> tuple[float, float, float]:
    """(centre x, centre y, half width) nm shared by panels showing these clouds."""
    points = np.concatenate([c[:, view] for c in clouds])
    centre = np.median(points, axis=0)
    half = 1.1 * float(np.percentile(np.abs(points - centre), 99.5))
    return float(centre[0]), float(centre[1]), max(half, 1.0)


def _panel(ax: plt.Axes, points: np.ndarray, view: tuple[int, int], frame: tuple) -> None:
    """A 2D histogram render of points in the given view and frame, no ticks."""
    cx, cy, half = frame
    extent = (cx - half, cx + half, cy - half, cy + half)
    image = render_histogram(
        points[:, view[0]], points[:, view[1]], 2 * half / PIXELS_ACROSS, extent
    )
    occupied = image.image[image.image > 0]
    top = float(np.percentile(occupied, 99)) if len(occupied) else None
    ax.imshow(image.image, origin="lower", extent=image.extent_nm, cmap="hot", vmax=top)
    ax.set_xticks([])
    ax.set_yticks([])


def _scale_bar(ax: plt.Axes, frame: tuple, length_nm: float = 50.0) -> None:
    cx, cy, half = frame
    x0, y0 = cx - 0.9 * half, cy - 0.85 * half
    ax.plot([x0, x0 + length_nm], [y0, y0], color="white", lw=2)
    ax.text(x0, y0 + 0.05 * half, f"{length_nm:.0f} nm", color="white", fontsize=7)


def _overview(analysis: HeterogeneityAnalysis, shown: list[int], view: tuple[int, int]) -> Figure:
    d = len(analysis.bins)
    fig, axes = plt.subplots(d, len(shown), figsize=(1.6 * len(shown), 1.6 * d), squeeze=False)
    frame = _frame([analysis.bins[j][b].points for j in range(d) for b in shown], view)
    for j in range(d):
        for col, b in enumerate(shown):
            ax = axes[j, col]
            _panel(ax, analysis.bins[j][b].points, view, frame)
            if j == 0:
                ax.set_title(f"bin {b + 1}", fontsize=9)
            if col == 0:
                ax.set_ylabel(analysis.axis_name(j), fontsize=9)
    _scale_bar(axes[-1, 0], frame)
    fig.tight_layout()
    return fig


def _all_bins(bins: list[SuperParticle], parameter: str, view: tuple[int, int]) -> Figure:
    columns = min(5, len(bins))
    rows = int(np.ceil(len(bins) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(2 * columns, 2 * rows), squeeze=False)
    frame = _frame([b.points for b in bins], view)
    unit = " nm" if parameter.endswith("_nm") else ""
    for b, ax in enumerate(axes.ravel()):
        if b >= len(bins):
            ax.axis("off")
            continue
        _panel(ax, bins[b].points, view, frame)
        estimate = bins[b].estimates
        label = f"{estimate[parameter]:.1f}"
        if precision_name(parameter) in estimate:
            label += f" ± {estimate[precision_name(parameter)]:.1f}"
        ax.set_title(f"bin {b + 1}: {label}{unit}", fontsize=8)
    _scale_bar(axes[0, 0], frame)
    fig.suptitle(parameter.removesuffix("_nm").replace("_", " "), fontsize=10)
    fig.tight_layout()
    return fig


def _violins(analysis: HeterogeneityAnalysis, dimension: int, parameter: str) -> Figure:
    values = [v[np.isfinite(v)] for v in analysis.bin_values(dimension, parameter)]
    positions = np.arange(1, len(values) + 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.4 * len(values)), 3.5))
    spread = [i for i, v in enumerate(values) if len(v) > 1 and np.ptp(v) > 0]
    if spread:
        ax.violinplot([values[i] for i in spread], positions[spread], showextrema=False)
    means = [v.mean() if len(v) else np.nan for v in values]
    sds = [v.std() if len(v) else np.nan for v in values]
    ax.errorbar(positions, means, yerr=sds, fmt="o", color="k", ms=3, capsize=2)
    ax.set_xlabel(f"bin along {analysis.axis_name(dimension)}")
    ax.set_ylabel(parameter)
    ax.set_xticks(positions)
    fig.tight_layout()
    return fig


def _scatter(analysis: HeterogeneityAnalysis) -> Figure:
    names, d = analysis.parameter_names, analysis.coordinates.shape[1]
    fig, axes = plt.subplots(
        len(names), d, figsize=(2.2 * d, 2.2 * len(names)), squeeze=False, sharey="row"
    )
    for k, name in enumerate(names):
        for j in range(d):
            ax = axes[k, j]
            ax.scatter(analysis.coordinates[:, j], analysis.parameters[name], s=2, alpha=0.4)
            ax.set_title(
                f"r={analysis.pearson[j, k]:+.2f} ρ={analysis.spearman[j, k]:+.2f}", fontsize=8
            )
            ax.set_xlabel(analysis.axis_name(j), fontsize=8)
            ax.tick_params(labelsize=7)
        axes[k, 0].set_ylabel(name, fontsize=8)
    fig.tight_layout()
    return fig
