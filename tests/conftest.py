"""Shared fixtures: real nats-server processes (JetStream on) on free ports.

- ``nats_server``: one default server for the whole session (1 MiB max_payload, no
  auth). Tests share it, so each must use its own run id (``run_id`` fixture) and
  durable names; streams and buckets are shared.
- ``nats_server_factory``: start extra servers with options (auth, TLS, small
  max_payload), stopped at the end of the test: ``nats_server_factory(max_payload=...)``.
- ``bus``: a connected `pointillist.core.bus.Bus` on ``nats_server``, streams ensured.

The servers never touch port 4222, whatever runs there.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from pointillist.core.natsserver import NatsServer


@pytest.fixture(scope="session")
def nats_server() -> Iterator[NatsServer]:
    with NatsServer() as server:
        yield server


@pytest.fixture
def nats_server_factory() -> Iterator[Callable[..., NatsServer]]:
    started: list[NatsServer] = []

    def start(**options: Any) -> NatsServer:
        server = NatsServer(**options).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def run_id() -> str:
    """A run id no other test uses."""
    return "t" + uuid.uuid4().hex[:12]


@pytest.fixture
async def bus(nats_server: NatsServer) -> AsyncIterator[Any]:
    from pointillist.core.bus import connect

    b = await connect(nats_server.url, name="pytest")
    yield b
    await b.close()


@pytest.fixture
def run_events(bus):
    """``await run_events(run_id, source)``: the run's events from ``source`` published so
    far (an ordered consumer over ``pnt.<run>.events``, read until 0.5 s of silence)."""
    from pointillist.v1 import run_pb2

    async def read(run_id: str, source: str) -> list:
        sub = await bus.js.subscribe(f"pnt.{run_id}.events", ordered_consumer=True)
        out = []
        try:
            while True:
                event = run_pb2.Event.FromString((await sub.next_msg(timeout=0.5)).data)
                if event.source == source:
                    out.append(event)
        except TimeoutError:
            return out
        finally:
            await sub.unsubscribe()

    return read
