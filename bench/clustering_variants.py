"""MIRO's variants on simulated data: multiscale NPCs (Figure 5a–b), shape classes (Figure 3).

Multiscale: 50 fresh NPC fields (`pointillist.simulator` scenario "npc": 8 corners per
NPC, localizations per corner uniform 0–80, background 3 %), clustered at both scales by
the `npc_multiscale` model (structures from its last step, corners from step k*−1) and by
DBSCAN tuned by ARI on the model's three example fields for each scale; scored with the
MIRO paper's metrics against NPC and corner ground truth.

Shape classes: 50 mixed fields, each the union of a C-shape field and a ring field
(fresh simulations) in which every structure is kept with probability 1/2 and only the
C-shape field's background is kept; the `multishape` model clusters and classifies them.
Reported: the clustering metrics, and the confusion matrix and per-class F1 of the
predicted clusters' classes against the true class of the structure each predicted
cluster mostly covers (predicted clusters mostly covering background are left out).

    python bench/clustering_variants.py --append bench/RESULTS.md
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from clustering import COLUMNS, HEADERS, progress
from localizer import add_to_section, machine

from pointillist.clusterer.baselines import DBSCANClusterer, tune_dbscan
from pointillist.clusterer.metrics import evaluate_clustering
from pointillist.clusterer.miro.clusterer import MiroClusterer, model_path
from pointillist.clusterer.miro.examples import example_fields, simulated_field
from pointillist.clusterer.miro.presets import get_preset

TEST_SEED = 2_000_000
N_FIELDS = 50
GRID = {
    "eps_nm": [float(v) for v in np.geomspace(3.0, 200.0, 20)],
    "min_samples": [2, 3, 4, 6, 8, 12, 16, 24, 32],
}


@dataclass
class Scores:
    """Per-field metric dicts for one method at one scale."""

    label: str
    fields: list[dict[str, float]]

    def row(self) -> str:
        cells = []
        for metric in COLUMNS:
            v = np.array([f[metric] for f in self.fields], dtype=float)
            cells.append(f"{np.nanmean(v):.3g} ± {np.nanstd(v):.2g}")
        return f"| {self.label} | " + " | ".join(cells) + " |"


def header() -> list[str]:
    return ["| method | " + " | ".join(HEADERS) + " |", "|---" * (len(HEADERS) + 1) + "|"]


def multiscale_section(n_fields: int) -> list[str]:
    """Multiscale NPC clustering: MIRO vs tuned DBSCAN at the NPC and the corner scale."""
    examples = example_fields(get_preset("npc_multiscale"))
    tuned = {}
    for scale, labels_of in (("NPC", lambda f: f.labels), ("corner", lambda f: f.sublabels)):
        t = tune_dbscan(
            [f.points_nm for f in examples],
            [labels_of(f) for f in examples],
            GRID,
            true_noise_label=0,
        )
        tuned[scale] = t
    results = {k: [] for k in ("miro NPC", "dbscan NPC", "miro corner", "dbscan corner")}
    seconds = []
    for i in range(n_fields):
        f = simulated_field("npc", TEST_SEED + i)
        t0 = time.perf_counter()
        miro = MiroClusterer("npc_multiscale").fit(f.points_nm)
        seconds.append(time.perf_counter() - t0)
        for scale, truth, predicted in (
            ("NPC", f.labels, miro.labels_),
            ("corner", f.sublabels, miro.sublabels_),
        ):
            results[f"miro {scale}"].append(
                evaluate_clustering(f.points_nm, truth, predicted, true_noise_label=0)
            )
            plain = DBSCANClusterer(tuned[scale].eps_nm, tuned[scale].min_samples)
            results[f"dbscan {scale}"].append(
                evaluate_clustering(
                    f.points_nm, truth, plain.fit_predict(f.points_nm), true_noise_label=0
                )
            )
        progress(f"multiscale field {i + 1}/{n_fields}")
    lines = [
        "### MIRO multiscale: NPC structures and their corners (Figure 5a–b)",
        "",
        f"{n_fields} simulated NPC fields (1250×1250 nm, seeds {TEST_SEED}+i); DBSCAN tuned "
        f"by ARI on the model's example fields: NPC eps {tuned['NPC'].eps_nm:.1f} nm / minPts "
        f"{tuned['NPC'].min_samples}, corner eps {tuned['corner'].eps_nm:.1f} nm / minPts "
        f"{tuned['corner'].min_samples}. MIRO: {np.mean(seconds):.2f} s per field.",
        "",
        *header(),
    ]
    for key, fields in results.items():
        lines.append(Scores(key, fields).row())
    return lines


def mixed_field(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(points (n, 2) nm, structure labels (0 = background), class per structure id)."""
    rng = np.random.default_rng(seed)
    c_field = simulated_field("c_shape", seed)
    r_field = simulated_field("ring", seed + 1)
    points, labels, classes = [c_field.points_nm[c_field.labels == 0]], [], {}
    labels.append(np.zeros(len(points[0]), dtype=np.int64))
    next_id = 1
    for klass, f in ((1, c_field), (2, r_field)):
        for lab in np.unique(f.labels[f.labels > 0]):
            if rng.random() < 0.5:
                continue
            members = f.labels == lab
            points.append(f.points_nm[members])
            labels.append(np.full(members.sum(), next_id, dtype=np.int64))
            classes[next_id] = klass
            next_id += 1
    return np.concatenate(points), np.concatenate(labels), classes


def multishape_section(n_fields: int) -> list[str]:
    """Clustering + shape classification of mixed C-shape / ring fields."""
    scores, confusion, seconds = [], np.zeros((2, 2), dtype=np.int64), []
    names = ()
    for i in range(n_fields):
        points, truth, true_class = mixed_field(TEST_SEED + 10 * i)
        t0 = time.perf_counter()
        miro = MiroClusterer("multishape").fit(points)
        seconds.append(time.perf_counter() - t0)
        names = miro.class_names_
        scores.append(evaluate_clustering(points, truth, miro.labels_, true_noise_label=0))
        for lab in np.unique(miro.labels_[miro.labels_ >= 0]):
            members = miro.labels_ == lab
            covered = np.bincount(truth[members]).argmax()
            if covered == 0:
                continue
            predicted = miro.classes_[members][0]
            confusion[true_class[covered] - 1, predicted - 1] += 1
        progress(f"multishape field {i + 1}/{n_fields}")
    f1 = []
    for k in range(2):
        tp = confusion[k, k]
        precision = tp / max(confusion[:, k].sum(), 1)
        recall = tp / max(confusion[k].sum(), 1)
        f1.append(2 * precision * recall / max(precision + recall, 1e-12))
    shape_names = names[1:] if names else ("c_shape", "ring")
    lines = [
        "### MIRO clustering + shape classification: C-shapes and rings mixed (Figure 3g–i)",
        "",
        f"{n_fields} mixed fields (6400×6400 nm; every structure of a C-shape and a ring "
        f"field kept with probability 1/2), model `multishape`, "
        f"{np.mean(seconds):.2f} s per field.",
        "",
        *header(),
        Scores("MIRO+DBSCAN", scores).row(),
        "",
        "Predicted clusters' class (columns) against the true class of the structure they "
        "mostly cover (rows):",
        "",
        "| true \\ predicted | " + " | ".join(shape_names) + " | F1 |",
        "|---|---|---|---|",
    ]
    for k, name in enumerate(shape_names):
        lines.append(f"| {name} | {confusion[k, 0]} | {confusion[k, 1]} | {f1[k]:.3f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fields", type=int, default=N_FIELDS, help="fields per experiment")
    parser.add_argument("--append", type=Path, help="append the results to this Markdown file")
    args = parser.parse_args()
    for name in ("npc_multiscale", "multishape"):
        model_path(name)  # fail early when a model is not shipped
    started = time.perf_counter()
    body = [*multiscale_section(args.fields), "", *multishape_section(args.fields)]
    lines = [
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()}, "
        f"`{shlex.join(['python', *sys.argv])}`, "
        f"{(time.perf_counter() - started) / 60:.1f} min.",
        "",
    ]
    text = "\n".join(lines + body) + "\n"
    print(text)
    if args.append:
        add_to_section(args.append, "## Clusterer: MIRO variants", text)


if __name__ == "__main__":
    main()
