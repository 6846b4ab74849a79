"""The baseline the PC-VAE must beat: PCA on rotation-invariant per-particle features.

Each particle (n_i, dims) nm becomes the concatenation of two normalised histograms,
both unchanged by rotating or translating the particle and by its number of
localizations: the distances between pairs of its localizations and the distances of
its localizations from their mean. scikit-learn's PCA of these features gives (n, k)
components, correlated with the parameters by the same code as the latent coordinates.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.spatial.distance import pdist
from sklearn.decomposition import PCA

from pointillist.core.errors import InvalidInput, NotReady


class DistanceHistogramPCA:
    """PCA of pairwise- and radial-distance histograms of particles (lengths nm).

    n_components: PCA components kept (at most the number of particles and features).
    n_bins: bins of each histogram. max_points: random localizations per particle used
    (pairs grow as n²). seed: that subsampling. Learned: range_nm_ (pairwise histogram
    range, the 99th percentile of the particles' largest pairwise distances; the radial
    one spans half of it) and pca_.
    """

    def __init__(
        self, n_components: int = 8, n_bins: int = 32, max_points: int = 300, seed: int = 0
    ) -> None:
        self.n_components = n_components
        self.n_bins = n_bins
        self.max_points = max_points
        self.seed = seed

    def fit(self, clouds: Sequence[np.ndarray]) -> DistanceHistogramPCA:
        """Learn the histogram range and the principal components of clouds' features."""
        if len(clouds) < 2:
            raise InvalidInput("the PCA baseline needs at least 2 particles")
        points = self._subsampled(clouds)
        pairs = [pdist(p) for p in points]
        self.range_nm_ = float(np.percentile([d.max(initial=0.0) for d in pairs], 99)) or 1.0
        features = self._features(points, pairs)
        k = min(self.n_components, *features.shape)
        self.pca_ = PCA(n_components=k, random_state=self.seed).fit(features)
        return self

    def transform(self, clouds: Sequence[np.ndarray]) -> np.ndarray:
        """PCA coordinates (n, k) of clouds."""
        if not hasattr(self, "pca_"):
            raise NotReady("DistanceHistogramPCA is not fitted")
        points = self._subsampled(clouds)
        return self.pca_.transform(self._features(points, [pdist(p) for p in points]))

    def _subsampled(self, clouds: Sequence[np.ndarray]) -> list[np.ndarray]:
        """At most max_points random localizations of each cloud (seeded)."""
        rng = np.random.default_rng(self.seed)
        return [
            np.asarray(c, dtype=np.float64)[rng.permutation(len(c))[: self.max_points]]
            for c in clouds
        ]

    def _features(self, points: list[np.ndarray], pairs: list[np.ndarray]) -> np.ndarray:
        """(n, 2·n_bins): normalised pairwise then radial distance histograms."""
        pair_edges = np.linspace(0, self.range_nm_, self.n_bins + 1)
        radial_edges = pair_edges / 2
        rows = []
        for cloud, distances in zip(points, pairs, strict=True):
            radial = np.linalg.norm(cloud - cloud.mean(axis=0), axis=1)
            rows.append(
                np.concatenate(
                    [_normalised(distances, pair_edges), _normalised(radial, radial_edges)]
                )
            )
        return np.stack(rows)


def pca_baseline(
    clouds: Sequence[np.ndarray], n_components: int = 8, n_bins: int = 32, seed: int = 0
) -> np.ndarray:
    """One-shot `DistanceHistogramPCA(...).fit(clouds).transform(clouds)`: (n, k)."""
    model = DistanceHistogramPCA(n_components=n_components, n_bins=n_bins, seed=seed)
    return model.fit(clouds).transform(clouds)


def _normalised(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Histogram of values over edges (values beyond the last edge go in the last bin),
    summing to 1 (all zeros for no values)."""
    counts, _ = np.histogram(np.minimum(values, edges[-1]), bins=edges)
    return counts / max(counts.sum(), 1)
