"""The localizer's gRPC servicer and bus worker: thin, the science is in the modules.

Bus: a durable pull consumer of ``pnt.*.frames`` shared by every replica (work queue);
each FrameBatch becomes one LocalizationBatch on ``pnt.<run>.locs`` with the same seq and a
Msg-Id derived from the input, so a redelivery after a crash publishes no duplicate. The
temporal window keeps the previous batch's last frames per run; the last frames of a batch
get edge-replicated future context, since a batch is acked before its successor arrives.
A batch with the wrong shape, dtype or no camera model is dead-lettered with the reason.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator

import grpc

from pointillist.core.bus import Bus, Delivery, frames_from_proto
from pointillist.core.errors import InvalidInput
from pointillist.core.table import LocalizationTable
from pointillist.localizer import metrics
from pointillist.localizer.calibration import CameraCalibration
from pointillist.localizer.engine import Engine
from pointillist.localizer.window import FrameWindow
from pointillist.v1 import frames_pb2, localizer_pb2_grpc, table_pb2

log = logging.getLogger(__name__)
SOURCE = "localizer"
MAX_RUNS = 64  # per-run windows kept in memory (least recently used dropped)


class RunWindows:
    """A FrameWindow per run, bounded (LRU)."""

    def __init__(self, context: int) -> None:
        self.context = context
        self._windows: OrderedDict[str, FrameWindow] = OrderedDict()

    def get(self, run_id: str) -> FrameWindow:
        window = self._windows.pop(run_id, None) or FrameWindow(self.context)
        self._windows[run_id] = window
        while len(self._windows) > MAX_RUNS:
            self._windows.popitem(last=False)
        return window


def localize_batch(
    engine: Engine, window: FrameWindow, msg: frames_pb2.FrameBatch, frames=None
) -> LocalizationTable:
    """Localize one FrameBatch's frames with the run's temporal context."""
    calibration = CameraCalibration.from_proto(msg.camera)
    if frames is None:
        frames = frames_from_proto(msg)
    chunks = window.push(frames, msg.first_frame) + window.flush(keep_context=True)
    tables = [engine.localize(chunk, calibration) for chunk in chunks]
    return LocalizationTable.concat(tables) if tables else engine.empty()


class LocalizerWorker:
    """Consumes frames from the bus and publishes localizations (one per input batch)."""

    def __init__(
        self, bus: Bus, engine: Engine, durable: str = "localizer", run_id: str = "*"
    ) -> None:
        self.bus = bus
        self.engine = engine
        self.durable = durable
        self.run_id = run_id  # "*": every run; one run id for a dedicated worker
        self.windows = RunWindows(engine.context)
        self._stop = asyncio.Event()
        self._task: asyncio.Task | None = None

    async def handle(self, d: Delivery) -> None:
        start = time.perf_counter()
        try:
            table = await asyncio.to_thread(
                localize_batch, self.engine, self.windows.get(d.run_id), d.message, d.frames
            )
        except InvalidInput:
            metrics.REJECTED.labels("bus").inc()
            raise  # the consumer dead-letters it with the reason and carries on
        await self.bus.publish_locs(d.run_id, table, d.seq, source=SOURCE, derived_from=d)
        labels = (self.engine.method, "bus")
        metrics.FRAMES.labels(*labels).inc(d.message.n_frames)
        metrics.LOCALIZATIONS.labels(*labels).inc(len(table))
        metrics.BATCH_SECONDS.labels(*labels).observe(time.perf_counter() - start)

    async def start(self) -> None:
        consumer = await self.bus.consumer("frames", self.durable, run_id=self.run_id).start()

        async def loop() -> None:
            try:
                await consumer.run(self.handle, stop=self._stop)
            finally:
                await consumer.close()

        self._task = asyncio.create_task(loop())

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)


class LocalizerService(localizer_pb2_grpc.LocalizerServicer):
    """Localize(stream FrameBatch) -> stream LocalizationBatch, one output per input."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def Localize(
        self,
        request_iterator: AsyncIterator[frames_pb2.FrameBatch],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[table_pb2.LocalizationBatch]:
        window = FrameWindow(self.engine.context)
        async for msg in request_iterator:
            start = time.perf_counter()
            try:
                table = await asyncio.to_thread(localize_batch, self.engine, window, msg)
            except InvalidInput:
                metrics.REJECTED.labels("grpc").inc()
                raise
            labels = (self.engine.method, "grpc")
            metrics.FRAMES.labels(*labels).inc(msg.n_frames)
            metrics.LOCALIZATIONS.labels(*labels).inc(len(table))
            metrics.BATCH_SECONDS.labels(*labels).observe(time.perf_counter() - start)
            yield table.to_proto(msg.run_id, msg.seq, source=SOURCE)
