"""Read one run's data of one kind whole: for services that need all of it at once.

The clusterer needs a run's localizations, the VAE a run's particles. Both wait for the
run's END_OF_ACQUISITION, then read ``pnt.<run>.<kind>`` from its first batch with a
consumer of their own until every seq up to the announced last one has arrived (or
none arrived for ``idle_timeout_s``: the caller then works on what came and reports the
missing seqs). Batches whose columns differ from the run's others are dead-lettered by
the consumer with the reason; the run goes on without them.
"""

from __future__ import annotations

import contextlib

import nats.js.errors
import numpy as np

from pointillist.core.bus.codec import PartPath, particles_from_proto
from pointillist.core.bus.connection import Bus
from pointillist.core.bus.consumer import Delivery
from pointillist.core.bus.subjects import stream_name
from pointillist.core.errors import InvalidInput
from pointillist.core.table import LocalizationTable
from pointillist.v1 import particles_pb2


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
