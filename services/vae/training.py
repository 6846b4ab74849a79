"""Training the PC-VAE on a set of particles, and embedding particles with it.

Normalisation: all particles are divided by one data-set scale `scale_nm` — the RMS
distance of the localizations to their particle's centre — so coordinates are O(1) for
the tanh decoder while size differences between particles (the radius mode) are kept.
The scale is stored with the model and reused by `embed`.

Centre: by default the particles' own frame (`recentre=False`). Picked or registered
particles already share a frame centred on the structure; re-centring each on its
mean localization moves it off the structure's centre whenever sites are unlabelled
or blink unevenly — ~13 nm on average for simulated 2D NPCs at DOL 0.7, three times
the 4 nm radius spread — and then no encoder can recover the radius: the mean radial
distance about the mean localization has Spearman ρ 0.75 with the true radius, about
the frame centre 0.98 (1399 particles). In the PC-VAE (VaeConfig defaults) the linear
R² of μ → radius is 0.58 re-centred and 0.94–0.97 in the frame (kNN R² 0.73 vs 0.85),
though the best single latent dimension varies with the seed (frame 0.55–0.83 over
3 seeds, re-centred 0.76 for one): the radius is kept but not always on one axis.
`recentre=True` is for particles cut out in image coordinates; training refuses
particles whose frame is not near-centred.

Each optimisation step takes `batch_size` particles (an epoch visits every particle
once, in a fresh random order) and keeps at most `max_points` randomly chosen
localizations of a particle (a fresh subsample every step; DNA-PAINT tetrahedra carry
~5000, and attention cost grows with its square). `embed` always uses every
localization. Optionally (`rotate`) each particle is turned by a random in-plane angle;
picked particles already have arbitrary orientations, and on simulated 2D NPCs (1399
particles, 5 epochs) it changed neither the best latent–radius Spearman ρ (0.69 with,
0.71 without) nor the radius information in μ (linear R² 0.70 vs 0.74), so it is off
by default, as in the paper.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

from pointillist.core.config import resolve_device
from pointillist.core.errors import InvalidInput
from pointillist.core.particles import Particles
from pointillist.vae.losses import beta_schedule, chamfer_distance, kl_divergence
from pointillist.vae.model import SEED_KINDS, PcVae, PcVaeConfig, pad_packed

PRECISIONS = ("auto", "bf16", "fp32")


@dataclass(frozen=True)
class VaeConfig:
    """Training settings; defaults are the paper's (Adam, lr 1e-4, wd 1e-5, M = 8, d = 8).

    epochs: passes over the data (paper: 4 sufficed). beta: KLD weight reached after
    warmup_steps sigmoid warm-up steps (losses.beta_schedule). Coordinates are in units
    of scale_nm, so the Chamfer term is dimensionless; the paper gives no β, and on
    simulated 2D NPCs β = 0.1 or 1 shrank the latent (KLD falling after warm-up) and
    lost radius information, so the default is small. max_points: per-step random
    subsample cap per particle (default 64: the decoder's point-wise 1024-channel layers
    cost ∝ points, so ~155-localization NPCs train ~2x faster, and a fresh subsample
    every step is augmentation; embed uses every localization; cap 96 gave best ρ 0.85,
    64 0.83, within seed noise). rotate: random in-plane rotation augmentation.
    seeds, population_norm: PcVaeConfig (decoder seeds 'fixed'; batch norm with
    population statistics). On simulated 2D NPCs (1399 particles, radius sd 4 nm,
    4 epochs, best latent |Spearman ρ| with radius): frame centre instead of
    re-centring 0.35 (linear R² of μ→radius 0.70 → 0.93: the information is there
    but spread over dims); + fixed seeds 0.42; + population norm 0.83 (random seeds
    with population norm 0.69); β 0.3 instead of 1e-3 0.75; rotate 0.79; lr 3e-4
    diverged. The defaults over seeds 0, 1, 2: 0.83, 0.72, 0.55.
    recentre: centre each particle on its mean localization instead of keeping the
    picked/registered frame (module docstring: it loses the radius at DOL < 1).
    device: 'auto' (cuda when present), 'cpu', 'cuda' or 'cuda:N'. precision: 'bf16'
    runs forward/backward under bfloat16 autocast (weights and Adam state stay float32),
    'fp32' does not, 'auto' picks bf16 where the device has fast bfloat16 matrix units
    (on this project's AVX512-BF16 CPU a training step is ~2-3x faster than in fp32).
    The remaining fields size the network (PcVaeConfig; defaults = the paper's layers).
    """

    latent_dim: int = 8
    batch_size: int = 8
    lr: float = 1e-4
    weight_decay: float = 1e-5
    warmup_steps: int = 5000
    epochs: int = 4
    beta: float = 1e-3
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    max_points: int = 64
    rotate: bool = False
    recentre: bool = False
    encoder_widths: tuple[int, ...] = (64, 128, 1024)
    head_width: int = 256
    decoder_widths: tuple[int, ...] = (256, 512, 1024)
    point_channels: int = 1024
    seeds: str = "fixed"
    population_norm: bool = True

    def __post_init__(self) -> None:
        checks = {
            "latent_dim must be >= 1": self.latent_dim >= 1,
            "batch_size must be >= 2 (batch norm)": self.batch_size >= 2,
            "lr must be > 0": self.lr > 0,
            "weight_decay must be >= 0": self.weight_decay >= 0,
            "warmup_steps must be >= 1": self.warmup_steps >= 1,
            "epochs must be >= 1": self.epochs >= 1,
            "beta must be >= 0": self.beta >= 0,
            "max_points must be >= 3": self.max_points >= 3,
            f"precision must be one of {PRECISIONS}": self.precision in PRECISIONS,
            f"seeds must be one of {SEED_KINDS}": self.seeds in SEED_KINDS,
        }
        for message, ok in checks.items():
            if not ok:
                raise InvalidInput(f"VaeConfig: {message}")

    def network(self, dims: int) -> PcVaeConfig:
        """The architecture for `dims`-dimensional particles."""
        return PcVaeConfig(
            dims=dims,
            latent_dim=self.latent_dim,
            encoder_widths=self.encoder_widths,
            head_width=self.head_width,
            decoder_widths=self.decoder_widths,
            point_channels=self.point_channels,
            seeds=self.seeds,
            population_norm=self.population_norm,
        )

    @classmethod
    def from_dict(cls, values: dict) -> VaeConfig:
        known = {f.name for f in fields(cls)}
        return cls(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in known}
        )


@dataclass(frozen=True)
class TrainingProgress:
    """Reported after every optimisation step; seconds since training started."""

    epoch: int
    step: int
    loss: float
    recon: float
    kld: float
    beta: float
    seconds: float


@dataclass
class TrainedVae:
    """A trained PC-VAE with what embedding needs: the normalisation scale (nm) and dims."""

    model: PcVae
    config: VaeConfig
    scale_nm: float
    dims: int
    history: list[dict] = field(default_factory=list)

    def save(self, path: str | Path) -> Path:
        """Write weights, config, scale and history to one torch file."""
        path = Path(path)
        state = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
        torch.save(
            {
                "state_dict": state,
                "config": asdict(self.config),
                "scale_nm": self.scale_nm,
                "dims": self.dims,
                "history": self.history,
            },
            path,
        )
        return path

    @classmethod
    def load(cls, path: str | Path, device: str | None = None) -> TrainedVae:
        """Read a file written by `save` onto `device` (None: cuda when present, else cpu)."""
        saved = torch.load(Path(path), map_location="cpu", weights_only=True)
        config = VaeConfig.from_dict(saved["config"])
        model = PcVae(config.network(saved["dims"]))
        model.load_state_dict(saved["state_dict"])
        model.to(resolve_device(device or "auto")).eval()
        return cls(model, config, float(saved["scale_nm"]), int(saved["dims"]), saved["history"])


def particle_centres(particles: Particles, recentre: bool) -> np.ndarray:
    """(n, dims) particle centres, nm: each one's mean localization, or the frame origin."""
    if recentre:
        return np.array([p.mean(axis=0) for p in particles.points])
    return np.zeros((len(particles), particles.dims))


def check_centred(particles: Particles) -> None:
    """Refuse particles that are not in a centred frame (median centroid offset > median
    RMS radius about the centroid), e.g. particles in image coordinates."""
    offsets = [np.linalg.norm(p.mean(axis=0)) for p in particles.points]
    radii = [np.sqrt(np.square(p - p.mean(axis=0)).sum(axis=1).mean()) for p in particles.points]
    if np.median(offsets) > np.median(radii):
        raise InvalidInput(
            f"particles are not centred on their frame origin (median offset "
            f"{np.median(offsets):.3g} nm > median size {np.median(radii):.3g} nm): "
            "register them first or train with recentre=True"
        )


def dataset_scale_nm(particles: Particles, recentre: bool) -> float:
    """RMS distance (nm) of the localizations to their particle's centre, over the data set."""
    centres = particle_centres(particles, recentre)
    squares = sum(
        float(np.square(p - c).sum()) for p, c in zip(particles.points, centres, strict=True)
    )
    scale = float(np.sqrt(squares / particles.counts.sum()))
    if not scale > 0:
        raise InvalidInput("all particles are single points: no scale to normalise by")
    return scale


def normalise(particles: Particles, scale_nm: float, recentre: bool) -> list[np.ndarray]:
    """Each particle minus its centre (`particle_centres`), divided by scale_nm, float32."""
    centres = particle_centres(particles, recentre)
    return [
        ((p - c) / scale_nm).astype(np.float32)
        for p, c in zip(particles.points, centres, strict=True)
    ]


def _rotate_in_plane(cloud: np.ndarray, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    turned = cloud.copy()
    turned[:, 0] = c * cloud[:, 0] - s * cloud[:, 1]
    turned[:, 1] = s * cloud[:, 0] + c * cloud[:, 1]
    return turned


def pack(
    clouds: Sequence[np.ndarray], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(P, dims) points, (P,) segment and (B,) counts tensors of a list of clouds."""
    counts = np.array([len(c) for c in clouds], dtype=np.int64)
    segment = np.repeat(np.arange(len(clouds)), counts)
    return (
        torch.from_numpy(np.concatenate(clouds)).to(device),
        torch.from_numpy(segment).to(device),
        torch.from_numpy(counts).to(device),
    )


def _resolve_precision(precision: str, device: torch.device) -> str:
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    # AVX512-BF16 / AMX CPUs run bfloat16 matmuls several times faster than float32
    return "bf16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "fp32"


def _batches(n: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """A random order of 0..n-1 cut into n // batch_size near-equal batches.

    Batches hold batch_size particles or one more, never a lone particle (batch norm).
    """
    return np.array_split(rng.permutation(n), max(1, n // batch_size))


def train_vae(
    particles: Particles,
    config: VaeConfig = VaeConfig(),
    progress: Callable[[TrainingProgress], None] | None = None,
) -> TrainedVae:
    """Train a PC-VAE on `particles` (nm); deterministic for a given seed on CPU."""
    if len(particles) < 2:
        raise InvalidInput(f"training needs at least 2 particles, got {len(particles)}")
    device = torch.device(resolve_device(config.device))
    use_bf16 = _resolve_precision(config.precision, device) == "bf16"
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    generator = torch.Generator(device=device).manual_seed(config.seed)
    if not config.recentre:
        check_centred(particles)
    scale_nm = dataset_scale_nm(particles, config.recentre)
    clouds = normalise(particles, scale_nm, config.recentre)
    model = PcVae(config.network(particles.dims)).to(device).train()
    optimiser = torch.optim.Adam(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=True
    )
    history: list[dict] = []
    start = time.perf_counter()
    step = 0
    for epoch in range(config.epochs):
        epoch_start = time.perf_counter()
        sums = np.zeros(3)
        batches = _batches(len(clouds), config.batch_size, rng)
        for batch in batches:
            chosen = []
            for i in batch:
                cloud = clouds[i]
                if len(cloud) > config.max_points:
                    cloud = cloud[rng.choice(len(cloud), config.max_points, replace=False)]
                if config.rotate:
                    cloud = _rotate_in_plane(cloud, rng.uniform(0, 2 * np.pi))
                chosen.append(cloud)
            points, segment, counts = pack(chosen, device)
            beta = beta_schedule(step, config.beta, config.warmup_steps)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                out = model(points, segment, counts, generator)
            padded, mask, _ = pad_packed(points, segment, counts)
            recon_padded, _, _ = pad_packed(out.reconstruction.float(), segment, counts)
            recon = chamfer_distance(padded, mask, recon_padded, mask).mean()
            kld = kl_divergence(out.mu.float(), out.logvar.float()).mean()
            loss = recon + beta * kld
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            step += 1
            values = (loss.item(), recon.item(), kld.item())
            sums += values
            if progress is not None:
                progress(TrainingProgress(epoch, step, *values, beta, time.perf_counter() - start))
        history.append(
            {
                "epoch": epoch,
                "loss": float(sums[0] / len(batches)),
                "recon": float(sums[1] / len(batches)),
                "kld": float(sums[2] / len(batches)),
                "beta": float(beta),
                "seconds": time.perf_counter() - epoch_start,
            }
        )
    model.eval()
    return TrainedVae(model, config, scale_nm, particles.dims, history)


@torch.no_grad()
def embed(trained: TrainedVae, particles: Particles, batch_size: int = 64) -> np.ndarray:
    """Latent means μ (n, latent_dim) of `particles`, all localizations, float32 network."""
    if particles.dims != trained.dims:
        raise InvalidInput(f"model was trained on {trained.dims}D particles, got {particles.dims}D")
    model = trained.model.eval()
    device = next(model.parameters()).device
    clouds = normalise(particles, trained.scale_nm, trained.config.recentre)
    means = []
    for start in range(0, len(clouds), batch_size):
        mu, _ = model.encoder(*pack(clouds[start : start + batch_size], device))
        means.append(mu.double().cpu().numpy())
    return np.concatenate(means)
