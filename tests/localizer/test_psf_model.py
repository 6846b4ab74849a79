import numpy as np
import pytest

from pointillist.localizer.psf_model import AstigmaticPSF, GaussianPSF
from pointillist.simulator.psf import AstigmaticCalibration, render_gaussians

ROI = 9
ASTIG = AstigmaticCalibration(a_x=0.1, b_x=0.05, a_y=-0.1, b_y=0.05)


def params_for(psf) -> np.ndarray:
    rng = np.random.default_rng(0)
    n = 6
    columns = [rng.uniform(3, 6, n), rng.uniform(3, 6, n), rng.uniform(500, 3000, n)]
    columns.append(rng.uniform(1, 50, n))
    if isinstance(psf, AstigmaticPSF):
        columns.append(rng.uniform(-500, 500, n))
    elif psf.fit_sigma:
        columns.append(rng.uniform(0.8, 2.0, n))
    return np.stack(columns, axis=1)


@pytest.mark.parametrize(
    "psf", [GaussianPSF(1.3), GaussianPSF(1.3, fit_sigma=True), AstigmaticPSF(ASTIG, 100.0)]
)
def test_model_matches_the_simulator_and_jacobian_matches_finite_differences(psf):
    params = params_for(psf)
    mu, jac = psf.model(params, ROI)
    np.testing.assert_allclose(psf.expected(params, ROI), mu, rtol=1e-12)
    sx, sy = psf.sigmas(params)
    for k in range(len(params)):
        image = render_gaussians(
            params[k, :1], params[k, 1:2], sx[k : k + 1], sy[k : k + 1], params[k, 2:3], (ROI, ROI)
        )
        np.testing.assert_allclose(mu[k], image + params[k, 3], rtol=1e-10)
    steps = {
        0: 1e-6,
        1: 1e-6,
        2: 1e-3,
        3: 1e-4,
        4: 1e-3 if isinstance(psf, AstigmaticPSF) else 1e-6,
    }
    for p in range(psf.n_params):
        up, down = params.copy(), params.copy()
        up[:, p] += steps[p]
        down[:, p] -= steps[p]
        numeric = (psf.expected(up, ROI) - psf.expected(down, ROI)) / (2 * steps[p])
        np.testing.assert_allclose(jac[..., p], numeric, rtol=1e-5, atol=1e-6 * mu.max())


def test_astigmatic_widths_follow_the_calibration_and_detection_sigma():
    psf = AstigmaticPSF(ASTIG, pixel_size_nm=100.0)
    z = np.array([-400.0, 0.0, 250.0])
    sx, sy, _, _ = psf.sigmas_and_slopes(z)
    ref_x, ref_y = ASTIG.sigma_xy_nm(z)
    np.testing.assert_allclose(sx, ref_x / 100)
    np.testing.assert_allclose(sy, ref_y / 100)
    assert psf.detection_sigma_px == pytest.approx(np.sqrt(sx[1] * sy[1]))
