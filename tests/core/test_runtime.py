"""A service process built on Runtime: ready line, health, /metrics, SIGTERM shutdown."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

from pointillist.core.rpc import wait_healthy

SERVICE = textwrap.dedent(
    """
    import asyncio
    import sys

    from pointillist.core.config import ServiceConfig
    from pointillist.core.runtime import Runtime
    from pointillist.v1 import simulator_pb2_grpc


    class Simulator(simulator_pb2_grpc.SimulatorServicer):
        pass


    def main() -> None:
        config = ServiceConfig.from_args(sys.argv[1:], defaults={"device": "cpu"})
        runtime = Runtime.start("testsvc", config, version="9.9")
        asyncio.run(
            runtime.serve(
                [(simulator_pb2_grpc.add_SimulatorServicer_to_server, Simulator())],
                service_names=["pointillist.v1.Simulator"],
                on_shutdown=[lambda: print("bus consumers stopped", flush=True)],
            )
        )


    main()
    """
)


def test_service_starts_reports_and_stops_on_sigterm(tmp_path: Path) -> None:
    script = tmp_path / "svc.py"
    script.write_text(SERVICE)
    env = {**os.environ, "POINTILLIST_METRICS_PORT": "0"}
    proc = subprocess.Popen(
        [sys.executable, str(script), "--grpc-port", "0", "--log-level", "info"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        ready = ""
        while "ready" not in ready:
            ready = proc.stderr.readline()
            assert ready, f"service exited early: {proc.wait()} {proc.stderr.read()}"
        assert "service=testsvc" in ready
        grpc_address = re.search(r"grpc=(\S+)", ready).group(1)
        metrics_url = re.search(r"metrics=(\S+)", ready).group(1)
        assert "device=cpu" in ready

        asyncio.run(wait_healthy(grpc_address, "pointillist.v1.Simulator", timeout=10))
        with urllib.request.urlopen(metrics_url, timeout=5) as reply:
            body = reply.read().decode()
        assert 'pointillist_service_info{device="cpu",service="testsvc",version="9.9"}' in body
        assert "pointillist_grpc_requests_total{" in body  # the health check was counted

        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "bus consumers stopped" in out
    assert 'msg="stopped"' in err
