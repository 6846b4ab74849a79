"""Training CAML's networks on labelled localizations, as in Williamson et al. (2020).

Samples are single localizations: the normalised nearest-neighbour distance sequence
of the point (`features`) and its class. They come from one of three sources:

- `SimulatedSource`: CAML's own random scenarios (`simulate`), hard-edged round
  clusters, plus fibres for the multi-class model (classes from `kind`);
- `ScenarioSource`: fields of a `pointillist.simulator.clusters` scenario (optionally
  with multiple blinking); clustered = label > 0;
- `FileSource`: labelled tables (x, y in nm and a per-point cluster index, 0 = not
  clustered, like the Nieves et al. benchmark files), e.g. the three training fields of
  view of the MIRO paper's protocol.

Classes are balanced (the paper trained on balanced clustered / non-clustered sets),
within every field: each simulated field gives the same number of samples of each
class (at most `per_field`) until every class has samples / n_classes. Simulated
sources draw validation samples from fields of their own (another seed); a file source
holds out a random validation share of each file's points. Training: Adam on
cross-entropy, mini-batches, the learning rate decaying exponentially to
lr · lr_final_factor over the budget (minutes or epochs, whichever binds first);
validation accuracy and F1 after every epoch; the weights of the best validation epoch
are kept.
"""

from __future__ import annotations

import copy
import json
import platform
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.spatial import cKDTree
from sklearn.metrics import f1_score, precision_score, recall_score

from pointillist.clusterer.caml.features import field_scale_nm, nn_distances, normalise
from pointillist.clusterer.caml.model import (
    Architecture,
    architecture_meta,
    build_network,
    get_architecture,
    save_weights,
)
from pointillist.clusterer.caml.simulate import ScenarioRanges, simulate_training_field
from pointillist.clusterer.cluster_stats import check_labels, check_points
from pointillist.core.errors import InvalidInput

NORMALISATION = "log(d / field scale + 1e-3)"
"""The input transform the weights are trained with (`features` module docstring)."""

Field = tuple[np.ndarray, np.ndarray]
"""One labelled field: positions (n, 2) nm and per-point class (n,) 0..C-1."""


@dataclass(frozen=True)
class SimulatedSource:
    """CAML's random training scenarios (`simulate.ScenarioRanges`)."""

    ranges: ScenarioRanges = field(default_factory=ScenarioRanges)

    def fields(self, arch: Architecture, rng: np.random.Generator) -> Iterator[Field]:
        while True:
            f = simulate_training_field(self.ranges, rng, multiclass=arch.multiclass)
            yield f.xy_nm, f.kind if arch.multiclass else (f.label > 0).astype(np.int64)

    def describe(self) -> dict[str, Any]:
        return {"kind": "caml-simulation", "ranges": asdict(self.ranges)}


@dataclass(frozen=True)
class ScenarioSource:
    """Fields of a `pointillist.simulator.clusters` scenario; clustered = label > 0."""

    scenario: str
    blinking: bool = False

    def fields(self, arch: Architecture, rng: np.random.Generator) -> Iterator[Field]:
        from pointillist.simulator.clusters import ClusterSimConfig, simulate_clusters

        config = ClusterSimConfig.from_params(
            {"scenario": self.scenario, "blinking": self.blinking}
        )
        while True:
            table = simulate_clusters(config, rng)
            xy = np.column_stack([table["x"], table["y"]]).astype(np.float64)
            yield xy, (np.asarray(table["label"]) > 0).astype(np.int64)

    def describe(self) -> dict[str, Any]:
        return {"kind": "scenario", "scenario": self.scenario, "blinking": self.blinking}


@dataclass(frozen=True)
class FileSource:
    """Labelled fields of view given as arrays: per file (points (n, 2) nm, index (n,))."""

    fields_xy: tuple[np.ndarray, ...]
    fields_index: tuple[np.ndarray, ...]
    names: tuple[str, ...] = ()

    def labelled(self) -> list[Field]:
        out = []
        for xy, index in zip(self.fields_xy, self.fields_index, strict=True):
            points = check_points(xy)
            out.append((points, (check_labels(index, len(points), "index") > 0).astype(np.int64)))
        return out

    def describe(self) -> dict[str, Any]:
        return {"kind": "files", "files": list(self.names), "n_fields": len(self.fields_xy)}


Source = SimulatedSource | ScenarioSource | FileSource


@dataclass(frozen=True)
class TrainConfig:
    """Budget and settings of one training run.

    samples: balanced training samples (validation: validation_samples, default a
    fifth; for a file source the held-out share validation_fraction of each file).
    minutes / max_epochs: stop at whichever comes first. per_field: at most this many
    samples of each class from one simulated field (diversity of scenarios).
    """

    model: str = "lstm100"
    samples: int = 200_000
    validation_samples: int | None = None
    validation_fraction: float = 0.2
    minutes: float | None = 8.0
    max_epochs: int = 200
    batch_size: int = 256
    lr: float = 1e-3
    lr_final_factor: float = 0.05
    per_field: int = 300
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        get_architecture(self.model)
        if self.samples < 2 or self.max_epochs < 1 or self.batch_size < 1 or self.per_field < 1:
            raise InvalidInput("samples >= 2, max_epochs, batch_size and per_field >= 1 please")
        if self.minutes is not None and not self.minutes > 0:
            raise InvalidInput(f"minutes must be > 0, got {self.minutes}")
        if not 0 < self.validation_fraction < 1:
            raise InvalidInput("validation_fraction must be in (0, 1)")
        if self.validation_samples is not None and self.validation_samples < 2:
            raise InvalidInput("validation_samples must be >= 2")


def field_samples(xy: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    """Network input (len(rows), k) for `rows` of one field, normalised by the field's scale."""
    tree = cKDTree(xy)
    return normalise(nn_distances(xy, k, rows=rows, tree=tree), field_scale_nm(xy, k, tree=tree))


def collect_samples(
    fields: Iterator[Field],
    arch: Architecture,
    n_samples: int,
    per_field: int,
    rng: np.random.Generator,
    on_progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Balanced (features (N, k) float32, classes (N,)) drawn from simulated `fields`.

    Every field contributes the same number of samples of each class (at most
    `per_field`, at most its rarest class's count; fields lacking a class are skipped),
    until each class has n_samples // n_classes. Balancing within each field matters:
    a 1000-neighbour window sees enough of a field to recognise its scenario, and a
    field that gave samples of one class only would teach the network that scenario's
    class instead of the local pattern.
    `on_progress(samples so far)` is called after each field.
    """
    per_class = n_samples // arch.n_classes
    taken = 0
    xs, ys = [], []
    for xy, cls in fields:
        if len(xy) < 2:
            continue
        counts = np.bincount(cls, minlength=arch.n_classes)
        take = min(int(counts.min()), per_field, per_class - taken)
        if take > 0:
            pools = [np.flatnonzero(cls == c) for c in range(len(counts))]
            rows = np.concatenate([rng.choice(pool, take, replace=False) for pool in pools])
            xs.append(field_samples(xy, rows, arch.k))
            ys.append(cls[rows])
            taken += take
        if on_progress is not None:
            on_progress(taken * arch.n_classes)
        if taken >= per_class:
            break
    return np.concatenate(xs), np.concatenate(ys).astype(np.int64)


def _balanced(x: np.ndarray, y: np.ndarray, n_classes: int, rng: np.random.Generator):
    """Downsample every class to the rarest class's count."""
    counts = np.bincount(y, minlength=n_classes)
    if counts.min() == 0:
        raise InvalidInput(f"the labelled files lack a class: counts per class {counts.tolist()}")
    keep = np.concatenate(
        [rng.choice(np.flatnonzero(y == c), counts.min(), replace=False) for c in range(n_classes)]
    )
    return x[keep], y[keep]


def file_samples(
    source: FileSource, arch: Architecture, config: TrainConfig, rng: np.random.Generator
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """(training, validation) balanced samples from labelled files (binary models only).

    Every point of every file is a candidate; a random validation_fraction of each
    file's points is held out; training is capped at config.samples.
    """
    if arch.multiclass:
        raise InvalidInput("labelled files carry no round/fibre classes: use a binary model")
    xs, ys, vx, vy = [], [], [], []
    for xy, cls in source.labelled():
        if len(xy) < 2:
            raise InvalidInput("a training file holds fewer than 2 localizations")
        x = field_samples(xy, np.arange(len(xy)), arch.k)
        held = rng.random(len(xy)) < config.validation_fraction
        xs.append(x[~held])
        ys.append(cls[~held])
        vx.append(x[held])
        vy.append(cls[held])
    train_x, train_y = _balanced(np.concatenate(xs), np.concatenate(ys), arch.n_classes, rng)
    if len(train_y) > config.samples:
        keep = rng.choice(len(train_y), config.samples, replace=False)
        train_x, train_y = train_x[keep], train_y[keep]
    val = _balanced(np.concatenate(vx), np.concatenate(vy), arch.n_classes, rng)
    return (train_x, train_y), val


def pick_device(device: str) -> torch.device:
    """'auto' → cuda when available, else cpu; anything else as torch names it."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@torch.no_grad()
def predict_proba(
    network: torch.nn.Module, x: np.ndarray, device: torch.device, batch: int = 8192
) -> np.ndarray:
    """Class probabilities (N, n_classes) of the network for inputs (N, k), in batches."""
    network.eval()
    out = [
        torch.softmax(network(torch.from_numpy(x[i : i + batch]).to(device)), dim=1).cpu()
        for i in range(0, len(x), batch)
    ]
    return torch.cat(out).numpy() if out else np.zeros((0, 0), dtype=np.float32)


def scores(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> dict[str, float]:
    """Accuracy and macro precision, recall, F1 (on balanced classes macro = weighted)."""
    labels = list(range(n_classes))
    kw = {"labels": labels, "average": "macro", "zero_division": 0}
    return {
        "accuracy": float(np.mean(y_true == y_pred)),
        "precision": float(precision_score(y_true, y_pred, **kw)),
        "recall": float(recall_score(y_true, y_pred, **kw)),
        "f1": float(f1_score(y_true, y_pred, **kw)),
    }


def train(
    config: TrainConfig,
    source: Source,
    out: Path,
    *,
    on_epoch: Callable[[int, dict[str, Any]], None] | None = None,
    on_data: Callable[[str, int, int], None] | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """Train `config.model` on `source` and write the weights (+ JSON metadata) to `out`.

    on_data(stage, samples so far, samples wanted) reports sample collection;
    on_epoch(epoch, log) reports every epoch (log: loss, lr, validation scores).
    Returns the metadata written with the weights.
    """
    arch = get_architecture(config.model)
    device = pick_device(config.device)
    rng = np.random.default_rng(config.seed)
    started = time.monotonic()
    if isinstance(source, FileSource):
        (train_x, train_y), (val_x, val_y) = file_samples(source, arch, config, rng)
    else:
        n_val = config.validation_samples or max(config.samples // 5, arch.n_classes)

        def progress(stage: str, wanted: int) -> Callable[[int], None] | None:
            return None if on_data is None else (lambda n: on_data(stage, n, wanted))

        train_x, train_y = collect_samples(
            source.fields(arch, rng), arch, config.samples, config.per_field, rng,
            progress("training", config.samples),
        )  # fmt: skip
        val_rng = np.random.default_rng(config.seed + 1_000_003)
        val_x, val_y = collect_samples(
            source.fields(arch, val_rng), arch, n_val, config.per_field, val_rng,
            progress("validation", n_val),
        )  # fmt: skip
    data_seconds = time.monotonic() - started

    torch.manual_seed(config.seed)
    network = build_network(arch).to(device)
    optimizer = torch.optim.Adam(network.parameters(), lr=config.lr)
    x_all = torch.from_numpy(train_x)
    y_all = torch.from_numpy(train_y)
    budget_s = None if config.minutes is None else 60.0 * config.minutes
    t0 = time.monotonic()
    best: dict[str, Any] = {"accuracy": -1.0}
    best_state: dict[str, torch.Tensor] = {}
    history: list[dict[str, Any]] = []

    def progress_fraction(epoch: int) -> float:
        by_epochs = epoch / config.max_epochs
        by_time = 0.0 if budget_s is None else (time.monotonic() - t0) / budget_s
        return max(by_epochs, by_time)

    epoch = 0
    while progress_fraction(epoch) < 1.0:
        network.train()
        order = torch.randperm(len(x_all))
        total, count = 0.0, 0
        for i in range(0, len(order), config.batch_size):
            lr = config.lr * config.lr_final_factor ** min(progress_fraction(epoch), 1.0)
            for group in optimizer.param_groups:
                group["lr"] = lr
            batch = order[i : i + config.batch_size]
            logits = network(x_all[batch].to(device))
            loss = torch.nn.functional.cross_entropy(logits, y_all[batch].to(device))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
            count += len(batch)
            if budget_s is not None and time.monotonic() - t0 >= budget_s:
                break
        epoch += 1
        pred = predict_proba(network, val_x, device).argmax(axis=1)
        log = {"epoch": epoch, "loss": total / max(count, 1), "lr": lr}
        log["validation"] = scores(val_y, pred, arch.n_classes)
        log["seconds"] = round(time.monotonic() - t0, 1)
        history.append(log)
        if log["validation"]["accuracy"] > best["accuracy"]:
            best = {**log["validation"], "epoch": epoch}
            best_state = copy.deepcopy(network.state_dict())
        if on_epoch is not None:
            on_epoch(epoch, log)
    network.load_state_dict(best_state)
    meta = {
        "format_version": 1,
        "architecture": architecture_meta(arch),
        "normalisation": NORMALISATION,
        "source": source.describe(),
        "samples": len(train_y),
        "validation_samples": len(val_y),
        "class_counts": np.bincount(train_y, minlength=arch.n_classes).tolist(),
        "epochs": epoch,
        "best_epoch": best["epoch"],
        "validation": {k: v for k, v in best.items() if k != "epoch"},
        "data_seconds": round(data_seconds, 1),
        "training_seconds": round(time.monotonic() - t0, 1),
        "machine": f"{platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, device {device}",
        "config": asdict(config),
        "command": command,
        "history": [
            {"epoch": h["epoch"], "loss": round(h["loss"], 5), **h["validation"]} for h in history
        ],
    }
    out = Path(out)
    save_weights(out, network, meta)
    out.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def read_labelled_files(paths: Sequence[str | Path]) -> FileSource:
    """A `FileSource` from CSV files with columns x, y (nm) and index (0 = not clustered)."""
    from pointillist.core.io import read_csv_table

    xys, indices = [], []
    for p in paths:
        table = read_csv_table(p, columns={"index": "label"})
        if "label" not in table:
            raise InvalidInput(f"{p}: no 'index' column with the ground-truth clusters")
        xys.append(np.column_stack([table["x"], table["y"]]).astype(np.float64))
        indices.append(np.asarray(table["label"]))
    return FileSource(tuple(xys), tuple(indices), tuple(str(p) for p in paths))
