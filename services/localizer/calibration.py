"""Camera calibration: camera counts (ADU) -> photons, and the noise model the fitter uses.

Photons are the mean inverse of the camera chain of `pointillist.simulator.camera`:
photons = (adu − offset)·e_per_adu / em_gain / QE, with a per-pixel offset and gain on
an sCMOS. Photons are what the tables report; the likelihoods work in *effective
Poisson counts* c = photons·`counts_per_photon`:

- CCD / sCMOS: c = photoelectrons (= QE·photons), exactly Poisson, plus Gaussian read
  noise whose variance `read_variance_photons2` (per pixel on an sCMOS) enters the
  likelihood as in Huang et al. 2013 (Nat. Methods 10:653): the read variance (in
  counts²) is added to both data and model, and the sum is treated as Poisson.
- EMCCD: the multiplication register multiplies the variance by the excess noise
  factor F² = 2 − 1/em_gain (→ 2 at high gain), so c = photoelectrons / F², whose
  variance equals its mean again. The Poisson MLE on c is the usual practice (Mortensen
  et al. 2010), and the CRLBs are computed on c too, so they include the factor F²
  (√2 on the lateral precision at high gain).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from pointillist.core.errors import InvalidInput
from pointillist.core.frames import camera_from_proto
from pointillist.v1 import frames_pb2

CAMERA_KINDS = ("emccd", "scmos", "ccd")
SCALAR_FIELDS = (
    "baseline_adu",
    "e_per_adu",
    "em_gain",
    "quantum_efficiency",
    "read_noise_e",
    "pixel_size_nm",
)
MAP_FIELDS = ("offset_adu", "variance_adu2", "gain_e_per_adu")

MapSource = np.ndarray | str | Path


@dataclass(frozen=True, eq=False)
class CameraCalibration:
    """A camera's calibration; the scalars are those of the proto `CameraModel`.

    kind: 'emccd' | 'scmos' | 'ccd'. baseline_adu: offset (ADU); e_per_adu: conversion
    gain (electrons per ADU, after EM gain); em_gain: EM multiplication (1 unless EMCCD);
    quantum_efficiency in (0, 1]; read_noise_e: read noise (electrons rms at the output);
    pixel_size_nm: pixel size in the sample plane. sCMOS only, optional per-pixel maps
    of the full sensor, shape (H, W), replacing the scalars pixel by pixel: offset_adu,
    variance_adu2 (read-noise variance, ADU²), gain_e_per_adu (electrons per ADU).
    """

    kind: str
    baseline_adu: float
    e_per_adu: float
    em_gain: float
    quantum_efficiency: float
    read_noise_e: float
    pixel_size_nm: float
    offset_adu: np.ndarray | None = None
    variance_adu2: np.ndarray | None = None
    gain_e_per_adu: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.kind not in CAMERA_KINDS:
            raise InvalidInput(
                f"camera kind must be one of {list(CAMERA_KINDS)}, got {self.kind!r}"
            )
        for name in SCALAR_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float | np.number):
                raise InvalidInput(f"camera calibration: {name} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise InvalidInput(f"camera calibration: {name} must be finite, got {value}")
        _require(self.baseline_adu >= 0, f"baseline_adu must be >= 0, got {self.baseline_adu}")
        _require(self.e_per_adu > 0, f"e_per_adu must be > 0, got {self.e_per_adu}")
        _require(self.em_gain >= 1, f"em_gain must be >= 1, got {self.em_gain}")
        _require(
            self.kind == "emccd" or self.em_gain == 1,
            f"em_gain must be 1 for a {self.kind} camera (only an EMCCD has EM gain), "
            f"got {self.em_gain}",
        )
        _require(
            0 < self.quantum_efficiency <= 1,
            f"quantum_efficiency must be in (0, 1], got {self.quantum_efficiency}",
        )
        _require(self.read_noise_e >= 0, f"read_noise_e must be >= 0, got {self.read_noise_e}")
        _require(self.pixel_size_nm > 0, f"pixel_size_nm must be > 0, got {self.pixel_size_nm}")
        maps = {n: getattr(self, n) for n in MAP_FIELDS if getattr(self, n) is not None}
        _require(
            not maps or self.kind == "scmos",
            f"per-pixel maps {sorted(maps)} are for an sCMOS camera, not {self.kind!r}",
        )
        shapes = set()
        for name, value in maps.items():
            arr = np.asarray(value, dtype=np.float64)
            _require(arr.ndim == 2, f"{name} map must be 2-D (H, W), got shape {arr.shape}")
            _require(bool(np.all(np.isfinite(arr))), f"{name} map has non-finite values")
            shapes.add(arr.shape)
            object.__setattr__(self, name, arr)
        _require(len(shapes) <= 1, f"per-pixel maps differ in shape: {sorted(shapes)}")
        if self.variance_adu2 is not None:
            _require(bool(np.all(self.variance_adu2 >= 0)), "variance_adu2 map must be >= 0")
        if self.gain_e_per_adu is not None:
            _require(bool(np.all(self.gain_e_per_adu > 0)), "gain_e_per_adu map must be > 0")

    @classmethod
    def from_proto(cls, msg: frames_pb2.CameraModel) -> CameraCalibration:
        """From the `CameraModel` of a `FrameBatch` (validated by `camera_from_proto`)."""
        return cls(**camera_from_proto(msg))

    @classmethod
    def from_dict(cls, params: Mapping[str, Any]) -> CameraCalibration:
        """From a YAML/CLI dict: `kind` and every scalar field are required (no defaults);
        map fields, if present, are arrays or paths to .npy/.tif files."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(params) - known)
        _require(not unknown, f"unknown field(s) {unknown}; expected {sorted(known)}")
        missing = [n for n in ("kind", *SCALAR_FIELDS) if params.get(n) is None]
        _require(not missing, f"missing value(s) {missing}")
        scalars = {n: params[n] for n in SCALAR_FIELDS}
        for name, value in scalars.items():
            if isinstance(value, str):
                try:
                    scalars[name] = float(value)
                except ValueError:
                    raise InvalidInput(
                        f"camera calibration: {name} must be a number, got {value!r}"
                    ) from None
        maps = {n: load_map(params[n], n) for n in MAP_FIELDS if params.get(n) is not None}
        return cls(kind=str(params["kind"]).lower(), **scalars, **maps)

    @classmethod
    def from_maps(
        cls,
        camera: CameraCalibration | Mapping[str, Any],
        *,
        offset_adu: MapSource,
        variance_adu2: MapSource,
        gain_e_per_adu: MapSource,
    ) -> CameraCalibration:
        """An sCMOS calibration: the scalars of `camera` plus all three per-pixel maps,
        each an (H, W) array or a path to a .npy or .tif file."""
        base = camera if isinstance(camera, CameraCalibration) else cls.from_dict(camera)
        _require(base.kind == "scmos", f"per-pixel maps need an sCMOS camera, not {base.kind!r}")
        return replace(
            base,
            offset_adu=load_map(offset_adu, "offset_adu"),
            variance_adu2=load_map(variance_adu2, "variance_adu2"),
            gain_e_per_adu=load_map(gain_e_per_adu, "gain_e_per_adu"),
        )

    @property
    def map_shape(self) -> tuple[int, int] | None:
        """(H, W) of the per-pixel maps, or None without maps."""
        for name in MAP_FIELDS:
            value = getattr(self, name)
            if value is not None:
                return value.shape
        return None

    @property
    def counts_per_photon(self) -> float:
        """Effective Poisson counts per photon: QE / F², F² = 2 − 1/em_gain (module doc)."""
        return self.quantum_efficiency / (2.0 - 1.0 / self.em_gain)

    def crop(self, row0: int, col0: int, height: int, width: int) -> CameraCalibration:
        """The calibration of a region of interest (rows row0.., columns col0.. of the sensor)."""
        shape = self.map_shape
        if shape is None:
            return self
        _require(
            row0 >= 0 and col0 >= 0 and row0 + height <= shape[0] and col0 + width <= shape[1],
            f"ROI rows {row0}:{row0 + height}, cols {col0}:{col0 + width} outside the "
            f"{shape[0]}x{shape[1]} calibration maps",
        )
        window = (slice(row0, row0 + height), slice(col0, col0 + width))
        return replace(
            self,
            **{n: getattr(self, n)[window] for n in MAP_FIELDS if getattr(self, n) is not None},
        )

    def photons(self, adu_frames: np.ndarray) -> np.ndarray:
        """Photons per pixel (float32, same shape) of camera counts `adu_frames` (..., H, W)."""
        adu = np.asarray(adu_frames)
        self.check_frame_shape(adu.shape)
        offset = self.baseline_adu if self.offset_adu is None else self.offset_adu
        gain = self.e_per_adu if self.gain_e_per_adu is None else self.gain_e_per_adu
        scale = np.asarray(gain / (self.em_gain * self.quantum_efficiency), dtype=np.float32)
        return (adu.astype(np.float32) - np.asarray(offset, dtype=np.float32)) * scale

    def read_variance_photons2(self) -> np.ndarray:
        """Read-noise variance referred to the input, in photon² (scalar array or (H, W)).

        σ_read = read_noise_e / em_gain electrons (or sqrt(variance_adu2)·gain_e_per_adu
        per sCMOS pixel), divided by QE to photons.
        """
        if self.variance_adu2 is not None:
            gain = self.e_per_adu if self.gain_e_per_adu is None else self.gain_e_per_adu
            electrons2 = self.variance_adu2 * np.square(gain)
        else:
            electrons2 = np.asarray((self.read_noise_e / self.em_gain) ** 2)
        return electrons2 / self.quantum_efficiency**2

    def check_frame_shape(self, shape: tuple[int, ...]) -> None:
        """Raise `InvalidInput` unless frames of `shape` (..., H, W) fit the maps."""
        maps = self.map_shape
        _require(
            len(shape) >= 2 and (maps is None or tuple(shape[-2:]) == maps),
            f"frames of shape {tuple(shape)} do not match the {maps} calibration maps; "
            "crop the calibration to the frame's region of interest",
        )


def load_map(source: MapSource, name: str) -> np.ndarray:
    """A per-pixel map from an array or a .npy / .tif(f) file, as float64."""
    if isinstance(source, str | Path):
        path = Path(source)
        _require(path.is_file(), f"{name} map file {str(path)!r} does not exist")
        suffix = path.suffix.lower()
        if suffix == ".npy":
            arr = np.load(path, allow_pickle=False)
        elif suffix in (".tif", ".tiff"):
            import tifffile

            arr = tifffile.imread(path)
        else:
            raise InvalidInput(f"{name} map file {str(path)!r}: expected .npy or .tif")
    else:
        arr = np.asarray(source)
    _require(arr.dtype.kind in "fiu", f"{name} map must be numeric, got dtype {arr.dtype}")
    return np.asarray(arr, dtype=np.float64)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise InvalidInput(f"camera calibration: {message}")
