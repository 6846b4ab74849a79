"""Camera frames of blinking emitters with their ground truth, streamed in chunks.

Pipeline: emitter positions (`emitters`) -> blinking in continuous time integrated over
each exposure (`photophysics`) -> pixel-integrated PSF, in focus or astigmatic
(`psf`) -> + uniform background -> camera noise and ADC (`camera`).

Coordinate convention: x is the column axis, y the row axis; pixel (row i, column j)
covers x in [j, j+1)·pixel_size_nm and y in [i, i+1)·pixel_size_nm, so the centre of
the top-left pixel is at (pixel_size_nm/2, pixel_size_nm/2) and an emitter at
x = 0 nm sits on the image's left edge. z is nm from the focal plane.

Reproducibility: the structure and blinking come from one child of the seed, the noise
of frame f from its own child (f), so a seed gives the same frames whatever the chunk
size, and a chunk can be regenerated on its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from pointillist.core.table import LocalizationTable
from pointillist.simulator.camera import Camera, PixelMaps, expose
from pointillist.simulator.emitters import EmitterConfig, sample_emitters
from pointillist.simulator.params import (
    Config,
    Seed,
    check,
    check_choice,
    child_sequence,
    seed_sequence,
)
from pointillist.simulator.photophysics import (
    BlinkingConfig,
    OnIntervals,
    draw_brightness,
    frames_of_intervals,
    on_intervals,
)
from pointillist.simulator.psf import AstigmaticCalibration, render_gaussians

PSF_KINDS = ("gaussian", "astigmatic")


@dataclass(frozen=True)
class FrameSimConfig(Config):
    """A simulated acquisition. Defaults: 100 frames of 64×64 px at 100 nm, EMCCD,
    2D in-focus Gaussian PSF (σ = 120 nm), 50 background photons per pixel per frame,
    CSR fluorophores at 50 per µm² blinking with a 1% duty cycle (~20 on per frame).

    psf: 'gaussian' (σ = psf_sigma_nm, z ignored) or 'astigmatic' (σx, σy from z via
    `astigmatism`; set `emitters.z_range_nm`). chunk_frames: frames per streamed chunk.
    """

    n_frames: int = 100
    height_px: int = 64
    width_px: int = 64
    chunk_frames: int = 50
    background_photons: float = 50.0
    psf: str = "gaussian"
    psf_sigma_nm: float = 120.0
    astigmatism: AstigmaticCalibration = field(default_factory=AstigmaticCalibration)
    emitters: EmitterConfig = field(default_factory=EmitterConfig)
    blinking: BlinkingConfig = field(default_factory=BlinkingConfig)
    camera: Camera = field(default_factory=Camera)

    def __post_init__(self) -> None:
        check(self.n_frames >= 0, "FrameSimConfig.n_frames must be >= 0")
        check(self.height_px >= 1 and self.width_px >= 1, "FrameSimConfig frame size must be >= 1")
        check(self.chunk_frames >= 1, "FrameSimConfig.chunk_frames must be >= 1")
        check(
            0 <= self.background_photons < np.inf, "FrameSimConfig.background_photons must be >= 0"
        )
        check_choice("FrameSimConfig.psf", self.psf, PSF_KINDS)
        check(0 < self.psf_sigma_nm < np.inf, "FrameSimConfig.psf_sigma_nm must be > 0")

    @property
    def fov_nm(self) -> tuple[float, float]:
        """(width, height) of the field in nm."""
        size = self.camera.pixel_size_nm
        return (self.width_px * size, self.height_px * size)

    def psf_sigma_xy_nm(self, z_nm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """PSF widths (σx, σy) in nm of emitters at `z_nm`."""
        z = np.asarray(z_nm, dtype=np.float64)
        if self.psf == "astigmatic":
            return self.astigmatism.sigma_xy_nm(z)
        sigma = np.full(z.shape, self.psf_sigma_nm)
        return sigma, sigma.copy()


@dataclass(frozen=True)
class FrameSimResult:
    """A whole acquisition: uint16 frames (n_frames, H, W), per-frame truth, the
    fluorophore positions (N, 3) nm and the camera that took it."""

    frames: np.ndarray
    truth: LocalizationTable
    emitters_nm: np.ndarray
    camera: Camera


@dataclass(frozen=True)
class _Acquisition:
    """Everything but the per-frame noise: positions, PSF widths, on-events."""

    positions: np.ndarray
    sigma_x: np.ndarray
    sigma_y: np.ndarray
    brightness: np.ndarray
    events: OnIntervals


def _prepare(
    config: FrameSimConfig, root: np.random.SeedSequence, positions_nm: np.ndarray | None
) -> _Acquisition:
    rng = np.random.default_rng(child_sequence(root, 0))
    if positions_nm is None:
        positions = sample_emitters(config.emitters, config.fov_nm, rng)
    else:
        positions = np.asarray(positions_nm, dtype=np.float64)
        check(positions.ndim == 2 and positions.shape[1] == 3, "positions_nm must be (N, 3)")
        check(bool(np.all(np.isfinite(positions))), "positions_nm must be finite")
    sigma_x, sigma_y = config.psf_sigma_xy_nm(positions[:, 2])
    brightness = draw_brightness(len(positions), config.blinking, rng)
    events = on_intervals(len(positions), config.n_frames, config.blinking, rng)
    return _Acquisition(positions, sigma_x, sigma_y, brightness, events)


def _chunks(
    config: FrameSimConfig,
    root: np.random.SeedSequence,
    acq: _Acquisition,
    pixel_maps: PixelMaps | None,
) -> Iterator[tuple[np.ndarray, LocalizationTable]]:
    events, pos = acq.events, acq.positions
    longest = float(np.max(events.end - events.start, initial=0.0))
    pixel = config.camera.pixel_size_nm
    shape = (config.height_px, config.width_px)
    for first in range(0, config.n_frames, config.chunk_frames):
        stop = min(first + config.chunk_frames, config.n_frames)
        lo, hi = np.searchsorted(events.start, [first - longest, stop])
        window = OnIntervals(events.emitter[lo:hi], events.start[lo:hi], events.end[lo:hi])
        trace = frames_of_intervals(window, acq.brightness, first, stop)
        em = trace.emitter
        truth = LocalizationTable(
            {
                "x": pos[em, 0],
                "y": pos[em, 1],
                "z": pos[em, 2],
                "photons": trace.photons,
                "background": np.full(len(em), config.background_photons),
                "sigma_x": acq.sigma_x[em],
                "sigma_y": acq.sigma_y[em],
                "frame": trace.frame,
                "emitter": em.astype(np.int32),
            }
        )
        frames = np.empty((stop - first, *shape), dtype=np.uint16)
        bounds = np.searchsorted(trace.frame, np.arange(first, stop + 1))
        for k in range(stop - first):
            rows = slice(bounds[k], bounds[k + 1])
            idx = em[rows]
            expected = render_gaussians(
                pos[idx, 0] / pixel,
                pos[idx, 1] / pixel,
                acq.sigma_x[idx] / pixel,
                acq.sigma_y[idx] / pixel,
                trace.photons[rows],
                shape,
            )
            noise = np.random.default_rng(child_sequence(root, 1, first + k))
            frames[k] = expose(
                expected + config.background_photons, config.camera, noise, pixel_maps
            )
        yield frames, truth


def iter_frames(
    config: FrameSimConfig,
    seed: Seed,
    *,
    positions_nm: np.ndarray | None = None,
    pixel_maps: PixelMaps | None = None,
) -> Iterator[tuple[np.ndarray, LocalizationTable]]:
    """Stream the acquisition as (frames, truth) chunks of up to `chunk_frames` frames.

    frames: uint16 (n, H, W). truth: one row per emitter on in a frame, with x, y, z
    (nm, see module docstring), photons (expected signal photons of that frame),
    background (photons per pixel), sigma_x, sigma_y (PSF nm), frame (absolute index)
    and emitter (index into the positions); emitters just outside the field whose light
    spills in (filament ends) are included. `positions_nm` (N, 3) replaces the sampled
    emitters; `pixel_maps` gives per-pixel sCMOS calibration. Memory holds one chunk
    plus the on-events of the whole acquisition, never all frames.
    """
    root = seed_sequence(seed)
    yield from _chunks(config, root, _prepare(config, root, positions_nm), pixel_maps)


def simulate_frames(
    config: FrameSimConfig,
    seed: Seed,
    *,
    positions_nm: np.ndarray | None = None,
    pixel_maps: PixelMaps | None = None,
) -> FrameSimResult:
    """The whole acquisition at once; the same frames and truth as `iter_frames`."""
    root = seed_sequence(seed)
    acq = _prepare(config, root, positions_nm)
    chunks = list(_chunks(config, root, acq, pixel_maps))
    empty = np.zeros((0, config.height_px, config.width_px), np.uint16)
    return FrameSimResult(
        frames=np.concatenate([c[0] for c in chunks]) if chunks else empty,
        truth=LocalizationTable.concat(c[1] for c in chunks),
        emitters_nm=acq.positions,
        camera=config.camera,
    )
