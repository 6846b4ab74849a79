"""python -m pointillist.vae: the PC-VAE service (gRPC + bus worker + /metrics)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated

from pointillist import __version__
from pointillist.core.config import ConfigError, ServiceConfig, parse_params, where
from pointillist.core.errors import PointillistError
from pointillist.core.runtime import Runtime
from pointillist.v1 import vae_pb2_grpc
from pointillist.vae.engine import Settings
from pointillist.vae.service import VaeService, VaeWorker

SERVICE_NAME = "pointillist.v1.Vae"


@dataclass
class VaeServiceConfig(ServiceConfig):
    """The shared service options plus the default training and analysis of particle sets."""

    vae_params: Annotated[
        str,
        "Default PC-VAE parameters as a YAML/JSON mapping (VaeConfig fields, analyze, n_bins, "
        "kind, axes: latent or independent), e.g. '{epochs: 8, latent_dim: 8, analyze: true}'.",
    ] = "{}"
    vae_durable: Annotated[str, "Durable consumer name shared by all VAE replicas."] = "vae"
    vae_idle_timeout_s: Annotated[
        float, "Seconds without new particles after which an incomplete run is processed as it is."
    ] = 300.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.vae_idle_timeout_s <= 0:
            raise ConfigError(f"{where('vae_idle_timeout_s')}: must be > 0")
        try:
            self.defaults("cpu")
        except PointillistError as exc:
            raise ConfigError(f"{where('vae_params')}: {exc}") from None

    def defaults(self, device: str) -> Settings:
        """The default settings these options give, training on ``device``."""
        return Settings().with_params({"device": device, **parse_params(self.vae_params)})


async def serve(runtime: Runtime) -> None:
    config: VaeServiceConfig = runtime.config  # type: ignore[assignment]
    defaults = config.defaults(runtime.device)
    bus = await runtime.connect_bus()
    worker = VaeWorker(bus, defaults, config.vae_durable, idle_timeout_s=config.vae_idle_timeout_s)
    await worker.start()
    await runtime.serve(
        [(vae_pb2_grpc.add_VaeServicer_to_server, VaeService(bus.artefacts, defaults))],
        service_names=[SERVICE_NAME],
        on_shutdown=[worker.stop, bus.close],
    )


def main(argv: list[str] | None = None) -> None:
    config = VaeServiceConfig.from_args(
        argv, defaults={"grpc_port": 50054}, prog="python -m pointillist.vae"
    )
    asyncio.run(serve(Runtime.start("vae", config, version=__version__)))


if __name__ == "__main__":
    main()
