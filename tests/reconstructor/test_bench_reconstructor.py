"""Smoke run of bench/reconstructor.py with a changed ReconConfig (--param)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCH = str(ROOT / "bench" / "reconstructor.py")


def test_quick_baseline_with_a_param(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmark results\n\n## Reconstructor\n\nearlier\n")
    command = [
        sys.executable, BENCH, "--quick", "--threads", "1",
        "--sections", "baseline", "--models", "torus", "--runs", "1",
        "--param", "lr=0.0005", "--param", "sigma_end_nm=10",
        "--append", str(results),
    ]  # fmt: skip
    run = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    section = results.read_text().split("## Reconstructor", 1)[1]
    assert "'lr': 0.0005" in section and "'sigma_end_nm': 10" in section
    assert "#### Noise-free baselines" in section
    assert any(line.startswith("| torus |") for line in section.splitlines())


def test_unknown_param_is_refused() -> None:
    command = [sys.executable, BENCH, "--quick", "--sections", "baseline", "--param", "lrr=1"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert run.returncode != 0
    assert "unknown reconstructor parameter(s) ['lrr']" in run.stderr
