"""Camera noise: expected photons per pixel -> uint16 counts (ADU), and back.

The chain, per pixel: photons (signal + background, Poisson) -> photoelectrons with
quantum efficiency QE (a Bernoulli thinning of a Poisson count is again Poisson, so
one Poisson draw of QE·photons) -> EMCCD multiplication register, modelled as
Gamma(shape=n_electrons, scale=gain) (excess noise factor 2 at high gain) -> Gaussian
read noise (electrons rms at the output amplifier) -> ADU = electrons / e_per_adu +
baseline -> rounded and clipped to the 16-bit range (saturation at 65535).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pointillist.simulator.params import Config, Seed, as_generator, check, check_choice

CAMERA_KINDS = ("emccd", "scmos", "ccd")
ADU_MAX = 65535


@dataclass(frozen=True)
class Camera(Config):
    """A camera; the fields are those of the proto `pointillist.v1.CameraModel`.

    Defaults are an EMCCD like an Andor iXon at EM gain 100: baseline 100 ADU,
    12 e-/ADU, QE 0.9, 74.4 e- read noise (at the output, after gain, i.e. < 1 e-
    referred to the input), 100 nm pixels in the sample plane. For an sCMOS use
    kind='scmos', em_gain=1, e.g. e_per_adu=0.5, read_noise_e=1.6, quantum_efficiency=0.8.
    """

    kind: str = "emccd"
    baseline_adu: float = 100.0
    e_per_adu: float = 12.0
    em_gain: float = 100.0
    quantum_efficiency: float = 0.9
    read_noise_e: float = 74.4
    pixel_size_nm: float = 100.0

    def __post_init__(self) -> None:
        check_choice("Camera.kind", self.kind, CAMERA_KINDS)
        check(0 <= self.baseline_adu < ADU_MAX, "Camera.baseline_adu must be in [0, 65535)")
        check(0 < self.e_per_adu < np.inf, "Camera.e_per_adu must be > 0")
        check(1 <= self.em_gain < np.inf, "Camera.em_gain must be >= 1")
        check(
            self.kind == "emccd" or self.em_gain == 1,
            f"Camera.em_gain must be 1 for a {self.kind} camera (only an EMCCD has EM gain)",
        )
        check(0 < self.quantum_efficiency <= 1, "Camera.quantum_efficiency must be in (0, 1]")
        check(0 <= self.read_noise_e < np.inf, "Camera.read_noise_e must be >= 0")
        check(0 < self.pixel_size_nm < np.inf, "Camera.pixel_size_nm must be > 0")

    def photons_from_adu(self, adu: np.ndarray | float) -> np.ndarray:
        """Mean inverse of the chain: photons = (adu − baseline)·e_per_adu / em_gain / QE."""
        adu = np.asarray(adu, dtype=np.float64)
        return (adu - self.baseline_adu) * self.e_per_adu / self.em_gain / self.quantum_efficiency

    def adu_from_photons(self, photons: np.ndarray | float) -> np.ndarray:
        """Mean ADU produced by `photons` expected photons (before rounding and clipping)."""
        gain = self.quantum_efficiency * self.em_gain / self.e_per_adu
        return self.baseline_adu + gain * np.asarray(photons, dtype=np.float64)


@dataclass(frozen=True)
class PixelMaps:
    """Per-pixel sCMOS calibration maps of shape (H, W); None = the camera's scalar value.

    offset_adu replaces baseline_adu, read_noise_e replaces read_noise_e, e_per_adu
    replaces e_per_adu, pixel by pixel (each sCMOS pixel has its own amplifier).
    """

    offset_adu: np.ndarray | None = None
    read_noise_e: np.ndarray | None = None
    e_per_adu: np.ndarray | None = None


def scmos_pixel_maps(
    camera: Camera,
    shape: tuple[int, int],
    seed: Seed,
    *,
    offset_sd_adu: float = 2.0,
    read_noise_log_sd: float = 0.4,
    gain_cv: float = 0.02,
) -> PixelMaps:
    """Random maps typical of an sCMOS: Gaussian offsets, log-normal read noise
    (median = camera.read_noise_e; a long tail of noisy pixels), Gaussian gain spread."""
    rng = as_generator(seed)
    return PixelMaps(
        offset_adu=camera.baseline_adu + offset_sd_adu * rng.standard_normal(shape),
        read_noise_e=camera.read_noise_e * np.exp(read_noise_log_sd * rng.standard_normal(shape)),
        e_per_adu=camera.e_per_adu * np.clip(1 + gain_cv * rng.standard_normal(shape), 0.5, 1.5),
    )


def expose(
    photons: np.ndarray, camera: Camera, seed: Seed, maps: PixelMaps | None = None
) -> np.ndarray:
    """Camera counts (uint16, same shape) for expected photons per pixel `photons`.

    `photons` holds the expected photons arriving at each pixel in one exposure, signal
    plus background, shape (..., H, W); all noise is drawn here.
    """
    rng = as_generator(seed)
    expected = np.asarray(photons, dtype=np.float64)
    check(bool(np.all(np.isfinite(expected))), "photons must be finite")
    check(bool(np.all(expected >= 0)), "photons must be >= 0")
    electrons = rng.poisson(camera.quantum_efficiency * expected).astype(np.float64)
    if camera.kind == "emccd":
        electrons = rng.gamma(electrons, camera.em_gain)
    maps = maps or PixelMaps()
    read_noise = camera.read_noise_e if maps.read_noise_e is None else maps.read_noise_e
    electrons += read_noise * rng.standard_normal(expected.shape)
    e_per_adu = camera.e_per_adu if maps.e_per_adu is None else maps.e_per_adu
    offset = camera.baseline_adu if maps.offset_adu is None else maps.offset_adu
    adu = np.rint(electrons / e_per_adu + offset)
    return np.clip(adu, 0, ADU_MAX).astype(np.uint16)
