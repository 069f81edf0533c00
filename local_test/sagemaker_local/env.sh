#!/usr/bin/env bash
# Make the SageMaker Python SDK's local mode (instance_type='local') work here:
#
#   source local_test/sagemaker_local/env.sh
#
# With a working Docker engine (`docker info` answers and `docker` is not podman) this
# changes nothing. Otherwise it sets Podman up (local_test/container_engine.sh) and puts
# local_test/sagemaker_local/bin first on PATH: a `docker` that runs podman and a
# `docker compose`/`docker-compose` that runs podman-compose the way local mode needs.
# It also adds /usr/sbin (netavark calls iptables) and sets the AWS variables that keep
# the SDK from calling AWS (region, EC2 metadata off) unless they are already set.
#
# SAGEMAKER_LOCAL_SHIM=1 forces the shim, =0 never uses it. CONTAINER_ENGINE=podman|docker
# skips the detection (see container_engine.sh).

_sml_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

case ":$PATH:" in *:/usr/sbin:*) ;; *) PATH="$PATH:/usr/sbin" ;; esac
case ":$PATH:" in *:/sbin:*) ;; *) PATH="$PATH:/sbin" ;; esac

: "${AWS_DEFAULT_REGION:=us-east-1}"
: "${AWS_EC2_METADATA_DISABLED:=true}"
export PATH AWS_DEFAULT_REGION AWS_EC2_METADATA_DISABLED

_sml_engine="${SAGEMAKER_LOCAL_SHIM:-}"
if [ -z "$_sml_engine" ]; then
    _sml_engine="$(bash "$_sml_dir/../container_engine.sh" | tail -n 1)"
elif [ "$_sml_engine" = 1 ]; then
    _sml_engine=podman
fi
case "$_sml_engine" in
    podman)
        case ":$PATH:" in *":$_sml_dir/bin:"*) ;; *) PATH="$_sml_dir/bin:$PATH" ;; esac
        export PATH
        echo "sagemaker_local: docker -> podman shim active ($_sml_dir/bin)" >&2
        ;;
    docker | 0)
        echo "sagemaker_local: using the Docker engine as is" >&2
        ;;
    *)
        echo "sagemaker_local: neither docker nor podman works; local mode will fail" >&2
        ;;
esac
unset _sml_dir _sml_engine
