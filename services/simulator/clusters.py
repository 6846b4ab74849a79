"""Localization point clouds with ground-truth cluster labels, for clustering methods.

The scenarios of the MIRO paper (Pallotta et al.): four of the Nieves et al. (2023)
benchmark (2000×2000 nm fields), MIRO's C-shaped and ring-shaped clusters (6400×6400
nm), its multiscale rings of clusters and its NPC-like structures (1250×1250 nm), each
optionally with repeated detections per molecule ("multiple blinking").

Output: a `LocalizationTable` with x, y (nm, field [0, fov_nm)²), label (0 = not
clustered, 1..C = cluster, dense), plus ring (0 = none, 1..R) for the two-level
scenarios, plus molecule and uncertainty with blinking. Rows are shuffled, so their
order carries no label information.

Parameters of the Nieves scenarios were measured on the benchmark's own files
(shared/data/nieves2023, 50 fields per scenario): cluster centres and background are
uniform in the field; clusters are isotropic Gaussians of σ = 25 nm (pooled per-axis
std 24.7–25.5 nm over all clusters; σ = 75 nm for the big clusters of scenario 9);
scenario 6's ellipses have σ = 78 nm along and 14.4 nm across a uniformly random
orientation (measured 77.2 / 14.2 nm on the principal axes, which with 50 points
per cluster is what 78 / 14.5 gives); exactly half the molecules are clustered.
Blinking: detections per molecule follow a geometric law on {0, 1, ...} with mean 3.9
(measured 3.82–4.00; variance 17.9 ≈ m(m+1); cluster totals too), each scattered by
its own Gaussian precision, log-normal with median 12.9 nm and log-sd 0.27 (matches
the measured displacement quantiles and per-axis kurtosis ≈ 1 of isolated molecules).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from pointillist.core.errors import InvalidInput
from pointillist.core.table import LocalizationTable
from pointillist.simulator.params import (
    Config,
    Seed,
    as_generator,
    check,
    check_choice,
    check_range,
    from_params,
    param_names,
)


@dataclass(frozen=True)
class GaussianClusters(Config):
    """Gaussian clusters in groups (Nieves et al. scenarios).

    Group g has n_clusters[g] clusters of exactly molecules_per_cluster[g] molecules,
    with standard deviation sigma_nm[g] along a random major axis and
    sigma_nm[g] / aspect_ratio[g] across it. Length-1 tuples apply to every group.
    Non-clustered molecules are added, uniform in the field, so that a fraction
    clustered_fraction of all molecules is clustered. Defaults: scenario 5.
    """

    fov_nm: float = 2000.0
    n_clusters: tuple[int, ...] = (100,)
    molecules_per_cluster: tuple[int, ...] = (15,)
    sigma_nm: tuple[float, ...] = (25.0,)
    aspect_ratio: tuple[float, ...] = (1.0,)
    clustered_fraction: float = 0.5

    def __post_init__(self) -> None:
        check(0 < self.fov_nm < np.inf, "GaussianClusters.fov_nm must be > 0")
        groups = len(self.n_clusters)
        for name in ("molecules_per_cluster", "sigma_nm", "aspect_ratio"):
            size = len(getattr(self, name))
            check(size in (1, groups), f"GaussianClusters.{name} needs 1 or {groups} entries")
        check(min(self.n_clusters, default=0) >= 0, "GaussianClusters.n_clusters must be >= 0")
        check(min(self.molecules_per_cluster) >= 1, "molecules_per_cluster must be >= 1")
        check(min(self.sigma_nm) > 0, "GaussianClusters.sigma_nm must be > 0")
        check(min(self.aspect_ratio) >= 1, "GaussianClusters.aspect_ratio must be >= 1")
        check(0 < self.clustered_fraction <= 1, "clustered_fraction must be in (0, 1]")


@dataclass(frozen=True)
class ArcClusters(Config):
    """Clusters of localizations on circular arcs (MIRO's C-shapes and rings).

    Per field a uniform number of clusters in n_clusters (inclusive), each with a
    uniform number of localizations in localizations_per_cluster, at uniform angles over
    an arc of arc_deg degrees (randomly oriented) of a circle of radius_nm, the radius of
    each localization Gaussian with sd radial_sd_nm. Non-clustered localizations are
    background_fraction of all localizations. Defaults: MIRO's C-shaped clusters.
    """

    fov_nm: float = 6400.0
    n_clusters: tuple[int, int] = (30, 60)
    localizations_per_cluster: tuple[int, int] = (30, 60)
    radius_nm: float = 250.0
    radial_sd_nm: float = 50.0
    arc_deg: float = 180.0
    background_fraction: float = 0.06

    def __post_init__(self) -> None:
        check(0 < self.fov_nm < np.inf, "ArcClusters.fov_nm must be > 0")
        check_range("ArcClusters.n_clusters", self.n_clusters, 0)
        check_range("ArcClusters.localizations_per_cluster", self.localizations_per_cluster, 1)
        check(0 < self.radius_nm < np.inf, "ArcClusters.radius_nm must be > 0")
        check(0 <= self.radial_sd_nm < np.inf, "ArcClusters.radial_sd_nm must be >= 0")
        check(0 < self.arc_deg <= 360, "ArcClusters.arc_deg must be in (0, 360]")
        check(0 <= self.background_fraction < 1, "background_fraction must be in [0, 1)")


@dataclass(frozen=True)
class SymmetricRings(Config):
    """MIRO's multiscale proof of principle: rings of clusters.

    A uniform number of rings in n_rings, each with a uniform fold in `fold`: that many
    Gaussian clusters (sd cluster_sigma_nm, a uniform number of localizations in
    localizations_per_cluster) evenly spaced on a randomly rotated circle of
    ring_radius_nm. Non-clustered localizations are background_fraction of all.
    """

    fov_nm: float = 1250.0
    n_rings: tuple[int, int] = (40, 60)
    fold: tuple[int, int] = (5, 9)
    ring_radius_nm: float = 40.0
    localizations_per_cluster: tuple[int, int] = (6, 30)
    cluster_sigma_nm: float = 15.0
    background_fraction: float = 0.015

    def __post_init__(self) -> None:
        check(0 < self.fov_nm < np.inf, "SymmetricRings.fov_nm must be > 0")
        check_range("SymmetricRings.n_rings", self.n_rings, 0)
        check_range("SymmetricRings.fold", self.fold, 1)
        check_range("SymmetricRings.localizations_per_cluster", self.localizations_per_cluster, 1)
        check(0 <= self.ring_radius_nm < np.inf, "SymmetricRings.ring_radius_nm must be >= 0")
        check(0 < self.cluster_sigma_nm < np.inf, "SymmetricRings.cluster_sigma_nm must be > 0")
        check(0 <= self.background_fraction < 1, "background_fraction must be in [0, 1)")


@dataclass(frozen=True)
class NpcCorners(Config):
    """MIRO's NPC-like training structures: n_corners triangles around a common vertex.

    Each corner is an isosceles triangle with its apex at the NPC centre, apex angle
    360°/n_corners and height h = 2·radius_nm. A uniform number of localizations in
    localizations_per_corner is spread around the point at radius_nm (h/2) on the
    triangle's axis: in a uniformly random direction, at a half-normal distance whose sd
    is that direction's centre-to-perimeter distance / sd_divisor. With radius 50 nm
    and divisor 1.8 this gives the paper's effective inner and outer radii of 20 and
    80 nm (50 ∓ 50/1.8 nm radially) and ±11.5 nm across. Per field a uniform number of
    NPCs in n_npcs, randomly rotated; background is background_fraction of all.
    """

    fov_nm: float = 1250.0
    n_npcs: tuple[int, int] = (5, 9)
    radius_nm: float = 50.0
    n_corners: int = 8
    localizations_per_corner: tuple[int, int] = (0, 80)
    sd_divisor: float = 1.8
    background_fraction: float = 0.03

    def __post_init__(self) -> None:
        check(0 < self.fov_nm < np.inf, "NpcCorners.fov_nm must be > 0")
        check_range("NpcCorners.n_npcs", self.n_npcs, 0)
        check(0 < self.radius_nm < np.inf, "NpcCorners.radius_nm must be > 0")
        check(self.n_corners >= 3, "NpcCorners.n_corners must be >= 3")
        check_range("NpcCorners.localizations_per_corner", self.localizations_per_corner, 0)
        check(0 < self.sd_divisor < np.inf, "NpcCorners.sd_divisor must be > 0")
        check(0 <= self.background_fraction < 1, "background_fraction must be in [0, 1)")


Layout = GaussianClusters | ArcClusters | SymmetricRings | NpcCorners

#: The named scenarios and their parameters (see the module docstring for the sources).
SCENARIOS: dict[str, Layout] = {
    "scenario5": GaussianClusters(),
    "scenario6": GaussianClusters(
        n_clusters=(20,), molecules_per_cluster=(50,), sigma_nm=(78.0,), aspect_ratio=(5.4,)
    ),
    "scenario8": GaussianClusters(n_clusters=(10, 10), molecules_per_cluster=(5, 15)),
    "scenario9": GaussianClusters(
        n_clusters=(10, 10), molecules_per_cluster=(15, 135), sigma_nm=(25.0, 75.0)
    ),
    "c_shape": ArcClusters(),
    "ring": ArcClusters(
        n_clusters=(60, 70),
        localizations_per_cluster=(60, 80),
        arc_deg=360.0,
        background_fraction=0.07,
    ),
    "multiscale_rings": SymmetricRings(),
    "npc": NpcCorners(),
}


@dataclass(frozen=True)
class ClusterSimConfig:
    """A named scenario, its layout parameters, and optional multiple blinking.

    layout defaults to the scenario's (`SCENARIOS`). With blinking, each point becomes
    Geometric(mean detections_per_molecule) detections on {0, 1, ...}, each displaced by
    a Gaussian of sd drawn log-normally (median precision_nm, log-sd precision_log_sd).
    `from_params` takes one flat dict: scenario, the blinking keys, and any of the
    layout's keys, e.g. {"scenario": "ring", "radius_nm": 300, "blinking": true}.
    """

    scenario: str = "scenario5"
    layout: Layout | None = None
    blinking: bool = False
    detections_per_molecule: float = 3.9
    precision_nm: float = 12.9
    precision_log_sd: float = 0.27

    def __post_init__(self) -> None:
        check_choice("ClusterSimConfig.scenario", self.scenario, tuple(SCENARIOS))
        expected = type(SCENARIOS[self.scenario])
        if self.layout is None:
            object.__setattr__(self, "layout", SCENARIOS[self.scenario])
        check(
            isinstance(self.layout, expected),
            f"scenario {self.scenario!r} takes a {expected.__name__} layout",
        )
        check(0 <= self.detections_per_molecule < np.inf, "detections_per_molecule must be >= 0")
        check(0 <= self.precision_nm < np.inf, "precision_nm must be >= 0")
        check(0 <= self.precision_log_sd < np.inf, "precision_log_sd must be >= 0")

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None) -> ClusterSimConfig:
        """The scenario named in `params` with its own and its layout's keys overridden."""
        params = dict(params or {})
        scenario = params.get("scenario", cls.scenario)
        if not isinstance(scenario, str) or scenario not in SCENARIOS:
            raise InvalidInput(f"scenario must be one of {list(SCENARIOS)}, got {scenario!r}")
        base = SCENARIOS[scenario]
        own_keys = set(param_names(cls)) - {"layout"}
        layout_keys = set(param_names(type(base)))
        unknown = sorted(set(params) - own_keys - layout_keys)
        if unknown:
            raise InvalidInput(
                f"cluster scenario {scenario!r}: unknown parameter(s) {unknown}; "
                f"known: {sorted(own_keys | layout_keys)}"
            )
        layout_params = {k: params.pop(k) for k in list(params) if k in layout_keys}
        layout = from_params(type(base), layout_params, base=base)
        return dataclasses.replace(from_params(cls, params), layout=layout)


def simulate_clusters(config: ClusterSimConfig, seed: Seed) -> LocalizationTable:
    """One field of view of `config.scenario` (see the module docstring for columns)."""
    rng = as_generator(seed)
    layout = config.layout
    if isinstance(layout, GaussianClusters):
        xy, label, ring = _gaussian(layout, rng)
    elif isinstance(layout, ArcClusters):
        xy, label, ring = _arcs(layout, rng)
    elif isinstance(layout, SymmetricRings):
        xy, label, ring = _symmetric_rings(layout, rng)
    else:
        xy, label, ring = _npc_corners(layout, rng)
    columns: dict[str, np.ndarray] = {"label": _dense(label)}
    if not isinstance(layout, GaussianClusters | ArcClusters):
        columns["ring"] = _dense(ring)
    if config.blinking:
        xy, molecule, uncertainty = blink_molecules(
            xy,
            config.detections_per_molecule,
            config.precision_nm,
            config.precision_log_sd,
            rng,
        )
        columns = {k: v[molecule] for k, v in columns.items()}
        columns |= {"molecule": molecule.astype(np.int32), "uncertainty": uncertainty}
    order = rng.permutation(len(xy))
    table = {"x": xy[:, 0], "y": xy[:, 1], **columns}
    return LocalizationTable({k: np.asarray(v)[order] for k, v in table.items()})


def blink_molecules(
    xy: np.ndarray, mean_detections: float, precision_nm: float, log_sd: float, seed: Seed
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Repeated detections of molecules at `xy` (M, 2) nm.

    Each molecule gets Geometric(mean_detections) detections on {0, 1, ...} (memoryless
    blinking), each with its own precision σ = precision_nm·exp(log_sd·N(0, 1)) and a
    Gaussian displacement of sd σ in x and y. Returns (positions (D, 2), molecule index
    (D,), σ (D,)).
    """
    rng = as_generator(seed)
    counts = rng.geometric(1 / (1 + mean_detections), len(xy)) - 1
    molecule = np.repeat(np.arange(len(xy)), counts)
    sigma = precision_nm * np.exp(log_sd * rng.standard_normal(len(molecule)))
    shifted = xy[molecule] + sigma[:, None] * rng.standard_normal((len(molecule), 2))
    return shifted, molecule, sigma


Points = tuple[np.ndarray, np.ndarray, np.ndarray]


def _with_background(
    xy: np.ndarray,
    label: np.ndarray,
    ring: np.ndarray,
    n_background: int,
    fov_nm: float,
    rng: np.random.Generator,
) -> Points:
    background = rng.uniform(0, fov_nm, (n_background, 2))
    zeros = np.zeros(n_background, np.int64)
    return (
        np.concatenate([xy, background]),
        np.concatenate([label, zeros]),
        np.concatenate([ring, zeros]),
    )


def _background_count(n_clustered: int, fraction: float) -> int:
    """Background points making up `fraction` of all points."""
    return round(n_clustered * fraction / (1 - fraction))


def _gaussian(layout: GaussianClusters, rng: np.random.Generator) -> Points:
    groups = len(layout.n_clusters)
    n_clusters = np.array(layout.n_clusters)

    def per_cluster(values: tuple) -> np.ndarray:
        return np.repeat(np.broadcast_to(np.array(values), groups), n_clusters)

    size, sigma = per_cluster(layout.molecules_per_cluster), per_cluster(layout.sigma_nm)
    minor = sigma / per_cluster(layout.aspect_ratio)
    n = len(size)
    centers = rng.uniform(0, layout.fov_nm, (n, 2))
    angle = rng.uniform(0, np.pi, n)
    label = np.repeat(np.arange(1, n + 1), size)
    k = label - 1
    along, across = rng.standard_normal((2, len(label))) * (sigma[k], minor[k])
    c, s = np.cos(angle[k]), np.sin(angle[k])
    xy = centers[k] + np.column_stack([c * along - s * across, s * along + c * across])
    n_background = _background_count(len(label), 1 - layout.clustered_fraction)
    return _with_background(xy, label, np.zeros_like(label), n_background, layout.fov_nm, rng)


def _uniform_int(
    bounds: tuple[int, int], rng: np.random.Generator, size: int | None = None
) -> np.ndarray:
    return rng.integers(bounds[0], bounds[1] + 1, size)


def _arcs(layout: ArcClusters, rng: np.random.Generator) -> Points:
    n = int(_uniform_int(layout.n_clusters, rng))
    size = _uniform_int(layout.localizations_per_cluster, rng, n)
    centers = rng.uniform(0, layout.fov_nm, (n, 2))
    orientation = rng.uniform(0, 2 * np.pi, n)
    label = np.repeat(np.arange(1, n + 1), size)
    k = label - 1
    theta = orientation[k] + np.deg2rad(layout.arc_deg) * rng.random(len(label))
    radius = layout.radius_nm + layout.radial_sd_nm * rng.standard_normal(len(label))
    xy = centers[k] + radius[:, None] * np.column_stack([np.cos(theta), np.sin(theta)])
    n_background = _background_count(len(label), layout.background_fraction)
    return _with_background(xy, label, np.zeros_like(label), n_background, layout.fov_nm, rng)


def _symmetric_rings(layout: SymmetricRings, rng: np.random.Generator) -> Points:
    n_rings = int(_uniform_int(layout.n_rings, rng))
    fold = _uniform_int(layout.fold, rng, n_rings)
    centers = rng.uniform(0, layout.fov_nm, (n_rings, 2))
    rotation = rng.uniform(0, 2 * np.pi, n_rings)
    ring_of_cluster = np.repeat(np.arange(n_rings), fold)
    index_in_ring = np.arange(len(ring_of_cluster)) - np.repeat(np.cumsum(fold) - fold, fold)
    angle = rotation[ring_of_cluster] + 2 * np.pi * index_in_ring / fold[ring_of_cluster]
    cluster_centers = centers[ring_of_cluster] + layout.ring_radius_nm * np.column_stack(
        [np.cos(angle), np.sin(angle)]
    )
    size = _uniform_int(layout.localizations_per_cluster, rng, len(cluster_centers))
    label = np.repeat(np.arange(1, len(size) + 1), size)
    xy = cluster_centers[label - 1] + layout.cluster_sigma_nm * rng.standard_normal((len(label), 2))
    ring = ring_of_cluster[label - 1] + 1
    n_background = _background_count(len(label), layout.background_fraction)
    return _with_background(xy, label, ring, n_background, layout.fov_nm, rng)


def _npc_corners(layout: NpcCorners, rng: np.random.Generator) -> Points:
    n_npcs = int(_uniform_int(layout.n_npcs, rng))
    corners = layout.n_corners
    centers = rng.uniform(0, layout.fov_nm, (n_npcs, 2))
    rotation = rng.uniform(0, 2 * np.pi, n_npcs)
    size = _uniform_int(layout.localizations_per_corner, rng, n_npcs * corners)
    label = np.repeat(np.arange(1, n_npcs * corners + 1), size)
    npc, corner = (label - 1) // corners, (label - 1) % corners
    # Local frame of a corner: apex at the origin, axis along +x, base at x = h.
    h, half_angle = 2 * layout.radius_nm, np.pi / corners
    triangle = np.array([[0.0, 0.0], [h, h * np.tan(half_angle)], [h, -h * np.tan(half_angle)]])
    middle = np.array([layout.radius_nm, 0.0])
    direction = rng.uniform(0, 2 * np.pi, len(label))
    unit = np.column_stack([np.cos(direction), np.sin(direction)])
    reach = _ray_to_polygon(middle, unit, triangle)
    distance = np.abs(rng.standard_normal(len(label))) * reach / layout.sd_divisor
    local = middle + distance[:, None] * unit
    axis = rotation[npc] + 2 * np.pi * corner / corners
    c, s = np.cos(axis), np.sin(axis)
    xy = centers[npc] + np.column_stack(
        [c * local[:, 0] - s * local[:, 1], s * local[:, 0] + c * local[:, 1]]
    )
    n_background = _background_count(len(label), layout.background_fraction)
    return _with_background(xy, label, npc + 1, n_background, layout.fov_nm, rng)


def _ray_to_polygon(origin: np.ndarray, unit: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """Distance from `origin` (inside the convex polygon) to its edge along each `unit`."""

    def cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]

    reach = np.full(len(unit), np.inf)
    for p, q in zip(vertices, np.roll(vertices, -1, axis=0), strict=True):
        edge = q - p
        denominator = cross(unit, edge)
        with np.errstate(divide="ignore", invalid="ignore"):
            s = cross(p - origin, edge) / denominator
            t = cross(p - origin, unit) / denominator
        hit = (s > 0) & (t >= 0) & (t <= 1)
        reach = np.where(hit, np.minimum(reach, s), reach)
    return reach


def _dense(label: np.ndarray) -> np.ndarray:
    """Labels renumbered 1..C in order, 0 kept as 0 (clusters may end up empty)."""
    _, dense = np.unique(np.concatenate([[0], label]), return_inverse=True)
    return dense[1:].astype(np.int32)
