"""python -m pointillist.simulator: the simulator service (gRPC + bus + /metrics)."""

from __future__ import annotations

import asyncio

from pointillist import __version__
from pointillist.core.config import ServiceConfig
from pointillist.core.runtime import Runtime
from pointillist.simulator.service import SimulatorService
from pointillist.v1 import simulator_pb2_grpc

SERVICE_NAME = "pointillist.v1.Simulator"


async def serve(runtime: Runtime) -> None:
    bus = await runtime.connect_bus()
    servicer = SimulatorService(bus)
    await runtime.serve(
        [(simulator_pb2_grpc.add_SimulatorServicer_to_server, servicer)],
        service_names=[SERVICE_NAME],
        on_shutdown=[servicer.close, bus.close],
    )


def main(argv: list[str] | None = None) -> None:
    config = ServiceConfig.from_args(
        argv, defaults={"grpc_port": 50051}, prog="python -m pointillist.simulator"
    )
    asyncio.run(serve(Runtime.start("simulator", config, version=__version__)))


if __name__ == "__main__":
    main()
