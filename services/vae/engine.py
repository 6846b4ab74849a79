"""One code path for the CLI and the service: a particle table in, a trained PC-VAE, the
latent coordinate per particle and (optionally) the heterogeneity analysis out.

Particles are localizations with a ``particle`` column (x, y, and z for 3D, in nm). The
ones with fewer than 3 localizations or non-finite coordinates are skipped and
reported, never fatal. The latent table has one row per particle: x, y (, z) = its
centroid (nm), ``particle``, ``latent_0 .. latent_{d-1}`` (the latent means μ) and,
after analysis, the model-based estimates (``radius_nm``, ``height_nm``, ...).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pointillist.core.config import plain_params, replace_fields
from pointillist.core.errors import InvalidInput
from pointillist.core.particles import Particles, Skipped, particles_from_table
from pointillist.core.table import LocalizationTable
from pointillist.vae.analysis import HeterogeneityAnalysis, analyze
from pointillist.vae.axes import AXES
from pointillist.vae.training import TrainedVae, VaeConfig, embed, train_vae

#: Particle kinds with model-based parameter estimates (the paper's three data sets).
KINDS = ("npc2d", "npc3d", "tetrahedron")


def vae_config(params: Mapping[str, Any], base: VaeConfig | None = None) -> VaeConfig:
    """A VaeConfig from keyword parameters over ``base``; InvalidInput names unknown keys."""
    return replace_fields(base or VaeConfig(), params, "VAE")


def check_kind(kind: str | None) -> str | None:
    """``kind`` if it has model-based estimates, None for '' or None; InvalidInput otherwise."""
    if not kind:
        return None
    if kind not in KINDS:
        raise InvalidInput(f"unknown particle kind {kind!r}; known: {', '.join(KINDS)}")
    return kind


def kind_dims(kind: str | None) -> int | None:
    """The dimensions a particle kind implies (npc2d: 2, npc3d/tetrahedron: 3), else None:
    then x, y, and z when the table has it."""
    return {"npc2d": 2, "npc3d": 3, "tetrahedron": 3}.get(kind or "")


@dataclass(frozen=True)
class Settings:
    """What to do with one particle set: training config, analysis (bins, axes: see
    `pointillist.vae.analysis`), particle kind."""

    config: VaeConfig = field(default_factory=VaeConfig)
    analyze: bool = True
    n_bins: int = 20
    kind: str | None = None
    axes: str = "latent"

    def with_params(self, params: Mapping[str, Any]) -> Settings:
        """These settings with ``params`` (VaeConfig fields, analyze, n_bins, kind, axes)
        over them."""
        params = plain_params(params)
        analyze = bool(params.pop("analyze", self.analyze))
        n_bins = int(params.pop("n_bins", self.n_bins))
        if n_bins < 2:
            raise InvalidInput(f"n_bins must be >= 2, got {n_bins}")
        kind = check_kind(params.pop("kind", self.kind))
        axes = str(params.pop("axes", self.axes))
        if axes not in AXES:
            raise InvalidInput(f"axes must be one of {list(AXES)}, got {axes!r}")
        return Settings(vae_config(params, self.config), analyze, n_bins, kind, axes)


def with_truth(table: LocalizationTable, truth: Mapping[str, np.ndarray]) -> LocalizationTable:
    """The latent table plus ``true_<name>`` columns from per-particle truth, by particle id."""
    if "particle" not in truth or not len(table):
        return table
    index = {int(p): i for i, p in enumerate(truth["particle"])}
    rows = np.array([index.get(int(p), -1) for p in table["particle"]])
    columns = {name: table[name] for name in table.columns}
    for name, values in truth.items():
        if name == "particle" or not np.issubdtype(np.asarray(values).dtype, np.number):
            continue
        column = np.full(len(table), np.nan)
        column[rows >= 0] = np.asarray(values, dtype=np.float64)[rows[rows >= 0]]
        columns[f"true_{name}"] = column
    return LocalizationTable(columns, check_finite=False)


def latent_table(
    particles: Particles, latent: np.ndarray, extra: Mapping[str, np.ndarray] | None = None
) -> LocalizationTable:
    """One row per particle: centroid x, y (, z) nm, particle id, latent_i, extra columns."""
    centroids = np.array([p.mean(axis=0) for p in particles.points]).reshape(-1, particles.dims)
    columns: dict[str, np.ndarray] = {"x": centroids[:, 0], "y": centroids[:, 1]}
    if particles.dims == 3:
        columns["z"] = centroids[:, 2]
    columns["particle"] = np.asarray(particles.ids, dtype=np.int64)
    for i in range(latent.shape[1]):
        columns[f"latent_{i}"] = latent[:, i].astype(np.float64)
    for name, values in (extra or {}).items():
        if name not in columns:
            columns[name] = np.asarray(values)
    return LocalizationTable(columns, check_finite=False)


@dataclass
class VaeFit:
    """A trained model, what it saw and skipped, the latent means and the analysis."""

    trained: TrainedVae
    particles: Particles
    skipped: list[Skipped]
    latent: np.ndarray
    analysis: HeterogeneityAnalysis | None
    seconds: float

    def table(self) -> LocalizationTable:
        """The latent table (module docstring), with the analysed axes (ic_j) and the
        estimates when analysed."""
        if self.analysis is None:
            return latent_table(self.particles, self.latent)
        extra = self.analysis.per_particle_table()
        extra.pop("particle")
        return latent_table(self.particles, self.latent, extra)


def fit_table(
    table: LocalizationTable,
    config: VaeConfig,
    *,
    kind: str | None = None,
    analyze_latent: bool = False,
    n_bins: int = 20,
    axes: str = "latent",
    progress: Callable[[Any], None] | None = None,
    analysis_progress: Callable[[str, int, int], None] | None = None,
) -> VaeFit:
    """Train on the table's particles, embed them, and analyse the latent space if asked."""
    kind = check_kind(kind)
    start = time.perf_counter()
    particles, skipped = particles_from_table(table, dims=kind_dims(kind))
    trained = train_vae(particles, config, progress=progress)
    latent = embed(trained, particles)
    analysis = (
        analyze(particles, latent, kind=kind, n_bins=n_bins, progress=analysis_progress, axes=axes)
        if analyze_latent
        else None
    )
    return VaeFit(trained, particles, skipped, latent, analysis, time.perf_counter() - start)


def embed_table(
    trained: TrainedVae, table: LocalizationTable
) -> tuple[Particles, list[Skipped], np.ndarray]:
    """The table's particles (as the model's dimensions), those skipped, and their μ."""
    particles, skipped = particles_from_table(table, dims=trained.dims)
    return particles, skipped, embed(trained, particles)


def summary_lines(analysis: HeterogeneityAnalysis) -> list[str]:
    """Per parameter: the axis most correlated with it (|Spearman ρ|), its ρ and
    Pearson r, and the PCA baseline's best |ρ| for comparison."""
    lines = []
    for j, name in enumerate(analysis.parameter_names):
        best = analysis.best_dimensions[name]
        rho, r = analysis.spearman[best, j], analysis.pearson[best, j]
        pca = np.nanmax(np.abs(analysis.baseline_spearman[:, j]))
        lines.append(
            f"{name}: {analysis.axis_name(best)} ρ = {rho:+.3f} (r = {r:+.3f}); "
            f"PCA baseline best |ρ| = {pca:.3f}"
        )
    return lines
