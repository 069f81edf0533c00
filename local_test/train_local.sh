#!/usr/bin/env bash
# Run `train` in the image with local_test/test_dir mounted at /opt/ml, as SageMaker does.
#   local_test/train_local.sh [TAG] [extra run args (start with -), e.g. -e VAR=value]
# The model lands in local_test/test_dir/model/, a failure message in test_dir/output/failure.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=container_engine.sh
source "$here/container_engine.sh"
[ -n "${CONTAINER_ENGINE:-}" ] || exit 1
tag="${IMAGE:-lightgbm-sagemaker:local}"
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then tag="$1"; shift; fi
test_dir="${TEST_DIR:-$here/test_dir}"
mkdir -p "$test_dir/model" "$test_dir/output"
engine run --rm -v "$test_dir:/opt/ml" "$@" "$tag" train
