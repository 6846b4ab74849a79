import numpy as np
import pytest

from pointillist.core.errors import InvalidInput
from pointillist.localizer.detection import detect_spots, extract_rois
from pointillist.simulator.psf import render_gaussians

SHAPE = (48, 48)


def grid_frames(n_frames: int, seed: int, photons: float = 1500.0, background: float = 20.0):
    """Frames with emitters on a jittered 8-px grid (isolated), Poisson noise."""
    rng = np.random.default_rng(seed)
    centers = np.arange(8, 41, 8) + 0.0
    gx, gy = np.meshgrid(centers, centers)
    frames, truth = [], []
    for _ in range(n_frames):
        x = gx.ravel() + rng.uniform(-1, 1, gx.size)
        y = gy.ravel() + rng.uniform(-1, 1, gy.size)
        sigma = np.full(x.size, 1.2)
        expected = render_gaussians(x, y, sigma, sigma, np.full(x.size, photons), SHAPE)
        frames.append(rng.poisson(expected + background).astype(np.float32))
        truth.append(np.c_[x, y])
    return np.stack(frames), truth


def test_finds_isolated_emitters_without_false_positives():
    frames, truth = grid_frames(4, seed=0)
    spots = detect_spots(frames, sigma_px=1.2, threshold=5.0, roi_size=7)
    for f, xy in enumerate(truth):
        mine = spots.frame == f
        found = np.c_[spots.col[mine] + 0.5, spots.row[mine] + 0.5]
        dist = np.linalg.norm(found[:, None, :] - xy[None, :, :], axis=2)
        assert len(found) == len(xy)
        assert np.all(dist.min(axis=1) < 1.0)
        assert len(np.unique(dist.argmin(axis=1))) == len(xy)


def test_background_only_gives_almost_nothing():
    rng = np.random.default_rng(1)
    frames = rng.poisson(50.0, (5, *SHAPE)).astype(np.float32)
    assert len(detect_spots(frames, threshold=5.0)) <= 2


def test_rois_are_the_frame_windows_and_borders_are_excluded():
    frames, _ = grid_frames(2, seed=2)
    expected = render_gaussians(
        np.array([1.5]), np.array([20.5]), np.array([1.2]), np.array([1.2]), np.array([5e3]), SHAPE
    )
    frames[1] += expected.astype(np.float32)  # an emitter 1.5 px from the left edge
    spots = detect_spots(frames, roi_size=7)
    assert np.all((spots.row >= 3) & (spots.row < SHAPE[0] - 3))
    assert np.all((spots.col >= 3) & (spots.col < SHAPE[1] - 3))
    assert not np.any((spots.frame == 1) & (spots.col < 3))
    row0, col0 = spots.top_left
    for k in (0, len(spots) // 2, len(spots) - 1):
        window = frames[spots.frame[k], row0[k] : row0[k] + 7, col0[k] : col0[k] + 7]
        np.testing.assert_array_equal(spots.rois[k], window)
        assert spots.rois[k].max() == spots.rois[k][3, 3]


def test_extract_rois_from_a_shared_map():
    image = np.arange(100.0).reshape(10, 10)
    rois = extract_rois(image, np.array([0, 5]), np.array([0, 4]), np.array([1, 2]), 3)
    np.testing.assert_array_equal(rois[1], image[4:7, 2:5])
    assert rois.dtype == np.float32


@pytest.mark.parametrize(
    "kwargs", [{"roi_size": 6}, {"roi_size": 1}, {"threshold": 0.0}, {"sigma_px": -1.0}]
)
def test_bad_arguments_raise(kwargs):
    with pytest.raises(InvalidInput):
        detect_spots(np.zeros((1, 16, 16)), **kwargs)


def test_bad_frames_raise_and_small_frames_give_nothing():
    with pytest.raises(InvalidInput, match=r"\(n, H, W\)"):
        detect_spots(np.zeros((16, 16)))
    bad = np.zeros((1, 16, 16))
    bad[0, 3, 3] = np.nan
    with pytest.raises(InvalidInput, match="non-finite"):
        detect_spots(bad)
    assert len(detect_spots(np.ones((2, 5, 5)), roi_size=7)) == 0
