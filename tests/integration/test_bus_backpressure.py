"""Backpressure: a publisher that outpaces its consumers is held back, never dropped."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import numpy as np
import pytest
from prometheus_client import REGISTRY

from pointillist.core.bus import BusConfig, Delivery, StreamLimits, connect
from pointillist.core.errors import BusFull
from pointillist.core.natsserver import NatsServer

pytestmark = pytest.mark.integration

KiB = 1024


def held_back(kind: str) -> float:
    return (
        REGISTRY.get_sample_value("pointillist_bus_publish_backpressure_total", {"kind": kind}) or 0
    )


async def test_slow_consumer_slows_the_publisher_and_everything_arrives(
    nats_server_factory: Callable[..., NatsServer], run_id: str
) -> None:
    server = nats_server_factory()
    config = BusConfig(publish_patience=30).with_limits(frames=StreamLimits(256 * KiB, 3600))
    bus = await connect(server.url, config=config)
    frames = np.random.default_rng(0).integers(0, 2**16, (40, 128, 256), dtype=np.uint16)
    before = held_back("frames")
    received: dict[int, np.ndarray] = {}

    async def slow(d: Delivery) -> None:
        await asyncio.sleep(0.02)
        received[d.seq] = d.frames[0].copy()

    consumer = await bus.consumer("frames", f"slow-{run_id}", run_id=run_id, batch=2).start()
    consuming = asyncio.ensure_future(consumer.run(slow, until_complete=run_id))
    try:
        for seq, frame in enumerate(frames):  # 64 KiB each: the stream holds 3
            await bus.publish_frames(run_id, frame, seq, first_frame=seq)
        await bus.publish_end_of_acquisition(run_id, {"frames": len(frames) - 1})
        await asyncio.wait_for(consuming, 30)
    finally:
        await consumer.close()
        await bus.close()
    assert held_back("frames") - before > 0
    assert sorted(received) == list(range(len(frames)))
    for seq, frame in received.items():
        np.testing.assert_array_equal(frame, frames[seq])


async def test_full_stream_without_consumers_raises_bus_full_after_patience(
    nats_server_factory: Callable[..., NatsServer], run_id: str
) -> None:
    server = nats_server_factory()
    config = BusConfig(publish_patience=0.5).with_limits(frames=StreamLimits(200 * KiB, 3600))
    bus = await connect(server.url, config=config)
    frame = np.zeros((256, 256), dtype=np.uint16)  # 128 KiB
    try:
        await bus.publish_frames(run_id, frame, 0)
        with pytest.raises(BusFull, match="PNT_FRAMES stayed full"):
            await bus.publish_frames(run_id, frame, 1)
        info = await bus.jsm.stream_info("PNT_FRAMES")
        assert info.state.messages == 1
    finally:
        await bus.close()


async def test_stream_limits_belong_to_the_deployment(
    nats_server_factory: Callable[..., NatsServer],
) -> None:
    server = nats_server_factory()
    small = BusConfig().with_limits(events=StreamLimits(1 << 20, 60))
    owner = await connect(server.url, config=small)  # e.g. `pointillist up`
    service = await connect(server.url)  # a service with default settings
    try:
        info = await service.jsm.stream_info("PNT_EVENTS")
        assert info.config.max_bytes == 1 << 20  # not reset to the default
        await service.ensure_streams(update=True)
        info = await service.jsm.stream_info("PNT_EVENTS")
        assert info.config.max_bytes == BusConfig().limits["events"].max_bytes
    finally:
        await owner.close()
        await service.close()
