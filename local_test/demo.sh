#!/usr/bin/env bash
# `make demo`: train on the bundled diabetes data, serve it on localhost:8080, get a prediction.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
port="${SAGEMAKER_BIND_TO_PORT:-8080}"
root="$repo/build/ml"

echo "==> training on local_test/test_dir (diabetes, 10 features; SageMaker layout copied to $root)"
"$repo/local_test/train_host.sh"

echo "==> serving $root/model on http://localhost:$port"
SAGEMAKER_BIND_TO_PORT="$port" "$repo/local_test/serve_host.sh" "$root" &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null' EXIT INT TERM
for _ in $(seq 1 240); do
    if curl -fs "http://localhost:$port/ping" >/dev/null 2>&1; then break; fi
    if ! kill -0 "$server" 2>/dev/null; then echo "serve exited; see the log above" >&2; exit 1; fi
    sleep 0.5
done

command="curl -s -X POST -H 'Content-Type: text/csv' --data-binary @local_test/payload.csv http://localhost:$port/invocations"
echo
echo "==> a prediction for each of the 5 rows in local_test/payload.csv:"
echo "    $command"
(cd "$repo" && eval "$command")
echo
echo "==> serving until Ctrl-C. Try JSON too:"
echo "    curl -s -X POST -H 'Content-Type: application/json' -d '[[59,2,32.1,101,157,93.2,38,4,4.8598,87]]' http://localhost:$port/invocations"
wait $server
