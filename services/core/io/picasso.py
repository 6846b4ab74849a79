"""Picasso HDF5 localizations: ``/locs`` structured dataset plus a ``.yaml`` sidecar.

Picasso stores positions and widths in camera pixels and writes its metadata as a
multi-document YAML file next to the HDF5 file (``locs.hdf5`` → ``locs.yaml``); the
pixel size is the ``Pixelsize`` key (nm) of one of its documents, the last one that has
it winning, as in Picasso. Field mapping (read; write is the inverse):

===================  =================  ===========================================
Picasso field        our column         conversion
===================  =================  ===========================================
frame (u4)           frame              as is (Picasso counts from 0)
x, y (px)            x, y               × pixel size
z (nm)               z                  as is (Picasso keeps z in nm)
photons              photons            as is
bg                   background         as is (photons per pixel)
sx, sy (px)          sigma_x, sigma_y   × pixel size
lpx, lpy (px)        uncertainty        mean of the two × pixel size; written back as
                                        lpx = lpy (lossy when they differ)
group                cluster            by default; ``group="particle"`` or
                                        ``"label"`` picks another column, None keeps
                                        it as ``group``
===================  =================  ===========================================

Other numeric fields (``ellipticity``, ``net_gradient``, ``len``, ...) are kept under
their own names and written back as they are. Written positions are float32 pixels, so
a round trip through Picasso changes nm values by float32 rounding (~1e-7 relative).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import yaml

from pointillist.core.errors import FormatError, InvalidInput
from pointillist.core.io._common import (
    PathLike,
    atomic_path,
    build_table,
    existing_file,
    positive_length,
    require_rows,
)
from pointillist.core.table import COLUMNS, LocalizationTable

_PX_FIELDS = {"x": "x", "y": "y", "sx": "sigma_x", "sy": "sigma_y"}
_AS_IS_FIELDS = {"frame": "frame", "z": "z", "photons": "photons", "bg": "background"}
_GROUP_COLUMNS = ("cluster", "particle", "label")
_PICASSO_ORDER = ("frame", "x", "y", "z", "photons", "sx", "sy", "bg", "lpx", "lpy")
_H5_ERRORS = (OSError, KeyError, ValueError, TypeError, RuntimeError)


class _SidecarLoader(yaml.SafeLoader):
    """Safe YAML loader that reads Python-specific tags (numpy scalars ...) as plain data."""


def _plain(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_scalar(node)


_SidecarLoader.add_multi_constructor("", _plain)


def sidecar_path(path: PathLike) -> Path:
    """The YAML metadata file Picasso keeps next to ``path``."""
    return Path(path).with_suffix(".yaml")


def _check_group(group: str | None) -> None:
    if group is not None and group not in _GROUP_COLUMNS:
        raise InvalidInput(f"group must be one of {_GROUP_COLUMNS} or None, got {group!r}")


def _sidecar_pixel_size(path: Path) -> float:
    """``Pixelsize`` (nm) from the sidecar of ``path``: the last document that has it."""
    meta = sidecar_path(path)
    if not meta.is_file():
        raise FormatError(path, f"no metadata file {meta.name}: pass pixel_size_nm=")
    try:
        docs = list(yaml.load_all(meta.read_text(encoding="utf-8"), Loader=_SidecarLoader))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise FormatError(meta, f"unreadable YAML: {e}") from e
    for doc in reversed(docs):
        if isinstance(doc, dict) and "Pixelsize" in doc:
            value = doc["Pixelsize"]
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            if not ok or not math.isfinite(value) or value <= 0:
                raise FormatError(meta, f"Pixelsize must be a positive number, got {value!r}")
            return float(value)
    raise FormatError(meta, "no Pixelsize entry: pass pixel_size_nm=")


def _read_locs(path: Path) -> np.ndarray:
    """The ``/locs`` structured array, checked for layout."""
    try:
        with h5py.File(path, "r") as f:
            ds = f.get("locs")
            if not isinstance(ds, h5py.Dataset):
                raise FormatError(path, f"no /locs dataset (found: {sorted(f.keys())})")
            if ds.dtype.names is None or ds.ndim != 1:
                raise FormatError(path, f"/locs must be a 1-D table, got {ds.dtype} {ds.shape}")
            return ds[()]
    except FormatError:
        raise
    except _H5_ERRORS as e:
        raise FormatError(path, f"not a readable HDF5 file: {e}") from e


def read_picasso(
    path: PathLike, *, pixel_size_nm: float | None = None, group: str | None = "cluster"
) -> LocalizationTable:
    """Read Picasso localizations, converting pixels to nm (mapping: module docstring).

    ``pixel_size_nm`` (nm per pixel) overrides the sidecar, which is then not read;
    without it a missing sidecar or ``Pixelsize`` is a FormatError. ``group`` names the
    column Picasso's ``group`` field goes to.
    """
    _check_group(group)
    p = existing_file(path)
    px = positive_length(pixel_size_nm, "pixel_size_nm")
    locs = _read_locs(p)
    px = px if px is not None else _sidecar_pixel_size(p)
    columns: dict[str, np.ndarray] = {}
    sources: dict[str, str] = {}
    lp = [n for n in ("lpx", "lpy") if n in locs.dtype.names]
    for name in locs.dtype.names:
        field = locs[name]
        if field.ndim != 1 or field.dtype.kind not in "fiu":
            raise FormatError(p, f"not a numeric field ({locs.dtype[name]})", column=name)
        if name in lp:
            continue
        if name in _PX_FIELDS:
            target, values = _PX_FIELDS[name], field.astype(np.float64) * px
        elif name == "group" and group is not None:
            target, values = group, field
        elif name in _AS_IS_FIELDS:
            target, values = _AS_IS_FIELDS[name], field
        elif name in COLUMNS and name not in _GROUP_COLUMNS:
            raise FormatError(p, "a Picasso field named like one of our columns", column=name)
        else:
            target, values = name, field
        if target in columns:
            raise FormatError(p, f"fields {sources[target]!r} and {name!r} both give {target!r}")
        columns[target], sources[target] = values, name
    if lp:
        columns["uncertainty"] = np.mean([locs[n] for n in lp], axis=0, dtype=np.float64) * px
        sources["uncertainty"] = "/".join(lp)
    return build_table(p, columns, sources)


def _to_px(name: str, values_nm: np.ndarray, pixel_size_nm: float) -> np.ndarray:
    """float32 pixels; InvalidInput where a value does not fit."""
    with np.errstate(over="ignore"):
        values = (values_nm.astype(np.float64) / pixel_size_nm).astype(np.float32)
    if not np.all(np.isfinite(values)):
        raise InvalidInput(f"column {name!r} is too large for float32 pixels")
    return values


def write_picasso(
    table: LocalizationTable,
    path: PathLike,
    *,
    pixel_size_nm: float | None = None,
    group: str | None = "cluster",
) -> None:
    """Write Picasso HDF5 and its YAML sidecar, converting nm to pixels.

    ``pixel_size_nm`` (nm per pixel) is required. ``group`` names the column written as
    Picasso's ``group`` field (None: none is). The sidecar holds ``Pixelsize`` and the
    ``Frames``, ``Width`` and ``Height`` Picasso's renderer expects.
    """
    _check_group(group)
    px = positive_length(pixel_size_nm, "pixel_size_nm")
    if px is None:
        raise InvalidInput("write_picasso needs pixel_size_nm= (nm per pixel)")
    require_rows(table)
    if "frame" in table and table["frame"].min() < 0:
        raise InvalidInput("Picasso frames are unsigned: column 'frame' has negative values")
    fields: dict[str, np.ndarray] = {}

    def put(field: str, values: np.ndarray, name: str) -> None:
        if field in fields or (field == "group" and name != group):
            raise InvalidInput(f"column {name!r} clashes with the Picasso field {field!r}")
        fields[field] = values

    to_field = {v: k for k, v in {**_AS_IS_FIELDS, **_PX_FIELDS}.items()}
    for name, arr in table.items():
        if name in _PX_FIELDS.values():
            put(to_field[name], _to_px(name, arr, px), name)
        elif name == "frame":
            put("frame", arr.astype(np.uint32), name)
        elif name == "uncertainty":
            put("lpx", _to_px(name, arr, px), name)
            put("lpy", fields["lpx"], name)
        elif name == group:
            put("group", arr, name)
        else:
            put(to_field.get(name, name), arr, name)
    order = sorted(fields, key=lambda f: _PICASSO_ORDER.index(f) if f in _PICASSO_ORDER else 99)
    locs = np.empty(len(table), dtype=[(k, fields[k].dtype) for k in order])
    for k, v in fields.items():
        locs[k] = v
    info = {
        "Generated by": "Pointillist write_picasso",
        "Pixelsize": px,
        "Frames": int(fields["frame"].max()) + 1 if "frame" in fields else 1,
        "Width": max(math.ceil(float(fields["x"].max())), 1),
        "Height": max(math.ceil(float(fields["y"].max())), 1),
    }
    with atomic_path(path) as h5_tmp, atomic_path(sidecar_path(path)) as yaml_tmp:
        with h5py.File(h5_tmp, "w") as f:
            f.create_dataset("locs", data=locs)
        yaml_tmp.write_text(yaml.safe_dump_all([info], sort_keys=False), encoding="utf-8")
