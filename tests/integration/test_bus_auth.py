"""Credentials and TLS: clear, fast failures; working connections when configured."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from pointillist.core.bus import connect
from pointillist.core.errors import BusAuthError, BusError
from pointillist.core.natsserver import NatsServer, free_port
from pointillist.core.table import LocalizationTable

pytestmark = pytest.mark.integration

Factory = Callable[..., NatsServer]


async def round_trip(url: str, run_id: str, **creds: str) -> None:
    bus = await connect(url, **creds)
    try:
        table = LocalizationTable({"x": [1.0, 2.0], "y": [3.0, 4.0]})
        await bus.publish_locs(run_id, table, 0)
        consumer = await bus.consumer("locs", "auth", run_id=run_id).start()
        (d,) = await consumer.fetch(timeout=5)
        await d.ack()
        np.testing.assert_array_equal(d.table["y"], table["y"])
    finally:
        await bus.close()


async def test_missing_credentials_fail_fast_with_a_clear_message(
    nats_server_factory: Factory, run_id: str
) -> None:
    server = nats_server_factory(user="pnt", password="s3cret")
    start = time.monotonic()
    with pytest.raises(BusAuthError) as err:
        await connect(server.url)
    assert time.monotonic() - start < 5
    message = str(err.value)
    assert f"NATS at {server.url} rejected the connection: authorization required" in message
    assert "POINTILLIST_NATS_USER/POINTILLIST_NATS_PASSWORD or POINTILLIST_NATS_TOKEN" in message


async def test_wrong_password_is_rejected(nats_server_factory: Factory, run_id: str) -> None:
    server = nats_server_factory(user="pnt", password="s3cret")
    with pytest.raises(BusAuthError, match="credentials given were not accepted"):
        await connect(server.url, user="pnt", password="wrong")
    await round_trip(server.url, run_id, user="pnt", password="s3cret")


async def test_token_auth(nats_server_factory: Factory, run_id: str) -> None:
    server = nats_server_factory(token="t0ken")
    with pytest.raises(BusAuthError, match="authorization required"):
        await connect(server.url)
    with pytest.raises(BusAuthError, match="not accepted"):
        await connect(server.url, token="nope")
    await round_trip(server.url, run_id, token="t0ken")


async def test_unreachable_server_is_a_quick_bus_error() -> None:
    port = free_port()
    start = time.monotonic()
    with pytest.raises(BusError, match=f"cannot connect to NATS at nats://127.0.0.1:{port}") as e:
        await connect(f"nats://127.0.0.1:{port}", connect_timeout=1)
    assert not isinstance(e.value, BusAuthError)
    assert time.monotonic() - start < 5


def make_certs(tmp: Path) -> dict[str, Path]:
    """A throwaway CA, a server certificate for 127.0.0.1 and a client certificate."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make test certificates")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=tmp, check=True, capture_output=True)

    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run("req", "-x509", *key, "-keyout", "ca.key", "-out", "ca.pem", "-days", "1",
        "-subj", "/CN=pointillist-test-ca")  # fmt: skip
    (tmp / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    (tmp / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for name in ("server", "client"):
        run("req", *key, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", f"{name}.pem", "-days", "1",
            "-extfile", f"{name}.ext")  # fmt: skip
    return {n: tmp / n for n in ("ca.pem", "server.pem", "server.key", "client.pem", "client.key")}


async def test_tls_with_client_certificates(
    nats_server_factory: Factory, tmp_path: Path, run_id: str
) -> None:
    certs = make_certs(tmp_path)
    server = nats_server_factory(
        tls_cert=certs["server.pem"], tls_key=certs["server.key"], tls_ca=certs["ca.pem"]
    )
    assert server.url.startswith("tls://")
    with pytest.raises(BusError, match="CERTIFICATE_VERIFY_FAILED"):  # server not trusted
        await connect(server.url, connect_timeout=2)
    with pytest.raises(BusError, match=r"TLS with NATS|cannot connect"):  # no client cert
        await connect(server.url, tls_ca=str(certs["ca.pem"]), connect_timeout=2)
    await round_trip(
        server.url,
        run_id,
        tls_ca=str(certs["ca.pem"]),
        tls_cert=str(certs["client.pem"]),
        tls_key=str(certs["client.key"]),
    )
