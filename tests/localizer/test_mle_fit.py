import dataclasses

import numpy as np
import pytest

from pointillist.core.errors import InvalidInput
from pointillist.localizer.calibration import CameraCalibration
from pointillist.localizer.mle_fit import MLEFitter, cramer_rao_bound, fit_rois, localize_mle
from pointillist.localizer.psf_model import AstigmaticPSF, GaussianPSF
from pointillist.simulator.camera import Camera, scmos_pixel_maps
from pointillist.simulator.emitters import EmitterConfig
from pointillist.simulator.frames import FrameSimConfig, simulate_frames
from pointillist.simulator.photophysics import BlinkingConfig
from pointillist.simulator.psf import AstigmaticCalibration, pixel_integrals


def poisson_rois(x, y, sigma_x, sigma_y, photons, background, roi, rng, read_sd=0.0):
    """ROIs (n, roi, roi) of pixel-integrated Gaussians + background, Poisson noise
    (+ Gaussian read noise of sd `read_sd`, scalar or per pixel)."""
    ex = pixel_integrals(x, sigma_x, roi)
    ey = pixel_integrals(y, sigma_y, roi)
    mu = photons * ey[:, :, None] * ex[:, None, :] + background
    return rng.poisson(mu) + read_sd * rng.standard_normal(mu.shape)


def rms(values):
    return float(np.sqrt(np.mean(np.square(values))))


def test_2d_fit_reaches_the_crlb_and_is_unbiased():
    rng = np.random.default_rng(0)
    n, roi = 400, 7
    x, y = rng.uniform(3, 4, n), rng.uniform(3, 4, n)
    sigma = np.full(n, 1.2)
    rois = poisson_rois(x, y, sigma, sigma, 2000.0, 20.0, roi, rng)
    fit = fit_rois(rois, GaussianPSF(1.2))
    assert fit.valid.mean() > 0.99
    p, c = fit.params[fit.valid], fit.crlb[fit.valid]
    v = fit.valid
    assert rms(p[:, 0] - x[v]) == pytest.approx(rms(c[:, 0]), rel=0.2)
    assert rms(p[:, 1] - y[v]) == pytest.approx(rms(c[:, 1]), rel=0.2)
    assert p[:, 2].mean() == pytest.approx(2000.0, rel=0.03)
    assert p[:, 3].mean() == pytest.approx(20.0, rel=0.03)
    # A fixed σ that is wrong by 30% costs precision: the right model matters.
    wrong = fit_rois(rois, GaussianPSF(0.85))
    assert rms(wrong.params[:, 2] - 2000.0) > 3 * rms(p[:, 2] - 2000.0)


def test_free_sigma_recovers_the_width():
    rng = np.random.default_rng(1)
    n, roi = 300, 9
    x, y = rng.uniform(4, 5, n), rng.uniform(4, 5, n)
    rois = poisson_rois(x, y, np.full(n, 1.5), np.full(n, 1.5), 3000.0, 10.0, roi, rng)
    fit = fit_rois(rois, GaussianPSF(1.0, fit_sigma=True))
    assert fit.valid.mean() > 0.99
    assert np.median(fit.params[fit.valid, 4]) == pytest.approx(1.5, rel=0.02)
    assert rms(fit.params[fit.valid, 0] - x[fit.valid]) == pytest.approx(
        rms(fit.crlb[fit.valid, 0]), rel=0.2
    )


def test_astigmatic_3d_recovers_z_near_the_crlb():
    rng = np.random.default_rng(2)
    n, roi = 300, 11
    cal = AstigmaticCalibration()
    psf = AstigmaticPSF(cal, pixel_size_nm=100.0)
    z = rng.uniform(-400, 400, n)
    sx, sy = cal.sigma_xy_nm(z)
    x, y = rng.uniform(5, 6, n), rng.uniform(5, 6, n)
    rois = poisson_rois(x, y, sx / 100, sy / 100, 3000.0, 20.0, roi, rng)
    fit = fit_rois(rois, psf)
    v = fit.valid
    assert v.mean() > 0.98
    err_z = fit.params[v, 4] - z[v]
    assert rms(err_z) == pytest.approx(rms(fit.crlb[v, 4]), rel=0.3)
    assert abs(err_z.mean()) < 3 * rms(err_z) / np.sqrt(v.sum())  # unbiased
    np.testing.assert_allclose(fit.sigma_x_px[v], cal.sigma_xy_nm(fit.params[v, 4])[0] / 100)


@pytest.mark.parametrize(
    ("sigma", "photons", "background"),
    [(1.2, 2000.0, 20.0), (1.0, 1000.0, 10.0), (1.5, 5000.0, 200.0), (1.2, 1000.0, 0.01)],
)
def test_crlb_matches_mortensen_in_the_gaussian_limit(sigma, photons, background):
    # Mortensen et al. 2010, eq. 6 (MLE, Poisson): var = σa²/N·(1 + 4τ + sqrt(2τ/(1 + 4τ))),
    # τ = 2π σa² b / (N a²), σa² = σ² + a²/12, a = 1 px; a 21-px ROI ≈ an infinite sensor.
    crlb = cramer_rao_bound(GaussianPSF(sigma), np.array([[10.5, 10.5, photons, background]]), 21)
    sa2 = sigma**2 + 1 / 12
    tau = 2 * np.pi * sa2 * background / photons
    mortensen = np.sqrt(sa2 / photons * (1 + 4 * tau + np.sqrt(2 * tau / (1 + 4 * tau))))
    assert crlb[0, 0] == pytest.approx(mortensen, rel=0.03)
    assert crlb[0, 1] == pytest.approx(crlb[0, 0], rel=1e-9)
    # Least squares (Mortensen's 16/9 formula) can only be worse than the bound.
    lsq = np.sqrt(sa2 / photons * (16 / 9 + 8 * np.pi * sa2 * background / photons))
    assert crlb[0, 0] < lsq


def test_read_noise_variance_is_modelled_per_pixel():
    rng = np.random.default_rng(3)
    n, roi = 400, 7
    x, y = rng.uniform(3, 4, n), rng.uniform(3, 4, n)
    sigma = np.full(n, 1.2)
    read_var = rng.lognormal(np.log(4.0), 1.0, (n, roi, roi))  # some very noisy pixels
    rois = poisson_rois(x, y, sigma, sigma, 800.0, 5.0, roi, rng, read_sd=np.sqrt(read_var))
    aware = fit_rois(rois, GaussianPSF(1.2), read_variance_counts2=read_var)
    v = aware.valid
    assert v.mean() > 0.98
    assert rms(aware.params[v, 0] - x[v]) == pytest.approx(rms(aware.crlb[v, 0]), rel=0.2)
    no_noise = cramer_rao_bound(GaussianPSF(1.2), aware.params[v], roi)
    assert np.all(aware.crlb[v, 0] > no_noise[:, 0])


def test_fits_off_the_roi_or_on_a_limit_are_rejected():
    rng = np.random.default_rng(4)
    n, roi = 200, 7
    # The emitter sits two pixels outside the ROI; only its tail is inside.
    x = np.full(n, -2.0)
    y = rng.uniform(3, 4, n)
    rois = poisson_rois(x, y, np.full(n, 1.2), np.full(n, 1.2), 3000.0, 20.0, roi, rng)
    assert fit_rois(rois, GaussianPSF(1.2)).valid.mean() < 0.1
    # True z = 450 nm, but the search range stops at 200 nm: z ends on the limit.
    cal = AstigmaticCalibration()
    sx, sy = cal.sigma_xy_nm(np.full(n, 450.0))
    x = rng.uniform(5, 6, n)
    rois = poisson_rois(x, y + 2, sx / 100, sy / 100, 3000.0, 20.0, 11, rng)
    psf = AstigmaticPSF(cal, 100.0)
    assert fit_rois(rois, psf, z_range_nm=(-200.0, 200.0)).valid.mean() < 0.1
    assert fit_rois(rois, psf, z_range_nm=(-600.0, 600.0)).valid.mean() > 0.95


EMCCD = Camera()


def grid_frames(psf: str, n_frames: int, camera: Camera = EMCCD, **sim):
    """Sparse emitters on a grid, on in every frame (2000 photons by default)."""
    centers = np.arange(600.0, 3400.0, 1100.0)
    gx, gy = np.meshgrid(centers + 30.0, centers - 20.0)
    z = np.linspace(-300, 300, gx.size) if psf == "astigmatic" else np.zeros(gx.size)
    positions = np.c_[gx.ravel(), gy.ravel(), z]
    config = FrameSimConfig(
        n_frames=n_frames,
        height_px=40,
        width_px=40,
        chunk_frames=n_frames,
        background_photons=20.0,
        psf=psf,
        emitters=EmitterConfig(z_range_nm=(-300.0, 300.0) if psf == "astigmatic" else (0, 0)),
        blinking=BlinkingConfig(
            t_on_frames=1e9, t_off_frames=1e-6, photons=sim.pop("photons", 2e3)
        ),
        camera=camera,
    )
    result = simulate_frames(config, seed=5, positions_nm=positions, **sim)
    fields = {f.name: getattr(camera, f.name) for f in dataclasses.fields(camera)}
    return result, CameraCalibration(**fields)


def match(locs, truth):
    """Index of the nearest localization of the same frame for every truth row, and dist."""
    index = np.full(len(truth), -1)
    dist = np.full(len(truth), np.inf)
    for k in range(len(truth)):
        same = np.flatnonzero(locs["frame"] == truth["frame"][k])
        if len(same):
            d = np.hypot(locs["x"][same] - truth["x"][k], locs["y"][same] - truth["y"][k])
            index[k], dist[k] = same[np.argmin(d)], d.min()
    return index, dist


def test_localize_emccd_frames_end_to_end():
    result, cal = grid_frames("gaussian", n_frames=30)
    locs = MLEFitter(psf_sigma_nm=120.0).localize(cal.photons(result.frames), cal, first_frame=100)
    truth = result.truth
    locs_frames = locs.with_columns(frame=locs["frame"] - 100)
    index, dist = match(locs_frames, truth)
    assert np.all(dist < 100) and len(locs) == len(truth)
    err = locs["x"][index] - truth["x"]
    # The CRLB includes the EMCCD excess noise (effective counts = electrons / 2).
    assert rms(err) == pytest.approx(rms(locs["crlb_x"]), rel=0.2)
    assert np.median(locs["photons"]) == pytest.approx(2000.0, rel=0.05)
    assert np.median(locs["background"]) == pytest.approx(20.0, rel=0.05)
    np.testing.assert_allclose(
        locs["uncertainty"], np.sqrt((locs["crlb_x"] ** 2 + locs["crlb_y"] ** 2) / 2), rtol=1e-5
    )
    assert locs["frame"].min() >= 100 and "z" not in locs
    twin = localize_mle(cal.photons(result.frames), cal, 100, psf_sigma_nm=120.0)
    np.testing.assert_array_equal(twin["x"], locs["x"])


def test_localize_scmos_frames_with_pixel_maps():
    camera = Camera(
        kind="scmos", em_gain=1, e_per_adu=0.5, read_noise_e=1.6, quantum_efficiency=0.8
    )
    maps = scmos_pixel_maps(camera, (40, 40), 1, offset_sd_adu=10, read_noise_log_sd=1, gain_cv=0.1)
    result, scalar = grid_frames("gaussian", 30, camera, pixel_maps=maps, photons=1000.0)
    mapped = CameraCalibration.from_maps(
        scalar,
        offset_adu=maps.offset_adu,
        variance_adu2=(maps.read_noise_e / maps.e_per_adu) ** 2,
        gain_e_per_adu=maps.e_per_adu,
    )
    errors = {}
    for name, cal in (("maps", mapped), ("scalar", scalar)):
        locs = MLEFitter().localize(cal.photons(result.frames), cal)
        index, dist = match(locs, result.truth)
        assert np.all(dist < 100)
        errors[name] = rms(locs["x"][index] - result.truth["x"])
        if name == "maps":
            assert errors[name] == pytest.approx(rms(locs["crlb_x"]), rel=0.2)
            assert np.median(locs["photons"]) == pytest.approx(1000.0, rel=0.03)
    # Ignoring the per-pixel offsets, gains and noisy pixels costs precision.
    assert errors["scalar"] > 1.2 * errors["maps"]


def test_localize_astigmatic_frames_gives_z():
    result, cal = grid_frames("astigmatic", n_frames=10)
    fitter = MLEFitter(astigmatism=AstigmaticCalibration())
    locs = fitter.localize(cal.photons(result.frames), cal)
    index, dist = match(locs, result.truth)
    assert np.all(dist < 100)
    err_z = locs["z"][index] - result.truth["z"]
    assert rms(err_z) < 1.3 * rms(locs["crlb_z"])
    assert {"crlb_z", "sigma_x", "sigma_y"} <= set(locs.columns)


def test_localize_rejects_bad_input():
    cal = CameraCalibration(
        kind="scmos",
        baseline_adu=100.0,
        e_per_adu=0.5,
        em_gain=1.0,
        quantum_efficiency=0.8,
        read_noise_e=1.6,
        pixel_size_nm=100.0,
        offset_adu=np.full((32, 32), 100.0),
    )
    fitter = MLEFitter()
    with pytest.raises(InvalidInput, match=r"\(n, H, W\)"):
        fitter.localize(np.zeros((32, 32)), cal)
    with pytest.raises(InvalidInput, match="do not match"):
        fitter.localize(np.zeros((2, 16, 16)), cal)
    with pytest.raises(InvalidInput, match="psf_sigma_nm"):
        MLEFitter(psf_sigma_nm=0.0).localize(np.zeros((2, 32, 32)), cal)
    assert len(fitter.localize(np.zeros((2, 32, 32)), cal)) == 0
