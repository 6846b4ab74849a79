"""Spot detection: candidate emitters in camera frames, and their regions of interest.

Each frame (in photons) is band-pass filtered by a difference of Gaussians, σ1 = the
PSF width and σ2 = `BACKGROUND_SCALE`·σ1, which removes a smooth background and
smooths the shot noise. Candidates are the local maxima of the filtered frame above
`threshold` times its noise level (a robust standard deviation, 1.4826·MAD, per frame)
that lie at least `roi_size // 2` pixels from the border, so the full ROI around them is
inside the frame. Everything is vectorised over the stack; no loop per spot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from pointillist.core.errors import InvalidInput

BACKGROUND_SCALE = 2.5
MAD_TO_SD = 1.4826


@dataclass(frozen=True)
class Spots:
    """Candidates of a stack: `frame` (index into the stack), `row`, `col` (the pixel of
    the maximum) and `rois` (n_spots, roi, roi) float32 cut around them; the ROI of spot
    k covers rows row[k] − roi//2 ... and columns col[k] − roi//2 ... of its frame."""

    frame: np.ndarray
    row: np.ndarray
    col: np.ndarray
    rois: np.ndarray

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def top_left(self) -> tuple[np.ndarray, np.ndarray]:
        """(row0, col0) of each ROI in frame pixels."""
        half = self.rois.shape[-1] // 2
        return self.row - half, self.col - half


def filter_frames(frames_photons: np.ndarray, sigma_px: float) -> np.ndarray:
    """Difference-of-Gaussians band pass of each frame of (n, H, W), float32."""
    frames = np.asarray(frames_photons, dtype=np.float32)
    narrow = ndimage.gaussian_filter(frames, (0, sigma_px, sigma_px), mode="nearest")
    wide = ndimage.gaussian_filter(
        frames, (0, BACKGROUND_SCALE * sigma_px, BACKGROUND_SCALE * sigma_px), mode="nearest"
    )
    return narrow - wide


def detect_spots(
    frames_photons: np.ndarray,
    *,
    sigma_px: float = 1.2,
    threshold: float = 5.0,
    roi_size: int = 7,
    min_distance_px: int = 2,
) -> Spots:
    """Candidate spots in frames (n, H, W) of photons (see module doc).

    sigma_px: PSF σ in pixels (the filter scale). threshold: in units of the filtered
    frame's noise sd. roi_size: odd ROI side in pixels. min_distance_px: two maxima
    closer than this (Chebyshev distance) are one candidate (the larger).
    """
    frames = np.asarray(frames_photons)
    if frames.ndim != 3:
        raise InvalidInput(f"frames must be (n, H, W), got shape {frames.shape}")
    if roi_size < 3 or roi_size % 2 == 0:
        raise InvalidInput(f"roi_size must be an odd number >= 3, got {roi_size}")
    if not sigma_px > 0 or not threshold > 0 or min_distance_px < 1:
        raise InvalidInput("sigma_px and threshold must be > 0 and min_distance_px >= 1")
    half = roi_size // 2
    n, height, width = frames.shape
    if height < roi_size or width < roi_size or n == 0:
        return _empty(roi_size)
    if not np.all(np.isfinite(frames)):
        raise InvalidInput("frames contain non-finite values")
    filtered = filter_frames(frames, sigma_px)
    center = np.median(filtered, axis=(1, 2), keepdims=True)
    noise = MAD_TO_SD * np.median(np.abs(filtered - center), axis=(1, 2), keepdims=True)
    size = (1, 2 * min_distance_px + 1, 2 * min_distance_px + 1)
    peaks = (filtered == ndimage.maximum_filter(filtered, size=size, mode="nearest")) & (
        filtered > center + threshold * np.maximum(noise, np.finfo(np.float32).tiny)
    )
    peaks[:, :half] = peaks[:, height - half :] = False
    peaks[:, :, :half] = peaks[:, :, width - half :] = False
    frame, row, col = np.nonzero(peaks)
    rois = extract_rois(frames, frame, row - half, col - half, roi_size)
    return Spots(frame=frame, row=row, col=col, rois=rois)


def extract_rois(
    frames: np.ndarray, frame: np.ndarray, row0: np.ndarray, col0: np.ndarray, roi_size: int
) -> np.ndarray:
    """ROIs (n, roi, roi) float32 with top-left pixels (row0, col0) of `frames[frame]`,
    by one fancy-indexing gather; a 2-D `frames` (H, W) is shared by all spots."""
    offsets = np.arange(roi_size)
    rows = np.asarray(row0)[:, None, None] + offsets[None, :, None]
    cols = np.asarray(col0)[:, None, None] + offsets[None, None, :]
    arr = np.asarray(frames)
    if arr.ndim == 2:
        return arr[rows, cols].astype(np.float32)
    return arr[np.asarray(frame)[:, None, None], rows, cols].astype(np.float32)


def _empty(roi_size: int) -> Spots:
    none = np.zeros(0, dtype=np.int64)
    return Spots(none, none, none, np.zeros((0, roi_size, roi_size), np.float32))
