"""CAML's training fields: random clustering scenarios inside cell-like footprints.

Following Williamson et al. (2020): every field draws its own scenario, i.e. overall
point density, points per cluster, fraction of points in clusters and cluster radius,
kept only when it gives 1–5 clusters per µm² and an intra-cluster density 1.5–100×
the background's (rejection sampling). Clusters are hard-edged discs (points uniform in
the disc). Points lie in an irregular, cell-like footprint (a star-shaped outline,
like the TIRF footprint of a T cell) or, half of the time, fill the square field as in
the Nieves et al. benchmark, so the models see both kinds of edge.

For the multi-class model (3TXKFS: non-clustered / round / fibre) a share of the
clustered points forms fibres instead: smooth random curves (persistent random walk
of the heading) with Gaussian scatter across them, cut to the footprint.

Output per field: positions (n, 2) nm, label (0 = not clustered, 1..C = structure)
and kind (0 = not clustered, 1 = round cluster, 2 = fibre). Pure numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pointillist.simulator.params import Config, Seed, as_generator, check, check_range

NON_CLUSTERED, ROUND, FIBRE = 0, 1, 2
KIND_NAMES = ("non-clustered", "round", "fibre")


@dataclass(frozen=True)
class ScenarioRanges(Config):
    """Ranges (min, max) the random scenarios are drawn from, uniformly unless noted.

    density_per_um2: overall points per µm² of footprint (log-uniform).
    points_per_cluster: points in one round cluster. clustered_fraction: share of points
    in clusters. cluster_radius_nm: hard edge of a round cluster. clusters_per_um2 and
    density_ratio (intra-cluster over background density) are the acceptance limits.
    cell_probability: chance that points lie in a cell-like footprint, not the square.
    fibre_share: (multi-class only) share of the clustered points put in fibres;
    fibre_length_nm, fibre_width_nm (sd across), fibre_points_per_um (along).
    """

    fov_nm: tuple[float, float] = (2000.0, 4000.0)
    density_per_um2: tuple[float, float] = (10.0, 500.0)
    points_per_cluster: tuple[int, int] = (5, 80)
    clustered_fraction: tuple[float, float] = (0.1, 0.9)
    cluster_radius_nm: tuple[float, float] = (20.0, 150.0)
    clusters_per_um2: tuple[float, float] = (1.0, 5.0)
    density_ratio: tuple[float, float] = (1.5, 100.0)
    cell_probability: float = 0.5
    fibre_share: tuple[float, float] = (0.3, 0.7)
    fibre_length_nm: tuple[float, float] = (1000.0, 3000.0)
    fibre_width_nm: tuple[float, float] = (5.0, 15.0)
    fibre_points_per_um: tuple[float, float] = (50.0, 200.0)

    def __post_init__(self) -> None:
        for name in (
            "fov_nm",
            "density_per_um2",
            "cluster_radius_nm",
            "clusters_per_um2",
            "density_ratio",
            "fibre_length_nm",
            "fibre_width_nm",
            "fibre_points_per_um",
        ):
            check_range(f"ScenarioRanges.{name}", getattr(self, name), 1e-9)
        check_range("ScenarioRanges.points_per_cluster", self.points_per_cluster, 2)
        check_range("ScenarioRanges.clustered_fraction", self.clustered_fraction, 0.0)
        check_range("ScenarioRanges.fibre_share", self.fibre_share, 0.0)
        check(self.clustered_fraction[1] < 1, "clustered_fraction must stay below 1")
        check(self.fibre_share[1] <= 1, "fibre_share must stay within [0, 1]")
        check(0 <= self.cell_probability <= 1, "cell_probability must be in [0, 1]")


@dataclass(frozen=True)
class Scenario:
    """One accepted draw of `ScenarioRanges` (see there for the meanings)."""

    fov_nm: float
    density_per_um2: float
    points_per_cluster: int
    clustered_fraction: float
    cluster_radius_nm: float


@dataclass(frozen=True)
class TrainingField:
    """Simulated field: xy_nm (n, 2), label (n,) 0 or 1..C, kind (n,) 0/1/2 (module)."""

    xy_nm: np.ndarray
    label: np.ndarray
    kind: np.ndarray
    scenario: Scenario


def draw_scenario(ranges: ScenarioRanges, rng: np.random.Generator) -> Scenario:
    """A random scenario within `ranges` meeting its clusters/µm² and density-ratio limits."""
    for _ in range(10_000):
        density = float(np.exp(rng.uniform(*np.log(ranges.density_per_um2))))
        ppc = int(rng.integers(ranges.points_per_cluster[0], ranges.points_per_cluster[1] + 1))
        fraction = float(rng.uniform(*ranges.clustered_fraction))
        radius = float(rng.uniform(*ranges.cluster_radius_nm))
        clusters_per_um2 = fraction * density / ppc
        cluster_density = ppc / (np.pi * (radius / 1000.0) ** 2)
        background = (1 - fraction) * density
        ratio = cluster_density / background if background > 0 else np.inf
        if (
            ranges.clusters_per_um2[0] <= clusters_per_um2 <= ranges.clusters_per_um2[1]
            and ranges.density_ratio[0] <= ratio <= ranges.density_ratio[1]
        ):
            fov = float(rng.uniform(*ranges.fov_nm))
            return Scenario(fov, density, ppc, fraction, radius)
    raise ValueError("ScenarioRanges admit no scenario: widen the ranges or the limits")


def cell_outline(fov_nm: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A star-shaped cell footprint in the field: (centre (2,), radius at 720 angles).

    The radius is a mean radius (0.35–0.45 of the field) modulated by harmonics 2–5
    with random phases and decaying amplitudes, so the outline is smooth and irregular.
    """
    theta = np.linspace(0, 2 * np.pi, 720, endpoint=False)
    mean = rng.uniform(0.35, 0.45) * fov_nm
    wobble = sum(
        rng.uniform(0, 0.12 / m) * np.cos(m * theta + rng.uniform(0, 2 * np.pi))
        for m in range(2, 6)
    )
    return np.array([fov_nm / 2, fov_nm / 2]), mean * (1 + wobble)


def _inside(xy: np.ndarray, centre: np.ndarray, radii: np.ndarray) -> np.ndarray:
    rel = xy - centre
    angle = np.mod(np.arctan2(rel[:, 1], rel[:, 0]), 2 * np.pi)
    index = np.minimum((angle / (2 * np.pi) * len(radii)).astype(np.int64), len(radii) - 1)
    return np.hypot(rel[:, 0], rel[:, 1]) <= radii[index]


def _uniform_in(n: int, fov: float, mask, rng: np.random.Generator) -> np.ndarray:
    """n points uniform in the square [0, fov)² restricted to `mask` (None = whole square)."""
    out = np.empty((0, 2))
    while len(out) < n:
        xy = rng.uniform(0, fov, (2 * (n - len(out)) + 16, 2))
        if mask is not None:
            xy = xy[mask(xy)]
        out = np.concatenate([out, xy])
    return out[:n]


def _fibre(
    n_points: int, length_nm: float, width_nm: float, start: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """n_points scattered (sd width_nm) across a smooth random curve of length_nm."""
    steps = max(int(length_nm / 20.0), 2)
    heading = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0, 0.08, steps))
    path = start + np.concatenate(
        [[[0.0, 0.0]], np.cumsum(20.0 * np.column_stack([np.cos(heading), np.sin(heading)]), 0)]
    )
    s = rng.uniform(0, steps, n_points)
    i = np.minimum(s.astype(np.int64), steps - 1)
    t = (s - i)[:, None]
    centre = (1 - t) * path[i] + t * path[i + 1]
    normal = np.column_stack([-np.sin(heading[i]), np.cos(heading[i])])
    return centre + normal * rng.normal(0, width_nm, n_points)[:, None]


def simulate_training_field(
    ranges: ScenarioRanges, seed: Seed, *, multiclass: bool = False
) -> TrainingField:
    """One field of a random scenario (module docstring); fibres only with `multiclass`."""
    rng = as_generator(seed)
    sc = draw_scenario(ranges, rng)
    fov = sc.fov_nm
    mask = None
    area_um2 = (fov / 1000.0) ** 2
    if rng.random() < ranges.cell_probability:
        centre, radii = cell_outline(fov, rng)
        area_um2 = 0.5 * np.mean(radii**2) * 2 * np.pi / 1e6

        def mask(xy: np.ndarray) -> np.ndarray:
            return _inside(xy, centre, radii)

    n_total = rng.poisson(sc.density_per_um2 * area_um2)
    n_clustered = round(sc.clustered_fraction * n_total)
    n_fibre = round(rng.uniform(*ranges.fibre_share) * n_clustered) if multiclass else 0
    n_round = n_clustered - n_fibre
    n_clusters = max(round(n_round / sc.points_per_cluster), 1 if n_round else 0)
    sizes = rng.multinomial(n_round, np.full(n_clusters, 1 / n_clusters)) if n_clusters else []
    parts, labels, kinds = [], [], []
    centres = _uniform_in(n_clusters, fov, mask, rng)
    for c, size in enumerate(sizes):
        r = sc.cluster_radius_nm * np.sqrt(rng.random(size))
        phi = rng.uniform(0, 2 * np.pi, size)
        parts.append(centres[c] + np.column_stack([r * np.cos(phi), r * np.sin(phi)]))
        labels.append(np.full(size, c + 1))
        kinds.append(np.full(size, ROUND))
    label = n_clusters
    while n_fibre > 0:
        length = rng.uniform(*ranges.fibre_length_nm)
        size = min(n_fibre, max(int(rng.uniform(*ranges.fibre_points_per_um) * length / 1e3), 5))
        start = _uniform_in(1, fov, mask, rng)[0]
        xy = _fibre(size, length, rng.uniform(*ranges.fibre_width_nm), start, rng)
        kept = np.all((xy >= 0) & (xy < fov), axis=1)
        if mask is not None:
            kept &= mask(xy)
        parts.append(xy[kept])
        label += 1
        labels.append(np.full(int(kept.sum()), label))
        kinds.append(np.full(int(kept.sum()), FIBRE))
        n_fibre -= size
    n_background = n_total - n_clustered
    parts.append(_uniform_in(n_background, fov, mask, rng))
    labels.append(np.zeros(n_background, dtype=np.int64))
    kinds.append(np.zeros(n_background, dtype=np.int64))
    xy = np.concatenate(parts) if parts else np.zeros((0, 2))
    order = rng.permutation(len(xy))
    return TrainingField(
        xy_nm=xy[order],
        label=np.concatenate(labels).astype(np.int64)[order],
        kind=np.concatenate(kinds).astype(np.int64)[order],
        scenario=sc,
    )
