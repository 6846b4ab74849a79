import numpy as np
import pytest

from pointillist.core.errors import NotReady
from pointillist.localizer.cnn_decode import CNNLocalizer, OutputMaps, decode_maps


def _maps(p: np.ndarray, dx: np.ndarray, dy: np.ndarray) -> OutputMaps:
    zeros = np.zeros_like(p)
    return OutputMaps(
        p=p,
        dx_px=dx,
        dy_px=dy,
        z_nm=zeros + 120.0,
        photons=zeros + 2000.0,
        background=zeros + 50.0,
        sigma_x_px=zeros + 0.1,
        sigma_y_px=zeros + 0.2,
        sigma_z_nm=zeros + 30.0,
        sigma_photons=zeros + 100.0,
    )


def test_spread_probability_becomes_one_emitter_at_subpixel_position() -> None:
    p = np.full((2, 10, 12), 0.01)
    dx, dy = np.zeros_like(p), np.zeros_like(p)
    # frame 1: an emitter in pixel (row 3, col 7), mass shared with its right neighbour
    p[1, 3, 7], p[1, 3, 8] = 0.45, 0.35
    dx[1, 3, 7], dy[1, 3, 7] = 0.4, -0.25
    table = decode_maps(_maps(p, dx, dy), 100.0, threshold=0.5, first_frame=5)
    assert len(table) == 1
    assert table["frame"][0] == 6
    assert table["x"][0] == pytest.approx((7 + 0.5 + 0.4) * 100)
    assert table["y"][0] == pytest.approx((3 + 0.5 - 0.25) * 100)
    assert table["p"][0] == pytest.approx(min(1.0, 0.45 + 0.35 + 3 * 0.01), abs=1e-6)
    assert table["z"][0] == pytest.approx(120.0)
    assert table["uncertainty_x"][0] == pytest.approx(10.0)
    assert table["uncertainty"][0] == pytest.approx(np.sqrt((10.0**2 + 20.0**2) / 2), rel=1e-5)


def test_confident_neighbours_split_and_weak_maxima_drop() -> None:
    p = np.full((1, 8, 8), 0.0)
    p[0, 2, 2], p[0, 2, 3] = 0.9, 0.8  # two emitters in adjacent pixels
    p[0, 6, 6] = 0.3  # a weak blob below threshold
    table = decode_maps(_maps(p, np.zeros_like(p), np.zeros_like(p)), 100.0, three_d=False)
    assert sorted(table["x"].tolist()) == [250.0, 350.0]
    assert "z" not in table


def test_localizer_needs_weights() -> None:
    with pytest.raises(NotReady):
        CNNLocalizer().localize(np.zeros((1, 8, 8)))
