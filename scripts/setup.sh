#!/usr/bin/env bash
# Installs everything streamscope, its demo and its tests need on a bare Debian/Ubuntu machine.
#
# Python packages go into a project virtual environment ($STREAMSCOPE_VENV, default ./.venv), so
# a stock distribution whose python3 is "externally managed" (PEP 668) works as well as pyenv.
# Idempotent and cached: Debian packages are installed once, pip uses its cache, the pyspark
# wheel (a 400+ MB sdist built locally) is built once into $STREAMSCOPE_CACHE/wheels, and the
# Kafka/Spark jars are resolved once from Maven Central into $STREAMSCOPE_CACHE/jars.
# It never stops or kills a process: a daemon a Debian package starts (prometheus on :9090) is
# left alone; tests and the demo start their own on free ports.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${STREAMSCOPE_CACHE:-$HOME/.cache/streamscope}"
VENV="${STREAMSCOPE_VENV:-$PWD/.venv}"
PYSPARK_VERSION=4.2.0   # must match spark-sql-kafka-0-10_2.13 (see demo/jars.py)
BASE_PYTHON="${PYTHON:-python3}"
step() { printf '\n==> [%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
apt_install() {
  step "installing Debian packages: $*"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# Debian packages: browser for the dashboard tests, Prometheus/promtool/Alertmanager, and venv
# support for Debian's own python3 (python3-venv ships ensurepip there).
DEBS=(chromium chromium-driver prometheus prometheus-alertmanager)
if [ "$(readlink -f "$(command -v "$BASE_PYTHON")")" = "$(readlink -f /usr/bin/python3 2>/dev/null)" ]; then
  DEBS+=(python3-venv)
fi
missing=()
for p in "${DEBS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then apt_install "${missing[@]}"; fi

if [ ! -x "$VENV/bin/python" ]; then
  step "virtual environment $VENV (from $("$BASE_PYTHON" --version 2>&1))"
  "$BASE_PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
"$PY" -m pip install -q --disable-pip-version-check --upgrade "pip>=23.1"

step "pyspark $PYSPARK_VERSION wheel (built once, cached in $CACHE/wheels; the first build takes several minutes)"
mkdir -p "$CACHE/wheels"
if ! ls "$CACHE/wheels"/pyspark-"$PYSPARK_VERSION"-*.whl >/dev/null 2>&1; then
  "$PY" -m pip wheel --disable-pip-version-check --no-deps --progress-bar on \
    "pyspark==$PYSPARK_VERSION" -w "$CACHE/wheels"
fi

# The first install shows pip's downloads as they happen; later runs (all cached) stay quiet.
if [ -x "$VENV/bin/streamscope" ]; then PIP_OUTPUT=(-q); else PIP_OUTPUT=(--progress-bar on); fi
step "Python packages into $VENV"
"$PY" -m pip install "${PIP_OUTPUT[@]}" --disable-pip-version-check --find-links "$CACHE/wheels" -e ".[test,spark]"

# Docker Compose v2, for the test that validates docker-compose.yml with Compose itself (no Docker
# engine needed). Debian has no Compose v2 package: in CI (or with STREAMSCOPE_BUILD_COMPOSE=1) it is
# built once from the Go module proxy into $CACHE/bin (a few minutes the first time).
COMPOSE_VERSION=v5.6.0
if { [ -n "${CI:-}" ] || [ -n "${STREAMSCOPE_BUILD_COMPOSE:-}" ]; } && [ ! -x "$CACHE/bin/docker-compose" ] \
    && ! docker compose version >/dev/null 2>&1; then
  if command -v go >/dev/null 2>&1; then
    step "Docker Compose $COMPOSE_VERSION from the Go module proxy (built once into $CACHE/bin)"
    src="$(go mod download -json "github.com/docker/compose/v5@$COMPOSE_VERSION" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
    work="$(mktemp -d)"
    cp -r "$src/." "$work" && chmod -R u+w "$work"
    mkdir -p "$CACHE/bin"
    (cd "$work" && go build -o "$CACHE/bin/docker-compose" ./cmd)
    rm -rf "$work"
  else
    step "no Go toolchain: Docker Compose is not built (the compose test then fails in CI)"
  fi
fi

step "Kafka and Spark connector jars (Maven Central, ~100 MB the first time, cached in $CACHE/jars)"
"$PY" -m demo.jars kafka kafka39 spark-kafka
step "ready: $VENV/bin/streamscope (setup took $SECONDS s)"
