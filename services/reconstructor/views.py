"""Views: the 2D localization sets HOLLy fits, one per particle, packed for the renderer.

Each view is centred on its mean localization (the structure's pose translation is
learned on top) and expressed in units of the field's half-width `half_width_nm`, the
coordinate system of `render`. The field is chosen from the data when not given:
`FIELD_MARGIN` times the 99th percentile of the localizations' distance to their
view's centre, so a structure fills most of the image in any pose.

Views with many localizations are randomly thinned to `max_localizations` for
rendering (the image is a density; HOLLy pre-renders its 5,000–30,000-localization
CEP152 views for the same reason).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from pointillist.core.errors import InvalidInput
from pointillist.core.particles import Particles
from pointillist.reconstructor.render import blur, pixel_centres, render

FIELD_MARGIN = 1.25


@dataclass(frozen=True)
class ViewSet:
    """Packed views: xy (V, L, 2) in half-width units about each view's centre, weights
    (V, L) 1 for a localization and 0 for padding; ids the particle ids; centres_nm (V, 2)
    the view centres subtracted; half_width_nm the field's half-width."""

    xy: torch.Tensor
    weights: torch.Tensor
    ids: np.ndarray
    centres_nm: np.ndarray
    half_width_nm: float

    def __len__(self) -> int:
        return len(self.ids)

    def to(self, device: str | torch.device) -> ViewSet:
        return ViewSet(
            self.xy.to(device),
            self.weights.to(device),
            self.ids,
            self.centres_nm,
            self.half_width_nm,
        )

    def field_radius(self) -> float:
        """The 90th percentile of localization distances to their view centre (half-widths)."""
        return float(torch.quantile(self.xy[self.weights > 0].norm(dim=-1).cpu(), 0.9))

    def render(
        self, index: torch.Tensor, sigma_nm: float, size: int, angles: torch.Tensor | None
    ) -> torch.Tensor:
        """Views `index` as unit-intensity images at input σ, turned by `angles` (rad)."""
        xy = self.xy[index]
        if angles is not None:
            xy = rotate_in_plane(xy, angles)
        return render(xy, sigma_nm / self.half_width_nm, size, self.weights[index])


@dataclass(frozen=True)
class ImageViews:
    """Pre-rendered views (HOLLy's second input kind): images (V, S, S), unit intensity,
    centred on the structure; pixel_nm their pixel size; base_sigma_nm the resolution
    they already have. The input-σ curriculum blurs them by sqrt(σ² − base²) (nothing
    once σ reaches the base), and the augmentation turns them by quarter turns only,
    since other angles would resample pixels (paper §2.4)."""

    images: torch.Tensor
    ids: np.ndarray
    pixel_nm: float
    base_sigma_nm: float

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def half_width_nm(self) -> float:
        return self.images.shape[-1] * self.pixel_nm / 2

    def to(self, device: str | torch.device) -> ImageViews:
        return ImageViews(self.images.to(device), self.ids, self.pixel_nm, self.base_sigma_nm)

    def field_radius(self) -> float:
        """The radius holding 90 % of the mean image's intensity (half-widths)."""
        mean = self.images.mean(0).cpu()
        centres = pixel_centres(mean.shape[-1])
        radius = torch.hypot(centres[None, :], centres[:, None]).flatten()
        order = torch.argsort(radius)
        cumulative = torch.cumsum(mean.flatten()[order], 0)
        return float(radius[order][torch.searchsorted(cumulative, 0.9 * cumulative[-1])])

    def render(
        self, index: torch.Tensor, sigma_nm: float, size: int, angles: torch.Tensor | None
    ) -> torch.Tensor:
        """Images `index` blurred up to input σ, turned by the quarter turns nearest `angles`."""
        if size != self.images.shape[-1]:
            raise InvalidInput(f"image_px is {size} but the images are {self.images.shape[-1]} px")
        images = self.images[index]
        if angles is not None:
            turns = torch.round(angles / (math.pi / 2)).long() % 4
            images = torch.stack(
                [
                    torch.rot90(image, int(k), (-2, -1))
                    for image, k in zip(images, turns, strict=True)
                ]
            )
        extra_nm = math.sqrt(max(sigma_nm**2 - self.base_sigma_nm**2, 0.0))
        return blur(images, extra_nm / self.pixel_nm)


def pack_images(
    images: np.ndarray, pixel_nm: float, base_sigma_nm: float, ids: np.ndarray | None = None
) -> ImageViews:
    """(V, S, S) non-negative images -> ImageViews (each normalised to unit intensity)."""
    stack = np.asarray(images, dtype=np.float32)
    if stack.ndim != 3 or stack.shape[1] != stack.shape[2]:
        raise InvalidInput(f"images must be a (V, S, S) stack of square images, got {stack.shape}")
    if len(stack) < 2:
        raise InvalidInput(f"HOLLy needs at least 2 views, got {len(stack)}")
    if not np.all(np.isfinite(stack)) or stack.min() < 0:
        raise InvalidInput("images must be finite and non-negative")
    totals = stack.sum((1, 2), keepdims=True)
    if np.any(totals <= 0):
        raise InvalidInput(f"{int(np.sum(totals <= 0))} image(s) are empty")
    if not pixel_nm > 0 or not base_sigma_nm >= 0:
        raise InvalidInput("pixel_nm must be > 0 and base_sigma_nm >= 0")
    ids = np.arange(len(stack)) if ids is None else np.asarray(ids)
    return ImageViews(torch.from_numpy(stack / totals), ids, float(pixel_nm), float(base_sigma_nm))


def field_half_width_nm(particles: Particles) -> float:
    """`FIELD_MARGIN` × the 99th percentile of localization–view-centre distances (nm)."""
    radii = np.concatenate(
        [np.linalg.norm(p[:, :2] - p[:, :2].mean(0), axis=1) for p in particles.points]
    )
    radius = float(np.percentile(radii, 99))
    if not radius > 0:
        raise InvalidInput("the views have no spatial extent: every localization coincides")
    return FIELD_MARGIN * radius


def pack_views(
    particles: Particles,
    half_width_nm: float | None = None,
    max_localizations: int = 4096,
    seed: int = 0,
) -> ViewSet:
    """Centre, scale and pack 2D particles (x, y nm; z is ignored) for rendering."""
    if half_width_nm is None:
        half_width_nm = field_half_width_nm(particles)
    if not half_width_nm > 0:
        raise InvalidInput(f"half_width_nm must be > 0, got {half_width_nm}")
    if max_localizations < 1:
        raise InvalidInput(f"max_localizations must be >= 1, got {max_localizations}")
    rng = np.random.default_rng(seed)
    clouds, centres = [], []
    for cloud in particles.points:
        xy = cloud[:, :2]
        centre = xy.mean(0)
        if len(xy) > max_localizations:
            xy = xy[rng.choice(len(xy), max_localizations, replace=False)]
        clouds.append((xy - centre) / half_width_nm)
        centres.append(centre)
    longest = max(len(c) for c in clouds)
    xy = np.zeros((len(clouds), longest, 2), dtype=np.float32)
    weights = np.zeros((len(clouds), longest), dtype=np.float32)
    for i, c in enumerate(clouds):
        xy[i, : len(c)] = c
        weights[i, : len(c)] = 1.0
    return ViewSet(
        torch.from_numpy(xy),
        torch.from_numpy(weights),
        np.asarray(particles.ids),
        np.asarray(centres),
        float(half_width_nm),
    )


def rotate_in_plane(xy: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """(B, L, 2) points turned by (B,) angles (rad) about the origin: the in-plane
    augmentation (localizations, unlike pixels, rotate without artefacts)."""
    cos, sin = torch.cos(angles)[:, None], torch.sin(angles)[:, None]
    x, y = xy[..., 0], xy[..., 1]
    return torch.stack([cos * x - sin * y, sin * x + cos * y], -1)
