"""ThunderSTORM CSV and plain CSV localization tables.

``read_csv_table`` reads ThunderSTORM's quoted ``"name [unit]"`` headers and plain
headers (``x,y,z,frame,...``, ``x_nm,y_nm``) alike; each header is matched on its own,
case-insensitively:

=========================  ===================  ==========================================
file header                our column           note
=========================  ===================  ==========================================
x, y, z                    x, y, z              ``[nm]``, ``[um]``, ``[px]`` or ``_nm``,
                                                ``_um``, ``_px`` suffix; no unit = nm;
                                                px needs ``pixel_size_nm``
sigma1, sigma2             sigma_x, sigma_y     lengths as above
sigma                      sigma_x and sigma_y  only where sigma1/sigma2 are absent
intensity [photon]         photons
offset [photon]            background           ThunderSTORM's fitted background level
                                                per pixel; ``bkgstd`` (its noise) is
                                                *not* the background and stays an extra
uncertainty_xy             uncertainty          preferred over ``uncertainty``
uncertainty                uncertainty
frame                      frame                kept as written (ThunderSTORM counts
                                                from 1, Picasso from 0)
photons, background, sigma_x, sigma_y, cluster, particle, label: as named
=========================  ===================  ==========================================

Any other column (ThunderSTORM's ``id``, ``chi2``, ``bkgstd``, ``uncertainty_z``,
``detections``; the Nieves benchmark's ``index``) is kept as a float64 column named by
its header without the unit, lower-cased, other characters replaced by ``_``
(``"bkgstd [photon]"`` → ``bkgstd``); its unit is not converted. Where a preferred
alternative exists (``sigma1``/``sigma2`` over ``sigma``, ``uncertainty_xy`` over
``uncertainty``), the other header is dropped; any other two headers that give the same
column are an error. ``columns={"index": "label", "id": None}`` maps (values taken in our
units unless the header carries a ``[unit]``) or drops headers explicitly; a mapped
header wins over one that gives the same column by its name.

Strict by design: a row with too few or too many cells, an empty, NaN, infinite or
non-numeric cell in a kept column, a non-integer frame, or a file that does not end with
a newline (its last row may have been cut) is a ``FormatError``; nothing is dropped
silently. A UTF-8 BOM, quoted or unquoted headers, quoted numbers, blank lines and
``\\r\\n`` line endings are accepted. Cells are comma-separated.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pv

from pointillist.core.errors import FormatError, InvalidInput
from pointillist.core.io._common import (
    PathLike,
    atomic_path,
    build_table,
    positive_length,
    read_bytes,
    require_rows,
)
from pointillist.core.table import COLUMNS, LocalizationTable

_LENGTH_COLUMNS = frozenset({"x", "y", "z", "sigma_x", "sigma_y", "uncertainty"})
_PHOTON_COLUMNS = frozenset({"photons", "background"})
_NM_PER_UNIT = {"nm": 1.0, "um": 1000.0, "µm": 1000.0, "μm": 1000.0, "micron": 1000.0}
_PIXEL_UNITS = frozenset({"px", "pixel", "pixels"})
_PHOTON_UNITS = frozenset({"photon", "photons"})

#: Lower-cased header name (without unit) → (our columns, priority). Higher priority wins.
_ALIASES: dict[str, tuple[tuple[str, ...], int]] = {
    **{name: ((name,), 1) for name in COLUMNS},
    "intensity": (("photons",), 1),
    "offset": (("background",), 1),
    "sigma1": (("sigma_x",), 1),
    "sigma2": (("sigma_y",), 1),
    "sigma": (("sigma_x", "sigma_y"), 0),
    "uncertainty_xy": (("uncertainty",), 1),
    "uncertainty": (("uncertainty",), 0),
}
_EXPLICIT = 2  # priority of a header named in ``columns=``
_UNIT_RE = re.compile(r"(?P<base>.*?)\s*\[(?P<unit>[^\[\]]*)\]")
_SUFFIX_RE = re.compile(r"(?P<base>.+)_(?P<unit>nm|um|µm|μm|px)")
_ARROW_COLUMN_RE = re.compile(r"CSV column #(\d+)")
_NON_SPACE_RE = re.compile(rb"\S")

#: ThunderSTORM's units for the extra columns it writes (the others are unitless).
_THUNDERSTORM_UNITS = {"bkgstd": "photon", "uncertainty_z": "nm"}


@dataclass(frozen=True)
class _Source:
    """One header field that feeds one or more of our columns."""

    index: int
    header: str
    targets: tuple[str, ...]
    priority: int
    scale: float  # multiply the file's values by this to get our unit


def _sanitize(name: str) -> str:
    return re.sub(r"[^0-9a-z_]+", "_", name.lower()).strip("_")


def _lookup(base: str) -> tuple[tuple[str, ...], int, str | None] | None:
    """Our column(s), priority and suffix unit of a known header name without ``[unit]``."""
    key = base.lower()
    if key in _ALIASES:
        return (*_ALIASES[key], None)
    m = _SUFFIX_RE.fullmatch(key)
    if m and m["base"] in _ALIASES and _ALIASES[m["base"]][0][0] in _LENGTH_COLUMNS:
        return (*_ALIASES[m["base"]], m["unit"])
    return None


def _scale(
    path: Path, header: str, target: str, unit: str | None, pixel_size_nm: float | None
) -> float:
    """Factor from the header's unit to ours; FormatError for a unit that does not fit."""
    u = None if unit is None else unit.strip().lower()
    if target in _LENGTH_COLUMNS:
        if not u:
            return 1.0
        if u in _NM_PER_UNIT:
            return _NM_PER_UNIT[u]
        if u in _PIXEL_UNITS:
            if pixel_size_nm is None:
                raise FormatError(path, "pixel units need pixel_size_nm= (nm per pixel)", header)
            return pixel_size_nm
        raise FormatError(path, f"unit [{unit}] is not a length (nm, um or px)", header)
    if target in _PHOTON_COLUMNS:
        if u and u not in _PHOTON_UNITS:
            raise FormatError(path, f"unit [{unit}] is not photons", header)
    elif target in COLUMNS and u:
        raise FormatError(path, f"unit [{unit}] where a plain number is expected", header)
    return 1.0


def _resolve(
    path: Path,
    header: list[str],
    columns: Mapping[str, str | None],
    pixel_size_nm: float | None,
) -> dict[str, _Source]:
    """Our column name → the header field that provides it."""
    missing = [name for name in columns if name not in header]
    if missing:
        raise FormatError(path, f"columns= names {missing} are not in the header {header}")
    sources: list[_Source] = []
    for i, h in enumerate(header):
        m = _UNIT_RE.fullmatch(h)
        base, unit = (m["base"], m["unit"]) if m else (h, None)
        if h in columns:
            target = columns[h]
            if target is None:
                continue
            targets, priority = (target,), _EXPLICIT
        else:
            if not h:
                hint = "drop it with columns={'': None}"
                raise FormatError(path, f"header field {i + 1} has no name ({hint})")
            known = _lookup(base)
            if known is None:
                name = _sanitize(base)
                if not name or name in _ALIASES:
                    raise FormatError(path, "unusable or ambiguous name: map it with columns=", h)
                known = (name,), 1, None
            targets, priority, suffix_unit = known
            unit = unit if unit is not None else suffix_unit
        scale = _scale(path, h, targets[0], unit, pixel_size_nm)
        sources.append(_Source(i, h, targets, priority, scale))
    by_target: dict[str, list[_Source]] = {}
    for s in sources:
        for t in s.targets:
            by_target.setdefault(t, []).append(s)
    chosen: dict[str, _Source] = {}
    for target, candidates in by_target.items():
        top = max(s.priority for s in candidates)
        best = [s for s in candidates if s.priority == top]
        if len(best) > 1:
            raise FormatError(
                path,
                f"headers {best[0].header!r} and {best[1].header!r} both give column {target!r}",
                best[1].header,
            )
        chosen[target] = best[0]
    return chosen


def _header(path: Path, data: bytes) -> tuple[list[str], int]:
    """The header fields (quotes and outer spaces stripped) and where the header ends."""
    start = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    if _NON_SPACE_RE.search(data, start) is None:
        raise FormatError(path, "empty file")
    ends = [i for i in (data.find(b"\n", start), data.find(b"\r", start)) if i >= 0]
    end = min(ends, default=len(data))
    try:
        line = data[start:end].decode("utf-8")
        fields = next(csv.reader([line], strict=True))
    except (UnicodeDecodeError, csv.Error, StopIteration) as e:
        raise FormatError(path, f"unreadable header line: {e}") from e
    if len(fields) == 1 and ("\t" in line or ";" in line):
        raise FormatError(path, f"header {line!r} has one field: cells must be comma-separated")
    return [_unquote(f.strip()) for f in fields], end


def _unquote(field: str) -> str:
    """Strip quotes that spaces kept the csv module from seeing (`` "x" ,``)."""
    return field[1:-1].strip() if len(field) > 1 and field[0] == field[-1] == '"' else field


def _arrow_error(path: Path, header: list[str], e: Exception) -> FormatError:
    msg = str(e).strip()
    m = _ARROW_COLUMN_RE.search(msg)
    column = header[int(m[1])] if m and int(m[1]) < len(header) else None
    msg = msg.split(": ", 1)[1] if column is not None and ": " in msg else msg
    return FormatError(path, msg[:300], column)


def read_csv_table(
    path: PathLike,
    *,
    columns: Mapping[str, str | None] | None = None,
    pixel_size_nm: float | None = None,
) -> LocalizationTable:
    """Read a ThunderSTORM or plain CSV file (header names and units: module docstring).

    ``columns`` maps header names (as written, without quotes) to our column names, or
    to None to drop them. ``pixel_size_nm`` (nm per pixel) is needed only for
    ``[px]``/``_px`` headers. Raises FormatError naming the file and the column.
    """
    p = Path(path)
    pixel_size_nm = positive_length(pixel_size_nm, "pixel_size_nm")
    data = read_bytes(p)
    header, end = _header(p, data)
    chosen = _resolve(p, header, columns or {}, pixel_size_nm)
    if _NON_SPACE_RE.search(data, end) is None:
        raise FormatError(p, "header only: the file holds no localizations")
    if data[-1:] not in (b"\n", b"\r"):
        raise FormatError(p, "the last line has no line ending: the file may be truncated")
    names = [f"c{i}" for i in range(len(header))]
    used = sorted({s.index for s in chosen.values()})
    try:
        parsed = pv.read_csv(
            pa.BufferReader(data),
            read_options=pv.ReadOptions(skip_rows=1, column_names=names),
            convert_options=pv.ConvertOptions(
                column_types={names[i]: pa.float64() for i in used},
                include_columns=[names[i] for i in used],
                strings_can_be_null=False,
            ),
        )
    except (pa.ArrowException, ValueError) as e:
        raise _arrow_error(p, header, e) from e
    values: dict[str, np.ndarray] = {}
    for target, s in chosen.items():
        col = parsed[names[s.index]]
        if col.null_count:
            row = pc.index(pc.is_null(col), True).as_py()
            raise FormatError(p, f"missing value at row {row + 1}", s.header)
        arr = col.to_numpy()
        values[target] = arr * s.scale if s.scale != 1.0 else arr
    return build_table(p, values, {t: s.header for t, s in chosen.items()})


def _write(table: LocalizationTable, path: PathLike, headers: dict[str, str]) -> None:
    """Write ``headers`` (header → our column) after checking each reads back as itself."""
    require_rows(table)
    try:
        chosen = _resolve(Path(path), list(headers), {}, None)
    except FormatError as e:
        raise InvalidInput(f"columns {table.columns} cannot be written as CSV: {e}") from e
    for name in table.columns:
        source = chosen.get(name)
        if source is None or not np.array_equal(table[headers[source.header]], table[name]):
            raise InvalidInput(f"column {name!r} would not read back under its name; rename it")
    out = pa.table({h: table[name] for h, name in headers.items()})
    with atomic_path(path) as tmp:
        pv.write_csv(out, str(tmp), pv.WriteOptions(eol="\n"))


def write_thunderstorm(table: LocalizationTable, path: PathLike) -> None:
    """Write ThunderSTORM CSV: quoted ``"name [unit]"`` headers, nm and photons.

    An ``id`` column is written from the table's ``id`` column or numbered from 1;
    equal sigma_x and sigma_y become ``sigma [nm]``, unequal ones ``sigma1/sigma2 [nm]``;
    uncertainty is ``uncertainty_xy [nm]`` when z is present (as ThunderSTORM writes it),
    else ``uncertainty [nm]``. Other columns keep their names.
    """
    headers: dict[str, str] = {}
    if "id" not in table:
        table = table.with_columns(id=np.arange(1, len(table) + 1, dtype=np.int64))
    headers["id"] = "id"
    if "frame" in table:
        headers["frame"] = "frame"
    for c in ("x", "y", "z"):
        if c in table:
            headers[f"{c} [nm]"] = c
    sx, sy = table.get("sigma_x"), table.get("sigma_y")
    if sx is not None and sy is not None and np.array_equal(sx, sy):
        headers["sigma [nm]"] = "sigma_x"
    else:
        if sx is not None:
            headers["sigma1 [nm]"] = "sigma_x"
        if sy is not None:
            headers["sigma2 [nm]"] = "sigma_y"
    if "photons" in table:
        headers["intensity [photon]"] = "photons"
    if "background" in table:
        headers["offset [photon]"] = "background"
    if "uncertainty" in table:
        headers["uncertainty_xy [nm]" if "z" in table else "uncertainty [nm]"] = "uncertainty"
    done = {*headers.values(), "sigma_y"} if "sigma [nm]" in headers else set(headers.values())
    for c in table.columns:
        if c not in done:
            unit = _THUNDERSTORM_UNITS.get(c)
            headers[f"{c} [{unit}]" if unit else c] = c
    _write(table, path, headers)


def write_csv_table(table: LocalizationTable, path: PathLike) -> None:
    """Write a plain CSV whose headers are our column names (lengths in nm)."""
    _write(table, path, {c: c for c in table.columns})
