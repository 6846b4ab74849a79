"""`pointillist localize movie.tif -o locs.csv`: a TIFF/OME-TIFF movie to a localization table.

Reads the movie lazily in chunks, localizes with the CNN or the MLE fitter (the same
`Engine` the service uses), optionally merges blinking, filters, corrects drift, and writes
ThunderSTORM CSV, Picasso HDF5 or native Parquet (by extension). The camera model comes
from a YAML file (``--camera``; by default ``<movie>.camera.yaml`` as written by
``pointillist simulate frames``) with flags overriding single values.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import click
import yaml
from tqdm import tqdm

from pointillist.core.errors import InvalidInput
from pointillist.core.io import write_table
from pointillist.core.table import LocalizationTable
from pointillist.localizer.calibration import CameraCalibration
from pointillist.localizer.engine import METHODS, Engine
from pointillist.localizer.movie import TiffMovie
from pointillist.localizer.window import FrameWindow

CAMERA_FLAGS = {
    "camera_kind": "kind",
    "baseline_adu": "baseline_adu",
    "e_per_adu": "e_per_adu",
    "em_gain": "em_gain",
    "quantum_efficiency": "quantum_efficiency",
    "read_noise_e": "read_noise_e",
    "pixel_size_nm": "pixel_size_nm",
    "offset_map": "offset_adu",
    "variance_map": "variance_adu2",
    "gain_map": "gain_e_per_adu",
}


def camera_calibration(
    movie: Path, camera_file: str | None, flags: dict[str, Any]
) -> CameraCalibration:
    """The camera model from the YAML file (or the movie's sidecar) and flag overrides."""
    params: dict[str, Any] = {}
    path = Path(camera_file) if camera_file else movie.with_suffix(".camera.yaml")
    if camera_file or path.exists():
        try:
            loaded = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise InvalidInput(f"{path}: cannot read the camera model: {exc}") from None
        if not isinstance(loaded, dict):
            raise InvalidInput(f"{path}: the camera model must be a mapping")
        params.update(loaded)
    params.update({CAMERA_FLAGS[k]: v for k, v in flags.items() if v is not None})
    if not params:
        raise InvalidInput(
            f"no camera model: pass --camera FILE (or put {path.name} beside the movie) or "
            "the --camera-kind/--baseline-adu/--e-per-adu/--em-gain/--quantum-efficiency/"
            "--read-noise-e/--pixel-size-nm flags"
        )
    return CameraCalibration.from_dict(params)


def localize_movie(
    movie: TiffMovie,
    engine: Engine,
    calibration: CameraCalibration,
    chunk_frames: int = 100,
    progress: bool = True,
) -> LocalizationTable:
    """Localizations of the whole movie, chunk by chunk with exact temporal context."""
    window = FrameWindow(engine.context)
    tables = []
    with tqdm(total=movie.n_frames, unit="frame", desc="localize", disable=not progress) as bar:
        for first, frames in movie.chunks(chunk_frames):
            for chunk in window.push(frames, first):
                tables.append(engine.localize(chunk, calibration))
            bar.update(len(frames))
        for chunk in window.flush():
            tables.append(engine.localize(chunk, calibration))
    tables = [t for t in tables if len(t)]
    return LocalizationTable.concat(tables) if tables else engine.empty()


@click.command("localize")
@click.argument("movie_path", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="Output table (.csv ThunderSTORM, .hdf5 Picasso, .parquet native).",
)
@click.option("--method", type=click.Choice(METHODS), default="cnn", show_default=True)
@click.option(
    "--model",
    default="2d",
    show_default=True,
    help="CNN preset (2d, astig3d) or weights file; for mle: 2d or astig3d.",
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda.")
@click.option(
    "--camera",
    "camera_file",
    type=click.Path(dir_okay=False),
    help="Camera model YAML (default: <movie>.camera.yaml if present).",
)
@click.option("--camera-kind", type=click.Choice(["emccd", "scmos", "ccd"]))
@click.option("--baseline-adu", type=float)
@click.option("--e-per-adu", type=float)
@click.option("--em-gain", type=float)
@click.option("--quantum-efficiency", type=float)
@click.option("--read-noise-e", type=float)
@click.option("--pixel-size-nm", type=float)
@click.option("--offset-map", type=click.Path(exists=True), help="sCMOS offset map (.npy/.tif).")
@click.option("--variance-map", type=click.Path(exists=True), help="sCMOS variance map (ADU²).")
@click.option("--gain-map", type=click.Path(exists=True), help="sCMOS gain map (e-/ADU).")
@click.option("--chunk-frames", default=100, show_default=True, help="Frames read at a time.")
@click.option(
    "--merge-distance-nm",
    type=float,
    help="Merge localizations in consecutive frames closer than this.",
)
@click.option("--min-photons", type=float, help="Drop localizations with fewer photons.")
@click.option("--max-uncertainty-nm", type=float, help="Drop less precise localizations.")
def localize(
    movie_path: str,
    output: str,
    method: str,
    model: str,
    device: str,
    camera_file: str | None,
    chunk_frames: int,
    merge_distance_nm: float | None,
    min_photons: float | None,
    max_uncertainty_nm: float | None,
    **camera_flags: Any,
) -> None:
    """Localize every frame of a TIFF/OME-TIFF movie."""
    from pointillist.localizer.nena import estimate_nena
    from pointillist.localizer.postprocess import filter_localizations, merge_consecutive

    path = Path(movie_path)
    calibration = camera_calibration(path, camera_file, camera_flags)
    engine = Engine(method, model, device)
    with TiffMovie(path) as movie:
        table = localize_movie(movie, engine, calibration, chunk_frames)
    if min_photons is not None or max_uncertainty_nm is not None:
        table = filter_localizations(
            table,
            photons_range=None if min_photons is None else (min_photons, float("inf")),
            uncertainty_max_nm=max_uncertainty_nm,
        )
    if merge_distance_nm is not None:
        table = merge_consecutive(table, merge_distance_nm)
    if not len(table):
        raise click.ClickException("no localizations found; nothing written")
    write_table(table, output)
    message = f"wrote {output}: {len(table)} localizations ({method}, {model})"
    with contextlib.suppress(InvalidInput):  # too few adjacent-frame neighbours for NeNA
        message += f"; NeNA precision {estimate_nena(table).sigma_nm:.1f} nm"
    click.echo(message)
