"""NeNA: the mean localization precision of a run from nearest neighbours in adjacent frames.

Endesfelder, Malkusch, Fricke & Heilemann, "A simple method to estimate the average
localization precision of a single-molecule localization microscopy experiment",
Histochem. Cell Biol. 141, 629 (2014). A molecule on in frames f and f + 1 is localized
twice with independent errors of precision σ per axis, so the distance d between the two
localizations follows p(d) = (d / 2σ²) exp(−d² / 4σ²). NeNA takes, for every localization,
the nearest localization of the next frame, and fits the distance histogram with that
density plus the paper's linear term A₂·d for neighbours that are other, uncorrelated
molecules (the paper's third, Gaussian shoulder term for structure-correlated neighbours
is left out: it needs a structure prior and destabilises the fit on sparse data).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import curve_fit
from scipy.spatial import cKDTree

from pointillist.core.errors import InvalidInput
from pointillist.core.table import LocalizationTable

_MIN_PAIRS = 50


@dataclass(frozen=True)
class NenaResult:
    """σ_NeNA (nm) with its fit standard error and the fitted histogram.

    ``density`` is the histogram of adjacent-frame nearest-neighbour distances as a
    probability density (1/nm) at ``bin_centers_nm``; ``model`` the fitted curve there;
    ``correlated_fraction`` the weight A₁ of the same-molecule term.
    """

    sigma_nm: float
    sigma_error_nm: float
    n_pairs: int
    correlated_fraction: float
    bin_centers_nm: np.ndarray
    density: np.ndarray
    model: np.ndarray


def adjacent_frame_distances(table: LocalizationTable, max_distance_nm: float) -> np.ndarray:
    """Distance (nm) from each localization to its nearest one in the next frame, for
    those with one within ``max_distance_nm``.

    One k-d tree over (x, y, frame × stride) with the stride beyond the search radius,
    so a query lifted by one stride only meets the next frame.
    """
    if max_distance_nm <= 0:
        raise InvalidInput(f"max_distance_nm must be > 0, got {max_distance_nm}")
    if "frame" not in table:
        raise InvalidInput("NeNA needs a 'frame' column")
    if len(table) == 0:
        return np.zeros(0)
    frame = np.asarray(table["frame"], dtype=np.float64)
    stride = 2.0 * max_distance_nm
    points = np.column_stack([table["x"], table["y"], (frame - frame.min()) * stride])
    tree = cKDTree(points.astype(np.float64))
    query = points.astype(np.float64)
    query[:, 2] += stride
    dist, _ = tree.query(query, distance_upper_bound=max_distance_nm)
    return dist[np.isfinite(dist)]


def _model(d: np.ndarray, sigma: float, a1: float, a2: float) -> np.ndarray:
    return a1 * d / (2 * sigma**2) * np.exp(-(d**2) / (4 * sigma**2)) + a2 * d


def estimate_nena(
    table: LocalizationTable, max_distance_nm: float = 200.0, bin_nm: float | None = None
) -> NenaResult:
    """NeNA localization precision of ``table`` (x, y nm, frame).

    Distances up to ``max_distance_nm`` (a few σ beyond the expected precision) are
    histogrammed with ``bin_nm`` bins (default: Freedman–Diaconis, at least 0.5 nm) and
    fitted by least squares (``scipy.optimize.curve_fit``).
    """
    d = adjacent_frame_distances(table, max_distance_nm)
    if len(d) < _MIN_PAIRS:
        raise InvalidInput(
            f"NeNA needs at least {_MIN_PAIRS} adjacent-frame neighbours within "
            f"{max_distance_nm} nm, found {len(d)}"
        )
    if bin_nm is None:
        q25, q75 = np.percentile(d, [25, 75])
        bin_nm = max(0.5, 2 * (q75 - q25) / len(d) ** (1 / 3))
    if bin_nm <= 0:
        raise InvalidInput(f"bin_nm must be > 0, got {bin_nm}")
    edges = np.arange(0.0, max_distance_nm + bin_nm, bin_nm)
    counts, edges = np.histogram(d, bins=edges)
    centers = 0.5 * (edges[1:] + edges[:-1])
    density = counts / (len(d) * bin_nm)
    sigma0 = float(np.median(d)) / (2 * np.sqrt(np.log(2)))  # median of p(d) is 2σ√ln2
    params, cov = curve_fit(
        _model,
        centers,
        density,
        p0=(sigma0, 1.0, 0.0),
        bounds=((1e-3, 0.0, 0.0), (max_distance_nm, np.inf, np.inf)),
    )
    return NenaResult(
        sigma_nm=float(params[0]),
        sigma_error_nm=float(np.sqrt(cov[0, 0])),
        n_pairs=len(d),
        correlated_fraction=float(params[1]),
        bin_centers_nm=centers,
        density=density,
        model=_model(centers, *params),
    )
