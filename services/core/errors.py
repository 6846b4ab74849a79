"""The project's own exceptions; one gRPC interceptor maps them to status codes."""

from __future__ import annotations


class PointillistError(Exception):
    """Base class of every error the project raises on purpose."""


class InvalidInput(PointillistError, ValueError):
    """The caller's data or parameters are wrong (gRPC INVALID_ARGUMENT)."""


class FormatError(InvalidInput):
    """A file cannot be read as the format it claims to be; names the file and column."""

    def __init__(self, path: object, message: str, column: str | None = None) -> None:
        self.path = str(path)
        self.column = column
        where = f"{self.path}" + (f", column {column!r}" if column else "")
        super().__init__(f"{where}: {message}")


class NotFound(PointillistError, LookupError):
    """A run, model or artefact does not exist (gRPC NOT_FOUND)."""


class NotReady(PointillistError):
    """The component cannot serve yet, e.g. a model is not loaded (gRPC UNAVAILABLE)."""


class BusError(PointillistError):
    """The message bus refused or failed an operation."""


class BusAuthError(BusError):
    """The NATS server rejected our credentials or requires some we did not give."""


class BusFull(BusError):
    """A stream stayed full for longer than the publisher's patience (backpressure)."""
