"""Blinking statistics: on/off times, duty cycle, frame integration, bleaching, brightness."""

from __future__ import annotations

import numpy as np
import pytest

from pointillist.core.errors import InvalidInput
from pointillist.simulator.photophysics import (
    BlinkingConfig,
    draw_brightness,
    frames_of_intervals,
    on_intervals,
    simulate_blinking,
)


def test_on_and_off_times_are_exponential_with_the_configured_means() -> None:
    cfg = BlinkingConfig(t_on_frames=4.0, t_off_frames=40.0)
    n_frames = 1000
    ev = on_intervals(3000, n_frames, cfg, 0)
    inside = ev.start < n_frames - 60  # not cut by the end of the acquisition
    durations = (ev.end - ev.start)[inside]
    assert durations.mean() == pytest.approx(4.0, rel=0.03)
    # Exponential: the standard deviation equals the mean.
    assert durations.std() == pytest.approx(4.0, rel=0.05)
    order = np.lexsort((ev.start, ev.emitter))
    em, start, end = ev.emitter[order], ev.start[order], ev.end[order]
    # Gaps that began well before the end, so long ones are not cut off (no censoring).
    early = end[:-1] < n_frames - 500
    gaps = (start[1:] - end[:-1])[early & (em[1:] == em[:-1])]
    assert gaps.mean() == pytest.approx(40.0, rel=0.03)


def test_equilibrium_duty_cycle_and_frame_integration() -> None:
    cfg = BlinkingConfig(t_on_frames=2.5, t_off_frames=100.0, photons=1000.0)
    n, n_frames = 4000, 400
    ev = on_intervals(n, n_frames, cfg, 1)
    trace = frames_of_intervals(ev, np.full(n, cfg.photons), 0, n_frames)
    # Light is conserved: the on-fractions add up to the continuous on-time, per emitter.
    per_emitter_time = np.bincount(ev.emitter, weights=ev.end - ev.start, minlength=n)
    per_emitter_frames = np.bincount(trace.emitter, weights=trace.on_fraction, minlength=n)
    np.testing.assert_allclose(per_emitter_frames, per_emitter_time, atol=1e-9)
    assert np.all((trace.on_fraction > 0) & (trace.on_fraction <= 1 + 1e-12))
    np.testing.assert_allclose(trace.photons, cfg.photons * trace.on_fraction)
    # Stationary from frame 0: mean on-time per frame = duty cycle.
    on_per_frame = np.bincount(trace.frame, weights=trace.on_fraction, minlength=n_frames) / n
    assert on_per_frame[:50].mean() == pytest.approx(cfg.duty_cycle, rel=0.05)
    assert on_per_frame.mean() == pytest.approx(cfg.duty_cycle, rel=0.03)
    # An event of length d starting at a uniform phase touches 1 + d frames on average.
    assert len(trace.frame) / len(ev.start) == pytest.approx(1 + cfg.t_on_frames, rel=0.03)
    assert np.all(np.diff(trace.frame) >= 0)


def test_wall_clock_bleaching_decays_the_active_population_exponentially() -> None:
    cfg = BlinkingConfig(t_on_frames=2.0, t_off_frames=8.0, bleach_lifetime_frames=50.0)
    n, n_frames = 20000, 150
    trace = simulate_blinking(n, n_frames, cfg, 2)
    on = np.bincount(trace.frame, weights=trace.on_fraction, minlength=n_frames)
    slope, intercept = np.polyfit(np.arange(n_frames) + 0.5, np.log(on), 1)
    assert -1 / slope == pytest.approx(50.0, rel=0.05)
    # P(on at t) = duty · exp(-t / τ): the intercept is the unbleached duty cycle.
    assert np.exp(intercept) / n == pytest.approx(cfg.duty_cycle, rel=0.05)


def test_per_event_bleaching_gives_geometric_event_counts() -> None:
    cfg = BlinkingConfig(t_on_frames=1.0, t_off_frames=5.0, bleach_probability=0.2)
    n = 20000
    ev = on_intervals(n, 10000, cfg, 3)
    events = np.bincount(ev.emitter, minlength=n)
    assert events.min() >= 1  # every emitter switches on at least once before bleaching
    assert events.mean() == pytest.approx(1 / 0.2, rel=0.03)
    assert ev.end.max() < 1000  # all bleached long before the end


def test_brightness_distribution_and_reproducibility() -> None:
    cfg = BlinkingConfig(photons=1500.0, photons_sd=300.0)
    b = draw_brightness(50000, cfg, 4)
    assert b.mean() == pytest.approx(1500.0, rel=0.01)
    assert b.std() == pytest.approx(300.0, rel=0.03)
    assert np.all(b > 0)
    a1, a2 = simulate_blinking(100, 200, cfg, 5), simulate_blinking(100, 200, cfg, 5)
    np.testing.assert_array_equal(a1.photons, a2.photons)
    np.testing.assert_array_equal(a1.frame, a2.frame)


def test_invalid_blinking_parameters() -> None:
    with pytest.raises(InvalidInput, match="t_on_frames"):
        BlinkingConfig(t_on_frames=0.0)
    with pytest.raises(InvalidInput, match="bleach_probability"):
        BlinkingConfig.from_params({"bleach_probability": 2})
    with pytest.raises(InvalidInput, match="t_on_ms"):
        BlinkingConfig.from_params({"t_on_ms": 2})
