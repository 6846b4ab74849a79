"""Every bus message type survives publish -> JetStream -> consume unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from pointillist.core.bus import Bus, particles_from_proto
from pointillist.core.errors import InvalidInput
from pointillist.core.table import LocalizationTable
from pointillist.v1 import frames_pb2, run_pb2, table_pb2

pytestmark = pytest.mark.integration


def locs(n: int, seed: int = 0) -> LocalizationTable:
    rng = np.random.default_rng(seed)
    cols: dict[str, np.ndarray] = {
        c: rng.normal(1000, 300, n).astype("f4")
        for c in ("x", "y", "z", "photons", "background", "sigma_x", "sigma_y", "uncertainty")
    }
    cols["frame"] = np.arange(n, dtype="i4") // 7
    cols["cluster"] = rng.integers(-1, 20, n).astype("i4")
    cols["particle"] = np.arange(n, dtype="i4") // 50
    cols["label"] = rng.integers(0, 3, n).astype("i4")
    return LocalizationTable(cols)


async def one(bus: Bus, kind: str, run_id: str, durable: str):
    consumer = await bus.consumer(kind, durable, run_id=run_id).start()
    try:
        got = await consumer.fetch(10, timeout=5)
        assert len(got) == 1, got
        await got[0].ack()
        return got[0]
    finally:
        await consumer.close()


async def test_localization_batch_round_trip_keeps_every_column(bus: Bus, run_id: str) -> None:
    table = locs(5000)
    result = await bus.publish_locs(run_id, table, 3, source="test", ground_truth=True)
    assert (result.messages, result.items, result.duplicates) == (1, 5000, 0)

    d = await one(bus, "locs", run_id, "rt-locs")
    assert (d.run_id, d.seq, d.part, d.part_count, d.kind) == (run_id, 3, (0,), (1,), "locs")
    assert d.message.source == "test" and d.message.ground_truth
    assert d.table.columns == table.columns
    for c in table:
        np.testing.assert_array_equal(d.table[c], table[c])
        assert d.table[c].dtype == table[c].dtype


async def test_frame_batch_round_trip_keeps_data_bytes(bus: Bus, run_id: str) -> None:
    frames = np.random.default_rng(1).integers(0, 2**16, (4, 64, 80), dtype=np.uint16)
    camera = frames_pb2.CameraModel(
        kind=frames_pb2.CameraModel.KIND_EMCCD,
        baseline_adu=100,
        e_per_adu=4.5,
        em_gain=150,
        quantum_efficiency=0.9,
        read_noise_e=1.2,
        pixel_size_nm=107,
    )
    await bus.publish_frames(run_id, frames, 0, first_frame=40, camera=camera)

    d = await one(bus, "frames", run_id, f"rt-frames-{run_id}")
    msg = d.message
    assert (msg.first_frame, msg.n_frames, msg.height, msg.width) == (40, 4, 64, 80)
    assert msg.data == frames.tobytes()
    assert msg.camera == camera
    np.testing.assert_array_equal(d.frames, frames)


async def test_particle_set_round_trip(bus: Bus, run_id: str) -> None:
    table = locs(600)
    truth = {"particle": np.arange(12, dtype="i4"), "radius_nm": np.linspace(40, 60, 12)}
    await bus.publish_particles(run_id, table, 0, truth=truth, dimensions=3, particle_kind="npc3d")

    d = await one(bus, "particles", run_id, "rt-particles")
    assert (d.message.dimensions, d.message.kind) == (3, "npc3d")
    back, back_truth = particles_from_proto(d.message)
    for c in table:
        np.testing.assert_array_equal(back[c], table[c])
    assert back_truth.keys() == truth.keys()
    for c in truth:
        np.testing.assert_array_equal(back_truth[c], truth[c])


async def test_run_spec_status_and_event_round_trip_on_events(bus: Bus, run_id: str) -> None:
    spec = run_pb2.RunSpec(run_id=run_id, name="demo", output_dir="/tmp/out")
    spec.source.simulation.kind = "frames"
    spec.source.simulation.seed = 7
    spec.source.simulation.params.update({"n_frames": 100, "density": 0.5})
    step = spec.steps.add(name="localize", method="cnn")
    step.params.update({"threshold": 0.3})
    spec.model_versions["localize"] = "cnn@1"
    status = run_pb2.RunStatus(run_id=run_id, state=run_pb2.RUN_STATE_RUNNING, progress=0.25)
    status.counters["frames_published"] = 25
    status.spec.CopyFrom(spec)
    event = run_pb2.Event(
        run_id=run_id, seq=1, kind=run_pb2.Event.KIND_PROGRESS, source="sim", done=25, total=100
    )
    for message in (spec, status):
        await bus.publish("events", message)
    await bus.publish_event(event)

    consumer = await bus.consumer("events", "rt-events", run_id=run_id).start()
    got = await consumer.fetch(10, timeout=5)
    for d in got:
        await d.ack()
    await consumer.close()
    assert [type(d.message) for d in got] == [run_pb2.RunSpec, run_pb2.RunStatus, run_pb2.Event]
    assert got[0].message == spec
    assert got[1].message == status
    assert got[2].message.done == 25 and got[2].message.HasField("time")


async def test_generic_publish_of_a_localization_batch(bus: Bus, run_id: str) -> None:
    table = locs(100)
    await bus.publish("clusters", table.to_proto(run_id, 9))
    d = await one(bus, "clusters", run_id, "rt-generic")
    assert d.seq == 9
    np.testing.assert_array_equal(d.table["x"], table["x"])


async def test_publish_rejects_wrong_kind_and_bad_run_ids(bus: Bus, run_id: str) -> None:
    with pytest.raises(InvalidInput, match="cannot go on 'frames'"):
        await bus.publish("frames", table_pb2.LocalizationBatch(run_id=run_id))
    with pytest.raises(InvalidInput, match="invalid run id"):
        await bus.publish_locs("bad.run", locs(3), 0)
    with pytest.raises(InvalidInput, match="invalid run id"):
        await bus.publish_locs("*", locs(3), 0)
    with pytest.raises(InvalidInput, match="written by consumers"):
        await bus.publish("dead", table_pb2.LocalizationBatch(run_id=run_id))


async def test_republished_message_is_stored_once(bus: Bus, run_id: str) -> None:
    table = locs(50)
    first = await bus.publish_locs(run_id, table, 0)
    again = await bus.publish_locs(run_id, table, 0)
    assert (first.messages, first.duplicates) == (1, 0)
    assert (again.messages, again.duplicates) == (0, 1)
    assert again.stream_seqs == first.stream_seqs


async def test_purge_run_deletes_only_that_run(bus: Bus, run_id: str) -> None:
    await bus.publish_locs(run_id, locs(10), 0)
    await bus.publish_locs(run_id, locs(10), 0, kind="clusters")
    await bus.publish_locs(run_id + "x", locs(10), 0)
    assert await bus.purge_run(run_id) == 2
    assert await bus.purge_run(run_id) == 0
    assert await bus.purge_run(run_id + "x") == 1
