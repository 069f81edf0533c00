#!/usr/bin/env bash
# Build the container image (Docker, else Podman set up by container_engine.sh).
#   local_test/build_image.sh [TAG] [extra build args...]   TAG: $IMAGE or lightgbm-sagemaker:local
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=container_engine.sh
source "$here/container_engine.sh"
[ -n "${CONTAINER_ENGINE:-}" ] || exit 1
tag="${1:-${IMAGE:-lightgbm-sagemaker:local}}"
[ $# -gt 0 ] && shift
engine_build "$tag" "$@"
echo "built $tag with $CONTAINER_ENGINE" >&2
