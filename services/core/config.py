"""Service configuration from command-line flags and ``POINTILLIST_*`` environment variables.

Every field of :class:`ServiceConfig` is a flag (``--grpc-port``) and an environment
variable (``POINTILLIST_GRPC_PORT``); precedence is flag > environment > default. Help
text lives in the annotation: ``grpc_port: Annotated[int, "gRPC port..."] = 0``. A
service adds its own options by subclassing with more such fields, and sets its own
defaults (its port) with ``from_args(defaults=...)``.
``python -m pointillist.core.config`` prints the options table of
``docs/configuration.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import logging
import os
import re
import sys
import types
import typing
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Self, TextIO

import yaml

from pointillist.core.errors import InvalidInput

ENV_PREFIX = "POINTILLIST_"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


class ConfigError(InvalidInput):
    """An option has an invalid value; the message names the flag or variable."""


def env_var(name: str) -> str:
    """The environment variable of field ``name``: ``grpc_port`` -> ``POINTILLIST_GRPC_PORT``."""
    return ENV_PREFIX + name.upper()


def flag(name: str) -> str:
    """The command-line flag of field ``name``: ``grpc_port`` -> ``--grpc-port``."""
    return "--" + name.replace("_", "-")


def where(name: str) -> str:
    """How a user sets field ``name``, for error messages: ``--grpc-port/POINTILLIST_...``."""
    return f"{flag(name)}/{env_var(name)}"


def _base_type(annotation: Any) -> type:
    """``int``, ``str``, ``float``, ``bool`` or ``Path`` from ``T`` or ``T | None``."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        (annotation,) = [a for a in typing.get_args(annotation) if a is not type(None)]
    return annotation


def _convert(kind: type, raw: str) -> Any:
    """Parse one option value given as text; raises ValueError on a bad one."""
    if kind is bool:
        if raw.strip().lower() in _TRUE:
            return True
        if raw.strip().lower() in _FALSE:
            return False
        raise ValueError(f"expected one of {sorted(_TRUE | _FALSE)}, got {raw!r}")
    if kind is Path:
        return Path(raw).expanduser()
    try:
        return kind(raw)
    except ValueError:
        raise ValueError(f"expected {kind.__name__}, got {raw!r}") from None


@dataclasses.dataclass
class ServiceConfig:
    """Options every service shares: bus connection, gRPC and metrics endpoints, device."""

    nats_url: Annotated[str, "NATS server URL(s), comma-separated."] = "nats://127.0.0.1:4222"
    nats_user: Annotated[str | None, "NATS user name (with --nats-password)."] = None
    nats_password: Annotated[str | None, "NATS password."] = None
    nats_token: Annotated[str | None, "NATS authentication token."] = None
    nats_tls_ca: Annotated[Path | None, "CA certificate file to verify the NATS server."] = None
    nats_tls_cert: Annotated[Path | None, "Client certificate file for NATS mutual TLS."] = None
    nats_tls_key: Annotated[Path | None, "Client private key file for NATS mutual TLS."] = None
    grpc_host: Annotated[
        str, "Address the gRPC server binds; 0.0.0.0 to accept remote clients."
    ] = "127.0.0.1"
    grpc_port: Annotated[int, "gRPC port; 0 picks a free one (each service sets its own)."] = 0
    grpc_max_message_bytes: Annotated[int, "Largest gRPC message accepted or sent, in bytes."] = (
        64 * 1024 * 1024
    )
    metrics_host: Annotated[str, "Address the Prometheus /metrics endpoint binds."] = "127.0.0.1"
    metrics_port: Annotated[int, "Port of /metrics; 0 picks a free one."] = 0
    device: Annotated[str, "Compute device: auto (cuda when available), cpu, cuda or cuda:N."] = (
        "auto"
    )
    log_level: Annotated[str, "Logging threshold: DEBUG, INFO, WARNING, ERROR or CRITICAL."] = (
        "INFO"
    )
    data_dir: Annotated[Path, "Directory for local state (JetStream data, models)."] = Path(
        "~/.local/share/pointillist"
    )
    shutdown_grace_s: Annotated[
        float, "Seconds in-flight calls may take to finish after SIGTERM."
    ] = 10.0

    def __post_init__(self) -> None:
        """Check values whatever their source; errors name the flag and variable."""
        for name in ("grpc_port", "metrics_port"):
            port = getattr(self, name)
            if not 0 <= port <= 65535:
                raise ConfigError(f"{where(name)}: port must be in 0..65535, got {port}")
        if not _DEVICE.match(self.device):
            raise ConfigError(
                f"{where('device')}: expected auto, cpu, cuda or cuda:N, got {self.device!r}"
            )
        self.log_level = self.log_level.upper()
        if self.log_level not in LOG_LEVELS:
            raise ConfigError(
                f"{where('log_level')}: expected one of {', '.join(LOG_LEVELS)}, "
                f"got {self.log_level!r}"
            )
        if self.grpc_max_message_bytes <= 0:
            raise ConfigError(f"{where('grpc_max_message_bytes')}: must be > 0")
        if self.shutdown_grace_s < 0:
            raise ConfigError(f"{where('shutdown_grace_s')}: must be >= 0")
        self.data_dir = Path(self.data_dir).expanduser()

    @classmethod
    def options(cls) -> tuple[Option, ...]:
        """Every field as an :class:`Option` (name, type, default, help), in order."""
        return _options(cls)

    @classmethod
    def add_arguments(
        cls, parser: argparse.ArgumentParser, defaults: Mapping[str, Any] | None = None
    ) -> None:
        """Add one flag per field; unset flags stay absent so env and defaults can apply."""
        defaults = dict(defaults or {})
        group = parser.add_argument_group(f"{cls.__name__} (flag > environment > default)")
        for opt in cls.options():
            default = defaults.get(opt.name, opt.default)
            shown = "unset" if default is None else default
            group.add_argument(
                opt.flag,
                dest=opt.name,
                type=_flag_parser(opt.kind),
                default=argparse.SUPPRESS,
                help=f"{opt.help} [env {opt.env_var}; default {shown}]".replace("%", "%%"),
                metavar=opt.kind.__name__.upper(),
            )

    @classmethod
    def from_namespace(
        cls,
        namespace: argparse.Namespace,
        *,
        defaults: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Self:
        """Build from parsed flags, then ``POINTILLIST_*`` variables, then defaults.

        An empty variable unsets an option whose default is unset (``None``).
        """
        environ = os.environ if environ is None else environ
        defaults = dict(defaults or {})
        unknown = set(defaults) - {opt.name for opt in cls.options()}
        if unknown:
            raise ConfigError(f"unknown option(s) in defaults: {sorted(unknown)}")
        values: dict[str, Any] = {}
        for opt in cls.options():
            if hasattr(namespace, opt.name):
                values[opt.name] = getattr(namespace, opt.name)
            elif opt.env_var in environ:
                raw = environ[opt.env_var]
                try:
                    values[opt.name] = (
                        None if raw == "" and opt.default is None else _convert(opt.kind, raw)
                    )
                except ValueError as exc:
                    raise ConfigError(f"environment variable {opt.env_var}: {exc}") from None
            elif opt.name in defaults:
                values[opt.name] = defaults[opt.name]
        return cls(**values)

    @classmethod
    def from_args(
        cls,
        argv: Sequence[str] | None = None,
        *,
        defaults: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
        prog: str | None = None,
        description: str | None = None,
    ) -> Self:
        """Parse ``argv`` (default ``sys.argv[1:]``); a bad value exits with a usage error."""
        parser = argparse.ArgumentParser(prog=prog, description=description)
        cls.add_arguments(parser, defaults)
        namespace = parser.parse_args(argv)
        try:
            return cls.from_namespace(namespace, defaults=defaults, environ=environ)
        except ConfigError as exc:
            parser.error(str(exc))

    @classmethod
    def markdown_table(cls) -> str:
        """The options as a Markdown table (flag, variable, default, meaning) for the docs."""
        rows = [
            "| Flag | Environment variable | Default | Meaning |",
            "|---|---|---|---|",
        ]
        for opt in cls.options():
            default = "unset" if opt.default is None else f"`{opt.default}`"
            rows.append(f"| `{opt.flag}` | `{opt.env_var}` | {default} | {opt.help} |")
        return "\n".join(rows)


def _flag_parser(kind: type) -> Any:
    """An argparse ``type=`` for ``kind`` whose errors say what was expected."""

    def parse(raw: str) -> Any:
        try:
            return _convert(kind, raw)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = kind.__name__
    return parse


@dataclasses.dataclass(frozen=True)
class Option:
    """One config field as the user sees it: name, value type, default, help."""

    name: str
    kind: type
    default: Any
    help: str

    @property
    def flag(self) -> str:
        return flag(self.name)

    @property
    def env_var(self) -> str:
        return env_var(self.name)


@functools.cache
def _options(cls: type[ServiceConfig]) -> tuple[Option, ...]:
    hints = typing.get_type_hints(cls, include_extras=True)
    options = []
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        help_text = ""
        if typing.get_origin(hint) is Annotated:
            hint, help_text, *_ = typing.get_args(hint)
        options.append(Option(f.name, _base_type(hint), f.default, help_text))
    return tuple(options)


def client_address(host: str, port: int) -> str:
    """``host:port`` a local client dials for a server bound there (wildcards -> loopback)."""
    host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def resolve_device(name: str = "auto") -> str:
    """``auto`` -> ``cuda`` when torch sees a GPU, else ``cpu``; torch is imported lazily.

    An explicit ``cuda``/``cuda:N`` without a usable GPU raises ConfigError rather than
    failing later inside torch.
    """
    if not _DEVICE.match(name):
        raise ConfigError(f"device: expected auto, cpu, cuda or cuda:N, got {name!r}")
    if name == "cpu":
        return "cpu"
    try:
        import torch
    except ImportError:
        cuda = False
    else:
        cuda = torch.cuda.is_available()
    if name == "auto":
        return "cuda" if cuda else "cpu"
    if not cuda:
        raise ConfigError(f"device {name!r} requested but no CUDA GPU is available to torch")
    return name


class LogFormatter(logging.Formatter):
    """One line per record: ``time level service logger msg="..." key=value ...``.

    Extra attributes (``log.info("...", extra={"run_id": r})``) become ``key=value``
    pairs; tracebacks are JSON-escaped onto the same line so log shippers keep them whole.
    """

    _STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        parts = [
            when.replace("+00:00", "Z"),
            record.levelname,
            f"service={self.service}",
            f"logger={record.name}",
            f"msg={json.dumps(record.getMessage())}",
        ]
        for key, value in vars(record).items():
            if key not in self._STANDARD:
                parts.append(f"{key}={_logfmt(value)}")
        if record.exc_info:
            parts.append(f"exc={json.dumps(self.formatException(record.exc_info))}")
        return " ".join(parts)


def _logfmt(value: Any) -> str:
    """A value as logfmt: bare when it has no spaces or quotes, else JSON-quoted."""
    text = str(value)
    return text if text and not re.search(r'[\s"=]', text) else json.dumps(text)


def setup_logging(service: str, level: str = "INFO", stream: TextIO | None = None) -> None:
    """Send all logging to ``stream`` (stderr) as single lines tagged with ``service``.

    Replaces the root logger's handlers, so calling it again reconfigures cleanly.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(LogFormatter(service))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())


def plain_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Parameters from JSON, YAML or a protobuf Struct, whole-number floats made ints.

    Struct stores every number as a float (min_samples: 5 arrives as 5.0), and integer
    hyperparameters must validate as integers; a float parameter accepts an int alike.
    """

    def plain(value: Any) -> Any:
        if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
            return int(value)
        if isinstance(value, Mapping):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value

    return {str(k): plain(v) for k, v in (params or {}).items()}


def parse_params(text: str | Mapping[str, Any] | None, what: str = "params") -> dict[str, Any]:
    """Method parameters from a YAML/JSON mapping (text or already parsed)."""
    if text is None or text == "":
        return {}
    if isinstance(text, str):
        try:
            text = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidInput(f"{what}: not valid YAML/JSON: {exc}") from None
    if text is None:
        return {}
    if not isinstance(text, Mapping):
        raise InvalidInput(f"{what} must be a mapping of parameter names to values")
    return plain_params(text)


def parse_param(text: str) -> tuple[str, Any]:
    """``key=value`` with the value read as YAML (``5`` int, ``0.5`` float, ``a`` str)."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise InvalidInput(f"--param expects key=value, got {text!r}")
    try:
        return key, yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise InvalidInput(f"--param {key}: cannot read value {raw!r}: {exc}") from None


_Fields = typing.TypeVar("_Fields")


def replace_fields(base: _Fields, params: Mapping[str, Any], what: str) -> _Fields:
    """The frozen dataclass ``base`` with ``params`` over its fields; InvalidInput names
    unknown keys ('unknown <what> parameter(s) [...]') and rejected values."""
    names = {f.name for f in dataclasses.fields(base)}  # type: ignore[arg-type]
    unknown = sorted(set(params) - names)
    if unknown:
        raise InvalidInput(f"unknown {what} parameter(s) {unknown}; known: {sorted(names)}")
    try:
        return dataclasses.replace(base, **params)  # type: ignore[type-var]
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{what} parameters: {exc}") from None


def method_params(options: dict[str, Any], extra: tuple[str, ...]) -> dict[str, Any]:
    """The method's keyword parameters from the named flags given and the --param pairs."""
    params = {k: v for k, v in options.items() if v is not None}
    for text in extra:
        key, value = parse_param(text)
        if key in params:
            raise InvalidInput(f"parameter {key!r} is given twice")
        params[key] = value
    return params


if __name__ == "__main__":
    print(ServiceConfig.markdown_table())
