"""2D localization sets of a 3D structure seen in random poses, for HOLLy-style 3D
reconstruction.

As in HOLLy's simulations (Blundell et al.): a ground-truth 3D point cloud, a rotation
drawn uniformly from SO(3) per view (and an optional in-plane translation), the three
kinds of experimental noise — missing fluorophores (a point gives nothing),
multiple binding (a point gives extra localizations) and scatter (Gaussian offset of
each localization: label size plus localization error) — then projection along z.

Pose convention: a view's coordinates are R·p + t for a model point p (nm), R the
view's rotation (quaternion qx, qy, qz, qw, scalar last, as scipy), t = (tx_nm,
ty_nm, 0); the localization keeps x and y.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy.spatial.transform import Rotation

from pointillist.core.table import LocalizationTable
from pointillist.simulator.params import Config, Seed, as_generator, check, check_choice

MODELS = ("torus", "cylinders", "rabbit")


def torus_points(n_points: int, radius_nm: float, tube_radius_nm: float, seed: Seed) -> np.ndarray:
    """`n_points` points uniform on the surface of a torus about the z axis, (N, 3) nm.

    The circle of `radius_nm` runs in the z = 0 plane; the tube has `tube_radius_nm`
    (0 gives a ring). Uniform by area: the tube angle v is accepted with probability
    (R + r·cos v) / (R + r).
    """
    rng = as_generator(seed)
    big, small = radius_nm, tube_radius_nm
    tube_angles = np.zeros(0)
    while len(tube_angles) < n_points:
        v = rng.uniform(0, 2 * np.pi, 2 * n_points)
        accept = rng.random(2 * n_points) * (big + small) < big + small * np.cos(v)
        tube_angles = np.concatenate([tube_angles, v[accept]])
    v = tube_angles[:n_points]
    u = rng.uniform(0, 2 * np.pi, n_points)
    ring = big + small * np.cos(v)
    return np.column_stack([ring * np.cos(u), ring * np.sin(u), small * np.sin(v)])


def cylinders_points() -> np.ndarray:
    """HOLLy's approximation of the CEP152/HsSAS-6 complex, (126, 3) nm.

    Two cylinders of points in 9 columns (the centriole's 9-fold symmetry): a large one
    along z (radius 125 nm, length 250 nm, 8 points per column) and a small one along
    x (radius 50 nm, length 165 nm, 6 points per column) leaving its side, offset
    towards its top (z = 60 nm). From the small cylinder's end to the far edge of the
    large one is 415 nm, the paper's ~415 nm; the other sizes are our choice.
    """
    angle = np.pi + 2 * np.pi * np.arange(9) / 9  # a column on the far side, at x = -125
    z = np.linspace(-125, 125, 8)
    large = np.column_stack(
        [np.repeat(125 * np.cos(angle), 8), np.repeat(125 * np.sin(angle), 8), np.tile(z, 9)]
    )
    x = np.linspace(125, 290, 6)
    small = np.column_stack(
        [np.tile(x, 9), np.repeat(50 * np.cos(angle), 6), 60 + np.repeat(50 * np.sin(angle), 6)]
    )
    return np.concatenate([large, small])


def rabbit_points() -> np.ndarray:
    """An asymmetric point cloud standing in for HOLLy's Stanford-bunny vertex set,
    (220, 3) nm.

    A rabbit-like figure with no plane of symmetry, ~400 nm long and ~400 nm tall: an
    ellipsoidal body (radii 150, 95, 85 nm) centred at the origin, a head (sphere, radius
    60 nm) up at the front, two ears of different length leaning different ways, a tail
    and a foot off-axis. Points lie on the surfaces (Fibonacci spheres and straight rods),
    so the cloud is fixed, not drawn.
    """

    def sphere(n: int) -> np.ndarray:
        k = np.arange(n) + 0.5
        polar = np.arccos(1 - 2 * k / n)
        azimuth = np.pi * (1 + 5**0.5) * k
        return np.column_stack(
            [np.sin(polar) * np.cos(azimuth), np.sin(polar) * np.sin(azimuth), np.cos(polar)]
        )

    def rod(start: tuple[float, ...], end: tuple[float, ...], n: int) -> np.ndarray:
        return np.linspace(start, end, n)

    body = sphere(120) * (150, 95, 85)
    head = sphere(50) * 60 + (150, 20, 100)
    long_ear = rod((140, 5, 160), (95, -10, 290), 14)
    short_ear = rod((165, 55, 150), (200, 140, 215), 10)
    tail = sphere(12) * 25 + (-160, -30, 40)
    foot = sphere(14) * (45, 25, 15) + (40, -70, -90)
    return np.concatenate([body, head, long_ear, short_ear, tail, foot])


@dataclass(frozen=True)
class ProjectionSimConfig(Config):
    """Views of one 3D model (lengths nm).

    model: 'torus' (CEP152's toroid, 400 nm across: torus_radius_nm 200, tube
    torus_tube_radius_nm, n_points points on its surface), 'cylinders'
    (`cylinders_points`) or 'rabbit' (`rabbit_points`, asymmetric). Per view and model
    point: missing with probability missing_fraction, else 1 + Poisson(extra_localizations)
    localizations, each scattered by a 3D Gaussian of sd scatter_nm (HOLLy's 9–44 nm
    range; 10 nm default). Views are shifted in x, y by a Gaussian of sd translation_nm.
    """

    model: str = "torus"
    n_views: int = 1000
    torus_radius_nm: float = 200.0
    torus_tube_radius_nm: float = 40.0
    n_points: int = 200
    scatter_nm: float = 10.0
    missing_fraction: float = 0.0
    extra_localizations: float = 0.0
    translation_nm: float = 0.0

    def __post_init__(self) -> None:
        check_choice("ProjectionSimConfig.model", self.model, MODELS)
        check(self.n_views >= 0, "ProjectionSimConfig.n_views must be >= 0")
        check(self.n_points >= 1, "ProjectionSimConfig.n_points must be >= 1")
        check(0 < self.torus_radius_nm < np.inf, "torus_radius_nm must be > 0")
        check(
            0 <= self.torus_tube_radius_nm <= self.torus_radius_nm,
            "torus_tube_radius_nm must be in [0, torus_radius_nm]",
        )
        check(0 <= self.scatter_nm < np.inf, "ProjectionSimConfig.scatter_nm must be >= 0")
        check(0 <= self.missing_fraction < 1, "missing_fraction must be in [0, 1)")
        check(0 <= self.extra_localizations < np.inf, "extra_localizations must be >= 0")
        check(0 <= self.translation_nm < np.inf, "translation_nm must be >= 0")


class ProjectionSet(NamedTuple):
    """localizations: x, y nm, particle (view), site (model point). poses: per view
    particle, qx, qy, qz, qw, tx_nm, ty_nm. model_nm: the (M, 3) ground truth."""

    localizations: LocalizationTable
    poses: dict[str, np.ndarray]
    model_nm: np.ndarray


def simulate_projections(
    config: ProjectionSimConfig, seed: Seed, *, points_nm: np.ndarray | None = None
) -> ProjectionSet:
    """Project `config.model` (or the user's (M, 3) `points_nm`) in `n_views` random poses."""
    rng = as_generator(seed)
    if points_nm is not None:
        model = np.asarray(points_nm, dtype=np.float64)
        check(model.ndim == 2 and model.shape[1] == 3 and len(model) > 0, "points_nm: (M, 3)")
        check(bool(np.all(np.isfinite(model))), "points_nm must be finite")
    elif config.model == "torus":
        model = torus_points(
            config.n_points, config.torus_radius_nm, config.torus_tube_radius_nm, rng
        )
    elif config.model == "cylinders":
        model = cylinders_points()
    else:
        model = rabbit_points()
    n_views, n_points = config.n_views, len(model)
    rotation = Rotation.random(n_views, rng=rng) if n_views else Rotation.identity(0)
    shift = config.translation_nm * rng.standard_normal((n_views, 2))
    kept = rng.random((n_views, n_points)) >= config.missing_fraction
    counts = kept * (1 + rng.poisson(config.extra_localizations, (n_views, n_points)))
    view = np.repeat(np.repeat(np.arange(n_views), n_points), counts.ravel())
    site = np.repeat(np.tile(np.arange(n_points), n_views), counts.ravel())
    rotated = np.einsum("vij,mj->vmi", rotation.as_matrix().reshape(n_views, 3, 3), model)
    xy = rotated[view, site, :2] + shift[view]
    xy += config.scatter_nm * rng.standard_normal(xy.shape)
    quaternion = rotation.as_quat().reshape(n_views, 4)
    poses = {
        "particle": np.arange(n_views, dtype=np.int32),
        "qx": quaternion[:, 0],
        "qy": quaternion[:, 1],
        "qz": quaternion[:, 2],
        "qw": quaternion[:, 3],
        "tx_nm": shift[:, 0],
        "ty_nm": shift[:, 1],
    }
    table = LocalizationTable(
        {"x": xy[:, 0], "y": xy[:, 1], "particle": view, "site": site.astype(np.int32)}
    )
    return ProjectionSet(table, poses, model)
