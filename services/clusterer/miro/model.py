"""MIRO's recurrent graph network (Pallotta et al., "MIRO's architecture", Eqs. 2–3).

Linear encoders lift node features v_i (5 Laplacian eigenvectors) and edge features
e_ij (length, direction, offset) to v'_i, e'_ij of width `hidden` (paper: 256). A hidden graph
(u_i, f_ij), zeros at first, is refined K times by one shared block:

    f_ij ← φ([ũ_i, ũ_j, f̃_ij]),   u_i ← ψ(Σ_j f_ij),   ũ = [u, v'],  f̃ = [f, e'],

φ and ψ linear + ReLU; node updates use only the summed new edge states (no skip). After
every step a linear decoder turns u_i into a displacement (and, for the classification
variant, class logits), so the loss can be applied at every step.

φ acts on a concatenation of six blocks; it is evaluated as the sum of six block
products, which is the same linear map, with the node blocks computed once per node
rather than once per edge and the constant input-graph blocks (v', e') once per forward
pass. That is what makes K = 10–25 steps affordable on a CPU.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from pointillist.clusterer.miro.graph import EDGE_FEATURES, N_EIGENVECTORS, PointGraph


@dataclass(frozen=True)
class MiroConfig:
    """Architecture: width of every latent vector, recurrent steps K, class count (0 = none).

    edge_features: how many of the graph's edge feature columns the model reads (5; models
    saved before the offset columns existed read the first 3).
    """

    hidden: int = 256
    steps: int = 12
    n_classes: int = 0
    node_features: int = N_EIGENVECTORS
    edge_features: int = EDGE_FEATURES

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class MiroOutput:
    """Per-step outputs: displacements[k] (N, 2) in scale units; logits[k] (N, C) or empty."""

    displacements: list[torch.Tensor]
    logits: list[torch.Tensor]


class Miro(nn.Module):
    """The MIRO network; `forward(graph tensors)` returns the outputs of all K steps."""

    def __init__(self, config: MiroConfig) -> None:
        super().__init__()
        self.config = config
        h = config.hidden
        self.node_encoder = nn.Linear(config.node_features, h)
        self.edge_encoder = nn.Linear(config.edge_features, h)
        # φ([u_i, v'_i, u_j, v'_j, f_ij, e'_ij]) = ReLU(sum of six block products + b)
        self.phi_receiver = nn.Linear(2 * h, h, bias=False)
        self.phi_sender = nn.Linear(2 * h, h, bias=False)
        self.phi_edge = nn.Linear(2 * h, h)
        self.psi = nn.Linear(h, h)
        self.decoder = nn.Linear(h, 2)
        self.classifier = nn.Linear(h, config.n_classes) if config.n_classes else None

    def forward(
        self, node_features: torch.Tensor, edge_features: torch.Tensor, edge_index: torch.Tensor
    ) -> MiroOutput:
        h = self.config.hidden
        receiver, sender = edge_index[0], edge_index[1]
        v = self.node_encoder(node_features)
        e = self.edge_encoder(edge_features[:, : self.config.edge_features])
        w_recv, w_send, w_edge = (
            self.phi_receiver.weight,
            self.phi_sender.weight,
            self.phi_edge.weight,
        )
        # constant parts of φ: input-graph blocks
        const_node_recv = v @ w_recv[:, h:].T
        const_node_send = v @ w_send[:, h:].T
        const_edge = e @ w_edge[:, h:].T + self.phi_edge.bias
        const = const_node_recv[receiver] + const_node_send[sender] + const_edge
        n_nodes = node_features.shape[0]
        u = node_features.new_zeros((n_nodes, h))
        f = edge_features.new_zeros((edge_features.shape[0], h))
        displacements, logits = [], []
        for _ in range(self.config.steps):
            node_recv = u @ w_recv[:, :h].T
            node_send = u @ w_send[:, :h].T
            f = torch.relu(const + node_recv[receiver] + node_send[sender] + f @ w_edge[:, :h].T)
            summed = u.new_zeros((n_nodes, h)).index_add_(0, receiver, f)
            u = torch.relu(self.psi(summed))
            displacements.append(self.decoder(u))
            if self.classifier is not None:
                logits.append(self.classifier(u))
        return MiroOutput(displacements, logits)

    def run(self, graph: PointGraph, device: torch.device | str = "cpu") -> MiroOutput:
        """Forward pass on a `PointGraph` (no gradients)."""
        with torch.no_grad():
            return self(*graph_tensors(graph, device))


def graph_tensors(
    graph: PointGraph, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(node features, edge features, edge index) of `graph` as tensors on `device`."""
    return (
        torch.as_tensor(graph.node_features, device=device),
        torch.as_tensor(graph.edge_features, device=device),
        torch.as_tensor(graph.edge_index, device=device),
    )
