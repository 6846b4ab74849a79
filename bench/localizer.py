"""Localizer benchmark: the CNN, our MLE fitter and Picasso on the same simulated frames.

Every case is a seeded movie from `pointillist.simulator` (64×64 px of 100 nm, EMCCD),
2D (in-focus Gaussian PSF, σ = 120 nm) or astigmatic 3D (z in ±500 nm), at a set
density of *on* emitters per µm² per frame (CSR fluorophores at 50 per µm², blinking
with 3-frame on-events and an off time chosen so that (t_on + 1)/(t_on + t_off) of them,
the fraction touching a frame, gives that density), and one of the paper's SNR levels
(LUENN: 20000 / 5000 / 1000 photons per emitter-frame over 200 / 50 / 10 background
photons per pixel). The ground truth is every emitter on for any part of a frame;
emitters and localizations are scored in the field less a 4-px border (where the
fitters' ROIs do not fit and a PSF is cut off).

Methods, all on the same frames: the CNN with the shipped weights (`Engine("cnn")`,
temporal context through `FrameWindow` as the CLI does), our MLE fitter
(`Engine("mle")`), and Picasso's net-gradient identification with its least-squares
(`gausslq`) and maximum-likelihood (`gaussmle`) Gaussian fits, run in Picasso's own
virtual environment by `bench/picasso_runner.py` (2D fits, box 7 px in 2D and 9 px on
astigmatic data, where Picasso is matched and scored laterally only, a more lenient
matching than the 3D one, and its axial numbers are n/a). Picasso's min. net gradient (raw
ADU units) is chosen per modality and SNR by a sweep on a separate calibration set
(densities 0.5 and 2, other seeds): the value with the best mean JI of `gausslq`.
Scores are the SMLM Challenge 2016 metrics of `pointillist.localizer.evaluation`;
frames/s is localization time only (simulation, evaluation and Picasso's interpreter
start-up excluded). At the lowest density the CNN's and the fitter's lateral RMSE are
compared with the Cramér–Rao bound of the emitters they found (same PSF model and
camera, EMCCD excess noise included), over all of them and over the isolated ones.

Structure vs CSR (the paper's comparison), at equal training budgets: structure-trained
CNNs (`bench/models/*-structure.pt`, 15-min runs; the shipped weights are these,
fine-tuned further) and CSR-trained ones (`bench/models/*-csr.pt`, the same training
configuration except `--sampling csr`, with the structure run's step count as the
budget) on frames of helical microtubules (`emitters.structure = "microtubules"`, three
filaments of 5000 fluorophores), several on-densities, the three SNRs.

Picasso runs in its own virtual environment (its dependencies clash with ours), made
with `python3 -m venv .venv-picasso && .venv-picasso/bin/pip install picassosr`.

    python bench/localizer.py --quick                      # ~1 min smoke run
    python bench/localizer.py --append bench/RESULTS.md --figures bench/figures
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from pointillist.core.table import LocalizationTable
from pointillist.localizer.calibration import CameraCalibration
from pointillist.localizer.engine import Engine
from pointillist.localizer.evaluation import Evaluation, evaluate
from pointillist.localizer.mle_fit import cramer_rao_bound
from pointillist.localizer.psf_model import AstigmaticPSF, GaussianPSF
from pointillist.localizer.window import FrameWindow
from pointillist.simulator.camera import Camera
from pointillist.simulator.emitters import EmitterConfig
from pointillist.simulator.frames import FrameSimConfig, simulate_frames
from pointillist.simulator.photophysics import BlinkingConfig

ROOT = Path(__file__).resolve().parent.parent
PICASSO_PYTHON = ROOT / ".venv-picasso" / "bin" / "python"
PICASSO_RUNNER = Path(__file__).resolve().parent / "picasso_runner.py"

SNR_LEVELS = {"high": (20000.0, 200.0), "medium": (5000.0, 50.0), "low": (1000.0, 10.0)}
MODALITIES = ("2d", "astig3d")
FIELD_PX = 64
PIXEL_NM = 100.0
T_ON_FRAMES = 3.0
CSR_FLUOROPHORES_PER_UM2 = 50.0
MT_FILAMENTS, MT_POINTS = 3, 5000
PICASSO_BOX = {"2d": 7, "astig3d": 9}
PICASSO_GRID = (250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0, 16000.0, 32000.0, 64000.0)
CRLB_ROI_PX = 15
BORDER_PX = 4
ISOLATION_NM = 1000.0
CAMERA = Camera()
METHODS = ("cnn", "mle", "picasso-lq", "picasso-mle")


@dataclass(frozen=True)
class Case:
    """One simulated movie: modality, SNR level, on-emitters per µm² per frame, structure."""

    modality: str
    snr: str
    density: float
    n_frames: int
    structure: str = "csr"
    seed_salt: str = ""

    @property
    def name(self) -> str:
        return f"{self.modality}_{self.snr}_{self.density:g}_{self.structure}{self.seed_salt}"

    @property
    def three_d(self) -> bool:
        return self.modality == "astig3d"

    @property
    def seed(self) -> int:
        return zlib.crc32(self.name.encode())

    def config(self) -> FrameSimConfig:
        """The simulator configuration (see module docstring)."""
        photons, background = SNR_LEVELS[self.snr]
        area_um2 = (FIELD_PX * PIXEL_NM / 1000.0) ** 2
        if self.structure == "csr":
            fluorophores = CSR_FLUOROPHORES_PER_UM2 * area_um2
        else:
            fluorophores = MT_FILAMENTS * MT_POINTS
        touching = self.density * area_um2 / fluorophores  # (t_on + 1)/(t_on + t_off)
        z_range = (-500.0, 500.0) if self.three_d else (0.0, 0.0)
        return FrameSimConfig(
            n_frames=self.n_frames,
            height_px=FIELD_PX,
            width_px=FIELD_PX,
            chunk_frames=self.n_frames,
            background_photons=background,
            psf="astigmatic" if self.three_d else "gaussian",
            emitters=EmitterConfig(
                structure=self.structure,
                z_range_nm=z_range,
                density_per_um2=CSR_FLUOROPHORES_PER_UM2,
                n_filaments=MT_FILAMENTS,
                points_per_filament=MT_POINTS,
            ),
            blinking=BlinkingConfig(
                t_on_frames=T_ON_FRAMES,
                t_off_frames=(T_ON_FRAMES + 1.0) / touching - T_ON_FRAMES,
                photons=photons,
            ),
            camera=CAMERA,
        )


@dataclass
class Movie:
    """A simulated case: uint16 frames, the scored truth (nm) and all emitters on."""

    case: Case
    frames: np.ndarray
    truth: LocalizationTable
    all_truth: LocalizationTable

    @property
    def measured_density(self) -> float:
        """Truth rows per frame per µm² of the scored region."""
        side_um = (FIELD_PX - 2 * BORDER_PX) * PIXEL_NM / 1000.0
        return len(self.truth) / self.case.n_frames / side_um**2


def inner(table: LocalizationTable) -> np.ndarray:
    """Rows in the scored region: the field less a BORDER_PX margin."""
    lo, hi = BORDER_PX * PIXEL_NM, (FIELD_PX - BORDER_PX) * PIXEL_NM
    x, y = np.asarray(table["x"]), np.asarray(table["y"])
    return (x >= lo) & (x < hi) & (y >= lo) & (y < hi)


def simulate(case: Case) -> Movie:
    """The frames and the in-field ground truth of `case`."""
    sim = simulate_frames(case.config(), case.seed)
    truth = sim.truth.select(inner(sim.truth))
    if not case.three_d:
        truth = LocalizationTable({k: truth[k] for k in truth.columns if k != "z"})
    return Movie(case, sim.frames, truth, sim.truth)


def calibration() -> CameraCalibration:
    """The benchmark camera as the localizer's calibration."""
    return CameraCalibration(
        kind=CAMERA.kind,
        baseline_adu=CAMERA.baseline_adu,
        e_per_adu=CAMERA.e_per_adu,
        em_gain=CAMERA.em_gain,
        quantum_efficiency=CAMERA.quantum_efficiency,
        read_noise_e=CAMERA.read_noise_e,
        pixel_size_nm=CAMERA.pixel_size_nm,
    )


@dataclass
class Score:
    """A method's localizations (scored region) and evaluation on one movie, its speed,
    and at the lowest density its precision against the CRLB (`precision_vs_crlb`)."""

    method: str
    movie: Movie
    pred: LocalizationTable
    evaluation: Evaluation
    seconds: float
    precision: dict[str, float] | None = None

    @property
    def frames_per_s(self) -> float:
        return self.movie.case.n_frames / self.seconds if self.seconds > 0 else float("nan")


def run_engine(
    engine: Engine, movie: Movie, cal: CameraCalibration
) -> tuple[LocalizationTable, float]:
    """Localize a movie chunk by chunk with temporal context, as the CLI does; seconds."""
    started = time.perf_counter()
    window = FrameWindow(engine.context)
    chunks = window.push(movie.frames, 0) + window.flush()
    tables = [t for t in (engine.localize(c, cal) for c in chunks) if len(t)]
    seconds = time.perf_counter() - started
    return (LocalizationTable.concat(tables) if tables else engine.empty()), seconds


def score(method: str, movie: Movie, pred: LocalizationTable, seconds: float, use_z: bool) -> Score:
    """Evaluate `pred` in the scored region against the movie's truth (3D when `use_z`)."""
    truth = movie.truth
    pred = pred.select(inner(pred))
    if not use_z and "z" in pred:
        pred = LocalizationTable({k: pred[k] for k in pred.columns if k != "z"})
    if not use_z and "z" in truth:
        truth = LocalizationTable({k: truth[k] for k in truth.columns if k != "z"})
    return Score(method, movie, pred, evaluate(pred, truth, use_z=use_z), seconds)


def crlb_lateral_nm(movie: Movie, rows: np.ndarray, cal: CameraCalibration) -> float:
    """sqrt(mean(CRLBx² + CRLBy²)) (nm) of the true emitters `rows` (the bound of the
    lateral RMSE), for the benchmark's PSF and camera in a CRLB_ROI_PX ROI."""
    truth = movie.truth
    if len(rows) == 0:
        return float("nan")
    x_px = np.asarray(truth["x"], np.float64)[rows] / PIXEL_NM
    y_px = np.asarray(truth["y"], np.float64)[rows] / PIXEL_NM
    half = CRLB_ROI_PX // 2
    scale = cal.counts_per_photon
    params = [
        half + x_px % 1.0,
        half + y_px % 1.0,
        np.asarray(truth["photons"], np.float64)[rows] * scale,
        np.asarray(truth["background"], np.float64)[rows] * scale,
    ]
    if movie.case.three_d:
        psf: GaussianPSF | AstigmaticPSF = AstigmaticPSF(movie.case.config().astigmatism, PIXEL_NM)
        params.append(np.asarray(truth["z"], np.float64)[rows])
    else:
        psf = GaussianPSF(movie.case.config().psf_sigma_nm / PIXEL_NM)
    bound = cramer_rao_bound(
        psf,
        np.column_stack(params),
        CRLB_ROI_PX,
        read_variance_counts2=float(cal.read_variance_photons2()) * scale**2,
    )
    return float(PIXEL_NM * np.sqrt(np.mean(bound[:, 0] ** 2 + bound[:, 1] ** 2)))


def precision_vs_crlb(result: Score, cal: CameraCalibration) -> dict[str, float]:
    """Lateral RMSE and CRLB (nm) over all matched emitters and over the isolated ones
    (no other emitter on within ISOLATION_NM in that frame: the single-emitter case the
    bound is for), with the counts n_all, n_isolated."""
    e, truth = result.evaluation, result.movie.truth
    tx, ty = np.asarray(truth["x"], np.float64), np.asarray(truth["y"], np.float64)
    px, py = np.asarray(result.pred["x"], np.float64), np.asarray(result.pred["y"], np.float64)
    sq = (px[e.pred_index] - tx[e.true_index]) ** 2 + (py[e.pred_index] - ty[e.true_index]) ** 2
    everyone = result.movie.all_truth
    ax, ay = np.asarray(everyone["x"]), np.asarray(everyone["y"])
    af, tf = np.asarray(everyone["frame"]), np.asarray(truth["frame"])
    isolated = np.array(
        [
            np.sum((af == tf[i]) & (np.hypot(ax - tx[i], ay - ty[i]) < ISOLATION_NM)) == 1
            for i in e.true_index
        ],
        dtype=bool,
    )
    rows = e.true_index
    return {
        "n_all": len(rows),
        "rmse_all": float(np.sqrt(np.mean(sq))) if len(rows) else float("nan"),
        "crlb_all": crlb_lateral_nm(result.movie, rows, cal),
        "n_isolated": int(isolated.sum()),
        "rmse_isolated": float(np.sqrt(np.mean(sq[isolated]))) if isolated.any() else float("nan"),
        "crlb_isolated": crlb_lateral_nm(result.movie, rows[isolated], cal),
    }


def run_picasso(
    movies: Iterable[Movie], method: str, thresholds: dict[str, float]
) -> dict[str, tuple[LocalizationTable, float]]:
    """Picasso's localizations (nm, our pixel convention) and seconds per movie name."""
    movies = list(movies)
    out: dict[str, tuple[LocalizationTable, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        inp, res = Path(tmp) / "in.npz", Path(tmp) / "out.npz"
        arrays = {}
        for m in movies:
            arrays[f"frames__{m.case.name}"] = m.frames
            arrays[f"min_net_gradient__{m.case.name}"] = np.asarray(thresholds[m.case.name])
            arrays[f"box__{m.case.name}"] = np.asarray(PICASSO_BOX[m.case.modality])
        np.savez(inp, **arrays)
        command = [
            str(PICASSO_PYTHON),
            str(PICASSO_RUNNER),
            str(inp),
            str(res),
            "--method",
            method,
            "--baseline",
            str(CAMERA.baseline_adu),
            "--sensitivity",
            str(CAMERA.e_per_adu),
            "--gain",
            str(CAMERA.em_gain),
            "--qe",
            str(CAMERA.quantum_efficiency),
        ]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"picasso_runner failed:\n{done.stderr[-3000:]}")
        result = np.load(res)
        for m in movies:
            key = m.case.name
            # Picasso's x = 0 is the centre of the first pixel, ours its left edge.
            table = LocalizationTable(
                {
                    "x": (result[f"{key}__x"] + 0.5) * PIXEL_NM,
                    "y": (result[f"{key}__y"] + 0.5) * PIXEL_NM,
                    "photons": result[f"{key}__photons"],
                    "background": result[f"{key}__bg"],
                    "frame": result[f"{key}__frame"].astype(np.int64),
                }
            )
            out[key] = (table, float(result[f"{key}__seconds"]))
    return out


def tune_picasso(
    modalities: Iterable[str], snrs: Iterable[str], n_frames: int, log: list[str]
) -> dict[tuple[str, str], float]:
    """Picasso's min. net gradient per (modality, SNR): the best mean gausslq JI over a
    calibration set (densities 0.5 and 2, seeds apart from the benchmark's)."""
    movies, thresholds = [], {}
    for modality in modalities:
        for snr in snrs:
            for density in (0.5, 2.0):
                movie = simulate(Case(modality, snr, density, n_frames, seed_salt="_cal"))
                for g in PICASSO_GRID:
                    case = replace(movie.case, seed_salt=f"_cal{g:g}")
                    movies.append(replace(movie, case=case))
                    thresholds[case.name] = g
    results = run_picasso(movies, "lq", thresholds)
    jis: dict[tuple[str, str, float], list[float]] = {}
    for m in movies:
        table, _ = results[m.case.name]
        ji = score("picasso-lq", m, table, 1.0, use_z=False).evaluation.jaccard
        jis.setdefault((m.case.modality, m.case.snr, thresholds[m.case.name]), []).append(ji)
    best: dict[tuple[str, str], float] = {}
    for (modality, snr, g), values in sorted(jis.items()):
        if (modality, snr) not in best or np.mean(values) > np.mean(
            jis[(modality, snr, best[(modality, snr)])]
        ):
            best[(modality, snr)] = g
    for modality, snr in sorted(best, key=lambda k: (k[0], list(SNR_LEVELS).index(k[1]))):
        g = best[(modality, snr)]
        sweep = ", ".join(f"{gg:g}: {np.mean(jis[(modality, snr, gg)]):.3f}" for gg in PICASSO_GRID)
        log.append(f"- {modality}, {snr} SNR: **{g:g}** (mean JI by threshold: {sweep})")
    return best


def benchmark(
    cases: list[Case], models: dict[str, str], thresholds: dict[tuple[str, str], float]
) -> list[Score]:
    """All methods on all cases."""
    cal = calibration()
    movies = [simulate(c) for c in cases]
    scores: list[Score] = []
    engines = {("cnn", mod): Engine("cnn", models[mod]) for mod in {c.modality for c in cases}} | {
        ("mle", mod): Engine("mle", mod) for mod in {c.modality for c in cases}
    }
    for (method, modality), engine in engines.items():
        warm = next(m for m in movies if m.case.modality == modality)
        run_engine(engine, replace(warm, frames=warm.frames[:3]), cal)
        for movie in movies:
            if movie.case.modality != modality:
                continue
            pred, seconds = run_engine(engine, movie, cal)
            result = score(method, movie, pred, seconds, use_z=movie.case.three_d)
            if movie.case.density == min(c.density for c in cases):
                result.precision = precision_vs_crlb(result, cal)
            scores.append(result)
            print(
                f"{method:12s} {movie.case.name:28s} JI {result.evaluation.jaccard:.3f}", flush=True
            )
    picasso_thresholds = {m.case.name: thresholds[(m.case.modality, m.case.snr)] for m in movies}
    for method in ("lq", "mle"):
        results = run_picasso(movies, method, picasso_thresholds)
        for movie in movies:
            table, seconds = results[movie.case.name]
            scores.append(score(f"picasso-{method}", movie, table, seconds, use_z=False))
        print(f"picasso-{method} done", flush=True)
    return scores


def structure_vs_csr(cases: list[Case], models: dict[str, dict[str, str]]) -> list[Score]:
    """The structure- and CSR-trained CNNs on microtubule movies."""
    cal = calibration()
    scores = []
    for sampling, by_modality in models.items():
        engines = {mod: Engine("cnn", path) for mod, path in by_modality.items()}
        for case in cases:
            movie = simulate(case)
            pred, seconds = run_engine(engines[case.modality], movie, cal)
            scores.append(score(f"cnn-{sampling}", movie, pred, seconds, case.three_d))
            print(
                f"cnn-{sampling:9s} {case.name:28s} JI {scores[-1].evaluation.jaccard:.3f}",
                flush=True,
            )
    return scores


def verdict(ok: bool) -> str:
    return "met" if ok else "not met"


def setup_paragraphs() -> list[str]:
    """The set-up, as the module docstring describes it (markdown paragraphs)."""
    paragraphs = (__doc__ or "").split("\n\n")[1:-1]
    return [line for p in paragraphs for line in (" ".join(p.split()), "")]


def fmt(value: float, digits: int = 1) -> str:
    return "n/a" if not np.isfinite(value) else f"{value:.{digits}f}"


def main_table(scores: list[Score], modality: str) -> list[str]:
    """Markdown table of all methods on one modality's cases."""
    lines = [
        "| SNR | on-density /µm² (set / measured) | method | JI | RMSE lat (nm) | RMSE ax (nm)"
        " | RMSE vol (nm) | E lat | E 3D | frames/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    rows = [s for s in scores if s.movie.case.modality == modality]
    rows.sort(
        key=lambda s: (
            list(SNR_LEVELS).index(s.movie.case.snr),
            s.movie.case.density,
            METHODS.index(s.method),
        )
    )
    for s in rows:
        e, c = s.evaluation, s.movie.case
        picasso_3d = c.three_d and s.method.startswith("picasso")
        lines.append(
            f"| {c.snr} | {c.density:g} / {s.movie.measured_density:.2f} | {s.method} "
            f"| {e.jaccard:.3f} | {fmt(e.rmse_lateral_nm)} "
            f"| {'n/a' if picasso_3d else fmt(e.rmse_axial_nm)} "
            f"| {'n/a' if picasso_3d else fmt(e.rmse_volumetric_nm)} "
            f"| {e.efficiency_lateral:.3f} "
            f"| {'n/a' if picasso_3d or not c.three_d else f'{e.efficiency_3d:.3f}'} "
            f"| {s.frames_per_s:,.0f} |"
        )
    return lines


def targets(scores: list[Score], mt_scores: list[Score]) -> tuple[list[str], list[str]]:
    """The issue's three targets: (markdown lines of detail, one-line verdicts)."""
    detail, verdicts = [], []
    by = {(s.method, s.movie.case.name): s for s in scores}
    names = sorted({s.movie.case.name for s in scores})
    dense = [n for n in names if by[("cnn", n)].movie.case.density >= 2]
    detail += [
        "**CNN JI vs Picasso at ≥ 2 emitters/µm²** (ratio to the better of gausslq and "
        "gaussmle; target ≥ 1.5):",
        "",
        "| case | CNN JI | Picasso lq JI | Picasso mle JI | ratio |",
        "|---|---|---|---|---|",
    ]
    ratios = []
    for n in dense:
        cnn = by[("cnn", n)].evaluation.jaccard
        lq, mle = (
            by[("picasso-lq", n)].evaluation.jaccard,
            by[("picasso-mle", n)].evaluation.jaccard,
        )
        ratio = cnn / max(lq, mle) if max(lq, mle) > 0 else float("inf")
        ratios.append(ratio)
        detail.append(f"| {n} | {cnn:.3f} | {lq:.3f} | {mle:.3f} | {ratio:.2f} |")
    if ratios:
        met = sum(r >= 1.5 for r in ratios)
        verdicts.append(
            f"CNN JI ≥ 1.5× Picasso's at ≥ 2 emitters/µm²: **{verdict(met == len(ratios))}**"
            f" ({met} of {len(ratios)} cases; ratio {min(ratios):.2f} – {max(ratios):.2f}, "
            f"median {np.median(ratios):.2f})"
        )
    sparse = [s for s in scores if s.precision is not None]
    detail += [
        "",
        "**Lateral RMSE vs the Cramér–Rao bound at the lowest density**: the CRLB, "
        "sqrt(mean(CRLBx² + CRLBy²)), of the true emitters each method found (pixel-"
        "integrated Gaussian, known PSF, EMCCD excess noise), over all of them and over the "
        f"isolated ones (no other emitter on within {ISOLATION_NM:g} nm in that frame, the "
        "single-emitter case the bound is for; the target, CNN ≤ 1.2, is judged on these):",
        "",
        "| case | method | matched | RMSE / CRLB lat (nm) | ratio | isolated | "
        "RMSE / CRLB lat (nm) | ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    cnn_ratios = []
    for s in sorted(sparse, key=lambda s: (s.movie.case.name, METHODS.index(s.method))):
        p = s.precision
        assert p is not None
        ratio_iso = p["rmse_isolated"] / p["crlb_isolated"]
        if s.method == "cnn":
            cnn_ratios.append(ratio_iso)
        detail.append(
            f"| {s.movie.case.name} | {s.method} | {p['n_all']} | {fmt(p['rmse_all'])} / "
            f"{fmt(p['crlb_all'])} | {fmt(p['rmse_all'] / p['crlb_all'], 2)} "
            f"| {p['n_isolated']} | {fmt(p['rmse_isolated'])} / {fmt(p['crlb_isolated'])} "
            f"| {fmt(ratio_iso, 2)} |"
        )
    if cnn_ratios:
        met = sum(r <= 1.2 for r in cnn_ratios)
        verdicts.append(
            f"CNN lateral RMSE ≤ 1.2× CRLB at low density (isolated emitters): "
            f"**{verdict(met == len(cnn_ratios))}** ({met} of {len(cnn_ratios)} cases; "
            f"ratio {min(cnn_ratios):.2f} – {max(cnn_ratios):.2f})"
        )
    if mt_scores:
        pairs: dict[str, dict[str, Score]] = {}
        for s in mt_scores:
            pairs.setdefault(s.movie.case.name, {})[s.method] = s
        parts, all_wins, all_dji = [], 0, []
        for modality in MODALITIES:
            wins_e = wins_ji = 0
            d_ji, d_rmse = [], []
            for pair in pairs.values():
                if pair["cnn-structure"].movie.case.modality != modality:
                    continue
                st, csr = pair["cnn-structure"].evaluation, pair["cnn-csr"].evaluation
                three_d = modality == "astig3d"
                e_st = st.efficiency_3d if three_d else st.efficiency_lateral
                e_csr = csr.efficiency_3d if three_d else csr.efficiency_lateral
                wins_e += e_st > e_csr
                wins_ji += st.jaccard > csr.jaccard
                d_ji.append(st.jaccard - csr.jaccard)
                rmse = "rmse_volumetric_nm" if three_d else "rmse_lateral_nm"
                d_rmse.append(getattr(st, rmse) - getattr(csr, rmse))
            if not d_ji:
                continue
            all_wins += wins_e
            all_dji += d_ji
            kind = "3D" if modality == "astig3d" else "lateral"
            rmse_kind = "volumetric" if modality == "astig3d" else "lateral"
            parts.append(
                f"{modality}: efficiency ({kind}) higher in {wins_e} of {len(d_ji)} cases, JI "
                f"higher in {wins_ji} of {len(d_ji)}, mean ΔJI {np.mean(d_ji):+.3f}, mean Δ "
                f"{rmse_kind} RMSE {np.nanmean(d_rmse):+.1f} nm"
            )
        n = len(all_dji)
        verdicts.append(
            "Structure-trained CNN better than CSR-trained on microtubules: "
            f"**{verdict(all_wins > n / 2 and np.mean(all_dji) > 0)}** (higher efficiency in "
            f"{all_wins} of {n} cases; Δ = structure − CSR; " + "; ".join(parts) + ")"
        )
    return detail, verdicts


def mt_table(mt_scores: list[Score]) -> list[str]:
    lines = [
        "| modality | SNR | on-density /µm² (set / measured) | model | JI | RMSE lat (nm) "
        "| RMSE ax (nm) | RMSE vol (nm) | E lat | E 3D |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in sorted(
        mt_scores,
        key=lambda s: (
            s.movie.case.modality,
            list(SNR_LEVELS).index(s.movie.case.snr),
            s.movie.case.density,
            s.method,
        ),
    ):
        e, c = s.evaluation, s.movie.case
        lines.append(
            f"| {c.modality} | {c.snr} | {c.density:g} / {s.movie.measured_density:.2f} "
            f"| {s.method.removeprefix('cnn-')} | {e.jaccard:.3f} | {fmt(e.rmse_lateral_nm)} "
            f"| {fmt(e.rmse_axial_nm)} | {fmt(e.rmse_volumetric_nm)} "
            f"| {e.efficiency_lateral:.3f} | {fmt(e.efficiency_3d, 3) if c.three_d else 'n/a'} |"
        )
    return lines


def model_lines(paths: dict[str, str]) -> list[str]:
    """One line per CNN model: sampling, steps, training time, from its metadata."""
    from pointillist.localizer.cnn_decode import WEIGHTS_DIR

    lines = []
    for label, ref in paths.items():
        path = Path(ref) if Path(ref).exists() else WEIGHTS_DIR / f"{ref}.pt"
        meta = json.loads(path.with_suffix(".json").read_text())
        config, validation = meta.get("config") or {}, meta.get("validation") or {}
        lines.append(
            f"- {label}: `{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}` — "
            f"{meta['sampling']} sampling, {meta['steps']} steps of {meta['batch_size']} patches "
            f"in {meta['training_seconds'] / 60:.1f} min (budget: steps {config.get('steps')}, "
            f"minutes {config.get('minutes')}; lr {config.get('lr')}, seed {config.get('seed')}; "
            f"{meta['machine']}), validation JI {validation.get('jaccard', float('nan')):.3f}"
            + _lineage(meta)
        )
    return lines


def _lineage(meta: dict) -> str:
    """For fine-tuned weights: the parent run and the steps and minutes of both."""
    parent = meta.get("init")
    if not parent:
        return ""
    return (
        f"; fine-tuned from `{parent['path']}` ({parent['steps']} steps), "
        f"{meta['total_steps']} steps and {meta['total_training_seconds'] / 60:.1f} min in all"
    )


def figures(scores: list[Score], out_dir: Path) -> list[Path]:
    """PNG plots of JI and lateral RMSE vs density, one per modality."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for modality in sorted({s.movie.case.modality for s in scores}):
        fig, axes = plt.subplots(2, 3, figsize=(12, 6.5), sharex=True)
        for col, snr in enumerate(SNR_LEVELS):
            for method in METHODS:
                rows = sorted(
                    (
                        s
                        for s in scores
                        if s.method == method
                        and s.movie.case.modality == modality
                        and s.movie.case.snr == snr
                    ),
                    key=lambda s: s.movie.case.density,
                )
                if not rows:
                    continue
                d = [s.movie.case.density for s in rows]
                axes[0, col].plot(d, [s.evaluation.jaccard for s in rows], "o-", label=method)
                axes[1, col].plot(d, [s.evaluation.rmse_lateral_nm for s in rows], "o-")
            axes[0, col].set_title(f"{modality}, {snr} SNR")
            axes[1, col].set_xlabel("on-emitters / µm²")
        axes[0, 0].set_ylabel("Jaccard index")
        axes[1, 0].set_ylabel("lateral RMSE (nm)")
        axes[0, 0].legend()
        fig.tight_layout()
        path = out_dir / f"localizer-{modality}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(path)
    return written


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU (CPU torch)"
    return (
        f"{cpu}, {os.cpu_count()} cores, {device}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, torch {torch.__version__}"
    )


def add_to_section(path: Path, header: str, text: str) -> None:
    """Append ``text`` to the ``header`` section of a markdown file (created if missing)."""
    lines = path.read_text().splitlines() if path.exists() else ["# Benchmark results"]
    if header not in lines:
        lines += ["", header]
    start = lines.index(header) + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("## ")), len(lines))
    while end > start and not lines[end - 1].strip():
        end -= 1
    lines[end:end] = text.splitlines()
    path.write_text("\n".join(lines).rstrip() + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="~1 minute smoke run")
    parser.add_argument("--frames", type=int, default=50, help="frames per case")
    parser.add_argument("--densities", type=float, nargs="+", default=[0.1, 0.5, 1.0, 2.0, 3.0])
    parser.add_argument("--snr", nargs="+", choices=list(SNR_LEVELS), default=list(SNR_LEVELS))
    parser.add_argument("--modalities", nargs="+", choices=MODALITIES, default=list(MODALITIES))
    parser.add_argument("--mt-densities", type=float, nargs="+", default=[0.5, 1.0, 2.0, 3.0])
    parser.add_argument("--cnn-2d", default="2d", help="2D weights of the main comparison")
    parser.add_argument("--cnn-astig3d", default="astig3d", help="3D weights, likewise")
    parser.add_argument("--structure-2d", default=str(ROOT / "bench/models/2d-structure.pt"))
    parser.add_argument(
        "--structure-astig3d", default=str(ROOT / "bench/models/astig3d-structure.pt")
    )
    parser.add_argument("--csr-2d", default=str(ROOT / "bench/models/2d-csr.pt"))
    parser.add_argument("--csr-astig3d", default=str(ROOT / "bench/models/astig3d-csr.pt"))
    parser.add_argument("--append", type=Path, help="append the results to this markdown file")
    parser.add_argument("--figures", type=Path, help="write PNG plots into this folder")
    parser.add_argument("--note", default="", help="a line added under the tables")
    args = parser.parse_args()
    if args.quick:
        args.frames, args.densities, args.snr = 6, [0.1, 2.0], ["high"]
        args.mt_densities = [2.0]
    started = time.perf_counter()
    cases = [
        Case(mod, snr, d, args.frames)
        for mod in args.modalities
        for snr in args.snr
        for d in args.densities
    ]
    log: list[str] = []
    thresholds = tune_picasso(args.modalities, args.snr, max(4, args.frames // 4), log)
    shipped = {"2d": args.cnn_2d, "astig3d": args.cnn_astig3d}
    structure = {"2d": args.structure_2d, "astig3d": args.structure_astig3d}
    csr = {"2d": args.csr_2d, "astig3d": args.csr_astig3d}
    scores = benchmark(cases, shipped, thresholds)
    mt_cases = [
        Case(mod, snr, d, args.frames, structure="microtubules")
        for mod in args.modalities
        for snr in args.snr
        for d in args.mt_densities
    ]
    models = {
        "structure": {m: structure[m] for m in args.modalities},
        "csr": {m: csr[m] for m in args.modalities},
    }
    mt_scores = structure_vs_csr(mt_cases, models)
    total_min = (time.perf_counter() - started) / 60
    detail, verdicts = targets(scores, mt_scores)
    command = "python " + shlex.join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])
    text = [
        "",
        f"### Localizer benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {machine()}.  ",
        f"Command: `{command}` ({total_min:.1f} min in all).  ",
        f"Cases: {args.frames} frames of {FIELD_PX}×{FIELD_PX} px ({PIXEL_NM:g} nm), EMCCD "
        "(gain 100, 12 e-/ADU, QE 0.9), seeded; the same frames for every method.",
        "",
        *setup_paragraphs(),
        "Models:",
        *model_lines(
            {f"main comparison {m}": shipped[m] for m in args.modalities}
            | {f"{s} {m}": p for s, by_mod in models.items() for m, p in by_mod.items()}
        ),
        "",
        "Picasso min. net gradient per modality and SNR (box "
        + ", ".join(f"{b} px {m}" for m, b in PICASSO_BOX.items())
        + "), from the calibration sweep:",
        *log,
        "",
        "Targets:",
        *(f"- {v}" for v in verdicts),
        "",
    ]
    for modality in args.modalities:
        text += [f"#### {modality}", "", *main_table(scores, modality), ""]
    text += [*detail, "", "#### Structure- vs CSR-trained CNN on microtubules", ""]
    text += [*mt_table(mt_scores), ""]
    if args.figures:
        base = args.append.parent if args.append else Path.cwd()
        paths = figures(scores, args.figures)
        text += [" ".join(f"![{p.stem}]({os.path.relpath(p, base)})" for p in paths), ""]
    if args.note:
        text += [args.note, ""]
    print("\n".join(text))
    if args.append:
        add_to_section(args.append, "## Localizer", "\n".join(text))


if __name__ == "__main__":
    main()
