"""The /metrics endpoint and the shared metric names."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, Counter

from pointillist.core import metrics


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as reply:
        assert reply.status == 200
        return reply.read().decode()


def test_free_port_is_bound_and_reported() -> None:
    registry = CollectorRegistry()
    Counter("pointillist_test_items", "Items.", registry=registry).inc(3)
    server = metrics.start_metrics_server(0, "127.0.0.1", registry=registry)
    try:
        assert server.port > 0
        assert server.url == f"http://127.0.0.1:{server.port}/metrics"
        assert "pointillist_test_items_total 3.0" in scrape(server.url)
    finally:
        server.stop()
    server.stop()  # idempotent
    with pytest.raises(urllib.error.URLError):
        scrape(server.url)


def test_service_info_reports_name_version_and_device() -> None:
    metrics.set_service_info("simulator", version="0.1.0", device="cpu")
    labels = {"service": "simulator", "version": "0.1.0", "device": "cpu"}
    assert REGISTRY.get_sample_value("pointillist_service_info", labels) == 1.0
    server = metrics.start_metrics_server(0)
    try:
        body = scrape(server.url)
    finally:
        server.stop()
    assert 'pointillist_service_info{device="cpu",service="simulator",version="0.1.0"} 1.0' in body
