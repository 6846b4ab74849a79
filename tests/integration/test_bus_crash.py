"""A consumer process killed with SIGKILL mid-stream and restarted loses nothing and
produces nothing twice.

This file is also the worker: ``python test_bus_crash.py URL RUN`` consumes
``pnt.RUN.locs`` under the durable ``crash-worker`` and, per batch, publishes a result
on ``pnt.RUN.clusters`` with the Msg-Id derived from the input, then acks. It prints
``published <seq>`` after each result and, as the first worker, hangs after the N-th
(published, not acked) so the test kills it right there. It exits once the run's end
of acquisition is out and every seq is settled by some worker.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from pointillist.core.bus import Bus, Delivery, connect
from pointillist.core.natsserver import NatsServer
from pointillist.core.table import LocalizationTable

N_BATCHES = 40
ACK_WAIT_S = 1.0


async def worker(url: str, run_id: str, hang_after: int) -> None:
    bus = await connect(url, name="crash-worker")
    published = 0

    async def handle(d: Delivery) -> None:
        nonlocal published
        table = d.table
        result = table.with_columns(cluster=np.zeros(len(table), dtype="i4"))
        await bus.publish_locs(run_id, result, d.seq, kind="clusters", derived_from=d)
        published += 1
        print(f"published {d.seq}", flush=True)
        if published == hang_after:  # published, not acked: the test kills us here
            await asyncio.sleep(3600)
        await asyncio.sleep(0.01)

    consumer = bus.consumer("locs", "crash-worker", run_id=run_id, ack_wait=ACK_WAIT_S, batch=4)
    async with consumer:
        await consumer.run(handle, until_complete=run_id)
    await bus.close()


def start_worker(url: str, run_id: str, hang_after: int = 0) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, __file__, url, run_id, str(hang_after)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.integration
async def test_killed_consumer_loses_nothing_and_duplicates_nothing(
    nats_server: NatsServer, bus: Bus, run_id: str
) -> None:
    rng = np.random.default_rng(0)
    for seq in range(N_BATCHES):
        table = LocalizationTable({"x": rng.uniform(0, 1e4, 500), "y": rng.uniform(0, 1e4, 500)})
        await bus.publish_locs(run_id, table, seq)
    await bus.publish_end_of_acquisition(run_id, {"locs": N_BATCHES - 1})

    first = start_worker(nats_server.url, run_id, hang_after=N_BATCHES // 3)
    published_before_kill = []
    assert first.stdout is not None
    for line in first.stdout:  # a third of the way through, between publish and ack
        published_before_kill.append(int(line.split()[1]))
        if len(published_before_kill) == N_BATCHES // 3:
            os.kill(first.pid, signal.SIGKILL)
            break
    assert first.wait(10) == -signal.SIGKILL
    first.communicate()

    second = start_worker(nats_server.url, run_id)
    out, err = second.communicate(timeout=60)
    assert second.returncode == 0, err
    republished = [int(line.split()[1]) for line in out.splitlines()]

    stored = await bus.jsm.stream_info("PNT_CLUSTERS", subjects_filter=f"pnt.{run_id}.clusters")
    assert stored.state.subjects == {f"pnt.{run_id}.clusters": N_BATCHES}
    consumer = await bus.consumer("clusters", "crash-check", run_id=run_id, batch=64).start()
    seqs: list[int] = []
    deadline = time.monotonic() + 10
    while len(seqs) < N_BATCHES and time.monotonic() < deadline:
        for d in await consumer.fetch(timeout=1):
            seqs.append(d.seq)
            await d.ack()
    await consumer.close()
    assert sorted(seqs) == list(range(N_BATCHES))  # every input exactly once
    # The restarted worker redid the batch it was killed on; JetStream kept one copy.
    assert published_before_kill[-1] in republished
    assert set(published_before_kill) | set(republished) == set(range(N_BATCHES))


if __name__ == "__main__":
    asyncio.run(worker(sys.argv[1], sys.argv[2], int(sys.argv[3])))
