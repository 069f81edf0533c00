#!/usr/bin/env bash
# Install what running train/serve on this machine needs, and nothing that is already there:
#   - nginx (serve's reverse proxy) and wrk (bench/) from Debian's packages,
#   - .venv with the pinned Python dependencies (container/requirements.txt + test tools),
#     .venv/training-site with those only `train` uses (container/requirements-training.txt), and
#     .venv/pickle-site with scikit-learn (container/requirements-pickles.txt: see lightgbm_container/packages.py).
# Idempotent: a second run takes a second.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
"$python" -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing ${missing[*]} with apt-get"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

venv="$repo/.venv"
stamp="$venv/.installed"
if [ ! -x "$venv/bin/python" ]; then
    echo "setup: creating $venv"
    "$python" -m venv "$venv"
fi
if [ ! -f "$stamp" ] || [ "$repo/requirements-dev.txt" -nt "$stamp" ] || [ "$repo/container/requirements.txt" -nt "$stamp" ] \
        || [ "$repo/container/requirements-training.txt" -nt "$stamp" ] \
        || [ "$repo/container/requirements-pickles.txt" -nt "$stamp" ]; then
    echo "setup: installing pinned Python dependencies into $venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$repo/requirements-dev.txt"
    "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps --upgrade \
        --target "$venv/training-site" -r "$repo/container/requirements-training.txt"
    "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps --upgrade \
        --target "$venv/pickle-site" -r "$repo/container/requirements-pickles.txt"
    touch "$stamp"
fi
