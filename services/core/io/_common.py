"""Shared by the format modules: file checks, column validation and atomic writes."""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from pointillist.core.errors import FormatError, InvalidInput
from pointillist.core.table import COLUMNS, REQUIRED, LocalizationTable

PathLike = str | os.PathLike[str]

_F32, _F64 = np.dtype("<f4"), np.dtype("<f8")
_I32, _I64 = np.dtype("<i4"), np.dtype("<i8")


def existing_file(path: PathLike) -> Path:
    """``path`` as a Path; FormatError unless it is an existing regular file."""
    p = Path(path)
    if not p.exists():
        raise FormatError(p, "no such file")
    if not p.is_file():
        raise FormatError(p, "not a regular file")
    return p


def read_bytes(path: PathLike) -> bytes:
    """The whole file; FormatError if it is missing or unreadable."""
    p = existing_file(path)
    try:
        return p.read_bytes()
    except OSError as e:
        raise FormatError(p, f"cannot read the file: {e.strerror or e}") from e


def positive_length(value: float | None, name: str) -> float | None:
    """Check an optional length option (nm) is a finite positive number."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput(f"{name} must be a finite number, got {value!r}")
    if value <= 0:
        raise InvalidInput(f"{name} must be positive, got {value!r}")
    return float(value)


def _first_bad(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _storage_dtype(name: str, arr: np.ndarray) -> np.dtype:
    """Known columns: their dtype; others: the nearest dtype the wire format carries."""
    spec = COLUMNS.get(name)
    if spec is not None:
        return spec.dtype
    if arr.dtype.kind == "f":
        return _F32 if arr.dtype == _F32 else _F64
    return _I32 if arr.dtype == _I32 else _I64


def _column(path: Path, name: str, src: str, arr: np.ndarray) -> np.ndarray:
    """One parsed column cast to its storage dtype, or FormatError naming ``src``."""
    if arr.ndim != 1 or arr.dtype.kind not in "fiu":
        raise FormatError(path, f"not a numeric column (dtype {arr.dtype})", column=src)
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr)
        if bad.any():
            i = _first_bad(bad)
            raise FormatError(path, f"missing or non-finite value {arr[i]} at row {i + 1}", src)
    target = _storage_dtype(name, arr)
    if target.kind == "i":
        if arr.dtype.kind == "f":
            bad = arr != np.round(arr)
            if bad.any():
                i = _first_bad(bad)
                raise FormatError(path, f"non-integer value {arr[i]} at row {i + 1}", src)
        info = np.iinfo(target)
        bad = (arr < info.min) | (arr > info.max)
        if bad.any():
            i = _first_bad(bad)
            raise FormatError(path, f"value {arr[i]} at row {i + 1} is out of {target} range", src)
        return arr.astype(target)
    with np.errstate(over="ignore"):
        out = arr.astype(target)
    bad = ~np.isfinite(out)
    if bad.any():
        i = _first_bad(bad)
        raise FormatError(path, f"value {arr[i]} at row {i + 1} is too large for {target}", src)
    return out


def build_table(
    path: Path, columns: Mapping[str, np.ndarray], sources: Mapping[str, str]
) -> LocalizationTable:
    """Validate parsed columns (our names → arrays) and build the table.

    ``sources`` maps our column names to the names in the file, for error messages.
    Known columns get their storage dtype; other columns become float32/float64 or
    int32/int64 (the dtypes the wire format carries). Every value must be finite, integer
    columns must hold integers in range, and the table must have rows.
    """
    for name in REQUIRED:
        if name not in columns:
            found = ", ".join(repr(sources.get(n, n)) for n in columns) or "none"
            raise FormatError(path, f"missing required column {name!r} (found: {found})", name)
    if len(columns[REQUIRED[0]]) == 0:
        raise FormatError(path, "the file holds no localizations (no data rows)")
    out = {name: _column(path, name, sources.get(name, name), arr) for name, arr in columns.items()}
    try:
        return LocalizationTable(out, check_finite=False)
    except InvalidInput as e:
        raise FormatError(path, str(e)) from e


def require_rows(table: LocalizationTable) -> None:
    """Writers refuse empty tables, which no reader accepts back."""
    if len(table) == 0:
        raise InvalidInput("cannot write a table with no rows")


@contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """A temporary path next to ``path``; renamed onto it only if the block succeeds."""
    final = Path(path)
    tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
