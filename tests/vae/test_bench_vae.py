"""Smoke run of bench/vae.py's variants section: one changed VaeConfig next to the default."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_variants_section_trains_each_variant(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmark results\n\n## VAE\n\nearlier\n")
    command = [
        sys.executable, str(ROOT / "bench" / "vae.py"),
        "--quick", "--epochs", "1", "--threads", "1",
        "--sections", "variants",
        "--variant", "beta=0.01,warmup_steps=50",
        "--append", str(results),
    ]  # fmt: skip
    run = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    section = results.read_text().split("## VAE", 1)[1]
    rows = [line for line in section.splitlines() if line.startswith("| ")][1:]
    assert [r.split("|")[1].strip() for r in rows] == [
        "as configured",
        "beta 0.01, warmup_steps 50",
    ]
    for row in rows:
        cells = [c.strip() for c in row.split("|")[2:-1]]
        assert cells[0].startswith("latent_") and cells[1].startswith("ic_")
        assert 0 <= abs(float(cells[0].split()[1])) <= 1 and cells[4] == "1"


def test_unknown_variant_key_is_refused(tmp_path: Path) -> None:
    command = [
        sys.executable, str(ROOT / "bench" / "vae.py"),
        "--quick", "--epochs", "1", "--threads", "1",
        "--sections", "variants", "--variant", "betta=0.01",
    ]  # fmt: skip
    run = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert run.returncode != 0
    assert "unknown VAE parameter(s) ['betta']" in run.stderr


def test_factors_section_tabulates_latent_directions(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmark results\n\n## VAE\n\nearlier\n")
    command = [
        sys.executable, str(ROOT / "bench" / "vae.py"),
        "--quick", "--epochs", "1", "--threads", "1",
        "--sections", "factors", "--append", str(results),
    ]  # fmt: skip
    run = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    section = results.read_text().split("## VAE", 1)[1]
    rows = [line for line in section.splitlines() if line.startswith("| ")][1:]
    names = [r.split("|")[1].strip() for r in rows]
    axes = names[8:-1]  # collapsed latent dimensions get no independent axis
    assert names[:8] == [f"PC {j}" for j in range(8)] and names[-1] == "true factor"
    assert axes == [f"ic_{j}" for j in range(len(axes))] and len(axes) >= 2
    fractions = [float(r.split("|")[2]) for r in rows[:8]]
    assert fractions == sorted(fractions, reverse=True) and abs(sum(fractions) - 1) < 1e-3
    for row in rows[:-1]:
        rhos = [float(c) for c in row.split("|")[3:-1]]
        assert len(rhos) == 4 and all(-1 <= rho <= 1 for rho in rhos)
