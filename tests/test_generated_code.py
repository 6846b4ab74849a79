"""The checked-in protobuf code must match what scripts/gen_proto.py produces now."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_generated_code_is_not_stale():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_proto.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_proto_has_generated_modules():
    import importlib

    for proto in (ROOT / "proto" / "pointillist" / "v1").glob("*.proto"):
        importlib.import_module(f"pointillist.v1.{proto.stem}_pb2")
