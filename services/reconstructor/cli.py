"""`pointillist reconstruct VIEWS -o DIR`: HOLLy on a table of 2D views, with progress.

VIEWS is a localization table (ThunderSTORM CSV, Picasso HDF5, native Parquet) whose
``particle`` column names the view each localization belongs to — e.g. the output of
`pointillist simulate projections`, or clusters picked from an experiment — or a TIFF
stack of pre-rendered square views (one per page, structure centred) with --pixel-nm. The report
folder gets the rotatable 3D model (model_3d.html), PNG snapshots, the loss curve, the
points and poses as CSV (`pointillist.reconstructor.report`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import click
import numpy as np
from tqdm import tqdm

from pointillist.core.config import method_params, parse_params
from pointillist.core.errors import InvalidInput
from pointillist.core.io import read_table
from pointillist.core.particles import describe_skipped
from pointillist.reconstructor.engine import Settings, reconstruct_images, reconstruct_table
from pointillist.reconstructor.report import write_report
from pointillist.reconstructor.training import StepProgress


def read_model(path: str) -> np.ndarray:
    """An (M, 3) point model (x, y, z nm) from a localization table file."""
    table = read_table(path)
    missing = [c for c in ("x", "y", "z") if c not in table]
    if missing:
        raise InvalidInput(
            f"{path}: the ground-truth model needs x, y, z columns; missing {missing}"
        )
    return np.column_stack([np.asarray(table[c], dtype=np.float64) for c in ("x", "y", "z")])


@click.command("reconstruct")
@click.argument("views_path", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "-o",
    "--output",
    default="reconstruction",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Report folder.",
)
@click.option("--points", "n_points", type=int, help="Points in the 3D model [250].")
@click.option("--epochs", type=int, help="Passes over the views [60].")
@click.option("--runs", "n_runs", type=int, help="Independent runs (consensus and spread) [1].")
@click.option("--image-px", type=int, help="Image side in pixels, multiple of 32 [64].")
@click.option("--sigma-end-nm", type=float, help="Final input σ: the localization error [12].")
@click.option("--seed", type=int, help="Random seed of the first run.")
@click.option("--device", help="auto, cpu, cuda or cuda:N.")
@click.option("--pixel-nm", type=float, help="Pixel size of a TIFF stack of views (nm).")
@click.option(
    "--truth",
    "truth_path",
    type=click.Path(exists=True, dir_okay=False),
    help="Ground-truth model (x, y, z nm) to score the result against.",
)
@click.option(
    "-c",
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False),
    help="YAML/JSON file of ReconConfig fields (and n_runs).",
)
@click.option(
    "-p",
    "--param",
    "extra",
    multiple=True,
    metavar="KEY=VALUE",
    help="Any other ReconConfig field (value read as YAML); repeatable.",
)
def reconstruct(
    views_path: str,
    output: str,
    pixel_nm: float | None,
    truth_path: str | None,
    config_file: str | None,
    extra: tuple[str, ...],
    **named: Any,
) -> None:
    """Infer one 3D point model from 2D views of a structure in unknown poses (HOLLy)."""
    from_file = parse_params(Path(config_file).read_text(), config_file) if config_file else {}
    params = {**from_file, **method_params(named, extra)}
    settings = Settings().with_params(params)
    truth = read_model(truth_path) if truth_path else None
    images = views_path.lower().endswith((".tif", ".tiff"))
    if images and pixel_nm is None:
        raise InvalidInput("a TIFF stack of views needs --pixel-nm")
    if images:
        import tifffile

        stack = tifffile.imread(views_path)
        settings = Settings(
            dataclasses.replace(settings.config, image_px=stack.shape[-1]), settings.n_runs
        )
    config = settings.config
    click.echo(
        f"HOLLy: {settings.n_runs} run(s) x {config.epochs} epochs, {config.n_points} points, "
        f"{config.image_px}-px images ...",
        err=True,
    )
    with tqdm(total=settings.n_runs * config.epochs, unit="epoch", desc="reconstruct") as bar:

        def progress(run: int, p: StepProgress) -> None:
            bar.n = run * config.epochs + p.epoch
            bar.set_postfix(
                run=run, loss=f"{p.loss:.3f}", sigma_nm=f"{p.sigma_in_nm:.0f}", refresh=False
            )
            bar.refresh()

        if images:
            result = reconstruct_images(stack, pixel_nm, settings, truth, progress=progress)
        else:
            result = reconstruct_table(read_table(views_path), settings, truth, progress=progress)
        bar.n = bar.total
        bar.refresh()
    if result.skipped:
        click.echo(describe_skipped(result.skipped), err=True)
    files = write_report(result, Path(output))
    click.echo(f"wrote {files[0].parent}/ (report.html, model_3d.html, model.csv, poses.csv)")
    for line in result.summary_lines():
        click.echo(line)
