"""The VAE's gRPC servicer and bus worker: thin, the science is behind `engine`.

gRPC: ``Fit(FitRequest) -> FitResponse`` trains a PC-VAE on the request's particles,
stores the model (and the report, with ``analyze``) in the artefact store and returns
the latent table; ``Embed(EmbedRequest) -> EmbedResponse`` embeds particles with a
stored model.

Bus: a run's particles are needed whole, so the trigger is the run's
END_OF_ACQUISITION listing ``particles``. All replicas share one durable consumer of
``pnt.*.events``; the replica that takes the event reads ``pnt.<run>.particles`` whole
(`pointillist.core.bus.collect`), trains, embeds and analyses, then publishes:

- the latent table on ``pnt.<run>.latent`` (seq 0, LocalizationBatch, one row per
  particle: centroid x, y (, z) nm, particle, latent_0.., estimates, ``true_*`` columns
  from simulated truth);
- the model as artefact ``vae/<run>/model.pt`` and the report files as
  ``vae/<run>/report/<file>`` (report.md, report.html, PNG figures, latent.csv);
- progress events on ``pnt.<run>.events`` (one per epoch), one listing skipped
  particles (< 3 localizations, non-finite coordinates) with their reasons, a final
  one naming the artefacts, and an END_OF_ACQUISITION listing ``latent: 0``.

The event is acked only after the results are out (a replica dying mid-run leaves the
run to another). Settings per run: the first step named ``vae`` of the run's RunSpec
(its params: VaeConfig fields plus ``analyze``, ``n_bins``, ``kind``); a run without a
spec, or without steps, uses the service defaults; a spec with steps but no ``vae``
step is not processed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format
from prometheus_client import Counter, Gauge, Histogram

from pointillist.core.bus import ArtefactStore, Bus, Delivery, particles_from_proto
from pointillist.core.bus.collect import RunWorker, read_run
from pointillist.core.errors import InvalidInput, NotFound
from pointillist.core.table import LocalizationTable
from pointillist.v1 import run_pb2, vae_pb2, vae_pb2_grpc
from pointillist.vae.engine import (
    KINDS,
    Settings,
    VaeFit,
    check_kind,
    embed_table,
    fit_table,
    latent_table,
    with_truth,
)
from pointillist.vae.report import write_report
from pointillist.vae.training import TrainedVae

log = logging.getLogger(__name__)

SOURCE = "vae"
EVENT_START, EVENT_DONE, EVENT_ERROR, EVENT_SKIPPED = 1, 2, 3, 4
EVENT_EPOCH = 100  # + epoch number: one progress event per epoch
LATENT_SEQ = 0
_MAX_LISTED_SKIPS = 20  # skipped particles named in the event; the count is always exact

PARTICLES = Counter("pointillist_vae_particles_total", "Particles embedded", ["path"])
SKIPPED = Counter(
    "pointillist_vae_skipped_particles_total",
    "Particles left out (< 3 localizations or non-finite coordinates)",
    ["path"],
)
LOSS = Gauge(
    "pointillist_vae_training_loss",
    "Mean loss of the latest training epoch: total, reconstruction (Chamfer) or kld",
    ["term"],
)
EPOCH = Gauge("pointillist_vae_training_epoch", "Epoch of the training in progress (1-based)")
STEPS = Counter("pointillist_vae_training_steps_total", "Optimisation steps taken")
FIT_SECONDS = Histogram(
    "pointillist_vae_fit_seconds",
    "Time to train, embed and analyse one particle set",
    ["path"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 3600, 7200),
)
RUNS = Counter(
    "pointillist_vae_runs_total",
    "Runs the bus worker finished: complete, partial (some seqs never arrived), empty, "
    "skipped (the run spec has no vae step), invalid",
    ["outcome"],
)


def run_settings(spec: run_pb2.RunSpec, defaults: Settings) -> Settings | None:
    """Settings for a run from its spec (module docstring); None: not processed."""
    if not spec.steps:
        return defaults
    for step in spec.steps:
        if step.name == "vae":
            return defaults.with_params(json_format.MessageToDict(step.params))
    return None


def observe_progress(progress: Any) -> None:
    """Training progress into the metrics (called from the training thread)."""
    STEPS.inc()
    EPOCH.set(progress.epoch + 1)
    LOSS.labels("total").set(progress.loss)
    LOSS.labels("reconstruction").set(progress.recon)
    LOSS.labels("kld").set(progress.kld)


def skipped_text(fit_skipped: list[Any]) -> str:
    """'N particles skipped: id (reason), ...' naming at most a few."""
    named = ", ".join(f"{s.particle} ({s.reason})" for s in fit_skipped[:_MAX_LISTED_SKIPS])
    more = len(fit_skipped) - _MAX_LISTED_SKIPS
    return f"{len(fit_skipped)} particle(s) skipped: {named}" + (
        f", and {more} more" if more > 0 else ""
    )


async def store_fit(artefacts: ArtefactStore, prefix: str, fit: VaeFit) -> tuple[str, list[str]]:
    """Put the model and the report (when analysed) in the artefact store; their names."""
    with tempfile.TemporaryDirectory(prefix="pnt-vae-") as tmp:
        model_path = Path(tmp) / "model.pt"
        await asyncio.to_thread(fit.trained.save, model_path)
        model_name = f"{prefix}/model.pt"
        await artefacts.put(model_name, model_path, description="PC-VAE model")
        report_names = []
        if fit.analysis is not None:
            out = Path(tmp) / "report"
            await asyncio.to_thread(write_report, fit.analysis, out)
            for path in sorted(p for p in out.rglob("*") if p.is_file()):
                name = f"{prefix}/report/{path.relative_to(out).as_posix()}"
                await artefacts.put(name, path, description="PC-VAE heterogeneity report")
                report_names.append(name)
    return model_name, report_names


def skipped_proto(fit_skipped: list[Any]) -> list[vae_pb2.SkippedParticle]:
    return [vae_pb2.SkippedParticle(particle=s.particle, reason=s.reason) for s in fit_skipped]


def history_proto(trained: TrainedVae) -> list[vae_pb2.EpochLoss]:
    return [
        vae_pb2.EpochLoss(
            epoch=int(h["epoch"]) + 1,  # history counts from 0
            loss=float(h["loss"]),
            reconstruction=float(h["recon"]),
            kld=float(h["kld"]),
            beta=float(h["beta"]),
            seconds=float(h["seconds"]),
        )
        for h in trained.history
    ]


def fit_with_metrics(
    table: LocalizationTable,
    settings: Settings,
    path: str,
    progress: Callable[[Any], None] = observe_progress,
) -> VaeFit:
    """`engine.fit_table` with the service's metrics; ``path`` is grpc or bus."""
    fit = fit_table(
        table,
        settings.config,
        kind=settings.kind,
        analyze_latent=settings.analyze,
        n_bins=settings.n_bins,
        axes=settings.axes,
        progress=progress,
    )
    PARTICLES.labels(path).inc(len(fit.particles.ids))
    SKIPPED.labels(path).inc(len(fit.skipped))
    FIT_SECONDS.labels(path).observe(fit.seconds)
    return fit


class VaeService(vae_pb2_grpc.VaeServicer):
    """Fit and Embed; errors are mapped by core.rpc."""

    def __init__(self, artefacts: ArtefactStore, defaults: Settings) -> None:
        self.artefacts = artefacts
        self.defaults = defaults

    async def Fit(
        self, request: vae_pb2.FitRequest, context: grpc.aio.ServicerContext
    ) -> vae_pb2.FitResponse:
        table, truth = particles_from_proto(request.particles)
        params = json_format.MessageToDict(request.params)
        kind = request.particles.kind if request.particles.kind in KINDS else None
        settings = self.defaults.with_params({"analyze": request.analyze, "kind": kind, **params})
        fit = await asyncio.to_thread(fit_with_metrics, table, settings, "grpc")
        prefix = request.name or f"vae/{request.particles.run_id or uuid.uuid4().hex[:12]}"
        model_name, report_names = await store_fit(self.artefacts, prefix, fit)
        latent = with_truth(fit.table(), truth)
        return vae_pb2.FitResponse(
            latent=latent.to_proto(request.particles.run_id, 0, source=SOURCE),
            model_artefact=model_name,
            report_artefacts=report_names,
            skipped=skipped_proto(fit.skipped),
            history=history_proto(fit.trained),
            seconds=fit.seconds,
            device=str(next(fit.trained.model.parameters()).device),
        )

    async def Embed(
        self, request: vae_pb2.EmbedRequest, context: grpc.aio.ServicerContext
    ) -> vae_pb2.EmbedResponse:
        if not request.model_artefact:
            raise InvalidInput("EmbedRequest.model_artefact is empty: name a trained model")
        table, truth = particles_from_proto(request.particles)
        with tempfile.TemporaryDirectory(prefix="pnt-vae-") as tmp:
            path = await self.artefacts.get_file(request.model_artefact, Path(tmp) / "model.pt")
            trained = await asyncio.to_thread(TrainedVae.load, path)
        particles, skipped, latent = await asyncio.to_thread(embed_table, trained, table)
        PARTICLES.labels("grpc").inc(len(particles.ids))
        SKIPPED.labels("grpc").inc(len(skipped))
        table_out = with_truth(latent_table(particles, latent), truth)
        return vae_pb2.EmbedResponse(
            latent=table_out.to_proto(request.particles.run_id, 0, source=SOURCE),
            skipped=skipped_proto(skipped),
        )


class VaeWorker(RunWorker):
    """Trains on each run's particles once they are complete (module docstring)."""

    source = SOURCE
    ack_wait_s = 120.0  # a long training keeps the event busy

    def __init__(
        self,
        bus: Bus,
        defaults: Settings,
        durable: str = "vae",
        run_id: str = "*",
        idle_timeout_s: float = 300.0,
    ) -> None:
        super().__init__(bus, durable, run_id, idle_timeout_s)
        self.defaults = defaults

    async def settings(self, run_id: str) -> Settings | None:
        """The run's settings from the run registry, or the defaults."""
        spec = await self.run_spec(run_id)
        if spec is None:
            return self.defaults
        return run_settings(spec, self.defaults)

    async def _train(self, run_id: str, table: LocalizationTable, settings: Settings) -> VaeFit:
        """Fit in a thread; one progress event per finished epoch."""
        loop = asyncio.get_running_loop()
        finished: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()
        last: list[Any] = []  # the latest step's progress

        def progress(p: Any) -> None:  # called in the training thread after every step
            observe_progress(p)
            if last and p.epoch != last[0].epoch:  # 0-based: p.epoch epochs are done
                loop.call_soon_threadsafe(finished.put_nowait, (p.epoch, last[0].loss))
            last[:] = [p]

        async def announce_all() -> None:
            total = settings.config.epochs
            while (item := await finished.get()) is not None:
                epoch, loss = item
                await self._event(
                    run_id,
                    EVENT_EPOCH + epoch,
                    run_pb2.Event.KIND_PROGRESS,
                    f"epoch {epoch} of {total} done (last step's loss {loss:.4g})",
                    done=epoch,
                    total=total,
                )

        publisher = asyncio.create_task(announce_all())
        try:
            fit = await asyncio.to_thread(fit_with_metrics, table, settings, "bus", progress)
        except BaseException:
            publisher.cancel()
            await asyncio.gather(publisher, return_exceptions=True)
            raise
        if last:
            finished.put_nowait((last[0].epoch + 1, last[0].loss))
        finished.put_nowait(None)
        await publisher  # every epoch announced before the results go out
        return fit

    async def handle(self, d: Delivery) -> None:
        """Process the run an END_OF_ACQUISITION announces; ignore every other event."""
        event = d.message
        if not isinstance(event, run_pb2.Event):
            return
        if event.kind != run_pb2.Event.KIND_END_OF_ACQUISITION or "particles" not in event.last_seq:
            return
        run_id = d.run_id
        try:
            settings = await self.settings(run_id)
            if settings is None:
                RUNS.labels("skipped").inc()
                log.info("run %s has no vae step; not processed", run_id)
                return
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
                await self._event(run_id, EVENT_DONE, run_pb2.Event.KIND_INFO, "no particles")
                return
            if settings.kind is None and tables.particle_kind:
                with contextlib.suppress(InvalidInput):
                    settings = replace(settings, kind=check_kind(tables.particle_kind))
            await self._event(
                run_id,
                EVENT_START,
                run_pb2.Event.KIND_PROGRESS,
                f"training a PC-VAE on {len(table)} localizations, {settings.config.epochs} epochs",
                done=0,
                total=settings.config.epochs,
            )
            start = time.perf_counter()
            fit = await self._train(run_id, table, settings)
        except InvalidInput as exc:
            RUNS.labels("invalid").inc()
            await self._event(
                run_id, EVENT_ERROR, run_pb2.Event.KIND_ERROR, f"not processed: {exc}"
            )
            raise  # the consumer dead-letters the event with the reason
        if fit.skipped:
            await self._event(
                run_id, EVENT_SKIPPED, run_pb2.Event.KIND_INFO, skipped_text(fit.skipped)
            )
        model_name, report_names = await store_fit(self.bus.artefacts, f"vae/{run_id}", fit)
        latent = with_truth(fit.table(), tables.truth())
        await self.bus.publish_locs(
            run_id, latent, LATENT_SEQ, kind="latent", source=SOURCE, derived_from=d
        )
        text = (
            f"{len(fit.particles.ids)} particles embedded in {time.perf_counter() - start:.1f} s; "
            f"model {model_name}"
            + (
                f", report {model_name.rsplit('/', 1)[0]}/report/report.html"
                if report_names
                else ""
            )
        )
        if missing:
            text += f"; particles seq(s) {missing} never arrived within {self.idle_timeout_s:g} s"
        n = len(fit.particles.ids)
        await self._event(run_id, EVENT_DONE, run_pb2.Event.KIND_PROGRESS, text, done=n, total=n)
        await self.bus.publish_end_of_acquisition(
            run_id, {"latent": LATENT_SEQ}, source=SOURCE, message=text
        )
        await self._count(run_id, fit)
        RUNS.labels("partial" if missing else "complete").inc()
        log.info("run %s: %s", run_id, text)

    async def _count(self, run_id: str, fit: VaeFit) -> None:
        """Put the particle counts on the run's status, when the run is registered."""

        def change(status: run_pb2.RunStatus) -> None:
            status.counters["embedded_particles"] = len(fit.particles.ids)
            status.counters["skipped_particles"] = len(fit.skipped)

        with contextlib.suppress(NotFound):
            await self.bus.runs.update(run_id, change)
