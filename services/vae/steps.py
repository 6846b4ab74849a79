"""The ``vae`` step of `pointillist run`: the run's particles -> PC-VAE latent space + report.

A run spec can go simulate particles (npc2d, npc3d, tetrahedron) -> vae, or read a
particle table -> vae. The step trains a PC-VAE (params: VaeConfig fields plus
``analyze``, ``n_bins``, ``kind``), writes the latent table (``latent.csv``), the model
(``vae-model.pt``) and the heterogeneity report (``vae/report.html``), and puts the
best latent dimension per parameter in the run report, with its Spearman ρ against the
simulated truth when the run has it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from google.protobuf import json_format
from scipy.stats import spearmanr

from pointillist.core.errors import InvalidInput
from pointillist.core.io import write_csv_table
from pointillist.pipeline import RunContext, register_step
from pointillist.simulator.particles import ParticleSimConfig
from pointillist.vae.engine import Settings, VaeFit, fit_table, summary_lines, with_truth
from pointillist.vae.report import write_report


def truth_rows(fit: VaeFit, truth: dict[str, np.ndarray]) -> list[dict[str, object]]:
    """Per true per-particle parameter: the latent dimension with the largest |ρ| and ρ."""
    if "particle" not in truth:
        return []
    index = {int(p): i for i, p in enumerate(truth["particle"])}
    rows = np.array([index.get(int(p), -1) for p in fit.particles.ids])
    known = rows >= 0
    out = []
    for name, values in truth.items():
        if not name.endswith("_nm") or not known.sum() > 2:
            continue
        true = np.asarray(values, dtype=np.float64)[rows[known]]
        if np.ptp(true) == 0:
            continue
        rho = [spearmanr(fit.latent[known, j], true).statistic for j in range(fit.latent.shape[1])]
        best = int(np.nanargmax(np.abs(rho)))
        out.append({"true parameter": name, "latent": f"latent_{best}", "ρ": f"{rho[best]:+.3f}"})
    return out


def simulated_kind(ctx: RunContext) -> str | None:
    """The particle kind of a particles simulation source (npc2d by default), else None."""
    sim = ctx.spec.source.simulation
    if ctx.spec.source.WhichOneof("source") != "simulation" or sim.kind != "particles":
        return None
    return json_format.MessageToDict(sim.params).get("kind", ParticleSimConfig.kind)


@register_step("vae")
def vae_step(ctx: RunContext, params: dict[str, Any]) -> None:
    """Params: VaeConfig fields (epochs, latent_dim, beta, ...), analyze, n_bins, kind, axes."""
    if ctx.locs is None or not len(ctx.locs) or "particle" not in ctx.locs:
        raise InvalidInput(
            "vae: the run has no particles (use a particles simulation or a table with a "
            "'particle' column)"
        )
    params.pop("method", None)
    settings = Settings().with_params({"kind": simulated_kind(ctx), **params})
    fit = fit_table(
        ctx.locs,
        settings.config,
        kind=settings.kind,
        analyze_latent=settings.analyze,
        n_bins=settings.n_bins,
        axes=settings.axes,
    )
    ctx.counters["embedded_particles"] = len(fit.particles.ids)
    ctx.counters["skipped_particles"] = len(fit.skipped)
    fit.trained.save(ctx.out_dir / "vae-model.pt")
    write_csv_table(with_truth(fit.table(), ctx.particle_truth), ctx.out_dir / "latent.csv")
    last = fit.trained.history[-1]
    ctx.report.text(
        f"PC-VAE: {len(fit.particles.ids)} particles ({len(fit.skipped)} skipped), "
        f"{len(fit.trained.history)} epochs in {fit.seconds:.0f} s, final loss {last['loss']:.4g}; "
        "latent coordinates in latent.csv, model in vae-model.pt."
    )
    if fit.analysis is not None:
        index = write_report(fit.analysis, ctx.out_dir / "vae")
        for line in summary_lines(fit.analysis):
            ctx.report.text(line)
        ctx.report.text(
            f"Super-particles per bin, scatter plots and violins: {index.parent.name}/"
            f"{index.with_suffix('.html').name}"
        )
    ctx.report.table(truth_rows(fit, ctx.particle_truth))
