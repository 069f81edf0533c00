#!/usr/bin/env bash
# Run `train` on this machine (no container) against a SageMaker-layout directory.
#   local_test/train_host.sh [ML_ROOT]     default: a fresh copy of local_test/test_dir in build/ml
# The model lands in ML_ROOT/model; on failure ML_ROOT/output/failure says why.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
root="${1:-$repo/build/ml}"
if [ -z "${1:-}" ]; then
    rm -rf "$root" && mkdir -p "$root" && cp -r "$repo/local_test/test_dir/." "$root/"
fi
export PATH="$repo/.venv/bin:$PATH" SAGEMAKER_BASE_DIR="$root"
exec "$repo/container/program/train"
