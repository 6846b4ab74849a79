"""Training HOLLy: poses and one 3D point model from 2D views (Blundell et al.).

Per step, a batch of views is rendered into input images with the current input σ
(each view turned by a fresh random in-plane angle: the paper's rotation
augmentation), the network predicts each image's pose and output σ, the learned
points are rendered in those poses, and the loss is the L1 distance between rendered
and input images — optionally the paper's masked variant (§2.7: only pixels where the
input exceeds `mask_fraction` of its peak count). Both images are unit-intensity, so
the loss is in [0, 2] per image, reported as the batch mean.

Input-σ curriculum (paper §2.6): σ starts wide (`sigma_start_nm`, about diffraction
limited) so the loss is smooth over large distances, and falls geometrically to the
expected localization error `sigma_end_nm` over the first `anneal_fraction` of the
epochs, changing once per epoch (the paper's stepped curve), then stays there.

Defaults are the paper's where it gives them (Adam, batch 32) and measured here where
they differ (bench/RESULTS.md, "Reconstructor"): lr 0.001, since at the paper's 0.004 the
predicted output σ ran away (to ~10⁶ nm within one epoch) and the loss rose; no loss mask
(`mask_fraction` 0): with the paper's mask, points outside every input's support get
no gradient (before points were kept in the field, 20 of a torus's 200 points stayed
~300 nm off, RMSD 51 nm vs 18 nm unmasked; with them kept in, masked 20.2 nm vs 18.4);
and, for CPU time, 64-px images instead of 128 and 60 epochs of one rotated copy per
view instead of 40 epochs of 20 copies.

Checkpoints: `HollyTrainer.state_dict()` after any epoch holds everything to resume
(network, points, optimiser, random state, history); `train_holly(resume=...)`
continues from it and gives the same result as an uninterrupted run on CPU.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from pointillist.core.config import resolve_device
from pointillist.core.errors import InvalidInput, PointillistError
from pointillist.reconstructor.model import Holly
from pointillist.reconstructor.views import ImageViews, ViewSet


class TrainingCancelled(PointillistError):
    """`should_stop` asked training to stop; the last checkpoint is the place to resume."""


@dataclass(frozen=True)
class ReconConfig:
    """HOLLy settings; lengths in nm. See the module docstring for the defaults' origin.

    n_points: size of the learned 3D point matrix. image_px: input/rendered image side
    (multiple of 32). half_width_nm: the field's half-width (None: from the data,
    `views.field_half_width_nm`). rotations_per_view: augmented copies of each view per
    epoch. width: channels of the CNN's first stage (doubling over 5 stages).
    mask_fraction: loss mask threshold relative to the input image's peak (0: no mask).
    max_minutes: stop training after the epoch that crosses this wall time (None: never).
    """

    n_points: int = 250
    image_px: int = 64
    half_width_nm: float | None = None
    epochs: int = 60
    rotations_per_view: int = 1
    batch_size: int = 32
    lr: float = 0.001
    width: int = 16
    sigma_start_nm: float = 60.0
    sigma_end_nm: float = 12.0
    anneal_fraction: float = 0.75
    mask_fraction: float = 0.0
    augment: bool = True
    max_localizations: int = 4096
    seed: int = 0
    device: str = "auto"
    max_minutes: float | None = None

    def __post_init__(self) -> None:
        checks = {
            "n_points must be >= 1": self.n_points >= 1,
            "image_px must be a positive multiple of 32": self.image_px > 0
            and self.image_px % 32 == 0,
            "half_width_nm must be > 0": self.half_width_nm is None or self.half_width_nm > 0,
            "epochs must be >= 1": self.epochs >= 1,
            "rotations_per_view must be >= 1": self.rotations_per_view >= 1,
            "batch_size must be >= 1": self.batch_size >= 1,
            "lr must be > 0": self.lr > 0,
            "width must be >= 1": self.width >= 1,
            "sigma_end_nm must be > 0": self.sigma_end_nm > 0,
            "sigma_start_nm must be >= sigma_end_nm": self.sigma_start_nm >= self.sigma_end_nm,
            "anneal_fraction must be in (0, 1]": 0 < self.anneal_fraction <= 1,
            "mask_fraction must be in [0, 1)": 0 <= self.mask_fraction < 1,
            "max_localizations must be >= 1": self.max_localizations >= 1,
            "max_minutes must be > 0": self.max_minutes is None or self.max_minutes > 0,
        }
        failed = [text for text, ok in checks.items() if not ok]
        if failed:
            raise InvalidInput("ReconConfig: " + "; ".join(failed))


def input_sigma_nm(config: ReconConfig, epoch: int) -> float:
    """The curriculum's input σ (nm) for a 0-based epoch: geometric from start to end over
    the first anneal_fraction of the epochs, constant after (one step per epoch)."""
    anneal = max(1, math.ceil(config.anneal_fraction * config.epochs) - 1)
    t = min(1.0, epoch / anneal)
    return config.sigma_start_nm * (config.sigma_end_nm / config.sigma_start_nm) ** t


@dataclass(frozen=True)
class StepProgress:
    """Reported after every optimisation step; seconds since this training began."""

    epoch: int
    step: int
    steps_per_epoch: int
    loss: float
    sigma_in_nm: float
    sigma_out_nm: float
    images: int
    seconds: float


def masked_l1(rendered: torch.Tensor, target: torch.Tensor, mask_fraction: float) -> torch.Tensor:
    """Per-image L1 over the pixels where the target exceeds mask_fraction × its peak."""
    diff = (rendered - target).abs()
    if mask_fraction > 0:
        peak = target.amax((-2, -1), keepdim=True)
        diff = diff * (target > mask_fraction * peak)
    return diff.sum((-2, -1))


@dataclass
class Reconstruction:
    """A trained HOLLy model's result (nm): the 3D points, the pose per view, the history.

    poses: per view particle, rx, ry, rz (axis-angle, rad), tx_nm, ty_nm (the
    structure's centre relative to the view's mean localization), sigma_nm (output σ).
    history: per epoch epoch (1-based), loss, sigma_in_nm, sigma_out_nm, images, seconds.
    """

    points_nm: np.ndarray
    poses: dict[str, np.ndarray]
    history: list[dict[str, float]]
    config: ReconConfig
    half_width_nm: float
    device: str
    seconds: float = 0.0
    stopped_early: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class HollyTrainer:
    """One HOLLy training run over a ViewSet, an epoch at a time, checkpointable."""

    def __init__(self, views: ViewSet | ImageViews, config: ReconConfig) -> None:
        if len(views) < 2:
            raise InvalidInput(f"HOLLy needs at least 2 views, got {len(views)}")
        self.config = config
        self.device = torch.device(resolve_device(config.device))
        self.views = views.to(self.device)
        self.half_width_nm = views.half_width_nm
        self.generator = torch.Generator().manual_seed(config.seed)
        init_radius = views.field_radius()
        self.model = Holly(
            config.n_points, config.image_px, config.width, init_radius, self.generator
        ).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        self.epoch = 0
        self.history: list[dict[str, float]] = []
        self.seconds = 0.0

    def sigma(self, nm: float) -> float:
        return nm / self.half_width_nm

    def input_images(self, index: torch.Tensor, sigma_nm: float, augment: bool) -> torch.Tensor:
        """Views `index` rendered at input σ, turned by random angles when augmenting."""
        angles = None
        if augment:
            angles = 2 * math.pi * torch.rand(len(index), generator=self.generator)
            angles = angles.to(self.device)
        return self.views.render(index, sigma_nm, self.config.image_px, angles)

    def run_epoch(
        self,
        progress: Callable[[StepProgress], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> dict[str, float]:
        """One epoch: every view `rotations_per_view` times in random order."""
        config = self.config
        sigma_nm = input_sigma_nm(config, self.epoch)
        order = torch.cat(
            [
                torch.randperm(len(self.views), generator=self.generator)
                for _ in range(config.rotations_per_view)
            ]
        )
        batches = order.split(config.batch_size)
        start = time.perf_counter()
        self.model.train()
        losses, sigmas = [], []
        for step, index in enumerate(batches):
            if should_stop is not None and should_stop():
                raise TrainingCancelled(f"stopped in epoch {self.epoch + 1}")
            target = self.input_images(index.to(self.device), sigma_nm, config.augment)
            rendered, _, _, sigma_out = self.model(target, self.sigma(sigma_nm))
            loss = masked_l1(rendered, target, config.mask_fraction).mean()
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.model.keep_in_field()
            losses.append(loss.item())
            sigmas.append(float(sigma_out.detach().mean()) * self.half_width_nm)
            if progress is not None:
                progress(
                    StepProgress(
                        self.epoch,
                        step,
                        len(batches),
                        losses[-1],
                        sigma_nm,
                        sigmas[-1],
                        len(index),
                        self.seconds + time.perf_counter() - start,
                    )
                )
        seconds = time.perf_counter() - start
        self.seconds += seconds
        self.epoch += 1
        record = {
            "epoch": float(self.epoch),
            "loss": float(np.mean(losses)),
            "sigma_in_nm": sigma_nm,
            "sigma_out_nm": float(np.mean(sigmas)),
            "images": float(len(order)),
            "seconds": seconds,
        }
        self.history.append(record)
        return record

    @torch.no_grad()
    def poses(self) -> dict[str, np.ndarray]:
        """Each view's pose and output σ at the final input σ, unrotated (module docs)."""
        self.model.eval()
        sigma_nm = input_sigma_nm(self.config, max(0, self.epoch - 1))
        parts: list[tuple[torch.Tensor, ...]] = []
        for index in torch.arange(len(self.views)).split(256):
            target = self.input_images(index.to(self.device), sigma_nm, augment=False)
            _, rotvec, shift, sigma = self.model(target, self.sigma(sigma_nm))
            parts.append((rotvec.cpu(), shift.cpu(), sigma.cpu()))
        rotvec, shift, sigma = (torch.cat(p).double().numpy() for p in zip(*parts, strict=True))
        return {
            "particle": self.views.ids,
            "rx": rotvec[:, 0],
            "ry": rotvec[:, 1],
            "rz": rotvec[:, 2],
            "tx_nm": shift[:, 0] * self.half_width_nm,
            "ty_nm": shift[:, 1] * self.half_width_nm,
            "sigma_nm": sigma * self.half_width_nm,
        }

    def points_nm(self) -> np.ndarray:
        return self.model.points.detach().cpu().double().numpy() * self.half_width_nm

    def state_dict(self) -> dict[str, Any]:
        """Everything to resume after the current epoch (a checkpoint): a deep copy, so
        training on does not change it."""
        return copy.deepcopy(
            {
                "config": asdict(self.config),
                "half_width_nm": self.half_width_nm,
                "epoch": self.epoch,
                "history": list(self.history),
                "seconds": self.seconds,
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "generator": self.generator.get_state(),
            }
        )

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a checkpoint of the same configuration and views."""
        saved = {k: v for k, v in state["config"].items() if k not in ("device", "max_minutes")}
        mine = {k: v for k, v in asdict(self.config).items() if k not in ("device", "max_minutes")}
        if saved != mine:
            changed = sorted(k for k in mine if saved.get(k) != mine[k])
            raise InvalidInput(f"the checkpoint was made with other settings: {changed}")
        if abs(state["half_width_nm"] - self.half_width_nm) > 1e-6 * self.half_width_nm:
            raise InvalidInput("the checkpoint was made on other views (field size differs)")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.epoch = int(state["epoch"])
        self.history = list(state["history"])
        self.seconds = float(state["seconds"])

    def result(self, stopped_early: bool = False) -> Reconstruction:
        return Reconstruction(
            self.points_nm(),
            self.poses(),
            list(self.history),
            self.config,
            self.half_width_nm,
            str(self.device),
            self.seconds,
            stopped_early,
        )


def train_holly(
    views: ViewSet | ImageViews,
    config: ReconConfig,
    progress: Callable[[StepProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    checkpoint: Callable[[dict[str, Any]], None] | None = None,
    resume: dict[str, Any] | None = None,
) -> Reconstruction:
    """Train one HOLLy model; `checkpoint` gets the trainer state after every epoch.

    Raises TrainingCancelled when `should_stop()` turns true (checked every step).
    """
    torch.manual_seed(config.seed)
    trainer = HollyTrainer(views, config)
    if resume is not None:
        trainer.load_state_dict(resume)
    stopped_early = False
    while trainer.epoch < config.epochs:
        trainer.run_epoch(progress, should_stop)
        if checkpoint is not None:
            checkpoint(trainer.state_dict())
        limit = config.max_minutes
        if limit is not None and trainer.seconds > 60 * limit and trainer.epoch < config.epochs:
            stopped_early = True
            break
    return trainer.result(stopped_early)
