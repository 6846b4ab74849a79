"""Regenerate the Python code for proto/pointillist/v1/*.proto (python, grpc, .pyi stubs).

    python scripts/gen_proto.py          # write the generated files next to the .proto files
    python scripts/gen_proto.py --check  # exit 1 if the checked-in files are stale

The generated package is importable as ``pointillist.v1`` (pyproject maps it to proto/).
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parents[1]
PROTO_ROOT = ROOT / "proto"
PACKAGE_DIR = PROTO_ROOT / "pointillist" / "v1"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def generate(out_root: Path) -> list[Path]:
    """Run protoc for every .proto into ``out_root``; return the generated files."""
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in PACKAGE_DIR.glob("*.proto"))
    include = str(Path(protoc.__file__).parent / "_proto")
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--python_out={out_root}",
        f"--pyi_out={out_root}",
        f"--grpc_python_out={out_root}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    out_pkg = out_root / "pointillist" / "v1"
    return sorted(p for p in out_pkg.iterdir() if p.name.endswith(GENERATED_SUFFIXES))


def stale_files() -> list[str]:
    """Names of generated files that differ from (or are missing in) the checked-in tree."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = {p.name: p for p in generate(Path(tmp))}
        current = {p.name for p in PACKAGE_DIR.iterdir() if p.name.endswith(GENERATED_SUFFIXES)}
        stale = [
            n
            for n, p in fresh.items()
            if not (PACKAGE_DIR / n).exists() or not filecmp.cmp(p, PACKAGE_DIR / n, shallow=False)
        ]
        return sorted(stale + sorted(current - fresh.keys()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check, write nothing")
    if parser.parse_args().check:
        stale = stale_files()
        if stale:
            print("stale generated code (run scripts/gen_proto.py):", *stale, sep="\n  ")
            return 1
        print("generated code is up to date")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        for old in PACKAGE_DIR.iterdir():
            if old.name.endswith(GENERATED_SUFFIXES):
                old.unlink()
        for path in generate(Path(tmp)):
            shutil.copy(path, PACKAGE_DIR / path.name)
            print("wrote", (PACKAGE_DIR / path.name).relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
