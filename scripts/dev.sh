#!/usr/bin/env bash
# Set up a virtual environment with everything Pointillist needs, then run a task.
#   bash scripts/dev.sh demo   # set up, then run the demo (writes demo-report/)
#   bash scripts/dev.sh test   # set up, then run the test suite
#   bash scripts/dev.sh setup  # set up only
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${POINTILLIST_VENV:-.venv}
PY=${PYTHON:-python3}

setup() {
  if [ ! -x "$VENV/bin/python" ]; then
    echo "[setup] creating $VENV"
    "$PY" -m venv "$VENV"
  fi
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -U pip
  # torch is pinned to 2.13.0: the CPU wheel that installs offline here.
  echo "[setup] installing pointillist[all,test] (editable)"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e ".[all,test]"
  # Prometheus is optional for the stack; install Debian's package when we are allowed to.
  if ! command -v prometheus >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "[setup] installing Debian's prometheus (optional; used by 'pointillist up')"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus) \
      >/dev/null 2>&1 || echo "[setup] prometheus not installed; the stack runs without it"
  fi
}

task=${1:-setup}
shift || true
case "$task" in
  setup) setup ;;
  demo) setup; exec "$VENV/bin/pointillist" demo "$@" ;;
  test)
    setup
    "$VENV/bin/python" scripts/gen_proto.py --check
    "$VENV/bin/ruff" check .
    exec "$VENV/bin/python" -m pytest -q -p no:cacheprovider "$@" ;;
  *) echo "usage: $0 setup|demo|test" >&2; exit 2 ;;
esac
