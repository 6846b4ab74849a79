"""Frame simulation: photometry and coordinate convention, truth, chunking, seeds."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from pointillist.core.errors import InvalidInput
from pointillist.simulator.camera import Camera
from pointillist.simulator.frames import FrameSimConfig, iter_frames, simulate_frames
from pointillist.simulator.photophysics import BlinkingConfig

ALWAYS_ON = BlinkingConfig(t_on_frames=1e9, t_off_frames=1e-3, photons=3000.0)


def test_emitter_lands_where_the_truth_says_with_all_its_photons() -> None:
    cam = Camera(kind="scmos", em_gain=1.0, e_per_adu=0.5, read_noise_e=1.5, baseline_adu=100.0)
    cfg = FrameSimConfig(
        n_frames=200, height_px=24, width_px=32, background_photons=10.0, camera=cam,
        blinking=ALWAYS_ON,
    )  # fmt: skip
    position = np.array([[1234.5, 987.6, 0.0]])
    result = simulate_frames(cfg, 0, positions_nm=position)
    truth = result.truth
    assert len(truth) == 200
    np.testing.assert_allclose(truth["photons"], 3000.0, rtol=1e-6)
    np.testing.assert_array_equal(truth["frame"], np.arange(200))
    photons = cam.photons_from_adu(result.frames.astype(np.float64).mean(axis=0)) - 10.0
    assert photons.sum() == pytest.approx(3000.0, rel=0.01)
    # Pixel (i, j) covers [j, j+1) x [i, i+1) pixels: its centre is at (j + 0.5) px.
    cols = (np.arange(32) + 0.5) * cam.pixel_size_nm
    rows = (np.arange(24) + 0.5) * cam.pixel_size_nm
    assert (photons.sum(axis=0) @ cols) / photons.sum() == pytest.approx(1234.5, abs=3.0)
    assert (photons.sum(axis=1) @ rows) / photons.sum() == pytest.approx(987.6, abs=3.0)
    assert np.unravel_index(np.argmax(photons), photons.shape) == (9, 12)


def test_frame_brightness_matches_truth_photons_and_background() -> None:
    cfg = FrameSimConfig.from_params({"n_frames": 60, "emitters": {"density_per_um2": 30.0}})
    result = simulate_frames(cfg, 1)
    truth, frames = result.truth, result.frames
    assert frames.shape == (60, 64, 64) and frames.dtype == np.uint16
    np.testing.assert_array_equal(truth["z"], 0.0)
    np.testing.assert_allclose(truth["sigma_x"], cfg.psf_sigma_nm)
    # ~1230 fluorophores at a 3/303 duty cycle and 2000 photons: ~12 fully-on per frame.
    on_per_frame = truth["photons"].sum() / cfg.blinking.photons / 60
    assert on_per_frame == pytest.approx(30 * 6.4**2 * cfg.blinking.duty_cycle, rel=0.25)
    # Per frame, the light above the background is the truth's photons that fall on the chip.
    width = 64 * cfg.camera.pixel_size_nm
    x, y, sigma = (truth[c].astype(np.float64) for c in ("x", "y", "sigma_x"))
    on_chip = np.prod(
        [norm.cdf((width - c) / sigma) - norm.cdf(-c / sigma) for c in (x, y)], axis=0
    )
    expected = np.bincount(truth["frame"], weights=truth["photons"] * on_chip, minlength=60)
    signal = cfg.camera.photons_from_adu(frames.astype(np.float64)).sum(axis=(1, 2))
    signal -= cfg.background_photons * 64 * 64
    # EMCCD noise in photon units: variance 2 λ / QE per pixel, plus read noise.
    cam = cfg.camera
    read_var = (cam.read_noise_e / cam.em_gain / cam.quantum_efficiency) ** 2 * 64 * 64
    sd = np.sqrt(
        2 * (cfg.background_photons * 64 * 64 + expected) / cam.quantum_efficiency + read_var
    )
    assert np.all(np.abs(signal - expected) < 5 * sd)
    assert abs((signal - expected).sum()) < 4 * np.sqrt((sd**2).sum())


def test_chunked_stream_equals_whole_acquisition() -> None:
    cfg = FrameSimConfig(n_frames=23, height_px=16, width_px=20, chunk_frames=5)
    chunks = list(iter_frames(cfg, 7))
    assert [len(f) for f, _ in chunks] == [5, 5, 5, 5, 3]
    for i, (_, truth) in enumerate(chunks):
        assert np.all((truth["frame"] >= 5 * i) & (truth["frame"] < 5 * i + 5))
    whole = simulate_frames(FrameSimConfig(n_frames=23, height_px=16, width_px=20), 7)
    np.testing.assert_array_equal(np.concatenate([f for f, _ in chunks]), whole.frames)
    for name in whole.truth:
        np.testing.assert_array_equal(
            np.concatenate([t[name] for _, t in chunks]), whole.truth[name]
        )
    other = simulate_frames(FrameSimConfig(n_frames=23, height_px=16, width_px=20), 8)
    assert not np.array_equal(other.frames, whole.frames)


def test_astigmatic_3d_microtubules_have_z_dependent_widths() -> None:
    cfg = FrameSimConfig.from_params(
        {
            "n_frames": 10,
            "psf": "astigmatic",
            "emitters": {
                "structure": "microtubules",
                "z_range_nm": [-400, 400],
                "points_per_filament": 2000,
            },
        }
    )
    result = simulate_frames(cfg, 3)
    truth = result.truth
    assert len(result.emitters_nm) == 3 * 2000
    assert truth["z"].min() >= -400 and truth["z"].max() <= 400
    sx, sy = cfg.astigmatism.sigma_xy_nm(truth["z"].astype(np.float64))
    np.testing.assert_allclose(truth["sigma_x"], sx, rtol=1e-5)
    np.testing.assert_allclose(truth["sigma_y"], sy, rtol=1e-5)
    above = truth["z"] > 200
    assert np.all(truth["sigma_x"][above] < truth["sigma_y"][above])


def test_bright_emitter_saturates_the_camera() -> None:
    cfg = FrameSimConfig(
        n_frames=2, height_px=12, width_px=12,
        blinking=BlinkingConfig(t_on_frames=1e9, t_off_frames=1e-3, photons=1e6),
    )  # fmt: skip
    frames = simulate_frames(cfg, 4, positions_nm=np.array([[600.0, 600.0, 0.0]])).frames
    assert frames.max() == 65535
    assert frames[:, 6, 6].tolist() == [65535, 65535]


def test_invalid_frame_configs() -> None:
    with pytest.raises(InvalidInput, match="psf"):
        FrameSimConfig.from_params({"psf": "airy"})
    with pytest.raises(InvalidInput, match="n_frames must be an integer"):
        FrameSimConfig.from_params({"n_frames": 10.5})
    with pytest.raises(InvalidInput, match="structure"):
        FrameSimConfig.from_params({"emitters": {"structure": "mitochondria"}})
    with pytest.raises(InvalidInput, match="positions_nm"):
        simulate_frames(FrameSimConfig(n_frames=1), 0, positions_nm=np.zeros((3, 2)))
