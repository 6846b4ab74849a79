"""Template-free joint registration of particles into one super-particle (in-plane rigid).

Method: joint registration of multiple point clouds (JRMPC; Evangelidis & Horaud, TPAMI
40, 1405 (2018)), the approach of the fast particle fusion of Wang et al. (Bioinformatics
38, 3281 (2022)) that the PC-VAE paper uses to build its super-particles. All particles
are explained by one Gaussian mixture in a common frame plus a uniform outlier term; EM
alternates soft assignment of every localization to the components, a weighted
Procrustes update of every particle's transform (from its "virtual points", the
responsibility-weighted means per component) and an update of the component means and
variances. No particle is a template: the model is estimated from all of them.

Transforms are a rotation about z plus a translation (picked particles are top views),
for 2D and 3D clouds alike: y = R(rotation_rad) x + translation_nm.

JRMPC converges locally, so it starts from a rotation search that makes the result
independent of the particles' initial orientations: each particle is turned through a
grid of angles and scored by the log-density of the current model (a Gaussian-smoothed
histogram of the fused cloud, read at the turned points); the first model is the
best-sampled particle, later ones the fused cloud of the previous round.

Hand-written because no library does multi-view joint registration (probreg and pycpd
register pairs of clouds). Everything is vectorised over particles and points with
numpy: particles are padded to a common length and masked.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.cluster.vq import kmeans2
from scipy.ndimage import gaussian_filter, map_coordinates
from scipy.special import logsumexp

from pointillist.core.errors import InvalidInput

MIN_VARIANCE_NM2 = 1.0
"""Floor of a component's variance (nm²), so a component holding one point cannot collapse."""

MODEL_CAP_PERCENTILE = 35.0
"""The search model's density is capped at this percentile of its occupied pixels so
that every site attracts alike. Uncapped, sites that are dim in the model (unlabelled in
the first particle, say) keep pulling the gaps of other particles onto themselves when
a symmetric structure leaves the choice open, and the fused particle keeps dim sites
(reference bias; on 300 simulated 2D NPCs the least/most populated corner ratio goes
from 0.56 uncapped to 0.90 capped)."""

SEARCH_CHUNK = 4_000_000
"""Rotated points scored at once in the rotation search (bounds its memory)."""


@dataclass(frozen=True)
class RegistrationConfig:
    """Settings of `register_particles` (lengths nm).

    n_components: Gaussians of the joint model (more than the structure's sites).
    n_angles: rotation-search grid over 360°; search_shifts: lateral shift grid per axis;
    search_rounds: search-and-fuse rounds; search_points: random localizations per
    particle scored in the search (bounds its cost).
    em_iterations: JRMPC iterations after the search. max_points_per_particle: random
    localizations per particle used to estimate the transforms (bounds the cost; the
    fused cloud holds all of them). outlier_fraction: weight of the uniform term.
    smoothing_nm: Gaussian smoothing of the search model; None: 8% of the RMS distance
    of the localizations from their particle's mean. seed: subsampling and k-means.
    """

    n_components: int = 48
    n_angles: int = 36
    search_shifts: int = 7
    search_rounds: int = 3
    search_points: int = 48
    em_iterations: int = 30
    max_points_per_particle: int = 200
    outlier_fraction: float = 0.05
    smoothing_nm: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        for name in (
            "n_components",
            "n_angles",
            "search_rounds",
            "search_points",
            "search_shifts",
            "max_points_per_particle",
        ):
            if getattr(self, name) < 1:
                raise InvalidInput(f"RegistrationConfig.{name} must be >= 1")
        if self.em_iterations < 0:
            raise InvalidInput("RegistrationConfig.em_iterations must be >= 0")
        if not 0 < self.outlier_fraction < 1:
            raise InvalidInput("RegistrationConfig.outlier_fraction must be in (0, 1)")
        if self.smoothing_nm is not None and not 0 < self.smoothing_nm < np.inf:
            raise InvalidInput("RegistrationConfig.smoothing_nm must be > 0")


@dataclass(frozen=True)
class Registration:
    """Per-particle transforms and the fused super-particle (nm).

    rotation_rad (M,) and translation_nm (M, dims) map particle i's input coordinates
    x to the common frame: R(rotation_rad[i]) x + translation_nm[i]. points (P, dims) are
    all localizations so mapped, particle_index (P,) says which particle each is from.
    centers_nm (K, dims) and sigma_nm (K,) are the fitted joint model.
    """

    rotation_rad: np.ndarray
    translation_nm: np.ndarray
    points: np.ndarray
    particle_index: np.ndarray
    centers_nm: np.ndarray
    sigma_nm: np.ndarray

    def aligned(self, i: int) -> np.ndarray:
        """Particle i's localizations in the common frame."""
        return self.points[self.particle_index == i]


def rotate_in_plane(points: np.ndarray, angle_rad: np.ndarray | float) -> np.ndarray:
    """Rotate points (..., n, dims) about z by angle_rad (...,); z, if any, is unchanged."""
    angle = np.asarray(angle_rad, dtype=np.float64)[..., None]
    c, s = np.cos(angle), np.sin(angle)
    x, y = points[..., 0], points[..., 1]
    turned = np.stack([c * x - s * y, s * x + c * y], axis=-1)
    rest = np.broadcast_to(points[..., 2:], (*turned.shape[:-1], points.shape[-1] - 2))
    return np.concatenate([turned, rest], axis=-1)


def apply_transform(
    points: np.ndarray, rotation_rad: float, translation_nm: np.ndarray
) -> np.ndarray:
    """R(rotation_rad) points + translation_nm for one cloud (n, dims)."""
    return rotate_in_plane(points, rotation_rad) + translation_nm


def register_particles(
    clouds: Sequence[np.ndarray],
    config: RegistrationConfig | None = None,
    initial_rotation_rad: np.ndarray | None = None,
    initial_translation_nm: np.ndarray | None = None,
) -> Registration:
    """Register point clouds (each (n_i, dims) nm, dims 2 or 3) jointly into one frame.

    With initial transforms (e.g. from a registration of a larger set holding these
    particles) the pose search is skipped and only the joint EM runs from them.
    """
    config = config or RegistrationConfig()
    clouds = _checked(clouds)
    rng = np.random.default_rng(config.seed)
    views, mask, means = _padded(clouds, config.max_points_per_particle, rng)
    if initial_rotation_rad is None or initial_translation_nm is None:
        smoothing = config.smoothing_nm or 0.08 * float(np.sqrt((views[mask] ** 2).sum(1).mean()))
        rotation, shift = _pose_search(views, mask, smoothing, config)
    else:
        rotation = np.asarray(initial_rotation_rad, dtype=np.float64).reshape(len(clouds))
        translation = np.asarray(initial_translation_nm, dtype=np.float64)
        shift = translation + rotate_in_plane(means[:, None, :], rotation)[:, 0]
    moved = rotate_in_plane(views, rotation) + shift[:, None]
    centers, variance = _initial_model(moved[mask], config, rng)
    rotation, shift, centers, variance = _joint_em(
        views, mask, rotation, shift, centers, variance, config
    )
    translation = shift - rotate_in_plane(means[:, None, :], rotation)[:, 0]
    fused = [
        apply_transform(c, r, t) for c, r, t in zip(clouds, rotation, translation, strict=True)
    ]
    return Registration(
        rotation_rad=np.mod(rotation, 2 * np.pi),
        translation_nm=translation,
        points=np.concatenate(fused),
        particle_index=np.repeat(np.arange(len(clouds)), [len(c) for c in clouds]),
        centers_nm=centers,
        sigma_nm=np.sqrt(variance),
    )


def register_super_particles(
    super_particles: Sequence[np.ndarray],
    config: RegistrationConfig | None = None,
    initial_rotation_rad: np.ndarray | None = None,
    initial_translation_nm: np.ndarray | None = None,
    max_points_per_particle: int = 2000,
) -> Registration:
    """Register the bins' super-particles to each other, jointly, as `register_particles`
    does particles, with more localizations per cloud (each is the fusion of many)."""
    config = dataclasses.replace(
        config or RegistrationConfig(), max_points_per_particle=max_points_per_particle
    )
    return register_particles(super_particles, config, initial_rotation_rad, initial_translation_nm)


def _checked(clouds: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Clouds as float64 (n, dims) arrays of one dims in {2, 3}, each finite with n >= 1."""
    out = [np.asarray(c, dtype=np.float64) for c in clouds]
    if not out:
        raise InvalidInput("registration needs at least one point cloud")
    dims = {c.shape[1] if c.ndim == 2 else -1 for c in out}
    if len(dims) != 1 or dims.pop() not in (2, 3):
        raise InvalidInput("point clouds must all have shape (n, 2) or all (n, 3)")
    if any(len(c) == 0 or not np.isfinite(c).all() for c in out):
        raise InvalidInput("point clouds must be non-empty and finite")
    return out


def _padded(
    clouds: list[np.ndarray], cap: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(views (M, N, dims) centred on their means, shuffled, cut to <= cap and zero-padded;
    mask (M, N) of real points; means (M, dims))."""
    means = np.stack([c.mean(axis=0) for c in clouds])
    n = min(cap, max(len(c) for c in clouds))
    views = np.zeros((len(clouds), n, clouds[0].shape[1]))
    mask = np.zeros((len(clouds), n), dtype=bool)
    for i, (cloud, mean) in enumerate(zip(clouds, means, strict=True)):
        points = cloud[rng.permutation(len(cloud))[:cap]] - mean
        views[i, : len(points)] = points
        mask[i, : len(points)] = True
    return views, mask, means


@dataclass(frozen=True)
class _LogDensity:
    """Log of a smoothed histogram on a regular grid (origin_nm, pixel_nm per axis)."""

    log_image: np.ndarray
    origin_nm: np.ndarray
    pixel_nm: float

    def at(self, coords_nm: np.ndarray) -> np.ndarray:
        """Log-density at points given axis first, (dims, ...) nm; linear interpolation,
        the floor outside the grid. Overwrites coords_nm (it is scratch)."""
        coords_nm -= self.origin_nm.reshape(-1, *[1] * (coords_nm.ndim - 1))
        coords_nm /= self.pixel_nm
        values = map_coordinates(
            self.log_image,
            coords_nm.reshape(len(coords_nm), -1),
            order=1,
            mode="constant",
            cval=self.log_image.min(),
        )
        return values.reshape(coords_nm.shape[1:])


def _log_density(points: np.ndarray, half_width_nm: np.ndarray, smoothing_nm: float) -> _LogDensity:
    """Model of the search: histogram of points smoothed by smoothing_nm, capped at
    MODEL_CAP_PERCENTILE of its occupied pixels and floored at 1e-3 of its mean so that
    stray localizations cost a bounded penalty."""
    pixel = smoothing_nm / 2
    shape = np.ceil(2 * half_width_nm / pixel).astype(int) + 1
    origin = -half_width_nm
    edges = [origin[d] - pixel / 2 + pixel * np.arange(shape[d] + 1) for d in range(len(shape))]
    image, _ = np.histogramdd(points, bins=edges)
    image = gaussian_filter(image, smoothing_nm / pixel)
    image /= image.sum() * pixel ** len(shape)
    occupied = image[image > 1e-3 * image.max()]
    image = np.minimum(image, np.percentile(occupied, MODEL_CAP_PERCENTILE))
    return _LogDensity(np.log(image + 1e-3 * image.mean()), origin, pixel)


def _pose_search(
    views: np.ndarray, mask: np.ndarray, smoothing_nm: float, config: RegistrationConfig
) -> tuple[np.ndarray, np.ndarray]:
    """(rotation (M,), shift (M, dims)) per view from a grid search over angles and lateral
    shifts against the model of the previous round (round one: the view with the most
    points). The shift is searched because a particle's mean is a poor centre when some
    of its sites are unlabelled; axial offsets are left to the EM."""
    angles = 2 * np.pi * np.arange(config.n_angles) / config.n_angles
    points, point_mask = views[:, : config.search_points], mask[:, : config.search_points]
    half_width = np.percentile(np.abs(views[mask]), 99.5, axis=0) + 3 * smoothing_nm
    shifts = _lateral_shift_grid(views, mask, config.search_shifts)
    seed = int(np.argmax(mask.sum(axis=1)))
    model_points = views[seed][mask[seed]]
    for _ in range(config.search_rounds):
        density = _log_density(model_points, half_width, smoothing_nm)
        score = _scores(points, point_mask, angles, shifts, density)
        best_angle, best_shift = np.unravel_index(
            np.argmax(score.reshape(len(views), -1), axis=1), score.shape[1:]
        )
        rotation, shift = angles[best_angle], shifts[best_shift]
        model_points = (rotate_in_plane(views, rotation) + shift[:, None])[mask]
    return rotation, shift


def _lateral_shift_grid(views: np.ndarray, mask: np.ndarray, steps: int) -> np.ndarray:
    """Candidate shifts (steps², dims): a steps × steps grid in x, y over ±half the RMS
    distance of the localizations from their particle's mean; no axial shift."""
    reach = 0.5 * float(np.sqrt((views[mask][:, :2] ** 2).sum(axis=1).mean()))
    axis = np.linspace(-reach, reach, steps)
    x, y = np.meshgrid(axis, axis, indexing="ij")
    shifts = np.zeros((steps * steps, views.shape[2]))
    shifts[:, 0], shifts[:, 1] = x.ravel(), y.ravel()
    return shifts


def _scores(
    points: np.ndarray,
    mask: np.ndarray,
    angles: np.ndarray,
    shifts: np.ndarray,
    density: _LogDensity,
) -> np.ndarray:
    """Summed log-density of each view's points (M, N, dims) turned by angles (A,) and then
    shifted by shifts (S, dims): (M, A, S), in chunks of views to bound memory."""
    n_angles, n_shifts, n_points, dims = len(angles), len(shifts), points.shape[1], points.shape[2]
    chunk = max(1, SEARCH_CHUNK // (n_angles * n_shifts * n_points))
    cos, sin = np.cos(angles)[:, None, None], np.sin(angles)[:, None, None]
    shift = [shifts[:, d, None] for d in range(dims)]
    weights = mask.astype(np.float64)
    out = np.empty((len(points), n_angles, n_shifts))
    for start in range(0, len(points), chunk):
        part = slice(start, start + chunk)
        x, y = points[part, None, None, :, 0], points[part, None, None, :, 1]
        coords = np.empty((dims, len(x), n_angles, n_shifts, n_points))
        coords[0] = cos * x - sin * y + shift[0]
        coords[1] = sin * x + cos * y + shift[1]
        if dims == 3:
            coords[2] = points[part, None, None, :, 2] + shift[2]
        out[part] = (density.at(coords) * weights[part, None, None]).sum(axis=3)
    return out


def _initial_model(
    points: np.ndarray, config: RegistrationConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Component means by k-means++ of the searched fused cloud; one shared variance, the
    mean squared distance to the nearest mean per dimension, doubled to start wide."""
    k = min(config.n_components, len(points))
    centers, _ = kmeans2(points, k, minit="++", seed=rng)
    nearest = _squared_distances(points[None], centers).min(axis=2)
    variance = max(2 * float(nearest.mean()) / points.shape[1], MIN_VARIANCE_NM2)
    return centers, np.full(k, variance)


def _squared_distances(points: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """|points - centers|² for points (M, N, dims) and centers (K, dims): (M, N, K)."""
    sq = (points**2).sum(-1)[..., None] + (centers**2).sum(-1) - 2 * points @ centers.T
    return np.maximum(sq, 0.0)


def _joint_em(
    views: np.ndarray,
    mask: np.ndarray,
    rotation: np.ndarray,
    shift: np.ndarray,
    centers: np.ndarray,
    variance: np.ndarray,
    config: RegistrationConfig,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """JRMPC EM: (rotation (M,), shift (M, dims), centers (K, dims), variance (K,))."""
    dims = views.shape[2]
    weights = mask.astype(np.float64)[..., None]
    extent = np.ptp(rotate_in_plane(views, rotation)[mask], axis=0) + 1.0
    log_outlier = np.log(config.outlier_fraction / np.prod(extent))
    log_prior = np.log((1 - config.outlier_fraction) / len(centers))
    for _ in range(config.em_iterations):
        moved = rotate_in_plane(views, rotation) + shift[:, None, :]
        log_p = (
            log_prior
            - 0.5 * dims * np.log(2 * np.pi * variance)
            - _squared_distances(moved, centers) / (2 * variance)
        )
        log_total = np.logaddexp(logsumexp(log_p, axis=2), log_outlier)
        resp = np.exp(log_p - log_total[..., None]) * weights
        mass = resp.sum(axis=1)
        virtual = resp.transpose(0, 2, 1) @ views / np.maximum(mass, 1e-12)[..., None]
        rotation, shift = _weighted_procrustes_z(virtual, centers, mass / variance)
        moved = rotate_in_plane(views, rotation) + shift[:, None, :]
        total = mass.sum(axis=0)
        alive = total > 1e-6
        centers = centers.copy()
        centers[alive] = np.einsum("mnk,mnd->kd", resp, moved)[alive] / total[alive, None]
        spread = np.einsum("mnk,mnk->k", resp, _squared_distances(moved, centers))
        variance = variance.copy()
        variance[alive] = np.maximum(spread[alive] / (dims * total[alive]), MIN_VARIANCE_NM2)
    return rotation, shift, centers, variance


def _weighted_procrustes_z(
    source: np.ndarray, target: np.ndarray, weight: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per view m, the rotation about z and shift minimising
    sum_k weight[m, k] |R source[m, k] + shift - target[k]|² (closed form, no SVD needed
    for one angle): (rotation (M,), shift (M, dims))."""
    total = np.maximum(weight.sum(axis=1, keepdims=True), 1e-12)
    source_mean = np.einsum("mk,mkd->md", weight, source) / total
    target_mean = weight @ target / total
    a = source - source_mean[:, None]
    b = target[None] - target_mean[:, None]
    cross = (weight * (a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0])).sum(axis=1)
    dot = (weight * (a[..., 0] * b[..., 0] + a[..., 1] * b[..., 1])).sum(axis=1)
    rotation = np.arctan2(cross, dot)
    shift = target_mean - rotate_in_plane(source_mean[:, None], rotation)[:, 0]
    return rotation, shift
