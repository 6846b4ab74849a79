"""python -m pointillist.localizer: the localizer service (gRPC + bus worker + /metrics)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated

from pointillist import __version__
from pointillist.core.config import ServiceConfig
from pointillist.core.runtime import Runtime
from pointillist.localizer.engine import Engine
from pointillist.localizer.service import LocalizerService, LocalizerWorker
from pointillist.v1 import localizer_pb2_grpc

SERVICE_NAME = "pointillist.v1.Localizer"


@dataclass
class LocalizerConfig(ServiceConfig):
    """The shared service options plus the localization method."""

    localizer_method: Annotated[str, "Localization method: cnn or mle."] = "cnn"
    localizer_model: Annotated[
        str, "CNN preset (2d, astig3d) or weights file; for mle: 2d or astig3d."
    ] = "2d"
    localizer_durable: Annotated[str, "Durable consumer name shared by all localizer replicas."] = (
        "localizer"
    )


async def serve(runtime: Runtime) -> None:
    config: LocalizerConfig = runtime.config  # type: ignore[assignment]
    engine = Engine(config.localizer_method, config.localizer_model, runtime.device)
    bus = await runtime.connect_bus()
    worker = LocalizerWorker(bus, engine, config.localizer_durable)
    await worker.start()
    await runtime.serve(
        [(localizer_pb2_grpc.add_LocalizerServicer_to_server, LocalizerService(engine))],
        service_names=[SERVICE_NAME],
        on_shutdown=[worker.stop, bus.close],
    )


def main(argv: list[str] | None = None) -> None:
    config = LocalizerConfig.from_args(
        argv, defaults={"grpc_port": 50052}, prog="python -m pointillist.localizer"
    )
    asyncio.run(serve(Runtime.start("localizer", config, version=__version__)))


if __name__ == "__main__":
    main()
