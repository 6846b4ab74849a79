"""python -m pointillist.clusterer: the clusterer service (gRPC + bus worker + /metrics)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated

from pointillist import __version__
from pointillist.clusterer.service import ClustererService, ClustererWorker, Defaults
from pointillist.core.config import ConfigError, ServiceConfig, parse_params, where
from pointillist.core.errors import PointillistError
from pointillist.core.runtime import Runtime
from pointillist.v1 import clusterer_pb2_grpc

SERVICE_NAME = "pointillist.v1.Clusterer"


@dataclass
class ClustererConfig(ServiceConfig):
    """The shared service options plus the default clustering method of runs and calls."""

    clusterer_method: Annotated[
        str, "Default clustering method: dbscan, hdbscan, miro or caml."
    ] = "dbscan"
    clusterer_params: Annotated[
        str,
        "Default method parameters as a YAML/JSON mapping, e.g. '{eps_nm: 30, min_samples: 5}'.",
    ] = "{}"
    clusterer_durable: Annotated[str, "Durable consumer name shared by all clusterer replicas."] = (
        "clusterer"
    )
    clusterer_idle_timeout_s: Annotated[
        float,
        "Seconds without new localizations after which an incomplete run is clustered as it is.",
    ] = 300.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.clusterer_idle_timeout_s <= 0:
            raise ConfigError(f"{where('clusterer_idle_timeout_s')}: must be > 0")
        try:
            self.defaults().check()
        except PointillistError as exc:
            raise ConfigError(
                f"{where('clusterer_method')}, {where('clusterer_params')}: {exc}"
            ) from None

    def defaults(self) -> Defaults:
        """The default method and parameters these options give."""
        return Defaults(self.clusterer_method, parse_params(self.clusterer_params, "params"))


async def serve(runtime: Runtime) -> None:
    config: ClustererConfig = runtime.config  # type: ignore[assignment]
    defaults = config.defaults()
    bus = await runtime.connect_bus()
    worker = ClustererWorker(
        bus, defaults, config.clusterer_durable, idle_timeout_s=config.clusterer_idle_timeout_s
    )
    await worker.start()
    await runtime.serve(
        [(clusterer_pb2_grpc.add_ClustererServicer_to_server, ClustererService(defaults))],
        service_names=[SERVICE_NAME],
        on_shutdown=[worker.stop, bus.close],
    )


def main(argv: list[str] | None = None) -> None:
    config = ClustererConfig.from_args(
        argv, defaults={"grpc_port": 50053}, prog="python -m pointillist.clusterer"
    )
    asyncio.run(serve(Runtime.start("clusterer", config, version=__version__)))


if __name__ == "__main__":
    main()
