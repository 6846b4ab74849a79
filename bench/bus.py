"""Bus throughput: localizations/s and frames/s through JetStream, publish -> consume -> ack.

Starts a fresh nats-server (file storage in a temp dir) on a free port, then for each
case publishes batches with a pipelined publisher (many PubAcks in flight) while a
consumer in another process fetches, decodes (LocalizationTable / frame arrays,
validated) and acks every message. The time is from the first publish to the last
ack, so it is end to end; each case runs ``--repeat`` times and the median is shown.
Prints a markdown table; ``--append`` adds it, with the machine's description, to the
"## Bus" section of bench/RESULTS.md.

    python bench/bus.py                       # default 1 MiB max_payload and 8 MiB
    python bench/bus.py --max-payload 1048576 --rows 100000 --append bench/RESULTS.md
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import platform
import shlex
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from pointillist.core.bus import Bus, Delivery, connect
from pointillist.core.natsserver import NatsServer, find_nats_server
from pointillist.core.table import LocalizationTable

COLUMNS = ("x", "y", "z", "photons", "background", "sigma_x", "sigma_y", "uncertainty")
MiB = 1 << 20


@dataclass
class Case:
    kind: str  # "locs" or "frames"
    batch: int  # rows per batch, or frames per batch
    batches: int
    max_payload: int

    @property
    def label(self) -> str:
        unit = "rows" if self.kind == "locs" else "frames of 256x256"
        return f"{self.kind}: {self.batch:,} {unit}/batch"


@dataclass
class Result:
    case: Case
    seconds: list[float]  # one per repeat
    items: int
    payload_bytes: int
    messages: int

    def row(self) -> str:
        rates = sorted(self.items / s for s in self.seconds)
        median = float(np.median(rates))
        unit = "locs/s" if self.case.kind == "locs" else "frames/s"
        return (
            f"| {self.case.label} | {self.case.max_payload // 1024:,} KiB | {self.messages:,} "
            f"| {self.items:,} | **{median:,.0f} {unit}** | {rates[0]:,.0f} - {rates[-1]:,.0f} "
            f"| {self.payload_bytes * median / self.items / MiB:,.0f} |"
        )


HEADER = (
    "| case | max_payload | messages | items | median throughput | range | MiB/s |\n"
    "|---|---|---|---|---|---|---|"
)


def make_table(rows: int) -> LocalizationTable:
    rng = np.random.default_rng(rows)
    cols = {c: rng.uniform(0, 5e4, rows).astype("f4") for c in COLUMNS}
    cols["frame"] = np.arange(rows, dtype="i4")
    return LocalizationTable(cols)


def consume(url: str, kind: str, run_id: str, ready: mp.Queue, done: mp.Queue) -> None:
    """Child process: consume the run, then report (monotonic end time, items, messages)."""

    async def main() -> None:
        bus = await connect(url, name="bench-consumer", ensure_streams=False)
        items = messages = 0

        def handle(d: Delivery) -> None:
            nonlocal items, messages
            items += len(d.table) if kind == "locs" else d.frames.shape[0]
            messages += 1

        consumer = bus.consumer(kind, f"bench-{run_id}", run_id=run_id, batch=64)
        async with consumer:
            ready.put(True)
            await consumer.run(handle, until_complete=run_id)
        done.put((time.monotonic(), items, messages))
        await bus.close()

    asyncio.run(main())


async def run_case(bus: Bus, url: str, case: Case, window: int) -> Result:
    run_id = "bench" + uuid.uuid4().hex[:8]
    ctx = mp.get_context("spawn")
    ready, done = ctx.Queue(), ctx.Queue()
    child = ctx.Process(target=consume, args=(url, case.kind, run_id, ready, done))
    child.start()
    ready.get(timeout=60)
    if case.kind == "locs":
        table = make_table(case.batch)
        start = time.monotonic()
        async with bus.pipeline(window) as pipe:
            for seq in range(case.batches):
                await pipe.submit(bus.publish_locs(run_id, table, seq))
    else:
        frames = np.random.default_rng(0).integers(0, 4096, (case.batch, 256, 256), np.uint16)
        start = time.monotonic()
        async with bus.pipeline(window) as pipe:
            for seq in range(case.batches):
                await pipe.submit(bus.publish_frames(run_id, frames, seq, first_frame=seq))
    await bus.publish_end_of_acquisition(run_id, {case.kind: case.batches - 1}, source="bench")
    end, items, messages = await asyncio.to_thread(done.get, True, 600)
    child.join(30)
    await bus.jsm.purge_stream(f"PNT_{case.kind.upper()}")
    return Result(case, [end - start], items, pipe.result.bytes, messages)


async def bench(args: argparse.Namespace) -> list[Result]:
    results = []
    for max_payload in args.max_payload:
        with NatsServer(max_payload=max_payload, max_pending=256 * MiB) as server:
            bus = await connect(server.url, name="bench-publisher")
            cases = [
                Case("locs", rows, max(2, args.total_rows // rows), max_payload)
                for rows in args.rows
            ]
            cases += [
                Case("frames", n, max(2, args.total_frames // n), max_payload)
                for n in args.frames_per_batch
            ]
            await run_case(bus, server.url, Case("locs", 25_000, 40, max_payload), args.window)
            for case in cases:  # after a warm-up run: file store blocks, imports, caches
                result = await run_case(bus, server.url, case, args.window)
                for _ in range(args.repeat - 1):
                    result.seconds += (await run_case(bus, server.url, case, args.window)).seconds
                print(result.row(), flush=True)
                results.append(result)
            await bus.close()
    return results


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    version = subprocess.run(
        [find_nats_server(), "--version"], capture_output=True, text=True
    ).stdout.strip()
    return (
        f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, {version}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--total-rows", type=int, default=20_000_000, help="per rows case")
    parser.add_argument("--frames-per-batch", type=int, nargs="+", default=[1, 7])
    parser.add_argument("--total-frames", type=int, default=5_000, help="per frames case")
    parser.add_argument(
        "--max-payload", type=int, nargs="+", default=[MiB, 8 * MiB], help="server setting, bytes"
    )
    parser.add_argument("--window", type=int, default=16, help="publish calls in flight")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; the median is shown")
    parser.add_argument("--append", type=Path, help="append the results to this markdown file")
    parser.add_argument("--note", default="", help="a line added under the table")
    args = parser.parse_args()

    print(HEADER)
    results = asyncio.run(bench(args))
    if args.append:
        command = "python " + shlex.join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])
        text = [
            "",
            f"### Bus throughput, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
            "",
            f"Machine: {machine()}.  ",
            f"Command: `{command}`",
            "",
            HEADER,
            *(r.row() for r in results),
            "",
        ]
        if args.note:
            text += [args.note, ""]
        add_to_section(args.append, "## Bus", "\n".join(text))


def add_to_section(path: Path, header: str, text: str) -> None:
    """Insert ``text`` at the end of the ``header`` section of a markdown file (created
    when missing), before the next section of the same level."""
    lines = path.read_text().splitlines() if path.exists() else ["# Benchmark results"]
    if header not in lines:
        lines += ["", header]
    start = lines.index(header) + 1
    end = next(
        (i for i in range(start, len(lines)) if lines[i].startswith("## ")),
        len(lines),
    )
    while end > start and not lines[end - 1].strip():
        end -= 1
    lines[end:end] = text.splitlines()
    path.write_text("\n".join(lines).rstrip() + "\n")


if __name__ == "__main__":
    main()
