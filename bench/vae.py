"""PC-VAE benchmark (issue #5): latent-parameter correlations, robustness, real data, cost.

    OPENBLAS_NUM_THREADS=1 python bench/vae.py --append bench/RESULTS.md --figures bench/figures
    python bench/vae.py --quick            # a smoke run of every section, minutes

1. Simulated particles like the paper's data sets: 2D NPCs (1399 particles, ~155
   localizations, radius continuous around 55 nm), 3D NPCs (radius and ring-distance
   modes) and DNA-origami tetrahedra (height uniform 40-110 nm): the best |Spearman ρ|
   with each true and each model-based parameter, along the latent dimensions and along
   the independent axes of the latent means (ICA, `pointillist.vae.axes`, the
   analysis's opt-in `axes="independent"`), against the PCA baseline (rotation-invariant distance
   histograms) read both ways too.
2. Robustness to missing data (the paper's Fig. 6): best |ρ| with the true radius vs the
   fraction of localizations kept, 1.0 -> 0.1.
3. Real registered particles (../shared/data/particles): gp210 2D and Nup 3D NPCs: the
   latent dimension most correlated with the model-based radius, its ρ, and the radius
   range over the 20 bins (super-particle estimates).
4. Cost: seconds per epoch for 1399 particles, and time per epoch vs number of
   particles (500 -> 8000), with a linear fit.
5. Variants (`--sections variants --variant KEY=VALUE[,KEY=VALUE] ...`): the 2D NPC set
   trained with VaeConfig fields changed (e.g. beta, warmup_steps, epochs), each against
   the true radius read both ways — for trying training settings on the radius target.
6. Factors (`--sections factors`): what shares the latent space with the radius on the
   2D NPC set — the principal directions of the latent means against the true radius and
   the particle's centroid offset (mean localization in its frame, x and y), and the
   independent axes' excess kurtosis (ICA separates only non-Gaussian sources).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from localizer import add_to_section, machine
from scipy.stats import kurtosis, spearmanr
from sklearn.decomposition import PCA
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import KFold, cross_val_score

from pointillist.core.config import parse_param
from pointillist.core.io import read_table
from pointillist.core.particles import Particles, particles_from_table
from pointillist.simulator.particles import ParticleSimConfig, simulate_particles
from pointillist.vae.analysis import HeterogeneityAnalysis, analyze
from pointillist.vae.axes import fit_independent_axes
from pointillist.vae.baseline import DistanceHistogramPCA
from pointillist.vae.engine import vae_config
from pointillist.vae.report import write_report
from pointillist.vae.training import VaeConfig, embed, train_vae

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "particles"
HEADER = "## VAE"


@dataclass(frozen=True)
class SimCase:
    """A simulated data set like one of the paper's, and the true parameters to check."""

    name: str
    config: ParticleSimConfig
    truths: tuple[str, ...]


def sim_cases(quick: bool) -> list[SimCase]:
    """The paper's three data sets (particle counts as the paper's, 3D NPC reduced)."""
    scale = 0.15 if quick else 1.0
    return [
        SimCase(
            "2D NPC",
            # ~155 localizations: 8 sites x DOL 0.7 x 27.7 per labelled site
            ParticleSimConfig(
                kind="npc2d",
                n_particles=int(1399 * scale),
                radius_nm=55.0,
                radius_spread_nm=4.0,
                dol=0.7,
                localizations_per_site=27.7,
                precision_nm=8.0,
            ),
            ("radius_nm",),
        ),
        SimCase(
            "3D NPC",
            # 32 sites (2 rings x 8 corners x 2), ~80 localizations, as the paper's 3D set
            ParticleSimConfig(
                kind="npc3d",
                n_particles=int(1500 * scale),
                radius_nm=55.0,
                radius_spread_nm=3.0,
                ring_distance_nm=50.0,
                ring_distance_spread_nm=4.0,
                sites_per_corner=2,
                dol=0.5,
                localizations_per_site=5.0,
                precision_nm=8.0,
                precision_z_nm=16.0,
            ),
            ("radius_nm", "ring_distance_nm"),
        ),
        SimCase(
            "tetrahedron",
            # 218 particles, ~5000 localizations over 4 sites (PAINT)
            ParticleSimConfig(
                kind="tetrahedron",
                n_particles=max(60, int(218 * scale)),
                height_nm=75.0,
                height_spread_nm=35.0,
                height_distribution="uniform",
                dol=0.95,
                localizations_per_site=1300.0,
                precision_nm=6.0,
                precision_z_nm=12.0,
            ),
            ("height_nm",),
        ),
    ]


def progress(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def best_rho(coordinates: np.ndarray, values: np.ndarray) -> tuple[int, float]:
    """(column, ρ) of the coordinate column with the largest |Spearman ρ| with values."""
    rho = np.array([spearmanr(c, values).statistic for c in coordinates.T])
    best = int(np.nanargmax(np.abs(rho)))
    return best, float(rho[best])


def independent(coordinates: np.ndarray) -> np.ndarray:
    """The coordinates on their independent axes (as `analyze` reads them by default)."""
    return fit_independent_axes(coordinates).transform(coordinates)


def linear_r2(coordinates: np.ndarray, values: np.ndarray) -> float:
    """5-fold cross-validated R² of a linear map coordinates -> values: how much of the
    parameter the latent space holds at all, whether or not one axis carries it."""
    folds = KFold(5, shuffle=True, random_state=0)
    return float(cross_val_score(LinearRegression(), coordinates, values, cv=folds).mean())


def pca_coordinates(particles: Particles, n_components: int) -> np.ndarray:
    return (
        DistanceHistogramPCA(n_components=n_components)
        .fit(particles.points)
        .transform(particles.points)
    )


def train_and_embed(particles: Particles, config: VaeConfig, label: str) -> tuple[np.ndarray, dict]:
    """Train, embed; (latent μ, summary of the training: epochs, s/epoch, final loss)."""
    start = time.perf_counter()
    trained = train_vae(particles, config)
    seconds = time.perf_counter() - start
    latent = embed(trained, particles)
    last = trained.history[-1]
    per_epoch = float(np.mean([h["seconds"] for h in trained.history]))
    progress(
        f"{label}: {len(trained.history)} epochs, {per_epoch:.1f} s/epoch, loss {last['loss']:.4g}"
    )
    return latent, {
        "epochs": len(trained.history),
        "s_per_epoch": per_epoch,
        "seconds": seconds,
        "loss": last["loss"],
    }


def simulated_section(config: VaeConfig, quick: bool, figures: Path | None) -> str:
    rows = []
    for case in sim_cases(quick):
        sim = simulate_particles(case.config, 11)
        particles, _ = particles_from_table(
            sim.localizations, dims=2 if case.config.kind == "npc2d" else 3
        )
        n_locs = np.mean([len(p) for p in particles.points])
        progress(f"{case.name}: {len(particles.ids)} particles, {n_locs:.0f} locs each")
        latent, cost = train_and_embed(particles, config, case.name)
        pca = pca_coordinates(particles, config.latent_dim)
        analysis = analyze(particles, latent, kind=case.config.kind, n_bins=20)
        extra = [] if case.config.kind != "npc2d" or quick else [1, 2]
        others = [
            train_and_embed(particles, replace(config, seed=s), f"{case.name} seed {s}")[0]
            for s in extra
        ]
        latents = [latent, *others]
        lead = f"| {case.name} | {len(particles.ids)} | {n_locs:.0f} |"
        for truth in case.truths:
            values = sim.truth[truth][particles.ids]
            rows.append(f"{lead} true {truth} | {_sim_cells(values, latents, pca, cost)}")
        for name in analysis.parameter_names:
            if name != "n_localizations":
                values = analysis.parameters[name]
                rows.append(f"{lead} model-based {name} | {_sim_cells(values, latents, pca, cost)}")
        if figures is not None:
            keep_figures(analysis, figures, f"vae-{case.config.kind}")
    head = (
        "| data set | particles | locs/particle | parameter | best latent dim: ρ "
        "(other seeds |ρ|) | best independent axis: ρ (other seeds |ρ|) | "
        "latent linear R² (5-fold CV) | PCA best |ρ| (components / independent axes) | "
        "PCA linear R² | s/epoch |\n|---|---|---|---|---|---|---|---|---|---|"
    )
    return head + "\n" + "\n".join(rows)


def _sim_cells(values: np.ndarray, latents: list[np.ndarray], pca: np.ndarray, cost: dict) -> str:
    """The rest of a table row: best ρ on the latent dimensions and on the independent
    axes (first seed signed, other seeds |ρ|), linear R², and the PCA baseline read both
    ways, over the particles where the parameter is finite."""
    finite = np.isfinite(values)
    values, latents, pca = values[finite], [x[finite] for x in latents], pca[finite]
    dim, rho = best_rho(latents[0], values)
    axis, axis_rho = best_rho(independent(latents[0]), values)
    seeds = "".join(f", {abs(best_rho(x, values)[1]):.3f}" for x in latents[1:])
    axis_seeds = "".join(f", {abs(best_rho(independent(x), values)[1]):.3f}" for x in latents[1:])
    pca_rho, pca_axis_rho = best_rho(pca, values)[1], best_rho(independent(pca), values)[1]
    return (
        f"latent_{dim} {rho:+.3f}{seeds} | ic_{axis} {axis_rho:+.3f}{axis_seeds} | "
        f"{linear_r2(latents[0], values):.3f} | {abs(pca_rho):.3f} / {abs(pca_axis_rho):.3f} | "
        f"{linear_r2(pca, values):.3f} | {cost['s_per_epoch']:.1f} |"
    )


def parse_variant(text: str) -> dict[str, object]:
    """'beta=0.01,warmup_steps=500' -> {'beta': 0.01, 'warmup_steps': 500} (YAML values)."""
    return dict(parse_param(item) for item in text.split(",") if item.strip())


def variants_section(config: VaeConfig, variants: list[str], quick: bool) -> str:
    """The 2D NPC set (as in the simulated section) trained once per variant: best latent
    dimension and best independent axis against the true radius, linear R², final loss."""
    case = sim_cases(quick)[0]
    sim = simulate_particles(case.config, 11)
    particles, _ = particles_from_table(sim.localizations, dims=2)
    values = sim.truth["radius_nm"][particles.ids]
    changes = [parse_variant(text) for text in ["", *variants]]
    configs = [vae_config(changed, config) for changed in changes]  # refuse typos up front
    rows = []
    for changed, variant in zip(changes, configs, strict=True):
        label = ", ".join(f"{k} {v}" for k, v in changed.items()) or "as configured"
        latent, summary = train_and_embed(particles, variant, f"variant {label}")
        dim, rho = best_rho(latent, values)
        axis, axis_rho = best_rho(independent(latent), values)
        progress(f"variant {label}: latent_{dim} {rho:+.3f}, ic_{axis} {axis_rho:+.3f}")
        rows.append(
            f"| {label} | latent_{dim} {rho:+.3f} | ic_{axis} {axis_rho:+.3f} | "
            f"{linear_r2(latent, values):.3f} | {summary['loss']:.4f} | "
            f"{summary['epochs']} | {summary['seconds']:.0f} |"
        )
    head = (
        f"2D NPC, {len(particles.ids)} particles, true radius_nm; each row one training "
        "(seed as configured).\n\n| VaeConfig changes | best latent dim: ρ | best "
        "independent axis: ρ | latent linear R² (5-fold CV) | final loss | epochs | s |\n"
        "|---|---|---|---|---|---|---|"
    )
    return head + "\n" + "\n".join(rows)


def factors_section(config: VaeConfig, quick: bool) -> str:
    """The 2D NPC set trained once: each principal direction of the latent means (variance
    fraction) and each independent axis (excess kurtosis) against the true radius, the
    centroid offset (x, y, nm; missing corners move a particle's mean off its centre) and
    the localization count; plus the excess kurtosis of those true factors."""
    case = sim_cases(quick)[0]
    sim = simulate_particles(case.config, 11)
    particles, _ = particles_from_table(sim.localizations, dims=2)
    offsets = np.array([p.mean(axis=0) for p in particles.points])
    factors = {
        "radius_nm": sim.truth["radius_nm"][particles.ids],
        "offset_x_nm": offsets[:, 0],
        "offset_y_nm": offsets[:, 1],
        "n_localizations": sim.truth["n_localizations"][particles.ids],
    }
    latent, _ = train_and_embed(particles, config, "factors")
    pca = PCA().fit(latent)
    readings = [
        (f"PC {j}", f"{fraction:.3f}", column)
        for j, (fraction, column) in enumerate(
            zip(pca.explained_variance_ratio_, pca.transform(latent).T, strict=True)
        )
    ]
    readings += [
        (f"ic_{j}", f"kurtosis {kurtosis(column):+.2f}", column)
        for j, column in enumerate(independent(latent).T)
    ]
    rows = [
        f"| {name} | {note} | "
        + " | ".join(f"{spearmanr(column, v).statistic:+.2f}" for v in factors.values())
        + " |"
        for name, note, column in readings
    ]
    rows.append(
        "| true factor | excess kurtosis | "
        + " | ".join(f"{kurtosis(v):+.2f}" for v in factors.values())
        + " |"
    )
    r2 = ", ".join(f"{k} {linear_r2(latent, v):.3f}" for k, v in factors.items())
    head = (
        f"2D NPC, {len(particles.ids)} particles, one training (seed {config.seed}); latent "
        f"linear R² (5-fold CV): {r2}.\n\n| latent direction | variance fraction / excess "
        "kurtosis | " + " | ".join(f"ρ {k}" for k in factors) + " |\n|---|---|---|---|---|---|"
    )
    return head + "\n" + "\n".join(rows)


def keep_figures(analysis: HeterogeneityAnalysis, figures: Path, prefix: str) -> None:
    """Write the report to a temp dir and keep its overview, best-dim bins and scatter."""
    with tempfile.TemporaryDirectory() as tmp:
        write_report(analysis, tmp)
        for png in sorted(Path(tmp).glob("*.png")):
            if png.name.startswith(("super_particles_top", "bins_", "scatter", "violins_")):
                if "n_localizations" in png.name:
                    continue
                figures.mkdir(parents=True, exist_ok=True)
                shutil.copy(png, figures / f"{prefix}-{png.name.replace('_', '-')}")


def subsample(particles: Particles, fraction: float, rng: np.random.Generator) -> Particles:
    """Keep ``fraction`` of each particle's localizations (at least 3), at random."""
    kept = []
    for p in particles.points:
        n = max(3, round(fraction * len(p)))
        kept.append(p[rng.choice(len(p), size=min(n, len(p)), replace=False)])
    return Particles(kept, particles.ids, particles.dims)


def robustness_section(config: VaeConfig, quick: bool, figures: Path | None) -> str:
    case = sim_cases(quick)[0]
    sim = simulate_particles(case.config, 12)
    particles, _ = particles_from_table(sim.localizations, dims=2)
    radius = sim.truth["radius_nm"][particles.ids]
    fractions = [1.0, 0.5, 0.1] if quick else [1.0, 0.8, 0.6, 0.4, 0.3, 0.2, 0.1]
    rng = np.random.default_rng(5)
    rows, rhos = [], []
    for fraction in fractions:
        kept = subsample(particles, fraction, rng)
        latent, _ = train_and_embed(kept, config, f"kept {fraction:.0%}")
        dim, rho = best_rho(latent, radius)
        axis, axis_rho = best_rho(independent(latent), radius)
        _, pca_rho = best_rho(pca_coordinates(kept, config.latent_dim), radius)
        n_locs = np.mean([len(p) for p in kept.points])
        rhos.append((abs(rho), abs(axis_rho), abs(pca_rho)))
        rows.append(
            f"| {fraction:.1f} | {n_locs:.0f} | latent_{dim} {abs(rho):.3f} | "
            f"ic_{axis} {abs(axis_rho):.3f} | {linear_r2(latent, radius):.3f} | "
            f"{abs(pca_rho):.3f} |"
        )
    if figures is not None:
        fig, ax = plt.subplots(figsize=(5, 3.5))
        ax.plot(fractions, [r[0] for r in rhos], "o-", label="PC-VAE best latent dimension")
        ax.plot(fractions, [r[1] for r in rhos], "^-", label="PC-VAE best independent axis")
        ax.plot(fractions, [r[2] for r in rhos], "s--", label="PCA baseline")
        ax.set_xlabel("fraction of localizations kept")
        ax.set_ylabel("|Spearman ρ| with true radius")
        ax.set_ylim(0, 1)
        ax.invert_xaxis()
        ax.legend()
        figures.mkdir(parents=True, exist_ok=True)
        fig.savefig(figures / "vae-robustness.png", dpi=120, bbox_inches="tight")
        plt.close(fig)
    head = (
        "| fraction kept | locs/particle | best latent dim |ρ| | best independent axis |ρ| | "
        "PC-VAE linear R² | PCA |ρ| |\n|---|---|---|---|---|---|"
    )
    return head + "\n" + "\n".join(rows)


def real_section(config: VaeConfig, figures: Path | None) -> str:
    rows = []
    for file, kind in (("npc-gp210-2d-304.csv", "npc2d"), ("npc-nup-3d-paint-306.csv", "npc3d")):
        path = DATA / file
        if not path.exists():
            rows.append(f"| {file} | not found at {path} | | | | | |")
            continue
        particles, _ = particles_from_table(read_table(path), dims=2 if kind == "npc2d" else 3)
        latent, _ = train_and_embed(particles, config, file)
        analysis = analyze(particles, latent, kind=kind, n_bins=20)
        j = analysis.parameter_names.index("radius_nm")
        dim = analysis.best_dimensions["radius_nm"]
        bins = [b.estimates["radius_nm"] for b in analysis.bins[dim]]
        pca_rho = np.nanmax(np.abs(analysis.baseline_spearman[:, j]))
        radius = analysis.parameters["radius_nm"]
        finite = np.isfinite(radius)
        raw_dim, raw_rho = best_rho(latent[finite], radius[finite])
        rows.append(
            f"| {file} | {len(particles.ids)} | {analysis.axis_name(dim)} | "
            f"{analysis.spearman[dim, j]:+.3f} | latent_{raw_dim} {raw_rho:+.3f} | "
            f"{min(bins):.1f}–{max(bins):.1f} | {pca_rho:.3f} |"
        )
        if figures is not None:
            keep_figures(analysis, figures, f"vae-real-{kind}")
    head = (
        "| data | particles | best independent axis for radius | ρ | best latent dim: ρ | "
        "radius over 20 bins (nm) | PCA-IC best |ρ| |\n|---|---|---|---|---|---|---|"
    )
    return head + "\n" + "\n".join(rows)


def cost_section(config: VaeConfig, quick: bool, figures: Path | None) -> str:
    counts = [200, 400, 800] if quick else [500, 1000, 2000, 4000, 8000]
    base = sim_cases(quick)[0].config
    one_epoch = replace(config, epochs=1)
    rows, seconds = [], []
    for n in counts:
        sim = simulate_particles(replace(base, n_particles=n), 13)
        particles, _ = particles_from_table(sim.localizations, dims=2)
        trained = train_vae(particles, one_epoch)
        s = trained.history[0]["seconds"]
        start = time.perf_counter()
        embed(trained, particles)
        embed_s = time.perf_counter() - start
        seconds.append(s)
        rows.append(f"| {n} | {s:.1f} | {s / n * 1000:.1f} | {embed_s:.1f} |")
        progress(f"cost: {n} particles, {s:.1f} s/epoch")
    slope, intercept = np.polyfit(counts, seconds, 1)
    fit = np.polyval([slope, intercept], counts)
    r2 = 1 - np.sum((np.array(seconds) - fit) ** 2) / np.sum((seconds - np.mean(seconds)) ** 2)
    if figures is not None:
        fig, ax = plt.subplots(figsize=(5, 3.5))
        ax.plot(counts, seconds, "o", label="measured")
        ax.plot(counts, fit, "-", label=f"linear fit, R² = {r2:.4f}")
        ax.set_xlabel("particles")
        ax.set_ylabel("seconds per epoch")
        ax.legend()
        figures.mkdir(parents=True, exist_ok=True)
        fig.savefig(figures / "vae-cost.png", dpi=120, bbox_inches="tight")
        plt.close(fig)
    head = "| particles | s/epoch | ms/particle | embed s |\n|---|---|---|---|"
    return (
        head
        + "\n"
        + "\n".join(rows)
        + f"\n\nLinear fit: {slope * 1000:.2f} ms/particle + {intercept:.1f} s, R² = {r2:.4f}."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sets, a few minutes")
    parser.add_argument("--epochs", type=int, default=VaeConfig.epochs)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument(
        "--sections", nargs="+", default=["simulated", "robustness", "real", "cost"]
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="KEY=VALUE[,KEY=VALUE]",
        help="a VaeConfig change for the variants section (repeatable)",
    )
    parser.add_argument("--append", type=Path, help="append the results to this markdown file")
    parser.add_argument("--figures", type=Path, help="write PNG figures into this folder")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = VaeConfig(epochs=args.epochs)
    started = time.perf_counter()
    parts = []
    titles = {
        "simulated": "Simulated particles: best latent |ρ| per parameter (PCA baseline alongside)",
        "robustness": "Robustness to missing localizations (2D NPC, true radius)",
        "real": "Real registered NPCs (../shared/data/particles)",
        "cost": "Cost: time per epoch vs number of 2D NPC particles (~155 locs each)",
        "variants": "Training variants on the 2D NPC set (true radius)",
        "factors": "Factors sharing the latent space (2D NPC)",
    }
    for section in args.sections:
        progress(f"section {section}")
        if section == "simulated":
            text = simulated_section(config, args.quick, args.figures)
        elif section == "robustness":
            text = robustness_section(config, args.quick, args.figures)
        elif section == "real":
            text = real_section(config, args.figures)
        elif section == "cost":
            text = cost_section(config, args.quick, args.figures)
        elif section == "variants":
            text = variants_section(config, args.variant, args.quick)
        elif section == "factors":
            text = factors_section(config, args.quick)
        else:
            raise SystemExit(f"unknown section {section!r}")
        parts.append(f"**{titles[section]}**\n\n{text}")
        print(parts[-1] + "\n", flush=True)
    command = "python bench/vae.py " + " ".join(sys.argv[1:])
    record = (
        f"\n### {datetime.now(UTC):%Y-%m-%d} — `{command}`\n\n"
        f"Machine: {machine()}. torch threads {args.threads}; VaeConfig: epochs {config.epochs}, "
        f"latent_dim {config.latent_dim}, batch {config.batch_size}, lr {config.lr}, "
        f"beta {config.beta}, warm-up {config.warmup_steps} steps, max_points "
        f"{config.max_points}, rotate {config.rotate}, recentre {config.recentre}, seeds "
        f"{config.seeds}, population_norm {config.population_norm}. "
        f"Total {time.perf_counter() - started:.0f} s.\n\n" + "\n\n".join(parts) + "\n"
    )
    if args.append:
        add_to_section(args.append, HEADER, record)
        progress(f"appended to {args.append}")


if __name__ == "__main__":
    main()
