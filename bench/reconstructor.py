"""HOLLy benchmark (issue #6): 3D models from simulated 2D projections, on this CPU.

    cd bench && OPENBLAS_NUM_THREADS=1 python reconstructor.py --append RESULTS.md \
        --figures figures
    python reconstructor.py --quick          # a smoke run of every section

1. Noise-free baselines, as the paper's §3.2: a CEP152-like torus (400 nm across, tube
   radius 40 nm, 200 surface points), HOLLy's two perpendicular cylinders (CEP152/HsSAS-6
   approximation, 126 points) and an asymmetric rabbit-like cloud (220 points; our stand-in
   for the Stanford bunny): RMSD after ICP alignment (mirror allowed) against the RMSD of
   random clouds of the same size in the truth's bounding box; two runs each, their spread.
2. Degradation, like the paper's Figures 7-9 (on the torus by default, `--noise-model`):
   scatter 10-40 nm, missing fluorophores 10-40 %, multiple binding (1 + Poisson(k)
   localizations per point, with 10 nm scatter).
3. Cost: wall time of a run and images/s at 32, 64 and 128 px; the paper's masked loss
   on the torus next to the unmasked default.

Every run: 2000 views (the paper's unique-image count), default ReconConfig (64 px,
60 epochs, lr 0.001, batch 32, input σ 60 -> 12 nm), model size = truth size.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from localizer import add_to_section, machine

from pointillist.core.config import parse_param
from pointillist.reconstructor.engine import (
    ReconstructResult,
    Settings,
    recon_config,
    reconstruct_table,
)
from pointillist.reconstructor.training import ReconConfig
from pointillist.simulator.projections import ProjectionSimConfig, simulate_projections

SECTION = "## Reconstructor"
MODELS = ("torus", "cylinders", "rabbit")
TORUS = {"torus_radius_nm": 200.0, "torus_tube_radius_nm": 40.0, "n_points": 200}


def simulate(model: str, n_views: int, seed: int, **noise: float):
    params = {"model": model, "n_views": n_views, "scatter_nm": 0.0, **noise}
    if model == "torus":
        params.update(TORUS)
    return simulate_projections(ProjectionSimConfig(**params), seed)


def run(
    model: str, config: ReconConfig, n_views: int, n_runs: int, seed: int = 1, **noise: float
) -> tuple[ReconstructResult, float]:
    """Simulate, reconstruct with the model size = truth size; (result, images/s)."""
    data = simulate(model, n_views, seed, **noise)
    config = dataclasses.replace(config, n_points=len(data.model_nm))
    result = reconstruct_table(data.localizations, Settings(config, n_runs), data.model_nm)
    images = sum(h["images"] for r in result.runs for h in r.history)
    train_s = sum(r.seconds for r in result.runs)
    return result, images / train_s


def describe(name: str, result: ReconstructResult, rate: float) -> dict[str, object]:
    evals = result.evaluations or []
    ratios = [e.ratio for e in evals]
    return {
        "data": name,
        "views": len(result.views),
        "RMSD per run [nm]": ", ".join(
            f"{e.rmsd_nm:.1f}{'ᵐ' if e.mirrored else ''}" for e in evals
        ),
        "random cloud [nm]": f"{evals[0].baseline_rmsd_nm:.1f}",
        "ratio (best, worst)": f"{min(ratios):.2f}, {max(ratios):.2f}",
        "final loss per run": ", ".join(f"{r.history[-1]['loss']:.3f}" for r in result.runs),
        "kept run's ratio": f"{evals[result.consensus.best].ratio:.2f}",
        "spread between runs [nm]": f"{result.consensus.spread:.1f}"
        if len(result.runs) > 1
        else "–",
        "s per run": f"{np.mean([r.seconds for r in result.runs]):.0f}",
        "images/s": f"{rate:.0f}",
    }


def table(rows: list[dict[str, object]]) -> str:
    keys = list(rows[0])
    out = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    out += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows]
    return "\n".join(out)


def figure(results: dict[str, ReconstructResult], path: Path) -> None:
    """Truth (orange) and the best run (blue), aligned, in x-y and x-z, per data set."""
    fig, axes = plt.subplots(2, len(results), figsize=(3.2 * len(results), 6.4), squeeze=False)
    for k, (name, result) in enumerate(results.items()):
        best = min(result.evaluations, key=lambda e: e.rmsd_nm)
        for row, (i, j) in enumerate(((0, 1), (0, 2))):
            ax = axes[row, k]
            ax.scatter(result.truth_nm[:, i], result.truth_nm[:, j], s=6, c="tab:orange")
            ax.scatter(
                best.alignment.aligned[:, i], best.alignment.aligned[:, j], s=6, c="tab:blue"
            )
            ax.set_aspect("equal")
            ax.set_xlabel(("x", "y")[0] + " [nm]")
            ax.set_ylabel(("y", "z")[row] + " [nm]")
        axes[0, k].set_title(
            f"{name}\nRMSD {best.rmsd_nm:.1f} nm (ratio {best.ratio:.2f})", fontsize=8
        )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sets, a few minutes")
    parser.add_argument("--views", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=2, help="runs per baseline data set")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--sections", default="baseline,noise,cost")
    parser.add_argument("--models", default=",".join(MODELS), help="baseline data sets")
    parser.add_argument("--noise-model", default="torus", choices=MODELS)
    parser.add_argument("--epochs", type=int, default=ReconConfig.epochs)
    parser.add_argument("--noise-epochs", type=int, help="epochs of the degradation runs")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a ReconConfig field for every run, e.g. lr=0.0003 (repeatable)",
    )
    parser.add_argument("--append", type=Path, help="append the results to this markdown file")
    parser.add_argument("--figures", type=Path, help="write PNG figures into this folder")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = recon_config(
        dict(parse_param(p) for p in args.param), ReconConfig(device="auto", epochs=args.epochs)
    )
    n_views = args.views
    if args.quick:
        config = dataclasses.replace(config, epochs=2, image_px=32, width=4)
        n_views = 60
    sections = set(args.sections.split(","))
    lines = [
        f"### Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"Machine: {machine()}, {args.threads} torch threads.",
        f"Command: `{' '.join(['python', *sys.argv])}`",
        f"Config: {n_views} views, {dataclasses.asdict(config)} (n_points = truth size). "
        "RMSD: symmetric nearest-neighbour RMSD after ICP (60 starts, mirror allowed; ᵐ = the "
        "mirror image fit better); random cloud: mean over 5 uniform clouds of the same size "
        "in the truth's bounding box, aligned the same way.",
        "",
    ]
    start = time.perf_counter()
    if "baseline" in sections:
        rows, shown = [], {}
        for model in args.models.split(","):
            result, rate = run(model, config, n_views, args.runs)
            rows.append(describe(model, result, rate))
            shown[model] = result
            print(rows[-1], flush=True)
        lines += ["#### Noise-free baselines", "", table(rows), ""]
        if args.figures:
            args.figures.mkdir(parents=True, exist_ok=True)
            figure(shown, args.figures / "reconstructor-baselines.png")
            lines += ["![baselines](figures/reconstructor-baselines.png)", ""]
    if "noise" in sections:
        cases = [
            ("scatter 10 nm", {"scatter_nm": 10.0}),
            ("scatter 20 nm", {"scatter_nm": 20.0}),
            ("scatter 30 nm", {"scatter_nm": 30.0}),
            ("scatter 40 nm", {"scatter_nm": 40.0}),
            ("missing 10 %", {"missing_fraction": 0.1}),
            ("missing 20 %", {"missing_fraction": 0.2}),
            ("missing 40 %", {"missing_fraction": 0.4}),
            (
                "multiple binding k=1, scatter 10 nm",
                {"extra_localizations": 1.0, "scatter_nm": 10.0},
            ),
            (
                "multiple binding k=3, scatter 10 nm",
                {"extra_localizations": 3.0, "scatter_nm": 10.0},
            ),
        ]
        rows, shown = [], {}
        for name, noise in cases:
            noisy = dataclasses.replace(config, epochs=args.noise_epochs or config.epochs)
            result, rate = run(args.noise_model, noisy, n_views, 1, **noise)
            rows.append(describe(f"{args.noise_model}, {name}", result, rate))
            shown[name] = result
            print(rows[-1], flush=True)
        epochs = args.noise_epochs or config.epochs
        lines += [
            f"#### Degradation ({args.noise_model}, one run each, {epochs} epochs)",
            "",
            table(rows),
            "",
        ]
        if args.figures:
            figure(
                {
                    k: shown[k]
                    for k in (
                        "scatter 20 nm",
                        "scatter 40 nm",
                        "missing 40 %",
                        "multiple binding k=3, scatter 10 nm",
                    )
                },
                args.figures / f"reconstructor-noise-{args.noise_model}.png",
            )
            lines += [f"![degradation](figures/reconstructor-noise-{args.noise_model}.png)", ""]
    if "cost" in sections:
        rows = []
        for px in (32, 64, 128):
            short = dataclasses.replace(config, image_px=px, epochs=1)
            _, rate = run("torus", short, n_views, 1)
            rows.append({"image px": px, "images/s (train, 1 epoch)": f"{rate:.0f}"})
            print(rows[-1], flush=True)
        masked, rate = run("torus", dataclasses.replace(config, mask_fraction=1e-3), n_views, 1)
        lines += [
            "#### Cost: training throughput vs image size (torus)",
            "",
            table(rows),
            "",
            "#### The paper's masked loss (mask_fraction 1e-3) on the torus",
            "",
            table([describe("torus, masked", masked, rate)]),
            "",
        ]
    lines.append(f"Total wall time: {time.perf_counter() - start:.0f} s.")
    text = "\n".join(lines)
    print(text)
    if args.append:
        add_to_section(args.append, SECTION, text)


if __name__ == "__main__":
    main()
