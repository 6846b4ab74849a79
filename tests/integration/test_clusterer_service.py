"""The clusterer over a real NATS (locs in, clusters out) and over gRPC."""

import asyncio

import grpc
import numpy as np
import pytest
from google.protobuf import struct_pb2

from pointillist.clusterer.engine import cluster_table
from pointillist.clusterer.service import ClustererService, ClustererWorker, Defaults
from pointillist.core import runspec
from pointillist.core.rpc import channel, create_server
from pointillist.core.table import LocalizationTable
from pointillist.simulator.clusters import ClusterSimConfig, simulate_clusters
from pointillist.v1 import clusterer_pb2, clusterer_pb2_grpc, run_pb2

DEFAULTS = Defaults("dbscan", {"eps_nm": 30.0, "min_samples": 5})


@pytest.fixture(scope="module")
def field() -> LocalizationTable:
    return simulate_clusters(ClusterSimConfig(scenario="scenario5"), 7)


async def publish_in_batches(bus, run_id, table, n_batches):
    for seq, rows in enumerate(np.array_split(np.arange(len(table)), n_batches)):
        await bus.publish_locs(run_id, table.select(rows), seq)


async def clustered(bus, run_id, worker, timeout=60):
    """Run ``worker`` until the run's clusters are announced; (labelled, stats) tables."""
    got: dict[int, list[LocalizationTable]] = {}

    async def on_clusters(d):
        got.setdefault(d.seq, []).append(d.table)

    await worker.start()
    try:
        async with bus.consumer("clusters", f"read-{run_id}", run_id=run_id) as c:
            await asyncio.wait_for(c.run(on_clusters, until_complete=run_id), timeout)
    finally:
        await worker.stop()
    return LocalizationTable.concat(got[0]), LocalizationTable.concat(got[1])


async def dead_reasons(bus, run_id):
    sub = await bus.js.subscribe(f"pnt.{run_id}.dead", ordered_consumer=True)
    reasons = []
    try:
        while True:
            reasons.append((await sub.next_msg(timeout=0.5)).headers["Pnt-Dead-Reason"])
    except TimeoutError:
        return reasons
    finally:
        await sub.unsubscribe()


def worker_for(bus, run_id, defaults=DEFAULTS, **kwargs):
    """A worker dedicated to one run, so tests share the server without interfering."""
    return ClustererWorker(bus, defaults, durable=f"clu-{run_id}", run_id=run_id, **kwargs)


async def test_bus_round_trip_with_defaults_and_a_bad_batch_dead_lettered(
    bus, run_id, field, run_events
):
    await publish_in_batches(bus, run_id, field, 3)
    bad = LocalizationTable({"x": [np.nan, 1.0], "y": [2.0, 3.0]}, check_finite=False)
    await bus.publish("locs", bad.to_proto(run_id, 3))  # NaN x: must be dead-lettered
    await bus.publish_end_of_acquisition(run_id, {"locs": 3})
    labelled, stats = await clustered(bus, run_id, worker_for(bus, run_id))
    expected = cluster_table(field, DEFAULTS.method, DEFAULTS.params)
    np.testing.assert_array_equal(labelled["x"], field["x"])  # in seq order, bad batch left out
    np.testing.assert_array_equal(labelled["cluster"], expected.localizations["cluster"])
    assert len(stats) == expected.n_clusters > 20
    np.testing.assert_allclose(
        stats["radius_of_gyration_nm"], expected.clusters["radius_of_gyration_nm"]
    )
    assert any("non-finite" in r for r in await dead_reasons(bus, run_id))
    done = [
        e for e in await run_events(run_id, "clusterer") if e.kind == run_pb2.Event.KIND_PROGRESS
    ]
    assert done[-1].done == len(field) and f"{expected.n_clusters} clusters" in done[-1].message


async def test_per_run_method_and_params_from_the_run_registry(bus, run_id, field):
    spec = runspec.load_yaml(
        f"run_id: {run_id}\nsource: {{subject: pnt.{run_id}.locs}}\n"
        "steps: [{name: cluster, params: {method: hdbscan, min_cluster_size: 8}}]"
    )
    await bus.runs.create(spec)
    await publish_in_batches(bus, run_id, field, 2)
    # localizations derived from frames: complete when every frames seq has its locs
    await bus.publish_end_of_acquisition(run_id, {"frames": 1})
    labelled, stats = await clustered(bus, run_id, worker_for(bus, run_id))
    expected = cluster_table(field, "hdbscan", {"min_cluster_size": 8})
    np.testing.assert_array_equal(labelled["cluster"], expected.localizations["cluster"])
    assert len(stats) == expected.n_clusters
    status = await bus.runs.get(run_id)
    assert status.counters["clusters"] == expected.n_clusters
    assert status.counters["clustered_localizations"] == (labelled["cluster"] >= 0).sum()


async def test_missing_batches_are_waited_for_then_the_run_is_clustered_as_it_is(
    bus, run_id, field, run_events
):
    await publish_in_batches(bus, run_id, field.select(np.arange(1000)), 2)
    await bus.publish_end_of_acquisition(run_id, {"locs": 2})  # seq 2 never comes
    labelled, _ = await clustered(bus, run_id, worker_for(bus, run_id, idle_timeout_s=1.0))
    assert len(labelled) == 1000
    done = (await run_events(run_id, "clusterer"))[-1]
    assert "seq(s) [2] never arrived" in done.message


async def test_invalid_run_params_dead_letter_the_run_with_the_reason(
    bus, run_id, field, run_events
):
    spec = runspec.load_yaml(
        f"run_id: {run_id}\nsteps: [{{name: cluster, method: dbscan, params: {{eps: 3}}}}]"
    )
    await bus.runs.create(spec)
    await publish_in_batches(bus, run_id, field, 1)
    await bus.publish_end_of_acquisition(run_id, {"locs": 0})
    worker = worker_for(bus, run_id)
    await worker.start()
    try:
        for _ in range(100):
            reasons = await dead_reasons(bus, run_id)
            if reasons:
                break
    finally:
        await worker.stop()
    assert "unknown parameter(s) ['eps']" in reasons[0]
    errors = [
        e for e in await run_events(run_id, "clusterer") if e.kind == run_pb2.Event.KIND_ERROR
    ]
    assert "unknown parameter(s) ['eps']" in errors[0].message


async def test_grpc_cluster_with_defaults_named_method_and_bad_input(field):
    server = await create_server(
        [(clusterer_pb2_grpc.add_ClustererServicer_to_server, ClustererService(DEFAULTS))],
        service_names=["pointillist.v1.Clusterer"],
    )
    try:
        async with channel(server.address) as chan:
            stub = clusterer_pb2_grpc.ClustererStub(chan)
            batch = field.to_proto("g1", 4)
            reply = await stub.Cluster(clusterer_pb2.ClusterRequest(localizations=batch))
            expected = cluster_table(field, DEFAULTS.method, DEFAULTS.params)
            labelled = LocalizationTable.from_proto(reply.localizations)
            np.testing.assert_array_equal(labelled["cluster"], expected.localizations["cluster"])
            assert reply.method == "dbscan" and reply.n_clusters == expected.n_clusters
            assert len(LocalizationTable.from_proto(reply.clusters)) == reply.n_clusters
            assert reply.localizations.run_id == "g1" and reply.localizations.seq == 4

            params = struct_pb2.Struct()
            params.update({"min_cluster_size": 8})
            reply = await stub.Cluster(
                clusterer_pb2.ClusterRequest(localizations=batch, method="hdbscan", params=params)
            )
            assert reply.method == "hdbscan"
            assert (
                reply.n_clusters
                == cluster_table(field, "hdbscan", {"min_cluster_size": 8}).n_clusters
            )

            bad_requests = {
                "missing required column(s) ['y']": clusterer_pb2.ClusterRequest(
                    localizations=_without_y(batch)
                ),
                "unknown clustering method 'kmeans'": clusterer_pb2.ClusterRequest(
                    localizations=batch, method="kmeans"
                ),
            }
            for message, request in bad_requests.items():
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await stub.Cluster(request)
                assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
                assert message in err.value.details()
    finally:
        await server.shutdown(grace=1)


def _without_y(batch):
    out = type(batch)()
    out.CopyFrom(batch)
    kept = [c for c in out.columns if c.name != "y"]
    del out.columns[:]
    out.columns.extend(kept)
    return out
