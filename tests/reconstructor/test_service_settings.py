"""The reconstructor service's pure helpers: options, per-run settings and ground truth from
a RunSpec, checkpoint compatibility, progress and result messages."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from pointillist.core import runspec
from pointillist.core.bus.codec import batch_columns
from pointillist.core.config import ConfigError, ServiceConfig
from pointillist.core.errors import InvalidInput
from pointillist.core.particles import Skipped
from pointillist.core.table import LocalizationTable
from pointillist.reconstructor.__main__ import ReconstructorServiceConfig
from pointillist.reconstructor.engine import ReconstructState, Settings, spec_truth
from pointillist.reconstructor.service import (
    checkpoint_mismatch,
    checkpoint_name,
    columns_proto,
    epoch_proto,
    epochs_done,
    run_settings,
    skipped_text,
    state_bytes,
    state_from_bytes,
    truth_from_proto,
)
from pointillist.reconstructor.training import ReconConfig
from pointillist.simulator.projections import ProjectionSimConfig, simulate_projections


def test_options_are_validated_and_documented():
    config = ReconstructorServiceConfig(recon_params="{epochs: 3, n_runs: 2, n_points: 50}")
    settings = config.defaults("cpu")
    assert settings.config.epochs == 3 and settings.config.device == "cpu"
    assert settings.n_runs == 2 and settings.config.n_points == 50
    with pytest.raises(ConfigError, match=r"--recon-params.*unknown reconstructor parameter"):
        ReconstructorServiceConfig(recon_params="{epoch: 3}")
    with pytest.raises(ConfigError, match="n_runs must be in"):
        ReconstructorServiceConfig(recon_params="{n_runs: 0}")
    with pytest.raises(ConfigError, match="image_px must be a positive multiple of 32"):
        ReconstructorServiceConfig(recon_params="{image_px: 40}")
    for name in ("recon_idle_timeout_s", "recon_cancel_poll_s"):
        with pytest.raises(ConfigError, match=f"--{name.replace('_', '-')}"):
            ReconstructorServiceConfig(**{name: 0})
    doc = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    base = {o.flag for o in ServiceConfig.options()}
    for opt in ReconstructorServiceConfig.options():
        if opt.flag not in base:
            assert f"`{opt.flag}`" in doc and f"`{opt.env_var}`" in doc and opt.help in doc


def test_run_settings_come_from_the_reconstruct_step():
    defaults = Settings()
    spec = runspec.load_yaml(
        "steps: [{name: reconstruct, params: {epochs: 2.0, n_runs: 3, sigma_end_nm: 8}}]"
    )
    settings = run_settings(spec, defaults)
    assert settings.config.epochs == 2 and settings.n_runs == 3
    assert settings.config.sigma_end_nm == 8 and settings.config.n_points == 250
    assert run_settings(runspec.load_yaml("steps: [{name: vae}]"), defaults) is None
    assert run_settings(runspec.load_yaml("name: plain"), defaults) is defaults
    with pytest.raises(InvalidInput, match="epochz"):
        run_settings(
            runspec.load_yaml("steps: [{name: reconstruct, params: {epochz: 2}}]"), defaults
        )


def test_spec_truth_regenerates_a_simulated_projection_model():
    spec = runspec.load_yaml(
        "source: {simulation: {kind: projections, params: {n_views: 5, n_points: 40}, seed: 7}}"
    )
    expected = simulate_projections(ProjectionSimConfig(n_views=5, n_points=40), 7).model_nm
    np.testing.assert_allclose(spec_truth(spec), expected)
    assert spec_truth(runspec.load_yaml("source: {simulation: {kind: particles}}")) is None
    assert spec_truth(runspec.load_yaml("source: {file: a.csv}")) is None
    assert spec_truth(None) is None


def _state(config: ReconConfig, finished: int, epoch: int | None) -> ReconstructState:
    def cfg(run: int) -> dict:
        return dataclasses.asdict(dataclasses.replace(config, seed=config.seed + run))

    trainer = None if epoch is None else {"config": cfg(finished), "epoch": epoch}
    return ReconstructState([{"config": cfg(r)} for r in range(finished)], trainer)


def test_a_checkpoint_resumes_only_the_same_settings():
    config = ReconConfig(n_points=30, epochs=5, seed=3, device="cpu")
    settings = Settings(config, n_runs=3)
    state = _state(config, finished=1, epoch=2)
    assert checkpoint_mismatch(state, settings) is None
    assert epochs_done(state, settings) == 7 and epochs_done(ReconstructState(), settings) == 0
    # the device and the time limit may change
    other_device = Settings(dataclasses.replace(config, device="cuda", max_minutes=5), 3)
    assert checkpoint_mismatch(state, other_device) is None
    bigger = Settings(dataclasses.replace(config, n_points=40, lr=0.01), 3)
    assert "['lr', 'n_points']" in checkpoint_mismatch(state, bigger)
    assert "seed" in checkpoint_mismatch(state, Settings(dataclasses.replace(config, seed=4), 3))
    assert "n_runs is 1" in checkpoint_mismatch(_state(config, 2, None), Settings(config, 1))
    assert checkpoint_mismatch(_state(config, 3, None), settings) is None  # all runs finished
    assert checkpoint_name("r1") == "recon/r1/checkpoint.pt"


def test_checkpoint_bytes_round_trip():
    state = ReconstructState([], {"epoch": 1, "history": [{"loss": 0.5}]})
    again = state_from_bytes(state_bytes(state))
    assert again.finished == [] and again.trainer == state.trainer


def test_epoch_message_counts_epochs_over_all_runs():
    settings = Settings(ReconConfig(epochs=4), n_runs=3)
    record = {
        "epoch": 2.0,
        "loss": 0.4,
        "sigma_in_nm": 30.0,
        "sigma_out_nm": 25.0,
        "images": 64.0,
        "seconds": 2.0,
    }
    e = epoch_proto(1, record, settings)
    assert (e.run, e.runs, e.epoch, e.epochs, e.done, e.total) == (1, 3, 2, 4, 6, 12)
    assert e.images == 64 and e.images_per_s == 32.0 and e.loss == pytest.approx(0.4)


def test_truth_from_a_request():
    assert truth_from_proto(LocalizationTable().to_proto()) is None
    xyz = {"x": [0.0, 1.0, 2.0], "y": [0.0, 1.0, 0.0], "z": [1.0, 0.0, 0.0]}
    truth = truth_from_proto(LocalizationTable(xyz).to_proto())
    assert truth.shape == (3, 3) and truth.dtype == np.float64
    with pytest.raises(InvalidInput, match="x, y and z"):
        truth_from_proto(LocalizationTable({"x": [0.0], "y": [0.0]}).to_proto())
    with pytest.raises(InvalidInput, match="at least 3 points"):
        truth_from_proto(LocalizationTable({k: v[:2] for k, v in xyz.items()}).to_proto())


def test_pose_columns_round_trip():
    poses = {"particle": np.arange(3), "rx": np.array([0.1, 0.2, 0.3]), "tx_nm": np.zeros(3)}
    columns = columns_proto(poses)
    assert [c.unit for c in columns] == ["", "rad", "nm"]
    back = {name: arr for name, _, _, arr in batch_columns(columns, 3)}
    for name, values in poses.items():
        np.testing.assert_array_equal(back[name], values)


def test_skipped_text_names_a_few_and_counts_all():
    skipped = [Skipped(i, "2 localizations (< 3)") for i in range(25)]
    text = skipped_text(skipped)
    assert text.startswith("25 view(s) skipped: 0 (2 localizations (< 3))")
    assert text.endswith("and 5 more")
