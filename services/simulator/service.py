"""The simulator's gRPC servicer and bus publishing: thin, the science is in the modules.

`StartAcquisition` streams simulated camera frames to ``pnt.<run>.frames`` at a frame
rate, as a live microscope would (with the true emitters on ``pnt.<run>.truth``), then
announces the end of the acquisition. `PublishDataset` publishes a point-cloud dataset.
The Simulate* RPCs answer directly, without the bus.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
from google.protobuf import json_format

from pointillist.core.bus import Bus, frames_to_proto, particles_to_proto, validate_run_id
from pointillist.core.errors import InvalidInput, NotFound, NotReady
from pointillist.core.frames import camera_to_proto
from pointillist.core.runspec import new_run_id
from pointillist.simulator import metrics
from pointillist.simulator.datasets import Dataset, simulate_dataset
from pointillist.simulator.frames import FrameSimConfig, iter_frames
from pointillist.v1 import (
    frames_pb2,
    particles_pb2,
    run_pb2,
    simulator_pb2,
    simulator_pb2_grpc,
    table_pb2,
)

log = logging.getLogger(__name__)
SOURCE = "simulator"
_DONE = object()


def params_of(request: simulator_pb2.SimulationRequest) -> dict[str, Any]:
    return json_format.MessageToDict(request.params)


def frame_config(request: simulator_pb2.SimulationRequest, chunk_frames: int = 0) -> FrameSimConfig:
    config = FrameSimConfig.from_params(params_of(request))
    return dataclasses.replace(config, chunk_frames=chunk_frames) if chunk_frames else config


def dataset_to_particles(data: Dataset, run_id: str = "") -> particles_pb2.ParticleSet:
    """A particles/projections dataset as one ParticleSet (no bus splitting)."""
    return particles_to_proto(
        data.localizations,
        truth=data.truth,
        run_id=run_id,
        dimensions=data.dimensions,
        particle_kind=data.subtype,
    )


async def _next_chunk(chunks: Iterator) -> Any:
    """Next (frames, truth) chunk computed in a worker thread, so the loop keeps serving."""
    return await asyncio.to_thread(next, chunks, _DONE)


class SimulatorService(simulator_pb2_grpc.SimulatorServicer):
    """Simulator RPCs; bus-publishing RPCs need ``bus`` (None: direct RPCs only)."""

    def __init__(self, bus: Bus | None) -> None:
        self.bus = bus
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._status: dict[str, run_pb2.RunStatus] = {}

    # -- run bookkeeping ---------------------------------------------------------------

    def _require_bus(self) -> Bus:
        if self.bus is None:
            raise NotReady("the simulator runs without a bus; start it with --nats-url")
        return self.bus

    async def _begin(
        self,
        run_id: str,
        total: int,
        kind: str,
        simulation: simulator_pb2.SimulationRequest | None = None,
    ) -> run_pb2.RunStatus:
        """Record the run as RUNNING. A spec registered for the run beforehand (its steps
        tell downstream services what to do) is kept; without one, the spec names this
        simulation (kind, params, seed)."""
        run_id = validate_run_id(run_id or new_run_id(kind))
        task = self._tasks.get(run_id)
        if task is not None and not task.done():
            raise InvalidInput(f"run {run_id!r} is already running")
        status = run_pb2.RunStatus(
            run_id=run_id, state=run_pb2.RUN_STATE_RUNNING, message=f"simulating {kind}"
        )
        with contextlib.suppress(NotFound):
            status.spec.CopyFrom((await self._require_bus().runs.get(run_id)).spec)
        status.spec.run_id = run_id
        if not status.spec.source.WhichOneof("source"):
            status.spec.source.simulation.kind = kind
            if simulation is not None:
                status.spec.source.simulation.params.CopyFrom(simulation.params)
                status.spec.source.simulation.seed = simulation.seed
        status.started.GetCurrentTime()
        status.updated.GetCurrentTime()
        status.counters["total"] = total
        self._status[run_id] = status
        await self._require_bus().runs.put(status)
        return status

    async def _set(
        self, run_id: str, *, state: int | None = None, message: str | None = None, **counters: int
    ) -> None:
        status = self._status[run_id]
        if state is not None:
            status.state = state
        if message is not None:
            status.message = message
        status.counters.update(counters)
        total = status.counters.get("total", 0)
        status.progress = min(1.0, status.counters.get("done", 0) / total) if total else 1.0
        status.updated.GetCurrentTime()
        await self._require_bus().runs.put(status)

    async def _finish(self, run_id: str, coro: Any) -> None:
        """Run the publishing coroutine and record how it ended."""
        bus = self._require_bus()
        metrics.ACQUISITIONS_ACTIVE.inc()
        try:
            await coro
            await self._set(run_id, state=run_pb2.RUN_STATE_SUCCEEDED, message="done")
        except asyncio.CancelledError:
            await self._set(run_id, state=run_pb2.RUN_STATE_CANCELLED, message="cancelled")
        except Exception as exc:  # the run fails, the service keeps serving
            log.exception("run %s failed", run_id)
            await self._set(run_id, state=run_pb2.RUN_STATE_FAILED, message=str(exc))
            await bus.publish_event(
                run_pb2.Event(
                    run_id=run_id,
                    kind=run_pb2.Event.KIND_ERROR,
                    source=SOURCE,
                    message=str(exc),
                    seq=0,
                )
            )  # progress events count from 1
        finally:
            metrics.ACQUISITIONS_ACTIVE.dec()
            metrics.RUNS_FINISHED.labels(run_pb2.RunState.Name(self._status[run_id].state)).inc()

    # -- bus-publishing RPCs ----------------------------------------------------------

    async def StartAcquisition(
        self, request: simulator_pb2.AcquisitionRequest, context: grpc.aio.ServicerContext
    ) -> run_pb2.RunStatus:
        batch = request.frames_per_batch or 10
        config = frame_config(request.frames, chunk_frames=batch)
        if request.frame_rate_hz < 0:
            raise InvalidInput(f"frame_rate_hz must be >= 0, got {request.frame_rate_hz}")
        status = await self._begin(request.run_id, config.n_frames, "frames", request.frames)
        run_id = status.run_id
        self._tasks[run_id] = asyncio.create_task(
            self._finish(
                run_id,
                self._acquire(
                    run_id,
                    config,
                    request.frames.seed,
                    request.frame_rate_hz,
                    request.publish_ground_truth,
                ),
            )
        )
        return run_pb2.RunStatus.FromString(status.SerializeToString())

    async def _acquire(
        self, run_id: str, config: FrameSimConfig, seed: int, rate_hz: float, with_truth: bool
    ) -> None:
        bus = self._require_bus()
        camera = camera_to_proto(config.camera)
        chunks = iter_frames(config, seed)
        start = time.monotonic()
        first, seq = 0, 0
        while (chunk := await _next_chunk(chunks)) is not _DONE:
            frames, truth = chunk
            if rate_hz > 0:  # a microscope delivers frame f at f / rate after the start
                await asyncio.sleep(
                    max(0.0, start + (first + len(frames)) / rate_hz - time.monotonic())
                )
            await bus.publish_frames(run_id, frames, seq, first_frame=first, camera=camera)
            metrics.FRAMES_PUBLISHED.inc(len(frames))
            if with_truth:
                await bus.publish_locs(
                    run_id, truth, seq, kind="truth", source=SOURCE, ground_truth=True
                )
                metrics.LOCALIZATIONS_PUBLISHED.labels("truth").inc(len(truth))
            first += len(frames)
            seq += 1
            await self._set(run_id, done=first, batches=seq)
            await bus.publish_event(
                run_pb2.Event(
                    run_id=run_id,
                    seq=seq,
                    kind=run_pb2.Event.KIND_PROGRESS,
                    source=SOURCE,
                    done=first,
                    total=config.n_frames,
                    message="frames published",
                )
            )
        last = {"frames": seq - 1, **({"truth": seq - 1} if with_truth else {})} if seq else {}
        await bus.publish_end_of_acquisition(run_id, last, source=SOURCE, message=f"{first} frames")

    async def PublishDataset(
        self, request: simulator_pb2.DatasetRequest, context: grpc.aio.ServicerContext
    ) -> run_pb2.RunStatus:
        data = await asyncio.to_thread(
            simulate_dataset, request.kind, params_of(request.simulation), request.simulation.seed
        )
        status = await self._begin(
            request.run_id, len(data.localizations), request.kind, request.simulation
        )
        run_id = status.run_id
        self._tasks[run_id] = asyncio.create_task(self._finish(run_id, self._publish(run_id, data)))
        return run_pb2.RunStatus.FromString(status.SerializeToString())

    async def _publish(self, run_id: str, data: Dataset) -> None:
        bus = self._require_bus()
        if data.kind == "clusters":
            await bus.publish_locs(run_id, data.localizations, 0, source=SOURCE)
            kind = "locs"
        else:
            await bus.publish_particles(
                run_id,
                data.localizations,
                0,
                truth=data.truth,
                dimensions=data.dimensions,
                particle_kind=data.subtype,
            )
            kind = "particles"
        metrics.LOCALIZATIONS_PUBLISHED.labels(kind).inc(len(data.localizations))
        await self._set(run_id, done=len(data.localizations))
        await bus.publish_end_of_acquisition(run_id, {kind: 0}, source=SOURCE)

    async def GetRun(
        self, request: simulator_pb2.RunRequest, context: grpc.aio.ServicerContext
    ) -> run_pb2.RunStatus:
        if request.run_id in self._status:
            return self._status[request.run_id]
        raise NotFound(f"no simulator run {request.run_id!r}")

    async def CancelRun(
        self, request: simulator_pb2.RunRequest, context: grpc.aio.ServicerContext
    ) -> run_pb2.RunStatus:
        task = self._tasks.get(request.run_id)
        if task is None:
            raise NotFound(f"no simulator run {request.run_id!r}")
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return self._status[request.run_id]

    async def close(self) -> None:
        """Cancel running acquisitions (they record CANCELLED) on shutdown."""
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    # -- direct RPCs ---------------------------------------------------------------------

    async def SimulateFrames(
        self, request: simulator_pb2.SimulationRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[frames_pb2.FrameBatch]:
        config = frame_config(request)
        camera = camera_to_proto(config.camera)
        chunks = iter_frames(config, request.seed)
        first, seq = 0, 0
        while (chunk := await _next_chunk(chunks)) is not _DONE:
            frames, _ = chunk
            yield frames_to_proto(frames, camera=camera, seq=seq, first_frame=first)
            first += len(frames)
            seq += 1

    async def SimulateClusters(
        self, request: simulator_pb2.SimulationRequest, context: grpc.aio.ServicerContext
    ) -> table_pb2.LocalizationBatch:
        data = await asyncio.to_thread(
            simulate_dataset, "clusters", params_of(request), request.seed
        )
        return data.localizations.to_proto(source=SOURCE, ground_truth=True)

    async def SimulateParticles(
        self, request: simulator_pb2.SimulationRequest, context: grpc.aio.ServicerContext
    ) -> particles_pb2.ParticleSet:
        data = await asyncio.to_thread(
            simulate_dataset, "particles", params_of(request), request.seed
        )
        return dataset_to_particles(data)

    async def SimulateProjections(
        self, request: simulator_pb2.SimulationRequest, context: grpc.aio.ServicerContext
    ) -> particles_pb2.ParticleSet:
        data = await asyncio.to_thread(
            simulate_dataset, "projections", params_of(request), request.seed
        )
        return dataset_to_particles(data)
