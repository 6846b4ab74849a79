"""MIRO inference: squeeze a field with a trained model, then cluster it with DBSCAN.

Fields are processed in overlapping windows the size of the model's training windows
(each keeps the results of its central half), so the network sees graphs like those it
was trained on, memory is bounded by the window whatever the field size, and
localizations near a window's edge are handled by the window centred closer to them.
DBSCAN then runs once on all squeezed positions (scikit-learn's KD-tree DBSCAN is itself
memory-bounded).

Models are files written by `save_model` (torch state dict + architecture + preset +
DBSCAN parameters); shipped ones live in `weights/` and are named by preset
("scenario8_blinking", "ring", ...).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

from pointillist.clusterer.baselines import DBSCANClusterer
from pointillist.clusterer.cluster_stats import NOISE_LABEL, check_points
from pointillist.clusterer.miro.augment import AugmentConfig
from pointillist.clusterer.miro.graph import build_graph
from pointillist.clusterer.miro.model import Miro, MiroConfig
from pointillist.clusterer.miro.presets import MiroPreset
from pointillist.clusterer.miro.training import TrainedMiro
from pointillist.core.errors import InvalidInput, NotFound

WEIGHTS_DIR = Path(__file__).parent / "weights"


def shipped_models() -> list[str]:
    """Names of the models shipped in `weights/`."""
    return sorted(p.stem for p in WEIGHTS_DIR.glob("*.pt"))


def model_path(model: str | Path) -> Path:
    """A shipped model's file for a name, or `model` itself if it is an existing file."""
    path = Path(model)
    if path.suffix == ".pt" and path.is_file():
        return path
    shipped = WEIGHTS_DIR / f"{model}.pt"
    if shipped.is_file():
        return shipped
    raise NotFound(
        f"MIRO model {model!r} is neither a file nor shipped; shipped: {shipped_models()}"
    )


def save_model(trained: TrainedMiro, path: str | Path) -> Path:
    """Write the model file (.pt) and a JSON sidecar of its metadata."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "config": trained.model.config.to_dict(),
        "preset": dataclasses.asdict(trained.preset),
        "augment": dataclasses.asdict(trained.augment),
        "eps_nm": trained.eps_nm,
        "min_samples": trained.min_samples,
        "sub_eps_nm": trained.sub_eps_nm,
        "sub_min_samples": trained.sub_min_samples,
        "history": trained.history,
    }
    torch.save({"meta": meta, "state_dict": trained.model.state_dict()}, path)
    path.with_suffix(".json").write_text(json.dumps(meta, indent=2, default=float) + "\n")
    return path


def _tuple_fields(cls, values: dict) -> dict:
    names = {f.name: f for f in dataclasses.fields(cls)}
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in names}


def load_model(model: str | Path) -> TrainedMiro:
    """A model written by `save_model`, by shipped name or path."""
    payload = torch.load(model_path(model), map_location="cpu", weights_only=True)
    meta = payload["meta"]
    net = Miro(MiroConfig(**meta["config"]))
    net.load_state_dict(payload["state_dict"])
    net.eval()
    return TrainedMiro(
        model=net,
        preset=MiroPreset(**_tuple_fields(MiroPreset, meta["preset"])),
        augment=AugmentConfig(**_tuple_fields(AugmentConfig, meta["augment"])),
        eps_nm=float(meta["eps_nm"]),
        min_samples=int(meta["min_samples"]),
        sub_eps_nm=meta.get("sub_eps_nm"),
        sub_min_samples=meta.get("sub_min_samples"),
        history=meta.get("history", {}),
    )


def _tiles(points: np.ndarray, core_nm: float, halo_nm: float):
    """(core mask, window mask) per square tile of side core_nm, its window core + halo."""
    lo = points.min(axis=0)
    cell = np.floor((points - lo) / core_nm).astype(np.int64)
    order = np.lexsort((cell[:, 1], cell[:, 0]))
    keys, starts = np.unique(cell[order], axis=0, return_index=True)
    bounds = np.append(starts, len(points))
    for (ix, iy), a, b in zip(keys, bounds[:-1], bounds[1:], strict=True):
        core = np.zeros(len(points), dtype=bool)
        core[order[a:b]] = True
        t_lo = lo + core_nm * np.array([ix, iy]) - halo_nm
        t_hi = t_lo + core_nm + 2 * halo_nm
        window = ((points >= t_lo) & (points < t_hi)).all(axis=1)
        yield core, window


def squeeze(
    trained: TrainedMiro,
    points_nm: np.ndarray,
    *,
    window_nm: float | None = None,
    device: str | None = None,
) -> list[np.ndarray]:
    """Squeezed positions (nm) after every recurrent step: a list of K (N, 2) arrays."""
    return squeeze_and_classify(trained, points_nm, window_nm=window_nm, device=device)[0]


def squeeze_and_classify(
    trained: TrainedMiro,
    points_nm: np.ndarray,
    *,
    window_nm: float | None = None,
    device: str | None = None,
) -> tuple[list[np.ndarray], np.ndarray | None]:
    """`squeeze`'s positions and, for classifying models, last-step class logits (N, C).

    The field is cut into windows of `window_nm` (default: the model's training window),
    overlapping by half: each window keeps the results of its central half, so every
    localization is processed in a window like those the model was trained on (the
    Laplacian features depend on the graph's extent) with a quarter window of context.
    """
    points = check_points(points_nm)
    preset = trained.preset
    config = trained.model.config
    out = [points.copy() for _ in range(config.steps)]
    logits = np.zeros((len(points), config.n_classes)) if config.n_classes else None
    if len(points) < 2:
        return out, logits
    window = trained.augment.field_nm if window_nm is None else float(window_nm)
    if not window > 0:
        raise InvalidInput(f"window_nm must be > 0, got {window_nm}")
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    net = trained.model.to(dev)
    for core, in_window in _tiles(points, window / 2, window / 4):
        idx = np.flatnonzero(in_window)
        keep = core[idx]
        graph = build_graph(points[idx], preset.delta_nm, preset.scale_nm)
        result = net.run(graph, dev)
        for k, disp in enumerate(result.displacements):
            d = disp.cpu().numpy().astype(np.float64) * preset.scale_nm
            out[k][idx[keep]] += d[keep]
        if logits is not None:
            logits[idx[keep]] = result.logits[-1].cpu().numpy()[keep]
    return out, logits


class MiroClusterer:
    """MIRO + DBSCAN estimator (engine contract: `fit_predict(points_xy_nm) -> labels`).

    model: shipped name or .pt path; eps_nm / min_samples override the model's tuned DBSCAN
    parameters; window_nm overrides the processing window (default: the model's training
    window; see `squeeze_and_classify`). After `fit`: labels_ (-1 = non-
    clustered), squeezed_nm_ (final positions); multiscale models also give sublabels_
    (the sub-clusters, e.g. NPC corners, from step k*−1); classifying models give
    classes_ (each localization's cluster's majority class, -1 when non-clustered) and
    class_names_.
    """

    def __init__(
        self,
        model: str = "scenario8",
        eps_nm: float | None = None,
        min_samples: int | None = None,
        window_nm: float | None = None,
        device: str | None = None,
    ) -> None:
        self.model = model
        self.eps_nm = eps_nm
        self.min_samples = min_samples
        self.window_nm = window_nm
        self.device = device

    def fit(self, points_xy: np.ndarray) -> MiroClusterer:
        """Squeeze and cluster one field of view; returns self."""
        trained = load_model(self.model)
        points = check_points(points_xy)
        steps, logits = squeeze_and_classify(
            trained, points, window_nm=self.window_nm, device=self.device
        )
        eps = trained.eps_nm if self.eps_nm is None else float(self.eps_nm)
        ms = trained.min_samples if self.min_samples is None else int(self.min_samples)
        self.squeezed_nm_ = steps[-1]
        self.labels_ = DBSCANClusterer(eps, ms).fit_predict(steps[-1])
        k_star = trained.preset.k_star
        if k_star is not None and trained.sub_eps_nm is not None:
            self.sublabels_ = DBSCANClusterer(
                trained.sub_eps_nm, trained.sub_min_samples
            ).fit_predict(steps[k_star - 1])
        if logits is not None:
            self.class_names_ = trained.preset.class_names
            self.classes_ = self._cluster_classes(logits)
        return self

    def _cluster_classes(self, logits: np.ndarray) -> np.ndarray:
        """Majority predicted shape class (last step) over each cluster's localizations."""
        node_class = logits[:, 1:].argmax(axis=1) + 1  # class 0 is "non-clustered"
        classes = np.full(len(logits), NOISE_LABEL, dtype=np.int64)
        for lab in np.unique(self.labels_[self.labels_ >= 0]):
            members = self.labels_ == lab
            classes[members] = np.bincount(node_class[members]).argmax()
        return classes

    def fit_predict(self, points_xy: np.ndarray) -> np.ndarray:
        """Labels of `fit` (-1 = non-clustered)."""
        return self.fit(points_xy).labels_
