#!/usr/bin/env bash
# Installs everything streamscope, its demo and its tests need on a bare Debian machine.
# Idempotent and cached: Debian packages are installed once, pip uses its cache, the pyspark
# wheel (a 400+ MB sdist built locally) is built once into $STREAMSCOPE_CACHE/wheels, and the
# Kafka/Spark jars are resolved once from Maven Central into $STREAMSCOPE_CACHE/jars.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${STREAMSCOPE_CACHE:-$HOME/.cache/streamscope}"
PYSPARK_VERSION=4.2.0   # must match spark-sql-kafka-0-10_2.13 (see demo/jars.py)
PYTHON="${PYTHON:-python3}"
step() { printf '\n==> %s\n' "$*" >&2; }

# Debian packages: browser for the dashboard tests, Prometheus/promtool/Alertmanager.
DEBS=(chromium chromium-driver prometheus prometheus-alertmanager)
missing=()
for p in "${DEBS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  step "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The Debian prometheus package starts a daemon on :9090; tests start their own on free ports.
if command -v systemctl >/dev/null 2>&1; then systemctl stop prometheus prometheus-alertmanager 2>/dev/null || true; fi
pkill -x prometheus 2>/dev/null || true
pkill -f prometheus-alertmanager 2>/dev/null || true

step "pyspark $PYSPARK_VERSION wheel (built once, cached in $CACHE/wheels)"
mkdir -p "$CACHE/wheels"
if ! ls "$CACHE/wheels"/pyspark-"$PYSPARK_VERSION"-*.whl >/dev/null 2>&1; then
  "$PYTHON" -m pip wheel --no-deps "pyspark==$PYSPARK_VERSION" -w "$CACHE/wheels"
fi

step "Python packages"
"$PYTHON" -m pip install -q --disable-pip-version-check --find-links "$CACHE/wheels" -e ".[test,spark]"

step "Kafka and Spark connector jars (Maven Central, cached in $CACHE/jars)"
"$PYTHON" -m demo.jars kafka kafka39 spark-kafka
