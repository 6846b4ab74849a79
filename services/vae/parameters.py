"""Model-based per-particle parameters, as in the PC-VAE paper's Methods (lengths nm).

- 2D NPC radius: mean radial coordinate after centring on the mean localization.
- 3D NPC radius: median radial (x, y) coordinate after the same centring; height (ring
  separation): median z of the localizations above the particle's central plane (its
  mean z) minus the median z of those below.
- Tetrahedron height: difference of the means of a two-Gaussian mixture fitted to z
  (scikit-learn's GaussianMixture).
- Precision: FWHM of the histogram the estimate is read from divided by √n (the paper's
  standard error). For a height, each of the two z groups gives FWHM/√n of its own
  histogram and the two add in quadrature. FWHM: histogram with Freedman–Diaconis bins,
  width at half the highest bin, interpolated between bins (scipy.signal.peak_widths).
- n_localizations always: the paper's rough proxy for the degree of labelling.

The same functions serve single particles and fused super-particles (one cloud each).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy.signal import peak_widths
from sklearn.mixture import GaussianMixture

from pointillist.core.errors import InvalidInput

KINDS = ("npc2d", "npc3d", "tetrahedron")

PARAMETERS: dict[str | None, tuple[str, ...]] = {
    "npc2d": ("radius_nm", "n_localizations"),
    "npc3d": ("radius_nm", "height_nm", "n_localizations"),
    "tetrahedron": ("height_nm", "n_localizations"),
    None: ("n_localizations",),
}
"""Per kind, the estimated parameters (each value column also has a _precision_nm twin,
except n_localizations)."""

DIMS = {"npc2d": 2, "npc3d": 3, "tetrahedron": 3}


def precision_name(parameter: str) -> str:
    """Name of a parameter's precision column: radius_nm -> radius_precision_nm."""
    return parameter.removesuffix("_nm") + "_precision_nm"


def fwhm(values: np.ndarray) -> float:
    """Full width at half maximum (same unit as values) of the histogram of values, with
    Freedman–Diaconis bins; NaN for fewer than 3 values or no spread."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 3 or np.ptp(values) <= 1e-9 * max(1.0, float(np.abs(values).max())):
        return float("nan")
    edges = np.histogram_bin_edges(values, bins="fd")
    if len(edges) < 3:
        edges = np.histogram_bin_edges(values, bins=3)
    counts, _ = np.histogram(values, bins=edges)
    padded = np.concatenate([[0], counts, [0]]).astype(np.float64)
    widths, *_ = peak_widths(padded, [int(np.argmax(padded))], rel_height=0.5)
    return float(widths[0] * (edges[1] - edges[0]))


def standard_error(values: np.ndarray) -> float:
    """The paper's precision of an estimate read from a histogram: FWHM / √n."""
    return fwhm(values) / np.sqrt(len(values))


def npc2d_radius(points: np.ndarray) -> dict[str, float]:
    """Mean radial coordinate (nm) after centring on the mean localization, and its precision."""
    radial = _radial(points)
    return {"radius_nm": float(radial.mean()), "radius_precision_nm": standard_error(radial)}


def npc3d_radius_height(points: np.ndarray) -> dict[str, float]:
    """Median radial (x, y) coordinate after centring, and the ring separation: median z
    above minus median z below the central plane (mean z); with their precisions."""
    radial = _radial(points)
    z = points[:, 2]
    above, below = z[z > z.mean()], z[z <= z.mean()]
    height = np.median(above) - np.median(below) if len(above) and len(below) else np.nan
    return {
        "radius_nm": float(np.median(radial)),
        "radius_precision_nm": standard_error(radial),
        "height_nm": float(height),
        "height_precision_nm": _combined_error(above, below),
    }


def tetrahedron_height(points: np.ndarray, seed: int = 0) -> dict[str, float]:
    """Difference of the means of a two-Gaussian mixture fitted to z (base and apex), and
    its precision from the z histograms of the two components' localizations."""
    z = points[:, 2:3]
    if len(z) < 4 or np.ptp(z) == 0:
        return {"height_nm": float("nan"), "height_precision_nm": float("nan")}
    mixture = GaussianMixture(2, random_state=seed).fit(z)
    label = mixture.predict(z)
    return {
        "height_nm": float(abs(np.diff(mixture.means_[:, 0])[0])),
        "height_precision_nm": _combined_error(z[label == 0, 0], z[label == 1, 0]),
    }


ESTIMATORS: dict[str, Callable[[np.ndarray], dict[str, float]]] = {
    "npc2d": npc2d_radius,
    "npc3d": npc3d_radius_height,
    "tetrahedron": tetrahedron_height,
}


def estimate_parameters(clouds: Sequence[np.ndarray], kind: str | None) -> dict[str, np.ndarray]:
    """Per-cloud parameters for a kind in KINDS (or None: n_localizations only): columns
    n_localizations and, e.g. for npc3d, radius_nm, radius_precision_nm, height_nm,
    height_precision_nm; one row per cloud (n_i, dims) nm."""
    if kind is not None and kind not in KINDS:
        raise InvalidInput(f"unknown particle kind {kind!r}; expected one of {KINDS} or None")
    table: dict[str, np.ndarray] = {
        "n_localizations": np.array([len(c) for c in clouds], dtype=np.int64)
    }
    if kind is None:
        return table
    if any(np.ndim(c) != 2 or np.shape(c)[1] < DIMS[kind] for c in clouds):
        raise InvalidInput(f"{kind} parameters need clouds of shape (n, {DIMS[kind]})")
    rows = [ESTIMATORS[kind](np.asarray(c, dtype=np.float64)) for c in clouds]
    for name in rows[0] if rows else ():
        table[name] = np.array([row[name] for row in rows])
    return table


def _radial(points: np.ndarray) -> np.ndarray:
    """Distance (nm) in x, y from the mean localization."""
    centred = points[:, :2] - points[:, :2].mean(axis=0)
    return np.hypot(centred[:, 0], centred[:, 1])


def _combined_error(first: np.ndarray, second: np.ndarray) -> float:
    """Precision of a difference of two histogram estimates: their FWHM/√n in quadrature."""
    return float(np.hypot(standard_error(first), standard_error(second)))
