import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from pointillist.core.errors import InvalidInput
from pointillist.localizer.cnn_decode import CNNLocalizer
from pointillist.localizer.presets import get_preset
from pointillist.localizer.train_cli import localizer
from pointillist.localizer.training import TrainConfig, simulate_batch


@pytest.mark.parametrize("sampling", ["csr", "structure"])
def test_simulated_batches_match_the_preset(sampling: str) -> None:
    rng = np.random.default_rng(0)
    flat = simulate_batch(get_preset("2d"), sampling, 3, rng, density_per_um2=1.0)
    deep = simulate_batch(get_preset("astig3d"), sampling, 3, rng, density_per_um2=1.0)
    for batch in (flat, deep):
        assert batch.frames.shape == (3, 3, 40, 40) and batch.frames.dtype == np.float32
        assert batch.targets.shape[:2] == batch.mask.shape
        rows = batch.targets[batch.mask]
        assert np.all((rows[:, :2] >= 0) & (rows[:, :2] < 40))
        assert np.all(rows[:, 3] > 0)
        # the background in photons comes back from the camera counts
        median = np.median(batch.frames, axis=(1, 2, 3))
        assert np.all((median > 0.85 * batch.background) & (median < 1.6 * batch.background))
    assert np.all(flat.targets[flat.mask][:, 2] == 0)
    z = deep.targets[deep.mask][:, 2]
    assert np.all(np.abs(z) <= 500) and np.ptp(z) > 200


def test_density_sets_the_emitter_count() -> None:
    rng = np.random.default_rng(1)
    preset = get_preset("2d")
    sparse = simulate_batch(preset, "csr", 8, rng, density_per_um2=0.25).mask.sum()
    dense = simulate_batch(preset, "csr", 8, rng, density_per_um2=2.0).mask.sum()
    # 16 µm² patches: ~4 and ~32 emitters each
    assert 10 < sparse < 60 and 180 < dense < 340


def test_bad_settings_are_refused() -> None:
    with pytest.raises(InvalidInput):
        simulate_batch(get_preset("2d"), "random", 1, np.random.default_rng(0))
    with pytest.raises(InvalidInput):
        TrainConfig()


def test_train_command_writes_weights_and_resumable_checkpoint(tmp_path) -> None:
    out = tmp_path / "new" / "tiny.pt"
    args = ["train", "--preset", "astig3d", "--sampling", "structure", "--steps", "2"]
    args += ["--channels", "4", "--batch-size", "2", "--validation-size", "2"]
    args += ["--checkpoint-every", "1", "--device", "cpu", "-o", str(out)]
    result = CliRunner().invoke(localizer, args)
    assert result.exit_code == 0, result.output
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["preset"] == "astig3d" and meta["sampling"] == "structure"
    assert meta["steps"] == 2 and meta["channels"] == 4
    assert set(meta["validation"]) >= {"jaccard", "rmse_lateral_nm"}
    for path in (out, out.with_suffix(".ckpt")):
        loaded = CNNLocalizer.load(path, device="cpu")
        assert loaded.preset_.name == "astig3d"
        maps = loaded.predict_maps(np.full((2, 12, 12), 30.0))
        assert maps.p.shape == (2, 12, 12)
    resumed = CliRunner().invoke(localizer, [*args[:6], "3", *args[7:], "--resume"])
    assert resumed.exit_code == 0, resumed.output
    state = torch.load(out.with_suffix(".ckpt"), weights_only=False)
    assert state["meta"]["steps"] == 3 and len(state["history"]) >= 3


def test_train_command_needs_a_budget(tmp_path) -> None:
    result = CliRunner().invoke(
        localizer, ["train", "--preset", "2d", "-o", str(tmp_path / "w.pt")]
    )
    assert result.exit_code == 2 and "budget" in result.output


def test_fine_tuning_starts_from_weights_and_records_the_parent(tmp_path) -> None:
    base = tmp_path / "base.pt"
    args = ["train", "--preset", "2d", "--steps", "2", "--channels", "4", "--batch-size", "2"]
    args += ["--validation-size", "2", "--device", "cpu"]
    assert CliRunner().invoke(localizer, [*args, "-o", str(base)]).exit_code == 0
    tuned = tmp_path / "tuned.pt"
    result = CliRunner().invoke(localizer, [*args, "--init-from", str(base), "-o", str(tuned)])
    assert result.exit_code == 0, result.output
    meta = json.loads(tuned.with_suffix(".json").read_text())
    assert meta["steps"] == 2 and meta["total_steps"] == 4
    assert meta["init"]["path"] == str(base) and meta["init"]["steps"] == 2
    # with a zero learning rate the fine-tuned network is the parent network
    frozen = tmp_path / "frozen.pt"
    same = [*args, "--lr", "0", "--init-from", str(base), "-o", str(frozen)]
    assert CliRunner().invoke(localizer, same).exit_code == 0
    before = torch.load(base, weights_only=False)["model"]
    after = torch.load(frozen, weights_only=False)["model"]
    assert all(torch.equal(before[k], after[k]) for k in before)
    # another preset's weights are refused with a clear message
    other = ["train", "--preset", "astig3d", "--steps", "1", "--init-from", str(base)]
    refused = CliRunner().invoke(localizer, [*other, "-o", str(tmp_path / "x.pt")])
    assert refused.exit_code == 2 and "preset '2d'" in refused.output
