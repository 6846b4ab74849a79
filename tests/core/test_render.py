import numpy as np
import pytest

from pointillist.core.errors import InvalidInput
from pointillist.core.render import render_gaussian, render_histogram


def test_histogram_counts_land_in_the_right_pixels():
    x = np.array([5.0, 15.0, 15.0, 29.9])
    y = np.array([5.0, 5.0, 5.0, 25.0])
    img = render_histogram(x, y, pixel_size_nm=10, extent_nm=(0, 30, 0, 30))
    assert img.image.shape == (3, 3)
    assert img.image[0, 0] == 1 and img.image[0, 1] == 2 and img.image[2, 2] == 1
    assert img.image.sum() == 4
    assert img.extent_nm == (0, 30, 0, 30)


def test_auto_extent_keeps_every_localization():
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 1000, 500), rng.uniform(-300, 200, 500)
    assert render_histogram(x, y, pixel_size_nm=7).image.sum() == 500


def test_gaussian_render_conserves_mass_and_has_the_width():
    x = np.full(1000, 500.0)
    y = np.full(1000, 500.0)
    img = render_gaussian(x, y, pixel_size_nm=2, sigma_nm=20, extent_nm=(0, 1000, 0, 1000))
    assert img.image.sum() == pytest.approx(1000, rel=1e-3)
    profile = img.image.sum(axis=0)
    centers = (np.arange(profile.size) + 0.5) * 2
    mean = (profile * centers).sum() / profile.sum()
    sd = np.sqrt((profile * (centers - mean) ** 2).sum() / profile.sum())
    assert sd == pytest.approx(20, rel=0.05)


def test_bad_render_parameters():
    with pytest.raises(InvalidInput):
        render_histogram(np.array([]), np.array([]))
    with pytest.raises(InvalidInput):
        render_gaussian(np.ones(3), np.ones(3), sigma_nm=0)
