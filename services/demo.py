"""`pointillist demo`: a complete pipeline on simulated data through the running stack.

Starts the stack (`pointillist.stack`), asks the simulator to acquire a movie of
microtubule-like filaments and stream it over the bus as a microscope would. When the
localizer runs in the stack it consumes the frames and the demo collects its
localizations; otherwise the demo reads the frames itself. The report shows a raw frame,
the widefield image, the super-resolution rendering and, with a localizer, its accuracy
against the ground truth. The demo grows with each method service.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import click
import matplotlib.pyplot as plt
import numpy as np
from google.protobuf import struct_pb2

from pointillist.core.bus import connect, frames_from_proto
from pointillist.core.render import render_gaussian
from pointillist.core.report import Report
from pointillist.core.rpc import channel
from pointillist.core.runspec import new_run_id
from pointillist.core.table import LocalizationTable
from pointillist.stack import Stack
from pointillist.v1 import run_pb2, simulator_pb2, simulator_pb2_grpc

#: The demo acquisition: 64x64 px of 100 nm, filaments, EMCCD (simulator defaults otherwise).
ACQUISITION = {
    "n_frames": 300,
    "height_px": 64,
    "width_px": 64,
    "emitters": {"structure": "microtubules", "n_filaments": 3},
    "blinking": {"photons": 3000, "t_off_frames": 2000},
    "background_photons": 30,
}
PIXEL_NM = 100.0


def _prometheus_value(base_url: str, query: str) -> float | None:
    """One instant-vector value from Prometheus's HTTP API (None when it has none yet)."""
    url = f"{base_url}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(url, timeout=5) as resp:
        result = json.load(resp)["data"]["result"]
    return float(result[0]["value"][1]) if result else None


async def _stream_acquisition(
    stack: Stack, run_id: str, n_frames: int, rate_hz: float, localizer: bool
) -> dict:
    """Start the acquisition over gRPC; collect localizations (or frames) and truth."""
    params = struct_pb2.Struct()
    params.update({**ACQUISITION, "n_frames": n_frames})
    sim = simulator_pb2.SimulationRequest(params=params, seed=1)
    request = simulator_pb2.AcquisitionRequest(
        run_id=run_id,
        frame_rate_hz=rate_hz,
        frames_per_batch=20,
        publish_ground_truth=True,
        frames=sim,
    )
    frames: dict[int, np.ndarray] = {}
    locs: list[LocalizationTable] = []
    truth: list[LocalizationTable] = []

    async def on_frames(d) -> None:
        frames[d.message.first_frame] = np.array(d.frames)

    async def on_locs(d) -> None:
        locs.append(d.table)

    async def on_truth(d) -> None:
        truth.append(d.table)

    durable = f"demo-{run_id}"
    bus = await connect(stack.nats_url, name="pointillist-demo")
    try:
        data = (
            bus.consumer("locs", durable, run_id=run_id)
            if localizer
            else bus.consumer("frames", durable, run_id=run_id)
        )
        async with (
            data as dc,
            bus.consumer("truth", durable, run_id=run_id) as tc,
            channel(stack.endpoints()["simulator"]["grpc"]) as chan,
        ):
            stub = simulator_pb2_grpc.SimulatorStub(chan)
            t0 = time.monotonic()
            await stub.StartAcquisition(request)
            await asyncio.wait_for(
                asyncio.gather(
                    dc.run(on_locs, until_complete=run_id, last_seq_key="frames")
                    if localizer
                    else dc.run(on_frames, until_complete=run_id),
                    tc.run(on_truth, until_complete=run_id),
                ),
                timeout=900,
            )
            elapsed = time.monotonic() - t0
            if localizer:  # the frames went to the localizer: re-simulate them for the figure
                async for batch in stub.SimulateFrames(sim):
                    frames[batch.first_frame] = frames_from_proto(batch)
        status = await bus.runs.get(run_id)
    finally:
        await bus.close()
    return {
        "movie": np.concatenate([frames[k] for k in sorted(frames)]),
        "locs": LocalizationTable.concat(t for t in locs if len(t)) if localizer else None,
        "truth": LocalizationTable.concat(truth),
        "elapsed_s": elapsed,
        "status": status,
    }


def _sr_figure(
    report: Report, table: LocalizationTable, name: str, caption: str, shape: tuple[int, int]
) -> None:
    sr = render_gaussian(
        table["x"],
        table["y"],
        pixel_size_nm=10,
        sigma_nm=10,
        extent_nm=(0, shape[1] * PIXEL_NM, 0, shape[0] * PIXEL_NM),
    )
    report.rendering(sr, name, caption, flip_y=True, saturate_percentile=99.8)


def run_demo(out_dir: Path, n_frames: int = 300, rate_hz: float = 0.0) -> Path:
    """Run the demo end to end; returns the path of report.md."""
    report = Report("Pointillist demo", out_dir)
    run_id = new_run_id("demo")
    with (
        tempfile.TemporaryDirectory(prefix="pointillist-demo-") as data_dir,
        Stack(data_dir, nats_port=None) as stack,
    ):
        services = [c.name for c in stack.children]
        result = asyncio.run(
            _stream_acquisition(stack, run_id, n_frames, rate_hz, "localizer" in services)
        )
        prom = stack.endpoints().get("prometheus", {}).get("http")
        scraped = None
        deadline = time.monotonic() + 20
        while prom and scraped is None and time.monotonic() < deadline:
            scraped = _prometheus_value(prom, "sum(pointillist_simulator_frames_published_total)")
            time.sleep(1)
    movie, truth, locs = result["movie"], result["truth"], result["locs"]
    report.text(
        f"Run {run_id}: the simulator acquired {len(movie)} frames of {movie.shape[1]}x"
        f"{movie.shape[2]} px and streamed them over NATS JetStream in "
        f"{result['elapsed_s']:.1f} s ({len(movie) / result['elapsed_s']:.0f} frames/s end to "
        f"end). Stack: NATS, {', '.join(services)}."
    )
    rows = [
        {"quantity": "frames", "value": len(movie)},
        {"quantity": "true emitter localizations", "value": len(truth)},
        {"quantity": "run state", "value": run_pb2.RunState.Name(result["status"].state)},
        {
            "quantity": "frames published (from Prometheus)",
            "value": scraped if prom else "Prometheus not installed",
        },
    ]
    if locs is not None:
        from pointillist.localizer.evaluation import evaluate

        ev = evaluate(locs, truth)
        rows += [
            {"quantity": "localizations (localizer service)", "value": len(locs)},
            {"quantity": "Jaccard index vs truth", "value": f"{ev.jaccard:.3f}"},
            {"quantity": "lateral RMSE vs truth [nm]", "value": f"{ev.rmse_lateral_nm:.1f}"},
            {"quantity": "lateral efficiency", "value": f"{ev.efficiency_lateral:.3f}"},
        ]
    report.table(rows)
    fig, axes = plt.subplots(1, 2, figsize=(10, 5))
    axes[0].imshow(movie[len(movie) // 2], cmap="gray")
    axes[0].set_title(f"raw frame {len(movie) // 2} (ADU)")
    axes[1].imshow(movie.mean(axis=0), cmap="gray")
    axes[1].set_title("mean of all frames (widefield)")
    for ax in axes:
        ax.set_axis_off()
    report.figure(fig, "frames", "A raw camera frame and the widefield image of the movie.")
    shape = movie.shape[1:]
    if locs is not None:
        _sr_figure(
            report,
            locs,
            "super-resolution",
            f"Super-resolution rendering (10 nm pixels, 10 nm Gaussian) of the "
            f"{len(locs)} localizations the localizer service streamed back.",
            shape,
        )
    _sr_figure(
        report,
        truth,
        "ground-truth",
        f"The same rendering of the {len(truth)} true emitter positions (pnt.<run>.truth).",
        shape,
    )
    return report.write()


@click.command("demo")
@click.option(
    "-o",
    "--output-dir",
    default="demo-report",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Where the report goes.",
)
@click.option("--frames", "n_frames", default=300, show_default=True, help="Frames to acquire.")
@click.option(
    "--frame-rate",
    "rate_hz",
    default=0.0,
    show_default=True,
    help="Acquisition frame rate in Hz (0: as fast as the bus takes them).",
)
def demo_command(output_dir: str, n_frames: int, rate_hz: float) -> None:
    """Simulate an acquisition, stream it through the stack, write a report."""
    path = run_demo(Path(output_dir), n_frames, rate_hz)
    click.echo(f"report: {path} and {path.with_suffix('.html')}")
