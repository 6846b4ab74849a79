"""Run registry (JetStream KV ``pnt-runs``) and artefact store (Object Store ``pnt-artefacts``).

The registry keeps one `RunStatus` per run under the key ``<run_id>``; its ``spec``
field holds the `RunSpec`, so one read gives both. Concurrent writers (several
services updating counters) use `RunRegistry.update`, a compare-and-set loop on the
key's revision. Artefacts (model weights, reconstructions, reports) are named blobs of
any size, chunked by the object store.
"""

from __future__ import annotations

import asyncio
import io
import os
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import nats.errors
import nats.js.errors
from nats.js import api
from nats.js.kv import KeyValue
from nats.js.object_store import ObjectStore

from pointillist.core.bus.subjects import validate_run_id
from pointillist.core.errors import BusError, InvalidInput, NotFound
from pointillist.v1 import run_pb2

if TYPE_CHECKING:
    from pointillist.core.bus.connection import Bus

RUNS_BUCKET = "pnt-runs"
ARTEFACTS_BUCKET = "pnt-artefacts"


class RunRegistry:
    """RunStatus (with its RunSpec) per run id in the KV bucket ``pnt-runs``."""

    def __init__(self, bus: Bus, bucket: str = RUNS_BUCKET, history: int = 16) -> None:
        self.bus = bus
        self.bucket = bucket
        self.history = history
        self._kv: KeyValue | None = None
        self._lock = asyncio.Lock()

    async def kv(self) -> KeyValue:
        """The bucket, created on first use."""
        async with self._lock:
            if self._kv is None:
                js = self.bus.js
                try:
                    self._kv = await js.key_value(self.bucket)
                except nats.js.errors.BucketNotFoundError:
                    self._kv = await js.create_key_value(
                        bucket=self.bucket,
                        history=self.history,
                        storage=api.StorageType.FILE,
                        replicas=self.bus.config.replicas,
                        description="pointillist runs: RunStatus with RunSpec per run id",
                    )
            return self._kv

    async def put(self, status: run_pb2.RunStatus) -> int:
        """Store ``status`` (``updated`` set to now); returns the revision."""
        validate_run_id(status.run_id)
        status.updated.GetCurrentTime()
        return await (await self.kv()).put(status.run_id, status.SerializeToString())

    async def create(self, spec: run_pb2.RunSpec) -> run_pb2.RunStatus:
        """Register a new run as PENDING; InvalidInput if the run id is taken."""
        validate_run_id(spec.run_id)
        status = run_pb2.RunStatus(run_id=spec.run_id, state=run_pb2.RUN_STATE_PENDING)
        status.spec.CopyFrom(spec)
        status.started.GetCurrentTime()
        status.updated.CopyFrom(status.started)
        try:
            await (await self.kv()).create(spec.run_id, status.SerializeToString())
        except nats.js.errors.KeyWrongLastSequenceError:
            raise InvalidInput(f"run {spec.run_id!r} already exists") from None
        return status

    async def _entry(self, run_id: str) -> tuple[run_pb2.RunStatus, int]:
        validate_run_id(run_id)
        try:
            entry = await (await self.kv()).get(run_id)
        except nats.js.errors.KeyNotFoundError:
            raise NotFound(f"run {run_id!r} not found") from None
        status = run_pb2.RunStatus()
        status.ParseFromString(entry.value or b"")
        return status, int(entry.revision or 0)

    async def get(self, run_id: str) -> run_pb2.RunStatus:
        """The run's status; NotFound if it was never registered."""
        return (await self._entry(run_id))[0]

    async def get_spec(self, run_id: str) -> run_pb2.RunSpec:
        return (await self.get(run_id)).spec

    async def put_spec(self, spec: run_pb2.RunSpec) -> run_pb2.RunStatus:
        """Register ``spec`` (PENDING) or replace the spec of an existing run."""

        def change(status: run_pb2.RunStatus) -> None:
            status.spec.CopyFrom(spec)

        try:
            return await self.update(spec.run_id, change)
        except NotFound:
            return await self.create(spec)

    async def update(
        self,
        run_id: str,
        change: Callable[[run_pb2.RunStatus], None],
        *,
        attempts: int = 20,
    ) -> run_pb2.RunStatus:
        """Apply ``change`` to the stored status atomically (retried on concurrent writes)."""
        kv = await self.kv()
        for _ in range(attempts):
            status, revision = await self._entry(run_id)
            change(status)
            status.updated.GetCurrentTime()
            try:
                await kv.update(run_id, status.SerializeToString(), last=revision)
                return status
            except nats.js.errors.KeyWrongLastSequenceError:
                await asyncio.sleep(random.uniform(0.001, 0.01))  # desynchronise writers
        raise BusError(f"run {run_id!r}: {attempts} concurrent updates in a row, giving up")

    async def list(self) -> list[run_pb2.RunStatus]:
        """Every registered run."""
        kv = await self.kv()
        try:
            keys = await kv.keys()
        except nats.js.errors.NoKeysError:
            return []
        out = []
        for key in keys:
            try:
                out.append(await self.get(key))
            except NotFound:  # deleted meanwhile
                continue
        return out

    async def delete(self, run_id: str) -> None:
        await (await self.kv()).delete(validate_run_id(run_id))

    async def watch(self, run_id: str | None = None) -> AsyncIterator[run_pb2.RunStatus]:
        """The current status of the run (or of every run), then each change, forever."""
        kv = await self.kv()
        watcher = await kv.watch(validate_run_id(run_id) if run_id else ">", ignore_deletes=True)
        try:
            async for entry in watcher:
                if entry is None or not entry.value:  # end of the initial values
                    continue
                status = run_pb2.RunStatus()
                status.ParseFromString(entry.value)
                yield status
        finally:
            await watcher.stop()


@dataclass(frozen=True)
class ArtefactInfo:
    """One stored artefact: size in bytes, modification time (RFC 3339), SHA-256 digest."""

    name: str
    size: int
    modified: str
    digest: str
    description: str


def _info(obj: api.ObjectInfo) -> ArtefactInfo:
    return ArtefactInfo(
        name=obj.name,
        size=int(obj.size or 0),
        modified=obj.mtime or "",
        digest=obj.digest or "",
        description=obj.description or "",
    )


class ArtefactStore:
    """Named artefacts (weights, reconstructions, reports) in the object store ``pnt-artefacts``."""

    def __init__(self, bus: Bus, bucket: str = ARTEFACTS_BUCKET) -> None:
        self.bus = bus
        self.bucket = bucket
        self._obs: ObjectStore | None = None
        self._lock = asyncio.Lock()

    async def store(self) -> ObjectStore:
        """The bucket, created on first use."""
        async with self._lock:
            if self._obs is None:
                js = self.bus.js
                try:
                    self._obs = await js.object_store(self.bucket)
                except nats.js.errors.BucketNotFoundError:
                    self._obs = await js.create_object_store(
                        bucket=self.bucket,
                        storage=api.StorageType.FILE,
                        replicas=self.bus.config.replicas,
                        description="pointillist artefacts: weights, reconstructions, reports",
                    )
            return self._obs

    async def put(
        self, name: str, data: bytes | str | os.PathLike[str], *, description: str = ""
    ) -> ArtefactInfo:
        """Store bytes, or the file at a path, under ``name`` (replacing an older one)."""
        if not name or name.startswith("."):
            raise InvalidInput(f"invalid artefact name {name!r}")
        obs = await self.store()
        meta = api.ObjectMeta(name=name, description=description or None)
        if isinstance(data, bytes | bytearray):
            info = await obs.put(name, bytes(data), meta=meta)
        else:
            path = Path(data)
            if not path.is_file():
                raise InvalidInput(f"artefact file {path} does not exist")
            with path.open("rb") as f:
                info = await obs.put(name, f, meta=meta)
        return _info(info)

    async def get(self, name: str) -> bytes:
        """The artefact's bytes; NotFound if there is none by that name."""
        buf = io.BytesIO()
        await self._get(name, buf)
        return buf.getvalue()

    async def get_file(self, name: str, path: str | os.PathLike[str]) -> Path:
        """Write the artefact to ``path`` (parents created); returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as f:
            await self._get(name, f)
        return path

    async def _get(self, name: str, out: io.BufferedIOBase | io.BytesIO) -> None:
        obs = await self.store()
        try:
            await obs.get(name, writeinto=out)
        except nats.js.errors.NotFoundError:
            raise NotFound(f"artefact {name!r} not found in {self.bucket}") from None

    async def info(self, name: str) -> ArtefactInfo:
        obs = await self.store()
        try:
            return _info(await obs.get_info(name))
        except nats.js.errors.NotFoundError:
            raise NotFound(f"artefact {name!r} not found in {self.bucket}") from None

    async def list(self) -> list[ArtefactInfo]:
        """Every stored artefact, by name."""
        obs = await self.store()
        try:
            infos = await obs.list(ignore_deletes=True)
        except nats.js.errors.NotFoundError:
            return []
        return sorted((_info(i) for i in infos if not i.deleted), key=lambda a: a.name)

    async def delete(self, name: str) -> None:
        obs = await self.store()
        try:
            await obs.delete(name)
        except nats.js.errors.NotFoundError:
            raise NotFound(f"artefact {name!r} not found in {self.bucket}") from None
        except nats.errors.Error as e:
            raise BusError(f"cannot delete artefact {name!r}: {e}") from e
