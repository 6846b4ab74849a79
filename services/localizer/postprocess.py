"""Post-processing of localization tables: merging of blinks and quality filters.

A fluorophore that stays on for several frames is localized once per frame; merging
links those localizations into one track and replaces it by one localization with the
summed photons and a weighted mean position (as ThunderSTORM's merging and Picasso's
link). Filters keep the rows whose photons, uncertainty and PSF width are plausible.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy.spatial import cKDTree

from pointillist.core.errors import InvalidInput
from pointillist.core.table import LocalizationTable

Weighting = Literal["photons", "uncertainty", "equal"]


def link_consecutive(
    table: LocalizationTable, max_distance_nm: float, max_gap_frames: int = 1
) -> np.ndarray:
    """Track id per row: rows of one molecule seen in nearby frames share an id.

    A localization in frame f joins a track whose last localization is in frame
    f − 1 − g (g ≤ ``max_gap_frames`` dark frames between) when each is the other's
    nearest within ``max_distance_nm`` of the track's mean position (mutual nearest
    neighbours, so one track takes at most one localization per frame). Two k-d trees
    per frame; ids run 0.. in order of the track's first frame.
    """
    if max_distance_nm <= 0:
        raise InvalidInput(f"max_distance_nm must be > 0, got {max_distance_nm}")
    if max_gap_frames < 0:
        raise InvalidInput(f"max_gap_frames must be >= 0, got {max_gap_frames}")
    if "frame" not in table:
        raise InvalidInput("linking needs a 'frame' column")
    n = len(table)
    track = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return track
    frame = np.asarray(table["frame"], dtype=np.int64)
    xy = np.column_stack([table["x"], table["y"]]).astype(np.float64)
    order = np.argsort(frame, kind="stable")
    frames, starts = np.unique(frame[order], return_index=True)
    # Track state, grown as tracks start: summed position, count, last frame.
    sum_xy = np.zeros((n, 2))
    count = np.zeros(n)
    last = np.zeros(n, dtype=np.int64)
    n_tracks = 0
    active = np.zeros(0, dtype=np.int64)
    for f, rows in zip(frames, np.split(order, starts[1:]), strict=True):
        active = active[last[active] >= f - 1 - max_gap_frames]
        joined = np.zeros(len(rows), dtype=bool)
        if len(active):
            here = xy[rows]
            centre = sum_xy[active] / count[active, None]
            _, loc_of_track = cKDTree(here).query(centre, distance_upper_bound=max_distance_nm)
            _, track_of_loc = cKDTree(centre).query(here, distance_upper_bound=max_distance_nm)
            k = np.flatnonzero(loc_of_track < len(rows))
            k = k[track_of_loc[loc_of_track[k]] == k]
            loc = loc_of_track[k]
            track[rows[loc]] = active[k]
            joined[loc] = True
        new = rows[~joined]
        track[new] = np.arange(n_tracks, n_tracks + len(new))
        n_tracks += len(new)
        active = np.concatenate([active, track[new]])
        t = track[rows]
        sum_xy[t] += xy[rows]
        count[t] += 1
        last[t] = f
    return track


def merge_consecutive(
    table: LocalizationTable,
    max_distance_nm: float,
    max_gap_frames: int = 1,
    weighting: Weighting = "photons",
) -> LocalizationTable:
    """One localization per track of :func:`link_consecutive`.

    Position (x, y, z) and PSF widths are weighted means (weights: photons, 1/uncertainty²
    or equal), photons are summed, background averaged, ``uncertainty`` the propagated
    error of the weighted mean sqrt(Σwᵢ²uᵢ²)/Σwᵢ, ``frame`` the first frame; other columns
    keep the earliest localization's value. Adds ``n_merged`` (localizations per track).
    Rows come out in order of first frame.
    """
    if weighting == "photons":
        if "photons" not in table:
            raise InvalidInput("photon weighting needs a 'photons' column")
        weight = np.asarray(table["photons"], dtype=np.float64)
        if np.any(weight <= 0):
            raise InvalidInput("photon weighting needs photons > 0")
    elif weighting == "uncertainty":
        if "uncertainty" not in table:
            raise InvalidInput("uncertainty weighting needs an 'uncertainty' column")
        u = np.asarray(table["uncertainty"], dtype=np.float64)
        if np.any(u <= 0):
            raise InvalidInput("uncertainty weighting needs uncertainty > 0")
        weight = 1.0 / u**2
    elif weighting == "equal":
        weight = np.ones(len(table))
    else:
        raise InvalidInput(f"unknown weighting {weighting!r}")
    track = link_consecutive(table, max_distance_nm, max_gap_frames)
    n_tracks = int(track.max()) + 1 if len(track) else 0
    total_w = np.bincount(track, weights=weight, minlength=n_tracks)
    n_merged = np.bincount(track, minlength=n_tracks)
    by_frame = np.argsort(table["frame"], kind="stable")
    first = by_frame[np.unique(track[by_frame], return_index=True)[1]]

    def wmean(values: np.ndarray) -> np.ndarray:
        return np.bincount(track, weights=weight * values, minlength=n_tracks) / total_w

    out: dict[str, np.ndarray] = {}
    for name in table.columns:
        values = np.asarray(table[name], dtype=np.float64)
        if name in ("x", "y", "z", "sigma_x", "sigma_y"):
            out[name] = wmean(values)
        elif name == "photons":
            out[name] = np.bincount(track, weights=values, minlength=n_tracks)
        elif name == "background":
            out[name] = np.bincount(track, weights=values, minlength=n_tracks) / n_merged
        elif name == "uncertainty":
            var = np.bincount(track, weights=(weight * values) ** 2, minlength=n_tracks)
            out[name] = np.sqrt(var) / total_w
        else:
            out[name] = table[name][first]
    out["n_merged"] = n_merged.astype(np.int32)
    return LocalizationTable(out)


def _check_range(name: str, bounds: tuple[float, float]) -> tuple[float, float]:
    low, high = bounds
    if not low <= high:
        raise InvalidInput(f"{name}: lower bound {low} above upper bound {high}")
    return low, high


def _column(table: LocalizationTable, name: str) -> np.ndarray:
    if name not in table:
        raise InvalidInput(f"filter on {name!r} but the table has no such column")
    return np.asarray(table[name])


def filter_localizations(
    table: LocalizationTable,
    photons_range: tuple[float, float] | None = None,
    uncertainty_max_nm: float | None = None,
    sigma_range_nm: tuple[float, float] | None = None,
) -> LocalizationTable:
    """The rows within every given bound (inclusive); ``None`` leaves a criterion out.

    ``sigma_range_nm`` applies to both ``sigma_x`` and ``sigma_y``. A criterion whose
    column is missing is an error, not a silent pass.
    """
    keep = np.ones(len(table), dtype=bool)
    if photons_range is not None:
        low, high = _check_range("photons_range", photons_range)
        photons = _column(table, "photons")
        keep &= (photons >= low) & (photons <= high)
    if uncertainty_max_nm is not None:
        keep &= _column(table, "uncertainty") <= uncertainty_max_nm
    if sigma_range_nm is not None:
        low, high = _check_range("sigma_range_nm", sigma_range_nm)
        for name in ("sigma_x", "sigma_y"):
            sigma = _column(table, name)
            keep &= (sigma >= low) & (sigma <= high)
    return table.select(keep)
