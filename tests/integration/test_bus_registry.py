"""Run registry (JetStream KV) and artefact store (Object Store)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from pointillist.core.bus import Bus
from pointillist.core.errors import InvalidInput, NotFound
from pointillist.v1 import run_pb2

pytestmark = pytest.mark.integration


async def test_runs_are_created_read_updated_and_watched(bus: Bus, run_id: str) -> None:
    spec = run_pb2.RunSpec(run_id=run_id, name="demo")
    spec.steps.add(name="cluster", method="miro")
    created = await bus.runs.create(spec)
    assert created.state == run_pb2.RUN_STATE_PENDING
    with pytest.raises(InvalidInput, match="already exists"):
        await bus.runs.create(spec)
    assert (await bus.runs.get_spec(run_id)) == spec

    updates: list[run_pb2.RunStatus] = []

    async def watch() -> None:
        async for status in bus.runs.watch(run_id):
            updates.append(status)
            if status.state == run_pb2.RUN_STATE_SUCCEEDED:
                return

    watching = asyncio.ensure_future(watch())

    def bump(name: str):
        def change(status: run_pb2.RunStatus) -> None:
            status.counters[name] += 1
            status.state = run_pb2.RUN_STATE_RUNNING

        return change

    # concurrent writers: compare-and-set keeps every increment
    await asyncio.gather(*(bus.runs.update(run_id, bump("locs")) for _ in range(10)))
    status = await bus.runs.get(run_id)
    assert status.counters["locs"] == 10 and status.spec == spec

    status.state = run_pb2.RUN_STATE_SUCCEEDED
    await bus.runs.put(status)
    await asyncio.wait_for(watching, 5)
    assert updates[0].state == run_pb2.RUN_STATE_PENDING
    assert updates[-1].state == run_pb2.RUN_STATE_SUCCEEDED
    assert run_id in {s.run_id for s in await bus.runs.list()}


async def test_unknown_run_is_not_found(bus: Bus, run_id: str) -> None:
    with pytest.raises(NotFound, match=run_id):
        await bus.runs.get(run_id)


async def test_artefacts_round_trip_bytes_and_files(bus: Bus, run_id: str, tmp_path: Path) -> None:
    blob = bytes(range(256)) * 4096 + b"tail"  # 1 MiB + 4: several chunks
    info = await bus.artefacts.put(f"{run_id}/weights.pt", blob, description="cnn weights")
    assert info.size == len(blob) and info.description == "cnn weights"
    assert await bus.artefacts.get(f"{run_id}/weights.pt") == blob

    src = tmp_path / "report.html"
    src.write_text("<h1>report</h1>")
    await bus.artefacts.put(f"{run_id}/report.html", src)
    out = await bus.artefacts.get_file(f"{run_id}/report.html", tmp_path / "out" / "r.html")
    assert out.read_text() == "<h1>report</h1>"

    names = {a.name for a in await bus.artefacts.list()}
    assert {f"{run_id}/weights.pt", f"{run_id}/report.html"} <= names
    await bus.artefacts.delete(f"{run_id}/report.html")
    with pytest.raises(NotFound):
        await bus.artefacts.get(f"{run_id}/report.html")
    assert f"{run_id}/report.html" not in {a.name for a in await bus.artefacts.list()}
