#!/usr/bin/env bash
# Build the image from container/ and push it to Amazon ECR in your account and region
# (the default), or to any registry with --registry. Run ./build_and_push.sh --help.
#
# The engine is Docker when `docker info` works, else Podman (set up by
# local_test/container_engine.sh). Progress goes to stderr; stdout gets only the result:
#   image: HOST/NAME:TAG
#   digest: sha256:...
#   pinned: HOST/NAME@sha256:...
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

usage() {
    cat <<'EOF'
Usage: ./build_and_push.sh [options]

Build the LightGBM SageMaker image from container/ and push it. By default it goes to
Amazon ECR in the caller's account ($ACCOUNT.dkr.ecr.$REGION.amazonaws.com/NAME:TAG); the
repository is created when missing. With --registry it goes to that registry instead and
no AWS call is made (log in to it first if it needs credentials).

Options:
  --image-name NAME      repository / local image name (default: lightgbm-sagemaker)
  --tag TAG              image tag (default: latest)
  --region REGION        ECR region (default: $AWS_REGION, $AWS_DEFAULT_REGION, then
                         `aws configure get region`)
  --platform OS/ARCH     target platform of the build (default: linux/amd64)
  --registry HOST[:PORT] push to this registry instead of ECR
  --insecure             (podman) push without TLS verification / over plain HTTP;
                         automatic for localhost, 127.x and [::1]
  --no-build             push the existing local image NAME:TAG instead of building it
  -h, --help             show this help

Needs: Docker or Podman (podman is installed and set up when there is no Docker engine,
as root), and for ECR the AWS CLI with credentials allowed to call sts:GetCallerIdentity,
ecr:DescribeRepositories, ecr:CreateRepository, ecr:GetAuthorizationToken and push.
Images are pushed with a Docker v2 schema 2 manifest: SageMaker rejects OCI manifests.

Environment (tests only):
  ECR_REGISTRY_OVERRIDE  HOST[:PORT] to log in and push to instead of the ECR registry host,
                         while every AWS call still happens (tests/push uses it with an AWS
                         API emulator and a local registry)
EOF
}

log() { echo "build_and_push: $*" >&2; }
die() { log "$*"; exit 1; }
need_value() { [ -n "${2:-}" ] || die "$1 needs a value (see --help)"; }

image_name=lightgbm-sagemaker
tag=latest
region=""
platform=linux/amd64
registry=""
insecure=0
build=1

while [ $# -gt 0 ]; do
    arg="$1"
    shift
    case "$arg" in
        --*=*) set -- "${arg#*=}" "$@"; arg="${arg%%=*}" ;;
    esac
    case "$arg" in
        -h | --help) usage; exit 0 ;;
        --image-name) need_value "$arg" "${1:-}"; image_name="$1"; shift ;;
        --tag) need_value "$arg" "${1:-}"; tag="$1"; shift ;;
        --region) need_value "$arg" "${1:-}"; region="$1"; shift ;;
        --platform) need_value "$arg" "${1:-}"; platform="$1"; shift ;;
        --registry) need_value "$arg" "${1:-}"; registry="${1%/}"; shift ;;
        --insecure) insecure=1 ;;
        --no-build) build=0 ;;
        *) die "unknown argument: $arg (see --help)" ;;
    esac
done

# The rules ECR and the distribution spec apply, checked before anything slow happens.
[[ "$image_name" =~ ^[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*$ ]] \
    || die "invalid image name '$image_name' (lowercase letters, digits, . _ - /)"
[[ "$tag" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || die "invalid tag '$tag'"
[[ "$platform" =~ ^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?$ ]] || die "invalid platform '$platform' (e.g. linux/amd64)"

# shellcheck source=local_test/container_engine.sh
source "$here/local_test/container_engine.sh"
[ -n "${CONTAINER_ENGINE:-}" ] || die "no container engine (see local_test/container_engine.sh)"

# --- the local image ---------------------------------------------------------------
local_image="$image_name:$tag"
if [ "$build" = 1 ]; then
    build_args=(--platform "$platform")
    # BuildKit adds a provenance attestation (an OCI index, which SageMaker rejects)
    # unless told not to; the legacy builder has no such option.
    if [ "$CONTAINER_ENGINE" = docker ] && [[ "$(docker build --help 2>&1 || true)" == *--provenance* ]]; then
        build_args+=(--provenance=false)
    fi
    log "building $local_image for $platform with $CONTAINER_ENGINE"
    engine_build "$local_image" "${build_args[@]}" >&2
elif ! engine image inspect "$local_image" >/dev/null 2>&1; then
    die "no local image $local_image to push (drop --no-build to build it)"
fi
built_for="$(engine image inspect --format '{{.Os}}/{{.Architecture}}' "$local_image")"
wanted="$(echo "$platform" | cut -d/ -f1-2)"
[ "$built_for" = "$wanted" ] || die "$local_image is $built_for, not $wanted (rebuild, or pass --platform $built_for)"

# --- where it goes -----------------------------------------------------------------
if [ -n "$registry" ]; then
    registry_host="$registry"
else
    command -v aws >/dev/null 2>&1 || die "the AWS CLI (aws) is needed to push to ECR (or use --registry)"
    # Same precedence as the AWS CLI itself: environment before the config file.
    if [ -z "$region" ]; then
        region="${AWS_REGION:-${AWS_DEFAULT_REGION:-}}"
    fi
    if [ -z "$region" ]; then
        region="$(aws configure get region 2>/dev/null || true)"
    fi
    [ -n "$region" ] || die "no AWS region: pass --region, set AWS_REGION, or run 'aws configure'"
    account="$(aws sts get-caller-identity --region "$region" --query Account --output text)" \
        || die "cannot get the AWS account (are credentials configured?)"
    case "$region" in
        cn-*) domain=amazonaws.com.cn ;;
        *) domain=amazonaws.com ;;
    esac
    registry_host="$account.dkr.ecr.$region.$domain"

    if ! err="$(aws ecr describe-repositories --region "$region" --repository-names "$image_name" 2>&1 >/dev/null)"; then
        case "$err" in
            *RepositoryNotFoundException*)
                log "creating ECR repository $image_name in $account/$region"
                aws ecr create-repository --region "$region" --repository-name "$image_name" >/dev/null
                ;;
            *) die "aws ecr describe-repositories failed: $err" ;;
        esac
    fi

    if [ -n "${ECR_REGISTRY_OVERRIDE:-}" ]; then
        log "ECR_REGISTRY_OVERRIDE: pushing to $ECR_REGISTRY_OVERRIDE instead of $registry_host"
        registry_host="${ECR_REGISTRY_OVERRIDE%/}"
    fi
fi

# Podman needs --tls-verify=false for a plain-HTTP registry; Docker already treats
# localhost and 127.0.0.0/8 as insecure and otherwise needs "insecure-registries" in
# its daemon.json.
tls_args=()
case "$registry_host" in
    localhost | localhost:* | 127.* | "[::1]" | "[::1]:"*) loopback=1 ;;
    *) loopback=0 ;;
esac
if [ "$CONTAINER_ENGINE" = podman ] && { [ "$insecure" = 1 ] || [ "$loopback" = 1 ]; }; then
    tls_args=(--tls-verify=false)
elif [ "$insecure" = 1 ] && [ "$loopback" = 0 ]; then
    log "--insecure: docker decides this per daemon (\"insecure-registries\" in daemon.json)"
fi

if [ -z "$registry" ]; then
    log "logging in to $registry_host"
    aws ecr get-login-password --region "$region" \
        | engine login "${tls_args[@]}" --username AWS --password-stdin "$registry_host" >&2
fi

# --- tag and push ------------------------------------------------------------------
remote="$registry_host/$image_name:$tag"
engine tag "$local_image" "$remote"
log "pushing $remote"
push_log="$(mktemp)"
trap 'rm -f "$push_log"' EXIT
if [ "$CONTAINER_ENGINE" = podman ]; then
    # Podman builds OCI images; SageMaker only accepts Docker v2 schema 2 manifests.
    engine push "${tls_args[@]}" --format v2s2 --digestfile "$push_log" "$remote" >&2
    digest="$(cat "$push_log")"
else
    engine push "$remote" | tee "$push_log" >&2
    digest="$(grep -o 'digest: sha256:[0-9a-f]\{64\}' "$push_log" | tail -n 1 | cut -d' ' -f2 || true)"
    if [ -z "$digest" ]; then
        digest="$(engine image inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "$remote" \
            | grep -F "$registry_host/$image_name@" | head -n 1 | cut -d@ -f2 || true)"
    fi
fi
[[ "$digest" =~ ^sha256:[0-9a-f]{64}$ ]] || die "pushed $remote but could not read its digest ('$digest')"

echo "image: $remote"
echo "digest: $digest"
echo "pinned: $registry_host/$image_name@$digest"
