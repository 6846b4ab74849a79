"""The reconstructor's gRPC servicer and bus worker: thin, the science is behind `engine`.

gRPC: ``Reconstruct(ReconstructRequest) -> stream ReconstructUpdate`` trains HOLLy on
the request's views in a worker thread, streams one progress update per finished epoch,
stores the report in the artefact store and ends with the result (every run's points,
the kept run's poses, per-run history and evaluation, the consensus, skipped
views). A client that cancels the call stops the training at its next step.
``GetRun``/``CancelRun`` control bus runs.

Bus: a reconstruction needs a run's views whole, so the trigger is the run's
END_OF_ACQUISITION listing ``particles``. All replicas share one durable consumer of
``pnt.*.events``; the replica that takes the event reads ``pnt.<run>.particles`` whole
(`pointillist.core.bus.collect`), trains and publishes:

- every run's points on ``pnt.<run>.recon`` (seq 0, LocalizationBatch x, y, z nm,
  ``label`` = run index; aligned onto the ground truth when the run's spec simulates
  projections, else onto the kept run);
- the report files as artefacts ``recon/<run>/report/<file>``;
- events on ``pnt.<run>.events``: start, resumed, one progress event per finished epoch
  (``done``/``total`` count epochs over all runs), skipped views, done (naming the
  artefacts), and an END_OF_ACQUISITION listing ``recon: 0``.

Checkpoint and resume: after every epoch (and every finished run) the training state is
stored as artefact ``recon/<run>/checkpoint.pt``. A replica that takes a run whose
checkpoint exists resumes from it (an event says so), so a run interrupted by a crash or
a shutdown (its event is nak'ed and redelivered) continues where it stopped and ends with
the same points as an uninterrupted run. A checkpoint made with other settings is
ignored (an event says why). The checkpoint is kept after the run.

Cancellation: ``CancelRun`` stops the run on this replica and sets the run registry's
state to CANCELLED; every replica polls the registry state of the run it trains and
stops when it reads CANCELLED, and does not start a run already CANCELLED. A cancelled
run is acked (not retried), recorded CANCELLED with an event, and its checkpoint kept.

The event is acked only after the results are out. Settings per run: the first step
named ``reconstruct`` of the run's RunSpec (its params: ReconConfig fields and
``n_runs``); a run without a spec, or without steps, uses the service defaults; a spec
with steps but no ``reconstruct`` step is not processed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import io
import logging
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from google.protobuf import json_format
from prometheus_client import Counter, Gauge, Histogram

from pointillist.core.bus import (
    ArtefactStore,
    Bus,
    Delivery,
    particles_from_proto,
    validate_run_id,
)
from pointillist.core.bus.collect import RunWorker, read_run
from pointillist.core.config import resolve_device
from pointillist.core.errors import InvalidInput, NotFound
from pointillist.core.particles import Skipped
from pointillist.core.table import LocalizationTable, proto_dtype
from pointillist.reconstructor.engine import (
    ReconstructResult,
    ReconstructState,
    Settings,
    load_state,
    reconstruct_table,
    save_state,
    spec_truth,
)
from pointillist.reconstructor.training import StepProgress, TrainingCancelled
from pointillist.v1 import (
    reconstructor_pb2,
    reconstructor_pb2_grpc,
    run_pb2,
    simulator_pb2,
    table_pb2,
)

log = logging.getLogger(__name__)

SOURCE = "reconstructor"
STEP = "reconstruct"  # the RunSpec step whose params are a run's settings
EVENT_START, EVENT_DONE, EVENT_ERROR, EVENT_SKIPPED = 1, 2, 3, 4
EVENT_RESUMED, EVENT_CANCELLED, EVENT_CHECKPOINT_IGNORED = 5, 6, 7
EVENT_EPOCH = 100  # + epochs done over all runs: one progress event per epoch
RECON_SEQ = 0
_MAX_LISTED_SKIPS = 20  # skipped views named in the event; the count is always exact
_KEPT_STATUSES = 256  # finished jobs whose status GetRun still answers from memory
_CHECKPOINT_IGNORED_KEYS = ("device", "max_minutes", "seed")
_FINISHED = (run_pb2.RUN_STATE_SUCCEEDED, run_pb2.RUN_STATE_FAILED, run_pb2.RUN_STATE_CANCELLED)

LOSS = Gauge("pointillist_reconstructor_training_loss", "Loss of the latest optimisation step")
EPOCH = Gauge(
    "pointillist_reconstructor_training_epoch", "Latest finished epoch of the run in training"
)
IMAGES_PER_S = Gauge(
    "pointillist_reconstructor_images_per_second", "Training throughput of the latest epoch"
)
IMAGES = Counter("pointillist_reconstructor_images_total", "Images trained on", ["path"])
DEVICE = Gauge(
    "pointillist_reconstructor_device_info",
    "1 for the device of the latest training (cpu, cuda, cuda:N)",
    ["device"],
)
ACTIVE = Gauge("pointillist_reconstructor_jobs_active", "Reconstructions in progress")
VIEWS = Counter("pointillist_reconstructor_views_total", "Views reconstructed from", ["path"])
SKIPPED = Counter(
    "pointillist_reconstructor_skipped_views_total",
    "Views left out (< 3 localizations or non-finite coordinates)",
    ["path"],
)
FIT_SECONDS = Histogram(
    "pointillist_reconstructor_fit_seconds",
    "Time to train, align and evaluate the runs of one view set",
    ["path"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 3600, 7200, 21600),
)
RUNS = Counter(
    "pointillist_reconstructor_runs_total",
    "Runs the bus worker finished: complete, partial (some seqs never arrived), empty, "
    "skipped (the run spec has no reconstruct step), invalid, cancelled",
    ["outcome"],
)


# -- pure helpers ----------------------------------------------------------------------


def artefact_prefix(run_id: str) -> str:
    return f"recon/{run_id}"


def checkpoint_name(run_id: str) -> str:
    """The artefact a bus run's training state is checkpointed to."""
    return f"{artefact_prefix(run_id)}/checkpoint.pt"


def run_settings(spec: run_pb2.RunSpec, defaults: Settings) -> Settings | None:
    """Settings for a run from its spec (module docstring); None: not processed."""
    if not spec.steps:
        return defaults
    for step in spec.steps:
        if step.name == STEP:
            return defaults.with_params(json_format.MessageToDict(step.params))
    return None


def truth_from_proto(batch: table_pb2.LocalizationBatch) -> np.ndarray | None:
    """The (M, 3) ground-truth model of a request (x, y, z nm); None when it has no rows."""
    if not batch.n_rows and not batch.columns:
        return None
    table = LocalizationTable.from_proto(batch)
    if "z" not in table:
        raise InvalidInput("the ground-truth model needs x, y and z columns (nm)")
    if len(table) < 3:
        raise InvalidInput(f"the ground-truth model needs at least 3 points, got {len(table)}")
    return np.column_stack([table["x"], table["y"], table["z"]]).astype(np.float64)


def epochs_done(state: ReconstructState, settings: Settings) -> int:
    """Epochs a checkpoint holds, over all runs."""
    trainer = int(state.trainer["epoch"]) if state.trainer else 0
    return len(state.finished) * settings.config.epochs + trainer


def checkpoint_mismatch(state: ReconstructState, settings: Settings) -> str | None:
    """Why a checkpoint cannot resume a job with ``settings``; None when it can.

    The device and the time limit may change between the checkpoint and the resumption;
    everything else (run r trains with seed + r) must match.
    """
    if len(state.finished) > settings.n_runs:
        return f"it holds {len(state.finished)} finished runs, n_runs is {settings.n_runs}"
    mine = dataclasses.asdict(settings.config)
    saved = [s["config"] for s in state.finished]
    if state.trainer is not None:
        saved.append(state.trainer["config"])
    for run, config in enumerate(saved):
        if config.get("seed") != settings.config.seed + run:
            return f"run {run} was trained with seed {config.get('seed')}"
        changed = sorted(
            k for k in mine if k not in _CHECKPOINT_IGNORED_KEYS and config.get(k) != mine[k]
        )
        if changed:
            return f"it was made with other settings: {changed}"
    return None


def state_bytes(state: ReconstructState) -> bytes:
    buf = io.BytesIO()
    save_state(state, buf)
    return buf.getvalue()


def state_from_bytes(data: bytes) -> ReconstructState:
    return load_state(io.BytesIO(data))


def epoch_proto(
    run: int, record: Mapping[str, float], settings: Settings
) -> reconstructor_pb2.ReconEpoch:
    """One finished epoch (a Reconstruction history record, epoch 1-based) as a message."""
    epochs = settings.config.epochs
    epoch = int(record["epoch"])
    seconds = float(record["seconds"])
    images = int(record["images"])
    return reconstructor_pb2.ReconEpoch(
        run=run,
        runs=settings.n_runs,
        epoch=epoch,
        epochs=epochs,
        done=run * epochs + epoch,
        total=settings.n_runs * epochs,
        loss=float(record["loss"]),
        sigma_in_nm=float(record["sigma_in_nm"]),
        sigma_out_nm=float(record["sigma_out_nm"]),
        images=images,
        seconds=seconds,
        images_per_s=images / seconds if seconds > 0 else 0.0,
    )


def epoch_text(e: reconstructor_pb2.ReconEpoch) -> str:
    return (
        f"run {e.run + 1} of {e.runs}, epoch {e.epoch} of {e.epochs} done: loss {e.loss:.4f}, "
        f"input sigma {e.sigma_in_nm:.1f} nm, {e.images_per_s:.0f} images/s"
    )


def skipped_text(skipped: list[Skipped]) -> str:
    """'N view(s) skipped: id (reason), ...' naming at most a few."""
    named = ", ".join(f"{s.particle} ({s.reason})" for s in skipped[:_MAX_LISTED_SKIPS])
    more = len(skipped) - _MAX_LISTED_SKIPS
    return f"{len(skipped)} view(s) skipped: {named}" + (f", and {more} more" if more > 0 else "")


def columns_proto(columns: Mapping[str, np.ndarray]) -> list[table_pb2.Column]:
    """Equal-length numeric arrays as typed columns (int -> int32 or int64, float -> float64)."""
    out = []
    for name, values in columns.items():
        arr = np.asarray(values)
        if arr.dtype.kind in "iu":
            arr = arr.astype("<i4" if np.abs(arr).max(initial=0) < 2**31 else "<i8")
        else:
            arr = arr.astype("<f8")
        out.append(
            table_pb2.Column(
                name=name,
                dtype=proto_dtype(arr.dtype),
                data=arr.tobytes(),
                unit="nm"
                if name.endswith("_nm")
                else ("rad" if name in ("rx", "ry", "rz") else ""),
            )
        )
    return out


def result_proto(
    result: ReconstructResult, settings: Settings, artefacts: list[str], run_id: str = ""
) -> reconstructor_pb2.ReconResult:
    """The whole result as a message (the Reconstruct stream's last update)."""
    runs = []
    for i, run in enumerate(result.runs):
        message = reconstructor_pb2.ReconRun(
            run=i,
            seed=run.config.seed,
            history=[epoch_proto(i, h, settings) for h in run.history],
            seconds=run.seconds,
            stopped_early=run.stopped_early,
            device=run.device,
        )
        if result.evaluations is not None:
            e = result.evaluations[i]
            message.evaluation.CopyFrom(
                reconstructor_pb2.ReconEvaluation(
                    rmsd_nm=e.rmsd_nm,
                    mirrored=e.mirrored,
                    baseline_rmsd_nm=e.baseline_rmsd_nm,
                    baseline_sd_nm=e.baseline_sd_nm,
                    ratio=e.ratio,
                )
            )
        runs.append(message)
    c = result.consensus
    poses = result.poses_table()
    return reconstructor_pb2.ReconResult(
        points=result.points_table().to_proto(run_id, RECON_SEQ, source=SOURCE),
        poses=columns_proto(poses),
        n_views=len(poses["particle"]),
        runs=runs,
        consensus=reconstructor_pb2.ReconConsensus(
            medoid=c.medoid,
            best=c.best,
            spread_nm=c.spread,
            outliers=[int(o) for o in c.outliers],
            pairwise_rmsd_nm=np.asarray(c.pairwise, dtype=np.float64).ravel().tolist(),
        ),
        skipped=[
            reconstructor_pb2.SkippedView(particle=s.particle, reason=s.reason)
            for s in result.skipped
        ],
        artefacts=artefacts,
        seconds=result.seconds,
        device=result.runs[0].device,
        summary=result.summary_lines(),
    )


async def store_report(
    artefacts: ArtefactStore, prefix: str, result: ReconstructResult
) -> list[str]:
    """Write the report and put its files in the artefact store as ``<prefix>/report/<file>``."""
    from pointillist.reconstructor.report import write_report  # plotly etc. only when needed

    names = []
    with tempfile.TemporaryDirectory(prefix="pnt-recon-") as tmp:
        out = Path(tmp) / "report"
        await asyncio.to_thread(write_report, result, out)
        for path in sorted(p for p in out.rglob("*") if p.is_file()):
            name = f"{prefix}/report/{path.relative_to(out).as_posix()}"
            await artefacts.put(name, path, description="HOLLy 3D reconstruction report")
            names.append(name)
    return names


# -- training in a worker thread ---------------------------------------------------------


@dataclass(frozen=True)
class EpochDone:
    """What the training thread hands over after an epoch or a finished run."""

    epoch: reconstructor_pb2.ReconEpoch | None  # None: a run finished (no new epoch)
    checkpoint: bytes | None  # the serialised state, when the job keeps checkpoints


def observe_step(p: StepProgress, path: str) -> None:
    """Training progress into the metrics (called from the training thread)."""
    LOSS.set(p.loss)
    IMAGES.labels(path).inc(p.images)


def train_job(
    table: LocalizationTable,
    settings: Settings,
    truth: np.ndarray | None,
    path: str,
    on_epoch: Callable[[EpochDone], None],
    should_stop: Callable[[], bool],
    resume: ReconstructState | None = None,
    keep_checkpoints: bool = False,
) -> ReconstructResult:
    """`engine.reconstruct_table` with the service's metrics; blocking (a worker thread)."""

    def checkpoint(state: ReconstructState) -> None:
        blob = state_bytes(state) if keep_checkpoints else None
        epoch = None
        if state.trainer is not None and state.trainer["history"]:
            epoch = epoch_proto(len(state.finished), state.trainer["history"][-1], settings)
            EPOCH.set(epoch.epoch)
            IMAGES_PER_S.set(epoch.images_per_s)
        if epoch is not None or blob is not None:
            on_epoch(EpochDone(epoch, blob))

    DEVICE.clear()
    DEVICE.labels(resolve_device(settings.config.device)).set(1)
    ACTIVE.inc()
    try:
        result = reconstruct_table(
            table,
            settings,
            truth_nm=truth,
            progress=lambda _, p: observe_step(p, path),
            should_stop=should_stop,
            checkpoint=checkpoint,
            resume=resume,
        )
    finally:
        ACTIVE.dec()
    VIEWS.labels(path).inc(len(result.views))
    SKIPPED.labels(path).inc(len(result.skipped))
    FIT_SECONDS.labels(path).observe(result.seconds)
    return result


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark an abandoned job's outcome as seen (no 'exception never retrieved')."""
    if not future.cancelled():
        future.exception()


class Job:
    """One reconstruction in a worker thread: finished epochs arrive on an asyncio queue;
    `stop` makes the training raise TrainingCancelled at its next step."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[EpochDone | None] = asyncio.Queue()
        self.stop_reason = ""
        self._stop = threading.Event()
        self.future: asyncio.Future[ReconstructResult] | None = None

    def stop(self, reason: str) -> None:
        if not self._stop.is_set():
            self.stop_reason = reason
            self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def start(
        self,
        table: LocalizationTable,
        settings: Settings,
        truth: np.ndarray | None,
        path: str,
        resume: ReconstructState | None = None,
        keep_checkpoints: bool = False,
    ) -> asyncio.Future[ReconstructResult]:
        def on_epoch(item: EpochDone) -> None:  # training thread
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)

        self.future = self.loop.run_in_executor(
            None,
            functools.partial(
                train_job,
                table,
                settings,
                truth,
                path,
                on_epoch,
                self._stop.is_set,
                resume,
                keep_checkpoints,
            ),
        )
        self.future.add_done_callback(_retrieve)
        # after every epoch: the thread schedules its items before the future completes
        self.future.add_done_callback(lambda _: self.queue.put_nowait(None))
        return self.future

    async def updates(self) -> AsyncIterator[list[EpochDone]]:
        """Batches of finished epochs (what has arrived since the last batch) until the
        training ends."""
        while True:
            items = [await self.queue.get()]
            while not self.queue.empty():
                items.append(self.queue.get_nowait())
            done = None in items
            items = [i for i in items if i is not None]
            if items:
                yield items
            if done:
                return


# -- gRPC ------------------------------------------------------------------------------


class ReconstructorService(reconstructor_pb2_grpc.ReconstructorServicer):
    """Reconstruct, GetRun and CancelRun; errors are mapped by core.rpc."""

    def __init__(
        self, artefacts: ArtefactStore, defaults: Settings, worker: ReconstructorWorker
    ) -> None:
        self.artefacts = artefacts
        self.defaults = defaults
        self.worker = worker

    async def Reconstruct(
        self, request: reconstructor_pb2.ReconstructRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[reconstructor_pb2.ReconstructUpdate]:
        table, _ = particles_from_proto(request.particles)
        settings = self.defaults.with_params(json_format.MessageToDict(request.params))
        truth = truth_from_proto(request.truth)
        job = Job()
        future = job.start(table, settings, truth, "grpc")
        try:
            async for items in job.updates():
                for item in items:
                    if item.epoch is not None:
                        yield reconstructor_pb2.ReconstructUpdate(progress=item.epoch)
            result = await future
        finally:
            job.stop("the client cancelled the call")  # no-op once the training is over
        run_id = request.particles.run_id
        prefix = request.name or artefact_prefix(run_id or uuid.uuid4().hex[:12])
        try:
            names = await store_report(self.artefacts, prefix, result)
        except Exception as exc:  # the result matters more than the pictures
            log.exception("Reconstruct: the report failed")
            names, failed = [], f"the report failed: {exc!r}"
        else:
            failed = ""
        message = result_proto(result, settings, names, run_id)
        if failed:
            message.summary.append(failed)
        yield reconstructor_pb2.ReconstructUpdate(result=message)

    async def GetRun(
        self, request: simulator_pb2.RunRequest, context: grpc.aio.ServicerContext
    ) -> run_pb2.RunStatus:
        return await self.worker.run_status(request.run_id)

    async def CancelRun(
        self, request: simulator_pb2.RunRequest, context: grpc.aio.ServicerContext
    ) -> run_pb2.RunStatus:
        return await self.worker.cancel(request.run_id)


# -- bus -------------------------------------------------------------------------------


class ReconstructorWorker(RunWorker):
    """Reconstructs each run's views once they are complete (module docstring)."""

    source = SOURCE
    ack_wait_s = 120.0  # a long training keeps the event busy

    def __init__(
        self,
        bus: Bus,
        defaults: Settings,
        durable: str = "reconstructor",
        run_id: str = "*",
        idle_timeout_s: float = 300.0,
        cancel_poll_s: float = 1.0,
    ) -> None:
        super().__init__(bus, durable, run_id, idle_timeout_s)
        self.defaults = defaults
        self.cancel_poll_s = cancel_poll_s
        self.active: dict[str, Job] = {}
        self.statuses: OrderedDict[str, run_pb2.RunStatus] = OrderedDict()

    # -- run control (the servicer's GetRun / CancelRun) ----------------------------------

    def _local(self, run_id: str, **fields: Any) -> run_pb2.RunStatus:
        """This replica's status of its job on ``run_id``, updated with ``fields``."""
        status = self.statuses.get(run_id)
        if status is None:
            status = self.statuses[run_id] = run_pb2.RunStatus(run_id=run_id)
            status.started.GetCurrentTime()
            while len(self.statuses) > _KEPT_STATUSES:
                self.statuses.popitem(last=False)
        counters = fields.pop("counters", {})
        for name, value in fields.items():
            setattr(status, name, value)
        status.counters.update(counters)
        status.updated.GetCurrentTime()
        return status

    async def _registered(self, run_id: str) -> run_pb2.RunStatus | None:
        try:
            return await self.bus.runs.get(run_id)
        except NotFound:
            return None

    async def run_status(self, run_id: str) -> run_pb2.RunStatus:
        """The registry's status of the run with this replica's job (state, progress,
        message, counters) over it; NotFound when neither knows the run."""
        validate_run_id(run_id)
        registered = await self._registered(run_id)
        local = self.statuses.get(run_id)
        if registered is None and local is None:
            raise NotFound(f"no reconstructor run {run_id!r}")
        status = run_pb2.RunStatus(run_id=run_id)
        if registered is not None:
            status.CopyFrom(registered)
        if local is not None:
            cancelling = status.state == run_pb2.RUN_STATE_CANCELLED
            if not (cancelling and local.state == run_pb2.RUN_STATE_RUNNING):
                status.state = local.state
            status.progress = local.progress
            status.message = local.message
            status.counters.update(local.counters)
            if registered is None:
                status.started.CopyFrom(local.started)
            status.updated.CopyFrom(local.updated)
        return status

    async def cancel(self, run_id: str) -> run_pb2.RunStatus:
        """Stop the run's reconstruction here and mark it CANCELLED in the registry, so the
        replica training it stops too; a finished reconstruction is left as it is."""
        validate_run_id(run_id)
        job = self.active.get(run_id)
        local = self.statuses.get(run_id)
        if job is None and local is not None and local.state in _FINISHED:
            return await self.run_status(run_id)  # finished here: nothing to cancel
        message = "cancelled: CancelRun (reconstructor)"
        if job is not None:
            job.stop("CancelRun")
            self._local(
                run_id,
                state=run_pb2.RUN_STATE_CANCELLED,
                message="cancelling: the training stops at its next step",
            )

        def change(status: run_pb2.RunStatus) -> None:
            if "recon_points" in status.counters and job is None:
                return  # reconstructed already (by another replica)
            status.state = run_pb2.RUN_STATE_CANCELLED
            status.message = message

        try:
            await self.bus.runs.update(run_id, change)
        except NotFound:
            if job is None:
                raise NotFound(f"no reconstructor run {run_id!r}") from None
        return await self.run_status(run_id)

    # -- processing a run ----------------------------------------------------------------

    async def _load_checkpoint(self, run_id: str, settings: Settings) -> ReconstructState | None:
        """The run's checkpoint when it can resume ``settings`` (events say what happens)."""
        name = checkpoint_name(run_id)
        try:
            state = state_from_bytes(await self.bus.artefacts.get(name))
            reason = checkpoint_mismatch(state, settings)
        except NotFound:
            return None
        except Exception as exc:  # unreadable: start afresh rather than fail the run
            state, reason = None, f"it cannot be read ({type(exc).__name__}: {exc})"
        total = settings.n_runs * settings.config.epochs
        if reason is not None or state is None:
            await self._event(
                run_id,
                EVENT_CHECKPOINT_IGNORED,
                run_pb2.Event.KIND_INFO,
                f"checkpoint {name} ignored, starting afresh: {reason}",
            )
            return None
        done = epochs_done(state, settings)
        await self._event(
            run_id,
            EVENT_RESUMED,
            run_pb2.Event.KIND_PROGRESS,
            f"resuming from checkpoint {name}: {done} of {total} epochs done",
            done=done,
            total=total,
        )
        return state

    async def _publish_progress(self, run_id: str, job: Job, total: int, registered: bool) -> None:
        """Store each checkpoint, then announce its epochs (status, registry, events).

        Bus failures are logged and the training goes on: the next epoch tries again."""
        async for items in job.updates():
            blob = next((i.checkpoint for i in reversed(items) if i.checkpoint), None)
            epochs = [i.epoch for i in items if i.epoch is not None]
            try:
                if blob is not None:
                    await self.bus.artefacts.put(
                        checkpoint_name(run_id), blob, description="HOLLy training checkpoint"
                    )
                if not epochs:
                    continue
                done = epochs[-1].done
                self._local(
                    run_id,
                    progress=done / total,
                    message=epoch_text(epochs[-1]),
                    counters={"recon_epochs_done": done},
                )
                if registered:
                    with contextlib.suppress(NotFound):
                        await self.bus.runs.update(
                            run_id, lambda s, n=done: s.counters.update({"recon_epochs_done": n})
                        )
                for e in epochs:
                    await self._event(
                        run_id,
                        EVENT_EPOCH + e.done,
                        run_pb2.Event.KIND_PROGRESS,
                        epoch_text(e),
                        done=e.done,
                        total=e.total,
                    )
            except Exception as exc:
                log.warning("run %s: checkpoint or progress not published: %r", run_id, exc)

    async def _watch_cancel(self, run_id: str, job: Job) -> None:
        """Stop the job when the run's registry state turns CANCELLED (any replica's
        CancelRun, or another service's)."""
        while not job.stopping:
            await asyncio.sleep(self.cancel_poll_s)
            try:
                status = await self.bus.runs.get(run_id)
            except NotFound:
                continue
            except Exception as exc:  # the bus is away: try again next time
                log.warning("run %s: reading its registry state failed: %r", run_id, exc)
                continue
            if status.state == run_pb2.RUN_STATE_CANCELLED:
                job.stop("the run is CANCELLED in the run registry")

    async def _train(
        self,
        run_id: str,
        job: Job,
        table: LocalizationTable,
        settings: Settings,
        truth: np.ndarray | None,
        resume: ReconstructState | None,
        registered: bool,
    ) -> ReconstructResult | None:
        """Train in a thread with checkpoints and progress; None when cancelled."""
        total = settings.n_runs * settings.config.epochs
        future = job.start(table, settings, truth, "bus", resume, keep_checkpoints=True)
        publisher = asyncio.create_task(self._publish_progress(run_id, job, total, registered))
        watcher = asyncio.create_task(self._watch_cancel(run_id, job))
        try:
            try:
                result = await asyncio.shield(future)
            finally:
                watcher.cancel()
            await publisher  # every checkpoint stored, every epoch announced
            return result
        except TrainingCancelled:
            await publisher  # the latest checkpoint is stored before the run is recorded
            await self._cancelled(run_id, job.stop_reason, registered)
            return None
        except asyncio.CancelledError:  # the service stops: the event is nak'ed, and a
            job.stop("the service is stopping")  # replica resumes from the checkpoint
            publisher.cancel()
            self._local(
                run_id,
                state=run_pb2.RUN_STATE_PENDING,
                message="interrupted: the service stopped; resumes from the checkpoint",
            )
            raise
        except BaseException:
            await asyncio.gather(publisher, return_exceptions=True)
            raise

    async def _cancelled(self, run_id: str, reason: str, registered: bool) -> None:
        status = self._local(run_id)
        done = status.counters.get("recon_epochs_done", 0)
        total = status.counters.get("recon_epochs_total", 0)
        text = (
            f"cancelled ({reason}) after {done} of {total} epochs; checkpoint "
            f"{checkpoint_name(run_id)} kept"
        )
        self._local(run_id, state=run_pb2.RUN_STATE_CANCELLED, message=text)
        if registered:

            def change(s: run_pb2.RunStatus) -> None:
                s.state = run_pb2.RUN_STATE_CANCELLED
                s.message = text

            with contextlib.suppress(NotFound):
                await self.bus.runs.update(run_id, change)
        await self._event(
            run_id, EVENT_CANCELLED, run_pb2.Event.KIND_INFO, text, done=done, total=total
        )
        RUNS.labels("cancelled").inc()
        log.info("run %s: %s", run_id, text)

    async def handle(self, d: Delivery) -> None:
        """Process the run an END_OF_ACQUISITION announces; ignore every other event."""
        event = d.message
        if not isinstance(event, run_pb2.Event):
            return
        if event.kind != run_pb2.Event.KIND_END_OF_ACQUISITION or "particles" not in event.last_seq:
            return
        run_id = d.run_id
        registered = await self._registered(run_id)
        spec = registered.spec if registered is not None else None
        try:
            settings = self.defaults if spec is None else run_settings(spec, self.defaults)
        except InvalidInput as exc:
            await self._invalid(run_id, exc)
            raise  # the consumer dead-letters the event with the reason
        if settings is None:
            RUNS.labels("skipped").inc()
            log.info("run %s has no %s step; not processed", run_id, STEP)
            return
        if registered is not None and registered.state == run_pb2.RUN_STATE_CANCELLED:
            RUNS.labels("cancelled").inc()
            await self._event(
                run_id,
                EVENT_CANCELLED,
                run_pb2.Event.KIND_INFO,
                "not reconstructed: the run is CANCELLED",
            )
            return
        job = self.active[run_id] = Job()  # CancelRun from here on stops it
        try:
            await self._process(d, event, job, settings, registered)
        finally:
            self.active.pop(run_id, None)

    async def _invalid(self, run_id: str, exc: Exception) -> None:
        RUNS.labels("invalid").inc()
        self._local(run_id, state=run_pb2.RUN_STATE_FAILED, message=f"not processed: {exc}")
        await self._event(run_id, EVENT_ERROR, run_pb2.Event.KIND_ERROR, f"not processed: {exc}")

    async def _process(
        self,
        d: Delivery,
        event: run_pb2.Event,
        job: Job,
        settings: Settings,
        registered: run_pb2.RunStatus | None,
    ) -> None:
        run_id = d.run_id
        spec = registered.spec if registered is not None else None
        total = settings.n_runs * settings.config.epochs
        self._local(
            run_id,
            state=run_pb2.RUN_STATE_RUNNING,
            progress=0.0,
            message="reading the views",
            counters={"recon_epochs_total": total, "recon_epochs_done": 0},
        )
        try:
            tables, missing = await read_run(
                self.bus,
                "particles",
                run_id,
                reader=f"{self.durable}-{run_id}",
                last_seq_key="particles",
                last_seq=event.last_seq["particles"],
                idle_timeout_s=self.idle_timeout_s,
            )
            table = tables.table()
            if not len(table):
                RUNS.labels("empty").inc()
                self._local(run_id, state=run_pb2.RUN_STATE_SUCCEEDED, message="no views")
                await self._event(run_id, EVENT_DONE, run_pb2.Event.KIND_INFO, "no views")
                return
            truth = await asyncio.to_thread(spec_truth, spec)
            resume = await self._load_checkpoint(run_id, settings)
            done = epochs_done(resume, settings) if resume is not None else 0
            n_views = len(np.unique(table["particle"])) if "particle" in table else 0
            config = settings.config
            await self._event(
                run_id,
                EVENT_START,
                run_pb2.Event.KIND_PROGRESS,
                f"reconstructing {config.n_points} 3D points from {n_views} views "
                f"({len(table)} localizations): {settings.n_runs} run(s) x {config.epochs} "
                f"epochs" + (", with the simulated ground truth" if truth is not None else ""),
                done=done,
                total=total,
            )
            counters = {"recon_epochs_total": total, "recon_epochs_done": done}
            self._local(run_id, progress=done / total, message="training", counters=counters)
            if registered is not None:
                with contextlib.suppress(NotFound):
                    await self.bus.runs.update(run_id, lambda s: s.counters.update(counters))
            start = time.perf_counter()
            result = await self._train(
                run_id, job, table, settings, truth, resume, registered is not None
            )
        except InvalidInput as exc:
            await self._invalid(run_id, exc)
            raise  # the consumer dead-letters the event with the reason
        if result is None:
            return  # cancelled, recorded; the event is acked
        await self._publish_result(run_id, d, result, missing, start, registered is not None)

    async def _publish_result(
        self,
        run_id: str,
        d: Delivery,
        result: ReconstructResult,
        missing: list[int],
        start: float,
        registered: bool,
    ) -> None:
        if result.skipped:
            await self._event(
                run_id, EVENT_SKIPPED, run_pb2.Event.KIND_INFO, skipped_text(result.skipped)
            )
        try:
            report = await store_report(self.bus.artefacts, artefact_prefix(run_id), result)
        except Exception as exc:  # the points matter more than the pictures
            log.exception("run %s: the report failed", run_id)
            report = []
            await self._event(
                run_id, EVENT_ERROR, run_pb2.Event.KIND_ERROR, f"the report failed: {exc!r}"
            )
        points = result.points_table()
        await self.bus.publish_locs(
            run_id, points, RECON_SEQ, kind="recon", source=SOURCE, derived_from=d
        )
        total = sum(len(r.history) for r in result.runs)
        text = (
            f"{len(result.runs)} run(s) of {len(points) // len(result.runs)} points from "
            f"{len(result.views)} views in {time.perf_counter() - start:.1f} s on "
            f"{result.runs[0].device}"
        )
        if result.evaluations is not None:
            e = result.evaluations[result.consensus.best]
            text += (
                f"; kept run {result.consensus.best}: RMSD {e.rmsd_nm:.1f} nm vs random cloud "
                f"{e.baseline_rmsd_nm:.1f} nm (ratio {e.ratio:.2f})"
            )
        if len(result.runs) > 1:
            text += f"; spread between runs {result.consensus.spread:.1f} nm"
        if report:
            html = next((n for n in report if n.endswith("/report.html")), report[0])
            text += f"; report {html} ({len(report)} files)"
        text += f"; checkpoint {checkpoint_name(run_id)}"
        if missing:
            text += f"; particles seq(s) {missing} never arrived within {self.idle_timeout_s:g} s"
        await self._event(
            run_id, EVENT_DONE, run_pb2.Event.KIND_PROGRESS, text, done=total, total=total
        )
        await self.bus.publish_end_of_acquisition(
            run_id, {"recon": RECON_SEQ}, source=SOURCE, message=text
        )
        counters = {
            "recon_views": len(result.views),
            "recon_skipped_views": len(result.skipped),
            "recon_points": len(points),
            "recon_epochs_done": total,
        }
        self._local(
            run_id, state=run_pb2.RUN_STATE_SUCCEEDED, progress=1.0, message=text, counters=counters
        )
        if registered:
            with contextlib.suppress(NotFound):
                await self.bus.runs.update(run_id, lambda s: s.counters.update(counters))
        RUNS.labels("partial" if missing else "complete").inc()
        log.info("run %s: %s", run_id, text)
