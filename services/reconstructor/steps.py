"""The ``reconstruct`` step of `pointillist run`: the run's views -> a HOLLy 3D model + report.

A run spec can go simulate projections -> reconstruct, or read a table of views (a
``particle`` column) -> reconstruct. Params: ReconConfig fields and ``n_runs``. With a
projections simulation as the source, the ground-truth model is regenerated from its
parameters and seed, and every run is scored against it. Writes the report folder
``reconstruction/`` (3D view, snapshots, CSVs) and a summary in the run report.
"""

from __future__ import annotations

from typing import Any

from pointillist.core.errors import InvalidInput
from pointillist.pipeline import RunContext, register_step
from pointillist.reconstructor.engine import Settings, reconstruct_table, spec_truth
from pointillist.reconstructor.report import write_report


@register_step("reconstruct")
def reconstruct_step(ctx: RunContext, params: dict[str, Any]) -> None:
    """Params: ReconConfig fields (n_points, epochs, image_px, ...) and n_runs."""
    if ctx.locs is None or not len(ctx.locs) or "particle" not in ctx.locs:
        raise InvalidInput(
            "reconstruct: the run has no views (use a projections simulation or a table with "
            "a 'particle' column)"
        )
    params.pop("method", None)
    result = reconstruct_table(ctx.locs, Settings().with_params(params), spec_truth(ctx.spec))
    ctx.counters["views"] = len(result.views)
    ctx.counters["skipped_views"] = len(result.skipped)
    files = write_report(result, ctx.out_dir / "reconstruction")
    for line in result.summary_lines():
        ctx.report.text(line)
    ctx.report.text(
        f"Rotatable 3D model and snapshots: {files[0].parent.name}/report.html, "
        f"{files[0].parent.name}/model_3d.html"
    )
