"""Consumer: a durable pull consumer shared by all replicas of a service.

Every replica of a service creates the same durable (``durable="localizer"``), so the
stream's messages are spread over them and a crashed replica's unacked messages are
redelivered to another after ``ack_wait``. What a consumer does per message:

1. Skip (ack) a message whose Nats-Msg-Id this process already handled (bounded LRU),
   e.g. a redelivery after a lost ack.
2. Decode and validate it (type from the ``Pnt-Type`` header, run from the subject;
   oversized frames are reassembled from their tiles). A message that fails goes to
   ``pnt.<run>.dead`` with the reason, original subject and type in headers, is acked,
   and the consumer carries on.
3. Call the handler; ack when it returns. When it raises: InvalidInput -> dead letter;
   anything else -> nak with a growing delay, and dead letter on the last allowed
   delivery. A message whose handler never returned (process killed, ack_wait passed)
   ``max_deliver`` times is dead-lettered on its next delivery without running the
   handler again.

Crash safety comes from JetStream, not from this process: outputs published with
``derived_from=delivery`` get ids derived from the input (`derive_msg_id`), so
reprocessing an input after a crash republishes the same ids and JetStream keeps one
copy. Handlers must therefore publish every output (possibly empty) with
``derived_from`` before returning, and not depend on side effects outside the bus.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import re
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import nats.errors
import nats.js.errors
import numpy as np
from google.protobuf.message import Message
from nats.aio.msg import Msg
from nats.js import api

from pointillist.core.bus import metrics
from pointillist.core.bus.codec import (
    PartPath,
    assemble_tiles,
    decode,
    format_path,
    frames_from_proto,
    message_type,
    parse_path,
    particles_from_proto,
    parts_complete,
    table_from_batch,
    validate,
)
from pointillist.core.bus.subjects import (
    H_MSG_ID,
    H_PART,
    H_PARTS,
    H_SEQ,
    H_TYPE,
    TILES,
    parse_subject,
    stream_name,
    subject,
    tiles_subject,
    type_name,
    validate_kind,
)
from pointillist.core.errors import BusError, InvalidInput
from pointillist.core.table import LocalizationTable
from pointillist.v1 import frames_pb2, particles_pb2, run_pb2

if TYPE_CHECKING:
    from pointillist.core.bus.connection import Bus

log = logging.getLogger(__name__)

Handler = Callable[["Delivery"], Awaitable[None] | None]
_DURABLE = re.compile(r"^[A-Za-z0-9_-]{1,200}$")
LAG_INTERVAL_S = 5.0  # how often run() refreshes the queue-lag gauges


class SeqTracker:
    """Which seqs of one run and kind a consumer has fully seen (every part).

    ``watermark``: every seq up to it is complete. Gaps (a seq arriving while an earlier
    one has not) are counted; with replicas each sees a subset, so gaps are then normal
    and completeness is only meaningful for a consumer that sees everything.
    """

    def __init__(self, max_pending: int = 1 << 16) -> None:
        self.watermark = -1
        self.highest = -1
        self.gaps = 0
        self._pending: dict[int, dict[PartPath, PartPath]] = {}
        self._done: set[int] = set()
        self._max_pending = max_pending

    def add(self, seq: int, path: PartPath = (0,), counts: PartPath = (1,)) -> int:
        """Record one part; returns how many seqs were skipped (gap) by this one."""
        gap = 0
        if seq > self.highest + 1:
            gap = seq - self.highest - 1
            self.gaps += gap
        self.highest = max(self.highest, seq)
        if seq <= self.watermark or seq in self._done:
            return gap
        leaves = self._pending.setdefault(seq, {})
        leaves[path] = counts
        if parts_complete(leaves):
            del self._pending[seq]
            self._done.add(seq)
            while self.watermark + 1 in self._done:
                self.watermark += 1
                self._done.discard(self.watermark)
        elif len(self._pending) > self._max_pending:
            self._pending.pop(next(iter(self._pending)))
        if len(self._done) > self._max_pending:
            self._done.discard(min(self._done))
        return gap

    def is_complete(self, seq: int) -> bool:
        return seq <= self.watermark or seq in self._done

    def complete_through(self, last_seq: int) -> bool:
        """Whether every seq 0..last_seq is complete."""
        return self.watermark >= last_seq

    def missing(self, last_seq: int) -> list[int]:
        """Seqs in 0..last_seq not complete yet."""
        return [s for s in range(self.watermark + 1, last_seq + 1) if s not in self._done]


@dataclass
class Delivery:
    """One decoded message from a Consumer; ``ack``/``nak``/``dead_letter`` settle it.

    ``part``/``part_count`` are part paths: (2,) of (5,) for a split batch, (1, 0) of
    (2, 1) for the output derived from input part 1 of 2 (see `derive_msg_id`).
    """

    message: Message
    kind: str
    run_id: str
    seq: int
    part: PartPath
    part_count: PartPath
    msg_id: str
    subject: str
    num_delivered: int
    stream_seq: int
    raw: Msg = field(repr=False)
    consumer: Consumer = field(repr=False)
    tile_refs: tuple[int, ...] = ()
    tile_stream: str = ""
    settled: bool = False
    _decoded: LocalizationTable | np.ndarray | None = field(default=None, repr=False)

    @property
    def part_label(self) -> str:
        return format_path(self.part)

    @property
    def table(self) -> LocalizationTable:
        """Localizations of a LocalizationBatch or ParticleSet (validated on receipt)."""
        if not isinstance(self._decoded, LocalizationTable):
            if isinstance(self.message, particles_pb2.ParticleSet):
                self._decoded = particles_from_proto(self.message)[0]
            else:
                self._decoded = table_from_batch(self.message)  # type: ignore[arg-type]
        return self._decoded

    @property
    def frames(self) -> np.ndarray:
        """(n, h, w) array of a FrameBatch (reassembled from tiles when it was tiled)."""
        if not isinstance(self.message, frames_pb2.FrameBatch):
            raise InvalidInput(f"{type_name(self.message)} has no frames")
        if not isinstance(self._decoded, np.ndarray):
            self._decoded = frames_from_proto(self.message)
        return self._decoded

    @property
    def items(self) -> int:
        msg = self.message
        if isinstance(msg, frames_pb2.FrameBatch):
            return msg.n_frames
        if isinstance(msg, particles_pb2.ParticleSet):
            return msg.localizations.n_rows
        return int(getattr(msg, "n_rows", 1))

    async def ack(self) -> None:
        """Done: ack (tile heads: confirmed ack, then delete the tiles)."""
        if self.settled:
            return
        if self.tile_refs:
            await self.raw.ack_sync(timeout=self.consumer.bus.config.ack_timeout)
            await self.consumer._delete_tiles(self.tile_stream, self.tile_refs)
        else:
            await self.raw.ack()
        self.settled = True
        self.consumer._record(self, "ok")

    async def in_progress(self) -> None:
        """Reset the ack_wait clock: still working on it."""
        if not self.settled:
            await self.raw.in_progress()

    async def nak(self, delay: float | None = None) -> None:
        """Ask for redelivery after ``delay`` seconds."""
        if self.settled:
            return
        await self.raw.nak(delay=delay)
        self.settled = True
        metrics.CONSUMED_MESSAGES.labels(self.kind, "retry").inc()

    async def dead_letter(self, reason: str) -> None:
        """Send to ``pnt.<run>.dead`` with ``reason`` and ack: it will not come back."""
        if self.settled:
            return
        await self.consumer._dead_letter(self.raw, self.run_id, reason, self.num_delivered)
        self.settled = True
        self.consumer._record(self, "dead")


@dataclass
class ConsumerStats:
    handled: int = 0
    duplicates: int = 0
    dead: int = 0
    retried: int = 0


class Consumer:
    """Durable pull consumer of ``pnt.<run_id>.<kind>`` (``run_id="*"``: every run).

    ``ack_wait`` (s): time a message may stay unacked before redelivery (the handler's
    progress is signalled meanwhile). ``max_deliver``: deliveries before dead-lettering.
    ``batch``: messages per fetch, fewer when that many messages (of the mean size seen
    so far, max_payload at first) would exceed ``max_fetch_bytes``: the server drops a
    client that falls too far behind. ``nak_delay`` (s): first redelivery delay,
    doubling. ``durable`` names the service (letters, digits, ``-``, ``_``).
    """

    def __init__(
        self,
        bus: Bus,
        kind: str,
        durable: str,
        *,
        run_id: str = "*",
        ack_wait: float = 30.0,
        max_deliver: int = 5,
        batch: int = 16,
        fetch_timeout: float = 1.0,
        nak_delay: float = 1.0,
        max_ack_pending: int = 1024,
        max_fetch_bytes: int = 32 << 20,
        dedupe_size: int = 100_000,
    ) -> None:
        self.bus = bus
        self.kind = validate_kind(kind)
        if kind == "dead":
            raise InvalidInput("read pnt.<run>.dead with a plain JetStream subscription")
        if not _DURABLE.match(durable):
            raise InvalidInput(f"invalid durable name {durable!r}: use letters, digits, - or _")
        self.durable = durable
        self.filter = subject(run_id, kind)
        self.stream = stream_name(kind)
        self.ack_wait = ack_wait
        self.max_deliver = max_deliver
        self.batch = batch
        self.max_fetch_bytes = max_fetch_bytes
        self._mean_size = float(bus.max_payload)  # of fetched messages, running estimate
        self.fetch_timeout = fetch_timeout
        self.nak_delay = nak_delay
        self.max_ack_pending = max_ack_pending
        self.stats = ConsumerStats()
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._dedupe_size = dedupe_size
        self._trackers: OrderedDict[str, SeqTracker] = OrderedDict()
        self._buffer: deque[Delivery] = deque()
        self._sub: object | None = None

    # -- lifecycle ----------------------------------------------------------------

    async def start(self) -> Consumer:
        """Create (or update) the durable consumer and bind a pull subscription to it."""
        if self._sub is not None:
            return self
        cfg = api.ConsumerConfig(
            name=self.durable,
            durable_name=self.durable,
            filter_subject=self.filter,
            deliver_policy=api.DeliverPolicy.ALL,
            ack_policy=api.AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait,
            # One delivery more than we allow handlers, to dead-letter what crashed them.
            max_deliver=self.max_deliver + 1,
            max_ack_pending=self.max_ack_pending,
        )
        try:
            await self.bus.jsm.add_consumer(self.stream, cfg)
            self._sub = await self.bus.js.pull_subscribe_bind(
                durable=self.durable, stream=self.stream
            )
        except nats.js.errors.APIError as e:
            hint = ""
            if e.err_code in (10100, 10099):
                hint = (
                    f" ({self.stream} is a work queue: all replicas must share one durable "
                    "name and filter)"
                )
            raise BusError(
                f"cannot create consumer {self.durable!r} on {self.stream}: {e.description}{hint}"
            ) from e
        return self

    async def close(self) -> None:
        """Stop pulling; unsettled messages are redelivered after ack_wait. The durable stays."""
        sub, self._sub = self._sub, None
        if sub is not None:
            with contextlib.suppress(nats.errors.Error):
                await sub.unsubscribe()  # type: ignore[attr-defined]
        for d in self._buffer:
            with contextlib.suppress(nats.errors.Error):
                await d.nak()
        self._buffer.clear()

    async def __aenter__(self) -> Consumer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- receiving ----------------------------------------------------------------

    async def fetch(self, batch: int | None = None, timeout: float | None = None) -> list[Delivery]:
        """Up to ``batch`` decoded deliveries, waiting at most ``timeout`` s ([] if none).

        Duplicates are acked and dropped, malformed messages dead-lettered.
        """
        if self._sub is None:
            await self.start()
        try:
            msgs = await self._sub.fetch(  # type: ignore[union-attr]
                batch or self._batch_size(), timeout=timeout or self.fetch_timeout
            )
        except TimeoutError:
            return []
        out = []
        for m in msgs:
            self._mean_size = 0.8 * self._mean_size + 0.2 * (len(m.data) + 512)
            d = await self._prepare(m)
            if d is not None:
                out.append(d)
        return out

    def _batch_size(self) -> int:
        """``batch``, or fewer so one fetch stays under ``max_fetch_bytes``."""
        return max(1, min(self.batch, int(self.max_fetch_bytes // self._mean_size)))

    def __aiter__(self) -> AsyncIterator[Delivery]:
        return self

    async def __anext__(self) -> Delivery:
        """The next delivery; settle it (ack/nak/dead_letter) yourself."""
        while True:
            while not self._buffer:
                if self._sub is None and self.bus.nc.is_closed:
                    raise StopAsyncIteration
                self._buffer.extend(await self.fetch())
            d = self._buffer.popleft()
            if not await self._drop_duplicate(d):
                return d

    async def _drop_duplicate(self, d: Delivery) -> bool:
        """Ack and drop ``d`` if an identical message was settled since it was fetched."""
        if d.msg_id not in self._seen:
            return False
        await d.raw.ack()
        d.settled = True
        self.stats.duplicates += 1
        metrics.CONSUMED_MESSAGES.labels(self.kind, "duplicate").inc()
        return True

    async def _prepare(self, msg: Msg) -> Delivery | None:
        headers = msg.headers or {}
        meta = msg.metadata
        delivered = meta.num_delivered
        msg_id = headers.get(H_MSG_ID)
        if msg_id and msg_id in self._seen:
            await msg.ack()
            self.stats.duplicates += 1
            metrics.CONSUMED_MESSAGES.labels(self.kind, "duplicate").inc()
            return None
        try:
            run_id, kind = parse_subject(msg.subject)
        except InvalidInput:  # e.g. pnt.a.b.locs: cannot come from our filter, keep it apart
            run_id, kind = "unknown", self.kind
        if delivered > self.max_deliver:
            await self._dead_letter(
                msg,
                run_id,
                f"max_deliver: delivered {delivered} times without being settled "
                "(handler crashed or exceeded ack_wait)",
                delivered,
            )
            self.stats.dead += 1
            self._note_dead(run_id, headers)
            return None
        try:
            cls = message_type(kind, headers.get(H_TYPE))
            message = decode(cls, msg.data)
            decoded = validate(message, run_id)
            tile_refs: tuple[int, ...] = ()
            tile_stream = ""
            if isinstance(message, frames_pb2.FrameBatch) and message.tile_refs:
                tile_refs, tile_stream = tuple(message.tile_refs), message.tile_stream
                message = await self._fetch_tiles(message, run_id)
                decoded = frames_from_proto(message)
        except InvalidInput as e:
            await self._dead_letter(msg, run_id, f"invalid: {e}", delivered)
            self.stats.dead += 1
            self._note_dead(run_id, headers)
            return None
        seq = int(getattr(message, "seq", 0))
        part = parse_path(headers.get(H_PART))
        counts = parse_path(headers.get(H_PARTS))
        if part is None or counts is None or len(part) != len(counts):
            own = getattr(message, "part", 0), getattr(message, "part_count", 1) or 1
            part, counts = (own[0],), (own[1],)
        if not msg_id:
            msg_id = f"{run_id}.{kind}.{seq}.{format_path(part)}"
            if msg_id in self._seen:
                await msg.ack()
                self.stats.duplicates += 1
                metrics.CONSUMED_MESSAGES.labels(self.kind, "duplicate").inc()
                return None
        return Delivery(
            message=message,
            kind=kind,
            run_id=run_id,
            seq=seq,
            part=part,
            part_count=counts,
            msg_id=msg_id,
            subject=msg.subject,
            num_delivered=delivered,
            stream_seq=meta.sequence.stream,
            raw=msg,
            consumer=self,
            tile_refs=tile_refs,
            tile_stream=tile_stream,
            _decoded=decoded,
        )

    async def _fetch_tiles(self, head: frames_pb2.FrameBatch, run_id: str) -> frames_pb2.FrameBatch:
        """The whole frame of a tile head, its tiles read by stream sequence (direct get)."""
        if head.tile_stream != stream_name(TILES):
            raise InvalidInput(f"tile head points to stream {head.tile_stream!r}")
        want_subject = tiles_subject(run_id)

        async def get(i: int, ref: int) -> frames_pb2.FrameBatch:
            try:
                raw = await self.bus.jsm.get_msg(head.tile_stream, seq=ref, direct=True)
            except nats.js.errors.NotFoundError:
                raise InvalidInput(
                    f"tile {i} of frame {head.first_frame} (stream {head.tile_stream} "
                    f"seq {ref}) is missing: expired or deleted"
                ) from None
            if raw.subject != want_subject:
                raise InvalidInput(f"tile {i} (seq {ref}) is on {raw.subject}, not {want_subject}")
            return decode(frames_pb2.FrameBatch, raw.data or b"")

        tiles = await asyncio.gather(*(get(i, ref) for i, ref in enumerate(head.tile_refs)))
        return assemble_tiles(head, tiles)

    async def _delete_tiles(self, stream: str, refs: tuple[int, ...]) -> None:
        for ref in refs:
            try:
                await self.bus.jsm.delete_msg(stream, ref)
            except nats.js.errors.APIError as e:  # already gone (another delivery deleted it)
                log.debug("tile %s/%d not deleted: %s", stream, ref, e)

    async def _dead_letter(self, msg: Msg, run_id: str, reason: str, delivered: int) -> None:
        headers = msg.headers or {}
        await self.bus.publish_dead(
            run_id,
            msg.data,
            reason=reason,
            original_subject=msg.subject,
            message_type=headers.get(H_TYPE, ""),
            stream=msg.metadata.stream,
            stream_seq=msg.metadata.sequence.stream,
            deliveries=delivered,
            kind=self.kind,
        )
        await msg.ack()
        metrics.CONSUMED_MESSAGES.labels(self.kind, "dead").inc()
        log.warning(
            "dead-lettered %s seq %d: %s", msg.subject, msg.metadata.sequence.stream, reason
        )

    def _record(self, d: Delivery, outcome: str) -> None:
        """Remember a settled delivery for dedupe and completeness."""
        self._seen[d.msg_id] = None
        if len(self._seen) > self._dedupe_size:
            self._seen.popitem(last=False)
        gap = self.progress(d.run_id).add(d.seq, d.part, d.part_count)
        if gap:
            metrics.SEQ_GAPS.labels(self.kind).inc(gap)
            log.debug(
                "run %s %s: seq %d arrived with %d earlier seq(s) unseen",
                d.run_id,
                d.kind,
                d.seq,
                gap,
            )
        metrics.CONSUMED_MESSAGES.labels(self.kind, outcome).inc()
        if outcome == "ok":
            metrics.CONSUMED_ITEMS.labels(self.kind).inc(d.items)

    def _note_dead(self, run_id: str, headers: dict[str, str]) -> None:
        """Count an undecodable dead-lettered message as seen when its headers say which it was."""
        part, counts = parse_path(headers.get(H_PART)), parse_path(headers.get(H_PARTS))
        try:
            seq = int(headers.get(H_SEQ, ""))
        except ValueError:
            return
        if part is not None and counts is not None and len(part) == len(counts):
            self.progress(run_id).add(seq, part, counts)

    def progress(self, run_id: str) -> SeqTracker:
        """The completeness tracker of ``run_id`` on this consumer's kind."""
        tracker = self._trackers.get(run_id)
        if tracker is None:
            tracker = self._trackers[run_id] = SeqTracker()
            if len(self._trackers) > 1024:
                self._trackers.popitem(last=False)
        else:
            self._trackers.move_to_end(run_id)
        return tracker

    # -- the loop -----------------------------------------------------------------

    async def handle(self, d: Delivery, handler: Handler) -> None:
        """Run ``handler`` on one delivery and settle it (see the module docstring)."""
        if await self._drop_duplicate(d):
            return
        start = time.perf_counter()
        try:
            result = handler(d)
            if inspect.isawaitable(result):
                await result
        except InvalidInput as e:
            await d.dead_letter(f"invalid: {e}")
            self.stats.dead += 1
            return
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await asyncio.shield(d.nak())
            raise
        except Exception as e:
            if d.num_delivered >= self.max_deliver:
                await d.dead_letter(f"handler failed {d.num_delivered} times, last with {e!r}")
                self.stats.dead += 1
            else:
                log.warning(
                    "handler failed on %s seq %d (delivery %d of %d): %r; retrying",
                    d.subject,
                    d.seq,
                    d.num_delivered,
                    self.max_deliver,
                    e,
                )
                await d.nak(delay=self.nak_delay * 2 ** (d.num_delivered - 1))
                self.stats.retried += 1
            return
        finally:
            metrics.HANDLER_SECONDS.labels(self.kind).observe(time.perf_counter() - start)
        await d.ack()
        self.stats.handled += 1

    @contextlib.asynccontextmanager
    async def keep_alive(self, deliveries: list[Delivery]) -> AsyncIterator[None]:
        """While inside, tell JetStream every ack_wait/3 that the unsettled ``deliveries``
        are being worked on, so a slow handler (or a long batch) is not redelivered."""

        async def beat() -> None:
            with contextlib.suppress(nats.errors.Error):
                while True:
                    await asyncio.sleep(self.ack_wait / 3)
                    for d in deliveries:
                        await d.in_progress()

        task = asyncio.ensure_future(beat())
        try:
            yield
        finally:
            task.cancel()

    async def run(
        self,
        handler: Handler,
        *,
        stop: asyncio.Event | None = None,
        until_complete: str | None = None,
        last_seq_key: str | None = None,
        idle_timeout: float | None = None,
    ) -> ConsumerStats:
        """Handle messages until ``stop`` is set, the run is complete, or idle too long.

        ``until_complete=run_id``: return once the run's END_OF_ACQUISITION listing
        ``last_seq_key`` (default: this consumer's kind) is out and the run's data is
        settled: either this process settled every seq up to ``last_seq[key]``, or (for
        the announced kind itself) the durable has nothing pending or unacked on the
        server, which also covers replicas and restarts. A stage consuming derived data
        either waits for its upstream's announcement (each stage announces its output
        with `Bus.publish_end_of_acquisition` once its own ``run`` completes; replicas
        announce the same Msg-Id, stored once) or, as a single process, passes the
        source kind (``last_seq_key="frames"``). ``idle_timeout`` (s): return after that
        long without messages.
        """
        key = last_seq_key or self.kind
        eoa: asyncio.Task[run_pb2.Event] | None = None
        if until_complete is not None:
            eoa = asyncio.ensure_future(self.bus.wait_end_of_acquisition(until_complete, kind=key))
        idle_since = time.monotonic()
        idle = False
        failures = 0
        lag_at = 0.0
        try:
            while not (stop is not None and stop.is_set()):
                if time.monotonic() - lag_at > LAG_INTERVAL_S:
                    lag_at = time.monotonic()
                    with contextlib.suppress(nats.errors.Error, TimeoutError):
                        await self.report_lag()
                if eoa is not None and eoa.done():
                    last = eoa.result().last_seq[key]
                    if await self._complete(until_complete, last, key, idle):  # type: ignore[arg-type]
                        break
                try:
                    deliveries = self._drain_buffer() or await self.fetch()
                    failures = 0
                except (nats.errors.Error, TimeoutError) as e:
                    if self.bus.nc.is_closed:
                        raise BusError(f"connection to {self.bus.url} closed") from e
                    failures += 1
                    log.warning("fetching from %s failed (%s); retrying", self.filter, e)
                    await asyncio.sleep(min(0.1 * 2**failures, 5.0))
                    continue
                idle = not deliveries
                if idle:
                    if idle_timeout is not None and time.monotonic() - idle_since > idle_timeout:
                        break
                    continue
                idle_since = time.monotonic()
                async with self.keep_alive(deliveries):
                    for i, d in enumerate(deliveries):
                        if stop is not None and stop.is_set():
                            for rest in deliveries[i:]:
                                await rest.nak()
                            break
                        await self.handle(d, handler)
        finally:
            if eoa is not None:
                eoa.cancel()
                with contextlib.suppress(BaseException):
                    await eoa
        return self.stats

    async def report_lag(self) -> api.ConsumerInfo:
        """Read the durable's state from the server into the queue-lag gauges."""
        info = await self.bus.jsm.consumer_info(self.stream, self.durable)
        metrics.CONSUMER_PENDING.labels(self.kind, self.durable).set(info.num_pending or 0)
        metrics.CONSUMER_ACK_PENDING.labels(self.kind, self.durable).set(info.num_ack_pending or 0)
        return info

    async def _complete(self, run_id: str, last_seq: int, key: str, idle: bool) -> bool:
        """Whether every message of ``run_id`` up to ``last_seq`` of ``key`` is settled."""
        if self.progress(run_id).complete_through(last_seq):
            return True
        if not idle or key != self.kind:
            return False
        info = await self.report_lag()
        return info.num_pending == 0 and info.num_ack_pending == 0

    def _drain_buffer(self) -> list[Delivery]:
        out = list(self._buffer)
        self._buffer.clear()
        return out
