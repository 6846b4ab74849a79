"""LocalizerNet: a small U-Net from a window of frames to per-pixel emitter maps.

DECODE family (Speiser et al., Nat Methods 2021; LUENN, Abdehkakha & Snoeyink): the
input is a window of T consecutive frames (t−1, t, t+1) in photons; the output, for
the centre frame, is per pixel a detection probability p, sub-pixel offsets dx, dy
(px from the pixel centre, tanh-bounded to ±1), z (tanh, × z_scale_nm), photons, an
uncertainty σ for each of x, y, z, photons (softplus) and the background.

Intensities are made scale-free: the window is divided by its mean pixel value s
(photons, floored at 1), and photons / background come out in units of s·photon_unit
and s. Shapes: frames (B, T, H, W) -> each map (B, H, W); any H, W (padded to a
multiple of 4 inside and cropped back).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: Output channels, in order.
CHANNELS = ("p_logit", "dx", "dy", "z", "photons", "sx", "sy", "sz", "sphotons", "background")
MIN_SIGMA = 0.01


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1),
        nn.ELU(),
        nn.Conv2d(c_out, c_out, 3, padding=1),
        nn.ELU(),
    )


class LocalizerNet(nn.Module):
    """Two-level U-Net (widths c, 2c, 2c) with a 10-channel per-pixel head.

    n_frames: window length T (odd; the centre frame is localized). channels: c.
    """

    def __init__(self, n_frames: int = 3, channels: int = 32) -> None:
        super().__init__()
        self.n_frames = n_frames
        self.channels = channels
        c = channels
        self.enc0 = _block(n_frames, c)
        self.enc1 = _block(c, 2 * c)
        self.mid = _block(2 * c, 2 * c)
        self.dec1 = _block(4 * c, 2 * c)
        self.dec0 = _block(3 * c, c)
        self.head = nn.Sequential(
            nn.Conv2d(c, c, 3, padding=1), nn.ELU(), nn.Conv2d(c, len(CHANNELS), 1)
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Default conv init; the p logit starts low (few emitters per pixel)."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                module.reset_parameters()
        last = self.head[-1]
        with torch.no_grad():
            last.bias[0] = -4.0

    def forward(self, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        """Maps of the centre frame of `frames` (B, T, H, W) photons; see module docstring.

        Returns p_logit, p, dx, dy (px), z (−1..1), photons (units s·photon_unit),
        sx, sy (px), sz (z units), sphotons, background (units s), each (B, H, W), and
        scale s (B,).
        """
        height, width = frames.shape[-2:]
        scale = frames.mean(dim=(1, 2, 3)).clamp(min=1.0)
        x = frames / scale[:, None, None, None]
        pad_h, pad_w = (-height) % 4, (-width) % 4
        if pad_h or pad_w:
            mode = "reflect" if min(height, width) > max(pad_h, pad_w) else "replicate"
            x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
        e0 = self.enc0(x)
        e1 = self.enc1(F.max_pool2d(e0, 2))
        m = self.mid(F.max_pool2d(e1, 2))
        d1 = self.dec1(torch.cat([F.interpolate(m, scale_factor=2.0), e1], dim=1))
        d0 = self.dec0(torch.cat([F.interpolate(d1, scale_factor=2.0), e0], dim=1))
        raw = self.head(d0)[..., :height, :width]
        out = {name: raw[:, k] for k, name in enumerate(CHANNELS)}
        out["p"] = torch.sigmoid(out["p_logit"])
        for name in ("dx", "dy", "z"):
            out[name] = torch.tanh(out[name])
        for name in ("photons", "background"):
            out[name] = F.softplus(out[name])
        for name in ("sx", "sy", "sz", "sphotons"):
            out[name] = F.softplus(out[name]) + MIN_SIGMA
        out["scale"] = scale
        return out
