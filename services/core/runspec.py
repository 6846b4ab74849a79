"""RunSpec <-> YAML: a pipeline saved as a file, versioned, and re-run on other data.

The YAML is the protobuf JSON mapping of `pointillist.v1.RunSpec` (field names as in the
.proto), so a spec written by the dashboard, the CLI or by hand means the same thing.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import yaml
from google.protobuf import json_format
from google.protobuf.message import Message

from pointillist.core.errors import InvalidInput
from pointillist.v1 import run_pb2


def new_run_id(prefix: str = "run") -> str:
    """A fresh run id, safe as a NATS subject token."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


_INT64_FIELDS = {"seed", "seq", "done", "total"}
_INT64_MAPS = {"counters", "last_seq"}


_INT64_FIELDS = {"seed", "seq", "done", "total"}
_INT64_MAPS = {"counters", "last_seq"}


def _ints_back(obj: Any) -> Any:
    """Readable YAML: protobuf's JSON mapping writes 64-bit ints as strings and Struct
    numbers as floats; write integral values as YAML ints (they parse back identically)."""
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if k in _INT64_FIELDS and isinstance(v, str):
                out[k] = int(v)
            elif k in _INT64_MAPS and isinstance(v, dict):
                out[k] = {name: int(count) for name, count in v.items()}
            else:
                out[k] = _ints_back(v)
        return out
    if isinstance(obj, list):
        return [_ints_back(v) for v in obj]
    if isinstance(obj, float) and obj.is_integer() and abs(obj) < 2**53:
        return int(obj)
    return obj


def spec_to_dict(spec: run_pb2.RunSpec) -> dict[str, Any]:
    return _ints_back(json_format.MessageToDict(spec, preserving_proto_field_name=True))


def spec_from_dict(data: dict[str, Any], origin: str = "run spec") -> run_pb2.RunSpec:
    """Parse a dict into a RunSpec; unknown or mistyped fields raise InvalidInput."""
    if not isinstance(data, dict):
        raise InvalidInput(f"{origin}: expected a mapping at the top level")
    try:
        return json_format.ParseDict(data, run_pb2.RunSpec())
    except json_format.ParseError as exc:
        raise InvalidInput(f"{origin}: {exc}") from None


def dump_yaml(spec: run_pb2.RunSpec) -> str:
    return yaml.safe_dump(spec_to_dict(spec), sort_keys=False)


def yaml_dump_message(message: Message) -> str:
    """Any message (e.g. a RunStatus) as readable YAML."""
    return yaml.safe_dump(
        _ints_back(json_format.MessageToDict(message, preserving_proto_field_name=True)),
        sort_keys=False,
    )


def load_yaml(text: str, origin: str = "run spec") -> run_pb2.RunSpec:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{origin}: not valid YAML: {exc}") from None
    return spec_from_dict(data, origin)


def read_spec(path: str | Path) -> run_pb2.RunSpec:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read run spec: {exc.strerror}") from None
    return load_yaml(text, str(path))


def write_spec(spec: run_pb2.RunSpec, path: str | Path) -> None:
    Path(path).write_text(dump_yaml(spec))
