"""write_report(): figures, Markdown/HTML with the correlation tables, latent.csv."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.image import imread

from pointillist.simulator.particles import ParticleSimConfig, simulate_particles
from pointillist.vae.analysis import analyze
from pointillist.vae.registration import RegistrationConfig
from pointillist.vae.report import write_report

FAST = RegistrationConfig(em_iterations=5, search_rounds=1)


def clouds_and_truth(kind: str, n: int) -> tuple[list[np.ndarray], dict]:
    config = ParticleSimConfig(kind=kind, n_particles=n, dol=0.9, localizations_per_site=12)
    sim = simulate_particles(config, seed=8)
    columns = ["x", "y", "z"] if kind != "npc2d" else ["x", "y"]
    points = np.column_stack([sim.localizations[c] for c in columns]).astype(np.float64)
    particle = sim.localizations["particle"]
    keep = [i for i in range(n) if (particle == i).sum() >= 3]
    return [points[particle == i] for i in keep], {k: v[keep] for k, v in sim.truth.items()}


def test_2d_report_has_figures_tables_and_latent_csv(tmp_path):
    clouds, truth = clouds_and_truth("npc2d", 40)
    latent = np.column_stack(
        [truth["radius_nm"], np.random.default_rng(0).normal(size=len(clouds))]
    )
    analysis = analyze(
        clouds, latent, kind="npc2d", n_bins=5, registration=FAST, axes="independent"
    )
    index = write_report(analysis, tmp_path / "report")
    assert index == tmp_path / "report" / "report.md"
    names = {p.name for p in index.parent.iterdir()}
    for figure in ("super_particles_top", "bins_radius_nm", "violins_radius_nm", "scatter"):
        assert f"{figure}.png" in names
        assert imread(index.parent / f"{figure}.png").shape[0] > 100
    assert "super_particles_side.png" not in names
    markdown = index.read_text()
    assert "| radius_nm | ic_" in markdown  # best axis table (independent axes)
    assert "independent axes" in markdown and "pca_ic_0" in markdown and "![" in markdown
    assert "<table" in (index.parent / "report.html").read_text()
    table = pd.read_csv(index.parent / "latent.csv")
    assert list(table.columns[:4]) == ["particle", "latent_0", "latent_1", "ic_0"]
    assert len(table) == len(clouds)
    np.testing.assert_allclose(table["radius_nm"], analysis.parameters["radius_nm"])


def test_3d_report_adds_side_views(tmp_path):
    clouds, truth = clouds_and_truth("tetrahedron", 24)
    latent = np.column_stack([truth["height_nm"], -truth["height_nm"]])
    analysis = analyze(clouds, latent, kind="tetrahedron", n_bins=4, registration=FAST)
    index = write_report(analysis, tmp_path)
    names = {p.name for p in tmp_path.iterdir()}
    assert {"super_particles_top.png", "super_particles_side.png", "bins_height_nm.png"} <= names
    assert "height_precision_nm" in pd.read_csv(tmp_path / "latent.csv").columns
    assert "height_nm along latent_" in index.read_text()
    assert "ic_0" not in pd.read_csv(tmp_path / "latent.csv").columns
