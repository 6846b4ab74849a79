"""`pointillist demo`: a complete pipeline on simulated data through the running stack.

Starts the stack (`pointillist.stack`), asks the simulator to acquire a movie of
microtubule-like filaments and stream it over the bus as a microscope would, consumes
what comes back with the method services that are installed, and writes a report with
figures. The demo grows with each method service.
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

from pointillist.core.bus import connect
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
    "emitters": {"structure": "microtubules"},
}


def _prometheus_value(base_url: str, query: str) -> float | None:
    """One instant-vector value from Prometheus's HTTP API (None when it has none yet)."""
    url = f"{base_url}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(url, timeout=5) as resp:
        result = json.load(resp)["data"]["result"]
    return float(result[0]["value"][1]) if result else None


async def _stream_acquisition(stack: Stack, run_id: str, n_frames: int, rate_hz: float) -> dict:
    """Start the acquisition over gRPC, consume frames and truth from the bus until it ends."""
    params = struct_pb2.Struct()
    params.update({**ACQUISITION, "n_frames": n_frames})
    request = simulator_pb2.AcquisitionRequest(
        run_id=run_id,
        frame_rate_hz=rate_hz,
        frames_per_batch=20,
        publish_ground_truth=True,
        frames=simulator_pb2.SimulationRequest(params=params, seed=1),
    )
    frames: dict[int, np.ndarray] = {}
    truth: list[LocalizationTable] = []

    async def on_frames(d) -> None:
        frames[d.message.first_frame] = np.array(d.frames)

    async def on_truth(d) -> None:
        truth.append(d.table)

    bus = await connect(stack.nats_url, name="pointillist-demo")
    try:
        async with (
            bus.consumer("frames", f"demo-{run_id}", run_id=run_id) as fc,
            bus.consumer("truth", f"demo-{run_id}", run_id=run_id) as tc,
            channel(stack.endpoints()["simulator"]["grpc"]) as chan,
        ):
            t0 = time.monotonic()
            await simulator_pb2_grpc.SimulatorStub(chan).StartAcquisition(request)
            await asyncio.wait_for(
                asyncio.gather(
                    fc.run(on_frames, until_complete=run_id),
                    tc.run(on_truth, until_complete=run_id),
                ),
                timeout=600,
            )
            elapsed = time.monotonic() - t0
        status = await bus.runs.get(run_id)
    finally:
        await bus.close()
    movie = np.concatenate([frames[k] for k in sorted(frames)])
    return {
        "movie": movie,
        "truth": LocalizationTable.concat(truth),
        "elapsed_s": elapsed,
        "status": status,
    }


def run_demo(out_dir: Path, n_frames: int = 300, rate_hz: float = 0.0) -> Path:
    """Run the demo end to end; returns the path of report.md."""
    report = Report("Pointillist demo", out_dir)
    run_id = new_run_id("demo")
    with tempfile.TemporaryDirectory(prefix="pointillist-demo-") as data_dir:
        stack = Stack(data_dir, nats_port=None)
        with stack:
            result = asyncio.run(_stream_acquisition(stack, run_id, n_frames, rate_hz))
            prom = stack.endpoints().get("prometheus", {}).get("http")
            scraped = None
            if prom:
                deadline = time.monotonic() + 20
                while scraped is None and time.monotonic() < deadline:
                    scraped = _prometheus_value(
                        prom, "sum(pointillist_simulator_frames_published_total)"
                    )
                    time.sleep(1)
            services = [c.name for c in stack.children]
    movie, truth = result["movie"], result["truth"]
    pixel_nm = 100.0
    report.text(
        f"Run {run_id}: the simulator acquired {len(movie)} frames of "
        f"{movie.shape[1]}x{movie.shape[2]} px and streamed them over NATS JetStream; "
        f"{len(movie) / result['elapsed_s']:.0f} frames/s arrived at the consumer "
        f"({result['elapsed_s']:.1f} s). Stack: NATS, {', '.join(services)}."
    )
    report.table(
        [
            {"quantity": "frames received", "value": len(movie)},
            {"quantity": "true emitter localizations", "value": len(truth)},
            {"quantity": "run state", "value": run_pb2.RunState.Name(result["status"].state)},
            {
                "quantity": "frames published (Prometheus)",
                "value": "Prometheus not installed" if scraped is None and not prom else scraped,
            },
        ]
    )
    fig, axes = plt.subplots(1, 2, figsize=(10, 5))
    axes[0].imshow(movie[len(movie) // 2], cmap="gray")
    axes[0].set_title(f"raw frame {len(movie) // 2} (ADU)")
    axes[1].imshow(movie.mean(axis=0), cmap="gray")
    axes[1].set_title("mean of all frames (widefield)")
    for ax in axes:
        ax.set_axis_off()
    report.figure(fig, "frames", "A raw camera frame and the widefield image of the movie.")
    sr = render_gaussian(
        truth["x"],
        truth["y"],
        pixel_size_nm=10,
        sigma_nm=10,
        extent_nm=(0, movie.shape[2] * pixel_nm, 0, movie.shape[1] * pixel_nm),
    )
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.imshow(
        sr.image,
        origin="upper",
        cmap="hot",
        extent=(sr.extent_nm[0], sr.extent_nm[1], sr.extent_nm[3], sr.extent_nm[2]),
        vmax=np.percentile(sr.image, 99.8) or None,
    )
    ax.set_xlabel("x [nm]")
    ax.set_ylabel("y [nm]")
    report.figure(
        fig,
        "super-resolution",
        f"Super-resolution rendering (10 nm pixels, 10 nm Gaussian) of the {len(truth)} "
        "localizations streamed on pnt.<run>.truth. A localizer service will replace "
        "these ground-truth positions with its own localizations.",
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
