"""CAML's networks (Williamson et al. 2020), in torch, and their shipped weights.

Input: (B, k) normalised nearest-neighbour distance sequences (`features`); output:
(B, n_classes) logits (softmax gives class probabilities). Class 0 is always
"non-clustered"; binary models have class 1 "clustered", the multi-class model
classes 1 "round" and 2 "fibre".

- `DenseNet` (the paper's XPILJZ): k inputs → dense 128 → dense 64 (ReLU) → output.
- `ConvLSTMNet` (07VEJJ for k = 100, 87B144 for k = 1000): Conv1D (32 filters,
  width 5, ReLU) → max-pool → dropout 0.2 →
  two stacked LSTMs (32 units, whole sequence out) → dropout 0.2 → max-pool 2 →
  flatten → dense 32 → dense 16 (ReLU) → output. The first pool is 2 for k = 100
  (50 LSTM steps) and 10 for k = 1000 (100 steps), which keeps the recurrent part of
  the 1000-neighbour models affordable on a CPU.

The multi-class model (3TXKFS: 1000 neighbours, three classes) has no stated layout;
ours is the dense one: on this project's CPU budget it reached a higher validation
accuracy than the conv+LSTM form (see bench/RESULTS.md). Layer widths are not given
in the paper; those above are ours. Each shipped model
(`ARCHITECTURES`) is a name resolved in `weights/` (float16 state dict + metadata).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pointillist.core.errors import InvalidInput

WEIGHTS_DIR = Path(__file__).parent / "weights"
WEIGHTS_FORMAT = "pointillist-caml/1"
BINARY_CLASSES = ("non-clustered", "clustered")
MULTI_CLASSES = ("non-clustered", "round", "fibre")


@dataclass(frozen=True)
class Architecture:
    """A CAML network: kind ('dense' or 'lstm'), window k, class names, paper's model id."""

    name: str
    kind: str
    k: int
    class_names: tuple[str, ...]
    paper_id: str

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def multiclass(self) -> bool:
        return self.n_classes > 2


ARCHITECTURES: dict[str, Architecture] = {
    "dense100": Architecture("dense100", "dense", 100, BINARY_CLASSES, "XPILJZ"),
    "lstm100": Architecture("lstm100", "lstm", 100, BINARY_CLASSES, "07VEJJ"),
    "lstm1000": Architecture("lstm1000", "lstm", 1000, BINARY_CLASSES, "87B144"),
    "multiclass1000": Architecture("multiclass1000", "dense", 1000, MULTI_CLASSES, "3TXKFS"),
}


class DenseNet(nn.Module):
    """XPILJZ: (B, k) sequences → two dense ReLU layers → (B, n_classes) logits."""

    def __init__(self, k: int, n_classes: int, hidden: tuple[int, int] = (128, 64)) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(k, hidden[0]),
            nn.ReLU(),
            nn.Linear(hidden[0], hidden[1]),
            nn.ReLU(),
            nn.Linear(hidden[1], n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class ConvLSTMNet(nn.Module):
    """07VEJJ / 87B144 / 3TXKFS: Conv1D → pool → LSTM×2 → pool → dense 32 → 16 → logits.

    x: (B, k) → (B, n_classes). See the module docstring for the layer list.
    """

    def __init__(
        self, k: int, n_classes: int, filters: int = 32, units: int = 32, dropout: float = 0.2
    ) -> None:
        super().__init__()
        self.pool = 2 if k <= 200 else 10
        steps = k // self.pool // 2
        if steps < 1:
            raise InvalidInput(f"window k={k} is too short for the conv+LSTM model")
        self.conv = nn.Sequential(
            nn.Conv1d(1, filters, kernel_size=5, padding=2),
            nn.ReLU(),
            nn.MaxPool1d(self.pool),
            nn.Dropout(dropout),
        )
        self.lstm = nn.LSTM(filters, units, num_layers=2, batch_first=True)
        self.after = nn.Sequential(nn.Dropout(dropout), nn.MaxPool1d(2))
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(steps * units, 32),
            nn.ReLU(),
            nn.Linear(32, 16),
            nn.ReLU(),
            nn.Linear(16, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(x.unsqueeze(1))  # (B, filters, k / pool)
        h, _ = self.lstm(h.transpose(1, 2))  # (B, steps, units)
        h = self.after(h.transpose(1, 2))  # (B, units, steps / 2)
        return self.head(h.transpose(1, 2))


def build_network(arch: Architecture) -> nn.Module:
    """A freshly initialised network for `arch`."""
    if arch.kind == "dense":
        return DenseNet(arch.k, arch.n_classes)
    return ConvLSTMNet(arch.k, arch.n_classes)


def get_architecture(name: str) -> Architecture:
    """The architecture of a shipped model name (InvalidInput if unknown)."""
    if name not in ARCHITECTURES:
        raise InvalidInput(f"unknown CAML model {name!r}; known: {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[name]


def architecture_meta(arch: Architecture) -> dict[str, Any]:
    """`arch` as JSON-ready metadata (stored with the weights)."""
    return {**asdict(arch), "class_names": list(arch.class_names)}


def resolve_weights(model: str | Path) -> Path:
    """The weights file of a shipped model name, or `model` itself if it is a file."""
    path = Path(model)
    if path.is_file():
        return path
    if str(model) in ARCHITECTURES:
        shipped = WEIGHTS_DIR / f"{model}.pt"
        if shipped.is_file():
            return shipped
        raise InvalidInput(f"CAML model {model!r} has no shipped weights at {shipped}")
    raise InvalidInput(f"no CAML model {str(model)!r}: not a file, known: {sorted(ARCHITECTURES)}")


def save_weights(path: Path, network: nn.Module, meta: dict[str, Any]) -> None:
    """Write the shipped form: float16 state dict + `meta` in one torch file."""
    half = {k: v.detach().cpu().half() for k, v in network.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": WEIGHTS_FORMAT, "meta": meta, "model": half}, path)


def load_network(model: str | Path) -> tuple[nn.Module, Architecture, dict[str, Any]]:
    """(network in eval mode on the CPU, its architecture, its metadata) for `model`.

    `model` is a shipped name (`ARCHITECTURES`) or a weights file.
    """
    path = resolve_weights(model)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a file that is not its own
        raise InvalidInput(f"{path} is not a CAML weights file: {exc}") from None
    if not isinstance(state, dict) or state.get("format") != WEIGHTS_FORMAT:
        raise InvalidInput(f"{path} is not a CAML weights file ({WEIGHTS_FORMAT})")
    meta = state["meta"]
    a = meta["architecture"]
    arch = Architecture(a["name"], a["kind"], int(a["k"]), tuple(a["class_names"]), a["paper_id"])
    network = build_network(arch)
    network.load_state_dict({k: v.float() for k, v in state["model"].items()})
    return network.eval(), arch, meta
