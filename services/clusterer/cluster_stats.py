"""Per-cluster statistics of a labelled point cloud: what a user reads off a cluster map.

One row per cluster (labels other than the non-clustered label, in ascending order):
centroid (nm), localization count, radius of gyration (nm), convex-hull area (nm²),
distance to the nearest other cluster centroid (nm) and, when per-localization classes
are given, the cluster's majority class. Everything is vectorised with np.bincount over
a dense cluster index; only the convex hulls are computed one cluster at a time.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import ConvexHull, QhullError, cKDTree

from pointillist.core.errors import InvalidInput

NOISE_LABEL = -1
"""Label of non-clustered localizations in this package's outputs (DBSCAN's convention)."""


def check_points(points_xy: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
    """`points_xy` as a finite float64 (n, 2) array; `labels`, if given, must be n integers."""
    points = np.asarray(points_xy)
    if points.ndim != 2 or points.shape[1] != 2:
        raise InvalidInput(f"points_xy must have shape (n, 2), got {points.shape}")
    if not np.issubdtype(points.dtype, np.number) or np.issubdtype(
        points.dtype, np.complexfloating
    ):
        raise InvalidInput(f"points_xy must be real numbers, got dtype {points.dtype}")
    points = points.astype(np.float64, copy=False)
    if not np.isfinite(points).all():
        raise InvalidInput("points_xy holds NaN or infinite coordinates")
    if labels is not None:
        check_labels(labels, len(points), "labels")
    return points


def check_labels(labels: np.ndarray, n: int | None = None, name: str = "labels") -> np.ndarray:
    """`labels` as a 1-D int64 array (of length n when given); floats must be whole numbers."""
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise InvalidInput(f"{name} must be 1-D, got shape {arr.shape}")
    if n is not None and len(arr) != n:
        raise InvalidInput(f"{name} has {len(arr)} entries for {n} localizations")
    if np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool:
        return arr.astype(np.int64, copy=False)
    if (
        np.issubdtype(arr.dtype, np.floating)
        and np.isfinite(arr).all()
        and (arr == arr.round()).all()
    ):
        return arr.astype(np.int64)
    raise InvalidInput(f"{name} must be integers, got dtype {arr.dtype}")


def dense_cluster_index(
    labels: np.ndarray, noise_label: int = NOISE_LABEL
) -> tuple[np.ndarray, np.ndarray]:
    """(cluster ids in ascending order, per-localization index into them or -1 if non-clustered)."""
    labels = check_labels(labels)
    clustered = labels != noise_label
    ids, inverse = np.unique(labels[clustered], return_inverse=True)
    index = np.full(len(labels), -1, dtype=np.int64)
    index[clustered] = inverse
    return ids, index


def cluster_centroids(
    points_xy: np.ndarray, labels: np.ndarray, noise_label: int = NOISE_LABEL
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cluster ids, centroids (C, 2) nm, localization counts (C,)) of the non-noise clusters."""
    points = check_points(points_xy, labels)
    ids, index = dense_cluster_index(labels, noise_label)
    keep = index >= 0
    counts = np.bincount(index[keep], minlength=len(ids))
    sums = np.column_stack(
        [np.bincount(index[keep], weights=points[keep, d], minlength=len(ids)) for d in (0, 1)]
    )
    return ids, sums / np.maximum(counts, 1)[:, None], counts


def convex_hull(points_xy: np.ndarray) -> np.ndarray | None:
    """Counter-clockwise hull vertices (m, 2), or None when the points span no area.

    Fewer than three points, or collinear/coincident points, have no 2-D hull.
    """
    if len(points_xy) < 3:
        return None
    try:
        hull = ConvexHull(points_xy)
    except QhullError:
        return None
    return points_xy[hull.vertices]


def polygon_area(vertices: np.ndarray | None) -> float:
    """Area (nm²) of a simple polygon by the shoelace formula; 0 for None."""
    if vertices is None:
        return 0.0
    x, y = vertices[:, 0], vertices[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)


def cluster_hulls(
    points_xy: np.ndarray, labels: np.ndarray, noise_label: int = NOISE_LABEL
) -> tuple[np.ndarray, list[np.ndarray | None]]:
    """(cluster ids, convex hull of each cluster as in `convex_hull`), one cluster at a time."""
    points = check_points(points_xy, labels)
    ids, index = dense_cluster_index(labels, noise_label)
    order = np.argsort(index, kind="stable")
    counts = np.bincount(index[index >= 0], minlength=len(ids))
    start = int(np.count_nonzero(index < 0))
    groups = np.split(order[start:], np.cumsum(counts)[:-1]) if len(ids) else []
    return ids, [convex_hull(points[g]) for g in groups]


def cluster_statistics(
    points_xy: np.ndarray,
    labels: np.ndarray,
    *,
    noise_label: int = NOISE_LABEL,
    classes: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Per-cluster table as a dict of equal-length columns, one row per cluster.

    Columns: cluster (id), x, y (centroid, nm), n_localizations, radius_of_gyration_nm
    (root-mean-square distance of the cluster's localizations to its centroid),
    hull_area_nm2 (0 for fewer than 3 or collinear points), nn_distance_nm (centroid
    to the nearest other cluster centroid; NaN with a single cluster), and, when
    `classes` (one non-negative integer per localization) is given, class (the most
    frequent class among the cluster's localizations, ties to the smaller class) and
    class_fraction (the share of the cluster's localizations in that class).
    """
    points = check_points(points_xy, labels)
    ids, index = dense_cluster_index(labels, noise_label)
    _, centroids, counts = cluster_centroids(points, labels, noise_label)
    keep = index >= 0
    offsets = points[keep] - centroids[index[keep]]
    sq = np.bincount(index[keep], weights=(offsets**2).sum(axis=1), minlength=len(ids))
    rg = np.sqrt(sq / np.maximum(counts, 1))
    _, hulls = cluster_hulls(points, labels, noise_label)
    area = np.array([polygon_area(h) for h in hulls], dtype=np.float64)
    nn = np.full(len(ids), np.nan)
    if len(ids) >= 2:
        nn = cKDTree(centroids).query(centroids, k=2)[0][:, 1]
    table: dict[str, np.ndarray] = {
        "cluster": ids,
        "x": centroids[:, 0],
        "y": centroids[:, 1],
        "n_localizations": counts.astype(np.int64),
        "radius_of_gyration_nm": rg,
        "hull_area_nm2": area,
        "nn_distance_nm": nn,
    }
    if classes is not None:
        cls = check_labels(classes, len(points), "classes")
        if len(cls) and cls.min() < 0:
            raise InvalidInput("classes must be non-negative integers")
        n_classes = int(cls.max()) + 1 if len(cls) else 1
        votes = np.bincount(
            index[keep] * n_classes + cls[keep], minlength=len(ids) * n_classes
        ).reshape(len(ids), n_classes)
        majority = votes.argmax(axis=1)
        table["class"] = majority.astype(np.int64)
        table["class_fraction"] = votes[np.arange(len(ids)), majority] / np.maximum(counts, 1)
    return table
