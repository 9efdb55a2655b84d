#!/usr/bin/env bash
# One command on a fresh machine: install (cached) and run the demo pipeline with the monitor.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec streamscope demo "$@"
