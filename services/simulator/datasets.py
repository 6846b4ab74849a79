"""One entry point for the point-cloud simulations, shared by the CLI, the service and runs.

`simulate_dataset(kind, params, seed)` maps a parameter dict (YAML, gRPC Struct, CLI
``--param``) onto the kind's config and returns the localizations plus per-item truth.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pointillist.core.errors import InvalidInput
from pointillist.core.table import LocalizationTable
from pointillist.simulator.clusters import ClusterSimConfig, simulate_clusters
from pointillist.simulator.params import Seed
from pointillist.simulator.particles import ParticleSimConfig, simulate_particles
from pointillist.simulator.projections import ProjectionSimConfig, simulate_projections

DATASET_KINDS = ("clusters", "particles", "projections")


@dataclass(frozen=True)
class Dataset:
    """Localizations of a simulated dataset and one row per particle/view of truth.

    truth: columns of equal length with a ``particle`` column (empty for clusters, whose
    truth is the ``label`` column of the localizations). dimensions: 2 or 3.
    """

    kind: str
    subtype: str
    localizations: LocalizationTable
    dimensions: int
    truth: dict[str, np.ndarray] = field(default_factory=dict)
    model_nm: np.ndarray | None = None


def simulate_dataset(kind: str, params: Mapping[str, Any] | None, seed: Seed) -> Dataset:
    """Simulate ``kind`` (clusters | particles | projections) with ``params`` overrides."""
    params = dict(params or {})
    if kind == "clusters":
        config = ClusterSimConfig.from_params(params)
        return Dataset("clusters", config.scenario, simulate_clusters(config, seed), 2)
    if kind == "particles":
        config = ParticleSimConfig.from_params(params)
        result = simulate_particles(config, seed)
        dims = 3 if "z" in result.localizations else 2
        return Dataset("particles", config.kind, result.localizations, dims, dict(result.truth))
    if kind == "projections":
        config = ProjectionSimConfig.from_params(params)
        result = simulate_projections(config, seed)
        return Dataset(
            "projections",
            config.model,
            result.localizations,
            2,
            dict(result.poses),
            result.model_nm,
        )
    raise InvalidInput(f"unknown dataset kind {kind!r}; expected one of {list(DATASET_KINDS)}")
