"""Particles with continuous structural heterogeneity, for PC-VAE style analysis.

Each particle is a set of binding sites (a nuclear pore complex in 2D or 3D, or a
DNA-origami tetrahedron) whose geometry is drawn per particle: NPC radius and ring
distance, tetrahedron height. Then, as in SMLM (PC-VAE paper, Methods): each site
carries a fluorophore with probability DOL (degree of labelling), a labelled site gives
Poisson(localizations_per_site) localizations (repeated blinking or PAINT binding), and
each localization is displaced by Gaussian localization error. Particles are centred
on their true centre at the origin (as after particle picking) and turned by a random
in-plane rotation.

Defaults follow the data sets of the PC-VAE paper: 2D NPC radius 55 nm (its 2D set:
mean ~55 nm, ~15 nm variation), 3D NPC rings 50 nm apart (measured 48.5 nm, radius
55 nm), tetrahedron heights uniform in 40–110 nm (detected 42–107 nm).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from pointillist.core.table import LocalizationTable
from pointillist.simulator.emitters import npc_sites, rotate_z
from pointillist.simulator.params import Config, Seed, as_generator, check, check_choice

PARTICLE_KINDS = ("npc2d", "npc3d", "tetrahedron")
DISTRIBUTIONS = ("normal", "uniform")


@dataclass(frozen=True)
class ParticleSimConfig(Config):
    """A set of particles of one kind (lengths nm).

    A geometric parameter p is drawn per particle from p_distribution: 'normal'
    (mean p_nm, sd p_spread_nm, redrawn while not > 0) or 'uniform' on
    [p_nm − p_spread_nm, p_nm + p_spread_nm]. Used: radius (NPCs), ring_distance
    (npc3d: two 8-fold rings this far apart in z), height (tetrahedron: apex above a
    base triangle of circumradius base_radius_nm at z = 0). NPC corners hold
    sites_per_corner sites site_spacing_nm apart along the ring (2 for Nup96, giving
    the 32 sites of the PC-VAE 3D data). dol is drawn per particle uniform in
    dol ± dol_spread. precision_nm is the lateral, precision_z_nm the axial (3D only)
    localization error sd.
    """

    kind: str = "npc2d"
    n_particles: int = 200
    radius_nm: float = 55.0
    radius_spread_nm: float = 4.0
    radius_distribution: str = "normal"
    ring_distance_nm: float = 50.0
    ring_distance_spread_nm: float = 3.0
    ring_distance_distribution: str = "normal"
    height_nm: float = 75.0
    height_spread_nm: float = 35.0
    height_distribution: str = "uniform"
    base_radius_nm: float = 50.0
    sites_per_corner: int = 1
    site_spacing_nm: float = 12.0
    dol: float = 0.7
    dol_spread: float = 0.0
    localizations_per_site: float = 10.0
    precision_nm: float = 8.0
    precision_z_nm: float = 20.0
    rotate: bool = True

    def __post_init__(self) -> None:
        check_choice("ParticleSimConfig.kind", self.kind, PARTICLE_KINDS)
        check(self.n_particles >= 0, "ParticleSimConfig.n_particles must be >= 0")
        for name in ("radius", "ring_distance", "height"):
            mean, spread = getattr(self, f"{name}_nm"), getattr(self, f"{name}_spread_nm")
            distribution = getattr(self, f"{name}_distribution")
            check_choice(f"ParticleSimConfig.{name}_distribution", distribution, DISTRIBUTIONS)
            check(0 < mean < np.inf, f"ParticleSimConfig.{name}_nm must be > 0")
            check(0 <= spread < np.inf, f"ParticleSimConfig.{name}_spread_nm must be >= 0")
            check(
                distribution == "normal" or mean - spread > 0,
                f"ParticleSimConfig.{name}: uniform range must stay > 0",
            )
        check(0 < self.base_radius_nm < np.inf, "ParticleSimConfig.base_radius_nm must be > 0")
        check(self.sites_per_corner >= 1, "ParticleSimConfig.sites_per_corner must be >= 1")
        check(0 <= self.site_spacing_nm < np.inf, "ParticleSimConfig.site_spacing_nm must be >= 0")
        check(
            self.dol - self.dol_spread >= 0 and self.dol + self.dol_spread <= 1,
            "ParticleSimConfig: dol ± dol_spread must stay within [0, 1]",
        )
        check(0 <= self.localizations_per_site < np.inf, "localizations_per_site must be >= 0")
        check(0 <= self.precision_nm < np.inf, "ParticleSimConfig.precision_nm must be >= 0")
        check(0 <= self.precision_z_nm < np.inf, "ParticleSimConfig.precision_z_nm must be >= 0")


class ParticleSet(NamedTuple):
    """localizations: x, y (, z) nm, particle, site. truth: per-particle arrays."""

    localizations: LocalizationTable
    truth: dict[str, np.ndarray]


def draw_parameter(
    mean: float, spread: float, distribution: str, n: int, rng: np.random.Generator
) -> np.ndarray:
    """`n` positive draws: normal(mean, spread) truncated to > 0, or uniform(mean ± spread)."""
    if distribution == "uniform":
        return rng.uniform(mean - spread, mean + spread, n)
    values = mean + spread * rng.standard_normal(n)
    while np.any(bad := values <= 0):
        values[bad] = mean + spread * rng.standard_normal(int(bad.sum()))
    return values


def tetrahedron_sites(height_nm: np.ndarray, base_radius_nm: float) -> np.ndarray:
    """Sites (P, 4, 3) nm: an equilateral base triangle of circumradius `base_radius_nm`
    at z = 0 (sites 0-2) and the apex `height_nm` above its centre (site 3)."""
    angle = 2 * np.pi * np.arange(3) / 3
    base = np.column_stack(
        [base_radius_nm * np.cos(angle), base_radius_nm * np.sin(angle), [0] * 3]
    )
    sites = np.zeros((len(height_nm), 4, 3))
    sites[:, :3] = base
    sites[:, 3, 2] = height_nm
    return sites


def simulate_particles(config: ParticleSimConfig, seed: Seed) -> ParticleSet:
    """Localizations of `config.n_particles` particles and their per-particle truth.

    truth keys: particle, rotation_rad, dol (drawn labelling probability), n_labeled
    (labelled sites), n_localizations, and radius_nm (NPCs), ring_distance_nm (npc3d)
    or height_nm (tetrahedron).
    """
    rng = as_generator(seed)
    n = config.n_particles
    truth: dict[str, np.ndarray] = {"particle": np.arange(n, dtype=np.int32)}

    def draw(name: str) -> np.ndarray:
        values = draw_parameter(
            getattr(config, f"{name}_nm"),
            getattr(config, f"{name}_spread_nm"),
            getattr(config, f"{name}_distribution"),
            n,
            rng,
        )
        truth[f"{name}_nm"] = values
        return values

    if config.kind == "tetrahedron":
        sites = tetrahedron_sites(draw("height"), config.base_radius_nm)
    else:
        three_d = config.kind == "npc3d"
        radius = draw("radius")
        distance = draw("ring_distance") if three_d else np.zeros(n)
        sites = npc_sites(
            radius, distance, 2 if three_d else 1, config.sites_per_corner, config.site_spacing_nm
        )
    rotation = rng.uniform(0, 2 * np.pi, n) if config.rotate else np.zeros(n)
    sites = rotate_z(sites, rotation)
    dol = rng.uniform(config.dol - config.dol_spread, config.dol + config.dol_spread, n)
    labeled = rng.random(sites.shape[:2]) < dol[:, None]
    counts = rng.poisson(config.localizations_per_site, labeled.shape) * labeled
    n_sites = sites.shape[1]
    particle = np.repeat(np.repeat(np.arange(n), n_sites), counts.ravel())
    site = np.repeat(np.tile(np.arange(n_sites), n), counts.ravel())
    points = sites.reshape(-1, 3)[particle * n_sites + site]
    error = np.array([config.precision_nm, config.precision_nm, config.precision_z_nm])
    points = points + error * rng.standard_normal(points.shape)
    columns = {"x": points[:, 0], "y": points[:, 1]}
    if config.kind != "npc2d":
        columns["z"] = points[:, 2]
    columns |= {"particle": particle, "site": site.astype(np.int32)}
    truth |= {
        "rotation_rad": rotation,
        "dol": dol,
        "n_labeled": labeled.sum(axis=1),
        "n_localizations": counts.sum(axis=1),
    }
    return ParticleSet(LocalizationTable(columns), truth)
