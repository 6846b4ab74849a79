"""Example fields a MIRO preset trains from: three benchmark files or three simulated fields."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pointillist.clusterer.miro.presets import MiroPreset
from pointillist.clusterer.miro.training import ExampleField
from pointillist.clusterer.nieves import read_fields
from pointillist.core.errors import InvalidInput

SIMULATED_EXAMPLE_FIELDS = 3
"""Simulated example fields per scenario (the benchmark protocol's three)."""


def simulated_field(scenario: str, seed: int, blinking: bool = False, klass: int | None = None):
    """One simulated field as an ExampleField (two-level scenarios: rings with sub-clusters)."""
    from pointillist.simulator.clusters import ClusterSimConfig, simulate_clusters

    table = simulate_clusters(ClusterSimConfig(scenario=scenario, blinking=blinking), seed)
    xy = np.stack([table["x"], table["y"]], axis=1).astype(np.float64)
    label = np.asarray(table["label"], dtype=np.int64)
    if "ring" in table.columns:
        labels, sublabels = np.asarray(table["ring"], dtype=np.int64), label
    else:
        labels, sublabels = label, None
    classes = None if klass is None else np.where(labels > 0, klass, 0)
    return ExampleField(xy, labels, sublabels, classes)


def example_fields(
    preset: MiroPreset, data_dir: str | Path | None = None, seed: int = 0
) -> list[ExampleField]:
    """The preset's example fields (Nieves presets read `data_dir`, the benchmark's root)."""
    if preset.source == "nieves":
        if data_dir is None:
            raise InvalidInput(
                f"preset {preset.name} trains on the Nieves benchmark: give its directory"
            )
        scenario = preset.scenarios[0]
        return [
            ExampleField(f.points_nm, f.labels)
            for f in read_fields(data_dir, scenario, preset.blinking, list(preset.train_fields))
        ]
    classify = bool(preset.class_names)
    fields = []
    for c, scenario in enumerate(preset.scenarios, start=1):
        for i in range(SIMULATED_EXAMPLE_FIELDS):
            fields.append(
                simulated_field(
                    scenario, 10_000 * seed + 100 * c + i, preset.blinking, c if classify else None
                )
            )
    return fields
