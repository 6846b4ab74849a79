"""Training presets of the CNN localizer: what the frames look like and how big the net is.

A preset fixes the imaging model the network is trained for (pixel size, PSF, z range,
camera) and the distributions the on-the-fly simulator draws from (emitter density,
photons and background). Photons follow the paper's SNR levels (LUENN: 1000, 5000,
20000 photons over 10, 50, 200 background photons per pixel) as a continuous range:
log-uniform signal photons and a log-uniform signal-to-background ratio around 100.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pointillist.core.errors import InvalidInput
from pointillist.simulator.camera import Camera
from pointillist.simulator.psf import AstigmaticCalibration

SAMPLINGS = ("structure", "csr")


@dataclass(frozen=True)
class Preset:
    """Imaging model and training distributions of one CNN localizer.

    psf: 'gaussian' (σ drawn from psf_sigma_nm per sample, z = 0) or 'astigmatic'
    (σx, σy from `astigmatism` at z in z_range_nm). Photons are per emitter per fully-on
    frame; signal_to_background is photons / background-per-pixel. z_scale_nm maps the
    network's bounded z output (−1..1) to nm; photon_unit scales photons (relative to
    the window's mean pixel value) to O(1) for the network.
    """

    name: str
    psf: str
    pixel_size_nm: float = 100.0
    psf_sigma_nm: tuple[float, float] = (100.0, 140.0)
    astigmatism: AstigmaticCalibration = field(default_factory=AstigmaticCalibration)
    z_range_nm: tuple[float, float] = (0.0, 0.0)
    z_scale_nm: float = 1.0
    camera: Camera = field(default_factory=Camera)
    patch_px: int = 40
    density_per_um2: tuple[float, float] = (0.0, 3.0)
    photons: tuple[float, float] = (700.0, 25000.0)
    signal_to_background: tuple[float, float] = (25.0, 200.0)
    brightness_spread: float = 0.4
    n_frames: int = 3
    p_on: float = 0.5
    persistence: float = 0.6
    photon_unit: float = 100.0
    channels: int = 32

    @property
    def three_d(self) -> bool:
        """Whether the network estimates z."""
        return self.z_range_nm[0] != self.z_range_nm[1]


PRESETS: dict[str, Preset] = {
    "2d": Preset(name="2d", psf="gaussian"),
    "astig3d": Preset(
        name="astig3d", psf="astigmatic", z_range_nm=(-500.0, 500.0), z_scale_nm=600.0
    ),
}


def get_preset(name: str) -> Preset:
    """The preset called `name` ('2d' or 'astig3d')."""
    try:
        return PRESETS[name]
    except KeyError:
        raise InvalidInput(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}") from None
