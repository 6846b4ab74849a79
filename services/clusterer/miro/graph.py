"""MIRO's input graph of a localization point cloud (Pallotta et al., Online Methods).

Nodes are localizations; edges come from a Delaunay triangulation (scipy.spatial) with
edges longer than δ removed, so sparse regions do not get spurious long links. Node
features are the absolute values of the n = 5 eigenvectors of the symmetric normalised
Laplacian Δ = I − D^-1/2 A D^-1/2 that follow the trivial one (Laplacian positional
encodings; abs() removes the sign ambiguity). Edge features are the edge length, its
unit direction and the offset vector (the paper's "distance and positional
displacement"); models made before the offset was added read only the first three.
Lengths are divided by the model's `scale_nm`, so a model sees the same
numbers whatever the size of the field of view (the original code normalised each field
to [0, 1]; a fixed scale keeps that meaning and makes tiling exact).

Edges are stored directed, both ways (i→j and j→i), as a (2, E) index array whose
first row is the receiving node i and second row the sender j.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import ArpackNoConvergence, eigsh
from scipy.spatial import Delaunay, QhullError

from pointillist.core.errors import InvalidInput

N_EIGENVECTORS = 5
"""Laplacian eigenvectors used as node features (the paper's n = 5)."""
EDGE_FEATURES = 5
"""Edge feature columns: length, unit direction (2), offset (2)."""
DENSE_EIGEN_MAX_NODES = 150
"""Components up to this size are solved densely (faster than ARPACK there)."""


@dataclass(frozen=True)
class PointGraph:
    """A δ-pruned Delaunay graph with MIRO's node and edge features (float32).

    positions: (N, 2) in units of scale_nm; edge_index: (2, E) int64, rows (receiver,
    recv, sender), both directions present; node_features: (N, 5); edge_features: (E, 5) as
    (length, ux, uy, dx, dy): length and offset (dx, dy) = length · (ux, uy) in units of
    scale_nm, from sender to receiver.
    """

    positions: np.ndarray
    edge_index: np.ndarray
    node_features: np.ndarray
    edge_features: np.ndarray
    scale_nm: float

    @property
    def n_nodes(self) -> int:
        return len(self.positions)

    @property
    def n_edges(self) -> int:
        return self.edge_index.shape[1]


def delaunay_edges(points: np.ndarray, max_length: float) -> np.ndarray:
    """Undirected Delaunay edges (M, 2), i < j, no longer than `max_length` (points' units)."""
    if len(points) < 2:
        return np.zeros((0, 2), dtype=np.int64)
    if len(points) < 3:
        pairs = np.array([[0, 1]], dtype=np.int64)
    else:
        try:
            simplices = Delaunay(points).simplices
        except QhullError:  # all collinear or coincident: fall back to the sorted chain
            order = np.lexsort(points.T[::-1])
            pairs = np.stack([order[:-1], order[1:]], axis=1)
        else:
            tri = np.concatenate([simplices[:, [0, 1]], simplices[:, [1, 2]], simplices[:, [0, 2]]])
            pairs = np.unique(np.sort(tri, axis=1), axis=0)
    length = np.linalg.norm(points[pairs[:, 0]] - points[pairs[:, 1]], axis=1)
    return np.sort(pairs[length <= max_length], axis=1).astype(np.int64)


def _component_eigenvectors(laplacian: sp.csr_matrix, n_vectors: int) -> np.ndarray:
    """Eigenvectors 2..n+1 (ascending eigenvalue) of one connected component's Laplacian."""
    m = laplacian.shape[0]
    wanted = min(n_vectors + 1, m)
    if m <= DENSE_EIGEN_MAX_NODES:
        _, vectors = np.linalg.eigh(laplacian.toarray())
        return vectors[:, 1:wanted]
    try:
        values, vectors = eigsh(laplacian.tocsc(), k=wanted, sigma=-1e-3, which="LM", tol=1e-6)
    except ArpackNoConvergence as exc:
        values, vectors = exc.eigenvalues, exc.eigenvectors
    return vectors[:, np.argsort(values)][:, 1:wanted]


def laplacian_eigenvectors(
    n_nodes: int, edges: np.ndarray, n_vectors: int = N_EIGENVECTORS
) -> np.ndarray:
    """|eigenvectors| of Δ = I − D^-1/2 A D^-1/2 after the trivial ones, (N, n) float32.

    The trivial eigenvectors are Δ's kernel, one per connected component (δ-pruning
    leaves many), so any basis of it is arbitrary; each component therefore gets the
    eigenvectors 2..n+1 of its own Laplacian, which is the same thing for a connected
    graph and well defined otherwise. Isolated nodes and columns beyond a component's
    size are zero. Small components use a dense solver, large ones ARPACK in
    shift-invert mode around a small negative shift (Δ is positive semi-definite).
    """
    out = np.zeros((n_nodes, n_vectors), dtype=np.float32)
    if n_nodes < 2 or len(edges) == 0:
        return out
    rows = np.concatenate([edges[:, 0], edges[:, 1]])
    cols = np.concatenate([edges[:, 1], edges[:, 0]])
    adjacency = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_nodes, n_nodes))
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    inv_sqrt = np.where(degree > 0, 1.0 / np.sqrt(np.maximum(degree, 1e-12)), 0.0)
    d = sp.diags(inv_sqrt)
    laplacian = (sp.identity(n_nodes) - d @ adjacency @ d).tocsr()
    n_components, component = connected_components(adjacency, directed=False)
    order = np.argsort(component, kind="stable")
    bounds = np.searchsorted(component[order], np.arange(n_components + 1))
    for c in range(n_components):
        members = order[bounds[c] : bounds[c + 1]]
        if len(members) < 3:  # isolated nodes and pairs: only trivial/one-dimensional modes
            continue
        vectors = _component_eigenvectors(laplacian[members][:, members], n_vectors)
        out[members, : vectors.shape[1]] = np.abs(vectors)
    return out


def build_graph(points_nm: np.ndarray, delta_nm: float, scale_nm: float) -> PointGraph:
    """MIRO's graph of `points_nm` (N, 2): Delaunay edges ≤ delta_nm, features in scale_nm."""
    points = np.asarray(points_nm, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2 or not np.isfinite(points).all():
        raise InvalidInput("MIRO needs finite (N, 2) x, y coordinates in nm")
    if not (delta_nm > 0 and scale_nm > 0):
        raise InvalidInput(f"delta_nm and scale_nm must be > 0, got {delta_nm}, {scale_nm}")
    pairs = delaunay_edges(points, delta_nm)
    receiver = np.concatenate([pairs[:, 0], pairs[:, 1]])
    sender = np.concatenate([pairs[:, 1], pairs[:, 0]])
    offset = (points[receiver] - points[sender]) / scale_nm
    length = np.linalg.norm(offset, axis=1, keepdims=True)
    direction = offset / np.maximum(length, 1e-12)
    return PointGraph(
        positions=(points / scale_nm).astype(np.float32),
        edge_index=np.stack([receiver, sender]).astype(np.int64),
        node_features=laplacian_eigenvectors(len(points), pairs),
        edge_features=np.concatenate([length, direction, offset], axis=1).astype(np.float32),
        scale_nm=float(scale_nm),
    )
