"""Configuration: precedence flag > env > service default > default, errors, docs, logging."""

from __future__ import annotations

import argparse
import dataclasses
import io
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import pytest

from pointillist.core.config import (
    ConfigError,
    ServiceConfig,
    client_address,
    resolve_device,
    setup_logging,
)

DOC = Path(__file__).parents[2] / "docs" / "configuration.md"


@dataclasses.dataclass
class LocalizerConfig(ServiceConfig):
    """A service's own options, added by subclassing."""

    model: Annotated[str, "Model artefact name@version."] = "cnn@1"
    batch_frames: Annotated[int, "Frames per inference batch."] = 32
    half_precision: Annotated[bool, "Run the model in float16."] = False


def test_defaults_without_flags_or_env() -> None:
    config = ServiceConfig.from_args([], environ={})
    assert config.nats_url == "nats://127.0.0.1:4222"
    assert config.nats_user is None
    assert config.grpc_host == "127.0.0.1"
    assert config.grpc_port == 0
    assert config.device == "auto"
    assert config.log_level == "INFO"
    assert config.data_dir == Path("~/.local/share/pointillist").expanduser()


def test_precedence_flag_over_env_over_service_default_over_default() -> None:
    defaults = {"grpc_port": 50051, "metrics_port": 9101, "device": "cpu"}
    environ = {"POINTILLIST_GRPC_PORT": "6000", "POINTILLIST_DEVICE": "cuda"}
    config = ServiceConfig.from_args(["--device", "cpu"], defaults=defaults, environ=environ)
    assert config.device == "cpu"  # flag beats env
    assert config.grpc_port == 6000  # env beats the service default
    assert config.metrics_port == 9101  # service default beats the class default
    assert config.nats_url == "nats://127.0.0.1:4222"  # class default


def test_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POINTILLIST_NATS_URL", "nats://bus:4222")
    monkeypatch.setenv("POINTILLIST_NATS_TLS_CA", "~/ca.pem")
    monkeypatch.setenv("POINTILLIST_LOG_LEVEL", "debug")
    config = ServiceConfig.from_args([])
    assert config.nats_url == "nats://bus:4222"
    assert config.nats_tls_ca == Path("~/ca.pem").expanduser()
    assert config.log_level == "DEBUG"


def test_empty_env_unsets_an_optional_option() -> None:
    config = ServiceConfig.from_args(
        ["--nats-user", "alice"], environ={"POINTILLIST_NATS_TOKEN": ""}
    )
    assert config.nats_user == "alice"
    assert config.nats_token is None


def test_bad_env_value_names_the_variable(capsys: pytest.CaptureFixture[str]) -> None:
    environ = {"POINTILLIST_GRPC_PORT": "fifty"}
    with pytest.raises(ConfigError, match="POINTILLIST_GRPC_PORT: expected int, got 'fifty'"):
        ServiceConfig.from_namespace(argparse.Namespace(), environ=environ)
    with pytest.raises(SystemExit) as exit_:
        ServiceConfig.from_args([], environ=environ, prog="svc")
    assert exit_.value.code == 2
    assert "POINTILLIST_GRPC_PORT: expected int, got 'fifty'" in capsys.readouterr().err


def test_bad_flag_value_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        ServiceConfig.from_args(["--metrics-port", "x9"], environ={})
    assert exit_.value.code == 2
    assert "--metrics-port: expected int, got 'x9'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"POINTILLIST_GRPC_PORT": "70000"}, "--grpc-port/POINTILLIST_GRPC_PORT: port must be"),
        ({"POINTILLIST_DEVICE": "tpu"}, "--device/POINTILLIST_DEVICE: expected auto, cpu"),
        ({"POINTILLIST_LOG_LEVEL": "LOUD"}, "--log-level/POINTILLIST_LOG_LEVEL: expected one"),
        ({"POINTILLIST_SHUTDOWN_GRACE_S": "-1"}, "POINTILLIST_SHUTDOWN_GRACE_S: must be >= 0"),
    ],
)
def test_out_of_range_values_name_flag_and_variable(
    environ: dict[str, str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        ServiceConfig.from_args([], environ=environ)
    assert message in capsys.readouterr().err


def test_direct_construction_is_validated_too() -> None:
    with pytest.raises(ConfigError, match="POINTILLIST_METRICS_PORT"):
        ServiceConfig(metrics_port=-1)
    assert ServiceConfig(device="cuda:1").device == "cuda:1"


def test_unknown_service_default_is_rejected() -> None:
    with pytest.raises(ConfigError, match="grpc_prot"):
        ServiceConfig.from_namespace(argparse.Namespace(), defaults={"grpc_prot": 1})


def test_subclass_adds_options_with_flags_and_env() -> None:
    config = LocalizerConfig.from_args(
        ["--batch-frames", "8", "--grpc-port", "7001"],
        environ={"POINTILLIST_HALF_PRECISION": "yes", "POINTILLIST_MODEL": "cnn@2"},
    )
    assert (config.batch_frames, config.half_precision, config.model) == (8, True, "cnn@2")
    assert config.grpc_port == 7001
    names = [opt.name for opt in LocalizerConfig.options()]
    assert names[-3:] == ["model", "batch_frames", "half_precision"]
    with pytest.raises(ConfigError, match="POINTILLIST_HALF_PRECISION"):
        LocalizerConfig.from_namespace(
            argparse.Namespace(), environ={"POINTILLIST_HALF_PRECISION": "maybe"}
        )


def test_help_shows_env_var_and_service_default(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        ServiceConfig.from_args(["--help"], defaults={"grpc_port": 50051}, environ={})
    out = capsys.readouterr().out
    assert "POINTILLIST_GRPC_PORT; default 50051" in out


def test_every_option_has_help_and_the_doc_is_current() -> None:
    assert all(opt.help for opt in ServiceConfig.options())
    doc = DOC.read_text()
    assert ServiceConfig.markdown_table() in doc, (
        "docs/configuration.md is stale: paste `python -m pointillist.core.config` into it"
    )
    for opt in ServiceConfig.options():
        assert f"`{opt.flag}`" in doc and f"`{opt.env_var}`" in doc


def test_resolve_device() -> None:
    assert resolve_device("cpu") == "cpu"
    try:
        import torch
    except ImportError:
        has_cuda = False
    else:
        has_cuda = torch.cuda.is_available()
    assert resolve_device("auto") == ("cuda" if has_cuda else "cpu")
    if has_cuda:
        assert resolve_device("cuda:0") == "cuda:0"
    else:
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            resolve_device("cuda")
    with pytest.raises(ConfigError, match="'gpu'"):
        resolve_device("gpu")


def test_config_does_not_import_torch() -> None:
    code = (
        "import sys\n"
        "from pointillist.core.config import ServiceConfig, resolve_device\n"
        "ServiceConfig.from_args([], environ={}); resolve_device('cpu')\n"
        "assert 'torch' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_client_address() -> None:
    assert client_address("0.0.0.0", 50051) == "127.0.0.1:50051"
    assert client_address("::", 1) == "[::1]:1"
    assert client_address("10.0.0.2", 2) == "10.0.0.2:2"


@pytest.fixture
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("restore_root_logger")
def test_log_lines_are_single_lines_with_service_and_extras() -> None:
    stream = io.StringIO()
    setup_logging("localizer", "DEBUG", stream=stream)
    log = logging.getLogger("pointillist.localizer.test")
    log.debug("batch done", extra={"run_id": "r 1", "frames": 10})
    try:
        raise ValueError("bad\nframe")
    except ValueError:
        log.exception("failed")
    first, second = stream.getvalue().splitlines()
    assert " DEBUG service=localizer logger=pointillist.localizer.test " in first
    assert first.endswith('msg="batch done" run_id="r 1" frames=10')
    assert 'msg="failed" exc="Traceback' in second
    assert "ValueError: bad\\nframe" in second
