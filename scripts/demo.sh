#!/usr/bin/env bash
# Set up (first run) and run the hub's demo on the embedded defaults: no broker or database needed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/lgsp demo "$@"
