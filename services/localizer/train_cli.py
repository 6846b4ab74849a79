"""`pointillist localizer train`: train the CNN localizer on simulated frames."""

from __future__ import annotations

from pathlib import Path

import click
import torch
from tqdm import tqdm

from pointillist.core.errors import InvalidInput
from pointillist.localizer.presets import PRESETS, SAMPLINGS, get_preset
from pointillist.localizer.training import TrainConfig, checkpoint_path, train


@click.group()
def localizer() -> None:
    """Localize emitters in camera frames; train the CNN localizer."""


@localizer.command("train")
@click.option("--preset", type=click.Choice(sorted(PRESETS)), required=True)
@click.option("--sampling", type=click.Choice(SAMPLINGS), default="structure", show_default=True)
@click.option("--minutes", type=float, default=None, help="Wall-time budget.")
@click.option("--steps", type=int, default=None, help="Step budget (first budget reached wins).")
@click.option("--batch-size", type=int, default=16, show_default=True)
@click.option("--lr", type=float, default=6e-4, show_default=True)
@click.option("--channels", type=int, default=None, help="Network width (default: preset's).")
@click.option("--checkpoint-every", type=int, default=100, show_default=True)
@click.option("--validate-every", type=int, default=200, show_default=True)
@click.option("--validation-size", type=int, default=32, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=int, default=2, show_default=True, help="CPU threads for torch.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:1 ...")
@click.option("--resume/--no-resume", default=False, help="Continue from the checkpoint.")
@click.option(
    "--init-from",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Fine-tune: start from these weights (same preset) instead of a random network.",
)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
def train_command(
    preset: str,
    sampling: str,
    minutes: float | None,
    steps: int | None,
    batch_size: int,
    lr: float,
    channels: int | None,
    checkpoint_every: int,
    validate_every: int,
    validation_size: int,
    seed: int,
    threads: int,
    device: str,
    resume: bool,
    init_from: Path | None,
    output: Path,
) -> None:
    """Train on frames simulated on the fly and write the weights to OUTPUT.

    A checkpoint (OUTPUT with suffix .ckpt) is written every --checkpoint-every steps;
    --resume continues from it. Metadata goes beside the weights as JSON. With
    --init-from the run fine-tunes trained weights (new optimiser and learning-rate
    schedule); the metadata names the parent and counts the steps of both.
    """
    torch.set_num_threads(threads)
    try:
        config = TrainConfig(
            steps=steps,
            minutes=minutes,
            batch_size=batch_size,
            lr=lr,
            channels=channels,
            checkpoint_every=checkpoint_every,
            validate_every=validate_every,
            validation_size=validation_size,
            seed=seed,
            device=device,
        )
    except InvalidInput as exc:
        raise click.UsageError(str(exc)) from None
    postfix: dict[str, str] = {}
    with tqdm(total=steps, unit="step", desc=f"train {preset}/{sampling}") as bar:

        def on_step(step: int, total: int | None, log: dict) -> None:
            bar.n = step
            postfix["loss"] = f"{log['loss_avg']:.1f}"
            if "validation" in log:
                val = log["validation"]
                postfix["JI"] = f"{val['jaccard']:.3f}"
                postfix["rmse"] = f"{val['rmse_lateral_nm']:.1f}"
            bar.set_postfix(postfix, refresh=False)
            bar.refresh()

        try:
            meta = train(
                get_preset(preset),
                sampling,
                output,
                config,
                resume=resume,
                init=init_from,
                on_step=on_step,
            )
        except InvalidInput as exc:
            raise click.UsageError(str(exc)) from None
    val = meta["validation"]
    click.echo(
        f"wrote {output} ({meta['steps']} steps, {meta['training_seconds'] / 60:.1f} min); "
        f"validation JI {_number(val.get('jaccard'))}, "
        f"lateral RMSE {_number(val.get('rmse_lateral_nm'))} nm, "
        f"axial RMSE {_number(val.get('rmse_axial_nm'))} nm; "
        f"checkpoint {checkpoint_path(output)}"
    )


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"
