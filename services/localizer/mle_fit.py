"""Classical localization: detection + batched maximum-likelihood fit + Cramér–Rao bounds.

The fit maximises the Poisson log-likelihood of a pixel-integrated Gaussian
(`psf_model`) on each ROI, in effective Poisson counts (see `calibration`), with the
read-noise variance v of each pixel added to data and model (Huang et al. 2013):
log L = Σ (d + v)·log(μ + v) − (μ + v). It is Levenberg–Marquardt with Fisher scoring,
H = Jᵀ diag(1/(μ+v)) J (the Fisher information) and gradient Jᵀ((d+v)/(μ+v) − 1),
run on all spots at once as (n, p) arrays: a spot leaves the active set when its Newton
decrement gᵀH⁻¹g (≈ twice the log-likelihood still to gain) falls below `tolerance`.
The Cramér–Rao lower bounds are sqrt(diag(H⁻¹)) at the estimate.

Astigmatic 3D starts z from the best of a grid over `z_range_nm`, which avoids the
wrong side of focus.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pointillist.core.errors import InvalidInput
from pointillist.core.table import LocalizationTable
from pointillist.localizer.calibration import CameraCalibration
from pointillist.localizer.detection import detect_spots, extract_rois
from pointillist.localizer.psf_model import AstigmaticPSF, GaussianPSF
from pointillist.simulator.psf import AstigmaticCalibration

PSFModel = GaussianPSF | AstigmaticPSF

MIN_PHOTONS = 1.0
MIN_BACKGROUND = 1e-3
SIGMA_LIMITS_PX = (0.3, 5.0)
Z_GRID_STEPS = 13


@dataclass(frozen=True)
class RoiFit:
    """Fit of n ROIs, in ROI pixels and effective counts.

    params (n, p) in the layout of the PSF model (`psf_model` doc); crlb (n, p) their
    Cramér–Rao bounds; sigma_x_px, sigma_y_px the PSF widths at the estimate; loglik the
    final log-likelihood; converged: the Newton decrement fell below the tolerance;
    valid: converged, finite, inside the ROI and off the parameter limits.
    """

    params: np.ndarray
    crlb: np.ndarray
    sigma_x_px: np.ndarray
    sigma_y_px: np.ndarray
    loglik: np.ndarray
    converged: np.ndarray
    valid: np.ndarray


def fit_rois(
    rois_counts: np.ndarray,
    psf: PSFModel,
    *,
    read_variance_counts2: np.ndarray | float = 0.0,
    max_iterations: int = 50,
    tolerance: float = 1e-6,
    z_range_nm: tuple[float, float] = (-600.0, 600.0),
) -> RoiFit:
    """Maximum-likelihood fit of one emitter per ROI, all ROIs at once.

    rois_counts: (n, R, R) effective Poisson counts. read_variance_counts2: scalar or
    per pixel, broadcastable to (n, R, R), in counts². z_range_nm bounds z (3D only).
    """
    data = np.asarray(rois_counts, dtype=np.float64)
    if data.ndim != 3 or data.shape[1] != data.shape[2]:
        raise InvalidInput(f"ROIs must be (n, R, R), got shape {data.shape}")
    n, roi, _ = data.shape
    var = np.broadcast_to(np.asarray(read_variance_counts2, dtype=np.float64), data.shape)
    data_v = np.maximum(data + var, 0.0)
    lower, upper = _bounds(psf, roi, z_range_nm)
    params = np.clip(_initial(data, psf, var, z_range_nm), lower, upper)
    mu, jac = psf.model(params, roi)
    loglik = _loglik(data_v, mu + var)
    grad, hess = _grad_hess(data_v, mu + var, jac)
    damping = np.full(n, 1e-3)
    converged = np.zeros(n, dtype=bool)
    eye = np.eye(psf.n_params)
    active = np.arange(n)
    for _ in range(max_iterations):
        dec = _newton_decrement(grad[active], hess[active])
        done = dec < tolerance
        converged[active[done]] = True
        active = active[~done]
        if len(active) == 0:
            break
        h = hess[active]
        scaled = h + damping[active, None, None] * (h * eye)
        step = _solve(scaled, grad[active])
        trial = np.clip(params[active] + step, lower, upper)
        mu_t, jac_t = psf.model(trial, roi)
        ll_t = _loglik(data_v[active], mu_t + var[active])
        better = ll_t >= loglik[active]
        good = active[better]
        params[good] = trial[better]
        loglik[good] = ll_t[better]
        grad[good], hess[good] = _grad_hess(data_v[good], mu_t[better] + var[good], jac_t[better])
        damping[good] = np.maximum(damping[good] / 10.0, 1e-7)
        bad = active[~better]
        damping[bad] = damping[bad] * 10.0
        # A spot whose damping has exploded cannot improve any more: it is at its optimum
        # to machine precision (or stuck on a bound, which `valid` rejects).
        stalled = damping[active] > 1e6
        converged[active[stalled]] = True
        active = active[~stalled]
        if len(active) == 0:
            break
    crlb = np.sqrt(np.diagonal(_inverse(hess), axis1=1, axis2=2))
    sx, sy = psf.sigmas(params)
    inside = np.all((params[:, :2] >= 0) & (params[:, :2] <= roi), axis=1)
    # On a limit means the optimum lies outside it: N, b at their floors, σ or z at an end.
    width = np.where(np.isfinite(upper - lower), upper - lower, 1.0)
    margin = 1e-6 * width
    off_bounds = np.all(params[:, 2:] > lower[2:] + margin[2:], axis=1) & np.all(
        params[:, 4:] < upper[4:] - margin[4:], axis=1
    )
    finite = np.all(np.isfinite(params), axis=1) & np.all(np.isfinite(crlb), axis=1)
    valid = converged & inside & off_bounds & finite
    return RoiFit(params, crlb, sx, sy, loglik, converged, valid)


def cramer_rao_bound(
    psf: PSFModel,
    params: np.ndarray,
    roi: int,
    *,
    read_variance_counts2: np.ndarray | float = 0.0,
) -> np.ndarray:
    """Cramér–Rao lower bounds (n, p) of the parameters `params` (n, p) of spots in R×R
    ROIs: sqrt(diag(I⁻¹)), I = Jᵀ diag(1/(μ+v)) J, in the units of the parameters."""
    params = np.asarray(params, dtype=np.float64)
    mu, jac = psf.model(params, roi)
    model_v = mu + np.broadcast_to(np.asarray(read_variance_counts2, np.float64), mu.shape)
    _, fisher = _grad_hess(model_v, model_v, jac)
    return np.sqrt(np.diagonal(_inverse(fisher), axis1=1, axis2=2))


class MLEFitter:
    """Classical localizer: spot detection then a batched MLE fit with CRLB uncertainties.

    roi_size: odd ROI side (px); None = 7 for 2D, 11 for astigmatic 3D (wide PSFs off
    focus). threshold: detection threshold in noise sd (see
    `detection`). psf_sigma_nm: Gaussian PSF σ (2D; the initial value if fit_sigma).
    astigmatism: an `AstigmaticCalibration` for astigmatic 3D (then psf_sigma_nm and
    fit_sigma are unused). max_iterations, tolerance: of the LM loop. z_range_nm: the
    z search range (3D).
    """

    def __init__(
        self,
        *,
        roi_size: int | None = None,
        threshold: float = 5.0,
        psf_sigma_nm: float = 120.0,
        fit_sigma: bool = False,
        astigmatism: AstigmaticCalibration | None = None,
        max_iterations: int = 50,
        tolerance: float = 1e-6,
        z_range_nm: tuple[float, float] = (-600.0, 600.0),
    ) -> None:
        self.roi_size = roi_size
        self.threshold = threshold
        self.psf_sigma_nm = psf_sigma_nm
        self.fit_sigma = fit_sigma
        self.astigmatism = astigmatism
        self.max_iterations = max_iterations
        self.tolerance = tolerance
        self.z_range_nm = z_range_nm

    def psf_model(self, pixel_size_nm: float) -> PSFModel:
        """The PSF model at this pixel size."""
        if self.astigmatism is not None:
            return AstigmaticPSF(self.astigmatism, pixel_size_nm)
        if not self.psf_sigma_nm > 0:
            raise InvalidInput(f"psf_sigma_nm must be > 0, got {self.psf_sigma_nm}")
        return GaussianPSF(self.psf_sigma_nm / pixel_size_nm, self.fit_sigma)

    def localize(
        self,
        frames_photons: np.ndarray,
        calibration: CameraCalibration,
        first_frame: int = 0,
    ) -> LocalizationTable:
        """Localizations (nm) of frames (n, H, W) in photons (`calibration.photons`).

        Columns: x, y, [z], photons, background (photons/px), sigma_x, sigma_y (nm),
        uncertainty (lateral CRLB, sqrt of the mean of the x and y variances, nm),
        frame (first_frame + index), crlb_x, crlb_y, [crlb_z] (nm), crlb_photons.
        Fits that did not converge or left their ROI are dropped.
        """
        frames = np.asarray(frames_photons)
        if frames.ndim != 3:
            raise InvalidInput(f"frames must be (n, H, W), got shape {frames.shape}")
        calibration.check_frame_shape(frames.shape)
        pixel = calibration.pixel_size_nm
        psf = self.psf_model(pixel)
        roi = self.roi_size or (11 if self.astigmatism is not None else 7)
        spots = detect_spots(
            frames,
            sigma_px=psf.detection_sigma_px,
            threshold=self.threshold,
            roi_size=roi,
        )
        scale = calibration.counts_per_photon
        var_photons = calibration.read_variance_photons2()
        row0, col0 = spots.top_left
        if var_photons.ndim == 2:
            var_photons = extract_rois(var_photons, spots.frame, row0, col0, roi)
        fit = fit_rois(
            spots.rois * scale,
            psf,
            read_variance_counts2=var_photons * scale**2,
            max_iterations=self.max_iterations,
            tolerance=self.tolerance,
            z_range_nm=self.z_range_nm,
        )
        keep = fit.valid
        p, c = fit.params[keep], fit.crlb[keep]
        crlb_x, crlb_y = c[:, 0] * pixel, c[:, 1] * pixel
        columns = {
            "x": (col0[keep] + p[:, 0]) * pixel,
            "y": (row0[keep] + p[:, 1]) * pixel,
        }
        if self.astigmatism is not None:
            columns["z"] = p[:, 4]
        columns |= {
            "photons": p[:, 2] / scale,
            "background": p[:, 3] / scale,
            "sigma_x": fit.sigma_x_px[keep] * pixel,
            "sigma_y": fit.sigma_y_px[keep] * pixel,
            "uncertainty": np.sqrt(0.5 * (crlb_x**2 + crlb_y**2)),
            "frame": first_frame + spots.frame[keep],
            "crlb_x": crlb_x,
            "crlb_y": crlb_y,
        }
        if self.astigmatism is not None:
            columns["crlb_z"] = c[:, 4]
        columns["crlb_photons"] = c[:, 2] / scale
        dtypes = {"frame": np.int32}
        return LocalizationTable(
            {k: np.asarray(v, dtype=dtypes.get(k, np.float32)) for k, v in columns.items()}
        )


def localize_mle(
    frames_photons: np.ndarray,
    calibration: CameraCalibration,
    first_frame: int = 0,
    **hyperparameters: object,
) -> LocalizationTable:
    """One-shot twin of `MLEFitter(**hyperparameters).localize(...)`."""
    return MLEFitter(**hyperparameters).localize(frames_photons, calibration, first_frame)


def _bounds(
    psf: PSFModel, roi: int, z_range_nm: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Box limits of the parameters: positions within half an ROI of it, N, b > 0."""
    lower = [-0.5 * roi, -0.5 * roi, MIN_PHOTONS, MIN_BACKGROUND]
    upper = [1.5 * roi, 1.5 * roi, np.inf, np.inf]
    if isinstance(psf, AstigmaticPSF):
        if not z_range_nm[0] < z_range_nm[1]:
            raise InvalidInput(f"z_range_nm must be (min, max) with min < max, got {z_range_nm}")
        lower.append(z_range_nm[0])
        upper.append(z_range_nm[1])
    elif psf.fit_sigma:
        lower.append(SIGMA_LIMITS_PX[0])
        upper.append(SIGMA_LIMITS_PX[1])
    return np.array(lower), np.array(upper)


def _initial(
    data: np.ndarray, psf: PSFModel, var: np.ndarray, z_range_nm: tuple[float, float]
) -> np.ndarray:
    """Starting values: background = median of the ROI border, N = the sum above it,
    x, y = the centroid above it; σ = the nominal σ; z = the best of a grid."""
    n, roi, _ = data.shape
    border = np.concatenate(
        [data[:, 0, :], data[:, -1, :], data[:, 1:-1, 0], data[:, 1:-1, -1]], axis=1
    )
    background = np.maximum(np.median(border, axis=1), MIN_BACKGROUND)
    signal = np.maximum(data - background[:, None, None], 0.0)
    total = signal.sum(axis=(1, 2))
    centers = np.arange(roi) + 0.5
    safe = np.maximum(total, 1e-12)
    x = np.where(total > 0, (signal.sum(axis=1) @ centers) / safe, 0.5 * roi)
    y = np.where(total > 0, (signal.sum(axis=2) @ centers) / safe, 0.5 * roi)
    photons = np.maximum(total, MIN_PHOTONS)
    columns = [x, y, photons, background]
    if isinstance(psf, GaussianPSF):
        if psf.fit_sigma:
            columns.append(np.full(n, psf.sigma_px))
        return np.stack(columns, axis=1)
    grid = np.linspace(z_range_nm[0], z_range_nm[1], Z_GRID_STEPS)
    trial = np.repeat(np.stack([*columns, np.zeros(n)], axis=1)[:, None, :], len(grid), axis=1)
    trial[:, :, 4] = grid[None, :]
    mu = psf.expected(trial.reshape(-1, 5), roi).reshape(n, len(grid), roi, roi)
    ll = _loglik(np.maximum(data + var, 0.0)[:, None], mu + var[:, None])
    best = np.argmax(ll, axis=1)
    return trial[np.arange(n), best]


def _loglik(data_v: np.ndarray, model_v: np.ndarray) -> np.ndarray:
    """Poisson log-likelihood per ROI, without the data-only term log(d!)."""
    return np.sum(data_v * np.log(model_v) - model_v, axis=(-2, -1))


def _grad_hess(
    data_v: np.ndarray, model_v: np.ndarray, jac: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Score Jᵀ(d/μ − 1) (n, p) and Fisher information Jᵀ diag(1/μ) J (n, p, p)."""
    n, roi, _, p = jac.shape
    j = jac.reshape(n, roi * roi, p)
    w = (1.0 / model_v).reshape(n, roi * roi, 1)
    residual = (data_v / model_v - 1.0).reshape(n, roi * roi)
    grad = np.matmul(residual[:, None, :], j)[:, 0, :]
    hess = np.matmul((j * w).transpose(0, 2, 1), j)
    return grad, hess


def _solve(matrix: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Batched solve; a singular system gives a zero step (the spot is then rejected)."""
    try:
        return np.linalg.solve(matrix, rhs[..., None])[..., 0]
    except np.linalg.LinAlgError:
        return np.nan_to_num(np.einsum("npq,nq->np", np.linalg.pinv(matrix), rhs))


def _inverse(matrix: np.ndarray) -> np.ndarray:
    try:
        return np.linalg.inv(matrix)
    except np.linalg.LinAlgError:
        return np.linalg.pinv(matrix)


def _newton_decrement(grad: np.ndarray, hess: np.ndarray) -> np.ndarray:
    return np.einsum("np,np->n", grad, _solve(hess, grad))
