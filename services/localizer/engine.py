"""One localization engine for the CLI, the gRPC servicer and the bus worker.

`Engine` turns a `Chunk` of camera frames (ADU, with temporal context) and a camera
calibration into localizations, with either the CNN (``method="cnn"``, weights by preset
name or file) or the classical MLE fitter (``method="mle"``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pointillist.core.errors import InvalidInput
from pointillist.core.table import LocalizationTable
from pointillist.localizer.calibration import CameraCalibration
from pointillist.localizer.mle_fit import MLEFitter
from pointillist.localizer.window import Chunk
from pointillist.simulator.psf import AstigmaticCalibration

METHODS = ("cnn", "mle")
PRESETS = ("2d", "astig3d")


class Engine:
    """Localize chunks with ``method`` (cnn | mle) and ``model`` (a preset or weights file).

    For the MLE fitter, ``model`` picks the PSF: '2d' (Gaussian, ``psf_sigma_nm``) or
    'astig3d' (the default astigmatic calibration); ``options`` go to the localizer class.
    """

    def __init__(
        self, method: str = "cnn", model: str = "2d", device: str = "auto", **options: Any
    ) -> None:
        if method not in METHODS:
            raise InvalidInput(f"method must be one of {list(METHODS)}, got {method!r}")
        self.method = method
        self.model = model
        if method == "cnn":
            from pointillist.localizer.cnn_decode import CNNLocalizer

            self.cnn = CNNLocalizer.load(model, device=device, **options)
            self.context = self.cnn.preset_.n_frames // 2
            self.pixel_size_nm: float | None = self.cnn.preset_.pixel_size_nm
            self.three_d = self.cnn.preset_.three_d
        else:
            if model not in PRESETS:
                raise InvalidInput(f"the MLE fitter takes model '2d' or 'astig3d', got {model!r}")
            self.three_d = model == "astig3d"
            if self.three_d:
                options.setdefault("astigmatism", AstigmaticCalibration())
            self.mle = MLEFitter(**options)
            self.context = 0
            self.pixel_size_nm = None

    def localize(self, chunk: Chunk, calibration: CameraCalibration) -> LocalizationTable:
        """Localizations (nm) of the chunk's frames; frame numbers are absolute."""
        if self.pixel_size_nm is not None and not np.isclose(
            calibration.pixel_size_nm, self.pixel_size_nm, rtol=0.02
        ):
            raise InvalidInput(
                f"the CNN model {self.model!r} was trained for {self.pixel_size_nm:g} nm pixels, "
                f"the camera has {calibration.pixel_size_nm:g} nm"
            )
        photons = calibration.photons(chunk.padded)
        k, n = chunk.context, chunk.n_frames
        frames = photons[k : k + n]
        if self.method == "cnn":
            return self.cnn.localize(frames, chunk.first_frame, photons[:k], photons[k + n :])
        return self.mle.localize(frames, calibration, chunk.first_frame)

    def empty(self) -> LocalizationTable:
        """A zero-row table with the engine's columns (a batch with no emitters)."""
        names = [
            "x",
            "y",
            *(["z"] if self.three_d else []),
            "photons",
            "background",
            "uncertainty",
            "frame",
        ]
        return LocalizationTable({name: np.zeros(0, np.float32) for name in names})
