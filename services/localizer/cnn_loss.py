"""DECODE's loss: count likelihood + Gaussian-mixture likelihood of the true emitters.

For a frame with K true emitters e_j = (x, y, z, N) and network maps p_k, μ_k, σ_k over
pixels k (Speiser et al. 2021):

    L = −log 𝒩(K; Σp, Σp(1−p))                       (count, Gaussian approximation)
        − Σ_j log Σ_k (p_k / Σp) 𝒩(e_j; μ_k, diag σ_k²)  (positions and photons)
        + w_bg · mean_k (b_k − b)²                       (background)

with μ_k = (pixel centre + (dx, dy), z, N). Counts and positions are thus scored
jointly: a pixel's p earns likelihood only where its component explains an emitter.
Units inside: px for x, y, z / z_scale_nm for z, photons / (s·photon_unit) for N and
background / s, s being the network's per-window scale.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class DecodeLoss(nn.Module):
    """Per-batch mean of L above.

    three_d: score z (else x, y, N only). z_scale_nm, photon_unit: as in the preset.
    background_weight: w_bg.
    """

    def __init__(
        self,
        three_d: bool,
        z_scale_nm: float = 1.0,
        photon_unit: float = 100.0,
        background_weight: float = 1.0,
    ) -> None:
        super().__init__()
        self.three_d = three_d
        self.z_scale_nm = z_scale_nm
        self.photon_unit = photon_unit
        self.background_weight = background_weight

    def forward(
        self,
        out: dict[str, torch.Tensor],
        targets: torch.Tensor,
        mask: torch.Tensor,
        background: torch.Tensor,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Loss of network output `out` (see `LocalizerNet.forward`).

        targets: (B, M, 4) true emitters of the centre frame as x_px, y_px (pixel
        coordinates: x_nm / pixel_size_nm), z_nm, photons; padded rows have mask 0.
        mask: (B, M) bool. background: (B,) photons per pixel. Returns the scalar loss
        and its parts (count, gmm, background) as floats.
        """
        p = out["p"]
        batch, height, width = p.shape
        scale = out["scale"]
        rows = torch.arange(height, dtype=p.dtype, device=p.device)[:, None] + 0.5
        cols = torch.arange(width, dtype=p.dtype, device=p.device)[None, :] + 0.5
        means = [out["dx"] + cols, out["dy"] + rows]
        sigmas = [out["sx"], out["sy"]]
        truth = [targets[..., 0], targets[..., 1]]
        if self.three_d:
            means.append(out["z"])
            sigmas.append(out["sz"])
            truth.append(targets[..., 2] / self.z_scale_nm)
        means.append(out["photons"])
        sigmas.append(out["sphotons"])
        truth.append(targets[..., 3] / (scale[:, None] * self.photon_unit))
        mu = torch.stack([m.reshape(batch, -1) for m in means], dim=-1)  # (B, K, D)
        sigma = torch.stack([s.reshape(batch, -1) for s in sigmas], dim=-1)
        t = torch.stack(truth, dim=-1)  # (B, M, D)
        mask_f = mask.to(p.dtype)

        p_flat = p.reshape(batch, -1)
        p_sum = p_flat.sum(dim=1)
        variance = (p_flat * (1 - p_flat)).sum(dim=1) + 1e-6
        count = mask_f.sum(dim=1)
        count_nll = 0.5 * (count - p_sum) ** 2 / variance + 0.5 * torch.log(2 * math.pi * variance)

        z = (t[:, :, None, :] - mu[:, None, :, :]) / sigma[:, None, :, :]  # (B, M, K, D)
        log_comp = (
            -0.5 * z.square() - torch.log(sigma)[:, None] - 0.5 * math.log(2 * math.pi)
        ).sum(-1)
        log_weight = torch.log(p_flat + 1e-12) - torch.log(p_sum + 1e-12)[:, None]
        log_lik = torch.logsumexp(log_comp + log_weight[:, None, :], dim=-1)  # (B, M)
        gmm_nll = -(log_lik * mask_f).sum(dim=1)

        bg_target = (background / scale)[:, None, None]
        bg_mse = (out["background"] - bg_target).square().mean(dim=(1, 2))

        loss = (count_nll + gmm_nll + self.background_weight * bg_mse).mean()
        parts = {
            "count": float(count_nll.detach().mean()),
            "gmm": float(gmm_nll.detach().mean()),
            "background": float(bg_mse.detach().mean()),
        }
        return loss, parts
