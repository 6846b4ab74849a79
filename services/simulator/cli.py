"""`pointillist simulate frames|clusters|particles|projections ... -o FILE`."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import click
import pandas as pd
import yaml
from tqdm import tqdm

from pointillist.core.errors import InvalidInput
from pointillist.core.io import write_table
from pointillist.core.table import LocalizationTable
from pointillist.simulator.datasets import simulate_dataset
from pointillist.simulator.frames import FrameSimConfig, iter_frames


def parse_params(config_file: str | None, pairs: tuple[str, ...]) -> dict[str, Any]:
    """Parameters from a YAML file, then ``key=value`` pairs (values parsed as YAML;
    dotted keys reach nested configs, e.g. ``camera.em_gain=200``)."""
    params: dict[str, Any] = {}
    if config_file:
        loaded = yaml.safe_load(Path(config_file).read_text()) or {}
        if not isinstance(loaded, dict):
            raise InvalidInput(f"{config_file}: expected a mapping of parameters")
        params.update(loaded)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInput(f"--param expects KEY=VALUE, got {pair!r}")
        node = params
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise InvalidInput(f"--param {key}: {part!r} is not a nested config")
        node[leaf] = yaml.safe_load(value)
    return params


def _common(func):
    func = click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")(func)
    func = click.option(
        "--param",
        "-p",
        "pairs",
        multiple=True,
        metavar="KEY=VALUE",
        help="Override one parameter (repeatable).",
    )(func)
    func = click.option(
        "--config",
        "config_file",
        type=click.Path(exists=True, dir_okay=False),
        help="YAML file of parameters.",
    )(func)
    return click.option(
        "-o", "--output", required=True, type=click.Path(dir_okay=False), help="Output file."
    )(func)


@click.group("simulate")
def simulate() -> None:
    """Simulated data with ground truth (frames, clusters, particles, projections)."""


@simulate.command("frames")
@_common
def frames_command(output: str, config_file: str | None, pairs: tuple[str, ...], seed: int) -> None:
    """Camera frames as a TIFF stack (uint16), truth as <name>.truth.csv and the camera
    model as <name>.camera.yaml beside it."""
    import tifffile

    config = FrameSimConfig.from_params(parse_params(config_file, pairs))
    out = Path(output)
    truth_parts = []
    with (
        tifffile.TiffWriter(
            out, bigtiff=config.n_frames * config.height_px * config.width_px * 2 > 2**31
        ) as tif,
        tqdm(total=config.n_frames, unit="frame", desc="simulate") as bar,
    ):
        for frames, truth in iter_frames(config, seed):
            for frame in frames:
                tif.write(frame, contiguous=True)
            truth_parts.append(truth)
            bar.update(len(frames))
    truth_path = out.with_suffix(".truth.csv")
    write_table(LocalizationTable.concat(truth_parts), truth_path, format="csv")
    camera_path = out.with_suffix(".camera.yaml")
    camera_path.write_text(yaml.safe_dump(dataclasses.asdict(config.camera), sort_keys=False))
    click.echo(f"wrote {out} ({config.n_frames} frames), {truth_path}, {camera_path}")


def _dataset_command(kind: str):
    @_common
    def command(
        output: str, config_file: str | None, pairs: tuple[str, ...], seed: int, **named: Any
    ) -> None:
        params = parse_params(config_file, pairs)
        params.update({k: v for k, v in named.items() if v is not None})
        data = simulate_dataset(kind, params, seed)
        write_table(data.localizations, output)
        msg = f"wrote {output} ({len(data.localizations)} localizations, {data.subtype})"
        if data.truth:
            truth_path = Path(output).with_suffix(".truth.csv")
            pd.DataFrame(data.truth).to_csv(truth_path, index=False)
            msg += f", truth per particle in {truth_path}"
        if data.model_nm is not None:
            model_path = Path(output).with_suffix(".model.csv")
            x, y, z = data.model_nm.T
            pd.DataFrame({"x": x, "y": y, "z": z}).to_csv(model_path, index=False)
            msg += f", ground-truth 3D model in {model_path}"
        click.echo(msg)

    command.__name__ = f"{kind}_command"
    command.__doc__ = f"Simulated {kind} as a localization table (+ truth table)."
    return command


simulate.command("clusters")(
    click.option(
        "--scenario",
        help="scenario5|scenario6|scenario8|scenario9|c_shape|ring|multiscale_rings|npc",
    )(_dataset_command("clusters"))
)
simulate.command("particles")(
    click.option("--kind", help="npc2d|npc3d|tetrahedron")(_dataset_command("particles"))
)
simulate.command("projections")(
    click.option("--model", help="torus|cylinders|rabbit")(_dataset_command("projections"))
)
