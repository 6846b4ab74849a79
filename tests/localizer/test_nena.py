import numpy as np
import pytest

from pointillist.core.errors import InvalidInput
from pointillist.core.table import LocalizationTable
from pointillist.localizer.nena import adjacent_frame_distances, estimate_nena
from pointillist.simulator.photophysics import BlinkingConfig, simulate_blinking


def blinking_localizations(
    precision_nm: float, n_emitters: int, seed: int, fov_nm: float = 20_000.0
) -> LocalizationTable:
    """Emitters at random places, dSTORM-like blinking over 2000 frames, each
    localization off by a Gaussian error of ``precision_nm`` per axis."""
    rng = np.random.default_rng(seed)
    pos = rng.uniform(0, fov_nm, (n_emitters, 2))
    trace = simulate_blinking(
        n_emitters, 2000, BlinkingConfig(t_on_frames=3, t_off_frames=200), rng
    )
    xy = pos[trace.emitter] + rng.normal(0, precision_nm, (len(trace.emitter), 2))
    return LocalizationTable({"x": xy[:, 0], "y": xy[:, 1], "frame": trace.frame})


@pytest.mark.parametrize("precision_nm", [10.0, 25.0])
def test_nena_recovers_the_localization_precision(precision_nm):
    result = estimate_nena(blinking_localizations(precision_nm, 3000, seed=int(precision_nm)))
    assert result.sigma_nm == pytest.approx(precision_nm, rel=0.10)
    assert result.sigma_error_nm < 0.05 * precision_nm
    assert result.n_pairs > 1000
    assert result.correlated_fraction > 0.5
    assert result.model.shape == result.density.shape == result.bin_centers_nm.shape


def test_nena_with_many_unrelated_neighbours():
    # ~2 emitters on per µm² per frame: random next-frame neighbours within 200 nm are
    # common; the linear background term keeps the estimate on target.
    table = blinking_localizations(15.0, 2200, seed=7, fov_nm=4_000.0)
    result = estimate_nena(table)
    assert result.sigma_nm == pytest.approx(15.0, rel=0.10)
    assert result.correlated_fraction < 0.95


def test_distances_only_to_the_next_frame():
    t = LocalizationTable(
        {
            "x": [0.0, 3.0, 1.0, 50.0, 0.0],
            "y": [0.0, 4.0, 0.0, 0.0, 0.0],
            "frame": [0, 1, 3, 4, 9],
        }
    )
    # 0→1: 5 nm; 1→(frame 2 empty): none; 3→4: 49 nm; 4→(5 empty): none; 9: none.
    np.testing.assert_allclose(np.sort(adjacent_frame_distances(t, 100.0)), [5.0, 49.0])
    np.testing.assert_allclose(adjacent_frame_distances(t, 10.0), [5.0])


def test_bad_inputs():
    with pytest.raises(InvalidInput, match="frame"):
        estimate_nena(LocalizationTable({"x": [0.0], "y": [0.0]}))
    with pytest.raises(InvalidInput, match="at least"):
        estimate_nena(LocalizationTable({"x": [0.0, 1.0], "y": [0.0, 0.0], "frame": [0, 1]}))
    with pytest.raises(InvalidInput, match="max_distance"):
        adjacent_frame_distances(LocalizationTable({"x": [0.0], "y": [0.0], "frame": [0]}), 0)
