"""The fitter's PSF model: pixel-integrated Gaussians on ROIs with analytic derivatives.

Coordinates are ROI pixels (pixel j spans [j, j+1), as in `pointillist.simulator.psf`).
The expected counts of ROI pixel (i, j) are μ_ij = N·Ey_i·Ex_j + b with
Ex_j = ½[erf((j+1−x)/(√2σx)) − erf((j−x)/(√2σx))], and likewise Ey. Everything is
batched over spots: parameters (n, p) in, (n, R, R) model and (n, R, R, p) Jacobian out.

Parameter layouts (columns of the (n, p) array):
- 2D, fixed σ: x, y (px), N (counts), b (counts/px)
- 2D, free σ: x, y, N, b, σ (px, σx = σy)
- astigmatic 3D: x, y, N, b, z (nm), with σx(z), σy(z) from the calibration curve
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import erf

from pointillist.simulator.psf import AstigmaticCalibration

_SQRT2 = math.sqrt(2.0)
_SQRT2PI = math.sqrt(2.0 * math.pi)
_SQRTPI = math.sqrt(math.pi)


def integrals_and_derivatives(
    center_px: np.ndarray, sigma_px: np.ndarray, n_pixels: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-pixel fractions E (n, n_pixels) of 1D Gaussians and dE/dcenter, dE/dσ."""
    center = center_px[:, None]
    sigma = sigma_px[:, None]
    edges = np.arange(n_pixels + 1, dtype=np.float64)[None, :]
    a = (edges - center) / (_SQRT2 * sigma)
    g = np.exp(-np.square(a))
    frac = 0.5 * np.diff(erf(a), axis=1)
    d_center = (g[:, :-1] - g[:, 1:]) / (_SQRT2PI * sigma)
    ag = a * g
    d_sigma = (ag[:, :-1] - ag[:, 1:]) / (_SQRTPI * sigma)
    return frac, d_center, d_sigma


@dataclass(frozen=True)
class GaussianPSF:
    """A Gaussian PSF of width `sigma_px` (fixed, or the initial value when `fit_sigma`)."""

    sigma_px: float
    fit_sigma: bool = False

    @property
    def n_params(self) -> int:
        return 5 if self.fit_sigma else 4

    @property
    def detection_sigma_px(self) -> float:
        """The PSF width (px) the spot detector filters with."""
        return self.sigma_px

    def sigmas(self, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(σx, σy) in px of each spot."""
        sigma = params[:, 4] if self.fit_sigma else np.full(len(params), self.sigma_px)
        return sigma, sigma

    def expected(self, params: np.ndarray, roi: int) -> np.ndarray:
        """Expected counts (n, R, R) at `params` (n, p), without derivatives."""
        return _expected(params, *self.sigmas(params), roi)

    def model(self, params: np.ndarray, roi: int) -> tuple[np.ndarray, np.ndarray]:
        """Expected counts (n, R, R) and Jacobian (n, R, R, p) at `params` (n, p)."""
        sigma, _ = self.sigmas(params)
        ex, dex, dsx = integrals_and_derivatives(params[:, 0], sigma, roi)
        ey, dey, dsy = integrals_and_derivatives(params[:, 1], sigma, roi)
        jac = _base_jacobian(params, ex, dex, ey, dey, self.n_params)
        if self.fit_sigma:
            n = params[:, 2, None, None]
            jac[..., 4] = n * (dsy[:, :, None] * ex[:, None, :] + ey[:, :, None] * dsx[:, None, :])
        return _mu(params, ex, ey), jac


@dataclass(frozen=True)
class AstigmaticPSF:
    """Astigmatic 3D PSF: σx(z), σy(z) of `calibration`, scaled to px by `pixel_size_nm`."""

    calibration: AstigmaticCalibration
    pixel_size_nm: float

    n_params = 5

    @property
    def detection_sigma_px(self) -> float:
        """The PSF width (px) the spot detector filters with: the geometric mean at focus."""
        sx, sy, _, _ = self.sigmas_and_slopes(np.zeros(1))
        return float(np.sqrt(sx[0] * sy[0]))

    def sigmas_and_slopes(self, z_nm: np.ndarray) -> tuple[np.ndarray, ...]:
        """σx, σy (px) at z (nm) and their derivatives dσ/dz (px/nm)."""
        c = self.calibration
        sx, dsx = _width(z_nm, c.sigma0_x_nm, c.focus_x_nm, c.depth_x_nm, c.a_x, c.b_x)
        sy, dsy = _width(z_nm, c.sigma0_y_nm, c.focus_y_nm, c.depth_y_nm, c.a_y, c.b_y)
        px = self.pixel_size_nm
        return sx / px, sy / px, dsx / px, dsy / px

    def sigmas(self, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(σx, σy) in px of each spot."""
        sx, sy, _, _ = self.sigmas_and_slopes(params[:, 4])
        return sx, sy

    def expected(self, params: np.ndarray, roi: int) -> np.ndarray:
        """Expected counts (n, R, R) at `params` (n, 5), without derivatives."""
        return _expected(params, *self.sigmas(params), roi)

    def model(self, params: np.ndarray, roi: int) -> tuple[np.ndarray, np.ndarray]:
        """Expected counts (n, R, R) and Jacobian (n, R, R, 5) at `params` (n, 5)."""
        sx, sy, slope_x, slope_y = self.sigmas_and_slopes(params[:, 4])
        ex, dex, dsx = integrals_and_derivatives(params[:, 0], sx, roi)
        ey, dey, dsy = integrals_and_derivatives(params[:, 1], sy, roi)
        jac = _base_jacobian(params, ex, dex, ey, dey, 5)
        dz_x = dsx * slope_x[:, None]
        dz_y = dsy * slope_y[:, None]
        n = params[:, 2, None, None]
        jac[..., 4] = n * (dz_y[:, :, None] * ex[:, None, :] + ey[:, :, None] * dz_x[:, None, :])
        return _mu(params, ex, ey), jac


def _expected(params: np.ndarray, sx: np.ndarray, sy: np.ndarray, roi: int) -> np.ndarray:
    edges = np.arange(roi + 1, dtype=np.float64)[None, :]
    ex = 0.5 * np.diff(erf((edges - params[:, 0, None]) / (_SQRT2 * sx[:, None])), axis=1)
    ey = 0.5 * np.diff(erf((edges - params[:, 1, None]) / (_SQRT2 * sy[:, None])), axis=1)
    return _mu(params, ex, ey)


def _mu(params: np.ndarray, ex: np.ndarray, ey: np.ndarray) -> np.ndarray:
    return params[:, 2, None, None] * ey[:, :, None] * ex[:, None, :] + params[:, 3, None, None]


def _base_jacobian(
    params: np.ndarray,
    ex: np.ndarray,
    dex: np.ndarray,
    ey: np.ndarray,
    dey: np.ndarray,
    n_params: int,
) -> np.ndarray:
    n_spots, roi = ex.shape
    jac = np.empty((n_spots, roi, roi, n_params))
    n = params[:, 2, None, None]
    shape = ey[:, :, None] * ex[:, None, :]
    jac[..., 0] = n * ey[:, :, None] * dex[:, None, :]
    jac[..., 1] = n * dey[:, :, None] * ex[:, None, :]
    jac[..., 2] = shape
    jac[..., 3] = 1.0
    return jac


def _width(
    z: np.ndarray, sigma0: float, c: float, d: float, a: float, b: float
) -> tuple[np.ndarray, np.ndarray]:
    """σ(z) = σ0·sqrt(1 + u² + A·u³ + B·u⁴), u = (z − c)/d, and dσ/dz (nm, nm/nm)."""
    u = (z - c) / d
    q = np.maximum(1.0 + u**2 + a * u**3 + b * u**4, 1e-6)
    sigma = sigma0 * np.sqrt(q)
    slope = sigma0 * (2 * u + 3 * a * u**2 + 4 * b * u**3) / (2 * d * np.sqrt(q))
    return sigma, slope
