"""Localization accuracy against ground truth: the SMLM Challenge 2016 metrics.

Sage et al., "Super-resolution fight club: assessment of 2D and 3D single-molecule
localization microscopy software", Nat. Methods 16, 387 (2019). Per frame, predicted
localizations are paired one-to-one with ground-truth emitters; a pair is admissible when
it is at most 250 nm apart laterally and 500 nm axially. Among admissible pairings the
matching has the most pairs and, among those, the least summed lateral distance: the
Hungarian assignment (``scipy.optimize.linear_sum_assignment``) on the lateral distance
with inadmissible pairs priced out, as the challenge's assessment did. Then

- Jaccard index JI = TP / (TP + FP + FN),
- RMSE lateral sqrt(mean(dx² + dy²)), axial sqrt(mean(dz²)), volumetric
  sqrt(mean(dx² + dy² + dz²)) over the matched pairs,
- efficiency E = 1 − sqrt((1 − JI)² + α²·RMSE²), α = 0.01 nm⁻¹ lateral and
  0.005 nm⁻¹ axial (the challenge reports JI and E in %: 100 × these).

Candidate pairs for all frames come from one k-d tree query (frames are kept apart by an
offset along a third axis); the assignment is solved only for frames whose candidate graph
is ambiguous, on the ambiguous part alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from pointillist.core.errors import InvalidInput

LATERAL_TOLERANCE_NM = 250.0
AXIAL_TOLERANCE_NM = 500.0
ALPHA_LATERAL_PER_NM = 0.01
ALPHA_AXIAL_PER_NM = 0.005


@dataclass(frozen=True)
class Evaluation:
    """Detection and localization scores of predictions against ground truth.

    Fractions in [0, 1] (``*_percent`` give the challenge's %), distances in nm. Biases
    are mean(prediction − truth) over matched pairs. Axial numbers are NaN for a 2D
    evaluation, RMSEs and biases NaN without matches. ``pred_index[k]`` and
    ``true_index[k]`` are the rows of the k-th matched pair in the input tables.
    """

    n_pred: int
    n_true: int
    tp: int
    fp: int
    fn: int
    jaccard: float
    recall: float
    precision: float
    rmse_lateral_nm: float
    rmse_axial_nm: float
    rmse_volumetric_nm: float
    efficiency_lateral: float
    efficiency_axial: float
    bias_x_nm: float
    bias_y_nm: float
    bias_z_nm: float
    pred_index: np.ndarray
    true_index: np.ndarray

    @property
    def jaccard_percent(self) -> float:
        return 100.0 * self.jaccard

    @property
    def efficiency_lateral_percent(self) -> float:
        return 100.0 * self.efficiency_lateral

    @property
    def efficiency_axial_percent(self) -> float:
        return 100.0 * self.efficiency_axial

    @property
    def efficiency_3d(self) -> float:
        """Mean of lateral and axial efficiency (the 3D summary DECODE and LUENN report)."""
        return 0.5 * (self.efficiency_lateral + self.efficiency_axial)

    def summary(self) -> dict[str, float]:
        """The scalar numbers, for tables and logs."""
        skip = {"pred_index", "true_index"}
        out = {k: v for k, v in self.__dict__.items() if k not in skip}
        out["efficiency_3d"] = self.efficiency_3d
        return out


def efficiency(jaccard: float, rmse_nm: float, alpha_per_nm: float) -> float:
    """E = 1 − sqrt((1 − JI)² + α²·RMSE²); 1 is perfect, can go below 0."""
    return float(1.0 - np.hypot(1.0 - jaccard, alpha_per_nm * rmse_nm))


def match(
    pred_xyz: np.ndarray,
    pred_frame: np.ndarray,
    true_xyz: np.ndarray,
    true_frame: np.ndarray,
    lateral_tolerance_nm: float = LATERAL_TOLERANCE_NM,
    axial_tolerance_nm: float | None = AXIAL_TOLERANCE_NM,
) -> tuple[np.ndarray, np.ndarray]:
    """Optimal one-to-one pairs within each frame: rows (pred_index, true_index).

    ``*_xyz`` are (N, 2) or (N, 3) nm; with ``axial_tolerance_nm=None`` or two columns
    the axial distance is not checked. Maximises the number of pairs, then minimises
    the summed lateral distance. Pairs are returned sorted by prediction row.
    """
    pred_xyz = np.asarray(pred_xyz, dtype=np.float64)
    true_xyz = np.asarray(true_xyz, dtype=np.float64)
    n_p, n_t = len(pred_xyz), len(true_xyz)
    empty = np.zeros(0, dtype=np.int64)
    if n_p == 0 or n_t == 0:
        return empty, empty
    # Compact frame codes × a stride beyond the tolerance: one tree, no cross-frame pairs.
    _, code = np.unique(np.concatenate([pred_frame, true_frame]), return_inverse=True)
    stride = 4.0 * lateral_tolerance_nm + 1.0
    offset = code.astype(np.float64) * stride
    tree_p = cKDTree(np.column_stack([pred_xyz[:, :2], offset[:n_p]]))
    tree_t = cKDTree(np.column_stack([true_xyz[:, :2], offset[n_p:]]))
    pairs = tree_p.sparse_distance_matrix(tree_t, lateral_tolerance_nm, output_type="ndarray")
    ip, it, dist = pairs["i"].astype(np.int64), pairs["j"].astype(np.int64), pairs["v"]
    if axial_tolerance_nm is not None and pred_xyz.shape[1] > 2 and true_xyz.shape[1] > 2:
        ok = np.abs(pred_xyz[ip, 2] - true_xyz[it, 2]) <= axial_tolerance_nm
        ip, it, dist = ip[ok], it[ok], dist[ok]
    if len(ip) == 0:
        return empty, empty

    # Components of the candidate graph: a single-edge component is an obvious pair.
    graph = coo_matrix((np.ones(len(ip)), (ip, n_p + it)), shape=(n_p + n_t, n_p + n_t))
    _, label = connected_components(graph, directed=False)
    edges_per_component = np.bincount(label[ip])
    simple = edges_per_component[label[ip]] == 1
    out_p, out_t = [ip[simple]], [it[simple]]

    hard_p, hard_t, hard_d = ip[~simple], it[~simple], dist[~simple]
    hard_code = code[hard_p]
    order = np.argsort(hard_code, kind="stable")
    hard_p, hard_t, hard_d, hard_code = (a[order] for a in (hard_p, hard_t, hard_d, hard_code))
    bounds = np.flatnonzero(np.diff(hard_code)) + 1
    for sp, st, sd in zip(
        np.split(hard_p, bounds), np.split(hard_t, bounds), np.split(hard_d, bounds), strict=True
    ):
        if len(sp) == 0:
            continue
        rows, r = np.unique(sp, return_inverse=True)
        cols, c = np.unique(st, return_inverse=True)
        # Pricing an inadmissible pair above any admissible total makes the assignment
        # maximise the number of admissible pairs first, then minimise their distance.
        priced_out = lateral_tolerance_nm * (min(len(rows), len(cols)) + 1.0)
        cost = np.full((len(rows), len(cols)), priced_out)
        cost[r, c] = sd
        a, b = linear_sum_assignment(cost)
        ok = cost[a, b] < priced_out
        out_p.append(rows[a[ok]])
        out_t.append(cols[b[ok]])
    mp, mt = np.concatenate(out_p), np.concatenate(out_t)
    order = np.argsort(mp, kind="stable")
    return mp[order], mt[order]


def _columns(table: Mapping[str, np.ndarray], use_z: bool) -> np.ndarray:
    names = ("x", "y", "z") if use_z else ("x", "y")
    missing = [n for n in names if n not in table]
    if missing:
        raise InvalidInput(f"table lacks column(s) {missing}")
    xyz = np.column_stack([np.asarray(table[n], dtype=np.float64) for n in names])
    if not np.all(np.isfinite(xyz)):
        raise InvalidInput("coordinates must be finite")
    return xyz.reshape(-1, len(names))


def _frames(table: Mapping[str, np.ndarray], n: int, has_frames: bool) -> np.ndarray:
    return np.asarray(table["frame"], dtype=np.int64) if has_frames else np.zeros(n, np.int64)


def evaluate(
    pred: Mapping[str, np.ndarray],
    truth: Mapping[str, np.ndarray],
    lateral_tolerance_nm: float = LATERAL_TOLERANCE_NM,
    axial_tolerance_nm: float = AXIAL_TOLERANCE_NM,
    alpha_lateral_per_nm: float = ALPHA_LATERAL_PER_NM,
    alpha_axial_per_nm: float = ALPHA_AXIAL_PER_NM,
    use_z: bool | None = None,
) -> Evaluation:
    """Score predicted localizations against ground truth, frame by frame.

    Both tables (``LocalizationTable`` or any mapping of columns) need ``x, y`` nm and
    either both or neither a ``frame`` column (without, all rows are one frame). The
    evaluation is 3D when ``use_z`` is True, or when it is None and both have ``z``.
    """
    if lateral_tolerance_nm <= 0 or axial_tolerance_nm <= 0:
        raise InvalidInput("tolerances must be > 0 nm")
    if ("frame" in pred) != ("frame" in truth):
        raise InvalidInput("either both tables or neither must have a 'frame' column")
    if use_z is None:
        use_z = "z" in pred and "z" in truth
    p_xyz, t_xyz = _columns(pred, use_z), _columns(truth, use_z)
    has_frames = "frame" in pred
    ip, it = match(
        p_xyz,
        _frames(pred, len(p_xyz), has_frames),
        t_xyz,
        _frames(truth, len(t_xyz), has_frames),
        lateral_tolerance_nm,
        axial_tolerance_nm if use_z else None,
    )
    n_p, n_t, tp = len(p_xyz), len(t_xyz), len(ip)
    fp, fn = n_p - tp, n_t - tp
    nan = float("nan")
    jaccard = tp / (tp + fp + fn) if n_p + n_t else nan
    delta = p_xyz[ip] - t_xyz[it]
    if tp:
        lateral_sq = np.mean(delta[:, 0] ** 2 + delta[:, 1] ** 2)
        rmse_lat = float(np.sqrt(lateral_sq))
        bias = delta.mean(axis=0)
    else:
        rmse_lat, bias = nan, np.full(3, nan)
    if use_z and tp:
        axial_sq = np.mean(delta[:, 2] ** 2)
        rmse_ax, rmse_vol = float(np.sqrt(axial_sq)), float(np.sqrt(lateral_sq + axial_sq))
    else:
        rmse_ax = rmse_vol = nan
    # Without matches the RMSE term is undefined; E then reduces to JI = 0 → E = 0.
    eff_lat = efficiency(jaccard, rmse_lat if tp else 0.0, alpha_lateral_per_nm)
    eff_ax = efficiency(jaccard, rmse_ax if tp else 0.0, alpha_axial_per_nm) if use_z else nan
    return Evaluation(
        n_pred=n_p,
        n_true=n_t,
        tp=tp,
        fp=fp,
        fn=fn,
        jaccard=float(jaccard),
        recall=tp / n_t if n_t else nan,
        precision=tp / n_p if n_p else nan,
        rmse_lateral_nm=rmse_lat,
        rmse_axial_nm=rmse_ax,
        rmse_volumetric_nm=rmse_vol,
        efficiency_lateral=eff_lat,
        efficiency_axial=eff_ax,
        bias_x_nm=float(bias[0]),
        bias_y_nm=float(bias[1]),
        bias_z_nm=float(bias[2]) if use_z else nan,
        pred_index=ip,
        true_index=it,
    )
