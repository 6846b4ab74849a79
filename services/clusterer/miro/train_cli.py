"""`pointillist clusterer train miro`: few-shot training of a MIRO model for a preset."""

from __future__ import annotations

import os
from pathlib import Path

import click
import torch
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from pointillist.clusterer.miro.clusterer import load_model, save_model
from pointillist.clusterer.miro.examples import example_fields
from pointillist.clusterer.miro.presets import PRESETS, get_preset
from pointillist.clusterer.miro.training import TrainSettings, train_miro

DEFAULT_NIEVES_DIR = "../shared/data/nieves2023"


@click.command("miro")
@click.option("--scenario", type=click.Choice(sorted(PRESETS)), required=True, help="Preset.")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=lambda: os.environ.get("POINTILLIST_NIEVES_DIR", DEFAULT_NIEVES_DIR),
    show_default="$POINTILLIST_NIEVES_DIR or ../shared/data/nieves2023",
    help="Root of the Nieves et al. benchmark (benchmark scenarios only).",
)
@click.option("--minutes", type=float, default=8.0, show_default=True, help="Wall-time budget.")
@click.option("--max-steps", type=int, default=100_000, show_default=True)
@click.option("--batch-fields", type=int, default=4, show_default=True)
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--huber-nm",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Smooth-L1 loss, quadratic below this error (nm); 0 = the paper's L1.",
)
@click.option(
    "--min-inside",
    type=click.FloatRange(0, 1, min_open=True),
    default=1.0,
    show_default=True,
    help="A cluster the window cuts is a target when this fraction of it is inside.",
)
@click.option(
    "--background-curriculum",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Fraction of the budget over which the background grows from 10 % to full density.",
)
@click.option("--threads", type=int, default=1, show_default=True, help="CPU threads for torch.")
@click.option("--device", default=None, help="cpu, cuda, ... (default: cuda when present).")
@click.option(
    "--init",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Continue training from this model file (same preset).",
)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
def train_miro_command(
    scenario: str,
    data_dir: Path,
    minutes: float,
    max_steps: int,
    batch_fields: int,
    lr: float,
    seed: int,
    huber_nm: float,
    min_inside: float,
    background_curriculum: float,
    threads: int,
    device: str | None,
    init: Path | None,
    output: Path,
) -> None:
    """Train MIRO on augmented fields built from the preset's three example fields.

    Writes OUTPUT (.pt) and its metadata (.json); DBSCAN's parameters for the squeezed
    points are tuned on the example fields at the end.
    """
    torch.set_num_threads(threads)
    preset = get_preset(scenario)
    fields = example_fields(preset, data_dir, seed=seed)
    initial = None
    if init is not None:
        start = load_model(init)
        if start.preset.name != preset.name:
            raise click.UsageError(f"--init model is for {start.preset.name}, not {preset.name}")
        initial = start.model.state_dict()
    settings = TrainSettings(
        minutes=minutes,
        max_steps=max_steps,
        batch_fields=batch_fields,
        learning_rate=lr,
        seed=seed,
        huber_nm=huber_nm,
        min_inside_fraction=min_inside,
        background_curriculum=background_curriculum,
    )
    with tqdm(total=round(minutes * 60), unit="s", desc=f"train miro/{scenario}") as bar:

        def on_step(step: int, loss: float, elapsed_min: float) -> None:
            bar.n = min(round(elapsed_min * 60), bar.total)
            bar.set_postfix(step=step, loss=f"{loss:.4f}", refresh=False)
            bar.refresh()

        # numpy's BLAS threads thrash on small eigenproblems when cores are shared
        with threadpool_limits(limits=threads):
            trained = train_miro(
                preset, fields, settings, device=device, initial_state=initial, on_step=on_step
            )
    if init is not None:
        trained.history["initialised_from"] = str(init)
        earlier = start.history
        h = trained.history
        h["total_steps"] = earlier.get("total_steps", earlier.get("steps", 0)) + h["steps"]
        h["total_training_minutes"] = (
            earlier.get("total_training_minutes", earlier.get("training_minutes", 0.0))
            + h["training_minutes"]
        )
    save_model(trained, output)
    h = trained.history
    click.echo(
        f"wrote {output} ({h['steps']} steps, {h['training_minutes']:.1f} min, "
        f"final loss {h['final_loss']:.4f}); DBSCAN after MIRO: eps {trained.eps_nm:.1f} nm, "
        f"min_samples {trained.min_samples} (ARI {h['post_dbscan']['score']:.3f} on the "
        "example fields)"
    )
