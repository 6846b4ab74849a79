"""Localization table file formats: ThunderSTORM/plain CSV, Picasso HDF5, native Parquet.

>>> table = read_table("locs.csv")                        # doctest: +SKIP
>>> write_table(table, "locs.hdf5", pixel_size_nm=108.0)  # doctest: +SKIP

The format comes from ``format=`` (a key of ``FORMATS``) or the file extension. Every
problem with a file being read is a ``FormatError`` naming the file and, where one is at
fault, the column. Writers refuse tables they cannot write faithfully (``InvalidInput``)
and replace the target file only once it is complete.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pointillist.core.errors import FormatError, InvalidInput
from pointillist.core.io._common import PathLike
from pointillist.core.io.native import read_native, write_native
from pointillist.core.io.picasso import read_picasso, write_picasso
from pointillist.core.io.thunderstorm import read_csv_table, write_csv_table, write_thunderstorm
from pointillist.core.table import LocalizationTable

__all__ = [
    "FORMATS",
    "Format",
    "read_csv_table",
    "read_native",
    "read_picasso",
    "read_table",
    "write_csv_table",
    "write_native",
    "write_picasso",
    "write_table",
    "write_thunderstorm",
]


@dataclass(frozen=True)
class Format:
    """A file format: its name, the extensions that select it, its reader and writer."""

    name: str
    extensions: tuple[str, ...]
    read: Callable[..., LocalizationTable]
    write: Callable[..., None]
    description: str


#: The formats by name. ``.csv`` reads both ThunderSTORM and plain CSV (told apart by
#: the headers) and writes ThunderSTORM; ``format="csv"`` writes plain CSV.
FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format(
            "thunderstorm",
            (".csv",),
            read_csv_table,
            write_thunderstorm,
            "ThunderSTORM CSV (nm); reads plain x,y,... CSV too",
        ),
        Format("csv", (), read_csv_table, write_csv_table, "plain CSV, our column names, nm"),
        Format(
            "picasso",
            (".hdf5", ".h5"),
            read_picasso,
            write_picasso,
            "Picasso HDF5 /locs + YAML sidecar (pixels)",
        ),
        Format("native", (".parquet", ".pq"), read_native, write_native, "Pointillist Parquet"),
    )
}


def _format(path: Path, format: str | None) -> Format:
    if format is not None:
        if format not in FORMATS:
            raise FormatError(path, f"unknown format {format!r}; known: {sorted(FORMATS)}")
        return FORMATS[format]
    suffix = path.suffix.lower()
    for f in FORMATS.values():
        if suffix in f.extensions:
            return f
    known = ", ".join(f"{e} ({f.name})" for f in FORMATS.values() for e in f.extensions)
    raise FormatError(
        path,
        f"unknown extension {suffix!r}; supported: {known}, or pass format= one of "
        f"{sorted(FORMATS)}",
    )


def _check_options(fmt: Format, func: Callable[..., Any], options: dict[str, Any]) -> None:
    params = inspect.signature(func).parameters
    takes = [n for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY]
    unknown = sorted(set(options) - set(takes))
    if unknown:
        raise InvalidInput(f"format {fmt.name!r} takes options {takes}, not {unknown}")


def read_table(path: PathLike, format: str | None = None, **options: Any) -> LocalizationTable:
    """Read a localization table; ``options`` go to the format's reader."""
    fmt = _format(Path(path), format)
    _check_options(fmt, fmt.read, options)
    return fmt.read(path, **options)


def write_table(
    table: LocalizationTable, path: PathLike, format: str | None = None, **options: Any
) -> None:
    """Write a localization table; ``options`` go to the format's writer."""
    fmt = _format(Path(path), format)
    _check_options(fmt, fmt.write, options)
    fmt.write(table, path, **options)
