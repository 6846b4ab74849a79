"""The gRPC bootstrap against a real grpc.aio server on a free port: health, reflection,
error mapping, metrics and graceful shutdown."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import urllib.request
from collections.abc import AsyncIterator

import grpc
import pytest
from google.protobuf import struct_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from prometheus_client import REGISTRY

from pointillist.core import rpc
from pointillist.core.errors import (
    BusAuthError,
    BusFull,
    FormatError,
    InvalidInput,
    NotFound,
    NotReady,
)
from pointillist.core.metrics import start_metrics_server
from pointillist.v1 import frames_pb2, run_pb2, simulator_pb2, simulator_pb2_grpc

SIMULATOR = "pointillist.v1.Simulator"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class FakeSimulator(simulator_pb2_grpc.SimulatorServicer):
    """Each method fails in one way the interceptor must map; the rest stay unimplemented."""

    def __init__(self) -> None:
        self.stream_cancelled = asyncio.Event()

    async def StartAcquisition(self, request, context):
        if not request.frames_per_batch:
            raise InvalidInput("n_frames must be > 0")
        return run_pb2.RunStatus(run_id=request.run_id, state=run_pb2.RUN_STATE_RUNNING)

    async def CancelRun(self, request, context):
        raise RuntimeError("secret database password in this message")

    async def GetRun(self, request, context):
        raise NotFound(f"no run {request.run_id!r}")

    async def PublishDataset(self, request, context):
        raise NotReady("model not loaded yet")

    async def SimulateFrames(self, request, context):
        yield frames_pb2.FrameBatch(run_id="r1", seq=1)
        if request.seed == 0:
            raise InvalidInput("frame 2: n_emitters must be >= 0")
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.stream_cancelled.set()
            raise


@pytest.fixture
async def servicer() -> FakeSimulator:
    return FakeSimulator()


@pytest.fixture
async def server(servicer: FakeSimulator) -> AsyncIterator[rpc.RpcServer]:
    srv = await rpc.create_server(
        [(simulator_pb2_grpc.add_SimulatorServicer_to_server, servicer)],
        service_names=[SIMULATOR],
    )
    yield srv
    await srv.shutdown(grace=0)


@pytest.fixture
async def chan(server: rpc.RpcServer) -> AsyncIterator[grpc.aio.Channel]:
    async with rpc.channel(server.address) as channel:
        yield channel


@pytest.fixture
def stub(chan: grpc.aio.Channel) -> simulator_pb2_grpc.SimulatorStub:
    return simulator_pb2_grpc.SimulatorStub(chan)


def count(method: str, code: str, service: str = SIMULATOR) -> float:
    labels = {"service": service, "method": method, "code": code}
    return REGISTRY.get_sample_value("pointillist_grpc_requests_total", labels) or 0.0


async def check(chan: grpc.aio.Channel, service: str) -> int:
    stub = health_pb2_grpc.HealthStub(chan)
    reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
    return reply.status


async def test_server_binds_a_free_port(server: rpc.RpcServer) -> None:
    assert server.port > 0
    assert server.address == f"127.0.0.1:{server.port}"


async def test_health_serving_for_server_and_each_service(
    server: rpc.RpcServer, chan: grpc.aio.Channel
) -> None:
    assert await check(chan, "") == SERVING
    assert await check(chan, SIMULATOR) == SERVING
    await rpc.wait_healthy(server.address, SIMULATOR, timeout=5)


async def test_health_not_serving_as_soon_as_shutdown_begins(
    server: rpc.RpcServer, chan: grpc.aio.Channel
) -> None:
    release = asyncio.Event()
    calls: list[str] = []

    async def stop_consumers() -> None:
        calls.append("consumers")
        await release.wait()

    server.add_shutdown_callback(stop_consumers)
    server.add_shutdown_callback(lambda: calls.append("sync"))
    watch = health_pb2_grpc.HealthStub(chan).Watch(health_pb2.HealthCheckRequest(service=SIMULATOR))
    assert (await watch.read()).status == SERVING

    shutdown = asyncio.create_task(server.shutdown(grace=5))
    assert (await watch.read()).status == NOT_SERVING
    assert await check(chan, "") == NOT_SERVING
    assert await check(chan, SIMULATOR) == NOT_SERVING
    assert calls == ["consumers"]  # the server still answers while callbacks run
    watch.cancel()
    release.set()
    await shutdown
    assert calls == ["consumers", "sync"]
    await server.shutdown()  # idempotent


async def test_reflection_lists_services(chan: grpc.aio.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(chan)
    requests = [
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol=SIMULATOR),
    ]
    replies = [reply async for reply in stub.ServerReflectionInfo(iter(requests))]
    names = {s.name for s in replies[0].list_services_response.service}
    assert names == {SIMULATOR, "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"}
    assert replies[1].file_descriptor_response.file_descriptor_proto  # descriptors resolve


async def test_invalid_input_is_invalid_argument_with_message(
    stub: simulator_pb2_grpc.SimulatorStub,
) -> None:
    before = count("StartAcquisition", "INVALID_ARGUMENT")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.StartAcquisition(simulator_pb2.AcquisitionRequest(), timeout=5)
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details() == "n_frames must be > 0"
    assert "Traceback" not in str(err.value)
    assert count("StartAcquisition", "INVALID_ARGUMENT") == before + 1


async def test_unexpected_error_is_internal_without_traceback(
    stub: simulator_pb2_grpc.SimulatorStub, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.ERROR, logger="pointillist.core.rpc"),
        pytest.raises(grpc.aio.AioRpcError) as err,
    ):
        await stub.CancelRun(simulator_pb2.RunRequest(run_id="r1"), timeout=5)
    assert err.value.code() is grpc.StatusCode.INTERNAL
    assert err.value.details() == "internal error in CancelRun: RuntimeError"
    assert "secret" not in str(err.value)
    assert "Traceback" not in str(err.value)
    # ...but the server logged the whole story.
    assert "secret database password" in caplog.text
    assert "Traceback" in caplog.text


@pytest.mark.parametrize(
    ("method", "request_", "code", "details"),
    [
        ("GetRun", simulator_pb2.RunRequest(run_id="r9"), "NOT_FOUND", "no run 'r9'"),
        ("PublishDataset", simulator_pb2.DatasetRequest(), "UNAVAILABLE", "model not loaded yet"),
        ("SimulateClusters", simulator_pb2.SimulationRequest(), "UNIMPLEMENTED", None),
    ],
)
async def test_project_errors_map_to_status_codes(
    stub: simulator_pb2_grpc.SimulatorStub, method: str, request_, code: str, details: str | None
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await getattr(stub, method)(request_, timeout=5)
    assert err.value.code().name == code
    if details is not None:
        assert err.value.details() == details


@pytest.mark.parametrize(
    ("exc", "code", "details"),
    [
        (FormatError("locs.csv", "not a number", column="x"), "INVALID_ARGUMENT", "locs.csv"),
        (BusFull("stream full"), "RESOURCE_EXHAUSTED", "stream full"),
        (BusAuthError("bad token"), "UNAVAILABLE", "bad token"),
        (KeyError("k"), "INTERNAL", "internal error in Cluster: KeyError"),
    ],
)
def test_status_for(exc: Exception, code: str, details: str) -> None:
    got_code, got_details = rpc.status_for(exc, "Cluster")
    assert got_code.name == code
    assert got_details.startswith(details)


async def test_stream_yields_then_error_is_mapped(
    stub: simulator_pb2_grpc.SimulatorStub,
) -> None:
    before = count("SimulateFrames", "INVALID_ARGUMENT")
    call = stub.SimulateFrames(simulator_pb2.SimulationRequest(seed=0), timeout=5)
    received = []
    with pytest.raises(grpc.aio.AioRpcError) as err:
        async for batch in call:
            received.append(batch.seq)
    assert received == [1]
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details() == "frame 2: n_emitters must be >= 0"
    # the server counts a stream when its handler ends, which can be after the client saw
    # the status: give it a moment under load
    for _ in range(100):
        if count("SimulateFrames", "INVALID_ARGUMENT") == before + 1:
            break
        await asyncio.sleep(0.02)
    assert count("SimulateFrames", "INVALID_ARGUMENT") == before + 1


async def test_client_cancel_reaches_the_handler_and_counts_cancelled(
    stub: simulator_pb2_grpc.SimulatorStub, servicer: FakeSimulator
) -> None:
    before = count("SimulateFrames", "CANCELLED")
    call = stub.SimulateFrames(simulator_pb2.SimulationRequest(seed=1))
    assert (await call.read()).seq == 1
    call.cancel()
    await asyncio.wait_for(servicer.stream_cancelled.wait(), 5)
    for _ in range(100):
        if count("SimulateFrames", "CANCELLED") == before + 1:
            break
        await asyncio.sleep(0.01)
    assert count("SimulateFrames", "CANCELLED") == before + 1


async def test_metrics_count_codes_and_latency(
    stub: simulator_pb2_grpc.SimulatorStub,
) -> None:
    ok_before = count("StartAcquisition", "OK")
    nf_before = count("GetRun", "NOT_FOUND")
    seconds_labels = {"service": SIMULATOR, "method": "StartAcquisition"}
    n_before = REGISTRY.get_sample_value("pointillist_grpc_request_seconds_count", seconds_labels)

    request = simulator_pb2.AcquisitionRequest(run_id="r1", frames_per_batch=10)
    for _ in range(3):
        assert (await stub.StartAcquisition(request, timeout=5)).run_id == "r1"
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.GetRun(simulator_pb2.RunRequest(run_id="x"), timeout=5)

    assert count("StartAcquisition", "OK") == ok_before + 3
    assert count("GetRun", "NOT_FOUND") == nf_before + 1
    n_after = REGISTRY.get_sample_value("pointillist_grpc_request_seconds_count", seconds_labels)
    assert n_after == (n_before or 0) + 3

    endpoint = start_metrics_server(0)
    try:
        body = await asyncio.to_thread(
            lambda: urllib.request.urlopen(endpoint.url, timeout=5).read().decode()
        )
    finally:
        endpoint.stop()
    line = (
        'pointillist_grpc_requests_total{code="OK",method="StartAcquisition",'
        f'service="{SIMULATOR}"}} {ok_before + 3}'
    )
    assert line in body
    assert "pointillist_grpc_request_seconds_bucket{" in body


async def test_oversized_message_is_rejected(servicer: FakeSimulator) -> None:
    srv = await rpc.create_server(
        [(simulator_pb2_grpc.add_SimulatorServicer_to_server, servicer)],
        service_names=[SIMULATOR],
        max_message_bytes=1024,
    )
    try:
        params = struct_pb2.Struct()
        params.update({"blob": "x" * 4096})
        request = simulator_pb2.AcquisitionRequest(
            frames=simulator_pb2.SimulationRequest(params=params), frames_per_batch=1
        )
        async with rpc.channel(srv.address) as chan:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await simulator_pb2_grpc.SimulatorStub(chan).StartAcquisition(request, timeout=5)
        assert err.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        await srv.shutdown(grace=0)


async def test_port_in_use_is_an_error(server: rpc.RpcServer) -> None:
    with pytest.raises(OSError, match=f"127.0.0.1:{server.port}"):
        await rpc.create_server([], service_names=[], port=server.port)


async def test_serve_until_signal_shuts_down(server: rpc.RpcServer) -> None:
    stopped: list[bool] = []
    server.add_shutdown_callback(lambda: stopped.append(True))
    serving = asyncio.create_task(server.serve_until_signal(grace=0, signals=[signal.SIGUSR1]))
    await asyncio.sleep(0)  # the task installs its signal handler before its first await
    os.kill(os.getpid(), signal.SIGUSR1)
    await asyncio.wait_for(serving, 5)
    assert stopped == [True]
    with pytest.raises(NotReady):
        await rpc.wait_healthy(server.address, timeout=0.3)


async def test_wait_healthy_unknown_service_fails_fast(server: rpc.RpcServer) -> None:
    with pytest.raises(NotFound, match=r"pointillist\.v1\.Nope"):
        await rpc.wait_healthy(server.address, "pointillist.v1.Nope", timeout=5)


async def test_wait_healthy_times_out_when_nothing_listens() -> None:
    free = await rpc.create_server([], service_names=[])
    address = free.address
    await free.shutdown(grace=0)
    with pytest.raises(NotReady, match="not healthy"):
        await rpc.wait_healthy(address, timeout=0.3)
