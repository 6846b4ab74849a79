"""The start-up and shutdown sequence every service's ``__main__`` shares.

:meth:`Runtime.start` sets up logging, resolves the device, starts /metrics and
publishes ``pointillist_service_info``; :meth:`Runtime.serve` starts the gRPC server and
serves until SIGTERM/SIGINT, then shuts down gracefully (health NOT_SERVING, shutdown
callbacks such as stopping bus consumers, ``server.stop(grace)``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from pointillist.core.bus import Bus, connect
from pointillist.core.config import ServiceConfig, resolve_device, setup_logging
from pointillist.core.metrics import MetricsServer, set_service_info, start_metrics_server
from pointillist.core.rpc import Registration, ShutdownCallback, create_server

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """One service process: its config, resolved device and running /metrics endpoint."""

    service: str
    config: ServiceConfig
    version: str
    device: str
    metrics: MetricsServer

    @classmethod
    def start(cls, service: str, config: ServiceConfig, *, version: str) -> Runtime:
        """Configure logging, pick the device, start /metrics and publish service info."""
        setup_logging(service, config.log_level)
        device = resolve_device(config.device)
        metrics = start_metrics_server(config.metrics_port, config.metrics_host)
        set_service_info(service, version=version, device=device)
        return cls(service, config, version, device, metrics)

    async def serve(
        self,
        servicers: Sequence[Registration],
        *,
        service_names: Sequence[str],
        on_shutdown: Sequence[ShutdownCallback] = (),
    ) -> None:
        """Serve gRPC until SIGTERM/SIGINT, then shut down and stop /metrics.

        Logs one ``ready`` line with ``grpc=host:port metrics=URL device=...`` once the
        server accepts calls, so a supervisor can find ports chosen with port 0.
        """
        try:
            server = await create_server(
                servicers,
                service_names=service_names,
                host=self.config.grpc_host,
                port=self.config.grpc_port,
                max_message_bytes=self.config.grpc_max_message_bytes,
            )
            for callback in on_shutdown:
                server.add_shutdown_callback(callback)
            log.info(
                "ready",
                extra={
                    "grpc": server.address,
                    "metrics": self.metrics.url,
                    "device": self.device,
                    "version": self.version,
                },
            )
            await server.serve_until_signal(self.config.shutdown_grace_s)
            log.info("stopped")
        finally:
            self.metrics.stop()

    async def connect_bus(self) -> Bus:
        """Connect to NATS with the configured URL, credentials and TLS files."""
        c = self.config
        return await connect(
            c.nats_url,
            user=c.nats_user,
            password=c.nats_password,
            token=c.nats_token,
            tls_ca=c.nats_tls_ca,
            tls_cert=c.nats_tls_cert,
            tls_key=c.nats_tls_key,
            name=f"pointillist-{self.service}",
        )
