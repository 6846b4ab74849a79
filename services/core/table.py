"""LocalizationTable: the in-memory localization table, a dict of typed numpy columns.

Coordinates are nm, intensities photons. Conversions to and from the wire message
(`LocalizationBatch`) go through the raw column buffers, never a per-element loop.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from pointillist.core.errors import InvalidInput
from pointillist.v1 import table_pb2


@dataclass(frozen=True)
class ColumnSpec:
    """A known column: storage dtype and unit."""

    dtype: np.dtype
    unit: str
    doc: str


F32 = np.dtype("<f4")
I32 = np.dtype("<i4")

#: The columns Pointillist knows (DESIGN.md section 3). Others are allowed and kept as given.
COLUMNS: dict[str, ColumnSpec] = {
    "x": ColumnSpec(F32, "nm", "lateral position"),
    "y": ColumnSpec(F32, "nm", "lateral position"),
    "z": ColumnSpec(F32, "nm", "axial position"),
    "photons": ColumnSpec(F32, "photons", "detected photons of the localization"),
    "background": ColumnSpec(F32, "photons", "background photons per pixel"),
    "sigma_x": ColumnSpec(F32, "nm", "PSF width along x"),
    "sigma_y": ColumnSpec(F32, "nm", "PSF width along y"),
    "uncertainty": ColumnSpec(F32, "nm", "lateral localization uncertainty"),
    "frame": ColumnSpec(I32, "", "camera frame index"),
    "cluster": ColumnSpec(I32, "", "cluster id, -1 = not clustered"),
    "particle": ColumnSpec(I32, "", "particle id"),
    "label": ColumnSpec(I32, "", "ground-truth or class label"),
}
REQUIRED = ("x", "y")

_PROTO_DTYPES: dict[np.dtype, int] = {
    np.dtype("<f4"): table_pb2.DTYPE_FLOAT32,
    np.dtype("<f8"): table_pb2.DTYPE_FLOAT64,
    np.dtype("<i4"): table_pb2.DTYPE_INT32,
    np.dtype("<i8"): table_pb2.DTYPE_INT64,
    np.dtype("<u2"): table_pb2.DTYPE_UINT16,
    np.dtype("u1"): table_pb2.DTYPE_UINT8,
}
_NUMPY_DTYPES = {v: k for k, v in _PROTO_DTYPES.items()}


def numpy_dtype(proto_dtype: int) -> np.dtype:
    """numpy dtype of a proto DType enum value."""
    try:
        return _NUMPY_DTYPES[proto_dtype]
    except KeyError:
        raise InvalidInput(f"unsupported column dtype enum {proto_dtype}") from None


def proto_dtype(dtype: np.dtype) -> int:
    """proto DType enum value of a numpy dtype (little-endian)."""
    dt = np.dtype(dtype).newbyteorder("<") if np.dtype(dtype).byteorder == ">" else np.dtype(dtype)
    try:
        return _PROTO_DTYPES[dt]
    except KeyError:
        raise InvalidInput(f"unsupported column dtype {dtype}") from None


class LocalizationTable(Mapping[str, np.ndarray]):
    """Columns of equal length; known columns are cast to their storage dtype.

    >>> t = LocalizationTable({"x": [1.0, 2.0], "y": [3.0, 4.0]})
    >>> len(t), t["x"].dtype
    (2, dtype('float32'))
    """

    __slots__ = ("_columns",)

    def __init__(self, columns: Mapping[str, Iterable] | None = None, *, check_finite: bool = True):
        cols: dict[str, np.ndarray] = {}
        n: int | None = None
        for name, values in (columns or {}).items():
            spec = COLUMNS.get(name)
            arr = np.asarray(values)
            if arr.ndim != 1:
                raise InvalidInput(f"column {name!r} must be 1-D, got shape {arr.shape}")
            if arr.dtype.kind not in "fiub":
                raise InvalidInput(f"column {name!r} has non-numeric dtype {arr.dtype}")
            if spec is not None and arr.dtype != spec.dtype:
                if (
                    spec.dtype.kind == "i"
                    and arr.dtype.kind == "f"
                    and (not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)))
                ):
                    raise InvalidInput(f"column {name!r} must hold integers")
                arr = arr.astype(spec.dtype)
            if n is not None and len(arr) != n:
                raise InvalidInput(f"column {name!r} has {len(arr)} rows, expected {n}")
            n = len(arr)
            cols[name] = arr
        if cols:
            missing = [c for c in REQUIRED if c not in cols]
            if missing:
                raise InvalidInput(f"missing required column(s) {missing}")
        if check_finite:
            for name, arr in cols.items():
                if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
                    bad = int(np.count_nonzero(~np.isfinite(arr)))
                    raise InvalidInput(f"column {name!r} has {bad} non-finite value(s)")
        self._columns = cols

    def __getitem__(self, name: str) -> np.ndarray:
        return self._columns[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._columns)

    def __len__(self) -> int:
        return len(next(iter(self._columns.values()))) if self._columns else 0

    def __repr__(self) -> str:
        return f"LocalizationTable({len(self)} rows, columns={list(self._columns)})"

    @property
    def columns(self) -> list[str]:
        return list(self._columns)

    def with_columns(self, **new: Iterable) -> LocalizationTable:
        """A copy with columns added or replaced."""
        return LocalizationTable({**self._columns, **new})

    def select(self, rows: np.ndarray | slice) -> LocalizationTable:
        """Rows by mask, index array or slice."""
        return LocalizationTable({k: v[rows] for k, v in self._columns.items()}, check_finite=False)

    @staticmethod
    def concat(tables: Iterable[LocalizationTable]) -> LocalizationTable:
        tables = [t for t in tables if len(t.columns)]
        if not tables:
            return LocalizationTable()
        names = tables[0].columns
        for t in tables[1:]:
            if t.columns != names:
                raise InvalidInput(f"cannot concatenate columns {names} and {t.columns}")
        return LocalizationTable(
            {k: np.concatenate([t[k] for t in tables]) for k in names}, check_finite=False
        )

    def to_proto(self, run_id: str = "", seq: int = 0, **fields) -> table_pb2.LocalizationBatch:
        """The wire message; each column is one little-endian buffer."""
        msg = table_pb2.LocalizationBatch(run_id=run_id, seq=seq, n_rows=len(self), **fields)
        msg.part_count = msg.part_count or 1
        for name, arr in self._columns.items():
            spec = COLUMNS.get(name)
            msg.columns.add(
                name=name,
                dtype=proto_dtype(arr.dtype),
                data=np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")).tobytes(),
                unit=spec.unit if spec else "",
            )
        return msg

    @classmethod
    def from_proto(cls, msg: table_pb2.LocalizationBatch) -> LocalizationTable:
        """Decode a LocalizationBatch; raises InvalidInput on inconsistent columns."""
        cols: dict[str, np.ndarray] = {}
        for col in msg.columns:
            dt = numpy_dtype(col.dtype)
            if len(col.data) != msg.n_rows * dt.itemsize:
                raise InvalidInput(
                    f"column {col.name!r}: {len(col.data)} bytes for {msg.n_rows} rows of {dt}"
                )
            if col.name in cols:
                raise InvalidInput(f"duplicate column {col.name!r}")
            cols[col.name] = np.frombuffer(col.data, dtype=dt)
        return cls(cols)

    def split_rows(self, max_rows: int) -> list[LocalizationTable]:
        """Consecutive row chunks of at most ``max_rows`` rows (at least one chunk)."""
        if max_rows < 1:
            raise InvalidInput("max_rows must be >= 1")
        n = len(self)
        if n <= max_rows:
            return [self]
        return [self.select(slice(i, i + max_rows)) for i in range(0, n, max_rows)]
