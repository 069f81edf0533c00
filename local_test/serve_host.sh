#!/usr/bin/env bash
# Run `serve` (nginx -> gunicorn -> Flask) on this machine against ML_ROOT/model.
#   local_test/serve_host.sh [ML_ROOT]     default: build/ml (what train_host.sh wrote)
# Port: SAGEMAKER_BIND_TO_PORT (default 8080). Ctrl-C drains and stops.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$repo/.venv/bin:/usr/sbin:$PATH" SAGEMAKER_BASE_DIR="${1:-$repo/build/ml}"
export SERVE_LISTEN_ADDRESS="${SERVE_LISTEN_ADDRESS:-127.0.0.1}"
exec "$repo/container/program/serve"
