"""Subjects, streams and message types of the bus (DESIGN.md section 4).

Every data kind of a run lives on ``pnt.<run>.<kind>``; each kind has one JetStream
stream over all runs (``PNT_LOCS`` holds ``pnt.*.locs``). Frames are a work queue
(each frame batch goes to exactly one localizer replica, and is deleted once acked);
results are kept under limits so several services (the clusterer, the dashboard, the
demo) can read them. Frames too large for one message travel as row tiles on
``pnt.<run>.frames.tiles`` (stream ``PNT_FRAME_TILES``), see `pointillist.core.bus.codec`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from google.protobuf.message import Message

from pointillist.core.errors import InvalidInput
from pointillist.v1 import frames_pb2, particles_pb2, run_pb2, table_pb2

PREFIX = "pnt"

#: Data kinds, each on ``pnt.<run>.<kind>``. ``truth`` holds simulated ground truth.
KINDS = ("frames", "locs", "clusters", "particles", "latent", "recon", "events", "dead", "truth")
#: Pseudo-kind of the tiles of oversized frames, on ``pnt.<run>.frames.tiles``.
TILES = "tiles"

_RUN_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")

# Header names. Nats-Msg-Id is JetStream's dedupe key.
H_TYPE = "Pnt-Type"
H_SEQ = "Pnt-Seq"
H_PART = "Pnt-Part"
H_PARTS = "Pnt-Part-Count"
H_MSG_ID = "Nats-Msg-Id"
H_DEAD_REASON = "Pnt-Dead-Reason"
H_DEAD_SUBJECT = "Pnt-Dead-Subject"
H_DEAD_STREAM = "Pnt-Dead-Stream"
H_DEAD_STREAM_SEQ = "Pnt-Dead-Stream-Seq"
H_DEAD_DELIVERIES = "Pnt-Dead-Deliveries"

#: The typed messages the bus carries, by full proto name (the ``Pnt-Type`` header).
MESSAGE_TYPES: dict[str, type[Message]] = {
    cls.DESCRIPTOR.full_name: cls
    for cls in (
        table_pb2.LocalizationBatch,
        frames_pb2.FrameBatch,
        particles_pb2.ParticleSet,
        run_pb2.RunSpec,
        run_pb2.RunStatus,
        run_pb2.Event,
    )
}

#: Message types allowed on each kind; the first is the default when no header says.
KIND_TYPES: dict[str, tuple[type[Message], ...]] = {
    "frames": (frames_pb2.FrameBatch,),
    "locs": (table_pb2.LocalizationBatch,),
    "clusters": (table_pb2.LocalizationBatch,),
    "truth": (table_pb2.LocalizationBatch,),
    "particles": (particles_pb2.ParticleSet,),
    "latent": (particles_pb2.ParticleSet, table_pb2.LocalizationBatch),
    "recon": (particles_pb2.ParticleSet, table_pb2.LocalizationBatch),
    "events": (run_pb2.Event, run_pb2.RunStatus, run_pb2.RunSpec),
    "dead": tuple(MESSAGE_TYPES.values()),
}


def validate_run_id(run_id: str) -> str:
    """``run_id`` if it is a safe subject token (letters, digits, ``-``, ``_``; 1-128 chars)."""
    if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
        raise InvalidInput(
            f"invalid run id {run_id!r}: use 1-128 letters, digits, '-' or '_' "
            "(no dots, spaces or wildcards)"
        )
    return run_id


def validate_kind(kind: str) -> str:
    if kind not in KINDS:
        raise InvalidInput(f"unknown data kind {kind!r}; known kinds: {', '.join(KINDS)}")
    return kind


def subject(run_id: str, kind: str) -> str:
    """``pnt.<run>.<kind>``; ``run_id="*"`` gives the wildcard over all runs."""
    run = run_id if run_id == "*" else validate_run_id(run_id)
    return f"{PREFIX}.{run}.{validate_kind(kind)}"


def tiles_subject(run_id: str) -> str:
    """Subject of the row tiles of oversized frames of a run."""
    return f"{PREFIX}.{validate_run_id(run_id)}.frames.{TILES}"


def parse_subject(subj: str) -> tuple[str, str]:
    """(run_id, kind) of a ``pnt.<run>.<kind>`` subject; InvalidInput otherwise."""
    tokens = subj.split(".")
    if len(tokens) != 3 or tokens[0] != PREFIX or tokens[2] not in KINDS:
        raise InvalidInput(f"not a pointillist data subject: {subj!r}")
    return tokens[1], tokens[2]


def type_name(msg: Message | type[Message]) -> str:
    """Full proto name, the value of the ``Pnt-Type`` header."""
    return msg.DESCRIPTOR.full_name


@dataclass(frozen=True)
class StreamLimits:
    """Limits of one stream: ``max_bytes`` (bytes, -1 = none), ``max_age`` (s, 0 = forever)."""

    max_bytes: int
    max_age: float = 0.0
    max_msgs: int = -1


GiB = 1 << 30
MiB = 1 << 20
DAY = 86400.0

#: Default limits per stream key (a kind, or ``tiles``). Sized for one workstation.
DEFAULT_LIMITS: dict[str, StreamLimits] = {
    "frames": StreamLimits(1 * GiB, 1 * DAY),
    TILES: StreamLimits(2 * GiB, 1 * DAY),
    "locs": StreamLimits(4 * GiB, 7 * DAY),
    "clusters": StreamLimits(1 * GiB, 7 * DAY),
    "particles": StreamLimits(1 * GiB, 7 * DAY),
    "latent": StreamLimits(256 * MiB, 7 * DAY),
    "recon": StreamLimits(1 * GiB, 7 * DAY),
    "events": StreamLimits(64 * MiB, 7 * DAY),
    "dead": StreamLimits(1 * GiB, 30 * DAY),
    "truth": StreamLimits(1 * GiB, 7 * DAY),
}


def stream_name(key: str) -> str:
    """Stream of a kind (``PNT_LOCS``) or of the frame tiles (``PNT_FRAME_TILES``)."""
    return "PNT_FRAME_TILES" if key == TILES else f"PNT_{validate_kind(key).upper()}"


def stream_subjects(key: str) -> list[str]:
    if key == TILES:
        return [f"{PREFIX}.*.frames.{TILES}"]
    return [f"{PREFIX}.*.{validate_kind(key)}"]


@dataclass(frozen=True)
class BusConfig:
    """Bus settings; times in seconds, sizes in bytes.

    ``publish_patience``: how long a publish keeps retrying a full stream before
    BusFull. ``header_headroom``: bytes of ``max_payload`` kept free for headers (also
    room for the dead-letter headers). ``max_in_flight``: publishes awaiting their
    PubAck at once per connection, fewer when that many messages of the server's
    max_payload would exceed ``max_in_flight_bytes``.
    """

    limits: dict[str, StreamLimits] = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    duplicate_window: float = 120.0
    replicas: int = 1
    publish_patience: float = 60.0
    ack_timeout: float = 10.0
    backoff_initial: float = 0.005
    backoff_max: float = 0.5
    max_in_flight: int = 64
    max_in_flight_bytes: int = 16 << 20
    header_headroom: int = 2048

    def with_limits(self, **limits: StreamLimits) -> BusConfig:
        """A copy with some streams' limits replaced, e.g. ``frames=StreamLimits(64 * MiB)``."""
        unknown = set(limits) - set(DEFAULT_LIMITS)
        if unknown:
            raise InvalidInput(f"unknown stream key(s) {sorted(unknown)}")
        return replace(self, limits={**self.limits, **limits})
