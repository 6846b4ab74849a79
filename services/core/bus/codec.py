"""Wire codec of the bus: split typed messages to fit the payload limit, decode and validate.

Splitting (DESIGN.md section 3: split, never truncate):

- ``LocalizationBatch``: by rows into parts ``part``/``part_count``, rows in order.
- ``ParticleSet``: by whole particles (rows keep their relative order, truth rows go
  with their particle); by rows when a single particle does not fit.
- ``FrameBatch``: by frames (header ``Pnt-Part``); a single frame over the budget is
  cut into row tiles (`Tile`) that the publisher stores on ``pnt.<run>.frames.tiles``
  before a small *head* FrameBatch on ``pnt.<run>.frames`` lists their stream sequences
  in ``tile_refs``. The frames stream is a work queue shared by replicas, so the head is
  the one unit of work: whichever replica receives it fetches all tiles by sequence
  (direct get), so tiles are never scattered over replicas; they are deleted after the
  head is acked, and expire by ``max_age`` if a consumer dies in between.

Each part is a valid message on its own. The budget is the server's ``max_payload``
(from its INFO) minus a headroom for headers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from google.protobuf.message import DecodeError, Message

from pointillist.core.bus.subjects import KIND_TYPES, MESSAGE_TYPES, type_name
from pointillist.core.errors import InvalidInput
from pointillist.core.table import COLUMNS, LocalizationTable, numpy_dtype, proto_dtype
from pointillist.v1 import frames_pb2, particles_pb2, run_pb2, table_pb2

#: Column as (name, proto dtype enum, unit, 1-D little-endian numpy array).
RawColumn = tuple[str, int, str, np.ndarray]

# Conservative protobuf framing overheads (tags, length varints, small fields), bytes.
_MSG_OVERHEAD = 96
_COL_OVERHEAD = 40


@dataclass
class Piece:
    """One message to publish: ``message`` with part ``part`` of ``part_count``.

    ``items`` counts rows (localizations), frames, or 1. ``tiles`` are the row tiles
    of an oversized frame, published before ``message`` (their head).
    """

    message: Message
    part: int
    part_count: int
    items: int
    tiles: list[frames_pb2.FrameBatch] = field(default_factory=list)

    def size(self) -> int:
        """Encoded bytes of the message and its tiles."""
        return self.message.ByteSize() + sum(t.ByteSize() for t in self.tiles)


# -- localizations ------------------------------------------------------------------


def table_columns(table: LocalizationTable) -> list[RawColumn]:
    """Raw columns of a LocalizationTable, units from the known columns."""
    out = []
    for name in table.columns:
        arr = table[name]
        spec = COLUMNS.get(name)
        out.append((name, proto_dtype(arr.dtype), spec.unit if spec else "", arr))
    return out


def batch_columns(columns: Iterable[table_pb2.Column], n_rows: int) -> list[RawColumn]:
    """Raw columns of proto Columns, checked for a consistent length."""
    out = []
    for col in columns:
        dt = numpy_dtype(col.dtype)
        data = col.data
        if len(data) != n_rows * dt.itemsize:
            raise InvalidInput(f"column {col.name!r}: {len(data)} bytes for {n_rows} rows of {dt}")
        out.append((col.name, col.dtype, col.unit, np.frombuffer(data, dtype=dt)))
    return out


def table_from_batch(
    msg: table_pb2.LocalizationBatch, *, check_finite: bool = True
) -> LocalizationTable:
    """The LocalizationTable of a LocalizationBatch, validated like
    `LocalizationTable.from_proto` but reading each column's bytes once (no extra copy).
    ``check_finite=False`` lets non-finite coordinates through for the consumer to judge."""
    cols: dict[str, np.ndarray] = {}
    for name, _, _, arr in batch_columns(msg.columns, msg.n_rows):
        if name in cols:
            raise InvalidInput(f"duplicate column {name!r}")
        cols[name] = arr
    return LocalizationTable(cols, check_finite=check_finite)


def _fill_columns(target, columns: Sequence[RawColumn], rows: slice | np.ndarray) -> None:
    for name, dtype, unit, arr in columns:
        data = np.ascontiguousarray(arr[rows], dtype=arr.dtype.newbyteorder("<")).tobytes()
        target.add(name=name, dtype=dtype, data=data, unit=unit)


def _row_bytes(columns: Sequence[RawColumn]) -> int:
    return sum(arr.dtype.itemsize for _, _, _, arr in columns)


def _columns_overhead(columns: Sequence[RawColumn]) -> int:
    return sum(_COL_OVERHEAD + len(name) + len(unit) for name, _, unit, _ in columns)


def _rows_per_part(budget: int, fixed: int, row_bytes: int, what: str) -> int:
    if row_bytes == 0:
        return 1 << 62
    rows = (budget - fixed) // row_bytes
    if rows < 1:
        raise InvalidInput(f"payload budget of {budget} bytes cannot hold one row of {what}")
    return rows


def split_localizations(
    columns: Sequence[RawColumn],
    n_rows: int,
    budget: int,
    *,
    run_id: str,
    seq: int,
    source: str = "",
    ground_truth: bool = False,
) -> Iterator[Piece]:
    """LocalizationBatch parts of at most ``budget`` encoded bytes, rows in order, made
    one at a time as the caller iterates (a large table is never copied whole)."""
    fixed = _MSG_OVERHEAD + len(run_id) + len(source) + _columns_overhead(columns)
    rows = _rows_per_part(budget, fixed, _row_bytes(columns), "localizations")
    count = max(1, -(-n_rows // rows))
    for i in range(count):
        a, b = i * rows, min(n_rows, (i + 1) * rows)
        msg = table_pb2.LocalizationBatch(
            run_id=run_id,
            seq=seq,
            part=i,
            part_count=count,
            n_rows=b - a,
            source=source,
            ground_truth=ground_truth,
        )
        _fill_columns(msg.columns, columns, slice(a, b))
        yield Piece(msg, i, count, b - a)


# -- particles ----------------------------------------------------------------------


def particles_to_proto(
    table: LocalizationTable,
    *,
    run_id: str = "",
    seq: int = 0,
    truth: Mapping[str, np.ndarray] | None = None,
    dimensions: int = 2,
    particle_kind: str = "",
) -> particles_pb2.ParticleSet:
    """A ParticleSet from localizations with a ``particle`` column and optional truth columns."""
    msg = particles_pb2.ParticleSet(
        run_id=run_id, seq=seq, part=0, part_count=1, dimensions=dimensions, kind=particle_kind
    )
    msg.localizations.CopyFrom(table.to_proto(run_id, seq))
    _fill_columns(msg.truth, truth_columns(truth or {}), slice(None))
    return msg


def truth_columns(truth: Mapping[str, np.ndarray]) -> list[RawColumn]:
    """Raw columns of a per-particle truth table; checks equal lengths and a particle column."""
    cols = []
    n = None
    for name, values in truth.items():
        arr = np.asarray(values)
        if arr.ndim != 1:
            raise InvalidInput(f"truth column {name!r} must be 1-D, got shape {arr.shape}")
        if n is not None and len(arr) != n:
            raise InvalidInput(f"truth column {name!r} has {len(arr)} rows, expected {n}")
        n = len(arr)
        spec = COLUMNS.get(name)
        cols.append((name, proto_dtype(arr.dtype), spec.unit if spec else "", arr))
    if cols and "particle" not in truth:
        raise InvalidInput("truth columns need a 'particle' column")
    return cols


def particles_from_proto(
    msg: particles_pb2.ParticleSet,
) -> tuple[LocalizationTable, dict[str, np.ndarray]]:
    """(localizations, truth columns) of a ParticleSet; InvalidInput when inconsistent.

    Non-finite coordinates pass: they spoil one particle, not the set, so consumers skip
    and report that particle (the VAE does) instead of losing the whole batch."""
    table = table_from_batch(msg.localizations, check_finite=False)
    n = len(msg.truth[0].data) // numpy_dtype(msg.truth[0].dtype).itemsize if msg.truth else 0
    truth = {name: arr for name, _, _, arr in batch_columns(msg.truth, n)}
    if truth and "particle" not in truth:
        raise InvalidInput("truth columns need a 'particle' column")
    return table, truth


def split_particles(
    table: LocalizationTable,
    truth: Mapping[str, np.ndarray],
    budget: int,
    *,
    run_id: str,
    seq: int,
    dimensions: int = 2,
    particle_kind: str = "",
) -> Iterator[Piece]:
    """ParticleSet parts of at most ``budget`` bytes, whole particles per part when possible."""
    loc_cols = table_columns(table)
    tru_cols = truth_columns(truth)
    fixed = (
        2 * _MSG_OVERHEAD
        + 2 * len(run_id)
        + len(particle_kind)
        + _columns_overhead(loc_cols)
        + _columns_overhead(tru_cols)
    )
    loc_row, tru_row = _row_bytes(loc_cols), _row_bytes(tru_cols)
    n_loc, n_tru = len(table), len(next(iter(truth.values()))) if truth else 0
    groups = _particle_groups(table, truth, budget - fixed, loc_row, tru_row)
    if groups is None:  # a particle alone is over budget: fall back to rows
        groups = _row_groups(n_loc, n_tru, budget - fixed, loc_row, tru_row)
    for i, (loc_rows, tru_rows) in enumerate(groups):
        msg = particles_pb2.ParticleSet(
            run_id=run_id,
            seq=seq,
            part=i,
            part_count=len(groups),
            dimensions=dimensions,
            kind=particle_kind,
        )
        n = len(np.arange(n_loc)[loc_rows])
        msg.localizations.run_id = run_id
        msg.localizations.seq = seq
        msg.localizations.part = i
        msg.localizations.part_count = len(groups)
        msg.localizations.n_rows = n
        _fill_columns(msg.localizations.columns, loc_cols, loc_rows)
        _fill_columns(msg.truth, tru_cols, tru_rows)
        yield Piece(msg, i, len(groups), n)


def _particle_groups(
    table: LocalizationTable,
    truth: Mapping[str, np.ndarray],
    cap: int,
    loc_row: int,
    tru_row: int,
) -> list[tuple[np.ndarray, np.ndarray]] | None:
    """Row masks per part packing whole particles greedily, or None when one does not fit."""
    loc_pid = table.get("particle")
    tru_pid = np.asarray(truth["particle"]) if truth else None
    if loc_pid is None:
        return None
    ids = [loc_pid] + ([tru_pid] if tru_pid is not None else [])
    all_ids = np.concatenate(ids)
    uniq, first = np.unique(all_ids, return_index=True)
    order = uniq[np.argsort(first, kind="stable")]
    loc_counts = _counts(loc_pid, order)
    tru_counts = _counts(tru_pid, order) if tru_pid is not None else np.zeros(len(order), int)
    cost = loc_counts * loc_row + tru_counts * tru_row
    if cost.size and cost.max() > cap:
        return None
    cum = np.cumsum(cost)
    bounds, start, base = [], 0, 0
    while start < len(order):
        end = int(np.searchsorted(cum, base + cap, side="right"))
        bounds.append((start, end))
        base, start = int(cum[end - 1]), end
    if not bounds:
        bounds = [(0, 0)]
    groups = []
    for a, b in bounds:
        members = order[a:b]
        loc_mask = np.isin(loc_pid, members)
        tru_mask = np.isin(tru_pid, members) if tru_pid is not None else slice(0, 0)
        groups.append((loc_mask, tru_mask))
    return groups


def _counts(pid: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Occurrences of each id of ``order`` in ``pid``."""
    uniq, counts = np.unique(pid, return_counts=True)
    out = np.zeros(len(order), dtype=np.int64)
    if len(uniq):
        idx = np.minimum(np.searchsorted(uniq, order), len(uniq) - 1)
        hit = uniq[idx] == order
        out[hit] = counts[idx[hit]]
    return out


def _row_groups(
    n_loc: int, n_tru: int, cap: int, loc_row: int, tru_row: int
) -> list[tuple[slice, slice]]:
    """Parts by rows: localization rows first, then truth rows, each in order."""
    groups: list[tuple[slice, slice]] = []
    loc_per = _rows_per_part(cap, 0, loc_row, "particles")
    for a in range(0, n_loc, loc_per):
        groups.append((slice(a, min(n_loc, a + loc_per)), slice(0, 0)))
    tru_per = _rows_per_part(cap, 0, tru_row, "particle truth")
    for a in range(0, n_tru, tru_per):
        groups.append((slice(0, 0), slice(a, min(n_tru, a + tru_per))))
    return groups or [(slice(0, 0), slice(0, 0))]


# -- frames -------------------------------------------------------------------------


def frames_to_proto(
    frames: np.ndarray,
    *,
    run_id: str = "",
    seq: int = 0,
    first_frame: int = 0,
    camera: frames_pb2.CameraModel | None = None,
) -> frames_pb2.FrameBatch:
    """A FrameBatch from an (n, height, width) or (height, width) array (uint16 counts)."""
    arr = _frames_array(frames)
    msg = frames_pb2.FrameBatch(
        run_id=run_id,
        seq=seq,
        first_frame=first_frame,
        n_frames=arr.shape[0],
        height=arr.shape[1],
        width=arr.shape[2],
        dtype=proto_dtype(arr.dtype),
        data=np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")).tobytes(),
    )
    if camera is not None:
        msg.camera.CopyFrom(camera)
    return msg


def _frames_array(frames: np.ndarray) -> np.ndarray:
    arr = np.asarray(frames)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or 0 in arr.shape:
        raise InvalidInput(f"frames must be (n, height, width) with n, h, w > 0, got {arr.shape}")
    proto_dtype(arr.dtype)
    return arr


def frames_from_proto(msg: frames_pb2.FrameBatch) -> np.ndarray:
    """The (n_frames, height, width) array of a whole FrameBatch; InvalidInput unless its
    shape, dtype and data agree. Reads the data out of the message once."""
    if msg.tile_refs or msg.HasField("tile"):
        raise InvalidInput("FrameBatch is a tile head or a tile, not whole frames")
    if min(msg.n_frames, msg.height, msg.width) == 0:
        raise InvalidInput(
            f"FrameBatch shape {msg.n_frames}x{msg.height}x{msg.width} has a zero dimension"
        )
    dt = numpy_dtype(msg.dtype)
    data = msg.data
    want = msg.n_frames * msg.height * msg.width * dt.itemsize
    if len(data) != want:
        raise InvalidInput(
            f"FrameBatch data has {len(data)} bytes, expected {want} for "
            f"{msg.n_frames}x{msg.height}x{msg.width} {dt}"
        )
    return np.frombuffer(data, dtype=dt).reshape(msg.n_frames, msg.height, msg.width)


def split_frames(
    frames: np.ndarray,
    budget: int,
    *,
    run_id: str,
    seq: int,
    first_frame: int = 0,
    camera: frames_pb2.CameraModel | None = None,
    tile_stream: str = "",
) -> Iterator[Piece]:
    """FrameBatch parts by frames; a frame over ``budget`` becomes a head plus row tiles."""
    arr = _frames_array(frames)
    n, h, w = arr.shape
    le = arr.dtype.newbyteorder("<")
    frame_bytes = h * w * arr.dtype.itemsize
    fixed = _MSG_OVERHEAD + len(run_id) + (camera.ByteSize() if camera is not None else 0)
    per_part = (budget - fixed) // frame_bytes

    def batch(a: int, b: int) -> frames_pb2.FrameBatch:
        msg = frames_pb2.FrameBatch(
            run_id=run_id,
            seq=seq,
            first_frame=first_frame + a,
            n_frames=b - a,
            height=h,
            width=w,
            dtype=proto_dtype(arr.dtype),
        )
        if camera is not None:
            msg.camera.CopyFrom(camera)
        return msg

    if per_part >= 1:
        count = -(-n // per_part)
        for i in range(count):
            a, b = i * per_part, min(n, (i + 1) * per_part)
            msg = batch(a, b)
            msg.data = np.ascontiguousarray(arr[a:b], dtype=le).tobytes()
            yield Piece(msg, i, count, b - a)
        return
    rows_per_tile = _rows_per_part(budget, fixed, w * arr.dtype.itemsize, "frame pixels")
    n_tiles = -(-h // rows_per_tile)
    for i in range(n):
        head = batch(i, i + 1)
        head.tile_stream = tile_stream
        tiles = []
        for t in range(n_tiles):
            r0, r1 = t * rows_per_tile, min(h, (t + 1) * rows_per_tile)
            tile = batch(i, i + 1)
            tile.ClearField("camera")
            tile.tile.CopyFrom(frames_pb2.Tile(row_start=r0, rows=r1 - r0, index=t, count=n_tiles))
            tile.data = np.ascontiguousarray(arr[i, r0:r1], dtype=le).tobytes()
            tiles.append(tile)
        yield Piece(head, i, n, 1, tiles)


def assemble_tiles(
    head: frames_pb2.FrameBatch, tiles: Sequence[frames_pb2.FrameBatch]
) -> frames_pb2.FrameBatch:
    """The whole one-frame FrameBatch of a head and its tiles, checked bit for bit in shape."""
    if head.n_frames != 1:
        raise InvalidInput(f"tile head must describe one frame, says {head.n_frames}")
    dt = numpy_dtype(head.dtype)
    row_bytes = head.width * dt.itemsize
    if len(tiles) != len(head.tile_refs):
        raise InvalidInput(f"got {len(tiles)} tiles for {len(head.tile_refs)} refs")
    parts, row = [], 0
    for i, tile in enumerate(tiles):
        t = tile.tile
        if (tile.run_id, tile.seq, tile.first_frame) != (head.run_id, head.seq, head.first_frame):
            raise InvalidInput(f"tile {i} belongs to {tile.run_id}/{tile.seq}/{tile.first_frame}")
        if t.index != i or t.count != len(tiles) or t.row_start != row:
            raise InvalidInput(
                f"tile {i} out of place: index {t.index}/{t.count}, starts at row {t.row_start}"
            )
        if len(tile.data) != t.rows * row_bytes:
            raise InvalidInput(f"tile {i} has {len(tile.data)} bytes for {t.rows} rows")
        parts.append(tile.data)
        row += t.rows
    if row != head.height:
        raise InvalidInput(f"tiles cover {row} rows of a {head.height}-row frame")
    whole = frames_pb2.FrameBatch()
    whole.CopyFrom(head)
    whole.ClearField("tile_refs")
    whole.ClearField("tile_stream")
    whole.data = b"".join(parts)
    return whole


# -- decode -------------------------------------------------------------------------


def message_type(kind: str, header: str | None) -> type[Message]:
    """The proto class of a message on ``kind`` given its ``Pnt-Type`` header (or none)."""
    allowed = KIND_TYPES[kind]
    if not header:
        return allowed[0]
    cls = MESSAGE_TYPES.get(header)
    if cls is None:
        raise InvalidInput(f"unknown message type {header!r}")
    if cls not in allowed:
        raise InvalidInput(f"message type {header} is not allowed on {kind!r}")
    return cls


def decode(cls: type[Message], payload: bytes) -> Message:
    """Parse ``payload`` as ``cls``; InvalidInput (not DecodeError) when malformed."""
    msg = cls()
    try:
        msg.ParseFromString(payload)
    except (DecodeError, ValueError) as e:
        raise InvalidInput(f"cannot decode {type_name(cls)}: {e}") from None
    return msg


def validate(msg: Message, run_id: str) -> LocalizationTable | np.ndarray | None:
    """Check a decoded message against its subject's run; InvalidInput names what is wrong.

    Returns the data it decoded on the way, to keep: the table of a LocalizationBatch,
    the frames array of a whole FrameBatch.
    """
    msg_run = getattr(msg, "run_id", None)
    if msg_run is not None and msg_run != run_id:
        raise InvalidInput(f"message run_id {msg_run!r} does not match subject run {run_id!r}")
    if isinstance(msg, table_pb2.LocalizationBatch):
        return table_from_batch(msg)
    if isinstance(msg, particles_pb2.ParticleSet):
        particles_from_proto(msg)
    elif isinstance(msg, frames_pb2.FrameBatch):
        if msg.tile_refs:
            if not msg.tile_stream:
                raise InvalidInput("tile head without tile_stream")
            numpy_dtype(msg.dtype)
        else:
            return frames_from_proto(msg)
    elif isinstance(msg, run_pb2.Event) and msg.kind == run_pb2.Event.KIND_UNSPECIFIED:
        raise InvalidInput("Event kind is unspecified")
    return None


# -- parts and completeness ---------------------------------------------------------

PartPath = tuple[int, ...]


def format_path(path: PartPath) -> str:
    return ".".join(str(p) for p in path)


def parse_path(text: str | None) -> PartPath | None:
    """A ``Pnt-Part`` header value ("1.0") as a tuple, None when absent or bad."""
    if not text:
        return None
    try:
        path = tuple(int(p) for p in text.split("."))
    except ValueError:
        return None
    return path if all(p >= 0 for p in path) else None


def parts_complete(leaves: Mapping[PartPath, PartPath]) -> bool:
    """Whether the leaves ``{part path: part counts}`` of one seq cover every part.

    Paths are hierarchical: an output derived from input part (1 of 2) and split in 3
    has path (1, j) and counts (2, 3); complete means all (i, j) for every i.
    """
    if not leaves:
        return False
    return _covered(list(leaves.items()), 0)


def _covered(leaves: list[tuple[PartPath, PartPath]], level: int) -> bool:
    count = leaves[0][1][level]
    children: dict[int, list[tuple[PartPath, PartPath]]] = {}
    for path, counts in leaves:
        if len(path) <= level or len(counts) != len(path) or counts[level] != count:
            return False
        children.setdefault(path[level], []).append((path, counts))
    if set(children) != set(range(count)):
        return False
    for items in children.values():
        if any(len(p) == level + 1 for p, _ in items):
            if len(items) != 1:
                return False
        elif not _covered(items, level + 1):
            return False
    return True
