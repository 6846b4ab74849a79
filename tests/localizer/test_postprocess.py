import numpy as np
import pytest

from pointillist.core.errors import InvalidInput
from pointillist.core.table import LocalizationTable
from pointillist.localizer.postprocess import (
    filter_localizations,
    link_consecutive,
    merge_consecutive,
)


def test_merge_two_molecules_across_frames_and_a_gap():
    # Molecule A on in frames 0, 1, 3 (one dark frame); molecule B in frames 1, 2; a third
    # localization at A's place in frame 6 is a new event (gap of 2 > max_gap_frames=1).
    t = LocalizationTable(
        {
            "x": [100.0, 104.0, 1000.0, 1002.0, 98.0, 101.0],
            "y": [200.0, 198.0, 50.0, 52.0, 203.0, 200.0],
            "photons": [1000.0, 3000.0, 500.0, 500.0, 1000.0, 800.0],
            "uncertainty": [10.0, 5.0, 8.0, 8.0, 10.0, 9.0],
            "frame": [0, 1, 1, 2, 3, 6],
            "label": [7, 7, 8, 8, 7, 7],
        }
    )
    track = link_consecutive(t, max_distance_nm=30.0, max_gap_frames=1)
    np.testing.assert_array_equal(track, [0, 0, 1, 1, 0, 2])
    merged = merge_consecutive(t, max_distance_nm=30.0, max_gap_frames=1)
    assert len(merged) == 3
    np.testing.assert_array_equal(merged["n_merged"], [3, 2, 1])
    np.testing.assert_array_equal(merged["frame"], [0, 1, 6])
    np.testing.assert_array_equal(merged["label"], [7, 8, 7])
    np.testing.assert_allclose(merged["photons"], [5000.0, 1000.0, 800.0])
    np.testing.assert_allclose(merged["x"][0], (100 * 1000 + 104 * 3000 + 98 * 1000) / 5000)
    np.testing.assert_allclose(merged["y"][1], 51.0)
    # Propagated error of the photon-weighted mean: sqrt(Σ w²u²) / Σ w.
    expected_u = np.sqrt((1000 * 10) ** 2 + (3000 * 5) ** 2 + (1000 * 10) ** 2) / 5000
    np.testing.assert_allclose(merged["uncertainty"][0], expected_u, rtol=1e-6)

    strict = link_consecutive(t, max_distance_nm=30.0, max_gap_frames=0)
    np.testing.assert_array_equal(strict, [0, 0, 1, 1, 2, 3])


def test_uncertainty_weighting_is_inverse_variance():
    t = LocalizationTable(
        {"x": [0.0, 10.0], "y": [0.0, 0.0], "uncertainty": [10.0, 5.0], "frame": [4, 5]}
    )
    merged = merge_consecutive(t, 20.0, weighting="uncertainty")
    w = np.array([1 / 100, 1 / 25])
    np.testing.assert_allclose(merged["x"], [(w * [0, 10]).sum() / w.sum()], rtol=1e-6)
    np.testing.assert_allclose(merged["uncertainty"], [1 / np.sqrt(w.sum())], rtol=1e-6)


def test_one_track_takes_one_localization_per_frame():
    # Two molecules 40 nm apart both on in frames 0 and 1: two tracks, never one.
    t = LocalizationTable(
        {"x": [0.0, 40.0, 2.0, 41.0], "y": [0.0, 0.0, 1.0, -1.0], "frame": [0, 0, 1, 1]}
    )
    track = link_consecutive(t, max_distance_nm=100.0)
    np.testing.assert_array_equal(track, [0, 1, 0, 1])


def test_merging_recovers_blinking_emitters():
    rng = np.random.default_rng(3)
    n_emitters, sigma = 300, 8.0
    pos = rng.uniform(0, 20_000, (n_emitters, 2))
    start = rng.integers(0, 500, n_emitters)
    length = rng.integers(1, 6, n_emitters)
    emitter = np.repeat(np.arange(n_emitters), length)
    frame = (
        np.repeat(start, length)
        + np.arange(emitter.size)
        - np.repeat(np.cumsum(length) - length, length)
    )
    xy = pos[emitter] + rng.normal(0, sigma, (emitter.size, 2))
    shuffle = rng.permutation(emitter.size)
    t = LocalizationTable(
        {
            "x": xy[shuffle, 0],
            "y": xy[shuffle, 1],
            "photons": np.full(emitter.size, 1000.0),
            "frame": frame[shuffle],
            "label": emitter[shuffle],
        }
    )
    merged = merge_consecutive(t, max_distance_nm=5 * sigma, max_gap_frames=0)
    # Emitters far apart relative to the search radius: one merged row per emitter.
    assert len(merged) == n_emitters
    order = np.argsort(merged["label"])
    np.testing.assert_array_equal(merged["label"][order], np.arange(n_emitters))
    np.testing.assert_array_equal(merged["n_merged"][order], length)
    err = np.hypot(merged["x"][order] - pos[:, 0], merged["y"][order] - pos[:, 1])
    expected = sigma * np.sqrt(2 / length)  # RMS of a mean of `length` 2D Gaussian draws
    assert np.sqrt(np.mean(err**2)) == pytest.approx(np.sqrt(np.mean(expected**2)), rel=0.15)


def test_merge_empty_table_and_bad_arguments():
    empty = LocalizationTable({"x": [], "y": [], "photons": [], "frame": []})
    assert len(merge_consecutive(empty, 10.0)) == 0
    t = LocalizationTable({"x": [0.0], "y": [0.0], "frame": [0]})
    with pytest.raises(InvalidInput, match="photons"):
        merge_consecutive(t, 10.0)
    with pytest.raises(InvalidInput, match="max_distance"):
        link_consecutive(t, 0.0)
    with pytest.raises(InvalidInput, match="max_gap"):
        link_consecutive(t, 10.0, -1)
    with pytest.raises(InvalidInput, match="frame"):
        link_consecutive(LocalizationTable({"x": [0.0], "y": [0.0]}), 10.0)


def test_filters_keep_rows_within_all_bounds():
    t = LocalizationTable(
        {
            "x": np.arange(5.0),
            "y": np.zeros(5),
            "photons": [50.0, 500.0, 5000.0, 800.0, 900.0],
            "uncertainty": [30.0, 10.0, 5.0, 25.0, 8.0],
            "sigma_x": [100.0, 110.0, 120.0, 130.0, 300.0],
            "sigma_y": [100.0, 110.0, 120.0, 130.0, 120.0],
        }
    )
    assert len(filter_localizations(t)) == 5
    np.testing.assert_array_equal(
        filter_localizations(t, photons_range=(100, 1000))["x"], [1.0, 3.0, 4.0]
    )
    np.testing.assert_array_equal(filter_localizations(t, uncertainty_max_nm=10)["x"], [1, 2, 4])
    np.testing.assert_array_equal(
        filter_localizations(t, sigma_range_nm=(105, 200))["x"], [1.0, 2.0, 3.0]
    )
    both = filter_localizations(t, photons_range=(100, 1000), uncertainty_max_nm=20)
    np.testing.assert_array_equal(both["x"], [1.0, 4.0])
    with pytest.raises(InvalidInput, match="lower bound"):
        filter_localizations(t, photons_range=(10, 1))
    with pytest.raises(InvalidInput, match="no such column"):
        filter_localizations(LocalizationTable({"x": [0.0], "y": [0.0]}), uncertainty_max_nm=5)
