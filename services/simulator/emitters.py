"""Where the fluorophores are: random (CSR) or on structures, as (N, 3) arrays of x, y, z in nm.

Structure-based sampling follows LUENN's structure-based training (Abdehkakha &
Snoeyink): instead of complete spatial randomness, emitters are drawn from point clouds
of continuous 3D structures, chiefly helical microtubule-like filaments that span the
field of view with z changing continuously along them, 5000 seeds per filament, three
filaments per field. A new seed gives a new structure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pointillist.simulator.params import (
    Config,
    Seed,
    as_generator,
    check,
    check_choice,
    check_range,
)

STRUCTURES = ("csr", "microtubules", "npc", "clusters")


def csr(
    density_per_um2: float,
    fov_nm: tuple[float, float],
    z_range_nm: tuple[float, float],
    seed: Seed,
) -> np.ndarray:
    """Complete spatial randomness: a homogeneous Poisson process in the box
    [0, width) × [0, height) × [z_min, z_max] with `density_per_um2` emitters per µm² of
    field. Returns (N, 3) nm."""
    check(density_per_um2 >= 0, "density_per_um2 must be >= 0")
    rng = as_generator(seed)
    width, height = fov_nm
    n = rng.poisson(density_per_um2 * width * height / 1e6)
    return np.column_stack(
        [
            rng.uniform(0, width, n),
            rng.uniform(0, height, n),
            rng.uniform(z_range_nm[0], z_range_nm[1], n),
        ]
    )


def microtubules(
    n_filaments: int,
    points_per_filament: int,
    fov_nm: tuple[float, float],
    z_range_nm: tuple[float, float],
    helix_radius_nm: float,
    helix_pitch_nm: float,
    seed: Seed,
) -> np.ndarray:
    """Helical filaments crossing the field, as in LUENN's structure-based training.

    Each filament's axis is a smooth curve (quadratic Bézier) from a random point on one
    edge of the field to one on the opposite edge, bending through a random control
    point. Around it the filament winds as a helix: laterally ±`helix_radius_nm` across
    the axis and axially through the whole z range, one turn per `helix_pitch_nm` (×0.5
    to 1.5, drawn per filament) of axis length, so z changes continuously along it.
    `points_per_filament` points are spread uniformly along the helix's length.
    Returns (n_filaments · points_per_filament, 3) nm.
    """
    check(n_filaments >= 0 and points_per_filament >= 0, "filament counts must be >= 0")
    check(helix_radius_nm >= 0 and helix_pitch_nm > 0, "helix radius >= 0 and pitch > 0 needed")
    rng = as_generator(seed)
    width, height = np.asarray(fov_nm, dtype=np.float64)
    z_mid, z_amp = (z_range_nm[0] + z_range_nm[1]) / 2, (z_range_nm[1] - z_range_nm[0]) / 2
    s = np.linspace(0.0, 1.0, 4097)[:, None]
    filaments = []
    for _ in range(n_filaments):
        along_x = rng.random() < 0.5
        t0, t1 = rng.random(2)
        p0 = np.array([0.0, t0 * height]) if along_x else np.array([t0 * width, 0.0])
        p2 = np.array([width, t1 * height]) if along_x else np.array([t1 * width, height])
        p1 = rng.random(2) * (width, height)
        axis = (1 - s) ** 2 * p0 + 2 * (1 - s) * s * p1 + s**2 * p2
        tangent = 2 * (1 - s) * (p1 - p0) + 2 * s * (p2 - p1)
        normal = np.column_stack([-tangent[:, 1], tangent[:, 0]]) / np.linalg.norm(
            tangent, axis=1, keepdims=True
        )
        axis_length = np.concatenate(
            [[0.0], np.cumsum(np.linalg.norm(np.diff(axis, axis=0), axis=1))]
        )
        pitch = helix_pitch_nm * rng.uniform(0.5, 1.5)
        phase = 2 * np.pi * axis_length / pitch + rng.uniform(0, 2 * np.pi)
        curve = np.column_stack(
            [
                axis + helix_radius_nm * np.cos(phase)[:, None] * normal,
                z_mid + z_amp * np.sin(phase),
            ]
        )
        length = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(curve, axis=0), axis=1))])
        u = rng.uniform(0, length[-1], points_per_filament)
        filaments.append(np.column_stack([np.interp(u, length, curve[:, k]) for k in range(3)]))
    return np.concatenate(filaments) if filaments else np.zeros((0, 3))


def npc_sites(
    radius_nm: np.ndarray | float,
    ring_distance_nm: np.ndarray | float,
    n_rings: int,
    sites_per_corner: int,
    site_spacing_nm: float,
) -> np.ndarray:
    """Binding sites of nuclear pore complexes centred at the origin, shape (P, S, 3) nm.

    8-fold symmetric: 8 corners on a ring of `radius_nm` (per particle, shape (P,) or
    scalar); with n_rings=2 two such rings at z = ±ring_distance/2 (cytoplasmic and
    nuclear rings), else one at z = 0. Each corner holds `sites_per_corner` sites spaced
    `site_spacing_nm` apart along the ring (Nup96: 2 per corner per ring, 32 in all).
    """
    check(n_rings in (1, 2), "n_rings must be 1 or 2")
    check(sites_per_corner >= 1, "sites_per_corner must be >= 1")
    radius = np.atleast_1d(np.asarray(radius_nm, dtype=np.float64))[:, None]
    distance = np.broadcast_to(np.asarray(ring_distance_nm, dtype=np.float64), radius.shape[:1])
    corner_angle = 2 * np.pi * np.arange(8) / 8
    offset = (np.arange(sites_per_corner) - (sites_per_corner - 1) / 2) * site_spacing_nm
    angle = (corner_angle[:, None] + offset[None, :] / radius[:, :, None]).reshape(len(radius), -1)
    ring_z = (
        np.array([-0.5, 0.5])[None, :] * distance[:, None]
        if n_rings == 2
        else np.zeros((len(radius), 1))
    )
    x = np.tile(radius * np.cos(angle), n_rings)
    y = np.tile(radius * np.sin(angle), n_rings)
    z = np.repeat(ring_z, angle.shape[1], axis=1)
    return np.stack([x, y, z], axis=-1)


def rotate_z(points: np.ndarray, angle_rad: np.ndarray) -> np.ndarray:
    """Rotate (P, S, 3) points of P structures about z by their angles (P,)."""
    c, s = np.cos(angle_rad)[:, None], np.sin(angle_rad)[:, None]
    x, y = points[..., 0], points[..., 1]
    return np.stack([c * x - s * y, s * x + c * y, points[..., 2]], axis=-1)


@dataclass(frozen=True)
class EmitterConfig(Config):
    """Which fluorophore positions a frame simulation uses (nm, field from the frame size).

    structure: 'csr' (density_per_um2 uniformly random fluorophores), 'microtubules'
    (LUENN helical filaments, see `microtubules`), 'npc' (n_structures nuclear pores,
    two 8-fold rings of radius npc_radius_nm, npc_ring_distance_nm apart in z, 2 sites
    per corner, centred at random in x, y and in the middle of z_range_nm), 'clusters'
    (n_structures Gaussian clusters of Poisson(emitters_per_cluster) emitters with
    cluster_sigma_nm in x, y and z, centres uniform in the field and z range).
    z_range_nm is the axial domain; keep (0, 0) for a 2D simulation (all z = 0), use
    e.g. (-500, 500) with an astigmatic PSF.
    """

    structure: str = "csr"
    z_range_nm: tuple[float, float] = (0.0, 0.0)
    density_per_um2: float = 50.0
    n_filaments: int = 3
    points_per_filament: int = 5000
    helix_radius_nm: float = 150.0
    helix_pitch_nm: float = 1500.0
    n_structures: int = 20
    npc_radius_nm: float = 50.0
    npc_ring_distance_nm: float = 50.0
    emitters_per_cluster: float = 30.0
    cluster_sigma_nm: float = 50.0

    def __post_init__(self) -> None:
        check_choice("EmitterConfig.structure", self.structure, STRUCTURES)
        check_range("EmitterConfig.z_range_nm", self.z_range_nm)
        check(0 <= self.density_per_um2 < np.inf, "EmitterConfig.density_per_um2 must be >= 0")
        for name in ("n_filaments", "points_per_filament", "n_structures"):
            check(getattr(self, name) >= 0, f"EmitterConfig.{name} must be >= 0")
        for name in ("helix_radius_nm", "npc_ring_distance_nm", "emitters_per_cluster"):
            check(0 <= getattr(self, name) < np.inf, f"EmitterConfig.{name} must be >= 0")
        for name in ("helix_pitch_nm", "npc_radius_nm", "cluster_sigma_nm"):
            check(0 < getattr(self, name) < np.inf, f"EmitterConfig.{name} must be > 0")


def sample_emitters(config: EmitterConfig, fov_nm: tuple[float, float], seed: Seed) -> np.ndarray:
    """Fluorophore positions (N, 3) nm in the field [0, width) × [0, height) per `config`.

    With a degenerate z range (2D) every emitter lies in the plane z = z_range_nm[0]
    (an NPC's two rings then project onto one another, as a 2D image sees them)."""
    points = _sample(config, fov_nm, as_generator(seed))
    if config.z_range_nm[0] == config.z_range_nm[1]:
        points[:, 2] = config.z_range_nm[0]
    return points


def _sample(
    config: EmitterConfig, fov_nm: tuple[float, float], rng: np.random.Generator
) -> np.ndarray:
    width, height = fov_nm
    z_lo, z_hi = config.z_range_nm
    if config.structure == "csr":
        return csr(config.density_per_um2, fov_nm, config.z_range_nm, rng)
    if config.structure == "microtubules":
        return microtubules(
            config.n_filaments,
            config.points_per_filament,
            fov_nm,
            config.z_range_nm,
            config.helix_radius_nm,
            config.helix_pitch_nm,
            rng,
        )
    n = config.n_structures
    centers = np.column_stack(
        [rng.uniform(0, width, n), rng.uniform(0, height, n), np.full(n, (z_lo + z_hi) / 2)]
    )
    if config.structure == "npc":
        sites = npc_sites(np.full(n, config.npc_radius_nm), config.npc_ring_distance_nm, 2, 2, 12.0)
        sites = rotate_z(sites, rng.uniform(0, 2 * np.pi, n))
        return (sites + centers[:, None, :]).reshape(-1, 3)
    counts = rng.poisson(config.emitters_per_cluster, n)
    centers[:, 2] = rng.uniform(z_lo, z_hi, n)
    members = np.repeat(centers, counts, axis=0)
    return members + config.cluster_sigma_nm * rng.standard_normal(members.shape)
