"""`pointillist vae train|analyze` and the ``vae`` step of `pointillist run`, end to end."""

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from pointillist.cli import main
from pointillist.core import runspec
from pointillist.core.errors import InvalidInput
from pointillist.core.io import read_csv_table, write_table
from pointillist.core.particles import particles_from_arrays
from pointillist.core.table import LocalizationTable
from pointillist.pipeline import run_pipeline
from pointillist.simulator.particles import ParticleSimConfig, simulate_particles
from pointillist.vae.engine import kind_dims, latent_table, vae_config


@pytest.fixture(scope="module")
def particles_csv(tmp_path_factory):
    """30 simulated 2D NPCs plus a particle with 2 localizations, as a plain CSV."""
    sim = simulate_particles(
        ParticleSimConfig(kind="npc2d", n_particles=30, localizations_per_site=5), 4
    )
    table = sim.localizations
    cols = {
        c: np.concatenate([table[c], [0.0, 1.0] if c in "xy" else [99, 99]])
        for c in ("x", "y", "particle")
    }
    path = tmp_path_factory.mktemp("particles") / "particles.csv"
    write_table(LocalizationTable(cols), path)
    return path


def invoke(*args):
    return CliRunner().invoke(main, ["vae", *map(str, args)], catch_exceptions=False)


def test_train_then_analyze_writes_model_history_report_and_latent_table(particles_csv, tmp_path):
    model = tmp_path / "m.pt"
    result = invoke("train", particles_csv, "-o", model, "--epochs", 2, "--latent-dim", 4)
    assert result.exit_code == 0, result.output
    assert "skipped 1 particle(s): 99:" in result.output and model.stat().st_size > 0
    assert (tmp_path / "m.history.json").read_text().count('"epoch"') == 2

    out = tmp_path / "report"
    result = invoke(
        "analyze", particles_csv, "--model", model, "-o", out, "--kind", "npc2d", "--bins", 5
    )
    assert result.exit_code == 0, result.output
    assert "radius_nm: latent_" in result.output and "PCA baseline" in result.output
    assert (out / "report.html").exists() and (out / "scatter.png").stat().st_size > 10_000
    latent = pd.read_csv(out / "latent.csv")
    assert len(latent) == 30 and {"latent_0", "latent_3", "radius_nm"} <= set(latent.columns)
    assert "ic_0" not in latent.columns
    ica = tmp_path / "ica"
    args = ["analyze", particles_csv, "--model", model, "-o", ica, "--kind", "npc2d"]
    result = invoke(*args, "--bins", 5, "--axes", "independent")
    assert result.exit_code == 0 and "radius_nm: ic_" in result.output
    assert "ic_0" in pd.read_csv(ica / "latent.csv").columns


def test_cli_errors_are_clear(particles_csv, tmp_path):
    result = CliRunner().invoke(
        main, ["vae", "train", str(particles_csv), "-o", str(tmp_path / "m.pt"), "-p", "epochz=2"]
    )
    assert result.exit_code != 0 and "unknown VAE parameter(s) ['epochz']" in result.output


def test_vae_config_and_latent_table():
    assert vae_config({"epochs": 3}).epochs == 3
    assert (kind_dims("npc2d"), kind_dims("tetrahedron"), kind_dims(None)) == (2, 3, None)
    with pytest.raises(InvalidInput, match="unknown VAE parameter"):
        vae_config({"nope": 1})
    particles = particles_from_arrays([np.array([[0.0, 0, 1], [2, 0, 1], [0, 2, 1]])], ids=[7])
    table = latent_table(particles, np.array([[0.5, -0.5]]), {"radius_nm": np.array([1.0])})
    assert table.columns == ["x", "y", "z", "particle", "latent_0", "latent_1", "radius_nm"]
    np.testing.assert_allclose([table["x"][0], table["y"][0], table["z"][0]], [2 / 3, 2 / 3, 1])


def test_pipeline_simulated_particles_to_vae_step(tmp_path):
    spec = runspec.load_yaml("""
source: {simulation: {kind: particles, seed: 3,
         params: {kind: npc2d, n_particles: 24, localizations_per_site: 4, radius_spread_nm: 8}}}
steps:
  - {name: vae, params: {epochs: 1, latent_dim: 4, n_bins: 4}}
""")
    status = run_pipeline(spec, tmp_path)
    assert status.counters["embedded_particles"] == 24
    latent = read_csv_table(tmp_path / "latent.csv")
    assert {"latent_0", "latent_3", "radius_nm", "true_radius_nm"} <= set(latent.columns)
    report = (tmp_path / "report.md").read_text()
    assert "PC-VAE: 24 particles" in report and "vae/report.html" in report
    assert "true parameter" in report and (tmp_path / "vae" / "report.html").exists()
    assert (tmp_path / "vae-model.pt").exists()
