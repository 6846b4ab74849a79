"""The differentiable SMLM renderer: points -> images of Gaussian spots (torch).

Each 2D point is splatted as an isotropic Gaussian of width σ onto an H×W grid whose
pixel centres span [-1, 1] (the field of view in units of its half-width). The
Gaussian separates, exp(-((u-x)² + (v-y)²)/2σ²) = gx(u)·gy(v), so an image is the sum
over points of outer products: ``einsum('bnh,bnw->bhw', gy, gx)``. That costs
B·N·(H+W) exponentials and memory instead of the B·N·H·W of a dense splat, and is
differentiable in the points and σ (written here: no library renders SMLM points;
mesh renderers such as PyTorch3D rasterise triangles or spheres).

Images are normalised to unit integrated intensity (HOLLy normalises by integrated
intensity so the point count does not set the loss scale), so the L1 distance between
two images lies in [0, 2].
"""

from __future__ import annotations

import torch

_EPS = 1e-12


def pixel_centres(size: int, device: torch.device | None = None) -> torch.Tensor:
    """(size,) pixel-centre coordinates spanning [-1, 1] (field half-width units)."""
    step = 2.0 / size
    return -1 + step * (0.5 + torch.arange(size, device=device, dtype=torch.float32))


def render(
    xy: torch.Tensor,
    sigma: torch.Tensor | float,
    size: int,
    weights: torch.Tensor | None = None,
    *,
    normalise: bool = True,
) -> torch.Tensor:
    """(B, N, 2) points -> (B, size, size) images; rows are y, columns x.

    sigma: Gaussian width (field half-width units), a float or (B,) per image.
    weights: (B, N) per-point intensity (0 drops padding), default 1.
    normalise: divide each image by its integrated intensity.
    """
    centres = pixel_centres(size, xy.device).to(xy.dtype)
    s = torch.as_tensor(sigma, dtype=xy.dtype, device=xy.device)
    s = s.reshape(-1, 1, 1) if s.ndim else s
    inv = 1.0 / (2 * s * s)
    gx = torch.exp(-((centres - xy[..., 0:1]) ** 2) * inv)  # (B, N, W)
    gy = torch.exp(-((centres - xy[..., 1:2]) ** 2) * inv)  # (B, N, H)
    if weights is not None:
        gx = gx * weights[..., None]
    image = torch.einsum("bnh,bnw->bhw", gy, gx)
    if normalise:
        image = image / (image.sum((-2, -1), keepdim=True) + _EPS)
    return image


def blur(images: torch.Tensor, sigma_px: float) -> torch.Tensor:
    """(B, H, W) images blurred by a Gaussian of `sigma_px` pixels (separable, zero-padded);
    the input-σ curriculum for pre-rendered images. Intensity sums are re-normalised."""
    if sigma_px <= 0:
        return images
    radius = max(1, int(3 * sigma_px + 0.5))
    offsets = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-(offsets**2) / (2 * sigma_px**2))
    kernel = kernel / kernel.sum()
    x = images[:, None]
    x = torch.nn.functional.conv2d(x, kernel.reshape(1, 1, 1, -1), padding=(0, radius))
    x = torch.nn.functional.conv2d(x, kernel.reshape(1, 1, -1, 1), padding=(radius, 0))
    x = x[:, 0]
    return x / (x.sum((-2, -1), keepdim=True) + _EPS)
