"""Smoke runs of bench/vae.py's variants and factors sections on the quick 2D NPC set."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_bench(*args: str, results: Path | None = None) -> subprocess.CompletedProcess:
    """bench/vae.py --quick, 1 epoch, 1 thread, with `args` (and --append results)."""
    command = [
        sys.executable, str(ROOT / "bench" / "vae.py"),
        "--quick", "--epochs", "1", "--threads", "1", *args,
    ]  # fmt: skip
    if results is not None:
        results.write_text("# Benchmark results\n\n## VAE\n\nearlier\n")
        command += ["--append", str(results)]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)


def table_rows(results: Path) -> list[str]:
    """The table rows (header excluded) that the run appended under '## VAE'."""
    section = results.read_text().split("## VAE", 1)[1]
    return [line for line in section.splitlines() if line.startswith("| ")][1:]


def test_variants_section_trains_each_variant(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    run = run_bench(
        "--sections", "variants", "--variant", "beta=0.01,warmup_steps=50", results=results
    )
    assert run.returncode == 0, run.stderr
    rows = table_rows(results)
    assert [r.split("|")[1].strip() for r in rows] == [
        "as configured",
        "beta 0.01, warmup_steps 50",
    ]
    for row in rows:
        cells = [c.strip() for c in row.split("|")[2:-1]]
        assert cells[0].startswith("latent_") and cells[1].startswith("ic_")
        assert 0 <= abs(float(cells[0].split()[1])) <= 1 and cells[4] == "1"


def test_unknown_variant_key_is_refused() -> None:
    run = run_bench("--sections", "variants", "--variant", "betta=0.01")
    assert run.returncode != 0
    assert "unknown VAE parameter(s) ['betta']" in run.stderr


def test_factors_section_tabulates_latent_directions(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    run = run_bench("--sections", "factors", results=results)
    assert run.returncode == 0, run.stderr
    rows = table_rows(results)
    names = [r.split("|")[1].strip() for r in rows]
    axes = names[8:-1]  # collapsed latent dimensions get no independent axis
    assert names[:8] == [f"PC {j}" for j in range(8)] and names[-1] == "true factor"
    assert axes == [f"ic_{j}" for j in range(len(axes))] and len(axes) >= 2
    fractions = [float(r.split("|")[2]) for r in rows[:8]]
    assert fractions == sorted(fractions, reverse=True) and abs(sum(fractions) - 1) < 1e-3
    for row in rows[:-1]:
        rhos = [float(c) for c in row.split("|")[3:-1]]
        assert len(rhos) == 4 and all(-1 <= rho <= 1 for rho in rhos)
