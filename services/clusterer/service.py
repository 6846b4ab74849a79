"""The clusterer's gRPC servicer and bus worker: thin, the science is behind `engine`.

gRPC: ``Cluster(ClusterRequest) -> ClusterResponse`` clusters one table per call.

Bus: clustering needs a run's localizations whole, and every replica must be able to do
it, so the trigger is the run's END_OF_ACQUISITION event, not the localizations. All
replicas share one durable consumer of ``pnt.*.events``; the replica that receives an
end of acquisition listing ``locs`` (localizations published directly) or ``frames``
(localizations derived by the localizer, one locs seq per frames seq) reads the run's
``pnt.<run>.locs`` from the start with a consumer of its own, until every seq up to the
announced last one has arrived (or none arrived for ``idle_timeout_s``: the run is then
clustered as it is and the event says which seqs were missing). Each locs batch is
validated on receipt; a bad one (no x/y, NaN coordinates, wrong types, columns unlike
the run's others) is dead-lettered on ``pnt.<run>.dead`` with the reason and the run
goes on without it. The event is acked only after the results are out, so a replica
that dies mid-run leaves the event to another, which redoes the run; outputs carry
Msg-Ids derived from the event, so a redo publishes no duplicates.

Results on ``pnt.<run>.clusters`` (LocalizationBatch): seq 0 (source ``clusterer``) is the
run's localizations with a ``cluster`` column (-1 = non-clustered; ``class`` too when
the method classifies), seq 1 (source ``clusterer-statistics``) the per-cluster table.
Then an END_OF_ACQUISITION listing ``clusters: 1`` from source ``clusterer`` tells
downstream readers the results are complete, and progress events go on
``pnt.<run>.events``. The run registry's counters get ``clusters`` and
``clustered_localizations`` when the run is registered.

Method and parameters per run: the first step named ``cluster`` of the run's RunSpec in
the run registry (``params.method`` or the step's ``method``, the other params as the
method's keyword parameters); a run with no RunSpec, or one without steps, uses the
service defaults; a run whose spec lists steps but no ``cluster`` step is not clustered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import json_format
from prometheus_client import Counter, Gauge, Histogram

from pointillist.clusterer.engine import (
    TableClustering,
    cluster_table,
    make_clusterer,
)
from pointillist.core.bus import Bus, Delivery
from pointillist.core.bus.codec import table_from_batch
from pointillist.core.bus.collect import RunTables, RunWorker, read_run
from pointillist.core.config import plain_params
from pointillist.core.errors import InvalidInput, NotFound
from pointillist.core.metrics import LATENCY_BUCKETS_S
from pointillist.core.table import LocalizationTable
from pointillist.v1 import clusterer_pb2, clusterer_pb2_grpc, run_pb2

log = logging.getLogger(__name__)

SOURCE = "clusterer"
STATISTICS_SOURCE = "clusterer-statistics"
LABELLED_SEQ = 0  # pnt.<run>.clusters seq of the labelled localizations
STATISTICS_SEQ = 1  # pnt.<run>.clusters seq of the per-cluster table
EVENT_START, EVENT_DONE, EVENT_ERROR = 1, 2, 3  # seqs of this service's events per run

LOCALIZATIONS = Counter(
    "pointillist_clusterer_localizations_total", "Localizations clustered", ["method", "path"]
)
CLUSTERS = Counter("pointillist_clusterer_clusters_total", "Clusters found", ["method", "path"])
SECONDS = Histogram(
    "pointillist_clusterer_seconds",
    "Time to cluster one table (clustering + per-cluster statistics)",
    ["method", "path"],
    buckets=LATENCY_BUCKETS_S,
)
THROUGHPUT = Gauge(
    "pointillist_clusterer_localizations_per_second",
    "Localizations per second of the latest clustering (rate() of the counter: overall)",
    ["method", "path"],
)
REJECTED = Counter(
    "pointillist_clusterer_rejected_total",
    "Tables or parameters rejected as invalid (bad locs batches on the bus are counted "
    "by the consumer's dead-letter metric)",
    ["path"],
)
RUNS = Counter(
    "pointillist_clusterer_runs_total",
    "Runs the bus worker finished: complete, partial (some seqs never arrived), empty "
    "(no localizations), skipped (the run spec has no cluster step), invalid",
    ["outcome"],
)


@dataclass(frozen=True)
class Defaults:
    """The service's default method and its parameters."""

    method: str = "dbscan"
    params: dict[str, Any] = field(default_factory=dict)

    def resolve(
        self, method: str | None, params: Mapping[str, Any] | None
    ) -> tuple[str, dict[str, Any]]:
        """(method, params) of a request: a named method takes only the given params; no
        method means the default method with the given params over the default params."""
        if method:
            return method, plain_params(params)
        return self.method, {**self.params, **plain_params(params)}

    def check(self) -> None:
        """InvalidInput unless the method exists and accepts these parameter names."""
        make_clusterer(self.method, self.params)


def run_settings(spec: run_pb2.RunSpec, defaults: Defaults) -> tuple[str, dict[str, Any]] | None:
    """(method, params) for a run from its spec (module docstring); None: not clustered."""
    if not spec.steps:
        return defaults.method, dict(defaults.params)
    for step in spec.steps:
        if step.name == "cluster":
            params = json_format.MessageToDict(step.params)
            method = params.pop("method", None) or step.method or None
            return defaults.resolve(method, params)
    return None


def cluster(
    table: LocalizationTable, method: str, params: Mapping[str, Any], path: str
) -> TableClustering:
    """`engine.cluster_table` with the service's metrics; ``path`` is grpc or bus."""
    start = time.perf_counter()
    try:
        result = cluster_table(table, method, params)
    except InvalidInput:
        REJECTED.labels(path).inc()
        raise
    LOCALIZATIONS.labels(method, path).inc(len(table))
    CLUSTERS.labels(method, path).inc(result.n_clusters)
    SECONDS.labels(method, path).observe(time.perf_counter() - start)
    if result.seconds > 0:
        THROUGHPUT.labels(method, path).set(len(table) / result.seconds)
    return result


class ClustererService(clusterer_pb2_grpc.ClustererServicer):
    """Cluster(ClusterRequest) -> ClusterResponse; errors are mapped by core.rpc."""

    def __init__(self, defaults: Defaults) -> None:
        self.defaults = defaults

    async def Cluster(
        self, request: clusterer_pb2.ClusterRequest, context: grpc.aio.ServicerContext
    ) -> clusterer_pb2.ClusterResponse:
        batch = request.localizations
        try:
            table = table_from_batch(batch)
        except InvalidInput:
            REJECTED.labels("grpc").inc()
            raise
        method, params = self.defaults.resolve(
            request.method, json_format.MessageToDict(request.params)
        )
        result = await asyncio.to_thread(cluster, table, method, params, "grpc")
        return clusterer_pb2.ClusterResponse(
            localizations=result.localizations.to_proto(batch.run_id, batch.seq, source=SOURCE),
            clusters=result.clusters.to_proto(batch.run_id, batch.seq, source=STATISTICS_SOURCE),
            n_clusters=result.n_clusters,
            method=method,
            class_names=list(result.clustering.class_names),
            seconds=result.seconds,
        )


class ClustererWorker(RunWorker):
    """Clusters each run once its localizations are complete (module docstring)."""

    source = SOURCE

    def __init__(
        self,
        bus: Bus,
        defaults: Defaults,
        durable: str = "clusterer",
        run_id: str = "*",
        idle_timeout_s: float = 300.0,
    ) -> None:
        super().__init__(bus, durable, run_id, idle_timeout_s)
        self.defaults = defaults

    async def settings(self, run_id: str) -> tuple[str, dict[str, Any]] | None:
        """The run's (method, params) from the run registry, or the defaults."""
        spec = await self.run_spec(run_id)
        if spec is None:
            return self.defaults.method, dict(self.defaults.params)
        return run_settings(spec, self.defaults)

    async def collect(self, run_id: str, key: str, last_seq: int) -> tuple[RunTables, list[int]]:
        """The run's locs up to ``last_seq`` of ``key`` and the seqs that never arrived."""
        return await read_run(
            self.bus,
            "locs",
            run_id,
            reader=f"{self.durable}-{run_id}",
            last_seq_key=key,
            last_seq=last_seq,
            idle_timeout_s=self.idle_timeout_s,
        )

    async def handle(self, d: Delivery) -> None:
        """Cluster the run an END_OF_ACQUISITION announces; ignore every other event."""
        event = d.message
        if not isinstance(event, run_pb2.Event):
            return
        if event.kind != run_pb2.Event.KIND_END_OF_ACQUISITION:
            return
        key = next((k for k in ("locs", "frames") if k in event.last_seq), None)
        if key is None:
            return  # e.g. this service's own announcement of clusters
        run_id = d.run_id
        try:
            settings = await self.settings(run_id)
            if settings is None:
                RUNS.labels("skipped").inc()
                log.info("run %s has no cluster step; not clustered", run_id)
                return
            method, params = settings
            make_clusterer(method, params)  # bad settings fail before the wait
            locs, missing = await self.collect(run_id, key, event.last_seq[key])
            table = locs.table()
            if not len(table):
                RUNS.labels("empty").inc()
                await self._event(
                    run_id, EVENT_DONE, run_pb2.Event.KIND_INFO, "no localizations to cluster"
                )
                return
            await self._event(
                run_id,
                EVENT_START,
                run_pb2.Event.KIND_PROGRESS,
                f"clustering {len(table)} localizations with {method}",
                done=0,
                total=len(table),
            )
            result = await asyncio.to_thread(cluster, table, method, params, "bus")
        except InvalidInput as exc:
            RUNS.labels("invalid").inc()
            await self._event(
                run_id, EVENT_ERROR, run_pb2.Event.KIND_ERROR, f"not clustered: {exc}"
            )
            raise  # the consumer dead-letters the event with the reason
        await self.bus.publish_locs(
            run_id,
            result.localizations,
            LABELLED_SEQ,
            kind="clusters",
            source=SOURCE,
            derived_from=d,
        )
        await self.bus.publish_locs(
            run_id,
            result.clusters,
            STATISTICS_SEQ,
            kind="clusters",
            source=STATISTICS_SOURCE,
            derived_from=d,
        )
        text = result.summary()
        if missing:
            text += f"; {key} seq(s) {missing} never arrived within {self.idle_timeout_s:g} s"
        await self._event(
            run_id, EVENT_DONE, run_pb2.Event.KIND_PROGRESS, text, done=len(table), total=len(table)
        )
        await self.bus.publish_end_of_acquisition(
            run_id, {"clusters": STATISTICS_SEQ}, source=SOURCE, message=text
        )
        await self._count(run_id, result)
        RUNS.labels("partial" if missing else "complete").inc()
        log.info("run %s clustered: %s", run_id, text)

    async def _count(self, run_id: str, result: TableClustering) -> None:
        """Put the clustering's counters on the run's status, when the run is registered."""

        def change(status: run_pb2.RunStatus) -> None:
            status.counters["clusters"] = result.n_clusters
            status.counters["clustered_localizations"] = int((result.clustering.labels >= 0).sum())

        with contextlib.suppress(NotFound):
            await self.bus.runs.update(run_id, change)
