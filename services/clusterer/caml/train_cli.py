"""`pointillist clusterer train caml`: train a CAML network and write its weights."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click
import torch
from tqdm import tqdm

from pointillist.clusterer.caml.model import ARCHITECTURES
from pointillist.clusterer.caml.training import (
    ScenarioSource,
    SimulatedSource,
    TrainConfig,
    read_labelled_files,
    train,
)
from pointillist.core.errors import InvalidInput
from pointillist.simulator.clusters import SCENARIOS


@click.command("caml")
@click.option("--model", type=click.Choice(sorted(ARCHITECTURES)), required=True)
@click.option(
    "--scenario",
    type=click.Choice(sorted(SCENARIOS)),
    default=None,
    help="Train on fields of this pointillist.simulator scenario (default: CAML's own "
    "random round-cluster scenarios, with fibres for the multi-class model).",
)
@click.option("--blinking", is_flag=True, help="With --scenario: multiple blinking.")
@click.option(
    "--train-files",
    "train_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Labelled CSV (x, y in nm, index: 0 = not clustered); repeat for several fields.",
)
@click.option("--samples", type=int, default=200_000, show_default=True)
@click.option("--validation-samples", type=int, default=None, help="Default: samples / 5.")
@click.option("--minutes", type=float, default=8.0, show_default=True, help="Wall-time budget.")
@click.option("--max-epochs", type=int, default=200, show_default=True)
@click.option("--batch-size", type=int, default=256, show_default=True)
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option("--per-field", type=int, default=300, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=int, default=2, show_default=True, help="CPU threads for torch.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:1 ...")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
def caml(
    model: str,
    scenario: str | None,
    blinking: bool,
    train_files: tuple[Path, ...],
    samples: int,
    validation_samples: int | None,
    minutes: float,
    max_epochs: int,
    batch_size: int,
    lr: float,
    per_field: int,
    seed: int,
    threads: int,
    device: str,
    output: Path,
) -> None:
    """Train CAML network MODEL on labelled localizations and write OUTPUT (+ .json).

    Models: dense100 (paper's XPILJZ), lstm100 (07VEJJ), lstm1000 (87B144),
    multiclass1000 (3TXKFS: non-clustered / round / fibre).
    """
    if scenario is not None and train_files:
        raise click.UsageError("give --scenario or --train-files, not both")
    if blinking and scenario is None:
        raise click.UsageError("--blinking needs --scenario")
    torch.set_num_threads(threads)
    try:
        config = TrainConfig(
            model=model,
            samples=samples,
            validation_samples=validation_samples,
            minutes=minutes,
            max_epochs=max_epochs,
            batch_size=batch_size,
            lr=lr,
            per_field=per_field,
            seed=seed,
            device=device,
        )
        if train_files:
            source = read_labelled_files(train_files)
        elif scenario is not None:
            if ARCHITECTURES[model].multiclass:
                raise InvalidInput("simulator scenarios have no round/fibre classes")
            source = ScenarioSource(scenario, blinking)
        else:
            source = SimulatedSource()
    except InvalidInput as exc:
        raise click.UsageError(str(exc)) from None
    bars: dict[str, tqdm] = {}

    def on_data(stage: str, done: int, wanted: int) -> None:
        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = tqdm(total=wanted, unit="sample", desc=f"{stage} data")
        bar.n = done
        bar.refresh()
        if done >= wanted:
            bar.close()

    epochs = tqdm(total=max_epochs, unit="epoch", desc=f"train {model}")

    def on_epoch(epoch: int, log: dict) -> None:
        val = log["validation"]
        epochs.n = epoch
        epochs.set_postfix(
            loss=f"{log['loss']:.4f}", val_acc=f"{val['accuracy']:.4f}", val_f1=f"{val['f1']:.4f}"
        )

    args = sys.argv[sys.argv.index("caml") + 1 :] if "caml" in sys.argv else sys.argv[1:]
    command = "pointillist clusterer train caml " + shlex.join(args)
    try:
        meta = train(config, source, output, on_epoch=on_epoch, on_data=on_data, command=command)
    finally:
        epochs.close()
    val = meta["validation"]
    click.echo(
        f"wrote {output} ({meta['samples']} samples, {meta['epochs']} epochs, "
        f"{meta['training_seconds'] / 60:.1f} min); best epoch {meta['best_epoch']}: "
        f"validation accuracy {val['accuracy']:.4f}, F1 {val['f1']:.4f}"
    )
