"""Training the CNN localizer on frames simulated on the fly, with checkpoints.

Each step draws a fresh batch of patches (`simulate_batch`): emitter positions either
by complete spatial randomness ('csr') or, as in LUENN's structure-based training
(Abdehkakha & Snoeyink), picked from helical microtubule-like filaments
(`pointillist.simulator.emitters.microtubules`, three filaments of 5000 seeds, a new
structure for every patch) ('structure'). Emitters blink over the frame window as a
two-state Markov chain (stationary on-probability p_on, state kept with probability
`persistence`, else redrawn), may be on for only part of a frame, and are rendered as
pixel-integrated Gaussians (in focus or astigmatic) over a uniform background through
the camera model (EMCCD noise), then converted back to photons. Targets are the
emitters of the centre frame inside the patch; emitters just outside still spill light.

Optimiser: Adam with gradient-norm clipping; the learning rate decays exponentially
from `lr` to `lr · lr_final_factor` over the run (by steps or by wall time, whichever
budget binds). A run may start from trained weights (`init`: fine-tuning, a fresh
optimiser and schedule); the weights' metadata then records the parent run, and
`total_steps` / `total_training_seconds` count both.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from pointillist.core.errors import InvalidInput
from pointillist.core.table import LocalizationTable
from pointillist.localizer.cnn_decode import CNNLocalizer, build_model, pick_device
from pointillist.localizer.cnn_loss import DecodeLoss
from pointillist.localizer.cnn_model import LocalizerNet
from pointillist.localizer.evaluation import evaluate
from pointillist.localizer.presets import SAMPLINGS, Preset
from pointillist.simulator.camera import expose
from pointillist.simulator.emitters import microtubules
from pointillist.simulator.psf import render_gaussians

MARGIN_PX = 2.0
WEIGHTS_FORMAT = "pointillist-cnn-localizer/1"


@dataclass(frozen=True)
class TrainingBatch:
    """Simulated patches: frames (B, T, H, W) photons per pixel (float32), targets
    (B, M, 4) centre-frame emitters as x_px, y_px, z_nm, photons, mask (B, M) of the real
    rows, background (B,) photons per pixel."""

    frames: np.ndarray
    targets: np.ndarray
    mask: np.ndarray
    background: np.ndarray

    def truth_table(self) -> LocalizationTable:
        """The targets as a table in nm, `frame` = patch index."""
        b, m = np.nonzero(self.mask)
        return LocalizationTable(
            {
                "x": self.targets[b, m, 0],
                "y": self.targets[b, m, 1],
                "z": self.targets[b, m, 2],
                "photons": self.targets[b, m, 3],
                "frame": b,
            }
        )


def _positions(preset: Preset, sampling: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 3) emitter positions in px (x, y) and nm (z) over the patch plus margin."""
    size = preset.patch_px + 2 * MARGIN_PX
    z_lo, z_hi = preset.z_range_nm
    if sampling == "csr":
        xy = rng.uniform(0, size, (n, 2))
        z = rng.uniform(z_lo, z_hi, n)
    else:
        # microtubules() needs a z range to wind through; a 2D preset flattens it after.
        z_range = (z_lo, z_hi) if preset.three_d else (-500.0, 500.0)
        fov = (size * preset.pixel_size_nm, size * preset.pixel_size_nm)
        cloud = microtubules(3, 5000, fov, z_range, 150.0, 1500.0, rng)
        pick = cloud[rng.choice(len(cloud), size=min(n, len(cloud)), replace=False)]
        xy = pick[:, :2] / preset.pixel_size_nm
        z = pick[:, 2] if preset.three_d else np.zeros(len(pick))
    return np.column_stack([xy - MARGIN_PX, z])


def simulate_batch(
    preset: Preset,
    sampling: str,
    batch_size: int,
    rng: np.random.Generator,
    density_per_um2: float | None = None,
) -> TrainingBatch:
    """A batch of `batch_size` simulated patches for `preset` (see module docstring).

    density_per_um2: on-emitters per µm² in each frame (default: uniform in the
    preset's range, drawn per patch).
    """
    if sampling not in SAMPLINGS:
        raise InvalidInput(f"sampling must be one of {list(SAMPLINGS)}, got {sampling!r}")
    size, t_len, pixel = preset.patch_px, preset.n_frames, preset.pixel_size_nm
    area_um2 = (size + 2 * MARGIN_PX) ** 2 * (pixel / 1000.0) ** 2
    frames = np.empty((batch_size, t_len, size, size), dtype=np.float32)
    background = np.empty(batch_size, dtype=np.float32)
    centre = t_len // 2
    per_patch = []
    for b in range(batch_size):
        density = (
            rng.uniform(*preset.density_per_um2) if density_per_um2 is None else density_per_um2
        )
        pos = _positions(preset, sampling, rng.poisson(density * area_um2 / preset.p_on), rng)
        n = len(pos)
        photons = np.exp(rng.uniform(*np.log(preset.photons)))
        bg = photons / np.exp(rng.uniform(*np.log(preset.signal_to_background)))
        brightness = photons * rng.uniform(
            1 - preset.brightness_spread, 1 + preset.brightness_spread, n
        )
        if preset.psf == "astigmatic":
            sx, sy = preset.astigmatism.sigma_xy_nm(pos[:, 2])
        else:
            sx = np.full(n, rng.uniform(*preset.psf_sigma_nm))
            sy = sx
        on = rng.random(n) < preset.p_on
        for t in range(t_len):
            if t:
                redraw = rng.random(n) >= preset.persistence
                on = np.where(redraw, rng.random(n) < preset.p_on, on)
            fraction = np.where(rng.random(n) < 0.7, 1.0, rng.uniform(0.1, 1.0, n))
            signal = brightness * fraction * on
            expected = render_gaussians(
                pos[on, 0], pos[on, 1], sx[on] / pixel, sy[on] / pixel, signal[on], (size, size)
            )
            adu = expose(expected + bg, preset.camera, rng)
            frames[b, t] = preset.camera.photons_from_adu(adu)
            if t == centre:
                inside = on & np.all((pos[:, :2] >= 0) & (pos[:, :2] < size), axis=1)
                per_patch.append(np.column_stack([pos[inside], signal[inside]]))
        background[b] = bg
    width = max(1, max(len(e) for e in per_patch))
    targets = np.zeros((batch_size, width, 4), dtype=np.float32)
    mask = np.zeros((batch_size, width), dtype=bool)
    for b, emitters in enumerate(per_patch):
        targets[b, : len(emitters)] = emitters
        mask[b, : len(emitters)] = True
    return TrainingBatch(frames, targets, mask, background)


def validate(localizer: CNNLocalizer, batch: TrainingBatch) -> dict[str, float]:
    """JI and RMSEs (nm) of `localizer` on the centre frames of a fixed batch."""
    preset = localizer.preset_
    half = preset.n_frames // 2
    pred = LocalizationTable.concat(
        localizer.localize(
            window[half : half + 1],
            first_frame=b,
            before=window[:half],
            after=window[half + 1 :],
        )
        for b, window in enumerate(batch.frames)
    )
    truth = batch.truth_table()
    truth = truth.with_columns(
        x=truth["x"] * preset.pixel_size_nm, y=truth["y"] * preset.pixel_size_nm
    )
    if not preset.three_d:
        truth = LocalizationTable({k: truth[k] for k in truth.columns if k != "z"})
    result = evaluate(pred, truth, use_z=preset.three_d)
    return {
        "jaccard": result.jaccard,
        "rmse_lateral_nm": result.rmse_lateral_nm,
        "rmse_axial_nm": result.rmse_axial_nm,
    }


@dataclass(frozen=True)
class TrainConfig:
    """Training budget and optimiser settings.

    steps / minutes: stop at whichever comes first (at least one must be set).
    channels: network width (None = the preset's). checkpoint_every, validate_every:
    in steps. validation_size: patches in the fixed validation batch.
    """

    steps: int | None = None
    minutes: float | None = None
    batch_size: int = 16
    lr: float = 6e-4
    lr_final_factor: float = 0.05
    clip_norm: float = 0.1
    channels: int | None = None
    checkpoint_every: int = 100
    validate_every: int = 200
    validation_size: int = 32
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.steps is None and self.minutes is None:
            raise InvalidInput("give a training budget: steps, minutes or both")
        if (self.steps is not None and self.steps < 1) or (
            self.minutes is not None and self.minutes <= 0
        ):
            raise InvalidInput("steps must be >= 1 and minutes > 0")
        if self.batch_size < 1 or self.checkpoint_every < 1 or self.validate_every < 1:
            raise InvalidInput("batch_size, checkpoint_every and validate_every must be >= 1")


@dataclass
class TrainState:
    """What a checkpoint restores: network, optimiser, step, time used, RNG, log."""

    model: LocalizerNet
    optimizer: torch.optim.Optimizer
    step: int
    seconds: float
    rng: np.random.Generator
    history: list[dict]
    parent: dict | None = None


def checkpoint_path(out: Path) -> Path:
    """Where the checkpoint of a run writing weights to `out` lives."""
    return out.with_suffix(".ckpt")


def _meta(preset: Preset, sampling: str, config: TrainConfig, state: TrainState) -> dict:
    last = state.history[-1] if state.history else {}
    return {
        "format": WEIGHTS_FORMAT,
        "preset": preset.name,
        "sampling": sampling,
        "channels": state.model.channels,
        "n_frames": state.model.n_frames,
        "steps": state.step,
        "batch_size": config.batch_size,
        "training_seconds": round(state.seconds, 1),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip()
        + f", torch {torch.__version__}, {torch.get_num_threads()} threads",
        "loss": last.get("loss_avg"),
        # NaN (no axial RMSE in 2D) is not JSON; None is.
        "validation": {k: None if v != v else v for k, v in last.get("validation", {}).items()},
        "config": asdict(config),
        "init": state.parent,
        "total_steps": state.step + (state.parent or {}).get("total_steps", 0),
        "total_training_seconds": round(
            state.seconds + (state.parent or {}).get("total_training_seconds", 0.0), 1
        ),
    }


def save_checkpoint(
    path: Path, preset: Preset, sampling: str, config: TrainConfig, state: TrainState
) -> None:
    """Everything needed to resume, written atomically."""
    tmp = path.with_suffix(".tmp")
    torch.save(
        {
            "meta": _meta(preset, sampling, config, state),
            "model": state.model.state_dict(),
            "optimizer": state.optimizer.state_dict(),
            "rng": state.rng.bit_generator.state,
            "history": state.history,
        },
        tmp,
    )
    tmp.replace(path)


def save_weights(
    path: Path, preset: Preset, sampling: str, config: TrainConfig, state: TrainState
) -> dict:
    """The shipped form: float16 weights + metadata (also as JSON beside it). Returns meta."""
    meta = _meta(preset, sampling, config, state)
    half = {k: v.detach().cpu().half() for k, v in state.model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"meta": meta, "model": half}, path)
    path.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def _fine_tune_state(preset: Preset, init: Path, config: TrainConfig) -> TrainState:
    """A run that starts from the weights at `init` with a fresh optimiser."""
    if not init.exists():
        raise InvalidInput(f"no weights to start from at {init}")
    saved = torch.load(init, map_location="cpu", weights_only=False)
    meta = saved.get("meta", {})
    if meta.get("format") != WEIGHTS_FORMAT or meta.get("preset") != preset.name:
        raise InvalidInput(
            f"{init} holds {meta.get('format')!r} weights of preset {meta.get('preset')!r}; "
            f"fine-tuning needs {WEIGHTS_FORMAT!r} weights of preset {preset.name!r}"
        )
    if config.channels is not None and config.channels != meta["channels"]:
        raise InvalidInput(f"{init} has width {meta['channels']}, not {config.channels}")
    torch.manual_seed(config.seed)
    model, _ = build_model(saved)
    model.train()
    parent = {
        "path": str(init),
        "sampling": meta.get("sampling"),
        "steps": meta.get("steps"),
        "total_steps": meta.get("total_steps", meta.get("steps", 0)),
        "total_training_seconds": meta.get(
            "total_training_seconds", meta.get("training_seconds", 0.0)
        ),
    }
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    return TrainState(model, optimizer, 0, 0.0, np.random.default_rng(config.seed), [], parent)


def train(
    preset: Preset,
    sampling: str,
    out: Path,
    config: TrainConfig,
    *,
    resume: bool = False,
    init: Path | None = None,
    on_step: Callable[[int, int | None, dict], None] | None = None,
) -> dict:
    """Train a localizer for `preset` with `sampling` and write its weights to `out`.

    Checkpoints go to `checkpoint_path(out)` every `config.checkpoint_every` steps;
    with `resume` a run continues from there (step, time used, optimiser, RNG).
    `init`: weights (or a checkpoint) of the same preset to start from instead of a
    random network (ignored when resuming a checkpoint).
    `on_step(step, total_steps, log)` is called after every step (progress bars).
    Returns the metadata written with the weights.
    """
    if sampling not in SAMPLINGS:
        raise InvalidInput(f"sampling must be one of {list(SAMPLINGS)}, got {sampling!r}")
    device = pick_device(config.device)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    ckpt = checkpoint_path(out)
    if resume and ckpt.exists():
        saved = torch.load(ckpt, map_location="cpu", weights_only=False)
        model, _ = build_model(saved)
        model.train()
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
        optimizer.load_state_dict(saved["optimizer"])
        rng = np.random.default_rng()
        rng.bit_generator.state = saved["rng"]
        state = TrainState(
            model,
            optimizer,
            saved["meta"]["steps"],
            saved["meta"]["training_seconds"],
            rng,
            saved["history"],
            saved["meta"].get("init"),
        )
    elif init is not None:
        state = _fine_tune_state(preset, Path(init), config)
    else:
        torch.manual_seed(config.seed)
        model = LocalizerNet(preset.n_frames, config.channels or preset.channels)
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
        state = TrainState(model, optimizer, 0, 0.0, np.random.default_rng(config.seed), [])
    state.model.to(device)
    for group_state in state.optimizer.state.values():
        for key, value in group_state.items():
            if torch.is_tensor(value) and key != "step":
                group_state[key] = value.to(device)
    loss_fn = DecodeLoss(preset.three_d, preset.z_scale_nm, preset.photon_unit)
    val_batch = simulate_batch(
        preset, sampling, config.validation_size, np.random.default_rng(config.seed + 10_000)
    )
    localizer = CNNLocalizer(device=str(device))
    started = time.monotonic() - state.seconds
    budget_s = None if config.minutes is None else 60.0 * config.minutes

    def progress() -> float:
        by_steps = 0.0 if config.steps is None else state.step / config.steps
        by_time = 0.0 if budget_s is None else (time.monotonic() - started) / budget_s
        return max(by_steps, by_time)

    while progress() < 1.0:
        for group in state.optimizer.param_groups:
            group["lr"] = config.lr * config.lr_final_factor ** progress()
        batch = simulate_batch(preset, sampling, config.batch_size, state.rng)
        state.model.train()
        out_maps = state.model(torch.from_numpy(batch.frames).to(device))
        loss, parts = loss_fn(
            out_maps,
            torch.from_numpy(batch.targets).to(device),
            torch.from_numpy(batch.mask).to(device),
            torch.from_numpy(batch.background).to(device),
        )
        state.optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(state.model.parameters(), config.clip_norm)
        state.optimizer.step()
        state.step += 1
        state.seconds = time.monotonic() - started
        previous = state.history[-1]["loss_avg"] if state.history else loss.item()
        log = {"step": state.step, "loss": loss.item(), **parts}
        log["loss_avg"] = 0.98 * previous + 0.02 * loss.item()
        done = progress() >= 1.0
        if state.step % config.validate_every == 0 or done:
            localizer.from_model(state.model, preset)
            log["validation"] = validate(localizer, val_batch)
            state.model.train()
        state.history.append(log)
        if state.step % config.checkpoint_every == 0 or done:
            save_checkpoint(ckpt, preset, sampling, config, state)
        if on_step is not None:
            on_step(state.step, config.steps, log)
    if not state.history or "validation" not in state.history[-1]:
        localizer.from_model(state.model, preset)
        state.history.append({"step": state.step, "validation": validate(localizer, val_batch)})
    return save_weights(out, preset, sampling, config, state)
