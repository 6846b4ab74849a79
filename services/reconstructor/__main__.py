"""python -m pointillist.reconstructor: the HOLLy service (gRPC + bus worker + /metrics)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated

from pointillist import __version__
from pointillist.core.config import ConfigError, ServiceConfig, parse_params, where
from pointillist.core.errors import PointillistError
from pointillist.core.runtime import Runtime
from pointillist.reconstructor.engine import Settings
from pointillist.reconstructor.service import ReconstructorService, ReconstructorWorker
from pointillist.v1 import reconstructor_pb2_grpc

SERVICE_NAME = "pointillist.v1.Reconstructor"


@dataclass
class ReconstructorServiceConfig(ServiceConfig):
    """The shared service options plus the default HOLLy settings of view sets."""

    recon_params: Annotated[
        str,
        "Default HOLLy parameters as a YAML/JSON mapping (ReconConfig fields and n_runs), "
        "e.g. '{epochs: 20, n_points: 200, n_runs: 3}'.",
    ] = "{}"
    recon_durable: Annotated[str, "Durable consumer name shared by all reconstructor replicas."] = (
        "reconstructor"
    )
    recon_idle_timeout_s: Annotated[
        float, "Seconds without new particles after which an incomplete run is processed as it is."
    ] = 300.0
    recon_cancel_poll_s: Annotated[
        float,
        "Seconds between reads of a training run's registry state (CANCELLED stops the run).",
    ] = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("recon_idle_timeout_s", "recon_cancel_poll_s"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{where(name)}: must be > 0")
        try:
            self.defaults("cpu")
        except PointillistError as exc:
            raise ConfigError(f"{where('recon_params')}: {exc}") from None

    def defaults(self, device: str) -> Settings:
        """The default settings these options give, training on ``device``."""
        return Settings().with_params({"device": device, **parse_params(self.recon_params)})


async def serve(runtime: Runtime) -> None:
    config: ReconstructorServiceConfig = runtime.config  # type: ignore[assignment]
    defaults = config.defaults(runtime.device)
    bus = await runtime.connect_bus()
    worker = ReconstructorWorker(
        bus,
        defaults,
        config.recon_durable,
        idle_timeout_s=config.recon_idle_timeout_s,
        cancel_poll_s=config.recon_cancel_poll_s,
    )
    await worker.start()
    await runtime.serve(
        [
            (
                reconstructor_pb2_grpc.add_ReconstructorServicer_to_server,
                ReconstructorService(bus.artefacts, defaults, worker),
            )
        ],
        service_names=[SERVICE_NAME],
        on_shutdown=[worker.stop, bus.close],
    )


def main(argv: list[str] | None = None) -> None:
    config = ReconstructorServiceConfig.from_args(
        argv, defaults={"grpc_port": 50055}, prog="python -m pointillist.reconstructor"
    )
    asyncio.run(serve(Runtime.start("reconstructor", config, version=__version__)))


if __name__ == "__main__":
    main()
