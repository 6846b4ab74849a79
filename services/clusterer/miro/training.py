"""Training MIRO from a few example fields (the paper's few-shot protocol).

Example fields (three labelled fields of view) give the templates and the densities;
`augment.make_training_field` draws fresh training fields from them at every step; each
step is one batch of fields joined into one disjoint graph. The loss (paper Eqs. 4–7) is
applied at every recurrent step k and averaged over the K steps:

    L_r = mean_i |r̂_i^k − r_i|₁,   L_d = mean_(i,j)∈E | ‖p̂_i^k − p̂_j^k‖ − ‖p_i − p_j‖ |,

with p = x + r and p̂^k = x + r̂^k; multiscale models take the sub-cluster displacements
as r for k < k*; classifying models add α · cross-entropy of the class logits.
`TrainSettings.huber_nm` > 0 replaces |·| by the smooth L1 (Huber) function, quadratic
below that error: with the paper's L1 a model can stay at zero displacement for good
where most weighted localizations are background (L1's gradient does not shrink near
zero, so background pulls back as hard as any cluster pulls). Six of the eight Nieves
models trained with L1 did so; scenarios 6, 9 and 8 blinking were retrained with this option
(bench/RESULTS.md, "MIRO models stuck at zero displacement").
After training, DBSCAN's eps and min_samples for the squeezed points are tuned on the
example fields (`tune_post_dbscan`), where the paper picked them by eye.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch
from torch.nn import functional as F

from pointillist.clusterer.baselines import tune_dbscan
from pointillist.clusterer.miro.augment import (
    AugmentConfig,
    Template,
    make_training_field,
    templates_from_labels,
)
from pointillist.clusterer.miro.graph import build_graph
from pointillist.clusterer.miro.model import Miro, MiroConfig, MiroOutput
from pointillist.clusterer.miro.presets import MiroPreset
from pointillist.core.errors import InvalidInput

TARGET_POINTS_PER_FIELD = 250
"""Training windows are sized to hold about this many localizations (CPU budget)."""


@dataclass(frozen=True)
class ExampleField:
    """A labelled example field: labels 0 = non-clustered; optional sub-clusters and classes."""

    points_nm: np.ndarray
    labels: np.ndarray
    sublabels: np.ndarray | None = None
    classes: np.ndarray | None = None


@dataclass(frozen=True)
class TrainSettings:
    """Optimisation settings; training stops at `minutes` or `max_steps`, whichever first.

    huber_nm: errors below this (nm) cost quadratically (0: the paper's L1; module
    docstring). min_inside_fraction: `AugmentConfig.min_inside_fraction` of the windows.
    background_curriculum: the fraction of the budget over which the background grows
    linearly from `CURRICULUM_START_KEEP` of its density to all of it (0: all from the
    start); see `background_keep`.
    """

    minutes: float = 8.0
    max_steps: int = 100_000
    batch_fields: int = 4
    learning_rate: float = 1e-3
    class_weight: float = 1.0
    seed: int = 0
    huber_nm: float = 0.0
    min_inside_fraction: float = 1.0
    background_curriculum: float = 0.0


CURRICULUM_START_KEEP = 0.1
"""Fraction of the background kept at the start of a background curriculum."""


def background_keep(progress: float, curriculum: float) -> float:
    """Fraction of background localizations kept at `progress` (0–1) of the budget.

    Dense blinking background (Nieves scenarios 5, 6 and 9 with blinking: ~1 900
    localizations per window, about half of the weighted ones background) kept models at
    zero displacement even with the smooth-L1 loss; thinned background first lets a model
    learn to squeeze before it has to tell clusters from dense background (the shipped
    scenario 5 blinking model was trained with curriculum 0.5).
    """
    if curriculum <= 0 or progress >= curriculum:
        return 1.0
    return CURRICULUM_START_KEEP + (1.0 - CURRICULUM_START_KEEP) * progress / curriculum


@dataclass
class TrainedMiro:
    """A trained model with everything inference needs (saved together by `save_model`)."""

    model: Miro
    preset: MiroPreset
    augment: AugmentConfig
    eps_nm: float
    min_samples: int
    sub_eps_nm: float | None = None
    sub_min_samples: int | None = None
    history: dict = field(default_factory=dict)


def _field_area_um2(points_nm: np.ndarray) -> float:
    extent = points_nm.max(axis=0) - points_nm.min(axis=0)
    return float(np.prod(np.maximum(extent, 1.0)) / 1e6)


def augment_config_for(
    preset: MiroPreset, fields: Sequence[ExampleField], min_inside_fraction: float = 1.0
) -> AugmentConfig:
    """Densities, window size and margin measured on the example fields.

    Densities span ±20 % around the examples' mean; the margin (see `augment`) is the
    largest distance of an example localization from its cluster's centroid, so any
    cluster that reaches into a window can be drawn.
    """
    area = np.array([_field_area_um2(f.points_nm) for f in fields])
    n_clusters = np.array([len(np.unique(f.labels[f.labels > 0])) for f in fields])
    n_background = np.array([np.count_nonzero(f.labels == 0) for f in fields])
    n_points = np.array([len(f.points_nm) for f in fields])
    cluster_density = float(np.mean(n_clusters / area))
    background_density = float(np.mean(n_background / area))
    density = float(np.mean(n_points / area))
    extents, radii = [], []
    for f in fields:
        for lab in np.unique(f.labels[f.labels > 0]):
            pts = f.points_nm[f.labels == lab]
            extents.append(np.ptp(pts, axis=0).max())
            radii.append(np.linalg.norm(pts - pts.mean(axis=0), axis=1).max())
    window = preset.field_nm
    if window is None:
        window = float(np.sqrt(TARGET_POINTS_PER_FIELD / density) * 1000.0)
        window = max(window, 3.0 * float(np.median(extents)), 4.0 * preset.delta_nm)
    return AugmentConfig(
        field_nm=window,
        clusters_per_um2=(0.8 * cluster_density, 1.2 * cluster_density),
        background_per_um2=(0.8 * background_density, 1.2 * background_density),
        margin_nm=float(max(radii)),
        min_inside_fraction=min_inside_fraction,
    )


def templates_for(fields: Sequence[ExampleField]) -> list[Template]:
    """Every cluster of every example field as a template."""
    templates: list[Template] = []
    for f in fields:
        templates += templates_from_labels(
            f.points_nm, f.labels, sublabels=f.sublabels, classes=f.classes
        )
    return templates


@dataclass
class _Batch:
    node_features: torch.Tensor
    edge_features: torch.Tensor
    edge_index: torch.Tensor
    positions: torch.Tensor
    target: torch.Tensor
    sub_target: torch.Tensor | None
    classes: torch.Tensor
    weights: torch.Tensor


def _batch(
    preset: MiroPreset,
    templates: Sequence[Template],
    augment: AugmentConfig,
    backgrounds: Sequence[np.ndarray],
    n_fields: int,
    rng: np.random.Generator,
    device: torch.device,
) -> _Batch:
    """`n_fields` fresh training fields joined into one disjoint graph (scale units)."""
    parts = []
    offset = 0
    for _ in range(n_fields):
        tf = make_training_field(templates, augment, rng, backgrounds)
        g = build_graph(tf.points_nm, preset.delta_nm, preset.scale_nm)
        parts.append((g, tf, offset))
        offset += g.n_nodes
    scale = preset.scale_nm

    def cat(arrays):
        return torch.as_tensor(np.concatenate(arrays), device=device)

    sub = None
    if parts[0][1].sub_displacement_nm is not None:
        sub = cat([tf.sub_displacement_nm / scale for _, tf, _ in parts]).float()
    return _Batch(
        node_features=cat([g.node_features for g, _, _ in parts]),
        edge_features=cat([g.edge_features for g, _, _ in parts]),
        edge_index=torch.as_tensor(
            np.concatenate([g.edge_index + o for g, _, o in parts], axis=1), device=device
        ),
        positions=cat([g.positions for g, _, _ in parts]).float(),
        target=cat([tf.displacement_nm / scale for _, tf, _ in parts]).float(),
        sub_target=sub,
        classes=cat([tf.classes for _, tf, _ in parts]).long(),
        weights=cat([tf.weights for _, tf, _ in parts]).float(),
    )


def miro_loss(
    output: MiroOutput,
    positions: torch.Tensor,
    target: torch.Tensor,
    edge_index: torch.Tensor,
    *,
    sub_target: torch.Tensor | None = None,
    k_star: int | None = None,
    classes: torch.Tensor | None = None,
    class_weight: float = 1.0,
    weights: torch.Tensor | None = None,
    huber: float = 0.0,
) -> torch.Tensor:
    """The paper's loss averaged over steps: L_r + L_d (+ α·CE); see the module docstring.

    weights (N,) of 0/1 drop localizations from the means (L_d: edges between two kept
    ones); None keeps all. huber > 0 (scale units): smooth L1 instead of |·|.
    """

    def error(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if huber > 0:
            return F.smooth_l1_loss(a, b, reduction="none", beta=huber)
        return (a - b).abs()

    receiver, sender = edge_index[0], edge_index[1]
    w = positions.new_ones(len(positions)) if weights is None else weights
    w_edge = w[receiver] * w[sender]
    n_nodes, n_edges = w.sum().clamp(min=1), w_edge.sum().clamp(min=1)
    steps = len(output.displacements)
    total = positions.new_zeros(())
    for k, predicted in enumerate(output.displacements):
        goal = sub_target if (k_star is not None and k < k_star) else target
        loss_r = (error(predicted, goal).sum(dim=1) * w).sum() / n_nodes
        p_hat, p = positions + predicted, positions + goal
        d_hat = (p_hat[receiver] - p_hat[sender]).norm(dim=1)
        d = (p[receiver] - p[sender]).norm(dim=1)
        loss_d = (error(d_hat, d) * w_edge).sum() / n_edges
        total = total + loss_r + loss_d
        if output.logits and classes is not None:
            ce = F.cross_entropy(output.logits[k], classes, reduction="none")
            total = total + class_weight * (ce * w).sum() / n_nodes
    return total / steps


def train_miro(
    preset: MiroPreset,
    fields: Sequence[ExampleField],
    settings: TrainSettings = TrainSettings(),
    *,
    device: str | None = None,
    initial_state: dict | None = None,
    on_step: Callable[[int, float, float], None] | None = None,
) -> TrainedMiro:
    """Train a MIRO model for `preset` from example `fields`; tunes DBSCAN afterwards.

    initial_state (a state dict of the same architecture) continues an earlier training.
    on_step(step, loss, elapsed_minutes) is called after every optimisation step.
    """
    if not fields:
        raise InvalidInput("MIRO training needs at least one example field")
    if preset.k_star is not None and any(f.sublabels is None for f in fields):
        raise InvalidInput(f"preset {preset.name} is multiscale: example fields need sublabels")
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    augment = augment_config_for(preset, fields, settings.min_inside_fraction)
    templates = templates_for(fields)
    backgrounds = [f.points_nm[f.labels == 0] for f in fields] if preset.blinking else []
    config = MiroConfig(hidden=preset.hidden, steps=preset.steps, n_classes=len(preset.class_names))
    model = Miro(config)
    if initial_state is not None:
        model.load_state_dict(initial_state)
    model = model.to(dev)
    optimiser = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    start = time.monotonic()
    losses: list[float] = []
    step = 0
    budget_s = settings.minutes * 60.0
    while step < settings.max_steps and time.monotonic() - start < budget_s:
        # learning rate decays with the fraction of the time (or step) budget used
        progress = max((time.monotonic() - start) / budget_s, step / settings.max_steps)
        for group in optimiser.param_groups:
            group["lr"] = settings.learning_rate * 0.5 * (1 + np.cos(np.pi * min(progress, 1)))
        keep = background_keep(progress, settings.background_curriculum)
        step_augment = replace(augment, background_keep=keep)
        batch = _batch(
            preset, templates, step_augment, backgrounds, settings.batch_fields, rng, dev
        )
        output = model(batch.node_features, batch.edge_features, batch.edge_index)
        loss = miro_loss(
            output,
            batch.positions,
            batch.target,
            batch.edge_index,
            sub_target=batch.sub_target,
            k_star=preset.k_star,
            classes=batch.classes,
            class_weight=settings.class_weight,
            weights=batch.weights,
            huber=settings.huber_nm / preset.scale_nm,
        )
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        step += 1
        losses.append(loss.item())
        if on_step is not None:
            on_step(step, losses[-1], (time.monotonic() - start) / 60.0)
    model.eval()
    trained = TrainedMiro(model.cpu(), preset, augment, eps_nm=1.0, min_samples=2)
    trained.history = {
        "steps": step,
        "training_minutes": (time.monotonic() - start) / 60.0,
        "final_loss": float(np.mean(losses[-50:])) if losses else None,
        "settings": asdict(settings),
        "device": str(dev),
    }
    tune_post_dbscan(trained, fields)
    return trained


def _grids(fields: Sequence[ExampleField], labels_of) -> dict[str, list]:
    sizes = [np.bincount(labels_of(f)[labels_of(f) > 0]) for f in fields]
    median = float(np.median(np.concatenate([s[s > 0] for s in sizes])))
    top = max(3.0, 0.8 * median)
    min_samples = sorted({round(float(v)) for v in np.geomspace(2, top, 12)})
    return {"eps_nm": list(np.geomspace(2.0, 120.0, 18)), "min_samples": min_samples}


def tune_post_dbscan(
    trained: TrainedMiro, fields: Sequence[ExampleField], metric: str = "ari"
) -> None:
    """Pick DBSCAN's eps/min_samples for the squeezed points by a grid search on `fields`.

    The metric (ARI, as in the Nieves et al. tuning of DBSCAN itself) is computed on the
    original positions; only the clustering runs on the squeezed ones. Multiscale models
    get a second pair for the sub-clusters, tuned on the step-(k*−1) positions.
    """
    from pointillist.clusterer.miro.clusterer import squeeze

    squeezed = [squeeze(trained, f.points_nm) for f in fields]
    points = [f.points_nm for f in fields]
    final = tune_dbscan(
        points,
        [f.labels for f in fields],
        _grids(fields, lambda f: f.labels),
        metric=metric,
        true_noise_label=0,
        cluster_on=[s[-1] for s in squeezed],
    )
    trained.eps_nm, trained.min_samples = final.eps_nm, final.min_samples
    trained.history["post_dbscan"] = {"metric": metric, "score": final.score}
    if trained.preset.k_star is not None:
        sub = tune_dbscan(
            points,
            [f.sublabels for f in fields],
            _grids(fields, lambda f: f.sublabels),
            metric=metric,
            true_noise_label=0,
            cluster_on=[s[trained.preset.k_star - 1] for s in squeezed],
        )
        trained.sub_eps_nm, trained.sub_min_samples = sub.eps_nm, sub.min_samples
        trained.history["post_dbscan_sub"] = {"metric": metric, "score": sub.score}
