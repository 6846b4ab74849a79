"""One code path for the CLI, the pipeline step and the service: views in, HOLLy runs,
their consensus and (with a ground truth) their evaluation out.

Views are localizations with a ``particle`` column, or the clusterer's ``cluster``
column (x, y nm; one particle or cluster = one view of the structure; views with fewer
than 3 localizations or non-finite coordinates are skipped and reported), or
pre-rendered images (`reconstruct_images`). `n_runs` independent runs (seeds seed,
seed+1, ...) are trained on the same views: the paper relies on repeated runs to spot
failures (symmetric or mirrored results), so the result carries their pairwise RMSD,
outliers, and keeps the run with the lowest final loss as the model.

Resuming: `checkpoint` receives a `ReconstructState` after every epoch (finished runs
plus the current run's trainer state); passing it back as `resume` continues there.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from google.protobuf import json_format

from pointillist.core.config import plain_params, replace_fields
from pointillist.core.errors import InvalidInput
from pointillist.core.particles import Particles, Skipped, particles_from_table
from pointillist.core.table import LocalizationTable
from pointillist.reconstructor.align import (
    Alignment,
    Consensus,
    align,
    consensus,
    random_cloud_rmsd,
)
from pointillist.reconstructor.training import (
    ReconConfig,
    Reconstruction,
    StepProgress,
    train_holly,
)
from pointillist.reconstructor.views import ImageViews, ViewSet, pack_images, pack_views
from pointillist.v1 import run_pb2

MAX_RUNS = 20


def recon_config(params: Mapping[str, Any], base: ReconConfig | None = None) -> ReconConfig:
    """A ReconConfig from keyword parameters over ``base``; InvalidInput names unknown keys."""
    return replace_fields(base or ReconConfig(), params, "reconstructor")


@dataclass(frozen=True)
class Settings:
    """What to do with one view set: the training config and the number of runs."""

    config: ReconConfig = field(default_factory=ReconConfig)
    n_runs: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.n_runs <= MAX_RUNS:
            raise InvalidInput(f"n_runs must be in [1, {MAX_RUNS}], got {self.n_runs}")

    def with_params(self, params: Mapping[str, Any]) -> Settings:
        """These settings with ``params`` (ReconConfig fields and n_runs) over them."""
        params = plain_params(params)
        n_runs = int(params.pop("n_runs", self.n_runs))
        return Settings(recon_config(params, self.config), n_runs)


@dataclass(frozen=True)
class Evaluation:
    """A run against the ground truth (nm): aligned RMSD, whether the mirror image fit
    better, and the random-cloud baseline (mean, sd over clouds of the same size)."""

    rmsd_nm: float
    mirrored: bool
    baseline_rmsd_nm: float
    baseline_sd_nm: float
    alignment: Alignment

    @property
    def ratio(self) -> float:
        """RMSD / baseline RMSD: below 0.5 is the issue's target, 1 is no better than random."""
        return self.rmsd_nm / self.baseline_rmsd_nm


def check_model(points_nm: np.ndarray) -> np.ndarray:
    """A ground-truth model as an (M >= 3, 3) float array of finite nm; InvalidInput if not."""
    model = np.asarray(points_nm, dtype=np.float64)
    if model.ndim != 2 or model.shape[1] != 3 or len(model) < 3:
        raise InvalidInput(f"the ground-truth model must be (M >= 3, 3), got {model.shape}")
    if not np.all(np.isfinite(model)):
        raise InvalidInput("the ground-truth model has non-finite coordinates")
    return model


def evaluate(runs: list[np.ndarray], truth_nm: np.ndarray, seed: int = 0) -> list[Evaluation]:
    """Align each reconstruction (nm) to the truth (mirror allowed) and score it against
    one random-cloud baseline (`align`); runs share their point count."""
    truth_nm = check_model(truth_nm)
    base, sd = random_cloud_rmsd(truth_nm, len(runs[0]), seed=seed)
    out = []
    for points in runs:
        alignment = align(points, truth_nm)
        out.append(Evaluation(alignment.rmsd, alignment.mirrored, base, sd, alignment))
    return out


def state_of(run: Reconstruction) -> dict[str, Any]:
    """A finished run as plain tensors and numbers (loadable with weights_only)."""
    return {
        "points_nm": torch.from_numpy(run.points_nm),
        "poses": {k: torch.from_numpy(np.asarray(v)) for k, v in run.poses.items()},
        "history": run.history,
        "config": dataclasses.asdict(run.config),
        "half_width_nm": run.half_width_nm,
        "device": run.device,
        "seconds": run.seconds,
        "stopped_early": run.stopped_early,
    }


def run_from_state(state: Mapping[str, Any]) -> Reconstruction:
    return Reconstruction(
        state["points_nm"].numpy(),
        {k: v.numpy() for k, v in state["poses"].items()},
        list(state["history"]),
        ReconConfig(**state["config"]),
        float(state["half_width_nm"]),
        str(state["device"]),
        float(state["seconds"]),
        bool(state["stopped_early"]),
    )


@dataclass
class ReconstructResult:
    """The runs on one view set, their consensus, and their evaluation (with a truth)."""

    runs: list[Reconstruction]
    views: ViewSet | ImageViews
    skipped: list[Skipped]
    consensus: Consensus
    evaluations: list[Evaluation] | None
    truth_nm: np.ndarray | None
    seconds: float

    @property
    def model_nm(self) -> np.ndarray:
        """The kept run's points (`Consensus.best`), nm; aligned to the truth when there is one."""
        if self.evaluations is not None:
            return self.evaluations[self.consensus.best].alignment.aligned
        return self.runs[self.consensus.best].points_nm

    def points_table(self) -> LocalizationTable:
        """Every run's points (x, y, z nm; ``label`` = run index), each aligned onto the
        truth when there is one, else onto the kept run."""
        clouds = (
            [e.alignment.aligned for e in self.evaluations]
            if self.evaluations is not None
            else self.consensus.aligned
        )
        xyz = np.concatenate(clouds)
        label = np.repeat(np.arange(len(clouds)), [len(c) for c in clouds])
        return LocalizationTable({"x": xyz[:, 0], "y": xyz[:, 1], "z": xyz[:, 2], "label": label})

    def poses_table(self, run: int | None = None) -> dict[str, np.ndarray]:
        """Per view pose of one run (default the kept run)."""
        return self.runs[self.consensus.best if run is None else run].poses

    def summary_lines(self) -> list[str]:
        lines = [
            f"{len(self.runs)} run(s) on {len(self.views)} views "
            f"({len(self.skipped)} skipped), {self.runs[0].config.n_points} points, "
            f"{self.seconds:.0f} s on {self.runs[0].device}"
        ]
        for i, run in enumerate(self.runs):
            last = run.history[-1]
            text = f"run {i}: final loss {last['loss']:.4f} (epoch {int(last['epoch'])})"
            if self.evaluations is not None:
                e = self.evaluations[i]
                text += (
                    f", RMSD {e.rmsd_nm:.1f} nm{' (mirror image)' if e.mirrored else ''} vs "
                    f"random cloud {e.baseline_rmsd_nm:.1f} nm (ratio {e.ratio:.2f})"
                )
            lines.append(text)
        if len(self.runs) > 1:
            c = self.consensus
            lines.append(
                f"model: run {c.best} (lowest final loss); medoid run {c.medoid}; "
                f"spread between runs {c.spread:.1f} nm"
                + (f"; outlier run(s) {c.outliers}" if c.outliers else "")
            )
        return lines


RunProgress = Callable[[int, StepProgress], None]


@dataclass
class ReconstructState:
    """A checkpoint of a multi-run reconstruction: finished runs and the current trainer."""

    finished: list[dict[str, Any]] = field(default_factory=list)
    trainer: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"finished": self.finished, "trainer": self.trainer}

    @staticmethod
    def from_dict(state: Mapping[str, Any]) -> ReconstructState:
        return ReconstructState(list(state["finished"]), state.get("trainer"))


def views_from_table(
    table: LocalizationTable, config: ReconConfig
) -> tuple[Particles, list[Skipped], ViewSet]:
    """The table's views (2D particles), those skipped, and their packed form.

    Views are named by the ``particle`` column or, without one, by the clusterer's
    ``cluster`` column (non-clustered localizations, -1, left out)."""
    if "particle" not in table and "cluster" in table:
        clustered = np.asarray(table["cluster"]) >= 0
        table = LocalizationTable(
            {
                "x": np.asarray(table["x"])[clustered],
                "y": np.asarray(table["y"])[clustered],
                "particle": np.asarray(table["cluster"])[clustered],
            },
            check_finite=False,
        )
    particles, skipped = particles_from_table(table, dims=2)
    if len(particles) < 2:
        raise InvalidInput(f"HOLLy needs at least 2 views, got {len(particles)}")
    views = pack_views(particles, config.half_width_nm, config.max_localizations, config.seed)
    return particles, skipped, views


def _trainer_checkpoint(
    checkpoint: Callable[[ReconstructState], None],
    finished: list[dict[str, Any]],
    trainer_state: dict[str, Any],
) -> None:
    checkpoint(ReconstructState(finished, trainer_state))


def reconstruct_table(
    table: LocalizationTable,
    settings: Settings,
    truth_nm: np.ndarray | None = None,
    progress: RunProgress | None = None,
    should_stop: Callable[[], bool] | None = None,
    checkpoint: Callable[[ReconstructState], None] | None = None,
    resume: ReconstructState | None = None,
) -> ReconstructResult:
    """Train `settings.n_runs` HOLLy runs on the table's views; evaluate against truth_nm."""
    if truth_nm is not None:
        truth_nm = check_model(truth_nm)
    _, skipped, views = views_from_table(table, settings.config)
    return reconstruct_views(
        views, settings, truth_nm, progress, should_stop, checkpoint, resume, skipped
    )


def reconstruct_images(
    images: np.ndarray,
    pixel_nm: float,
    settings: Settings,
    truth_nm: np.ndarray | None = None,
    progress: RunProgress | None = None,
) -> ReconstructResult:
    """HOLLy on pre-rendered (V, S, S) views of `pixel_nm` pixels; image_px becomes S and
    the images' own resolution is taken as the final input σ (`views.ImageViews`)."""
    if truth_nm is not None:
        truth_nm = check_model(truth_nm)
    config = settings.config
    views = pack_images(images, pixel_nm, config.sigma_end_nm)
    size = views.images.shape[-1]
    if size % 32:
        raise InvalidInput(f"images must be a multiple of 32 px square, got {size} px")
    settings = Settings(
        dataclasses.replace(config, image_px=size, half_width_nm=views.half_width_nm),
        settings.n_runs,
    )
    return reconstruct_views(views, settings, truth_nm, progress)


def reconstruct_views(
    views: ViewSet | ImageViews,
    settings: Settings,
    truth_nm: np.ndarray | None = None,
    progress: RunProgress | None = None,
    should_stop: Callable[[], bool] | None = None,
    checkpoint: Callable[[ReconstructState], None] | None = None,
    resume: ReconstructState | None = None,
    skipped: list[Skipped] | None = None,
) -> ReconstructResult:
    """The runs, their consensus and evaluation on packed views (module docstring)."""
    start = time.perf_counter()
    state = resume or ReconstructState()
    runs = [run_from_state(s) for s in state.finished]
    for index in range(len(runs), settings.n_runs):
        config = dataclasses.replace(settings.config, seed=settings.config.seed + index)

        def report(p: StepProgress, index: int = index) -> None:
            if progress is not None:
                progress(index, p)

        save = None
        if checkpoint is not None:
            save = functools.partial(_trainer_checkpoint, checkpoint, list(state.finished))
        run = train_holly(views, config, report, should_stop, save, state.trainer)
        runs.append(run)
        state = ReconstructState([*state.finished, state_of(run)], None)
        if checkpoint is not None:
            checkpoint(state)
    points = [r.points_nm for r in runs]
    evaluations = None if truth_nm is None else evaluate(points, truth_nm)
    return ReconstructResult(
        runs,
        views,
        skipped or [],
        consensus(points, [r.history[-1]["loss"] for r in runs]),
        evaluations,
        truth_nm,
        time.perf_counter() - start,
    )


def simulated_truth(params: Mapping[str, Any], seed: int) -> np.ndarray:
    """The ground-truth model (nm) of a simulated projections data set, from its simulator
    parameters and seed: the model is drawn before the views, so it is regenerated
    without them."""
    from pointillist.simulator.projections import ProjectionSimConfig, simulate_projections

    config = ProjectionSimConfig.from_params({**plain_params(params), "n_views": 0})
    return simulate_projections(config, seed).model_nm


def spec_truth(spec: run_pb2.RunSpec | None) -> np.ndarray | None:
    """The ground-truth model (nm) of a run whose source simulates projections, else None."""
    if spec is None or spec.source.WhichOneof("source") != "simulation":
        return None
    simulation = spec.source.simulation
    if simulation.kind != "projections":
        return None
    return simulated_truth(json_format.MessageToDict(simulation.params), simulation.seed)


def save_state(state: ReconstructState, path: Any) -> None:
    """Write a checkpoint (torch.save of plain tensors, numbers and lists)."""
    torch.save(state.as_dict(), path)


def load_state(path: Any) -> ReconstructState:
    """Read a checkpoint written by `save_state` (weights_only: no code is unpickled)."""
    return ReconstructState.from_dict(torch.load(path, map_location="cpu", weights_only=True))
