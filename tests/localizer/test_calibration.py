import dataclasses

import numpy as np
import pytest
import tifffile

from pointillist.core.errors import InvalidInput
from pointillist.core.frames import camera_to_proto
from pointillist.localizer.calibration import CameraCalibration
from pointillist.simulator.camera import Camera, expose, scmos_pixel_maps
from pointillist.v1 import frames_pb2

SCMOS = Camera(kind="scmos", em_gain=1, e_per_adu=0.5, read_noise_e=1.6, quantum_efficiency=0.8)


def calibration_of(camera: Camera, **maps: np.ndarray) -> CameraCalibration:
    fields = {f.name: getattr(camera, f.name) for f in dataclasses.fields(camera)}
    return CameraCalibration(**fields, **maps)


def scmos_params() -> dict:
    return {f.name: getattr(SCMOS, f.name) for f in dataclasses.fields(SCMOS)}


def test_from_proto_round_trip_and_missing_model():
    cal = CameraCalibration.from_proto(camera_to_proto(Camera()))
    assert cal.kind == "emccd"
    assert (cal.em_gain, cal.e_per_adu, cal.pixel_size_nm) == (100.0, 12.0, 100.0)
    with pytest.raises(InvalidInput, match="no camera model"):
        CameraCalibration.from_proto(frames_pb2.CameraModel())


def test_from_dict_names_the_missing_value():
    params = scmos_params()
    del params["pixel_size_nm"]
    with pytest.raises(InvalidInput, match="pixel_size_nm"):
        CameraCalibration.from_dict(params)
    with pytest.raises(InvalidInput, match="unknown field"):
        CameraCalibration.from_dict({**scmos_params(), "gain": 2.0})
    with pytest.raises(InvalidInput, match="e_per_adu must be a number"):
        CameraCalibration.from_dict({**scmos_params(), "e_per_adu": "fast"})
    assert CameraCalibration.from_dict({**scmos_params(), "e_per_adu": "0.5"}).e_per_adu == 0.5


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": "emccd", "em_gain": 0.5}, "em_gain must be >= 1"),
        ({"em_gain": 10.0}, "em_gain must be 1 for a scmos"),
        ({"pixel_size_nm": 0.0}, "pixel_size_nm must be > 0"),
        ({"quantum_efficiency": 1.2}, "quantum_efficiency"),
        ({"read_noise_e": float("nan")}, "read_noise_e must be finite"),
        ({"kind": "cmos"}, "kind must be one of"),
    ],
)
def test_bad_calibrations_raise(change, message):
    with pytest.raises(InvalidInput, match=message):
        CameraCalibration(**{**scmos_params(), **change})


def test_emccd_photons_invert_the_mean_chain_and_counts_are_poisson():
    camera = Camera()
    cal = calibration_of(camera)
    expected = np.full((400, 8, 8), 30.0)
    adu = expose(expected, camera, seed=3)
    photons = cal.photons(adu)
    assert photons.dtype == np.float32
    assert photons.mean() == pytest.approx(30.0, rel=0.01)
    # Effective counts (photoelectrons / 2 at EM gain) have variance ≈ mean (Fano ≈ 1);
    # plain photoelectrons would have twice that.
    counts = photons * cal.counts_per_photon
    assert counts.var() / counts.mean() == pytest.approx(1.0, abs=0.06)
    assert cal.read_variance_photons2() == pytest.approx((74.4 / 100 / 0.9) ** 2)
    # Without EM gain there is no excess noise: counts are photoelectrons, as on an sCMOS.
    no_em = dataclasses.replace(cal, em_gain=1.0)
    assert no_em.counts_per_photon == pytest.approx(0.9)
    assert cal.counts_per_photon == pytest.approx(0.9 / 1.99)


def test_scmos_maps_convert_per_pixel():
    shape = (12, 10)
    maps = scmos_pixel_maps(SCMOS, shape, seed=1, offset_sd_adu=20.0, gain_cv=0.2)
    variance = (maps.read_noise_e / maps.e_per_adu) ** 2
    cal = CameraCalibration.from_maps(
        scmos_params(),
        offset_adu=maps.offset_adu,
        variance_adu2=variance,
        gain_e_per_adu=maps.e_per_adu,
    )
    expected = np.full((300, *shape), 200.0)
    adu = expose(expected, SCMOS, seed=2, maps=maps)
    per_pixel = cal.photons(adu).mean(axis=0)
    scalar = calibration_of(SCMOS).photons(adu).mean(axis=0)
    # With the maps every pixel is unbiased; the scalar calibration is off pixel by pixel.
    assert np.max(np.abs(per_pixel - 200.0)) < 4.0
    assert np.sqrt(np.mean((scalar - 200.0) ** 2)) > 20.0
    # The same count is a different number of photons on pixels of different gain.
    flat = cal.photons(np.full((1, *shape), 1000, np.uint16))[0]
    assert flat.std() > 0.1 * flat.mean()
    read = cal.read_variance_photons2()
    assert read.shape == shape
    np.testing.assert_allclose(read, (maps.read_noise_e / 0.8) ** 2, rtol=1e-9)


def test_maps_from_files_crop_and_shape_checks(tmp_path):
    rng = np.random.default_rng(0)
    offset = 100 + rng.normal(0, 2, (16, 20))
    np.save(tmp_path / "offset.npy", offset)
    tifffile.imwrite(tmp_path / "variance.tif", np.full((16, 20), 4.0, np.float32))
    cal = CameraCalibration.from_dict(
        {
            **scmos_params(),
            "offset_adu": str(tmp_path / "offset.npy"),
            "variance_adu2": tmp_path / "variance.tif",
            "gain_e_per_adu": np.full((16, 20), 0.5),
        }
    )
    assert cal.map_shape == (16, 20)
    roi = cal.crop(4, 6, 8, 10)
    np.testing.assert_array_equal(roi.offset_adu, offset[4:12, 6:16])
    assert roi.photons(np.zeros((2, 8, 10), np.uint16)).shape == (2, 8, 10)
    with pytest.raises(InvalidInput, match="do not match"):
        cal.photons(np.zeros((2, 8, 10), np.uint16))
    with pytest.raises(InvalidInput, match="outside"):
        cal.crop(10, 0, 8, 10)
    with pytest.raises(InvalidInput, match="does not exist"):
        CameraCalibration.from_dict({**scmos_params(), "offset_adu": tmp_path / "none.npy"})
    with pytest.raises(InvalidInput, match="differ in shape"):
        CameraCalibration(**scmos_params(), offset_adu=offset, gain_e_per_adu=np.ones((3, 3)))
    with pytest.raises(InvalidInput, match="sCMOS"):
        CameraCalibration(**{**scmos_params(), "kind": "ccd"}, offset_adu=offset)
