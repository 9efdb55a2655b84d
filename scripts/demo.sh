#!/usr/bin/env bash
# One command on a fresh machine: install (cached, into ./.venv) and run the demo pipeline with
# the monitor, alerting, local receivers and (if installed) a Prometheus that scrapes it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec "${STREAMSCOPE_VENV:-$PWD/.venv}/bin/streamscope" demo "$@"
