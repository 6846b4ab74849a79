"""PSF: pixel integration conserves light and has the right moments; astigmatic widths."""

from __future__ import annotations

import numpy as np
import pytest

from pointillist.core.errors import InvalidInput
from pointillist.simulator.psf import AstigmaticCalibration, pixel_integrals, render_gaussians


def test_pixel_integrals_sum_to_one_with_gaussian_moments() -> None:
    centers = np.array([50.3, 49.9, 50.5])
    sigmas = np.array([1.3, 0.8, 2.5])
    p = pixel_integrals(centers, sigmas, 101)
    pixel_centers = np.arange(101) + 0.5
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-12)
    mean = p @ pixel_centers
    np.testing.assert_allclose(mean, centers, atol=1e-9)
    # Integrating over a pixel convolves with a unit box: variance σ² + 1/12 px².
    var = (p * (pixel_centers - mean[:, None]) ** 2).sum(axis=1)
    np.testing.assert_allclose(var, sigmas**2 + 1 / 12, rtol=1e-4)


def test_render_matches_brute_force_integration_and_loses_light_off_chip() -> None:
    x, y, sx, sy = np.array([5.2]), np.array([3.7]), np.array([1.1]), np.array([1.6])
    image = render_gaussians(x, y, sx, sy, np.array([1000.0]), (8, 12))
    sub = 20  # brute force: Gaussian density on a 20×20 sub-grid of every pixel
    gx = (np.arange(12 * sub) + 0.5) / sub
    gy = (np.arange(8 * sub) + 0.5) / sub
    dens = np.exp(-((gx[None, :] - x) ** 2) / (2 * sx**2) - (gy[:, None] - y) ** 2 / (2 * sy**2))
    dens *= 1000.0 / (2 * np.pi * sx * sy * sub**2)
    brute = dens.reshape(8, sub, 12, sub).sum(axis=(1, 3))
    np.testing.assert_allclose(image, brute, atol=0.05, rtol=1e-3)
    # The emitter is 3.7 px from the top edge with σy = 1.6 px: ~1% falls off the chip.
    assert 0.985 < image.sum() / 1000.0 < 0.995


def test_render_adds_emitters_linearly() -> None:
    args = [np.array(v) for v in ([3.0, 9.5], [4.0, 6.2], [1.0, 1.3], [1.2, 0.9], [100.0, 50.0])]
    both = render_gaussians(*args, (12, 14))
    each = sum(render_gaussians(*[a[i : i + 1] for a in args], (12, 14)) for i in range(2))
    np.testing.assert_allclose(both, each, rtol=1e-12)


def test_astigmatic_widths_have_foci_at_plus_and_minus_c() -> None:
    cal = AstigmaticCalibration()
    z = np.linspace(-800, 800, 1601)
    sx, sy = cal.sigma_xy_nm(z)
    assert z[np.argmin(sx)] == pytest.approx(cal.focus_x_nm)
    assert z[np.argmin(sy)] == pytest.approx(cal.focus_y_nm)
    assert cal.focus_x_nm > 0 > cal.focus_y_nm
    sx0, sy0 = cal.sigma_xy_nm(0.0)
    assert sx0 == pytest.approx(sy0)
    # At one depth of focus from its focus a width has grown by sqrt(2).
    sx_d, _ = cal.sigma_xy_nm(cal.focus_x_nm + cal.depth_x_nm)
    assert sx_d == pytest.approx(np.sqrt(2) * cal.sigma0_x_nm)
    # Above the focal plane the spot is elongated along y, below along x.
    above, below = cal.sigma_xy_nm(np.array([300.0, -300.0]))
    assert above[0] < below[0] and above[1] > below[1]


def test_astigmatic_higher_orders_and_invalid_curves() -> None:
    cal = AstigmaticCalibration(a_x=0.2, b_x=0.1)
    u = 1.5
    sx, _ = cal.sigma_xy_nm(cal.focus_x_nm + u * cal.depth_x_nm)
    assert sx == pytest.approx(cal.sigma0_x_nm * np.sqrt(1 + u**2 + 0.2 * u**3 + 0.1 * u**4))
    with pytest.raises(InvalidInput, match="no real width"):
        AstigmaticCalibration(a_x=-3.0).sigma_xy_nm(np.array([1000.0]))
    with pytest.raises(InvalidInput, match="depth_x_nm"):
        AstigmaticCalibration.from_params({"depth_x_nm": 0})
