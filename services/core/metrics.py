"""Prometheus metrics shared by every service, and the /metrics HTTP endpoint.

Each service declares its own metrics in its own ``metrics.py``; the ones here are the
common ones (gRPC traffic, service identity) that the RPC layer and runtime fill in.
Every name starts with ``pointillist_`` so dashboards can select the project's series.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from wsgiref.simple_server import WSGIServer

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, Info
from prometheus_client import start_http_server as _start_http_server

from pointillist.core.config import client_address

#: Latency buckets in seconds: from sub-millisecond lookups to minutes-long training calls.
LATENCY_BUCKETS_S = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
)

GRPC_REQUESTS = Counter(
    "pointillist_grpc_requests",
    "gRPC calls handled, by service, method and final status code.",
    ["service", "method", "code"],
)
GRPC_REQUEST_SECONDS = Histogram(
    "pointillist_grpc_request_seconds",
    "Time from the start of a gRPC call to its last response, by service and method.",
    ["service", "method"],
    buckets=LATENCY_BUCKETS_S,
)
SERVICE_INFO = Info(
    "pointillist_service",
    "The service in this process: its name, version and the device it computes on.",
)


def set_service_info(service: str, *, version: str, device: str) -> None:
    """Publish ``pointillist_service_info{service,version,device} 1`` for this process."""
    SERVICE_INFO.info({"service": service, "version": version, "device": device})


@dataclass
class MetricsServer:
    """A running /metrics HTTP endpoint (a daemon thread); ``port`` is the bound port."""

    host: str
    port: int
    _httpd: WSGIServer = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    @property
    def url(self) -> str:
        """The scrape URL, e.g. ``http://127.0.0.1:9101/metrics``."""
        return f"http://{client_address(self.host, self.port)}/metrics"

    def stop(self) -> None:
        """Stop serving and release the port; safe to call twice."""
        if self._thread.is_alive():
            self._httpd.shutdown()
            self._thread.join(timeout=5)
        self._httpd.server_close()


def start_metrics_server(
    port: int = 0, host: str = "127.0.0.1", registry: CollectorRegistry = REGISTRY
) -> MetricsServer:
    """Serve ``registry`` on ``http://host:port/metrics``; port 0 picks a free port."""
    httpd, thread = _start_http_server(port, addr=host, registry=registry)
    return MetricsServer(host=host, port=httpd.server_port, _httpd=httpd, _thread=thread)
