"""Few-shot training fields for MIRO, built from a handful of example clusters.

As in the paper's "Dataset Augmentation": example clusters (templates) are randomly
rotated, reflected, thinned (localization dropout), grown (copies of their own
localizations, jittered) and jittered, then placed at random in a field; background is
added either uniformly at the examples' density or, for data with multiple blinking,
sampled from the examples' own background (a random window of a source field, rotated by
a multiple of 90° and possibly reflected), which keeps the blinking groups of the
background. Fields are small windows (`field_nm`), because the network is local and a
window with a few clusters is as informative as a whole field at a fraction of the cost.

A window is cut from a larger field: clusters and background are drawn over the window
grown by `margin_nm` on every side and only the localizations inside the window are
kept. That is what inference sees (it processes a field in windows), so clusters cut by
the window's edge and neighbours whose centres lie outside it occur in training too.
A cluster that the window cuts by more than a tail (less than `min_inside_fraction` of
its localizations inside) is context only: its loss weight is 0, because where its
centre lies is not decidable from the window, and inference keeps the results of a
window's central part only, where clusters are whole. A few tail localizations outside
do not make a cluster context: with broad Gaussian clusters (Nieves scenario 9: 135
localizations, median distance to the centroid 81 nm, farthest 296 nm) nearly every
cluster reaches past an 800 nm window, so counting any cut cluster as context left 29 %
of the clustered localizations with a loss weight and made background 77 % of the
weighted ones; the L1 loss then has its minimum at zero displacement and the network
learnt nothing.
Without the margin a window is under-populated near its edges, and a model trained on
250 nm-radius rings squeezed training windows almost perfectly (median cosine 0.99 to
the true displacement) while leaving test rings 136 nm from their centres on average.

Targets (nm): every clustered localization's displacement to its augmented cluster's
centroid (of the whole cluster, also when the window cuts it), 0 for background; with
sub-clusters (the multiscale variant) also the displacement to its sub-cluster's
centroid; with classes, the class of every localization (0 = non-clustered).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from pointillist.core.errors import InvalidInput


@dataclass(frozen=True)
class Template:
    """One example cluster: points (n, 2) nm about its centroid, optional sub-cluster ids, class."""

    points_nm: np.ndarray
    sublabels: np.ndarray | None = None
    klass: int = 1


@dataclass(frozen=True)
class AugmentConfig:
    """How training fields are drawn (lengths in nm).

    clusters_per_um2: cluster density range; background_per_um2: uniform background
    density range (ignored when background sources are given); dropout: fraction range of
    a template's localizations removed; additions: fraction range of extra localizations
    (jittered copies, sd `addition_jitter_nm`); jitter_nm: sd of the displacement applied
    to every localization; scale_range: isotropic size change of a template;
    margin_nm: how far beyond the window clusters and background are drawn before the
    window is cut out (0: only clusters centred inside the window, cut at its edge);
    min_inside_fraction: the fraction of a cluster's localizations that must lie inside
    the window for it to be a training target rather than context (1.0: whole clusters
    only); background_keep: the fraction of background localizations kept (below 1 for
    the thinned fields of a training curriculum).
    """

    field_nm: float = 1000.0
    clusters_per_um2: tuple[float, float] = (2.0, 5.0)
    background_per_um2: tuple[float, float] = (50.0, 60.0)
    dropout: tuple[float, float] = (0.0, 0.2)
    additions: tuple[float, float] = (0.0, 0.2)
    addition_jitter_nm: float = 5.0
    jitter_nm: float = 2.0
    scale_range: tuple[float, float] = (1.0, 1.0)
    margin_nm: float = 0.0
    min_inside_fraction: float = 1.0
    background_keep: float = 1.0


@dataclass
class TrainingField:
    """One augmented field: positions (N, 2) nm, its targets and loss weights (1, or 0 for the
    localizations of clusters the window cuts; see the module docstring)."""

    points_nm: np.ndarray
    displacement_nm: np.ndarray
    sub_displacement_nm: np.ndarray | None
    classes: np.ndarray
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    weights: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))


def templates_from_labels(
    points_nm: np.ndarray,
    labels: np.ndarray,
    *,
    sublabels: np.ndarray | None = None,
    classes: np.ndarray | None = None,
    noise_label: int = 0,
) -> list[Template]:
    """Templates of every cluster of one labelled field (labels == noise_label: background)."""
    templates = []
    for lab in np.unique(labels):
        if lab == noise_label:
            continue
        members = labels == lab
        pts = points_nm[members]
        klass = 1 if classes is None else int(np.bincount(classes[members]).argmax())
        subs = None if sublabels is None else sublabels[members]
        templates.append(Template(pts - pts.mean(axis=0), subs, klass))
    return templates


def _rotation(angle: float, reflect: bool) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    r = np.array([[c, -s], [s, c]])
    return r @ np.diag([1.0, -1.0]) if reflect else r


def augment_template(
    template: Template, config: AugmentConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray | None]:
    """A randomly transformed copy of `template`: (points (m, 2) nm about 0, sub-cluster ids)."""
    pts = template.points_nm
    subs = template.sublabels
    keep = rng.random(len(pts)) >= rng.uniform(*config.dropout)
    if not keep.any():
        keep[rng.integers(len(pts))] = True
    pts, subs = pts[keep], None if subs is None else subs[keep]
    n_add = rng.binomial(len(pts), rng.uniform(*config.additions))
    if n_add:
        source = rng.integers(len(pts), size=n_add)
        extra = pts[source] + rng.normal(0, config.addition_jitter_nm, (n_add, 2))
        pts = np.concatenate([pts, extra])
        subs = None if subs is None else np.concatenate([subs, subs[source]])
    rot = _rotation(rng.uniform(0, 2 * np.pi), bool(rng.random() < 0.5))
    pts = (pts @ rot.T) * rng.uniform(*config.scale_range)
    pts = pts + rng.normal(0, config.jitter_nm, pts.shape)
    return pts, subs


def _background_window(source: np.ndarray, size: float, rng: np.random.Generator) -> np.ndarray:
    """Points of a random size×size window of `source`, moved to [0, size)², turned/flipped."""
    lo, hi = source.min(axis=0), source.max(axis=0)
    corner = rng.uniform(lo, np.maximum(lo, hi - size))
    inside = ((source >= corner) & (source < corner + size)).all(axis=1)
    pts = source[inside] - corner - size / 2
    rot = _rotation(rng.integers(4) * np.pi / 2, bool(rng.random() < 0.5))
    return pts @ rot.T + size / 2


def make_training_field(
    templates: Sequence[Template],
    config: AugmentConfig,
    rng: np.random.Generator,
    background_sources: Sequence[np.ndarray] = (),
) -> TrainingField:
    """One training field drawn from `templates` (and background sources, if given)."""
    if not templates:
        raise InvalidInput("MIRO training needs at least one example cluster")
    size = config.field_nm + 2 * config.margin_nm
    area_um2 = (size / 1000.0) ** 2
    n_clusters = max(1, rng.poisson(rng.uniform(*config.clusters_per_um2) * area_um2))
    points, disp, sub_disp, classes, labels = [], [], [], [], []
    has_subs = templates[0].sublabels is not None
    for c in range(n_clusters):
        template = templates[rng.integers(len(templates))]
        pts, subs = augment_template(template, config, rng)
        pts = pts - pts.mean(axis=0) + rng.uniform(0, size, 2)
        centroid = pts.mean(axis=0)
        points.append(pts)
        disp.append(centroid - pts)
        if has_subs:
            sub = np.empty_like(pts)
            for s in np.unique(subs):
                m = subs == s
                sub[m] = pts[m].mean(axis=0) - pts[m]
            sub_disp.append(sub)
        classes.append(np.full(len(pts), template.klass, dtype=np.int64))
        labels.append(np.full(len(pts), c + 1, dtype=np.int64))
    if background_sources:
        source = background_sources[rng.integers(len(background_sources))]
        bg = _background_window(source, size, rng)
    else:
        n_bg = rng.poisson(rng.uniform(*config.background_per_um2) * area_um2)
        bg = rng.uniform(0, size, (n_bg, 2))
    if config.background_keep < 1.0:
        bg = bg[rng.random(len(bg)) < config.background_keep]
    points.append(bg)
    disp.append(np.zeros_like(bg))
    if has_subs:
        sub_disp.append(np.zeros_like(bg))
    classes.append(np.zeros(len(bg), dtype=np.int64))
    labels.append(np.zeros(len(bg), dtype=np.int64))
    xy = np.concatenate(points) - config.margin_nm
    inside = ((xy >= 0) & (xy < config.field_nm)).all(axis=1)
    label = np.concatenate(labels)
    total = np.bincount(label, minlength=n_clusters + 1)
    kept = np.bincount(label[inside], minlength=n_clusters + 1)
    cut = kept < config.min_inside_fraction * total
    cut[0] = False  # background is never "cut"
    return TrainingField(
        points_nm=xy[inside],
        displacement_nm=np.concatenate(disp)[inside],
        sub_displacement_nm=np.concatenate(sub_disp)[inside] if has_subs else None,
        classes=np.concatenate(classes)[inside],
        labels=label[inside],
        weights=(~cut[label[inside]]).astype(np.float32),
    )
