"""HOLLy's network: a CNN that reads a view's pose and the output σ, and the learned points.

As in Blundell et al. (HOLLy, Fig. 1): strided convolutions with Leaky-ReLU, then two
fully connected layers, giving six numbers per image — an axis-angle rotation (3), a
translation tx, ty (bounded: `MAX_SHIFT`) and the output σ the renderer uses (relative
to the input σ, bounded: `SIGMA_FACTOR`). Our CNN has 10 convolutions in
five stages of (3×3 stride 2, 3×3 stride 1), channel widths doubling from `width`, so
an image of `image_px` (a multiple of 32) ends as a (16·width)×(image_px/32)² map.
The 3D model is an (N, 3) parameter in field half-width units, initialised uniformly
at random in a ball; after training the CNN is discarded and the points are the result.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from pointillist.reconstructor.geometry import project
from pointillist.reconstructor.render import render

STAGES = 5
LEAKY_SLOPE = 0.1
SIGMA_FACTOR = 4.0
"""The output σ stays within [1/4, 4] × the input σ. Unbounded (softplus), it ran away
to ~10⁶ nm on CPU runs of the asymmetric model once the input σ was small; a uniform
image then has no gradient back."""
MAX_SHIFT = 0.5
"""|tx|, |ty| at most half the field's half-width: views are centred on their mean
localization, so the structure's centre is near the middle. Unbounded, a run of the
asymmetric model shifted every render out of the field (loss 1, no gradient back)."""
MAX_RADIUS = 1.0
"""Points are kept within the field's inscribed ball (`Holly.keep_in_field`): a point
beyond it can leave every view and would never get a gradient back."""


class PoseNet(nn.Module):
    """(B, 1, S, S) images -> rotvec (B, 3), shift (B, 2), sigma (B,).

    Weights start as He et al. (2015) prescribe for Leaky-ReLU (variance 2 / ((1 + a²)
    fan_in)), biases at zero. With PyTorch's default initialisation the signal that
    tells one image from another shrinks through the 12 layers to ~10⁻⁵ of the
    features (their spread over 256 different views), so every view gets the same pose
    and the loss has nothing to turn the network with; a run then either breaks out
    late by chance or never does (1 cylinder run in 5 stayed at one pose for all 60
    epochs; bench/RESULTS.md, "Reconstructor"). With He initialisation the poses
    differ from the first step on.
    """

    def __init__(self, image_px: int, width: int = 16, hidden: int = 256) -> None:
        super().__init__()
        if image_px % 2**STAGES:
            raise ValueError(f"image_px must be a multiple of {2**STAGES}, got {image_px}")
        layers: list[nn.Module] = []
        channels = 1
        for stage in range(STAGES):
            out = width * 2**stage
            layers += [
                nn.Conv2d(channels, out, 3, stride=2, padding=1),
                nn.LeakyReLU(LEAKY_SLOPE),
                nn.Conv2d(out, out, 3, stride=1, padding=1),
                nn.LeakyReLU(LEAKY_SLOPE),
            ]
            channels = out
        self.features = nn.Sequential(*layers)
        side = image_px // 2**STAGES
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels * side * side, hidden),
            nn.LeakyReLU(LEAKY_SLOPE),
            nn.Linear(hidden, 6),
        )
        for layer in self.modules():
            if isinstance(layer, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(layer.weight, a=LEAKY_SLOPE, nonlinearity="leaky_relu")
                nn.init.zeros_(layer.bias)

    def forward(
        self, images: torch.Tensor, sigma_in: float
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The output σ is the input σ times a factor in [1/4, 4] (`SIGMA_FACTOR`)."""
        out = self.head(self.features(images))
        sigma = sigma_in * torch.exp(math.log(SIGMA_FACTOR) * torch.tanh(out[:, 5]))
        return out[:, :3], MAX_SHIFT * torch.tanh(out[:, 3:5]), sigma


class Holly(nn.Module):
    """PoseNet + the learned (N, 3) points; forward renders each image's prediction."""

    def __init__(
        self,
        n_points: int,
        image_px: int,
        width: int,
        init_radius: float,
        generator: torch.Generator,
    ) -> None:
        super().__init__()
        self.image_px = image_px
        self.net = PoseNet(image_px, width)
        direction = torch.randn(n_points, 3, generator=generator)
        direction = direction / direction.norm(dim=1, keepdim=True).clamp_min(1e-6)
        radius = init_radius * torch.rand(n_points, 1, generator=generator) ** (1 / 3)
        self.points = nn.Parameter(direction * radius)

    def forward(
        self, images: torch.Tensor, sigma_in: float
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, S, S) unit-sum images -> rendered (B, S, S), rotvec, shift, sigma."""
        scaled = images[:, None] * images.shape[-1] * images.shape[-2]  # mean pixel 1
        rotvec, shift, sigma = self.net(scaled, sigma_in)
        xy = project(self.points, rotvec, shift)
        return render(xy, sigma, self.image_px), rotvec, shift, sigma

    @torch.no_grad()
    def keep_in_field(self) -> None:
        """Pull points beyond `MAX_RADIUS` back onto it (after each optimiser step)."""
        norm = self.points.norm(dim=1, keepdim=True)
        self.points.mul_(torch.clamp(MAX_RADIUS / norm.clamp_min(1e-12), max=1.0))
