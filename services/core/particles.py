"""Particles: one point cloud (nm) per picked particle, the input of the PC-VAE and HOLLy.

A localization table with a `particle` column is split into one (n_i, dims) array per
particle. Particles the network cannot use — fewer than 3 localizations, or any
non-finite coordinate — are skipped and reported (`Skipped`), never a reason to fail
the whole run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pointillist.core.errors import InvalidInput
from pointillist.core.table import LocalizationTable

MIN_LOCALIZATIONS = 3
"""Particles with fewer localizations than this are skipped."""


@dataclass(frozen=True)
class Particles:
    """Point clouds in nm: points[i] is an (n_i, dims) float64 array; ids the particle ids."""

    points: list[np.ndarray]
    ids: np.ndarray
    dims: int

    def __len__(self) -> int:
        return len(self.points)

    @property
    def counts(self) -> np.ndarray:
        """Localizations per particle (int64)."""
        return np.array([len(p) for p in self.points], dtype=np.int64)


@dataclass(frozen=True)
class Skipped:
    """A particle left out of the analysis, and why."""

    particle: int
    reason: str


def _coordinate_columns(table: LocalizationTable, dims: int | None) -> list[str]:
    if dims is None:
        dims = 3 if "z" in table else 2
    if dims not in (2, 3):
        raise InvalidInput(f"dims must be 2 or 3, got {dims}")
    if dims == 3 and "z" not in table:
        raise InvalidInput("dims=3 needs a 'z' column")
    return ["x", "y", "z"][:dims]


def particles_from_table(
    table: LocalizationTable, dims: int | None = None
) -> tuple[Particles, list[Skipped]]:
    """Group `table` by its `particle` column into point clouds (x, y and, for 3D, z; nm).

    dims None means 3 when the table has z, else 2. Particles with < 3 localizations
    or non-finite coordinates are skipped and listed. Raises InvalidInput without a
    `particle` column or when no particle is left.
    """
    if "particle" not in table:
        raise InvalidInput("the localization table has no 'particle' column")
    names = _coordinate_columns(table, dims)
    coords = np.column_stack([np.asarray(table[c], dtype=np.float64) for c in names])
    labels = np.asarray(table["particle"], dtype=np.int64)
    order = np.argsort(labels, kind="stable")
    ids, starts, counts = np.unique(labels[order], return_index=True, return_counts=True)
    points: list[np.ndarray] = []
    kept: list[int] = []
    skipped: list[Skipped] = []
    for pid, start, count in zip(ids, starts, counts, strict=True):
        cloud = coords[order[start : start + count]]
        if count < MIN_LOCALIZATIONS:
            skipped.append(Skipped(int(pid), f"{count} localizations (< {MIN_LOCALIZATIONS})"))
        elif not np.all(np.isfinite(cloud)):
            skipped.append(Skipped(int(pid), "non-finite coordinates"))
        else:
            points.append(cloud)
            kept.append(int(pid))
    if not points:
        raise InvalidInput(f"no usable particle: all {len(ids)} were skipped")
    return Particles(points, np.array(kept, dtype=np.int64), len(names)), skipped


def particles_from_arrays(
    points: Sequence[np.ndarray], ids: Sequence[int] | None = None
) -> Particles:
    """Particles from (n_i, dims) arrays in nm; ids default to 0..n-1.

    Unlike `particles_from_table` nothing is skipped: arrays with the wrong shape, fewer
    than 3 points or non-finite values raise InvalidInput.
    """
    clouds = [np.asarray(p, dtype=np.float64) for p in points]
    if not clouds:
        raise InvalidInput("no particles given")
    dims = clouds[0].shape[1] if clouds[0].ndim == 2 else 0
    if dims not in (2, 3):
        raise InvalidInput(f"particles must be (n, 2) or (n, 3) arrays, got {clouds[0].shape}")
    for i, cloud in enumerate(clouds):
        if cloud.ndim != 2 or cloud.shape[1] != dims:
            raise InvalidInput(f"particle {i} has shape {cloud.shape}, expected (n, {dims})")
        if len(cloud) < MIN_LOCALIZATIONS:
            raise InvalidInput(f"particle {i} has {len(cloud)} points (< {MIN_LOCALIZATIONS})")
        if not np.all(np.isfinite(cloud)):
            raise InvalidInput(f"particle {i} has non-finite coordinates")
    ids_array = np.arange(len(clouds), dtype=np.int64) if ids is None else np.asarray(ids)
    if ids_array.shape != (len(clouds),):
        raise InvalidInput(f"{len(clouds)} particles but ids of shape {ids_array.shape}")
    return Particles(clouds, ids_array.astype(np.int64), dims)


def describe_skipped(skipped: Sequence[Skipped], limit: int = 10) -> str:
    """'skipped N particle(s): id: reason; ...' naming the first `limit`; '' for none."""
    if not skipped:
        return ""
    named = "; ".join(f"{s.particle}: {s.reason}" for s in skipped[:limit])
    more = f" (and {len(skipped) - limit} more)" if len(skipped) > limit else ""
    return f"skipped {len(skipped)} particle(s): {named}{more}"
