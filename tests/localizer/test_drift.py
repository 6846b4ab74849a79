import numpy as np
import pytest

from pointillist.core.errors import InvalidInput
from pointillist.core.table import LocalizationTable
from pointillist.localizer.drift import _solve, correct_drift, estimate_drift
from pointillist.simulator.emitters import microtubules

N_FRAMES = 1000


def true_drift(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A smooth drift of tens of nm: a slow sway in x, a quadratic creep in y."""
    t = frame / N_FRAMES
    return 40.0 * np.sin(2 * np.pi * 0.8 * t) + 20.0 * t, -60.0 * t**2 + 15.0 * t


def drifting_localizations(seed: int, precision_nm: float = 10.0) -> LocalizationTable:
    rng = np.random.default_rng(seed)
    sites = microtubules(6, 4000, (10_000.0, 10_000.0), (0.0, 0.0), 12.0, 500.0, rng)
    per_frame = 25
    frame = np.repeat(np.arange(N_FRAMES), per_frame)
    site = rng.integers(0, len(sites), frame.size)
    dx, dy = true_drift(frame)
    x = sites[site, 0] + dx + rng.normal(0, precision_nm, frame.size)
    y = sites[site, 1] + dy + rng.normal(0, precision_nm, frame.size)
    return LocalizationTable({"x": x, "y": y, "frame": frame})


def centred(v: np.ndarray) -> np.ndarray:
    return v - v.mean()


def test_rcc_recovers_a_known_smooth_drift():
    table = drifting_localizations(0)
    drift = estimate_drift(table, segment_frames=100, pixel_size_nm=20.0)
    np.testing.assert_array_equal(drift.frame, np.arange(N_FRAMES))
    assert len(drift.segment_frame) == 10 and drift.n_pairs_used + drift.n_pairs_rejected == 45
    tx, ty = true_drift(drift.frame)
    err = np.hypot(drift.x_nm - centred(tx), drift.y_nm - centred(ty))
    assert np.sqrt(np.mean(err**2)) < 5.0
    assert abs(drift.x_nm.mean()) < 1e-9 and abs(drift.y_nm.mean()) < 1e-9

    corrected = correct_drift(table, drift)
    fx, fy = true_drift(np.asarray(table["frame"]))
    residual_after = np.hypot(
        centred(corrected["x"] - (table["x"] - fx)), centred(corrected["y"] - (table["y"] - fy))
    )
    assert np.sqrt(np.mean(residual_after**2)) < 5.0


def test_without_drift_the_estimate_stays_near_zero():
    rng = np.random.default_rng(1)
    sites = microtubules(5, 4000, (8_000.0, 8_000.0), (0.0, 0.0), 12.0, 500.0, rng)
    frame = np.repeat(np.arange(600), 20)
    site = rng.integers(0, len(sites), frame.size)
    table = LocalizationTable(
        {
            "x": sites[site, 0] + rng.normal(0, 10, frame.size),
            "y": sites[site, 1] + rng.normal(0, 10, frame.size),
            "frame": frame,
        }
    )
    drift = estimate_drift(table, segment_frames=150)
    assert np.max(np.hypot(drift.x_nm, drift.y_nm)) < 4.0


def test_short_last_segment_joins_the_previous_and_bad_arguments():
    table = drifting_localizations(2)
    drift = estimate_drift(table.select(np.asarray(table["frame"]) < 540), segment_frames=100)
    assert len(drift.segment_frame) == 5  # frames 500..539 are part of the fifth segment
    with pytest.raises(InvalidInput, match="two segments"):
        estimate_drift(table.select(np.asarray(table["frame"]) < 100), segment_frames=100)
    with pytest.raises(InvalidInput, match="segment_frames"):
        estimate_drift(table, segment_frames=0)
    with pytest.raises(InvalidInput, match="frame"):
        estimate_drift(LocalizationTable({"x": [0.0], "y": [0.0]}), segment_frames=10)
    with pytest.raises(InvalidInput, match="outside"):
        correct_drift(LocalizationTable({"x": [0.0], "y": [0.0], "frame": [5000]}), drift)


def test_rcc_rejects_outlier_pairs_but_keeps_segments_connected():
    rng = np.random.default_rng(4)
    n = 8
    truth = np.vstack([np.zeros((1, 2)), rng.normal(0, 3, (n - 1, 2))])
    pi, pj = np.triu_indices(n, k=1)
    shift = truth[pj] - truth[pi] + rng.normal(0, 0.05, (len(pi), 2))
    shift[5] += (4.0, -3.0)  # one wrong cross-correlation peak
    drift, kept = _solve(pi, pj, shift, n, max_residual=0.5)
    assert not kept[5] and kept.sum() == len(pi) - 1
    np.testing.assert_allclose(drift, truth, atol=0.1)
    # A grossly inconsistent triangle loses one pair, never two (that would cut a segment).
    tri_i, tri_j = np.array([0, 0, 1]), np.array([1, 2, 2])
    tri_shift = np.array([[1.0, 0.0], [2.0, 0.0], [9.0, 0.0]])
    drift, kept = _solve(tri_i, tri_j, tri_shift, 3, 0.01)
    assert kept.sum() == 2
    residual = drift[tri_j] - drift[tri_i] - tri_shift
    np.testing.assert_allclose(residual[kept], 0.0, atol=1e-9)
