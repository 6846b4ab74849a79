"""PC-VAE loss (paper eqs. 3–5): masked symmetric Chamfer + β(t) · KL divergence.

Point clouds come padded, (B, n, dims) with a (B, n) validity mask, so particles with
different localization counts share a batch; padded points never enter a minimum or a
sum. The sigmoid warm-up of β over the first `warmup_steps` optimisation steps is

    β(t) = β / (1 + exp(−12 (t / T − 1/2)))   for t < T,     β(t) = β   for t ≥ T,

so β(0) = β·σ(−6) ≈ 0.0025 β, β(T/2) = β/2, β(T) = β (T = 5000 in the paper).
"""

from __future__ import annotations

import math

import torch

WARMUP_STEEPNESS = 12.0
"""Slope of the sigmoid warm-up in units of 1 / warmup_steps (β(0) = σ(−6) β)."""


def chamfer_distance(
    points: torch.Tensor,
    mask: torch.Tensor,
    reconstruction: torch.Tensor,
    reconstruction_mask: torch.Tensor,
) -> torch.Tensor:
    """Symmetric Chamfer distance per particle (B,) with squared Euclidean distances.

    Each direction's sum of nearest-neighbour squared distances is divided by its own
    point count: for equal counts N this is paper eq. 4, (1/N)(Σ_x min ‖x − x̂‖² +
    Σ_x̂ min ‖x − x̂‖²). Written out with masks because no library Chamfer handles
    padded, unequal-size clouds without a CUDA extension.
    """
    squared = (points[:, :, None, :] - reconstruction[:, None, :, :]).square().sum(-1)
    pair_valid = mask[:, :, None] & reconstruction_mask[:, None, :]
    squared = squared.masked_fill(~pair_valid, math.inf)
    forward = squared.min(dim=2).values.masked_fill(~mask, 0.0).sum(1)
    backward = squared.min(dim=1).values.masked_fill(~reconstruction_mask, 0.0).sum(1)
    return forward / mask.sum(1) + backward / reconstruction_mask.sum(1)


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(0, I)) per particle (B,) from μ, log σ² (B, d) (paper eq. 5)."""
    return 0.5 * (mu.square() + logvar.exp() - logvar - 1.0).sum(1)


def beta_schedule(step: int, beta: float, warmup_steps: int) -> float:
    """β at optimisation step `step` (0-based): sigmoid warm-up to `beta` (module docstring)."""
    if step >= warmup_steps:
        return beta
    return beta / (1.0 + math.exp(-WARMUP_STEEPNESS * (step / warmup_steps - 0.5)))
