"""Read one run's data of one kind whole: for services that need all of it at once.

The clusterer needs a run's localizations, the VAE a run's particles. Both wait for the
run's END_OF_ACQUISITION, then read ``pnt.<run>.<kind>`` from its first batch with a
consumer of their own until every seq up to the announced last one has arrived (or
none arrived for ``idle_timeout_s``: the caller then works on what came and reports the
missing seqs). Batches whose columns differ from the run's others are dead-lettered by
the consumer with the reason; the run goes on without them.
"""

from __future__ import annotations

import asyncio
import contextlib

import nats.js.errors
import numpy as np

from pointillist.core.bus.codec import PartPath, particles_from_proto
from pointillist.core.bus.connection import Bus
from pointillist.core.bus.consumer import Delivery
from pointillist.core.bus.subjects import stream_name
from pointillist.core.errors import InvalidInput, NotFound
from pointillist.core.table import LocalizationTable
from pointillist.v1 import particles_pb2, run_pb2


class RunTables:
    """A run's batches by (seq, part), all with the same columns.

    For ParticleSet batches the per-particle truth columns, the dimensions and the
    particle kind are kept too.
    """

    def __init__(self) -> None:
        self.parts: dict[tuple[int, PartPath], LocalizationTable] = {}
        self.truths: dict[tuple[int, PartPath], dict[str, np.ndarray]] = {}
        self.columns: list[str] | None = None
        self.dimensions = 0
        self.particle_kind = ""

    def add(self, d: Delivery) -> None:
        """Keep one batch; InvalidInput (dead letter) when its columns differ from the run's."""
        table = d.table
        if not table.columns:
            return  # an empty batch without columns: nothing to keep
        if self.columns is None:
            self.columns = table.columns
        elif set(table.columns) != set(self.columns):
            raise InvalidInput(
                f"columns {sorted(table.columns)} differ from the run's {sorted(self.columns)}"
            )
        key = (d.seq, d.part)
        self.parts[key] = LocalizationTable({c: table[c] for c in self.columns}, check_finite=False)
        if isinstance(d.message, particles_pb2.ParticleSet):
            self.truths[key] = particles_from_proto(d.message)[1]
            self.dimensions = self.dimensions or d.message.dimensions
            self.particle_kind = self.particle_kind or d.message.kind

    def table(self) -> LocalizationTable:
        """The batches concatenated in (seq, part) order, so a redo gives the same rows."""
        tables = [self.parts[k] for k in sorted(self.parts) if len(self.parts[k])]
        return LocalizationTable.concat(tables) if tables else LocalizationTable()

    def truth(self) -> dict[str, np.ndarray]:
        """Per-particle truth columns present in every ParticleSet part, concatenated."""
        truths = [self.truths[k] for k in sorted(self.truths) if self.truths[k]]
        if not truths:
            return {}
        names = [n for n in truths[0] if all(n in t for t in truths)]
        return {n: np.concatenate([t[n] for t in truths]) for n in names}


async def _delete_reader(bus: Bus, kind: str, name: str) -> None:
    with contextlib.suppress(nats.js.errors.NotFoundError):
        await bus.jsm.delete_consumer(stream_name(kind), name)


async def read_run(
    bus: Bus,
    kind: str,
    run_id: str,
    *,
    reader: str,
    last_seq_key: str,
    last_seq: int,
    idle_timeout_s: float,
) -> tuple[RunTables, list[int]]:
    """The run's batches of ``kind`` up to ``last_seq`` of ``last_seq_key``, and the seqs
    that never arrived. ``reader`` names the temporary consumer (deleted afterwards)."""
    await _delete_reader(bus, kind, reader)  # a fresh read from the run's first batch
    tables = RunTables()
    consumer = bus.consumer(kind, reader, run_id=run_id)
    try:
        async with consumer:
            await consumer.run(
                tables.add,
                until_complete=run_id,
                last_seq_key=last_seq_key,
                idle_timeout=idle_timeout_s,
            )
            missing = consumer.progress(run_id).missing(last_seq)
    finally:
        await _delete_reader(bus, kind, reader)
    return tables, missing


class RunWorker:
    """A bus worker that processes whole runs, triggered by events on ``pnt.*.events``.

    All replicas share the durable consumer ``durable``; ``run_id="*"`` takes every run,
    one run id makes a worker dedicated to it. Subclasses set ``source`` (their events'
    source) and implement ``handle``; ``ack_wait_s`` is how long one run may go without
    the consumer's keep-alive before the event is redelivered.
    """

    source = "worker"
    ack_wait_s = 30.0

    def __init__(
        self, bus: Bus, durable: str, run_id: str = "*", idle_timeout_s: float = 300.0
    ) -> None:
        self.bus = bus
        self.durable = durable
        self.run_id = run_id
        self.idle_timeout_s = idle_timeout_s
        self._stop = asyncio.Event()
        self._task: asyncio.Task | None = None

    async def _event(self, run_id: str, seq: int, kind: int, message: str, **counts: int) -> None:
        """Publish one of this worker's events for ``run_id`` (seqs unique per source)."""
        await self.bus.publish_event(
            run_pb2.Event(
                run_id=run_id, seq=seq, kind=kind, source=self.source, message=message, **counts
            )
        )

    async def run_spec(self, run_id: str) -> run_pb2.RunSpec | None:
        """The run's RunSpec from the run registry; None when the run is not registered."""
        try:
            return await self.bus.runs.get_spec(run_id)
        except NotFound:
            return None

    async def handle(self, d: Delivery) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        consumer = await self.bus.consumer(
            "events", self.durable, run_id=self.run_id, ack_wait=self.ack_wait_s
        ).start()

        async def loop() -> None:
            try:
                await consumer.run(self.handle, stop=self._stop)
            finally:
                await consumer.close()

        self._task = asyncio.create_task(loop())

    async def stop(self) -> None:
        """Stop taking events; a run in progress is abandoned and its event nak'ed, so
        another replica (or this one after a restart) processes it."""
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
