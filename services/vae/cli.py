"""`pointillist vae train|analyze`: PC-VAE heterogeneity analysis of particles on files.

Particles are any table `pointillist.core.io` reads with a ``particle`` column (x, y, z
in nm), e.g. the registered NPCs of ``../shared/data/particles``. ``train`` fits a model
and saves it; ``analyze`` embeds the particles with it, estimates the model-based
parameters, bins along every latent dimension, fuses each bin into a super-particle
and writes the report (Markdown + HTML, PNG figures, latent.csv). Same code path as the
service (`pointillist.vae.engine`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from tqdm import tqdm

from pointillist.core.config import method_params
from pointillist.core.io import read_table
from pointillist.core.particles import Skipped, describe_skipped, particles_from_table
from pointillist.vae.analysis import analyze
from pointillist.vae.axes import AXES
from pointillist.vae.engine import (
    KINDS,
    check_kind,
    embed_table,
    kind_dims,
    summary_lines,
    vae_config,
)
from pointillist.vae.report import write_report
from pointillist.vae.training import TrainedVae, train_vae

KIND = click.option(
    "--kind",
    type=click.Choice(KINDS),
    help="Particle kind: its model-based parameters are estimated (radius, height); "
    "npc3d/tetrahedron read z.",
)


def report_skipped(skipped: list[Skipped]) -> None:
    """Say which particles were left out and why (first few), on stderr."""
    if skipped:
        click.echo(describe_skipped(skipped), err=True)


@click.group("vae")
def vae() -> None:
    """PC-VAE: continuous structural heterogeneity of particles (radius, height, labelling)."""


@vae.command("train")
@click.argument("particles_path", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Model .pt")
@KIND
@click.option("--epochs", type=int, help="Passes over the particles.")
@click.option("--latent-dim", type=int, help="Latent dimensions d [paper: 8].")
@click.option("--beta", type=float, help="KLD weight after the sigmoid warm-up.")
@click.option("--batch-size", type=int, help="Particles per step [paper: 8].")
@click.option("--max-points", type=int, help="Localizations per particle per step (subsample).")
@click.option("--seed", type=int, help="Random seed.")
@click.option("--device", help="auto, cpu, cuda or cuda:N.")
@click.option(
    "-p",
    "--param",
    "extra",
    multiple=True,
    metavar="KEY=VALUE",
    help="Any other VaeConfig field (value read as YAML); repeatable.",
)
def train(
    particles_path: str, output: str, kind: str | None, extra: tuple[str, ...], **named: Any
) -> None:
    """Train a PC-VAE on the particles of a table and save it."""
    config = vae_config(method_params(named, extra))
    dims = kind_dims(check_kind(kind))
    particles, skipped = particles_from_table(read_table(particles_path), dims=dims)
    report_skipped(skipped)
    click.echo(
        f"training on {len(particles.ids)} {particles.dims}D particles for "
        f"{config.epochs} epochs ...",
        err=True,
    )
    with tqdm(total=config.epochs, unit="epoch", desc="train", file=None) as bar:

        def progress(p: Any) -> None:
            bar.n = p.epoch  # 0-based: the epochs done
            bar.set_postfix(loss=f"{p.loss:.4g}", beta=f"{p.beta:.2g}", refresh=False)
            bar.refresh()

        trained = train_vae(particles, config, progress=progress)
        bar.n = config.epochs
        bar.refresh()
    out = Path(output)
    trained.save(out)
    history = out.with_suffix(".history.json")
    history.write_text(json.dumps(trained.history, indent=1))
    last = trained.history[-1] if trained.history else {}
    click.echo(f"wrote {out} (final loss {last.get('loss', float('nan')):.4g}) and {history}")


@vae.command("analyze")
@click.argument("particles_path", type=click.Path(exists=True, dir_okay=False))
@click.option("--model", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False), help="Report dir")
@KIND
@click.option("--bins", "n_bins", type=int, default=20, show_default=True, help="Bins per axis.")
@click.option(
    "--axes",
    type=click.Choice(AXES),
    default="latent",
    show_default=True,
    help="Bin along the latent dimensions or the independent axes of the latent means (ICA).",
)
def analyze_command(
    particles_path: str, model: str, output: str, kind: str | None, n_bins: int, axes: str
) -> None:
    """Embed particles with a trained model and write the heterogeneity report."""
    trained = TrainedVae.load(model)
    particles, skipped, latent = embed_table(trained, read_table(particles_path))
    report_skipped(skipped)
    with tqdm(desc="analyze", unit="step") as bar:

        def progress(stage: str, done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.set_description(stage, refresh=False)
            bar.refresh()

        analysis = analyze(
            particles, latent, kind=check_kind(kind), n_bins=n_bins, progress=progress, axes=axes
        )
    index = write_report(analysis, Path(output))
    click.echo(f"wrote {index}")
    for line in summary_lines(analysis):
        click.echo(line)
