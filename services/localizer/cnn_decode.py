"""From CNN output maps to emitters, and `CNNLocalizer`: frames in, localizations out.

Post-processing is DECODE's spatial integration: a pixel whose p (above a floor) is the
maximum of its 3×3 neighbourhood collects the probability of its 4 direct neighbours
(one emitter spread over adjacent pixels); a pixel that is not such a maximum but has
p above `split_threshold` on its own also counts (two emitters in adjacent pixels).
Candidates whose collected probability exceeds `threshold` become localizations at
their pixel centre plus the predicted sub-pixel offset.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import ndimage

from pointillist.core.errors import InvalidInput, NotReady
from pointillist.core.table import LocalizationTable
from pointillist.localizer.cnn_model import LocalizerNet
from pointillist.localizer.presets import Preset, get_preset

WEIGHTS_DIR = Path(__file__).parent / "weights"
_CROSS = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=np.float64)


@dataclass(frozen=True)
class OutputMaps:
    """Network output in physical units, each (n, H, W): probability p, offsets dx_px,
    dy_px from the pixel centre, z_nm, photons, background (photons/px), and the
    predicted standard deviations sigma_x_px, sigma_y_px, sigma_z_nm, sigma_photons."""

    p: np.ndarray
    dx_px: np.ndarray
    dy_px: np.ndarray
    z_nm: np.ndarray
    photons: np.ndarray
    background: np.ndarray
    sigma_x_px: np.ndarray
    sigma_y_px: np.ndarray
    sigma_z_nm: np.ndarray
    sigma_photons: np.ndarray


def decode_maps(
    maps: OutputMaps,
    pixel_size_nm: float,
    *,
    threshold: float = 0.5,
    raw_threshold: float = 0.1,
    split_threshold: float = 0.6,
    first_frame: int = 0,
    three_d: bool = True,
) -> LocalizationTable:
    """Localizations (nm) of output maps; see module docstring for the rule.

    Columns: x, y (nm, pixel (i, j) centre at ((j + 0.5)·px, (i + 0.5)·px) plus the
    offsets), z (nm, only if three_d), photons, background, uncertainty (lateral, nm:
    sqrt((σx² + σy²)/2)), uncertainty_x, uncertainty_y (nm), uncertainty_z (nm, 3D),
    frame (first_frame + map index) and p (the collected probability, ≤ 1).
    """
    p = np.asarray(maps.p, dtype=np.float64)
    if p.ndim != 3:
        raise InvalidInput(f"probability maps must be (n, H, W), got shape {p.shape}")
    floor = np.where(p > raw_threshold, p, 0.0)
    local_max = (p == ndimage.maximum_filter(floor, size=(1, 3, 3), mode="constant")) & (
        p > raw_threshold
    )
    collected = ndimage.convolve(p, _CROSS[None], mode="constant")
    split = ~local_max & (p > split_threshold)
    p_total = np.where(local_max | split, collected, 0.0)
    frame, row, col = np.nonzero(p_total > threshold)
    idx = (frame, row, col)
    sx = maps.sigma_x_px[idx] * pixel_size_nm
    sy = maps.sigma_y_px[idx] * pixel_size_nm
    columns = {
        "x": (col + 0.5 + maps.dx_px[idx]) * pixel_size_nm,
        "y": (row + 0.5 + maps.dy_px[idx]) * pixel_size_nm,
        "photons": maps.photons[idx],
        "background": maps.background[idx],
        "uncertainty": np.sqrt(0.5 * (sx**2 + sy**2)),
        "uncertainty_x": sx,
        "uncertainty_y": sy,
        "frame": frame + first_frame,
        "p": np.minimum(p_total[idx], 1.0).astype(np.float32),
    }
    if three_d:
        columns["z"] = maps.z_nm[idx]
        columns["uncertainty_z"] = maps.sigma_z_nm[idx]
    return LocalizationTable(columns)


def pick_device(device: str) -> torch.device:
    """'auto' -> cuda when available, else cpu; anything else as torch names it."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def build_model(state: dict) -> tuple[LocalizerNet, Preset]:
    """The network and preset stored in a weights or checkpoint dict (see training)."""
    meta = state["meta"]
    preset = get_preset(meta["preset"])
    model = LocalizerNet(n_frames=preset.n_frames, channels=int(meta["channels"]))
    model.load_state_dict({k: v.float() for k, v in state["model"].items()})
    return model.eval(), preset


class CNNLocalizer:
    """Dense-emitter localization with a trained `LocalizerNet`.

    threshold, raw_threshold, split_threshold: see `decode_maps`. batch_frames: frames
    per forward pass. device: 'auto' (cuda when present), 'cpu', 'cuda', ...
    Learned state (`model_`, `preset_`, `meta_`) comes from `load` or `from_model`.
    """

    def __init__(
        self,
        threshold: float = 0.5,
        raw_threshold: float = 0.1,
        split_threshold: float = 0.6,
        batch_frames: int = 16,
        device: str = "auto",
    ) -> None:
        self.threshold = threshold
        self.raw_threshold = raw_threshold
        self.split_threshold = split_threshold
        self.batch_frames = batch_frames
        self.device = device

    @classmethod
    def load(cls, path_or_preset: str | Path, **params: Any) -> CNNLocalizer:
        """A localizer with weights from a file, or the shipped weights of a preset name
        ('2d', 'astig3d'); `params` go to __init__."""
        path = Path(path_or_preset)
        if not path.exists() and str(path_or_preset) in ("2d", "astig3d"):
            path = WEIGHTS_DIR / f"{path_or_preset}.pt"
        if not path.is_file():
            raise InvalidInput(f"no CNN weights at {str(path_or_preset)!r}")
        state = torch.load(path, map_location="cpu", weights_only=False)
        if not isinstance(state, dict) or "model" not in state or "meta" not in state:
            raise InvalidInput(f"{path} is not a Pointillist CNN weights file")
        model, preset = build_model(state)
        return cls(**params).from_model(model, preset, state["meta"])

    def from_model(
        self, model: LocalizerNet, preset: Preset, meta: dict | None = None
    ) -> CNNLocalizer:
        """Use `model` (trained for `preset`) as this localizer's network; returns self."""
        self.device_ = pick_device(self.device)
        self.model_ = model.to(self.device_).eval()
        self.preset_ = preset
        self.meta_ = dict(meta or {})
        return self

    def _check_loaded(self) -> None:
        if not hasattr(self, "model_"):
            raise NotReady("CNNLocalizer has no network: use CNNLocalizer.load(...) first")

    def predict_maps(
        self,
        frames_photons: np.ndarray,
        before: np.ndarray | None = None,
        after: np.ndarray | None = None,
    ) -> OutputMaps:
        """Output maps of every frame of `frames_photons` (n, H, W), photons per pixel.

        The temporal window of frame t is (t−h .. t+h), h = n_frames // 2; at the edges
        it takes frames from `before` / `after` (the h frames just before / after, as
        from the previous or next chunk of a stream), else repeats the edge frame.
        """
        self._check_loaded()
        frames = np.asarray(frames_photons, dtype=np.float32)
        if frames.ndim != 3 or frames.shape[0] == 0:
            raise InvalidInput(f"frames must be a non-empty (n, H, W) array, got {frames.shape}")
        if not np.all(np.isfinite(frames)):
            raise InvalidInput("frames must be finite")
        half = self.preset_.n_frames // 2
        padded = np.concatenate(
            [
                _context(before, frames[:1], half, frames.shape[1:], last=True),
                frames,
                _context(after, frames[-1:], half, frames.shape[1:], last=False),
            ]
        )
        windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1, axis=0)
        windows = np.moveaxis(windows, -1, 1)  # (n, T, H, W)
        outs: dict[str, list[np.ndarray]] = {}
        with torch.no_grad():
            for start in range(0, len(windows), self.batch_frames):
                chunk = torch.from_numpy(windows[start : start + self.batch_frames].copy())
                out = self.model_(chunk.to(self.device_))
                scale = out["scale"][:, None, None]
                physical = {
                    "p": out["p"],
                    "dx_px": out["dx"],
                    "dy_px": out["dy"],
                    "z_nm": out["z"] * self.preset_.z_scale_nm,
                    "photons": out["photons"] * scale * self.preset_.photon_unit,
                    "background": out["background"] * scale,
                    "sigma_x_px": out["sx"],
                    "sigma_y_px": out["sy"],
                    "sigma_z_nm": out["sz"] * self.preset_.z_scale_nm,
                    "sigma_photons": out["sphotons"] * scale * self.preset_.photon_unit,
                }
                for name, value in physical.items():
                    outs.setdefault(name, []).append(value.float().cpu().numpy())
        return OutputMaps(**{name: np.concatenate(v) for name, v in outs.items()})

    def localize(
        self,
        frames_photons: np.ndarray,
        first_frame: int = 0,
        before: np.ndarray | None = None,
        after: np.ndarray | None = None,
    ) -> LocalizationTable:
        """Localizations (nm) in `frames_photons` (n, H, W) photons per pixel; frame
        indices start at `first_frame`; `before` / `after` as in `predict_maps`."""
        maps = self.predict_maps(frames_photons, before, after)
        return decode_maps(
            maps,
            self.preset_.pixel_size_nm,
            threshold=self.threshold,
            raw_threshold=self.raw_threshold,
            split_threshold=self.split_threshold,
            first_frame=first_frame,
            three_d=self.preset_.three_d,
        )


def _context(
    given: np.ndarray | None, edge: np.ndarray, half: int, shape: tuple, *, last: bool
) -> np.ndarray:
    """`half` context frames: the nearest ones of `given`, topped up by repeating `edge`."""
    if given is None or half == 0:
        return np.repeat(edge, half, axis=0)
    given = np.asarray(given, dtype=np.float32)
    if given.ndim != 3 or given.shape[1:] != tuple(shape):
        raise InvalidInput(f"context frames must be (k, {shape[0]}, {shape[1]}), got {given.shape}")
    given = given[-half:] if last else given[:half]
    if len(given) == 0:
        return np.repeat(edge, half, axis=0)
    if last:
        return np.concatenate([np.repeat(given[:1], half - len(given), axis=0), given])
    return np.concatenate([given, np.repeat(given[-1:], half - len(given), axis=0)])
