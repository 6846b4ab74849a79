"""Messages over the server's max_payload are split (rows, frames, particles, tiles), never
truncated, and arrive whole."""

from __future__ import annotations

from collections.abc import Callable

import nats
import numpy as np
import pytest

from pointillist.core.bus import Bus, connect, particles_from_proto, stream_name
from pointillist.core.natsserver import NatsServer
from pointillist.core.table import LocalizationTable
from pointillist.v1 import frames_pb2

pytestmark = pytest.mark.integration

KiB = 1024


def locs(n: int) -> LocalizationTable:
    rng = np.random.default_rng(n)
    cols = {
        c: rng.uniform(0, 5e4, n).astype("f4")
        for c in ("x", "y", "z", "photons", "background", "sigma_x", "sigma_y", "uncertainty")
    }
    cols["frame"] = np.arange(n, dtype="i4")
    return LocalizationTable(cols)


async def drain(bus: Bus, kind: str, run_id: str, durable: str, expect: int) -> list:
    consumer = await bus.consumer(kind, durable, run_id=run_id, batch=64).start()
    got: list = []
    for _ in range(20):
        for d in await consumer.fetch(timeout=2):
            await d.ack()
            got.append(d)
        if len(got) >= expect:
            break
    await consumer.close()
    return got


async def test_batch_ten_times_max_payload_arrives_whole(
    nats_server_factory: Callable[..., NatsServer], run_id: str
) -> None:
    server = nats_server_factory(max_payload=256 * KiB)
    bus = await connect(server.url)
    try:
        assert bus.max_payload == 256 * KiB  # read from the server's INFO
        table = locs(73_000)  # 36 bytes/row: 2.6 MB, over 10x the limit
        assert len(table) * 36 > 10 * bus.max_payload
        result = await bus.publish_locs(run_id, table, 4)
        assert result.messages == 11 and result.items == len(table)

        got = await drain(bus, "locs", run_id, "split", result.messages)
        assert len(got) == result.messages
        assert {d.part_count for d in got} == {(11,)}
        for d in got:
            assert len(d.raw.data) <= bus.max_payload
        got.sort(key=lambda d: (d.seq, d.part))  # order restorable from (seq, part)
        assert [d.part for d in got] == [(i,) for i in range(11)]
        joined = LocalizationTable.concat(d.table for d in got)
        for c in table:
            np.testing.assert_array_equal(joined[c], table[c])
    finally:
        await bus.close()


async def test_2048_square_uint16_frame_is_tiled_and_bit_exact(bus: Bus, run_id: str) -> None:
    assert bus.max_payload == 1 << 20
    frame = np.random.default_rng(3).integers(0, 2**16, (2048, 2048), dtype=np.uint16)
    result = await bus.publish_frames(run_id, frame, 0, first_frame=17)
    assert result.messages == 10  # 9 row tiles + the head

    tiles_stream = stream_name("tiles")
    nc = bus.nc
    info = await bus.jsm.stream_info(tiles_stream, subjects_filter=f"pnt.{run_id}.frames.tiles")
    assert info.state.subjects == {f"pnt.{run_id}.frames.tiles": 9}

    (d,) = await drain(bus, "frames", run_id, f"tiles-{run_id}", 1)
    assert d.message.first_frame == 17 and not d.message.tile_refs
    assert d.frames.shape == (1, 2048, 2048)
    assert d.message.data == frame.tobytes()
    info = await bus.jsm.stream_info(tiles_stream, subjects_filter=f"pnt.{run_id}.frames.tiles")
    assert not info.state.subjects  # tiles deleted once the head was acked
    assert nc.is_connected


async def test_frames_split_by_frames_keep_first_frame(bus: Bus, run_id: str) -> None:
    frames = np.random.default_rng(4).integers(0, 4000, (20, 256, 256), dtype=np.uint16)
    result = await bus.publish_frames(run_id, frames, 2, first_frame=100)
    assert result.messages == 3  # 128 KiB frames, 7 per MiB message

    got = await drain(bus, "frames", run_id, f"fsplit-{run_id}", 3)
    got.sort(key=lambda d: d.part)
    assert [d.message.first_frame for d in got] == [100, 107, 114]
    np.testing.assert_array_equal(np.concatenate([d.frames for d in got]), frames)


async def test_particle_sets_split_by_whole_particles(
    nats_server_factory: Callable[..., NatsServer], run_id: str
) -> None:
    server = nats_server_factory(max_payload=64 * KiB)
    bus = await connect(server.url)
    try:
        table = locs(6000).with_columns(particle=np.repeat(np.arange(60), 100))
        truth = {"particle": np.arange(60, dtype="i4"), "radius_nm": np.linspace(1, 2, 60)}
        result = await bus.publish_particles(run_id, table, 0, truth=truth)
        assert result.messages > 3

        got = await drain(bus, "particles", run_id, "psplit", result.messages)
        got.sort(key=lambda d: d.part)
        seen: set[int] = set()
        tables, truths = [], []
        for d in got:
            t, tr = particles_from_proto(d.message)
            ids = set(np.unique(t["particle"]).tolist())
            assert ids == set(tr["particle"].tolist())  # truth travels with its particle
            assert not ids & seen  # no particle is split across parts
            seen |= ids
            tables.append(t)
            truths.append(tr["radius_nm"])
        joined = LocalizationTable.concat(tables)
        for c in table:
            np.testing.assert_array_equal(joined[c], table[c])
        np.testing.assert_array_equal(np.concatenate(truths), truth["radius_nm"])
    finally:
        await bus.close()


async def test_a_plain_nats_client_sees_parts_within_the_limit(
    nats_server_factory: Callable[..., NatsServer], run_id: str
) -> None:
    server = nats_server_factory(max_payload=128 * KiB)
    bus = await connect(server.url)
    try:
        result = await bus.publish_locs(run_id, locs(20_000), 0)
        nc = await nats.connect(server.url)
        sub = await nc.jetstream().subscribe(f"pnt.{run_id}.locs", ordered_consumer=True)
        ids = set()
        for _ in range(result.messages):
            msg = await sub.next_msg(timeout=10)
            assert msg.headers["Pnt-Type"] == "pointillist.v1.LocalizationBatch"
            assert msg.headers["Pnt-Part-Count"] == str(result.messages)
            assert len(msg.data) + 200 < 128 * KiB
            ids.add(msg.headers["Nats-Msg-Id"])
        assert ids == {f"{run_id}.locs.0.{i}" for i in range(result.messages)}
        await nc.close()
    finally:
        await bus.close()


async def test_tile_heads_with_lost_or_foreign_tiles_are_dead_lettered(
    bus: Bus, run_id: str
) -> None:
    frame = np.ones((1024, 1024), dtype=np.uint16)  # 2 MiB: three tiles
    await bus.publish_frames(run_id, frame, 0)
    raw = await bus.jsm.get_last_msg("PNT_FRAMES", f"pnt.{run_id}.frames", direct=True)
    head = frames_pb2.FrameBatch.FromString(raw.data)
    await bus.jsm.delete_msg("PNT_FRAME_TILES", head.tile_refs[1])  # e.g. expired
    foreign = frames_pb2.FrameBatch()
    foreign.CopyFrom(head)
    foreign.seq, foreign.tile_stream = 1, "KV_pnt-runs"
    await bus.js.publish(f"pnt.{run_id}.frames", foreign.SerializeToString())

    consumer = await bus.consumer("frames", f"lost-{run_id}", run_id=run_id).start()
    stats = await consumer.run(lambda d: None, idle_timeout=0.3)
    await consumer.close()
    assert stats.dead == 2 and stats.handled == 0
    sub = await bus.js.subscribe(f"pnt.{run_id}.dead", ordered_consumer=True)
    reasons = [(await sub.next_msg(timeout=5)).headers["Pnt-Dead-Reason"] for _ in range(2)]
    await sub.unsubscribe()
    assert "tile 1 of frame 0" in reasons[0] and "is missing" in reasons[0]
    assert "points to stream 'KV_pnt-runs'" in reasons[1]
