"""The camera model of a `FrameBatch`: simulator/localizer camera objects <-> `CameraModel`.

The frame pixels themselves are converted by `pointillist.core.bus.codec` (frames_to_proto,
frames_from_proto), which also splits and tiles them for the bus.
"""

from __future__ import annotations

from typing import Any

from pointillist.core.errors import InvalidInput
from pointillist.v1 import frames_pb2

CAMERA_KINDS = {
    "emccd": frames_pb2.CameraModel.KIND_EMCCD,
    "scmos": frames_pb2.CameraModel.KIND_SCMOS,
    "ccd": frames_pb2.CameraModel.KIND_CCD,
}
CAMERA_FIELDS = (
    "baseline_adu",
    "e_per_adu",
    "em_gain",
    "quantum_efficiency",
    "read_noise_e",
    "pixel_size_nm",
)


def camera_to_proto(camera: Any) -> frames_pb2.CameraModel:
    """From any object (dataclass) with a ``kind`` name and the CameraModel fields."""
    kind = str(camera.kind).lower()
    if kind not in CAMERA_KINDS:
        raise InvalidInput(
            f"unknown camera kind {camera.kind!r}; expected one of {list(CAMERA_KINDS)}"
        )
    return frames_pb2.CameraModel(
        kind=CAMERA_KINDS[kind], **{f: float(getattr(camera, f)) for f in CAMERA_FIELDS}
    )


def camera_from_proto(msg: frames_pb2.CameraModel) -> dict[str, Any]:
    """The camera model as a dict (``kind`` name + fields); rejects a missing or partial model."""
    names = {v: k for k, v in CAMERA_KINDS.items()}
    if msg.kind not in names:
        raise InvalidInput("frame batch has no camera model (camera.kind unset)")
    values = {f: getattr(msg, f) for f in CAMERA_FIELDS}
    for f in ("e_per_adu", "quantum_efficiency", "pixel_size_nm"):
        if not values[f] > 0:
            raise InvalidInput(f"camera model: {f} must be > 0, got {values[f]}")
    if msg.kind == frames_pb2.CameraModel.KIND_EMCCD and not values["em_gain"] >= 1:
        raise InvalidInput(f"camera model: EMCCD em_gain must be >= 1, got {values['em_gain']}")
    return {"kind": names[msg.kind], **values}
