"""The reconstructor service over a real NATS (views in; points, events, checkpoint and
report out; resume; cancellation) and over gRPC (streamed progress, result, cancel)."""

import asyncio
import dataclasses
import io
import time
import uuid

import grpc
import numpy as np
import pytest
from google.protobuf import struct_pb2
from prometheus_client import REGISTRY

from pointillist.core.bus import particles_to_proto
from pointillist.core.bus.codec import batch_columns
from pointillist.core.rpc import channel, create_server
from pointillist.core.table import LocalizationTable
from pointillist.reconstructor.engine import Settings, reconstruct_table, save_state
from pointillist.reconstructor.service import (
    ReconstructorService,
    ReconstructorWorker,
    checkpoint_name,
)
from pointillist.reconstructor.training import ReconConfig
from pointillist.simulator.projections import ProjectionSimConfig, simulate_projections
from pointillist.v1 import (
    reconstructor_pb2,
    reconstructor_pb2_grpc,
    run_pb2,
    simulator_pb2,
)

pytestmark = pytest.mark.integration

TINY = {"image_px": 32, "width": 4, "n_points": 20, "epochs": 2, "batch_size": 8, "seed": 0}
SETTINGS = Settings(ReconConfig(**TINY, device="cpu"), n_runs=1)
N_VIEWS = 36
SIM = {"n_views": N_VIEWS, "n_points": 30}
SEED = 5


@pytest.fixture(scope="module")
def views():
    return simulate_projections(ProjectionSimConfig(**SIM), SEED)


def with_bad_view(table: LocalizationTable) -> LocalizationTable:
    """Add view 1000 with only 2 localizations (skipped)."""
    bad = LocalizationTable({"x": [1.0, 2.0], "y": [1.0, 2.0], "particle": [1000, 1000]})
    cols = {c: np.concatenate([table[c], bad.get(c, [0, 0])]) for c in table.columns}
    return LocalizationTable(cols)


def struct(params: dict) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(params)
    return out


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def wait_event(bus, run_id, predicate, timeout=30.0):
    """The first event of the run (from its start) that satisfies ``predicate``."""
    sub = await bus.js.subscribe(f"pnt.{run_id}.events", ordered_consumer=True)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                msg = await sub.next_msg(timeout=0.5)
            except TimeoutError:
                continue
            event = run_pb2.Event.FromString(msg.data)
            if predicate(event):
                return event
        raise AssertionError(f"no matching event for run {run_id} within {timeout} s")
    finally:
        await sub.unsubscribe()


async def read_recon(bus, run_id, timeout=120):
    got = []
    async with bus.consumer("recon", f"read-{run_id}", run_id=run_id) as c:
        await asyncio.wait_for(c.run(lambda d: got.append(d.table), until_complete=run_id), timeout)
    return LocalizationTable.concat(got)


async def serve(bus, worker):
    return await create_server(
        [
            (
                reconstructor_pb2_grpc.add_ReconstructorServicer_to_server,
                ReconstructorService(bus.artefacts, SETTINGS, worker),
            )
        ],
        service_names=["pointillist.v1.Reconstructor"],
    )


async def test_grpc_reconstruct_streams_epochs_then_the_evaluated_result(bus, views):
    worker = ReconstructorWorker(bus, SETTINGS, durable="unused")
    server = await serve(bus, worker)
    particles = particles_to_proto(
        with_bad_view(views.localizations), run_id="g1", particle_kind="torus"
    )
    m = views.model_nm
    truth = LocalizationTable({"x": m[:, 0], "y": m[:, 1], "z": m[:, 2]}).to_proto()
    try:
        async with channel(server.address) as chan:
            stub = reconstructor_pb2_grpc.ReconstructorStub(chan)
            request = reconstructor_pb2.ReconstructRequest(
                particles=particles, truth=truth, name="recon/tg1"
            )
            updates = [u async for u in stub.Reconstruct(request)]
            progress = [u.progress for u in updates if u.WhichOneof("update") == "progress"]
            assert [(p.run, p.epoch, p.done) for p in progress] == [(0, 1, 1), (0, 2, 2)]
            assert all(
                p.total == 2 and p.images == N_VIEWS and p.images_per_s > 0 for p in progress
            )
            assert updates[-1].WhichOneof("update") == "result"
            assert sum(u.WhichOneof("update") == "result" for u in updates) == 1
            result = updates[-1].result

            points = LocalizationTable.from_proto(result.points)
            assert len(points) == TINY["n_points"] and set(points["label"]) == {0}
            assert np.isfinite(np.column_stack([points["x"], points["y"], points["z"]])).all()
            poses = {name: arr for name, _, _, arr in batch_columns(result.poses, result.n_views)}
            assert result.n_views == N_VIEWS
            assert set(poses) == {"particle", "rx", "ry", "rz", "tx_nm", "ty_nm", "sigma_nm"}
            np.testing.assert_array_equal(np.sort(poses["particle"]), np.arange(N_VIEWS))
            assert [(s.particle, "2 localizations" in s.reason) for s in result.skipped] == [
                (1000, True)
            ]
            assert len(result.runs) == 1 and result.runs[0].seed == 0
            for run in result.runs:
                assert [h.epoch for h in run.history] == [1, 2] and run.device == "cpu"
                e = run.evaluation
                assert e.rmsd_nm > 0 and e.baseline_rmsd_nm > 0
                assert e.ratio == pytest.approx(e.rmsd_nm / e.baseline_rmsd_nm)
            assert list(result.consensus.pairwise_rmsd_nm) == [0.0] and result.consensus.medoid == 0
            assert "recon/tg1/report/report.html" in result.artefacts
            names = {a.name for a in await bus.artefacts.list()}
            assert set(result.artefacts) <= names
            assert result.device == "cpu" and result.seconds > 0 and result.summary

            bad = [
                (
                    reconstructor_pb2.ReconstructRequest(
                        particles=particles, params=struct({"epochz": 1})
                    ),
                    "epochz",
                ),
                (
                    reconstructor_pb2.ReconstructRequest(
                        particles=particles,
                        truth=LocalizationTable({"x": [0.0] * 3, "y": [0.0] * 3}).to_proto(),
                    ),
                    "x, y and z",
                ),
                (reconstructor_pb2.ReconstructRequest(params=struct({"n_runs": 0})), "n_runs"),
            ]
            for request, text in bad:
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    async for _ in stub.Reconstruct(request):
                        pass
                assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
                assert text in err.value.details()
    finally:
        await server.shutdown(grace=1)


async def test_grpc_client_cancel_stops_the_training(bus, views):
    worker = ReconstructorWorker(bus, SETTINGS, durable="unused")
    server = await serve(bus, worker)
    particles = particles_to_proto(views.localizations, run_id="g2")
    try:
        async with channel(server.address) as chan:
            stub = reconstructor_pb2_grpc.ReconstructorStub(chan)
            call = stub.Reconstruct(
                reconstructor_pb2.ReconstructRequest(
                    particles=particles, params=struct({"epochs": 1000})
                )
            )
            first = await call.read()
            assert first.progress.epoch == 1 and first.progress.epochs == 1000
            assert metric("pointillist_reconstructor_jobs_active") == 1
            call.cancel()
            deadline = time.monotonic() + 10
            while metric("pointillist_reconstructor_jobs_active") and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            assert metric("pointillist_reconstructor_jobs_active") == 0  # the thread stopped
            images = metric("pointillist_reconstructor_images_total", path="grpc")
            await asyncio.sleep(1.0)
            assert metric("pointillist_reconstructor_images_total", path="grpc") == images
    finally:
        await server.shutdown(grace=1)


async def test_bus_round_trip_publishes_points_events_and_artefacts(bus, run_id, views, run_events):
    spec = run_pb2.RunSpec(
        run_id=run_id,
        steps=[run_pb2.PipelineStep(name="reconstruct", params=struct({**TINY, "n_runs": 1}))],
    )
    spec.source.simulation.kind = "projections"
    spec.source.simulation.params.update(SIM)
    spec.source.simulation.seed = SEED
    await bus.runs.create(spec)
    await bus.publish_particles(
        run_id, with_bad_view(views.localizations), 0, particle_kind="torus"
    )
    await bus.publish_end_of_acquisition(run_id, {"particles": 0})
    defaults = Settings(ReconConfig(device="cpu", epochs=50), n_runs=3)  # the spec wins
    worker = ReconstructorWorker(bus, defaults, durable=f"recon-{run_id}", run_id=run_id)
    await worker.start()
    try:
        points = await read_recon(bus, run_id)
    finally:
        await worker.stop()
    assert len(points) == TINY["n_points"] and set(points["label"]) == {0}
    assert set(points.columns) == {"x", "y", "z", "label"}

    events = await run_events(run_id, "reconstructor")
    texts = [e.message for e in events]
    assert any("from 37 views" in t and "simulated ground truth" in t for t in texts), texts
    epochs = [e for e in events if e.seq > 100]
    assert [(e.done, e.total) for e in epochs] == [(1, 2), (2, 2)]
    assert "epoch 1 of 2 done" in epochs[0].message
    assert any("1 view(s) skipped: 1000 (" in t for t in texts)
    done = next(e for e in events if e.seq == 2)
    assert "RMSD" in done.message and "report recon/" in done.message
    eoa = next(e for e in events if e.kind == run_pb2.Event.KIND_END_OF_ACQUISITION)
    assert dict(eoa.last_seq) == {"recon": 0}

    names = {a.name for a in await bus.artefacts.list()}
    assert checkpoint_name(run_id) in names
    assert f"recon/{run_id}/report/report.html" in names
    status = await worker.run_status(run_id)
    assert status.state == run_pb2.RUN_STATE_SUCCEEDED and status.progress == 1.0
    stored = await bus.runs.get(run_id)
    assert stored.counters["recon_points"] == 20 and stored.counters["recon_views"] == N_VIEWS
    assert stored.counters["recon_skipped_views"] == 1


async def test_bus_run_resumes_from_a_stored_checkpoint(bus, run_id, views, run_events):
    """Two runs; the checkpoint after epoch 1 of run 0 is in the store: the worker trains the
    other 3 epochs and ends with the points (and consensus) of an uninterrupted job."""
    settings = dataclasses.replace(SETTINGS, n_runs=2)
    saved = []

    def keep_first(state):
        if not saved:
            buf = io.BytesIO()
            save_state(state, buf)
            saved.append(buf.getvalue())

    reference = reconstruct_table(views.localizations, settings, checkpoint=keep_first)
    await bus.artefacts.put(checkpoint_name(run_id), saved[0])  # after epoch 1 of 4
    await bus.publish_particles(run_id, views.localizations, 0)
    await bus.publish_end_of_acquisition(run_id, {"particles": 0})
    worker = ReconstructorWorker(bus, settings, durable=f"recon-{run_id}", run_id=run_id)
    await worker.start()
    try:
        points = await read_recon(bus, run_id)
    finally:
        await worker.stop()
    events = await run_events(run_id, "reconstructor")
    resumed = next(e for e in events if e.seq == 5)
    assert "resuming from checkpoint" in resumed.message and (resumed.done, resumed.total) == (1, 4)
    assert [e.done for e in events if e.seq > 100] == [2, 3, 4]  # only these were trained
    expected = reference.points_table()
    np.testing.assert_array_equal(points["label"], expected["label"])
    for axis in "xyz":
        np.testing.assert_allclose(points[axis], expected[axis], atol=1e-3)


async def test_a_stopped_worker_leaves_its_run_to_a_restarted_one_that_resumes(bus, run_id, views):
    settings = Settings(dataclasses.replace(SETTINGS.config, epochs=4), n_runs=1)
    reference = reconstruct_table(views.localizations, settings)
    await bus.publish_particles(run_id, views.localizations, 0)
    await bus.publish_end_of_acquisition(run_id, {"particles": 0})
    first = ReconstructorWorker(bus, settings, durable=f"recon-{run_id}", run_id=run_id)
    await first.start()
    await wait_event(bus, run_id, lambda e: e.seq == 101)  # epoch 1 done (and checkpointed)
    await first.stop()  # the event is nak'ed; the training thread stops at its next step
    deadline = time.monotonic() + 10
    while metric("pointillist_reconstructor_jobs_active") and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert metric("pointillist_reconstructor_jobs_active") == 0
    assert first.statuses[run_id].state == run_pb2.RUN_STATE_PENDING
    second = ReconstructorWorker(bus, settings, durable=f"recon-{run_id}", run_id=run_id)
    await second.start()
    try:
        points = await read_recon(bus, run_id)
    finally:
        await second.stop()
    resumed = await wait_event(bus, run_id, lambda e: e.seq == 5)
    assert "resuming from checkpoint" in resumed.message and 1 <= resumed.done < 4
    expected = reference.runs[0].points_nm
    got = np.column_stack([points["x"], points["y"], points["z"]])
    np.testing.assert_allclose(got, expected, atol=1e-3)


async def test_bus_run_cancelled_by_cancel_run_or_by_the_registry(bus, views):
    """Run 0 is trained by replica A and cancelled through A's CancelRun; run 1 is trained
    by replica B and cancelled through A's CancelRun too: B reads the registry state."""
    runs = [f"tcancel{i}{uuid.uuid4().hex[:8]}" for i in range(2)]
    long = struct({**TINY, "epochs": 1000})
    for run in runs:
        step = run_pb2.PipelineStep(name="reconstruct", params=long)
        await bus.runs.create(run_pb2.RunSpec(run_id=run, steps=[step]))
        await bus.publish_particles(run, views.localizations, 0)
    a, b = (
        ReconstructorWorker(bus, SETTINGS, durable=f"recon-{r}", run_id=r, cancel_poll_s=0.2)
        for r in runs
    )
    server = await serve(bus, a)
    await a.start()
    await b.start()
    try:
        async with channel(server.address) as chan:
            stub = reconstructor_pb2_grpc.ReconstructorStub(chan)
            for run in runs:
                await bus.publish_end_of_acquisition(run, {"particles": 0})
            for run in runs:
                await wait_event(bus, run, lambda e: e.seq > 100 and e.source == "reconstructor")
            running = await stub.GetRun(simulator_pb2.RunRequest(run_id=runs[0]))
            assert running.state == run_pb2.RUN_STATE_RUNNING and 0 < running.progress < 1
            assert running.counters["recon_epochs_total"] == 1000
            for run in runs:
                cancelled = await stub.CancelRun(simulator_pb2.RunRequest(run_id=run))
                assert cancelled.state == run_pb2.RUN_STATE_CANCELLED
            local, remote = [  # each stops within a few seconds (a step, a poll)
                await wait_event(bus, run, lambda e: e.seq == 6, timeout=10) for run in runs
            ]
            assert "cancelled (CancelRun)" in local.message
            assert "CANCELLED in the run registry" in remote.message
            assert "checkpoint" in remote.message and 0 < remote.done < 1000
            for run in runs:
                status = await stub.GetRun(simulator_pb2.RunRequest(run_id=run))
                assert status.state == run_pb2.RUN_STATE_CANCELLED
                assert (await bus.runs.get(run)).state == run_pb2.RUN_STATE_CANCELLED
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.CancelRun(simulator_pb2.RunRequest(run_id="never-seen"))
            assert err.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        await a.stop()
        await b.stop()
        await server.shutdown(grace=1)
    assert a.active == {} and b.active == {}
    names = {a.name for a in await bus.artefacts.list()}
    assert {checkpoint_name(r) for r in runs} <= names  # kept for a later resume
    for run in runs:  # acked, not retried
        info = await bus.jsm.consumer_info("PNT_EVENTS", f"recon-{run}")
        assert info.num_ack_pending == 0 and info.num_redelivered == 0
