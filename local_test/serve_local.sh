#!/usr/bin/env bash
# Run `serve` in the image on port 8080 with local_test/test_dir mounted at /opt/ml
# (train first: local_test/train_local.sh). Stop with Ctrl-C.
#   local_test/serve_local.sh [TAG] [extra run args (start with -), e.g. -e SAGEMAKER_MODEL_SERVER_WORKERS=2]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=container_engine.sh
source "$here/container_engine.sh"
[ -n "${CONTAINER_ENGINE:-}" ] || exit 1
tag="${IMAGE:-lightgbm-sagemaker:local}"
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then tag="$1"; shift; fi
test_dir="${TEST_DIR:-$here/test_dir}"
port="${PORT:-8080}"
# Ctrl-C is proxied to the container (SIGINT); `engine stop` sends SIGTERM.
exec "$CONTAINER_ENGINE" run --rm -p "$port:8080" -v "$test_dir:/opt/ml" "$@" "$tag" serve
