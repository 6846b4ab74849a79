"""Camera noise: ADU mean and variance of flat illumination match theory, saturation."""

from __future__ import annotations

import numpy as np
import pytest

from pointillist.core.errors import InvalidInput
from pointillist.simulator.camera import ADU_MAX, Camera, PixelMaps, expose, scmos_pixel_maps

QUANTIZATION_VAR = 1 / 12  # rounding to whole ADU


def test_emccd_flat_field_mean_and_excess_noise() -> None:
    cam = Camera()  # EMCCD, gain 100
    photons = 20.0
    adu = expose(np.full((300, 300), photons), cam, 1).astype(np.float64)
    electrons = cam.quantum_efficiency * photons
    mean = cam.baseline_adu + cam.em_gain * electrons / cam.e_per_adu
    # Poisson input through a gamma EM register: excess noise factor F² = 2.
    var = (2 * cam.em_gain**2 * electrons + cam.read_noise_e**2) / cam.e_per_adu**2
    assert adu.mean() == pytest.approx(mean, rel=0.01)
    assert adu.var() == pytest.approx(var + QUANTIZATION_VAR, rel=0.03)
    assert cam.photons_from_adu(adu.mean()) == pytest.approx(photons, rel=0.01)


@pytest.mark.parametrize("kind", ["scmos", "ccd"])
def test_no_gain_camera_flat_field_is_poisson_plus_read_noise(kind: str) -> None:
    cam = Camera(kind=kind, em_gain=1.0, e_per_adu=0.5, read_noise_e=1.6, quantum_efficiency=0.8)
    photons = 30.0
    adu = expose(np.full((300, 300), photons), cam, 2).astype(np.float64)
    electrons = cam.quantum_efficiency * photons
    var = (electrons + cam.read_noise_e**2) / cam.e_per_adu**2
    assert adu.mean() == pytest.approx(cam.adu_from_photons(photons), rel=0.005)
    assert adu.var() == pytest.approx(var + QUANTIZATION_VAR, rel=0.03)
    assert cam.photons_from_adu(adu.mean()) == pytest.approx(photons, rel=0.01)


def test_saturation_and_floor_clip_to_uint16_range() -> None:
    cam = Camera()
    bright = expose(np.full((20, 20), 1e6), cam, 3)
    assert bright.dtype == np.uint16
    assert np.all(bright == ADU_MAX)
    # No light, zero baseline: read noise goes negative half the time and must clip at 0,
    # not wrap around to 65535.
    dark = expose(np.zeros((50, 50)), Camera(baseline_adu=0.0), 4)
    assert np.mean(dark == 0) > 0.4
    assert dark.max() < 100


def test_scmos_pixel_maps_set_per_pixel_offset_and_noise() -> None:
    cam = Camera(kind="scmos", em_gain=1.0, e_per_adu=0.5, read_noise_e=1.6)
    maps = scmos_pixel_maps(cam, (6, 6), 5, read_noise_log_sd=0.5)
    stack = expose(np.zeros((4000, 6, 6)), cam, 6, maps).astype(np.float64)
    expected_var = (maps.read_noise_e / maps.e_per_adu) ** 2 + QUANTIZATION_VAR
    standard_error = np.sqrt(expected_var / len(stack))
    assert np.all(np.abs(stack.mean(axis=0) - maps.offset_adu) < 4 * standard_error)
    np.testing.assert_allclose(stack.var(axis=0), expected_var, rtol=0.1)
    # A gain map scales the signal of each pixel.
    gains = PixelMaps(e_per_adu=np.array([[0.25, 1.0]]))
    lit = expose(np.full((3000, 1, 2), 100.0), cam, 7, gains).astype(np.float64).mean(axis=0)
    signal = lit - cam.baseline_adu
    assert signal[0, 0] / signal[0, 1] == pytest.approx(4.0, rel=0.02)


def test_same_seed_same_noise() -> None:
    image = np.full((16, 16), 10.0)
    np.testing.assert_array_equal(expose(image, Camera(), 9), expose(image, Camera(), 9))
    assert not np.array_equal(expose(image, Camera(), 9), expose(image, Camera(), 10))


def test_invalid_cameras_are_rejected() -> None:
    with pytest.raises(InvalidInput, match="em_gain must be 1"):
        Camera(kind="scmos")
    with pytest.raises(InvalidInput, match="kind"):
        Camera.from_params({"kind": "film"})
    with pytest.raises(InvalidInput, match="shutter"):
        Camera.from_params({"shutter": 1})
    with pytest.raises(InvalidInput, match="quantum_efficiency"):
        Camera.from_params({"quantum_efficiency": 1.5})
    with pytest.raises(InvalidInput, match="photons must be >= 0"):
        expose(np.full((2, 2), -1.0), Camera(), 0)
