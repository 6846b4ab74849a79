from types import SimpleNamespace

import numpy as np
import pytest

from pointillist.core.bus.codec import frames_from_proto, frames_to_proto
from pointillist.core.errors import InvalidInput
from pointillist.core.frames import camera_from_proto, camera_to_proto

CAMERA = SimpleNamespace(
    kind="emccd",
    baseline_adu=100,
    e_per_adu=45,
    em_gain=100,
    quantum_efficiency=0.9,
    read_noise_e=74.4,
    pixel_size_nm=100,
)


def test_frames_round_trip_bit_exact():
    frames = np.random.default_rng(0).integers(0, 65535, (3, 17, 31), dtype=np.uint16)
    msg = frames_to_proto(frames, camera=camera_to_proto(CAMERA), run_id="r", seq=4, first_frame=30)
    assert (msg.n_frames, msg.height, msg.width, msg.first_frame) == (3, 17, 31, 30)
    np.testing.assert_array_equal(frames_from_proto(msg), frames)
    assert camera_from_proto(msg.camera) == {**vars(CAMERA), "kind": "emccd"}


def test_wrong_sizes_and_missing_camera_are_rejected():
    msg = frames_to_proto(np.zeros((2, 4, 4), np.uint16), camera=camera_to_proto(CAMERA))
    msg.height = 5
    with pytest.raises(InvalidInput, match="bytes"):
        frames_from_proto(msg)
    msg.ClearField("camera")
    with pytest.raises(InvalidInput, match="camera"):
        camera_from_proto(msg.camera)
    with pytest.raises(InvalidInput, match="height, width"):
        frames_to_proto(np.zeros(5, np.uint16), camera=camera_to_proto(CAMERA))


def test_partial_camera_model_is_an_error_not_a_default():
    cam = camera_to_proto(CAMERA)
    cam.e_per_adu = 0
    with pytest.raises(InvalidInput, match="e_per_adu"):
        camera_from_proto(cam)
