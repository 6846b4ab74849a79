"""CAML's model input: each localization's sequence of nearest-neighbour distances.

For every localization, the distances (nm) to its k nearest other localizations,
ascending (k = 100 or 1000 in the paper; k must exceed the largest expected cluster).
Queries go through one scipy cKDTree and are done in chunks of rows, so a field of a
million localizations needs only one chunk of (rows, k) distances in memory at a time
(`iter_nn_distances`).

Padding. A field with n ≤ k localizations has only n - 1 neighbours per point; the
missing tail is filled with the farthest real distance (edge padding), so a sequence
stays non-decreasing and says "nothing more nearby" rather than inventing neighbours.
A field needs at least 2 localizations.

Normalisation (`normalise`). Densities differ by orders of magnitude between samples,
so the network must not see nanometres. Each field is given one length scale, the
median over its localizations of their mean distance to their k nearest neighbours
(`field_scale_nm`, estimated on at most 5 000 localizations), and every sequence
is divided by it and log-transformed: x = log(d / scale + 1e-3). Unlike
scaling every sequence by its own mean (per point), this keeps the contrast that
tells a cluster from background, namely that clustered localizations have closer
neighbours than the field's typical localization; a hard-edged cluster that fills the
whole window looks exactly like uniform background once its own scale is divided out.
The logarithm spreads the short intra-cluster distances, which decide the class,
over the same range as the long ones.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from scipy.spatial import cKDTree

from pointillist.clusterer.cluster_stats import check_points
from pointillist.core.errors import InvalidInput

WINDOWS = (100, 1000)
"""Neighbour counts of the paper's models (XPILJZ/07VEJJ: 100; 87B144/3TXKFS: 1000)."""

LOG_OFFSET = 1e-3
"""Added to d / scale before the log, so coincident localizations (d = 0) stay finite."""

SCALE_SAMPLE = 5_000
"""Localizations used to estimate a field's scale (`field_scale_nm`)."""


def _check_field(points_xy_nm: np.ndarray, k: int) -> np.ndarray:
    points = check_points(points_xy_nm)
    if int(k) != k or k < 1:
        raise InvalidInput(f"k must be a positive integer, got {k}")
    if len(points) < 2:
        raise InvalidInput(f"nearest-neighbour features need >= 2 localizations, got {len(points)}")
    return points


def _query(tree: cKDTree, points: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(distances (m, k) float32, indices (m, k)) of `points`' k nearest others in `tree`,
    edge-padded where the tree has fewer than k + 1 points (module docstring)."""
    n_tree = tree.n
    dist, index = tree.query(points, k=min(k + 1, n_tree), workers=-1)
    dist, index = dist[:, 1:], index[:, 1:]
    if dist.shape[1] < k:
        pad = k - dist.shape[1]
        dist = np.concatenate([dist, np.repeat(dist[:, -1:], pad, axis=1)], axis=1)
        index = np.concatenate([index, np.repeat(index[:, -1:], pad, axis=1)], axis=1)
    return dist.astype(np.float32), index


def nn_distances(
    points_xy_nm: np.ndarray, k: int, *, rows: np.ndarray | None = None, tree: cKDTree | None = None
) -> np.ndarray:
    """Distances (m, k) nm from localizations `rows` (default all) to their k nearest others.

    A localization is not its own neighbour (the first hit of the query, distance 0, is
    dropped); coincident other localizations do count, at distance 0.
    """
    points = _check_field(points_xy_nm, k)
    tree = tree if tree is not None else cKDTree(points)
    query = points if rows is None else points[rows]
    return _query(tree, query, int(k))[0]


def field_scale_nm(
    points_xy_nm: np.ndarray, k: int, *, tree: cKDTree | None = None, seed: int = 0
) -> float:
    """A field's length scale: median over localizations of their mean k-NN distance (nm).

    On at most `SCALE_SAMPLE` randomly chosen localizations (queried against all).
    """
    points = _check_field(points_xy_nm, k)
    tree = tree if tree is not None else cKDTree(points)
    rows = None
    if len(points) > SCALE_SAMPLE:
        rows = np.random.default_rng(seed).choice(len(points), SCALE_SAMPLE, replace=False)
    scale = float(np.median(nn_distances(points, k, rows=rows, tree=tree).mean(axis=1)))
    if not scale > 0:
        raise InvalidInput("all localizations coincide: the field has no length scale")
    return scale


def normalise(distances_nm: np.ndarray, scale_nm: float) -> np.ndarray:
    """Network input from distance sequences: log(d / scale_nm + LOG_OFFSET), float32."""
    if not (np.isfinite(scale_nm) and scale_nm > 0):
        raise InvalidInput(f"scale_nm must be > 0, got {scale_nm}")
    return np.log(np.asarray(distances_nm, dtype=np.float32) / np.float32(scale_nm) + LOG_OFFSET)


def iter_nn_distances(
    points_xy_nm: np.ndarray,
    k: int,
    *,
    chunk_points: int | None = None,
    tree: cKDTree | None = None,
    rows: np.ndarray | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (row indices, distances (m, k) float32 nm) over `rows` (default all), in chunks.

    chunk_points: rows per chunk; default keeps one chunk at about 4 million distances
    (16 MB), whatever k is.
    """
    points = _check_field(points_xy_nm, k)
    tree = tree if tree is not None else cKDTree(points)
    rows = np.arange(len(points)) if rows is None else np.asarray(rows, dtype=np.int64)
    step = chunk_points or max(4_000_000 // int(k), 1)
    for start in range(0, len(rows), step):
        chunk = rows[start : start + step]
        yield chunk, _query(tree, points[chunk], int(k))[0]


def sequence_features(
    points_xy_nm: np.ndarray,
    k: int,
    *,
    rows: np.ndarray | None = None,
    scale_nm: float | None = None,
    tree: cKDTree | None = None,
) -> np.ndarray:
    """Normalised network input (m, k) float32 for `rows` (default all) of one field.

    scale_nm: the field's scale (default `field_scale_nm` of this field). For large
    fields use `iter_nn_distances` + `normalise` chunk by chunk instead.
    """
    points = _check_field(points_xy_nm, k)
    tree = tree if tree is not None else cKDTree(points)
    scale = field_scale_nm(points, k, tree=tree) if scale_nm is None else scale_nm
    return normalise(nn_distances(points, k, rows=rows, tree=tree), scale)
