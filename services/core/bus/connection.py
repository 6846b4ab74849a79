"""Bus: one NATS connection with JetStream, the streams, and typed publishing.

Publishing waits for JetStream's PubAck, so a returned publish is stored. When a
stream is full (limits with discard=new) the publish is retried with exponential
backoff until there is room or ``publish_patience`` runs out (BusFull): that is the
backpressure a fast producer feels from slow consumers. Nothing is dropped silently.

Every message gets ``Nats-Msg-Id = <run>.<kind>.<seq>.<part path>`` so JetStream drops a
republished copy within the duplicate window. A handler that publishes results passes
``derived_from=<the input Delivery>``: the output's part path is the input's path plus
the output part, so the same input always yields the same output ids and a replica
that crashed after publishing but before acking produces no duplicate output when the
input is redelivered (see `derive_msg_id`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

import nats
import nats.errors
import nats.js.errors
import numpy as np
from google.protobuf.message import Message
from nats.aio.client import Client
from nats.js import JetStreamContext, JetStreamManager, api

from pointillist.core.bus import metrics
from pointillist.core.bus.codec import (
    Piece,
    batch_columns,
    format_path,
    frames_from_proto,
    particles_from_proto,
    split_frames,
    split_localizations,
    split_particles,
    table_columns,
)
from pointillist.core.bus.subjects import (
    DEFAULT_LIMITS,
    H_DEAD_DELIVERIES,
    H_DEAD_REASON,
    H_DEAD_STREAM,
    H_DEAD_STREAM_SEQ,
    H_DEAD_SUBJECT,
    H_MSG_ID,
    H_PART,
    H_PARTS,
    H_SEQ,
    H_TYPE,
    KIND_TYPES,
    TILES,
    BusConfig,
    stream_name,
    stream_subjects,
    subject,
    tiles_subject,
    type_name,
    validate_kind,
    validate_run_id,
)
from pointillist.core.errors import BusAuthError, BusError, BusFull, InvalidInput
from pointillist.core.table import LocalizationTable
from pointillist.v1 import frames_pb2, particles_pb2, run_pb2, table_pb2

if TYPE_CHECKING:
    from pointillist.core.bus.consumer import Consumer, Delivery
    from pointillist.core.bus.registry import ArtefactStore, RunRegistry

log = logging.getLogger(__name__)

DEFAULT_URL = "nats://127.0.0.1:4222"
_CRED_HINT = "set POINTILLIST_NATS_USER/POINTILLIST_NATS_PASSWORD or POINTILLIST_NATS_TOKEN"
_FULL_CODES = {10077, 10047, 10027, 10028}  # store failed (max bytes/msgs), insufficient resources
_TOKEN_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_MAX_REASON = 400


@dataclass
class PublishResult:
    """What one publish call stored: messages (parts, tiles), payload bytes, items."""

    messages: int = 0
    bytes: int = 0
    items: int = 0
    duplicates: int = 0
    stream_seqs: list[int] = field(default_factory=list)

    def add(self, other: PublishResult) -> None:
        self.messages += other.messages
        self.bytes += other.bytes
        self.items += other.items
        self.duplicates += other.duplicates
        self.stream_seqs += other.stream_seqs


def _token(text: str) -> str:
    """``text`` as a safe Msg-Id token (used for event sources)."""
    return _TOKEN_UNSAFE.sub("_", text) or "-"


def header_safe(text: str, limit: int = _MAX_REASON) -> str:
    """One line of ASCII for a header value, at most ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat.encode("ascii", "backslashreplace").decode()[:limit]


def derive_msg_id(parent: Delivery, kind: str, seq: int | None = None, part: int = 0) -> str:
    """The Nats-Msg-Id of output part ``part`` on ``kind`` derived from input ``parent``.

    ``<run>.<kind>.<seq>.<parent part path>.<part>``: deterministic in the input, so a
    reprocessed input republishes the same ids and JetStream drops the copies.
    ``seq`` defaults to the parent's seq (the pipeline convention).
    """
    path = (*parent.part, part)
    return f"{parent.run_id}.{validate_kind(kind)}.{parent.seq if seq is None else seq}." + (
        format_path(path)
    )


async def _gather(aws: Iterable[Awaitable[Any]]) -> list[Any]:
    """Run awaitables concurrently; on the first error cancel the rest and raise it."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    if not tasks:
        return []
    try:
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    except BaseException:
        for t in tasks:
            t.cancel()
        raise
    for t in done:
        if not t.cancelled() and t.exception() is not None:
            for p in pending:
                p.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            raise t.exception()  # type: ignore[misc]
    return [t.result() for t in tasks]


class Pipeline:
    """Publishes without awaiting each PubAck: at most ``window`` publish calls in flight.

    >>> async with bus.pipeline(window=32) as pipe:  # doctest: +SKIP
    ...     for seq, table in enumerate(tables):
    ...         await pipe.submit(bus.publish_locs("R", table, seq))

    ``submit`` returns once the call is running (waits while the window is full) and
    re-raises the first failure of an earlier call; leaving the block waits for all.
    """

    def __init__(self, window: int) -> None:
        self._sem = asyncio.Semaphore(window)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._error: BaseException | None = None
        self.result = PublishResult()

    async def submit(self, call: Awaitable[Any]) -> None:
        if self._error is not None:
            _close(call)
            raise self._error
        await self._sem.acquire()
        task = asyncio.ensure_future(call)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._sem.release()
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self._error = self._error or exc
        elif isinstance(task.result(), PublishResult):
            self.result.add(task.result())

    async def wait(self) -> PublishResult:
        """Wait for every submitted call; raise the first failure."""
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._error is not None:
            raise self._error
        return self.result

    async def __aenter__(self) -> Pipeline:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None:
            for t in list(self._tasks):
                t.cancel()
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
            return
        await self.wait()


def _close(call: Awaitable[Any]) -> None:
    close = getattr(call, "close", None)
    if close is not None:
        close()


class InFlight:
    """Bounds what awaits a PubAck: at most ``max_count`` messages and ``max_bytes``
    bytes (one message is always let through, however large)."""

    def __init__(self, max_count: int, max_bytes: int) -> None:
        self.max_count, self.max_bytes = max_count, max_bytes
        self.count = self.bytes = 0
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    def _fits(self, size: int) -> bool:
        return self.count == 0 or (
            self.count < self.max_count and self.bytes + size <= self.max_bytes
        )

    async def acquire(self, size: int) -> None:
        if not self._waiters and self._fits(size):
            self.count += 1
            self.bytes += size
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((size, fut))
        try:
            await fut
        except BaseException:
            if fut.done() and not fut.cancelled():
                self.release(size)  # granted just as we were cancelled
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove((size, fut))
            raise

    def release(self, size: int) -> None:
        self.count -= 1
        self.bytes -= size
        while self._waiters and self._fits(self._waiters[0][0]):
            wsize, fut = self._waiters.popleft()
            if fut.done():
                continue
            self.count += 1
            self.bytes += wsize
            fut.set_result(None)


class Bus:
    """A connected bus: ``nc`` (nats client), ``js`` (JetStream), ``jsm`` (management)."""

    def __init__(self, nc: Client, url: str, config: BusConfig) -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream(timeout=config.ack_timeout)
        self.jsm: JetStreamManager = nc.jsm(timeout=config.ack_timeout)
        self.url = url
        self.config = config
        self._window = InFlight(config.max_in_flight, config.max_in_flight_bytes)
        self._runs: RunRegistry | None = None
        self._artefacts: ArtefactStore | None = None

    # -- connection ---------------------------------------------------------------

    @property
    def max_payload(self) -> int:
        """The connected server's max_payload (bytes, from its INFO)."""
        return int(self.nc.max_payload)

    @property
    def budget(self) -> int:
        """Bytes one message's payload may take: max_payload minus the header headroom."""
        budget = self.max_payload - self.config.header_headroom
        if budget < 1024:
            raise BusError(f"server max_payload {self.max_payload} is too small for the bus")
        return budget

    async def close(self) -> None:
        """Flush and close the connection."""
        if self.nc.is_closed:
            return
        with contextlib.suppress(nats.errors.Error, TimeoutError):
            await self.nc.flush(timeout=5)
        await self.nc.close()

    async def __aenter__(self) -> Bus:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- streams ------------------------------------------------------------------

    def stream_config(self, key: str) -> api.StreamConfig:
        """JetStream config of the stream of a kind (or ``tiles``), from the bus config."""
        limits = self.config.limits.get(key, DEFAULT_LIMITS[key])
        work_queue = key == "frames"
        return api.StreamConfig(
            name=stream_name(key),
            description=f"pointillist {key}",
            subjects=stream_subjects(key),
            retention=api.RetentionPolicy.WORK_QUEUE if work_queue else api.RetentionPolicy.LIMITS,
            discard=api.DiscardPolicy.NEW,
            max_bytes=limits.max_bytes,
            max_age=limits.max_age,
            max_msgs=limits.max_msgs,
            storage=api.StorageType.FILE,
            num_replicas=self.config.replicas,
            # JetStream wants the dedupe window within max_age
            duplicate_window=min(self.config.duplicate_window, limits.max_age or float("inf")),
            allow_direct=True,
        )

    async def ensure_streams(self, *, update: bool = False) -> None:
        """Create the streams that are missing (idempotent).

        A stream that exists with other limits is left alone unless ``update``: the
        deployment (`pointillist up`, an operator) owns the limits, and services that
        connect with default settings must not undo them.
        """
        for key in (*KIND_TYPES, TILES):
            cfg = self.stream_config(key)
            try:
                await self.jsm.add_stream(cfg)
            except nats.js.errors.BadRequestError as e:
                if e.err_code != 10058:  # name in use with a different configuration
                    raise BusError(f"cannot create stream {cfg.name}: {e.description}") from e
                if not update:
                    log.debug("stream %s exists with other settings; keeping them", cfg.name)
                    continue
                try:
                    await self.jsm.update_stream(cfg)
                except nats.js.errors.APIError as e2:
                    raise BusError(
                        f"stream {cfg.name} exists with a configuration that cannot be "
                        f"changed to the requested one: {e2.description}"
                    ) from e2
            except nats.js.errors.APIError as e:
                raise BusError(f"cannot create stream {cfg.name}: {e.description}") from e

    async def purge_run(self, run_id: str) -> int:
        """Delete every message of ``run_id`` from every stream; returns how many."""
        validate_run_id(run_id)
        purged = 0
        for key in (*KIND_TYPES, TILES):
            subj = tiles_subject(run_id) if key == TILES else subject(run_id, key)
            name = stream_name(key)
            try:
                info = await self.jsm.stream_info(name, subjects_filter=subj)
            except nats.js.errors.NotFoundError:
                continue
            count = sum((info.state.subjects or {}).values())
            if count:
                await self.jsm.purge_stream(name, subject=subj)
                purged += count
        return purged

    # -- publishing ---------------------------------------------------------------

    async def _send(
        self, kind: str, subj: str, payload: bytes, headers: dict[str, str]
    ) -> api.PubAck:
        """Publish and wait for the PubAck; retry a full stream until patience runs out."""
        cfg = self.config
        start = time.monotonic()
        deadline = start + cfg.publish_patience
        delay = cfg.backoff_initial
        held = False
        try:
            while True:
                try:
                    ack = await self.js.publish(
                        subj, payload, timeout=cfg.ack_timeout, headers=headers
                    )
                    break
                except nats.js.errors.APIError as e:
                    if e.err_code not in _FULL_CODES:
                        raise BusError(f"JetStream refused {subj}: {e.description}") from e
                    if not held:
                        held = True
                        metrics.PUBLISH_BACKPRESSURE.labels(kind).inc()
                    reason = e.description
                except (nats.errors.TimeoutError, nats.js.errors.NoStreamResponseError) as e:
                    if self.nc.is_closed:
                        raise BusError(f"connection to {self.url} is closed") from e
                    metrics.PUBLISH_RETRIES.labels(kind).inc()
                    reason = (
                        "no PubAck from JetStream"
                        if isinstance(e, asyncio.TimeoutError)
                        else ("no stream answered")
                    )
                except nats.errors.Error as e:
                    raise BusError(f"cannot publish to {subj}: {e}") from e
                now = time.monotonic()
                if now >= deadline:
                    stream = stream_name(TILES if subj.endswith(".tiles") else kind)
                    raise BusFull(
                        f"stream {stream} stayed full (or unresponsive: {reason}) for "
                        f"{cfg.publish_patience:g} s while publishing {subj}; consumers are not "
                        "keeping up or the stream's max_bytes is too small"
                    )
                await asyncio.sleep(min(delay, deadline - now))
                delay = min(delay * 2, cfg.backoff_max)
        finally:
            if held:
                metrics.PUBLISH_BACKPRESSURE_SECONDS.labels(kind).inc(time.monotonic() - start)
        if ack.duplicate:
            metrics.PUBLISH_DUPLICATES.labels(kind).inc()
        else:
            metrics.PUBLISHED_MESSAGES.labels(kind).inc()
            metrics.PUBLISHED_BYTES.labels(kind).inc(len(payload))
        return ack

    def _headers(self, msg: Message, seq: int, msg_id: str, path: tuple, counts: tuple) -> dict:
        return {
            H_TYPE: type_name(msg),
            H_SEQ: str(seq),
            H_PART: format_path(path),
            H_PARTS: format_path(counts),
            H_MSG_ID: msg_id,
        }

    def _check_size(self, subj: str, payload: bytes, headers: Mapping[str, str]) -> None:
        hdr = 12 + sum(len(k) + len(v) + 4 for k, v in headers.items())
        if len(payload) + hdr > self.max_payload:
            raise BusError(
                f"message for {subj} is {len(payload) + hdr} bytes, over the server's max_payload "
                f"{self.max_payload} (a splitting bug: please report)"
            )

    async def _publish_piece(
        self,
        kind: str,
        run_id: str,
        seq: int,
        base_id: str,
        piece: Piece,
        parent: Delivery | None,
    ) -> PublishResult:
        path = (*parent.part, piece.part) if parent is not None else (piece.part,)
        counts = (
            (*parent.part_count, piece.part_count) if parent is not None else (piece.part_count,)
        )
        msg_id = f"{base_id}.{format_path(path)}"
        msg = piece.message
        result = PublishResult(items=piece.items)
        if piece.tiles:
            tsubj = tiles_subject(run_id)

            async def send_tile(i: int, tile: frames_pb2.FrameBatch) -> api.PubAck:
                data = tile.SerializeToString()
                hdrs = self._headers(tile, seq, f"{msg_id}.tile.{i}", path, counts)
                self._check_size(tsubj, data, hdrs)
                ack = await self._send(kind, tsubj, data, hdrs)
                result.messages += 0 if ack.duplicate else 1
                result.bytes += 0 if ack.duplicate else len(data)
                return ack

            acks = await _gather(send_tile(i, t) for i, t in enumerate(piece.tiles))
            del msg.tile_refs[:]
            msg.tile_refs.extend(a.seq for a in acks)
        subj = subject(run_id, kind)
        payload = msg.SerializeToString()
        headers = self._headers(msg, seq, msg_id, path, counts)
        self._check_size(subj, payload, headers)
        ack = await self._send(kind, subj, payload, headers)
        if ack.duplicate:
            result.duplicates += 1
        else:
            result.messages += 1
            result.bytes += len(payload)
        result.stream_seqs.append(ack.seq)
        if not ack.duplicate:
            metrics.PUBLISHED_ITEMS.labels(kind).inc(piece.items)
        return result

    async def _publish_pieces(
        self,
        kind: str,
        run_id: str,
        seq: int,
        pieces: Iterable[Piece],
        parent: Delivery | None,
        base_id: str | None = None,
    ) -> PublishResult:
        """Publish pieces concurrently, at most ``max_in_flight_bytes`` awaiting their
        PubAck; ``pieces`` is usually a generator, so a huge batch is never in memory whole."""
        if base_id is None:
            base_id = f"{run_id}.{kind}.{seq}"
        tasks: list[asyncio.Task[PublishResult]] = []
        failed: list[asyncio.Task[PublishResult]] = []

        def settle(size: int) -> Callable[[asyncio.Task[PublishResult]], None]:
            def done(task: asyncio.Task[PublishResult]) -> None:
                self._window.release(size)
                if not task.cancelled() and task.exception() is not None:
                    failed.append(task)

            return done

        try:
            for piece in pieces:  # a generator makes each piece only now
                size = piece.size()
                await self._window.acquire(size)
                task = asyncio.ensure_future(
                    self._publish_piece(kind, run_id, seq, base_id, piece, parent)
                )
                task.add_done_callback(settle(size))
                tasks.append(task)
                if failed:
                    break
            results = await _gather(tasks)
        except BaseException:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        total = PublishResult()
        for r in results:
            total.add(r)
        return total

    async def publish_locs(
        self,
        run_id: str,
        table: LocalizationTable,
        seq: int,
        *,
        kind: str = "locs",
        source: str = "",
        ground_truth: bool = False,
        derived_from: Delivery | None = None,
    ) -> PublishResult:
        """Publish localizations on ``pnt.<run>.<kind>`` (locs, clusters, truth), split by rows."""
        self._check_kind(kind, table_pb2.LocalizationBatch)
        pieces = split_localizations(
            table_columns(table),
            len(table),
            self.budget,
            run_id=validate_run_id(run_id),
            seq=seq,
            source=source,
            ground_truth=ground_truth,
        )
        return await self._publish_pieces(kind, run_id, seq, pieces, derived_from)

    async def publish_frames(
        self,
        run_id: str,
        frames: np.ndarray,
        seq: int,
        *,
        first_frame: int = 0,
        camera: frames_pb2.CameraModel | None = None,
    ) -> PublishResult:
        """Publish (n, h, w) or (h, w) camera frames on ``pnt.<run>.frames``.

        Split by frames to fit; a frame larger than the payload budget goes as row tiles
        plus a head (module docstring of `pointillist.core.bus.codec`).
        """
        pieces = split_frames(
            frames,
            self.budget,
            run_id=validate_run_id(run_id),
            seq=seq,
            first_frame=first_frame,
            camera=camera,
            tile_stream=stream_name(TILES),
        )
        return await self._publish_pieces("frames", run_id, seq, pieces, None)

    async def publish_particles(
        self,
        run_id: str,
        table: LocalizationTable,
        seq: int,
        *,
        truth: Mapping[str, np.ndarray] | None = None,
        dimensions: int = 2,
        particle_kind: str = "",
        kind: str = "particles",
        derived_from: Delivery | None = None,
    ) -> PublishResult:
        """Publish particles (localizations with a ``particle`` column, optional per-particle
        ``truth`` columns) as ParticleSet parts holding whole particles."""
        self._check_kind(kind, particles_pb2.ParticleSet)
        pieces = split_particles(
            table,
            truth or {},
            self.budget,
            run_id=validate_run_id(run_id),
            seq=seq,
            dimensions=dimensions,
            particle_kind=particle_kind,
        )
        return await self._publish_pieces(kind, run_id, seq, pieces, derived_from)

    async def publish_event(self, event: run_pb2.Event) -> PublishResult:
        """Publish an Event on ``pnt.<run>.events``; ``time`` is set to now when unset.

        Msg-Id ``<run>.events.<source>.<seq>``: keep event seqs unique per source.
        """
        if not event.HasField("time"):
            event.time.GetCurrentTime()
        return await self.publish("events", event)

    async def publish_end_of_acquisition(
        self,
        run_id: str,
        last_seq: Mapping[str, int],
        *,
        source: str = "acquisition",
        message: str = "",
    ) -> PublishResult:
        """Announce that ``run_id`` is complete: ``last_seq`` maps kind -> last seq published.

        Seqs of a kind run from 0 to ``last_seq[kind]``; a kind that is absent had none.
        """
        for kind in last_seq:
            validate_kind(kind)
        event = run_pb2.Event(
            run_id=validate_run_id(run_id),
            kind=run_pb2.Event.KIND_END_OF_ACQUISITION,
            source=source,
            message=message,
            last_seq=dict(last_seq),
        )
        event.time.GetCurrentTime()
        piece = Piece(event, 0, 1, 1)
        base = f"{run_id}.events.{_token(source)}.end"
        return await self._publish_pieces("events", run_id, 0, [piece], None, base)

    async def publish(
        self, kind: str, message: Message, *, derived_from: Delivery | None = None
    ) -> PublishResult:
        """Publish any v1 message allowed on ``kind``; splits oversized data messages.

        Run and seq come from the message (RunSpec and RunStatus have no seq: their
        Msg-Id is a hash of the content, so only an identical copy is dropped).
        """
        self._check_kind(kind, type(message))
        run_id = validate_run_id(message.run_id)
        seq = int(getattr(message, "seq", 0))
        budget = self.budget
        base_id = None
        size = message.ByteSize()
        if isinstance(message, table_pb2.LocalizationBatch):
            if size <= budget:
                single = table_pb2.LocalizationBatch()
                single.CopyFrom(message)
                single.part, single.part_count = 0, 1
                pieces = [Piece(single, 0, 1, message.n_rows)]
            else:
                pieces = split_localizations(
                    batch_columns(message.columns, message.n_rows),
                    message.n_rows,
                    budget,
                    run_id=run_id,
                    seq=seq,
                    source=message.source,
                    ground_truth=message.ground_truth,
                )
        elif isinstance(message, frames_pb2.FrameBatch):
            if message.tile_refs or message.HasField("tile"):
                raise InvalidInput("publish whole frames; tiles and heads are made by the bus")
            if size <= budget:
                pieces = [Piece(message, 0, 1, message.n_frames)]
            else:
                pieces = split_frames(
                    frames_from_proto(message),
                    budget,
                    run_id=run_id,
                    seq=seq,
                    first_frame=message.first_frame,
                    camera=message.camera if message.HasField("camera") else None,
                    tile_stream=stream_name(TILES),
                )
        elif isinstance(message, particles_pb2.ParticleSet):
            if size <= budget:
                pieces = [Piece(message, 0, 1, message.localizations.n_rows)]
            else:
                table, truth = particles_from_proto(message)
                pieces = split_particles(
                    table,
                    truth,
                    budget,
                    run_id=run_id,
                    seq=seq,
                    dimensions=message.dimensions,
                    particle_kind=message.kind,
                )
        else:
            if size > budget:
                raise InvalidInput(
                    f"{type_name(message)} of {size} bytes exceeds the payload budget {budget}"
                )
            pieces = [Piece(message, 0, 1, 1)]
            if isinstance(message, run_pb2.Event):
                base_id = f"{run_id}.events.{_token(message.source)}.{seq}"
            else:
                digest = hashlib.sha1(message.SerializeToString(deterministic=True)).hexdigest()
                base_id = f"{run_id}.{kind}.{type(message).__name__}.{digest[:20]}"
        return await self._publish_pieces(kind, run_id, seq, pieces, derived_from, base_id)

    def _check_kind(self, kind: str, cls: type[Message]) -> None:
        validate_kind(kind)
        if kind == "dead":
            raise InvalidInput("pnt.<run>.dead is written by consumers only")
        if cls not in KIND_TYPES[kind]:
            allowed = ", ".join(c.DESCRIPTOR.name for c in KIND_TYPES[kind])
            raise InvalidInput(f"{cls.DESCRIPTOR.name} cannot go on {kind!r} (takes {allowed})")

    def pipeline(self, window: int = 32) -> Pipeline:
        """A `Pipeline` keeping up to ``window`` publish calls in flight."""
        return Pipeline(window)

    async def publish_dead(
        self,
        run_id: str,
        payload: bytes,
        *,
        reason: str,
        original_subject: str,
        message_type: str,
        stream: str,
        stream_seq: int,
        deliveries: int,
        kind: str,
    ) -> None:
        """Put a message that cannot be processed on ``pnt.<run>.dead`` with the reason.

        Headers: Pnt-Dead-Reason, -Subject, -Stream, -Stream-Seq, -Deliveries, Pnt-Type.
        The Msg-Id is the original's stream position, so a retried dead-letter is stored once.
        """
        headers = {
            H_DEAD_REASON: header_safe(reason),
            H_DEAD_SUBJECT: header_safe(original_subject, 200),
            H_TYPE: header_safe(message_type, 100),
            H_DEAD_STREAM: stream,
            H_DEAD_STREAM_SEQ: str(stream_seq),
            H_DEAD_DELIVERIES: str(deliveries),
            H_MSG_ID: f"dead.{stream}.{stream_seq}",
        }
        hdr = 12 + sum(len(k) + len(v) + 4 for k, v in headers.items()) + 64
        room = self.max_payload - hdr
        if len(payload) > room:
            headers["Pnt-Dead-Truncated"] = str(len(payload))
            payload = payload[:room]
        await self._window.acquire(len(payload))
        try:
            await self._send("dead", subject(run_id, "dead"), payload, headers)
        finally:
            self._window.release(len(payload))
        metrics.DEAD_LETTERS.labels(kind, _cause(reason)).inc()

    # -- end of acquisition -------------------------------------------------------

    async def wait_end_of_acquisition(
        self, run_id: str, timeout: float | None = None, *, kind: str | None = None
    ) -> run_pb2.Event:
        """The run's first END_OF_ACQUISITION event (listing ``kind`` in ``last_seq`` when
        given), waiting for it; TimeoutError after ``timeout`` s."""
        subj = subject(run_id, "events")
        sub = await self.js.subscribe(
            subj,
            stream=stream_name("events"),
            ordered_consumer=True,
            deliver_policy=api.DeliverPolicy.ALL,
        )
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError(
                        f"no end-of-acquisition for run {run_id!r}"
                        + (f" listing {kind!r}" if kind else "")
                        + f" within {timeout} s"
                    )
                try:
                    msg = await sub.next_msg(timeout=min(left or 1.0, 1.0))
                except nats.errors.TimeoutError:
                    continue
                header = (msg.headers or {}).get(H_TYPE)
                if header and header != type_name(run_pb2.Event):
                    continue
                event = run_pb2.Event()
                try:
                    event.ParseFromString(msg.data)
                except Exception:  # malformed events are the consumers' business
                    continue
                if event.kind == run_pb2.Event.KIND_END_OF_ACQUISITION and (
                    kind is None or kind in event.last_seq
                ):
                    return event
        finally:
            await sub.unsubscribe()

    # -- consumers and registry ---------------------------------------------------

    def consumer(self, kind: str, durable: str, **options: Any) -> Consumer:
        """A `Consumer` of ``kind`` under the shared durable name ``durable`` (call ``start``)."""
        from pointillist.core.bus.consumer import Consumer

        return Consumer(self, kind, durable, **options)

    @property
    def runs(self) -> RunRegistry:
        """The run registry (KV bucket ``pnt-runs``)."""
        if self._runs is None:
            from pointillist.core.bus.registry import RunRegistry

            self._runs = RunRegistry(self)
        return self._runs

    @property
    def artefacts(self) -> ArtefactStore:
        """The artefact store (object store bucket ``pnt-artefacts``)."""
        if self._artefacts is None:
            from pointillist.core.bus.registry import ArtefactStore

            self._artefacts = ArtefactStore(self)
        return self._artefacts


def _cause(reason: str) -> str:
    """Metric label of a dead-letter reason."""
    for cause in ("max_deliver", "handler"):
        if reason.startswith(cause):
            return cause
    return "invalid"


def _tls_context(tls_ca: str | None, tls_cert: str | None, tls_key: str | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=tls_ca)
    if tls_cert:
        ctx.load_cert_chain(tls_cert, tls_key)
    return ctx


async def connect(
    url: str = DEFAULT_URL,
    *,
    user: str | None = None,
    password: str | None = None,
    token: str | None = None,
    tls_ca: str | None = None,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    name: str = "pointillist",
    config: BusConfig | None = None,
    ensure_streams: bool = True,
    connect_timeout: float = 5.0,
    reconnect_attempts: int = 60,
) -> Bus:
    """Connect to NATS at ``url`` (comma-separated for several) and check JetStream.

    Credentials are user/password or a token; ``tls_ca`` verifies the server,
    ``tls_cert``/``tls_key`` authenticate the client. The first connect fails fast:
    BusAuthError when the server rejects or requires credentials, BusError when it is
    unreachable or has no JetStream. Once connected, the client reconnects on its own
    (``reconnect_attempts`` per server, 2 s apart). ``ensure_streams`` creates the streams.
    """
    config = config or BusConfig()
    servers = [u.strip() for u in url.split(",") if u.strip()]
    if not servers:
        raise InvalidInput("empty NATS url")
    tls = None
    if tls_ca or tls_cert or any(s.startswith("tls://") for s in servers):
        if bool(tls_cert) != bool(tls_key):
            raise InvalidInput("tls_cert and tls_key go together")
        tls = _tls_context(tls_ca, tls_cert, tls_key)
    errors: list[BaseException] = []
    connected = False

    async def on_error(e: Exception) -> None:
        if not connected:
            errors.append(e)
            log.debug("connecting to %s: %s", url, e)
        else:
            log.warning("NATS %s: %s", url, e)

    async def on_disconnect() -> None:
        if connected and not nc.is_closed:
            log.warning("disconnected from NATS at %s; reconnecting", url)

    async def on_reconnect() -> None:
        log.info("reconnected to NATS at %s", url)

    nc = Client()
    try:
        await nc.connect(
            servers,
            name=name,
            user=user,
            password=password,
            token=token,
            tls=tls,
            allow_reconnect=False,
            max_reconnect_attempts=1,
            reconnect_time_wait=0.1,
            connect_timeout=connect_timeout,
            error_cb=on_error,
            disconnected_cb=on_disconnect,
            reconnected_cb=on_reconnect,
        )
    except Exception as e:
        await _close_quietly(nc)
        raise _connect_error(url, e, errors, bool(user or token)) from e
    connected = True
    nc.options["allow_reconnect"] = True
    nc.options["max_reconnect_attempts"] = reconnect_attempts
    nc.options["reconnect_time_wait"] = 2
    bus = Bus(nc, url, config)
    try:
        await bus.js.account_info()
    except (TimeoutError, nats.js.errors.Error, nats.errors.Error) as e:
        await bus.close()
        raise BusError(
            f"NATS at {url} does not offer JetStream ({e}); start nats-server with -js "
            "(pointillist up does)"
        ) from e
    if ensure_streams:
        try:
            await bus.ensure_streams()
        except BaseException:
            await bus.close()
            raise
    return bus


async def _close_quietly(nc: Client) -> None:
    """Close a client whose first connect failed; a half-open TLS transport may never
    finish closing, so give up after a second."""
    try:
        await asyncio.wait_for(nc.close(), 1.0)
    except Exception:  # nothing left to release on a client that never connected
        log.debug("closing a failed NATS client", exc_info=True)


def _connect_error(
    url: str, error: BaseException, seen: list[BaseException], had_creds: bool
) -> BusError:
    """The project error for a failed first connect, with a message a user can act on."""
    texts = [str(e) for e in (*seen, error)]
    if any("authorization" in t.lower() or "authentication" in t.lower() for t in texts):
        if had_creds:
            return BusAuthError(
                f"NATS at {url} rejected the connection: authorization violation — the "
                f"credentials given were not accepted; check them ({_CRED_HINT})"
            )
        return BusAuthError(
            f"NATS at {url} rejected the connection: authorization required — {_CRED_HINT}"
        )
    causes = [e for e in (*seen, error) if not isinstance(e, nats.errors.NoServersError)]
    tls = [e for e in causes if isinstance(e, ssl.SSLError)]
    if tls:
        return BusError(
            f"TLS with NATS at {url} failed: {tls[-1]} (check POINTILLIST_NATS_TLS_CA, "
            "and POINTILLIST_NATS_TLS_CERT/POINTILLIST_NATS_TLS_KEY if the server verifies clients)"
        )
    cause = causes[-1] if causes else error
    return BusError(f"cannot connect to NATS at {url}: {cause or type(cause).__name__}")
