"""ICP alignment with the mirror image, RMSD, random-cloud baseline, consensus of runs."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from pointillist.reconstructor.align import MIRROR, align, consensus, nn_rmsd, random_cloud_rmsd


@pytest.fixture(scope="module")
def asymmetric():
    rng = np.random.default_rng(4)
    body = rng.normal(0, [60, 30, 15], (80, 3))
    arm = np.column_stack([np.linspace(60, 160, 12), np.zeros(12), np.linspace(0, 50, 12)])
    return np.concatenate([body, arm])


def test_recovers_a_rigid_motion(asymmetric):
    moved = Rotation.from_rotvec([0.4, -2.0, 1.1]).apply(asymmetric) + np.array([30.0, -12.0, 7.0])
    result = align(moved, asymmetric)
    assert result.rmsd < 1e-6 and not result.mirrored
    np.testing.assert_allclose(result.aligned, asymmetric, atol=1e-6)


def test_finds_the_mirror_image(asymmetric):
    mirrored = Rotation.from_rotvec([1.0, 0.5, -0.3]).apply(asymmetric @ MIRROR)
    assert align(mirrored, asymmetric).mirrored
    assert align(mirrored, asymmetric).rmsd < 1e-6
    assert align(mirrored, asymmetric, allow_mirror=False).rmsd > 5


def test_rmsd_is_symmetric_and_punishes_collapse(asymmetric):
    assert nn_rmsd(asymmetric, asymmetric[:40]) == pytest.approx(
        nn_rmsd(asymmetric[:40], asymmetric)
    )
    collapsed = np.repeat(asymmetric[:1], 50, axis=0)
    assert nn_rmsd(collapsed, asymmetric) > 50


def test_random_cloud_baseline_is_worse_than_a_noisy_copy(asymmetric):
    noisy = asymmetric + np.random.default_rng(1).normal(0, 3, asymmetric.shape)
    base, sd = random_cloud_rmsd(asymmetric, len(asymmetric), n_clouds=3)
    assert align(noisy, asymmetric).rmsd < 0.3 * base and sd < base


def test_consensus_picks_a_central_run_and_flags_an_outlier(asymmetric):
    rng = np.random.default_rng(2)
    runs = [
        Rotation.random(rng=rng).apply(asymmetric + rng.normal(0, 2, asymmetric.shape))
        for _ in range(4)
    ]
    runs.append(rng.uniform(-100, 100, asymmetric.shape))
    result = consensus(runs, losses=[0.5, 0.3, 0.4, 0.6, 0.1])
    assert result.outliers == [4] and result.medoid != 4
    assert result.best == 1  # the lowest loss among the runs that are not outliers
    assert result.pairwise.shape == (5, 5) and np.allclose(result.pairwise, result.pairwise.T)
    assert nn_rmsd(result.aligned[0], runs[1]) < 5 and result.aligned[1] is runs[1]
