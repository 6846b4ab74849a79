"""Scoring a reconstruction: rigid alignment by ICP allowing for the mirror image, RMSD,
the random-cloud baseline, and the consensus of several runs.

HOLLy's evaluation (paper §3.1) aligns the reconstruction to the ground truth by ICP
after a manual rough alignment and reports the RMSD of nearest-neighbour pairs, next
to the RMSD of a random cloud of the same size over the same space. Projections carry
no handedness, so the mirror image is an equally valid answer (§3.6). Here the rough
alignment is automatic: ICP starts from the 60 rotations of the icosahedral group, for
the cloud and for its mirror image (z -> -z); the best few after a few steps are
iterated to convergence and the best end wins.

ICP and its RMSD are symmetric: each iteration pairs every moving point with its nearest
fixed point and every fixed point with its nearest moving point, and the rigid fit of
all pairs is the Kabsch solution (scipy's `Rotation.align_vectors`); the RMSD is
sqrt(mean of both directions' squared nearest-neighbour distances), so a reconstruction
that collapses onto part of the truth is not rewarded. Written here: scipy has the
k-d tree and the Kabsch step, but no ICP.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

MIRROR = np.diag([1.0, 1.0, -1.0])
COARSE_ITERATIONS = 4
REFINED_STARTS = 6


def nn_rmsd(a: np.ndarray, b: np.ndarray) -> float:
    """Symmetric nearest-neighbour RMSD between (N, 3) and (M, 3) clouds (their units)."""
    d_ab = cKDTree(b).query(a)[0]
    d_ba = cKDTree(a).query(b)[0]
    return float(np.sqrt(0.5 * (np.mean(d_ab**2) + np.mean(d_ba**2))))


@dataclass(frozen=True)
class Alignment:
    """moving ≈ aligned = (moving · M) · Rᵀ + t, with M the mirror when `mirrored`."""

    aligned: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray
    mirrored: bool
    rmsd: float


def icp(
    moving: np.ndarray, fixed: np.ndarray, rotation: np.ndarray, iterations: int = 40
) -> tuple[np.ndarray, np.ndarray, float]:
    """Symmetric point-to-point ICP from an initial rotation (both clouds centred)."""
    fixed_tree = cKDTree(fixed)
    translation = fixed.mean(0) - moving.mean(0) @ rotation.T
    previous = np.inf
    for _ in range(iterations):
        current = moving @ rotation.T + translation
        d_forward, forward = fixed_tree.query(current)
        d_backward, backward = cKDTree(current).query(fixed)
        error = np.sqrt(0.5 * (np.mean(d_forward**2) + np.mean(d_backward**2)))
        if previous - error < 1e-9 * max(1.0, previous):
            break
        previous = error
        source = np.concatenate([moving, moving[backward]])
        target = np.concatenate([fixed[forward], fixed])
        source_mean, target_mean = source.mean(0), target.mean(0)
        fit, _ = Rotation.align_vectors(target - target_mean, source - source_mean)
        rotation = fit.as_matrix()
        translation = target_mean - source_mean @ rotation.T
    return rotation, translation, nn_rmsd(moving @ rotation.T + translation, fixed)


def align(
    moving: np.ndarray, fixed: np.ndarray, allow_mirror: bool = True, iterations: int = 60
) -> Alignment:
    """Best rigid (optionally mirrored) alignment of `moving` onto `fixed`: every start
    (60 rotations, × 2 with the mirror) runs `COARSE_ITERATIONS` ICP steps, the best
    `REFINED_STARTS` continue to convergence."""
    moving = np.asarray(moving, dtype=np.float64)
    fixed = np.asarray(fixed, dtype=np.float64)
    starts = Rotation.create_group("I").as_matrix()
    coarse = []
    for mirrored in (False, True) if allow_mirror else (False,):
        source = moving @ MIRROR if mirrored else moving
        centred = source - source.mean(0)
        for start in starts:
            rotation, _, error = icp(centred, fixed, start, COARSE_ITERATIONS)
            coarse.append((error, mirrored, rotation))
    coarse.sort(key=lambda item: item[0])
    best: Alignment | None = None
    for _, mirrored, rotation in coarse[:REFINED_STARTS]:
        source = moving @ MIRROR if mirrored else moving
        centred = source - source.mean(0)
        rotation, translation, error = icp(centred, fixed, rotation, iterations)
        if best is None or error < best.rmsd:
            shift = translation - source.mean(0) @ rotation.T
            best = Alignment(source @ rotation.T + shift, rotation, shift, mirrored, error)
    assert best is not None
    return best


def random_cloud_rmsd(
    truth: np.ndarray, n_points: int, n_clouds: int = 5, seed: int = 0
) -> tuple[float, float]:
    """Mean and sd of the aligned RMSD of uniform random clouds of `n_points` in the
    truth's bounding box (the paper's baseline: same size, same world space)."""
    rng = np.random.default_rng(seed)
    low, high = truth.min(0), truth.max(0)
    scores = [align(rng.uniform(low, high, (n_points, 3)), truth).rmsd for _ in range(n_clouds)]
    return float(np.mean(scores)), float(np.std(scores))


@dataclass(frozen=True)
class Consensus:
    """Several runs compared, and the one to keep.

    pairwise: (R, R) aligned RMSD between runs (nm); medoid: the run with the smallest
    mean RMSD to the others; spread: the median over runs of each run's median RMSD to
    the others; outliers: runs whose median RMSD to the others exceeds twice the spread
    (a failed run, the paper's way of spotting failures; needs >= 4 runs to outvote one
    bad run); best: the run kept as the model — the lowest final loss among the runs
    that are not outliers (a failed run fits its views worse; the medoid when no losses
    are given); aligned: every run aligned onto the best (the best itself unchanged).
    """

    pairwise: np.ndarray
    medoid: int
    spread: float
    outliers: list[int]
    best: int
    aligned: list[np.ndarray]


def consensus(runs: list[np.ndarray], losses: list[float] | None = None) -> Consensus:
    """Compare reconstructions from independent runs ((N, 3) clouds, nm) with their final
    training losses."""
    n = len(runs)
    pairwise = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            pairwise[i, j] = pairwise[j, i] = align(runs[j], runs[i]).rmsd
    if n == 1:
        return Consensus(pairwise, 0, 0.0, [], 0, [runs[0]])
    others = pairwise[~np.eye(n, dtype=bool)].reshape(n, n - 1)
    medoid = int(np.argmin(others.mean(1)))
    score = np.median(others, axis=1)
    spread = float(np.median(score))
    outliers = [i for i in range(n) if n > 2 and score[i] > 2 * spread]
    best = medoid
    if losses is not None:
        kept = [i for i in range(n) if i not in outliers]
        best = min(kept, key=lambda i: losses[i])
    aligned = [runs[i] if i == best else align(runs[i], runs[best]).aligned for i in range(n)]
    return Consensus(pairwise, medoid, spread, outliers, best, aligned)
