"""Camera frames <-> `FrameBatch`: raw uint16 counts plus the camera model, no per-pixel loop."""

from __future__ import annotations

from typing import Any

import numpy as np

from pointillist.core.errors import InvalidInput
from pointillist.core.table import numpy_dtype, proto_dtype
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


def frames_to_proto(
    frames: np.ndarray,
    *,
    camera: frames_pb2.CameraModel,
    run_id: str = "",
    seq: int = 0,
    first_frame: int = 0,
) -> frames_pb2.FrameBatch:
    """A (n_frames, height, width) or (height, width) array as one FrameBatch."""
    frames = np.asarray(frames)
    if frames.ndim == 2:
        frames = frames[None]
    if frames.ndim != 3:
        raise InvalidInput(f"frames must be (n, height, width), got shape {frames.shape}")
    n, h, w = frames.shape
    return frames_pb2.FrameBatch(
        run_id=run_id,
        seq=seq,
        first_frame=first_frame,
        n_frames=n,
        height=h,
        width=w,
        dtype=proto_dtype(frames.dtype),
        data=np.ascontiguousarray(frames, dtype=frames.dtype.newbyteorder("<")).tobytes(),
        camera=camera,
    )


def frames_from_proto(msg: frames_pb2.FrameBatch) -> np.ndarray:
    """The (n_frames, height, width) array of a whole (not tiled) FrameBatch, read-only view."""
    if msg.n_frames == 0 or msg.height == 0 or msg.width == 0:
        raise InvalidInput(
            f"frame batch has an empty shape ({msg.n_frames}, {msg.height}, {msg.width})"
        )
    dt = numpy_dtype(msg.dtype)
    expected = msg.n_frames * msg.height * msg.width * dt.itemsize
    if len(msg.data) != expected:
        raise InvalidInput(
            f"frame batch data has {len(msg.data)} bytes, expected {expected} for "
            f"{msg.n_frames}x{msg.height}x{msg.width} {dt}"
        )
    return np.frombuffer(msg.data, dtype=dt).reshape(msg.n_frames, msg.height, msg.width)
