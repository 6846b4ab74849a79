import math

import numpy as np
import pytest

from pointillist.core.errors import InvalidInput
from pointillist.core.table import LocalizationTable
from pointillist.localizer.evaluation import efficiency, evaluate, match


def table(x, y, frame=None, z=None) -> LocalizationTable:
    cols = {"x": x, "y": y}
    if frame is not None:
        cols["frame"] = frame
    if z is not None:
        cols["z"] = z
    return LocalizationTable(cols)


def test_perfect_prediction_scores_one():
    truth = table([100.0, 900.0, 400.0], [100.0, 200.0, 700.0], [0, 0, 1], [0.0, 50.0, -80.0])
    ev = evaluate(truth, truth)
    assert (ev.tp, ev.fp, ev.fn) == (3, 0, 0)
    assert ev.jaccard == 1.0 and ev.jaccard_percent == 100.0
    assert ev.rmse_lateral_nm == 0.0 and ev.rmse_axial_nm == 0.0
    assert ev.efficiency_lateral == 1.0 and ev.efficiency_axial == 1.0
    np.testing.assert_array_equal(ev.pred_index, [0, 1, 2])
    np.testing.assert_array_equal(ev.true_index, [0, 1, 2])


def test_one_false_positive_and_one_false_negative():
    truth = table([0.0, 1000.0], [0.0, 0.0], [0, 0])
    pred_fp = table([3.0, 1004.0, 5000.0], [4.0, 3.0, 5000.0], [0, 0, 0])
    ev = evaluate(pred_fp, truth)
    assert (ev.tp, ev.fp, ev.fn) == (2, 1, 0)
    assert ev.jaccard == pytest.approx(2 / 3)
    assert ev.rmse_lateral_nm == pytest.approx(5.0)
    assert ev.precision == pytest.approx(2 / 3) and ev.recall == 1.0

    ev = evaluate(table([3.0], [4.0], [0]), truth)
    assert (ev.tp, ev.fp, ev.fn) == (1, 0, 1)
    assert ev.jaccard == 0.5
    np.testing.assert_array_equal(ev.true_index, [0])


def test_lateral_tolerance_249_matches_251_does_not():
    truth = table([0.0], [0.0], [0])
    assert evaluate(table([249.0], [0.0], [0]), truth).tp == 1
    assert evaluate(table([0.0], [251.0], [0]), truth).tp == 0
    # Diagonal: 180² + 180² → 254.6 nm, beyond the lateral tolerance.
    assert evaluate(table([180.0], [180.0], [0]), truth).tp == 0


def test_axial_tolerance_applies_only_in_3d():
    truth = table([0.0], [0.0], [0], z=[0.0])
    assert evaluate(table([10.0], [0.0], [0], z=[499.0]), truth).tp == 1
    ev = evaluate(table([10.0], [0.0], [0], z=[501.0]), truth)
    assert (ev.tp, ev.fp, ev.fn) == (0, 1, 1)
    # The same pair evaluated laterally only is a match.
    ev2d = evaluate(table([10.0], [0.0], [0], z=[501.0]), truth, use_z=False)
    assert ev2d.tp == 1 and math.isnan(ev2d.rmse_axial_nm)


def test_axial_and_volumetric_rmse_and_bias():
    truth = table([0.0, 1000.0], [0.0, 0.0], [0, 0], z=[0.0, 0.0])
    pred = table([3.0, 1003.0], [4.0, 4.0], [0, 0], z=[12.0, -12.0])
    ev = evaluate(pred, truth)
    assert ev.rmse_lateral_nm == pytest.approx(5.0)
    assert ev.rmse_axial_nm == pytest.approx(12.0)
    assert ev.rmse_volumetric_nm == pytest.approx(13.0)
    assert (ev.bias_x_nm, ev.bias_y_nm, ev.bias_z_nm) == pytest.approx((3.0, 4.0, 0.0))


def test_competing_candidates_get_the_optimal_assignment():
    # Greedy nearest-first would pair p0–t1 (10 nm) and leave t0 unmatched (p1 is 300 nm
    # from t0); the optimal assignment pairs p0–t0 and p1–t1.
    truth = table([0.0, 200.0], [0.0, 0.0], [0, 0])
    pred = table([190.0, 300.0], [0.0, 0.0], [0, 0])
    ev = evaluate(pred, truth)
    assert ev.tp == 2
    np.testing.assert_array_equal(ev.pred_index, [0, 1])
    np.testing.assert_array_equal(ev.true_index, [0, 1])


def test_two_candidates_for_one_truth_keep_the_nearer():
    truth = table([0.0], [0.0], [0])
    pred = table([40.0, 15.0], [0.0, 0.0], [0, 0])
    ev = evaluate(pred, truth)
    assert (ev.tp, ev.fp, ev.fn) == (1, 1, 0)
    np.testing.assert_array_equal(ev.pred_index, [1])
    assert ev.rmse_lateral_nm == pytest.approx(15.0)


def test_frames_do_not_mix():
    truth = table([0.0, 0.0], [0.0, 0.0], [0, 7])
    pred = table([1.0, 1.0], [0.0, 0.0], [1, 6])
    ev = evaluate(pred, truth)
    assert (ev.tp, ev.fp, ev.fn) == (0, 2, 2)
    assert ev.efficiency_lateral == 0.0
    assert math.isnan(ev.rmse_lateral_nm)


def test_many_frames_match_like_frame_by_frame():
    rng = np.random.default_rng(0)
    n_frames, per_frame = 40, 30
    frame = np.repeat(np.arange(n_frames), per_frame)
    tx, ty = rng.uniform(0, 3000, (2, frame.size))
    keep = rng.random(frame.size) < 0.8
    px = np.concatenate([tx[keep] + rng.normal(0, 60, keep.sum()), rng.uniform(0, 3000, 200)])
    py = np.concatenate([ty[keep] + rng.normal(0, 60, keep.sum()), rng.uniform(0, 3000, 200)])
    pf = np.concatenate([frame[keep], rng.integers(0, n_frames, 200)])
    ev = evaluate(table(px, py, pf), table(tx, ty, frame))
    assert np.all(pf[ev.pred_index] == frame[ev.true_index])
    tp_per_frame = 0
    for f in range(n_frames):
        sp, st = np.flatnonzero(pf == f), np.flatnonzero(frame == f)
        a, _ = match(
            np.column_stack([px[sp], py[sp]]), pf[sp], np.column_stack([tx[st], ty[st]]), frame[st]
        )
        tp_per_frame += len(a)
    assert ev.tp == tp_per_frame
    assert len(np.unique(ev.pred_index)) == ev.tp == len(np.unique(ev.true_index))
    d = np.hypot(px[ev.pred_index] - tx[ev.true_index], py[ev.pred_index] - ty[ev.true_index])
    assert d.max() <= 250.0


def test_empty_inputs():
    truth = table([0.0, 500.0], [0.0, 0.0], [0, 0])
    empty = table(np.zeros(0), np.zeros(0), np.zeros(0, int))
    ev = evaluate(empty, truth)
    assert (ev.tp, ev.fp, ev.fn, ev.jaccard, ev.efficiency_lateral) == (0, 0, 2, 0.0, 0.0)
    ev = evaluate(truth, empty)
    assert (ev.tp, ev.fp, ev.fn, ev.jaccard) == (0, 2, 0, 0.0)
    ev = evaluate(empty, empty)
    assert ev.tp == 0 and math.isnan(ev.jaccard) and math.isnan(ev.efficiency_lateral)


def test_efficiency_by_hand():
    # 3 truths, 4 predictions, 3 matched with lateral errors (30, 40) and (0, 0) and (0, 50);
    # axial errors 100, 0, 0.
    truth = table([0.0, 1000.0, 2000.0], [0.0, 0.0, 0.0], [0, 0, 0], [0.0, 0.0, 0.0])
    pred = table(
        [30.0, 1000.0, 2000.0, 9000.0], [40.0, 0.0, 50.0, 0.0], [0, 0, 0, 0], [100.0, 0, 0, 0]
    )
    ev = evaluate(pred, truth)
    ji = 3 / 4
    rmse_lat = math.sqrt((50**2 + 0 + 50**2) / 3)
    rmse_ax = math.sqrt(100**2 / 3)
    e_lat = 1 - math.sqrt((1 - ji) ** 2 + (0.01 * rmse_lat) ** 2)
    e_ax = 1 - math.sqrt((1 - ji) ** 2 + (0.005 * rmse_ax) ** 2)
    assert ev.jaccard == pytest.approx(ji)
    assert ev.rmse_lateral_nm == pytest.approx(rmse_lat)
    assert ev.efficiency_lateral == pytest.approx(e_lat)
    assert ev.efficiency_axial == pytest.approx(e_ax)
    assert ev.efficiency_lateral_percent == pytest.approx(100 * e_lat)
    assert ev.efficiency_3d == pytest.approx((e_lat + e_ax) / 2)
    assert efficiency(0.5, 100.0, 0.01) == pytest.approx(1 - math.sqrt(0.25 + 1.0))
    assert ev.summary()["tp"] == 3


def test_bad_inputs_are_rejected():
    truth = table([0.0], [0.0], [0])
    with pytest.raises(InvalidInput, match="frame"):
        evaluate(table([0.0], [0.0]), truth)
    with pytest.raises(InvalidInput, match="column"):
        evaluate({"x": np.zeros(1), "frame": np.zeros(1, int)}, truth)
    with pytest.raises(InvalidInput, match="tolerance"):
        evaluate(truth, truth, lateral_tolerance_nm=0)
