"""Point spread functions: pixel-integrated Gaussians, in focus or astigmatic in 3D.

Coordinates are in pixels here, with pixel i covering [i, i+1) (so a pixel's centre is
i + 0.5); rows are y, columns x. The Gaussian is integrated over each pixel exactly by
differences of the error function at the pixel edges, and it is separable, so an image
of N emitters is one (H, N) @ (N, W) matrix product instead of N·H·W erf calls.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import erf

from pointillist.core.errors import InvalidInput
from pointillist.simulator.params import Config, check


def pixel_integrals(center_px: np.ndarray, sigma_px: np.ndarray, n_pixels: int) -> np.ndarray:
    """Fraction of a 1D Gaussian falling in each of `n_pixels` unit pixels, shape (N, n_pixels).

    `center_px` and `sigma_px` are per emitter, in pixels; pixel i spans [i, i+1).
    """
    center = np.asarray(center_px, dtype=np.float64)[:, None]
    scale = np.sqrt(2.0) * np.asarray(sigma_px, dtype=np.float64)[:, None]
    edges = np.arange(n_pixels + 1, dtype=np.float64)[None, :]
    return 0.5 * np.diff(erf((edges - center) / scale), axis=1)


def render_gaussians(
    x_px: np.ndarray,
    y_px: np.ndarray,
    sigma_x_px: np.ndarray,
    sigma_y_px: np.ndarray,
    photons: np.ndarray,
    shape: tuple[int, int],
) -> np.ndarray:
    """Expected photons per pixel (float64, `shape` = (H, W)) of pixel-integrated Gaussians.

    Each emitter contributes `photons` spread over the pixels by its own (σx, σy); light
    falling outside the image is lost, as on a real sensor.
    """
    height, width = shape
    weights_y = pixel_integrals(y_px, sigma_y_px, height) * np.asarray(photons, np.float64)[:, None]
    weights_x = pixel_integrals(x_px, sigma_x_px, width)
    return weights_y.T @ weights_x


@dataclass(frozen=True)
class AstigmaticCalibration(Config):
    """Astigmatic PSF widths versus z, the standard calibration curve (Huang et al. 2008).

    σ(z) = σ0·sqrt(1 + u² + A·u³ + B·u⁴) with u = (z − c)/d, separately for x and y.
    A cylindrical lens puts the x and y foci on opposite sides of the focal plane:
    σx is smallest at z = c_x = +250 nm, σy at z = c_y = −250 nm, and they are equal at
    z = 0. σ0 = 120 nm is 1.2 px at 100 nm pixels (a high-NA objective at ~670 nm);
    d = 400 nm is the depth over which the width grows by sqrt(2). A and B default to 0;
    set them from a bead calibration for a real microscope.
    """

    sigma0_x_nm: float = 120.0
    sigma0_y_nm: float = 120.0
    focus_x_nm: float = 250.0
    focus_y_nm: float = -250.0
    depth_x_nm: float = 400.0
    depth_y_nm: float = 400.0
    a_x: float = 0.0
    b_x: float = 0.0
    a_y: float = 0.0
    b_y: float = 0.0

    def __post_init__(self) -> None:
        for name in ("sigma0_x_nm", "sigma0_y_nm", "depth_x_nm", "depth_y_nm"):
            check(getattr(self, name) > 0, f"AstigmaticCalibration.{name} must be > 0")
        for name in ("focus_x_nm", "focus_y_nm", "a_x", "b_x", "a_y", "b_y"):
            check(np.isfinite(getattr(self, name)), f"AstigmaticCalibration.{name} must be finite")

    def sigma_xy_nm(self, z_nm: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """PSF standard deviations (σx, σy) in nm at axial positions `z_nm` (nm)."""
        z = np.asarray(z_nm, dtype=np.float64)
        sx = _width(z, self.sigma0_x_nm, self.focus_x_nm, self.depth_x_nm, self.a_x, self.b_x)
        sy = _width(z, self.sigma0_y_nm, self.focus_y_nm, self.depth_y_nm, self.a_y, self.b_y)
        return sx, sy


def _width(z: np.ndarray, sigma0: float, c: float, d: float, a: float, b: float) -> np.ndarray:
    u = (z - c) / d
    arg = 1.0 + u**2 + a * u**3 + b * u**4
    if np.any(arg <= 0):
        raise InvalidInput(
            f"astigmatic calibration (A={a}, B={b}) gives no real width at some z in "
            f"[{float(z.min()):.0f}, {float(z.max()):.0f}] nm; restrict the z range"
        )
    return sigma0 * np.sqrt(arg)
