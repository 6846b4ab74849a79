"""Blinking and bleaching: which emitters are on in each frame, and how bright.

Each fluorophore is a continuous-time two-state switch: on-times are exponential with
mean `t_on_frames`, off-times exponential with mean `t_off_frames` (times in units of
the frame period; the exposure is taken to fill the whole frame). It bleaches for good
either at an exponential wall-clock lifetime (`bleach_lifetime_frames`, cutting short
any on-time it falls in) or, with `bleach_probability`, at the end of an on-event. The
photons of a frame are the emitter's brightness (photons per fully-on frame) times the
fraction of the exposure it was on, so an event starting mid-frame is dim in its first
and last frames, as with a real camera.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pointillist.simulator.params import Config, Seed, as_generator, check


@dataclass(frozen=True)
class BlinkingConfig(Config):
    """Photophysics of the emitters (times in frames, intensities in photons).

    Defaults are dSTORM-like: 3-frame on-events, 1% duty cycle, 2000 photons per
    fully-on frame, no bleaching. Emitters start in the on/off equilibrium
    (on with probability t_on / (t_on + t_off)).
    """

    t_on_frames: float = 3.0
    t_off_frames: float = 300.0
    bleach_lifetime_frames: float = math.inf
    bleach_probability: float = 0.0
    photons: float = 2000.0
    photons_sd: float = 0.0

    def __post_init__(self) -> None:
        check(0 < self.t_on_frames < math.inf, "BlinkingConfig.t_on_frames must be > 0")
        check(0 < self.t_off_frames < math.inf, "BlinkingConfig.t_off_frames must be > 0")
        check(self.bleach_lifetime_frames > 0, "BlinkingConfig.bleach_lifetime_frames must be > 0")
        check(
            0 <= self.bleach_probability <= 1, "BlinkingConfig.bleach_probability must be in [0, 1]"
        )
        check(0 < self.photons < math.inf, "BlinkingConfig.photons must be > 0")
        check(0 <= self.photons_sd < math.inf, "BlinkingConfig.photons_sd must be >= 0")

    @property
    def duty_cycle(self) -> float:
        """Equilibrium fraction of time an unbleached emitter is on."""
        return self.t_on_frames / (self.t_on_frames + self.t_off_frames)


@dataclass(frozen=True)
class OnIntervals:
    """On-events in continuous time (frames): emitter i is on during [start, end)."""

    emitter: np.ndarray
    start: np.ndarray
    end: np.ndarray


@dataclass(frozen=True)
class BlinkTrace:
    """Per (emitter, frame) with the emitter on for part of the exposure, sorted by frame.

    on_fraction is the fraction of the frame it was on (0, 1]; photons the expected
    photons it emitted into the detection path in that frame.
    """

    emitter: np.ndarray
    frame: np.ndarray
    on_fraction: np.ndarray
    photons: np.ndarray


def on_intervals(n_emitters: int, n_frames: int, config: BlinkingConfig, seed: Seed) -> OnIntervals:
    """All on-events of `n_emitters` emitters within [0, n_frames), sorted by start.

    Vectorized over emitters; one loop iteration per on/off cycle.
    """
    check(n_emitters >= 0 and n_frames >= 0, "n_emitters and n_frames must be >= 0")
    rng = as_generator(seed)
    bleach_time = (
        rng.exponential(config.bleach_lifetime_frames, n_emitters)
        if math.isfinite(config.bleach_lifetime_frames)
        else np.full(n_emitters, math.inf)
    )
    stop = np.minimum(bleach_time, float(n_frames))
    starts_on = rng.random(n_emitters) < config.duty_cycle
    t = np.where(starts_on, 0.0, rng.exponential(config.t_off_frames, n_emitters))
    ids, starts, ends = [], [], []
    active = np.flatnonzero(t < stop)
    while active.size:
        start = t[active]
        on_end = start + rng.exponential(config.t_on_frames, active.size)
        ids.append(active)
        starts.append(start)
        ends.append(np.minimum(on_end, stop[active]))
        survives = rng.random(active.size) >= config.bleach_probability
        t[active] = on_end + rng.exponential(config.t_off_frames, active.size)
        active = active[survives & (t[active] < stop[active])]
    if not ids:
        empty = np.zeros(0)
        return OnIntervals(empty.astype(np.int64), empty, empty)
    emitter, start, end = np.concatenate(ids), np.concatenate(starts), np.concatenate(ends)
    order = np.argsort(start, kind="stable")
    return OnIntervals(emitter[order], start[order], end[order])


def frames_of_intervals(
    intervals: OnIntervals, brightness: np.ndarray, first_frame: int, stop_frame: int
) -> BlinkTrace:
    """The frames in [first_frame, stop_frame) touched by `intervals`, with on-fractions.

    `brightness` is photons per fully-on frame, per emitter. Two events of one emitter in
    the same frame merge into one record (one position, summed photons).
    """
    start = np.maximum(intervals.start, first_frame)
    end = np.minimum(intervals.end, stop_frame)
    keep = end > start
    start, end, emitter = start[keep], end[keep], intervals.emitter[keep]
    first = np.floor(start).astype(np.int64)
    last = np.ceil(end).astype(np.int64) - 1
    counts = last - first + 1
    row = np.repeat(np.arange(len(first)), counts)
    frame = first[row] + np.arange(len(row)) - np.repeat(np.cumsum(counts) - counts, counts)
    on_time = np.minimum(end[row], frame + 1) - np.maximum(start[row], frame)
    n_emitters = len(brightness)
    key, inverse = np.unique(frame * n_emitters + emitter[row], return_inverse=True)
    on_fraction = np.bincount(inverse, weights=on_time, minlength=len(key))
    emitter_out = key % max(n_emitters, 1)
    return BlinkTrace(
        emitter=emitter_out,
        frame=key // max(n_emitters, 1),
        on_fraction=on_fraction,
        photons=np.asarray(brightness, dtype=np.float64)[emitter_out] * on_fraction,
    )


def draw_brightness(n_emitters: int, config: BlinkingConfig, seed: Seed) -> np.ndarray:
    """Photons per fully-on frame per emitter: Gamma with mean `photons`, sd `photons_sd`."""
    if config.photons_sd == 0:
        return np.full(n_emitters, config.photons)
    shape = (config.photons / config.photons_sd) ** 2
    return as_generator(seed).gamma(shape, config.photons / shape, n_emitters)


def simulate_blinking(
    n_emitters: int, n_frames: int, config: BlinkingConfig, seed: Seed
) -> BlinkTrace:
    """Per-frame on-states and photons of `n_emitters` emitters over `n_frames` frames."""
    rng = as_generator(seed)
    brightness = draw_brightness(n_emitters, config, rng)
    return frames_of_intervals(
        on_intervals(n_emitters, n_frames, config, rng), brightness, 0, n_frames
    )
