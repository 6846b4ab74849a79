"""The ``localize`` step of `pointillist run`: the run's frames -> localizations."""

from __future__ import annotations

from typing import Any

from pointillist.core.errors import InvalidInput
from pointillist.core.table import LocalizationTable
from pointillist.localizer.calibration import CameraCalibration
from pointillist.localizer.engine import Engine
from pointillist.localizer.window import FrameWindow
from pointillist.pipeline import RunContext, register_step


@register_step("localize")
def localize_step(ctx: RunContext, params: dict[str, Any]) -> None:
    """Params: method (cnn|mle), model (preset or weights file), device, camera (a camera
    model mapping; default: the simulated camera). Evaluates against truth when known."""
    if ctx.frames is None:
        raise InvalidInput("localize: the run has no frames (use a frames source)")
    camera = params.pop("camera", ctx.camera)
    if camera is None:
        raise InvalidInput("localize: no camera model; give params.camera")
    engine = Engine(
        params.pop("method", "cnn"), params.pop("model", "2d"), params.pop("device", "auto")
    )
    if params:
        raise InvalidInput(f"localize: unknown parameter(s) {sorted(params)}")
    calibration = CameraCalibration.from_dict(camera)
    window = FrameWindow(engine.context)
    tables = [engine.localize(c, calibration) for c in window.push(ctx.frames, 0) + window.flush()]
    tables = [t for t in tables if len(t)]
    ctx.locs = LocalizationTable.concat(tables) if tables else engine.empty()
    ctx.counters["localizations"] = len(ctx.locs)
    ctx.report.text(
        f"{engine.method} ({engine.model}): {len(ctx.locs)} localizations in "
        f"{len(ctx.frames)} frames."
    )
    if ctx.truth is not None and len(ctx.locs):
        from pointillist.localizer.evaluation import evaluate

        ev = evaluate(ctx.locs, ctx.truth)
        ctx.report.table(
            [{k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in ev.summary().items()}]
        )
