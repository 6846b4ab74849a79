"""`pointillist clusterer train miro`: a tiny real training, a continued one, a refused one."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from pointillist.clusterer.miro import training
from pointillist.clusterer.miro.clusterer import load_model
from pointillist.clusterer.miro.train_cli import train_miro_command


@pytest.fixture
def untuned(monkeypatch):
    """Skip the post-training DBSCAN grid search (tested with `train_miro`): it dominates
    the run time of a 3-step training and is not what these tests pin."""

    def record_only(trained, fields, metric="ari"):
        trained.history["post_dbscan"] = {"metric": metric, "score": 0.0}

    monkeypatch.setattr(training, "tune_post_dbscan", record_only)


def test_train_continue_and_refuse_another_presets_model(tmp_path, untuned):
    first, second = tmp_path / "first.pt", tmp_path / "second.pt"
    common = ["--scenario", "npc_multiscale", "--minutes", "2", "--batch-fields", "1"]
    tuned = ["--huber-nm", "20", "--min-inside", "0.9", "--background-curriculum", "0.5"]
    result = CliRunner().invoke(
        train_miro_command, [*common, *tuned, "--max-steps", "3", "-o", first]
    )
    assert result.exit_code == 0, result.output
    assert "3 steps" in result.output
    saved = json.loads(first.with_suffix(".json").read_text())
    assert saved["history"]["settings"]["huber_nm"] == 20
    assert saved["augment"]["min_inside_fraction"] == 0.9
    assert saved["history"]["settings"]["background_curriculum"] == 0.5
    assert saved["augment"]["background_keep"] == 1.0  # inference-time windows are whole
    result = CliRunner().invoke(
        train_miro_command, [*common, "--max-steps", "2", "--init", first, "-o", second]
    )
    assert result.exit_code == 0, result.output
    history = json.loads(second.with_suffix(".json").read_text())["history"]
    assert history["steps"] == 2 and history["total_steps"] == 5
    assert history["initialised_from"] == str(first)
    assert history["total_training_minutes"] > history["training_minutes"] > 0
    assert load_model(second).preset.name == "npc_multiscale"

    result = CliRunner().invoke(
        train_miro_command,
        ["--scenario", "c_shape", "--max-steps", "1", "--init", first, "-o", tmp_path / "c.pt"],
    )
    assert result.exit_code != 0
    assert "is for npc_multiscale, not c_shape" in result.output
