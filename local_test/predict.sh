#!/usr/bin/env bash
# Send a payload to a running `serve` (local_test/serve_local.sh) and print the answer.
#   local_test/predict.sh [PAYLOAD_FILE] [CONTENT_TYPE]
#   defaults: local_test/payload.csv, text/csv; PORT (8080) and ACCEPT may be set.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
payload="${1:-$here/payload.csv}"
content_type="${2:-text/csv}"
port="${PORT:-8080}"
args=(--silent --show-error --data-binary "@$payload" -H "Content-Type: $content_type")
[ -n "${ACCEPT:-}" ] && args+=(-H "Accept: $ACCEPT")
curl "${args[@]}" --write-out '\n[HTTP %{http_code}, %{time_total}s]\n' \
    "http://localhost:$port/invocations"
