"""Heterogeneity analysis of a latent space, as in the PC-VAE paper (Binning, Results).

Given particles and one latent vector per particle (the encoder's μ, or any (n, d)
coordinates such as the PCA baseline's), the analysis reads the latent space along its
*axes*: by default the encoder's own dimensions (latent_0, ..., the paper's reading), or
the independent axes of the latent means (axes="independent": `axes.fit_independent_axes`,
ICA; named ic_0, ic_1, ...). The baseline is read the same way (its components pca_j,
or their ICA axes pca_ic_j), so the comparison stays like for like.

- model-based parameters per particle (`parameters.estimate_parameters`);
- Pearson and Spearman correlation of every axis with every parameter, and the same for
  the PCA baseline (`baseline.DistanceHistogramPCA`, d components);
- per axis: particles ordered along it, split into n_bins equal-count bins,
  one super-particle per bin by joint registration of its particles, the bins'
  super-particles registered to each other, and the parameters of each fused cloud
  (precision FWHM/√n over all of its localizations);
- the best dimension per parameter: the largest |Spearman ρ|.

Cost: all particles are registered once (pose search + joint EM); each bin's particles
are then registered jointly by EM started from those poses, and the bins' super-
particles by EM from the common frame, so the search is not repeated per bin and
dimension. Each EM uses at most `RegistrationConfig.max_points_per_particle` random
localizations per particle (200 by default); fused clouds hold all localizations.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from scipy.stats import pearsonr, spearmanr

from pointillist.core.errors import InvalidInput
from pointillist.vae.axes import AXES, fit_independent_axes
from pointillist.vae.baseline import DistanceHistogramPCA
from pointillist.vae.parameters import PARAMETERS, estimate_parameters
from pointillist.vae.registration import (
    Registration,
    RegistrationConfig,
    apply_transform,
    register_particles,
    register_super_particles,
)

Progress = Callable[[str, int, int], None]
"""progress(stage, done, total): 'register' once, then 'dimension' once per latent dimension."""


class ParticleClouds(Protocol):
    """What `analyze` needs of `pointillist.core.particles.Particles`."""

    points: list[np.ndarray]
    ids: np.ndarray
    dims: int


@dataclass(frozen=True)
class SuperParticle:
    """One bin along a latent dimension (lengths nm).

    members: indices (into the analysed particles) of the bin's particles, in latent
    order; latent_range: the bin's lowest and highest coordinate; points: the fused
    localizations (float32) in the frame shared by all bins of the dimension;
    estimates: parameters of the fused cloud (e.g. radius_nm, radius_precision_nm,
    n_localizations).
    """

    members: np.ndarray
    latent_range: tuple[float, float]
    points: np.ndarray
    estimates: dict[str, float]


@dataclass(frozen=True)
class HeterogeneityAnalysis:
    """Result of `analyze`. latent: the latent means (n, d); coordinates: the particles
    on the analysed axes (n, k), which the correlation arrays (k, len(parameter_names)),
    bins and best dimensions refer to; axes: 'independent' or 'latent'."""

    ids: np.ndarray
    dims: int
    kind: str | None
    latent: np.ndarray
    axes: str
    coordinates: np.ndarray
    parameters: dict[str, np.ndarray]
    parameter_names: tuple[str, ...]
    pearson: np.ndarray
    spearman: np.ndarray
    baseline: np.ndarray
    baseline_pearson: np.ndarray
    baseline_spearman: np.ndarray
    bins: list[list[SuperParticle]]

    def axis_name(self, j: int) -> str:
        """The name of analysed axis j: ic_j (independent axes) or latent_j."""
        return f"{'ic' if self.axes == 'independent' else 'latent'}_{j}"

    def baseline_name(self, j: int) -> str:
        """The name of baseline axis j: pca_ic_j or pca_j."""
        return f"{'pca_ic' if self.axes == 'independent' else 'pca'}_{j}"

    @property
    def best_dimensions(self) -> dict[str, int]:
        """Per parameter, the analysed axis with the largest |Spearman ρ| (0-based)."""
        score = np.nan_to_num(np.abs(self.spearman), nan=-1.0)
        return {name: int(np.argmax(score[:, j])) for j, name in enumerate(self.parameter_names)}

    def bin_values(self, dimension: int, parameter: str) -> list[np.ndarray]:
        """Per bin along `dimension`, the per-particle values of `parameter`."""
        return [self.parameters[parameter][b.members] for b in self.bins[dimension]]

    def per_particle_table(self) -> dict[str, np.ndarray]:
        """Columns for a CSV: particle, latent_0 … latent_{d-1}, the independent axes
        ic_0 … (when analysed along them), then every parameter."""
        table: dict[str, np.ndarray] = {"particle": self.ids}
        table |= {f"latent_{j}": self.latent[:, j] for j in range(self.latent.shape[1])}
        if self.axes == "independent":
            table |= {
                self.axis_name(j): self.coordinates[:, j] for j in range(self.coordinates.shape[1])
            }
        return table | self.parameters

    def correlation_rows(self, baseline: bool = False) -> list[dict[str, object]]:
        """One row per axis (or baseline axis) with r and ρ per parameter, rounded."""
        pearson = self.baseline_pearson if baseline else self.pearson
        spearman = self.baseline_spearman if baseline else self.spearman
        axis = self.baseline_name if baseline else self.axis_name
        rows = []
        for j in range(len(pearson)):
            row: dict[str, object] = {"dimension": axis(j)}
            for k, name in enumerate(self.parameter_names):
                row[f"r {name}"] = f"{pearson[j, k]:+.3f}"
                row[f"ρ {name}"] = f"{spearman[j, k]:+.3f}"
            rows.append(row)
        return rows


def analyze(
    particles: ParticleClouds | Sequence[np.ndarray],
    latent: np.ndarray,
    kind: str | None = None,
    n_bins: int = 20,
    registration: RegistrationConfig | None = None,
    progress: Progress | None = None,
    axes: str = "latent",
    seed: int = 0,
) -> HeterogeneityAnalysis:
    """Parameters, correlations, PCA baseline and per-bin super-particles of `particles`
    (Particles, or a list of (n_i, dims) arrays) along each axis of `latent` (n, d).

    kind in {"npc2d", "npc3d", "tetrahedron", None} picks the model-based parameters
    (None: n_localizations only). axes: 'latent' (the columns of `latent` as they are) or
    'independent' (ICA of the latent means, `seed` fixing it).
    """
    if axes not in AXES:
        raise InvalidInput(f"axes must be one of {list(AXES)}, got {axes!r}")
    clouds, ids, dims = _clouds(particles)
    latent = _checked_latent(latent, len(clouds))
    if not 1 <= n_bins <= len(clouds):
        raise InvalidInput(f"n_bins must be in 1..{len(clouds)} (the particles), got {n_bins}")
    parameters = estimate_parameters(clouds, kind)
    names = PARAMETERS[kind]
    values = np.column_stack([parameters[name] for name in names])
    baseline = DistanceHistogramPCA(n_components=latent.shape[1]).fit(clouds).transform(clouds)
    coordinates = latent
    if axes == "independent":
        coordinates = fit_independent_axes(latent, seed).transform(latent)
        baseline = fit_independent_axes(baseline, seed).transform(baseline)
    n_axes = coordinates.shape[1]
    registration = registration or RegistrationConfig()
    report = progress or (lambda stage, done, total: None)
    report("register", 0, 1)
    poses = register_particles(clouds, registration)
    report("register", 1, 1)
    bins = []
    for dimension in range(n_axes):
        report("dimension", dimension, n_axes)
        bins.append(
            _super_particles(clouds, coordinates[:, dimension], n_bins, poses, kind, registration)
        )
    report("dimension", n_axes, n_axes)
    return HeterogeneityAnalysis(
        ids=ids,
        dims=dims,
        kind=kind,
        latent=latent,
        axes=axes,
        coordinates=coordinates,
        parameters=parameters,
        parameter_names=names,
        pearson=_correlations(coordinates, values, pearsonr),
        spearman=_correlations(coordinates, values, spearmanr),
        baseline=baseline,
        baseline_pearson=_correlations(baseline, values, pearsonr),
        baseline_spearman=_correlations(baseline, values, spearmanr),
        bins=bins,
    )


def _clouds(
    particles: ParticleClouds | Sequence[np.ndarray],
) -> tuple[list[np.ndarray], np.ndarray, int]:
    """(clouds as float64 arrays, ids (int64), dims) of Particles or a list of arrays."""
    points = getattr(particles, "points", particles)
    clouds = [np.asarray(p, dtype=np.float64) for p in points]
    if not clouds:
        raise InvalidInput("no particles to analyse")
    ids = np.asarray(getattr(particles, "ids", np.arange(len(clouds))), dtype=np.int64)
    dims = int(getattr(particles, "dims", clouds[0].shape[1]))
    if len(ids) != len(clouds):
        raise InvalidInput(f"{len(ids)} particle ids for {len(clouds)} particles")
    return clouds, ids, dims


def _checked_latent(latent: np.ndarray, n: int) -> np.ndarray:
    """latent as a finite float64 (n, d) array."""
    latent = np.asarray(latent, dtype=np.float64)
    if latent.ndim != 2 or len(latent) != n or latent.shape[1] < 1:
        raise InvalidInput(f"latent must have shape ({n}, d), got {latent.shape}")
    if not np.isfinite(latent).all():
        raise InvalidInput("latent holds NaN or infinite values")
    return latent


def _correlations(
    coordinates: np.ndarray, values: np.ndarray, statistic: Callable[..., object]
) -> np.ndarray:
    """statistic (pearsonr or spearmanr) of each coordinate column with each value column,
    over the particles where the value is finite; NaN where either side is constant."""
    out = np.full((coordinates.shape[1], values.shape[1]), np.nan)
    for k in range(values.shape[1]):
        finite = np.isfinite(values[:, k])
        y = values[finite, k]
        for j in range(coordinates.shape[1]):
            x = coordinates[finite, j]
            if len(y) >= 3 and np.ptp(x) > 0 and np.ptp(y) > 0:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # near-constant input: NaN is the answer
                    out[j, k] = float(statistic(x, y)[0])
    return out


def _super_particles(
    clouds: list[np.ndarray],
    coordinate: np.ndarray,
    n_bins: int,
    poses: Registration,
    kind: str | None,
    registration: RegistrationConfig,
) -> list[SuperParticle]:
    """The bins along one latent coordinate, each fused and all registered together."""
    order = np.argsort(coordinate, kind="stable")
    members = np.array_split(order, n_bins)
    fused = []
    for bin_members in members:
        registered = register_particles(
            [clouds[i] for i in bin_members],
            registration,
            initial_rotation_rad=poses.rotation_rad[bin_members],
            initial_translation_nm=poses.translation_nm[bin_members],
        )
        fused.append(registered.points)
    together = register_super_particles(
        fused,
        registration,
        initial_rotation_rad=np.zeros(n_bins),
        initial_translation_nm=np.zeros((n_bins, fused[0].shape[1])),
    )
    bins = []
    for b, bin_members in enumerate(members):
        points = apply_transform(fused[b], together.rotation_rad[b], together.translation_nm[b])
        estimates = estimate_parameters([points], kind)
        bins.append(
            SuperParticle(
                members=bin_members,
                latent_range=(
                    float(coordinate[bin_members[0]]),
                    float(coordinate[bin_members[-1]]),
                ),
                points=points.astype(np.float32),
                estimates={name: float(v[0]) for name, v in estimates.items()},
            )
        )
    return bins
