"""Consumer semantics against a real JetStream: dead letters, retries, dedupe, replicas,
gaps and end of acquisition."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from prometheus_client import REGISTRY

from pointillist.core.bus import Bus, Delivery, connect, derive_msg_id
from pointillist.core.errors import BusError, InvalidInput
from pointillist.core.natsserver import NatsServer
from pointillist.core.table import LocalizationTable
from pointillist.v1 import run_pb2

pytestmark = pytest.mark.integration

LOCS_TYPE = "pointillist.v1.LocalizationBatch"


def locs(n: int, seed: int = 0) -> LocalizationTable:
    rng = np.random.default_rng(seed)
    return LocalizationTable(
        {"x": rng.uniform(0, 1e4, n), "y": rng.uniform(0, 1e4, n), "frame": np.arange(n)}
    )


async def dead_letters(bus: Bus, run_id: str, n: int) -> list:
    sub = await bus.js.subscribe(f"pnt.{run_id}.dead", ordered_consumer=True)
    out = []
    try:
        for _ in range(n):
            out.append(await sub.next_msg(timeout=5))
    finally:
        await sub.unsubscribe()
    return out


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_malformed_messages_are_dead_lettered_and_the_consumer_goes_on(
    bus: Bus, run_id: str
) -> None:
    subj = f"pnt.{run_id}.locs"
    good = [locs(10, s).to_proto(run_id, s).SerializeToString() for s in range(3)]
    bad_rows = locs(10).to_proto(run_id, 7)
    bad_rows.n_rows = 11
    nan = LocalizationTable({"x": [np.nan, 1.0], "y": [1.0, 2.0]}, check_finite=False)
    other_run = locs(5).to_proto("someone-else", 8).SerializeToString()
    bad = [
        (b"\xff\xfe not a protobuf", {"Pnt-Type": LOCS_TYPE}, "cannot decode"),
        (good[0], {"Pnt-Type": "pointillist.v1.FrameBatch"}, "not allowed on 'locs'"),
        (bad_rows.SerializeToString(), {"Pnt-Type": LOCS_TYPE}, "bytes for 11 rows"),
        (nan.to_proto(run_id, 9).SerializeToString(), {}, "non-finite"),
        (other_run, {"Pnt-Type": LOCS_TYPE}, "does not match subject run"),
        (good[0], {"Pnt-Type": "acme.Unknown"}, "unknown message type"),
    ]
    await bus.js.publish(subj, good[0])
    for payload, headers, _ in bad[:3]:
        await bus.js.publish(subj, payload, headers=headers)
    await bus.js.publish(subj, good[1])
    for payload, headers, _ in bad[3:]:
        await bus.js.publish(subj, payload, headers=headers)
    await bus.js.publish(subj, good[2])

    handled: list[int] = []
    consumer = await bus.consumer("locs", "dlq", run_id=run_id, batch=4).start()
    stats = await consumer.run(lambda d: handled.append(d.seq), idle_timeout=0.5)
    await consumer.close()
    assert handled == [0, 1, 2]
    assert stats.dead == len(bad)

    letters = await dead_letters(bus, run_id, len(bad))
    for msg, (payload, headers, reason) in zip(letters, bad, strict=True):
        assert reason in msg.headers["Pnt-Dead-Reason"]
        assert msg.headers["Pnt-Dead-Subject"] == subj
        assert msg.headers["Pnt-Type"] == headers.get("Pnt-Type", "")
        assert msg.headers["Pnt-Dead-Stream"] == "PNT_LOCS"
        assert msg.data == payload
    info = await bus.jsm.consumer_info("PNT_LOCS", "dlq")
    assert info.num_ack_pending == 0 and info.num_pending == 0  # originals were acked


async def test_failing_handler_is_retried_then_dead_lettered(bus: Bus, run_id: str) -> None:
    for seq in range(3):
        await bus.publish_locs(run_id, locs(5, seq), seq)
    attempts: dict[int, int] = {}

    async def handler(d: Delivery) -> None:
        attempts[d.seq] = attempts.get(d.seq, 0) + 1
        if d.seq == 1:
            raise RuntimeError("model exploded")
        if d.seq == 2 and attempts[2] == 1:
            raise ConnectionError("transient")

    consumer = await bus.consumer(
        "locs", "retry", run_id=run_id, max_deliver=3, nak_delay=0.05
    ).start()
    stats = await consumer.run(handler, idle_timeout=1.5)
    await consumer.close()
    assert attempts == {0: 1, 1: 3, 2: 2}
    assert (stats.handled, stats.dead, stats.retried) == (2, 1, 3)
    (letter,) = await dead_letters(bus, run_id, 1)
    assert "handler failed 3 times" in letter.headers["Pnt-Dead-Reason"]
    assert "model exploded" in letter.headers["Pnt-Dead-Reason"]
    assert letter.headers["Pnt-Dead-Deliveries"] == "3"


async def test_handler_invalid_input_is_dead_lettered_at_once(bus: Bus, run_id: str) -> None:
    await bus.publish_locs(run_id, locs(5), 0)

    def handler(d: Delivery) -> None:
        raise InvalidInput("empty region of interest")

    consumer = await bus.consumer("locs", "invalid", run_id=run_id).start()
    stats = await consumer.run(handler, idle_timeout=0.5)
    await consumer.close()
    assert stats.dead == 1 and stats.retried == 0
    (letter,) = await dead_letters(bus, run_id, 1)
    assert letter.headers["Pnt-Dead-Reason"] == "invalid: empty region of interest"


async def test_message_never_settled_is_dead_lettered_after_max_deliver(
    bus: Bus, run_id: str
) -> None:
    await bus.publish_locs(run_id, locs(5), 0)
    consumer = await bus.consumer(
        "locs", "stuck", run_id=run_id, ack_wait=0.3, max_deliver=2
    ).start()
    for delivery in (1, 2):  # a handler that dies: delivered, never acked
        (d,) = await consumer.fetch(timeout=3)
        assert d.num_delivered == delivery
    assert await consumer.fetch(timeout=1.5) == []  # third delivery goes to the dead letters
    await consumer.close()
    (letter,) = await dead_letters(bus, run_id, 1)
    assert letter.headers["Pnt-Dead-Reason"].startswith("max_deliver: delivered 3 times")


async def test_duplicates_are_dropped_in_process(bus: Bus, run_id: str) -> None:
    payload = locs(5).to_proto(run_id, 0).SerializeToString()
    for _ in range(2):  # no Msg-Id: JetStream stores both copies
        await bus.js.publish(f"pnt.{run_id}.locs", payload, headers={"Pnt-Type": LOCS_TYPE})
    handled: list[int] = []
    consumer = await bus.consumer("locs", "dedupe", run_id=run_id).start()
    stats = await consumer.run(lambda d: handled.append(d.seq), idle_timeout=0.5)
    await consumer.close()
    assert handled == [0] and stats.duplicates == 1


async def test_outputs_derived_from_an_input_are_stored_once(bus: Bus, run_id: str) -> None:
    await bus.publish_locs(run_id, locs(100_000), 5)  # 1.2 MB: two parts
    consumer = await bus.consumer("locs", "derive", run_id=run_id).start()
    deliveries = await consumer.fetch(timeout=3)
    assert len(deliveries) == 2
    for d in deliveries:
        for _ in range(2):  # processing the same input twice, e.g. after a crash
            await bus.publish_locs(
                run_id, d.table.select(slice(0, 10)), d.seq, kind="clusters", derived_from=d
            )
        await d.ack()
    await consumer.close()
    assert derive_msg_id(deliveries[0], "clusters") == f"{run_id}.clusters.5.0.0"

    out = await bus.consumer("clusters", "derive-out", run_id=run_id).start()
    got = await out.fetch(10, timeout=3)
    for d in got:
        await d.ack()
    await out.close()
    assert sorted(d.msg_id for d in got) == [
        f"{run_id}.clusters.5.0.0",
        f"{run_id}.clusters.5.1.0",
    ]
    assert sorted(d.part for d in got) == [(0, 0), (1, 0)]
    assert {d.part_count for d in got} == {(2, 1)}
    assert out.progress(run_id).is_complete(5)


async def test_replicas_share_a_durable_and_split_the_work(
    nats_server: NatsServer, bus: Bus, run_id: str
) -> None:
    for seq in range(30):
        await bus.publish_locs(run_id, locs(5, seq), seq)
    other = await connect(nats_server.url, name="replica-2")
    seen: dict[str, list[int]] = {"a": [], "b": []}

    def handler(name: str):
        async def handle(d: Delivery) -> None:
            seen[name].append(d.seq)
            await asyncio.sleep(0.02)

        return handle

    a = await bus.consumer("locs", "shared", run_id=run_id, batch=2).start()
    b = await other.consumer("locs", "shared", run_id=run_id, batch=2).start()
    await asyncio.gather(
        a.run(handler("a"), idle_timeout=0.5), b.run(handler("b"), idle_timeout=0.5)
    )
    await a.close()
    await b.close()
    await other.close()
    assert seen["a"] and seen["b"]
    assert sorted(seen["a"] + seen["b"]) == list(range(30))


async def test_gaps_are_counted(bus: Bus, run_id: str) -> None:
    for seq in (0, 1, 5):
        await bus.publish_locs(run_id, locs(3, seq), seq)
    before = metric("pointillist_bus_seq_gaps_total", kind="locs")
    consumer = await bus.consumer("locs", "gaps", run_id=run_id).start()
    await consumer.run(lambda d: None, idle_timeout=0.5)
    lag = {"kind": "locs", "durable": "gaps"}
    assert metric("pointillist_bus_consumer_pending", **lag) == 3  # seen when run() started
    await consumer.report_lag()
    assert metric("pointillist_bus_consumer_pending", **lag) == 0
    await consumer.close()
    tracker = consumer.progress(run_id)
    assert tracker.gaps == 3 and tracker.missing(5) == [2, 3, 4]
    assert metric("pointillist_bus_seq_gaps_total", kind="locs") - before == 3


async def test_consumer_runs_until_the_run_is_complete(bus: Bus, run_id: str) -> None:
    consumer = await bus.consumer("locs", "eoa", run_id=run_id).start()
    handled: list[tuple[int, tuple]] = []
    task = asyncio.ensure_future(
        consumer.run(lambda d: handled.append((d.seq, d.part)), until_complete=run_id)
    )
    for seq in range(4):
        rows = 100_000 if seq == 2 else 100  # seq 2 is split in two parts
        await bus.publish_locs(run_id, locs(rows, seq), seq)
    await asyncio.sleep(0.3)
    assert not task.done()  # all data is in, but the end was not announced yet
    await bus.publish_end_of_acquisition(run_id, {"locs": 3}, source="sim")
    stats = await asyncio.wait_for(task, 10)
    await consumer.close()
    assert stats.handled == 5
    assert sorted(handled) == [(0, (0,)), (1, (0,)), (2, (0,)), (2, (1,)), (3, (0,))]

    event = await bus.wait_end_of_acquisition(run_id, timeout=5)
    assert event.kind == run_pb2.Event.KIND_END_OF_ACQUISITION
    assert dict(event.last_seq) == {"locs": 3} and event.source == "sim"
    again = await bus.publish_end_of_acquisition(run_id, {"locs": 3}, source="sim")
    assert again.duplicates == 1


async def test_waiting_for_an_end_that_never_comes_times_out(bus: Bus, run_id: str) -> None:
    await bus.publish_event(
        run_pb2.Event(run_id=run_id, seq=0, kind=run_pb2.Event.KIND_PROGRESS, source="sim")
    )
    with pytest.raises(TimeoutError, match="no end-of-acquisition"):
        await bus.wait_end_of_acquisition(run_id, timeout=0.5)


async def test_iterating_a_consumer(bus: Bus, run_id: str) -> None:
    for seq in range(3):
        await bus.publish_locs(run_id, locs(4, seq), seq)
    consumer = await bus.consumer("locs", "iter", run_id=run_id).start()
    seqs = []
    async for d in consumer:
        seqs.append(d.seq)
        await d.ack()
        if len(seqs) == 3:
            break
    await consumer.close()
    assert seqs == [0, 1, 2]
    assert consumer.progress(run_id).complete_through(2)


async def test_two_durables_on_the_frames_work_queue_are_refused(bus: Bus, run_id: str) -> None:
    await bus.consumer("frames", f"wq-a-{run_id}", run_id=run_id).start()
    with pytest.raises(BusError, match="work queue"):
        await bus.consumer("frames", f"wq-b-{run_id}", run_id=run_id).start()


async def test_slow_handler_is_kept_alive_not_redelivered(bus: Bus, run_id: str) -> None:
    for seq in range(2):
        await bus.publish_locs(run_id, locs(5, seq), seq)
    deliveries: list[int] = []

    async def slow(d: Delivery) -> None:
        deliveries.append(d.num_delivered)
        await asyncio.sleep(1.0)  # longer than ack_wait, for both messages of the batch

    consumer = await bus.consumer("locs", "slow", run_id=run_id, ack_wait=0.75, batch=2).start()
    stats = await consumer.run(slow, idle_timeout=0.3)
    info = await bus.jsm.consumer_info("PNT_LOCS", "slow")
    await consumer.close()
    assert deliveries == [1, 1] and stats.handled == 2
    assert info.num_redelivered == 0 and info.num_ack_pending == 0
