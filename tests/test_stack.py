"""`pointillist up` and `pointillist demo` with real child processes, NATS and Prometheus."""

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from pointillist.core.natsserver import NatsServer
from pointillist.demo import run_demo
from pointillist.stack import Stack

# scripts/dev.sh installs Debian's prometheus when it can; in CI its absence is a failure.
needs_prometheus = pytest.mark.skipif(
    shutil.which("prometheus") is None and not os.environ.get("CI"),
    reason="Debian's prometheus is not installed (scripts/dev.sh installs it when root)",
)


def test_stack_starts_healthy_services_and_stops_cleanly(tmp_path):
    with Stack(tmp_path, nats_port=None, prometheus=False) as stack:
        ends = stack.endpoints()
        assert ends["nats"]["url"].startswith("nats://127.0.0.1:")
        with urllib.request.urlopen(ends["simulator"]["metrics"], timeout=5) as resp:
            assert b"pointillist_service_info" in resp.read()
        procs = [c.proc for c in stack.children]
        assert all(p.poll() is None for p in procs)
    assert all(p.returncode == 0 for p in procs)  # SIGTERM -> graceful exit


def test_nats_port_taken_moves_to_a_free_one(tmp_path):
    with (
        NatsServer() as other,
        Stack(tmp_path, nats_port=other.port, services=[], prometheus=False) as stack,
    ):
        assert stack.nats.port_changed and stack.nats.port != other.port


@needs_prometheus
def test_up_command_with_prometheus_scrapes_and_stops_on_ctrl_c(tmp_path):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pointillist.cli",
            "up",
            "--data-dir",
            str(tmp_path),
            "--nats-port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "stack is up" in line or proc.poll() is not None:
                break
        out = "".join(lines)
        assert "stack is up" in out, out
        prom = next(w.split("=", 1)[1] for w in out.split() if w.startswith("http=http"))
        deadline = time.monotonic() + 30
        body = b""
        while time.monotonic() < deadline and b'"health":"up"' not in body:
            time.sleep(1)
            with urllib.request.urlopen(f"{prom}/api/v1/targets", timeout=5) as resp:
                body = resp.read()
        assert b'"health":"up"' in body and b"simulator" in body
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0


def test_demo_writes_a_report_with_a_super_resolution_image(tmp_path):
    report = run_demo(tmp_path, n_frames=40)
    text = report.read_text()
    assert "40 frames" in text and "RUN_STATE_SUCCEEDED" in text
    assert (tmp_path / "ground-truth.png").stat().st_size > 10_000
    # the localizer service consumed the frames and its CNN localizations came back
    assert "localizer" in text and (tmp_path / "super-resolution.png").stat().st_size > 10_000
    jaccard = float(text.split("| Jaccard index vs truth | ")[1].split(" ")[0])
    assert jaccard > 0.5
    assert (tmp_path / "report.html").exists()
