"""DBSCAN and HDBSCAN baselines (scikit-learn), with ways to choose DBSCAN's parameters.

Labels: -1 = non-clustered, clusters 0..C-1. Coordinates in nm, (n, 2) as (x, y).

DBSCAN's eps can be given, or chosen by the k-distance heuristic (Ester et al. 1996):
sort every localization's distance to its k-th nearest other localization, k =
min_samples - 1 (so a point is a core point exactly when its k-distance is ≤ eps), and
take the knee of that ascending curve, the point farthest below the chord between its
ends (equivalently the maximum of Kneedle's difference curve, Satopää et al. 2011). SMLM
fields are up to half uniform background, whose k-distances form a long rising tail that
would pull the knee into the background; the chord is therefore drawn over the lower
`upper_quantile` (default 0.9) of the curve only, so the knee marks where the clustered
localizations' k-distances give way to the background's. With multiple blinking, every
molecule is itself a tight group of detections: min_samples must then exceed the
detections per molecule (about 20 for the Nieves blinking scenarios), or be tuned.

`tune_dbscan` is the "tuned DBSCAN" of the MIRO paper's Table 1, following Nieves et al.
(2023): a grid search over eps and min_samples, keeping the pair with the best mean of a
metric (ARI by default) over training fields with ground truth.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree
from sklearn.cluster import DBSCAN, HDBSCAN

from pointillist.clusterer.cluster_stats import NOISE_LABEL, check_labels, check_points
from pointillist.clusterer.metrics import (
    DEFAULT_XI_NM,
    LOWER_IS_BETTER,
    METRIC_NAMES,
    evaluate_clustering,
)
from pointillist.core.errors import InvalidInput

DEFAULT_MIN_SAMPLES = 4
"""DBSCAN's minPts when not given: 2 × dimension (Sander et al. 1998), point itself included."""


def _check_min_samples(min_samples: int) -> int:
    if int(min_samples) != min_samples or min_samples < 2:
        raise InvalidInput(f"min_samples must be an integer >= 2, got {min_samples}")
    return int(min_samples)


def k_distances(
    points_xy: np.ndarray, k: int, *, max_points: int | None = 200_000, seed: int = 0
) -> np.ndarray:
    """Sorted (ascending) distances (nm) from localizations to their k-th nearest other one.

    With more than `max_points` localizations, a random subset of that many is queried
    (against all of them), which keeps the 1-million-point case to seconds.
    """
    points = check_points(points_xy)
    if k < 1 or k >= len(points):
        raise InvalidInput(f"k-distance needs 1 <= k < {len(points)} localizations, got k={k}")
    query = points
    if max_points is not None and len(points) > max_points:
        pick = np.random.default_rng(seed).choice(len(points), max_points, replace=False)
        query = points[pick]
    dist, _ = cKDTree(points).query(query, k=k + 1)
    return np.sort(dist[:, k])


def knee_index(values: np.ndarray) -> int:
    """Index of the knee of an ascending curve: the point farthest below its chord."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or len(v) < 3:
        raise InvalidInput("a knee needs an ascending curve of at least 3 values")
    span = v[-1] - v[0]
    if span <= 0:
        return len(v) // 2
    x = np.linspace(0.0, 1.0, len(v))
    return int(np.argmax(x - (v - v[0]) / span))


def k_distance_eps(
    points_xy: np.ndarray,
    min_samples: int = DEFAULT_MIN_SAMPLES,
    *,
    upper_quantile: float = 0.9,
    max_points: int | None = 200_000,
    seed: int = 0,
) -> float:
    """DBSCAN eps (nm) from the knee of the k-distance curve, k = min_samples - 1 (module)."""
    min_samples = _check_min_samples(min_samples)
    if not 0 < upper_quantile <= 1:
        raise InvalidInput(f"upper_quantile must be in (0, 1], got {upper_quantile}")
    kd = k_distances(points_xy, min_samples - 1, max_points=max_points, seed=seed)
    lower = kd[: max(3, int(np.ceil(upper_quantile * len(kd))))]
    eps = float(lower[knee_index(lower)])
    if eps <= 0:
        raise InvalidInput("k-distance heuristic found eps = 0 (coincident localizations)")
    return eps


class DBSCANClusterer:
    """DBSCAN (scikit-learn, KD-tree neighbours) with eps from the k-distance knee if not given.

    Parameters: eps_nm (None: `k_distance_eps`), min_samples (localizations within eps
    of a core point, itself included), upper_quantile (see `k_distance_eps`), n_jobs.
    After `fit`: labels_ (-1 = non-clustered), eps_nm_ (the eps used), n_clusters_.
    """

    def __init__(
        self,
        eps_nm: float | None = None,
        min_samples: int = DEFAULT_MIN_SAMPLES,
        *,
        upper_quantile: float = 0.9,
        n_jobs: int | None = None,
    ) -> None:
        self.eps_nm = eps_nm
        self.min_samples = min_samples
        self.upper_quantile = upper_quantile
        self.n_jobs = n_jobs

    def fit(self, points_xy: np.ndarray) -> DBSCANClusterer:
        """Cluster one field of view; returns self."""
        points = check_points(points_xy)
        min_samples = _check_min_samples(self.min_samples)
        if self.eps_nm is None:
            eps = k_distance_eps(points, min_samples, upper_quantile=self.upper_quantile)
        elif self.eps_nm > 0 and np.isfinite(self.eps_nm):
            eps = float(self.eps_nm)
        else:
            raise InvalidInput(f"eps_nm must be > 0, got {self.eps_nm}")
        if len(points) == 0:
            labels = np.zeros(0, dtype=np.int64)
        else:
            model = DBSCAN(
                eps=eps, min_samples=min_samples, algorithm="kd_tree", n_jobs=self.n_jobs
            )
            labels = model.fit_predict(points).astype(np.int64)
        self.labels_ = labels
        self.eps_nm_ = eps
        self.n_clusters_ = int(labels.max(initial=-1)) + 1
        return self

    def fit_predict(self, points_xy: np.ndarray) -> np.ndarray:
        """Labels of `fit` (-1 = non-clustered)."""
        return self.fit(points_xy).labels_


def dbscan(
    points_xy: np.ndarray, eps_nm: float | None = None, min_samples: int = DEFAULT_MIN_SAMPLES
) -> np.ndarray:
    """One-shot DBSCAN: labels (-1 = non-clustered); eps_nm None = k-distance heuristic."""
    return DBSCANClusterer(eps_nm, min_samples).fit_predict(points_xy)


class HDBSCANClusterer:
    """HDBSCAN (scikit-learn): density clustering without eps, over all density levels.

    Parameters: min_cluster_size (smallest cluster, localizations), min_samples (core
    distance neighbours; None = min_cluster_size), cluster_selection_epsilon_nm (merge
    clusters closer than this), cluster_selection_method ("eom" or "leaf"). After `fit`:
    labels_ (-1 = non-clustered; scikit-learn's -2/-3 special labels also map to -1),
    n_clusters_.
    """

    def __init__(
        self,
        min_cluster_size: int = 5,
        min_samples: int | None = None,
        *,
        cluster_selection_epsilon_nm: float = 0.0,
        cluster_selection_method: str = "eom",
        n_jobs: int | None = None,
    ) -> None:
        self.min_cluster_size = min_cluster_size
        self.min_samples = min_samples
        self.cluster_selection_epsilon_nm = cluster_selection_epsilon_nm
        self.cluster_selection_method = cluster_selection_method
        self.n_jobs = n_jobs

    def fit(self, points_xy: np.ndarray) -> HDBSCANClusterer:
        """Cluster one field of view; returns self."""
        points = check_points(points_xy)
        if int(self.min_cluster_size) != self.min_cluster_size or self.min_cluster_size < 2:
            raise InvalidInput(f"min_cluster_size must be >= 2, got {self.min_cluster_size}")
        if self.min_samples is not None:
            _check_min_samples(self.min_samples)
        if self.cluster_selection_method not in ("eom", "leaf"):
            raise InvalidInput("cluster_selection_method must be 'eom' or 'leaf'")
        if not self.cluster_selection_epsilon_nm >= 0:
            raise InvalidInput("cluster_selection_epsilon_nm must be >= 0")
        if len(points) <= self.min_cluster_size:
            labels = np.full(len(points), NOISE_LABEL, dtype=np.int64)
        else:
            model = HDBSCAN(
                min_cluster_size=int(self.min_cluster_size),
                min_samples=self.min_samples,
                cluster_selection_epsilon=float(self.cluster_selection_epsilon_nm),
                cluster_selection_method=self.cluster_selection_method,
                n_jobs=self.n_jobs,
                copy=True,
            )
            labels = model.fit_predict(points).astype(np.int64)
            labels[labels < 0] = NOISE_LABEL
        self.labels_ = labels
        self.n_clusters_ = int(labels.max(initial=-1)) + 1
        return self

    def fit_predict(self, points_xy: np.ndarray) -> np.ndarray:
        """Labels of `fit` (-1 = non-clustered)."""
        return self.fit(points_xy).labels_


def hdbscan(points_xy: np.ndarray, min_cluster_size: int = 5) -> np.ndarray:
    """One-shot HDBSCAN: labels (-1 = non-clustered)."""
    return HDBSCANClusterer(min_cluster_size).fit_predict(points_xy)


@dataclass(frozen=True)
class DBSCANTuning:
    """Result of `tune_dbscan`: the chosen pair and the mean score of every grid pair.

    scores[i, j] is the mean of `metric` over the fields for eps_grid_nm[i] and
    min_samples_grid[j] (NaN-mean; NaN where no field defines the metric).
    """

    eps_nm: float
    min_samples: int
    metric: str
    score: float
    eps_grid_nm: np.ndarray
    min_samples_grid: np.ndarray
    scores: np.ndarray

    def clusterer(self) -> DBSCANClusterer:
        """A DBSCANClusterer with the chosen parameters."""
        return DBSCANClusterer(self.eps_nm, self.min_samples)


def tune_dbscan(
    points: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    grid: Mapping[str, Sequence[float]],
    *,
    metric: str = "ari",
    true_noise_label: int = NOISE_LABEL,
    xi_nm: float = DEFAULT_XI_NM,
    cluster_on: Sequence[np.ndarray] | None = None,
) -> DBSCANTuning:
    """Grid search of DBSCAN's eps_nm × min_samples on training fields with ground truth.

    `points[f]` (n_f, 2) nm and `labels[f]` (n_f,) are the fields; `grid` maps "eps_nm"
    and "min_samples" to the values to try. Keeps the pair with the best mean `metric`
    (one of `metrics.METRIC_NAMES`; lowest for rmsre_n and rmse_xy_nm, highest otherwise;
    ties go to the first pair in grid order). `cluster_on[f]`, when given, are the
    positions DBSCAN clusters instead of `points[f]` (e.g. MIRO's squeezed points, same
    order); the metrics are always computed on `points`.
    """
    if len(points) == 0 or len(points) != len(labels):
        raise InvalidInput(f"need one label array per field, got {len(points)} and {len(labels)}")
    if set(grid) != {"eps_nm", "min_samples"}:
        raise InvalidInput(f"grid must have keys eps_nm and min_samples, got {sorted(grid)}")
    if metric not in METRIC_NAMES:
        raise InvalidInput(f"unknown metric {metric!r}; known: {list(METRIC_NAMES)}")
    eps_grid = np.asarray(grid["eps_nm"], dtype=np.float64)
    ms_grid = np.asarray([_check_min_samples(m) for m in grid["min_samples"]], dtype=np.int64)
    if len(eps_grid) == 0 or len(ms_grid) == 0 or not (eps_grid > 0).all():
        raise InvalidInput("grid needs at least one eps_nm > 0 and one min_samples")
    if cluster_on is None:
        cluster_on = points
    if len(cluster_on) != len(points):
        raise InvalidInput("cluster_on needs one array per field")
    fields = []
    for p, lab, on in zip(points, labels, cluster_on, strict=True):
        xy = check_points(p)
        fields.append((xy, check_labels(lab, len(xy), "labels"), check_points(on, lab)))
    per_field = np.full((len(eps_grid), len(ms_grid), len(fields)), np.nan)
    for i, eps in enumerate(eps_grid):
        for j, ms in enumerate(ms_grid):
            for f, (xy, truth, on) in enumerate(fields):
                pred = DBSCANClusterer(float(eps), int(ms)).fit_predict(on)
                per_field[i, j, f] = evaluate_clustering(
                    xy,
                    truth,
                    pred,
                    true_noise_label=true_noise_label,
                    xi_nm=xi_nm,
                    metrics=[metric],
                )[metric]
    defined = ~np.isnan(per_field).all(axis=2)
    if not defined.any():
        raise InvalidInput(f"{metric} is undefined on every field for every grid pair")
    scores = np.full(defined.shape, np.nan)
    scores[defined] = np.nanmean(per_field[defined], axis=1)
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    i, j = np.unravel_index(np.nanargmax(sign * scores), scores.shape)
    return DBSCANTuning(
        eps_nm=float(eps_grid[i]),
        min_samples=int(ms_grid[j]),
        metric=metric,
        score=float(scores[i, j]),
        eps_grid_nm=eps_grid,
        min_samples_grid=ms_grid,
        scores=scores,
    )
