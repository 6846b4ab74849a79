"""Localize simulated movies with Picasso (`picassosr`), for `bench/localizer.py`.

Runs inside Picasso's own virtual environment (its dependencies clash with ours)::

    .venv-picasso/bin/python bench/picasso_runner.py IN.npz OUT.npz --method lq|mle \\
        --box 7 --min-net-gradient G --baseline 100 --sensitivity 12 --gain 100 --qe 0.9

IN.npz holds one or more uint16 movies (n, H, W) named ``frames__<case>``, and may hold a
per-case threshold ``min_net_gradient__<case>`` (else ``--min-net-gradient``) and box
``box__<case>`` (else ``--box``). Each movie
goes through Picasso's own pipeline: ``localize.identify`` (net-gradient spot finding),
``localize.get_spots`` (ADU -> photons) and either least squares
(``gausslq.fit_spots`` + ``gausslq.locs_from_fits``) or maximum likelihood
(``gaussmle.gaussmle`` + ``gaussmle.locs_from_fits``), both fitting an elliptical
Gaussian (σx, σy free). Least squares runs in this process: ``fit_spots_parallel`` is the
same numba fitter in a process pool started afresh per call, whose workers recompile it
(~5 s a call), and on a 2-core machine ``lib.n_workers()`` gives it one worker anyway.
OUT.npz gets, per case, ``<case>__x``, ``__y`` (px, Picasso's convention: x = 0 is the
centre of the first pixel), ``__photons`` (photoelectrons), ``__bg``, ``__frame`` and
``__seconds``, the time of identify + spots + fit, timed here so that interpreter
start-up and numba compilation (a warm-up run on two frames first) are not counted.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from picasso import gausslq, gaussmle, localize

MLE_EPS = 1e-3
MLE_MAX_IT = 1000


def localize_movie(
    movie: np.ndarray, method: str, box: int, min_net_gradient: float, camera_info: dict
) -> dict[str, np.ndarray]:
    """Picasso's localizations of one movie (px, photons, frame)."""
    ids, _ = localize.identify(movie, min_net_gradient, box, threaded=False)
    if len(ids) == 0:
        empty = np.zeros(0, np.float32)
        return {"x": empty, "y": empty, "photons": empty, "bg": empty, "frame": empty}
    spots = localize.get_spots(movie, ids, box, camera_info)
    if method == "lq":
        theta = gausslq.fit_spots(spots)
        locs = gausslq.locs_from_fits(ids, theta, box, em=camera_info["Gain"] > 1)
    else:
        theta, crlbs, likelihoods, iterations = gaussmle.gaussmle(
            spots, MLE_EPS, MLE_MAX_IT, method="sigmaxy"
        )
        locs = gaussmle.locs_from_fits(ids, theta, crlbs, likelihoods, iterations, box)
    finite = np.isfinite(locs["x"].to_numpy()) & np.isfinite(locs["y"].to_numpy())
    locs = locs[finite]
    return {k: locs[k].to_numpy() for k in ("x", "y", "photons", "bg", "frame")}


def warm_up_movie(baseline: float) -> np.ndarray:
    """Two 32×32 frames, each with one bright Gaussian spot, so every step runs."""
    grid = np.arange(32) - 15.7
    spot = 2000.0 * np.exp(-0.5 * (grid[:, None] ** 2 + grid[None, :] ** 2) / 1.44)
    noise = np.random.default_rng(0).normal(0.0, 20.0, (2, 32, 32))
    return np.clip(baseline + 200.0 + spot + noise, 0, 65535).astype(np.uint16)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inp", help="input .npz with frames__<case> movies")
    parser.add_argument("out", help="output .npz")
    parser.add_argument("--method", choices=("lq", "mle"), required=True)
    parser.add_argument("--box", type=int, default=7, help="odd ROI side, px")
    parser.add_argument("--min-net-gradient", type=float, default=5000.0)
    parser.add_argument("--baseline", type=float, required=True, help="ADU")
    parser.add_argument("--sensitivity", type=float, required=True, help="electrons per ADU")
    parser.add_argument("--gain", type=float, required=True, help="EM gain")
    parser.add_argument("--qe", type=float, required=True, help="quantum efficiency")
    args = parser.parse_args()
    camera_info = {
        "Baseline": args.baseline,
        "Sensitivity": args.sensitivity,
        "Gain": args.gain,
        "Qe": args.qe,
    }
    warnings.filterwarnings("ignore")  # the deprecation notices of gausslq/gaussmle
    data = np.load(args.inp)
    cases = [k.split("__", 1)[1] for k in data.files if k.startswith("frames__")]
    # Warm-up: numba compiles identify and the fitters on first use.
    for box in {args.box, *(int(data[k]) for k in data.files if k.startswith("box__"))}:
        localize_movie(warm_up_movie(args.baseline), args.method, box, 0.0, camera_info)
    out: dict[str, np.ndarray] = {}
    for case in cases:
        movie = data[f"frames__{case}"]
        key = f"min_net_gradient__{case}"
        threshold = float(data[key]) if key in data.files else args.min_net_gradient
        box = int(data[f"box__{case}"]) if f"box__{case}" in data.files else args.box
        started = time.perf_counter()
        locs = localize_movie(movie, args.method, box, threshold, camera_info)
        seconds = time.perf_counter() - started
        for name, values in locs.items():
            out[f"{case}__{name}"] = np.asarray(values, dtype=np.float64)
        out[f"{case}__seconds"] = np.asarray(seconds)
    np.savez(args.out, **out)


if __name__ == "__main__":
    main()
