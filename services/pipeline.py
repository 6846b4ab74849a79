"""`pointillist run spec.yaml`: execute a saved RunSpec locally, without the bus.

A run loads its source (a file or a simulation) into a `RunContext`, then applies its
steps in order. Steps are registered by name; each service registers its own (e.g. the
localizer's ``localize``) in the module named in `STEP_MODULES`, imported when used.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import numpy as np
from google.protobuf import json_format

from pointillist.core import runspec
from pointillist.core.errors import InvalidInput
from pointillist.core.io import read_table, write_table
from pointillist.core.render import render_gaussian, render_histogram
from pointillist.core.report import Report
from pointillist.core.table import LocalizationTable
from pointillist.v1 import run_pb2


@dataclass
class RunContext:
    """What a run has so far: frames, localizations, truth, and the files it wrote."""

    spec: run_pb2.RunSpec
    out_dir: Path
    report: Report
    frames: np.ndarray | None = None
    truth: LocalizationTable | None = None
    locs: LocalizationTable | None = None
    particle_truth: dict[str, np.ndarray] = field(default_factory=dict)
    camera: dict[str, Any] | None = None  # camera model of `frames` (CameraModel fields)
    counters: dict[str, int] = field(default_factory=dict)


Step = Callable[[RunContext, dict[str, Any]], None]
STEPS: dict[str, Step] = {}
#: step name -> module that registers it (imported on first use).
STEP_MODULES: dict[str, str] = {
    "localize": "pointillist.localizer.steps",
    "cluster": "pointillist.clusterer.steps",
    "vae": "pointillist.vae.steps",
    "reconstruct": "pointillist.reconstructor.steps",
}


def register_step(name: str) -> Callable[[Step], Step]:
    def decorate(func: Step) -> Step:
        STEPS[name] = func
        return func

    return decorate


def _step(name: str) -> Step:
    if name not in STEPS and name in STEP_MODULES:
        importlib.import_module(STEP_MODULES[name])
    if name not in STEPS:
        raise InvalidInput(
            f"unknown step {name!r}; known: {sorted(set(STEPS) | set(STEP_MODULES))}"
        )
    return STEPS[name]


@register_step("render")
def render_step(ctx: RunContext, params: dict[str, Any]) -> None:
    """Render a super-resolution image (method histogram|gaussian) of locs or truth."""
    source = params.pop("source", "locs")
    pixel_size_nm = float(params.pop("pixel_size_nm", 10.0))
    sigma_nm = float(params.pop("sigma_nm", 10.0))
    method = params.pop("method", "gaussian")
    if params:
        raise InvalidInput(f"render: unknown parameter(s) {sorted(params)}")
    table = {"locs": ctx.locs, "truth": ctx.truth}.get(source)
    if table is None:
        raise InvalidInput(f"render: the run has no {source!r} table to render")
    if method == "histogram":
        img = render_histogram(table["x"], table["y"], pixel_size_nm)
    elif method == "gaussian":
        img = render_gaussian(table["x"], table["y"], pixel_size_nm, sigma_nm)
    else:
        raise InvalidInput(f"render: method must be histogram or gaussian, got {method!r}")
    ctx.report.rendering(
        img,
        f"render-{source}",
        f"{method} rendering of {len(table)} {source} localizations, {pixel_size_nm:g} nm pixels",
    )
    np.save(ctx.out_dir / f"render-{source}.npy", img.image)


@register_step("export")
def export_step(ctx: RunContext, params: dict[str, Any]) -> None:
    """Write the localizations (or truth) to ``path`` in any supported format."""
    source = params.pop("source", "locs")
    path = params.pop("path", "locs.csv")
    fmt = params.pop("format", None)
    table = {"locs": ctx.locs, "truth": ctx.truth}.get(source)
    if table is None:
        raise InvalidInput(f"export: the run has no {source!r} table")
    target = Path(path) if Path(path).is_absolute() else ctx.out_dir / path
    write_table(table, target, format=fmt, **params)
    ctx.report.text(f"Exported {len(table)} {source} rows to {target.name}.")


def load_source(ctx: RunContext) -> None:
    """Fill the context from the spec's data source."""
    source = ctx.spec.source
    which = source.WhichOneof("source")
    if which == "file":
        ctx.locs = read_table(source.file)
    elif which == "simulation":
        sim = source.simulation
        params = json_format.MessageToDict(sim.params)
        if sim.kind == "frames":
            from pointillist.simulator.frames import FrameSimConfig, simulate_frames

            config = FrameSimConfig.from_params(params)
            result = simulate_frames(config, sim.seed)
            ctx.frames, ctx.truth = result.frames, result.truth
            ctx.camera = dataclasses.asdict(config.camera)
            ctx.counters["frames"] = len(result.frames)
        else:
            from pointillist.simulator.datasets import simulate_dataset

            data = simulate_dataset(sim.kind, params, sim.seed)
            ctx.locs, ctx.particle_truth = data.localizations, data.truth
    elif which == "subject":
        raise InvalidInput("a bus subject source needs the running stack: use the service API")
    else:
        raise InvalidInput("run spec has no data source")
    for name, table in (("localizations", ctx.locs), ("truth", ctx.truth)):
        if table is not None:
            ctx.counters[name] = len(table)


def _step_params(step: run_pb2.PipelineStep) -> dict[str, Any]:
    """A step's params, with its `method` field as params["method"] unless params set one."""
    params = json_format.MessageToDict(step.params)
    if step.method and "method" not in params:
        params["method"] = step.method
    return params


def run_pipeline(spec: run_pb2.RunSpec, out_dir: str | Path | None = None) -> run_pb2.RunStatus:
    """Run ``spec``; writes spec.yaml, status.yaml, outputs and report.md to ``out_dir``."""
    spec = run_pb2.RunSpec.FromString(spec.SerializeToString())
    if not spec.run_id:
        spec.run_id = runspec.new_run_id()
    out = Path(out_dir or spec.output_dir or Path("runs") / spec.run_id)
    ctx = RunContext(spec, out, Report(f"Run {spec.name or spec.run_id}", out))
    runspec.write_spec(spec, out / "spec.yaml")
    status = run_pb2.RunStatus(run_id=spec.run_id, state=run_pb2.RUN_STATE_RUNNING, spec=spec)
    status.started.GetCurrentTime()
    steps = [(s.name, _step(s.name), _step_params(s)) for s in spec.steps]
    with click.progressbar(length=len(steps) + 1, label="run", file=None) as bar:
        load_source(ctx)
        bar.update(1)
        for name, step, params in steps:
            ctx.report.heading(name)
            step(ctx, params)
            bar.update(1)
    status.state = run_pb2.RUN_STATE_SUCCEEDED
    status.progress = 1.0
    status.counters.update(ctx.counters)
    status.updated.GetCurrentTime()
    ctx.report.table([{"counter": k, "value": v} for k, v in ctx.counters.items()])
    ctx.report.write()
    (out / "status.yaml").write_text(runspec.yaml_dump_message(status))
    return status


@click.command("run")
@click.argument("spec_file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--input",
    "input_file",
    type=click.Path(exists=True, dir_okay=False),
    help="Run the saved pipeline on this file instead of the spec's source.",
)
@click.option("-o", "--output-dir", type=click.Path(file_okay=False), help="Output folder.")
def run_command(spec_file: str, input_file: str | None, output_dir: str | None) -> None:
    """Run a saved pipeline (a RunSpec YAML) locally."""
    spec = runspec.read_spec(spec_file)
    if input_file:
        spec.source.file = input_file
    status = run_pipeline(spec, output_dir)
    click.echo(
        f"run {status.run_id}: {run_pb2.RunState.Name(status.state)}; "
        f"report in {Path(output_dir or spec.output_dir or 'runs/' + status.run_id)}"
    )
