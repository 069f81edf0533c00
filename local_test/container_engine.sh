#!/usr/bin/env bash
# Find (or set up) a container engine for building and running the image.
#
#   source local_test/container_engine.sh   # defines engine, engine_build; exports CONTAINER_ENGINE
#   local_test/container_engine.sh          # prints the engine command (docker or podman)
#
# Uses Docker when `docker info` works. Otherwise sets up Podman, idempotently:
#   - apt-get install podman runc debootstrap (when missing),
#   - /etc/containers/containers.conf with runtime "runc" and low default ulimits
#     (crun and the default higher limits fail on hosts like this one),
#   - a local docker.io/library/debian:bookworm-slim made with debootstrap from the
#     host's Debian mirror when that image is absent and cannot be pulled.
# Everything host-specific (mirror, CA bundle, pip.conf) lives here, not in the Dockerfile.
#
# Environment:
#   CONTAINER_ENGINE   force "docker" or "podman" (skips detection)
#   BASE_IMAGE         base image for the build (default docker.io/library/debian:bookworm-slim)
#   HOST_CA_BUNDLE     CA bundle passed into podman builds (default /etc/ssl/certs/ca-certificates.crt)
#   ENGINE_QUIET=0     show the output of the setup steps

# Do not change the caller's shell options when sourced: everything below runs in
# functions that check their own errors.

_CE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
_CE_ROOT="$(cd "$_CE_DIR/.." && pwd)"
_CE_BASE_DEFAULT="docker.io/library/debian:bookworm-slim"

# netavark/iptables and debootstrap's helpers live in sbin.
case ":$PATH:" in *:/usr/sbin:*) ;; *) PATH="$PATH:/usr/sbin" ;; esac
case ":$PATH:" in *:/sbin:*) ;; *) PATH="$PATH:/sbin" ;; esac
export PATH

_ce_log() { echo "container_engine: $*" >&2; }

# Run a setup command, hiding its output unless it fails (or ENGINE_QUIET=0).
_ce_quiet() {
    if [ "${ENGINE_QUIET:-1}" = "0" ]; then
        "$@"
        return
    fi
    local out rc
    out="$(mktemp)"
    "$@" >"$out" 2>&1
    rc=$?
    if [ $rc -ne 0 ]; then
        _ce_log "failed ($rc): $*"
        tail -n 30 "$out" >&2
    fi
    rm -f "$out"
    return $rc
}

_ce_docker_works() {
    command -v docker >/dev/null 2>&1 || return 1
    # podman-docker's `docker` is podman: treat it as podman (it needs the same setup).
    docker --version 2>/dev/null | grep -qi podman && return 1
    timeout 20 docker info >/dev/null 2>&1
}

_ce_apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    if ! _ce_quiet apt-get install -y "$@"; then
        _ce_log "retrying after apt-get update"
        _ce_quiet apt-get update && _ce_quiet apt-get install -y "$@"
    fi
}

_ce_host_mirror() {
    local uri=""
    if [ -r /etc/apt/sources.list.d/debian.sources ]; then
        uri="$(awk '/^URIs:/ {for (i = 2; i <= NF; i++) if ($i !~ /security/) {print $i; exit}}' \
            /etc/apt/sources.list.d/debian.sources)"
    fi
    if [ -z "$uri" ] && [ -r /etc/apt/sources.list ]; then
        uri="$(awk '$1 == "deb" {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {if ($i !~ /security/) print $i; break}}' \
            /etc/apt/sources.list | head -n 1)"
    fi
    echo "${uri:-http://deb.debian.org/debian}"
}

_ce_containers_conf() {
    local conf=/etc/containers/containers.conf
    if [ -f "$conf" ] \
        && grep -Eq '^[[:space:]]*runtime[[:space:]]*=[[:space:]]*"runc"' "$conf" \
        && grep -Eq '^[[:space:]]*default_ulimits[[:space:]]*=.*nofile=4096:4096' "$conf"; then
        return 0
    fi
    mkdir -p /etc/containers || return 1
    if [ -f "$conf" ] && [ ! -f "$conf.orig" ]; then
        cp -p "$conf" "$conf.orig"
    fi
    cat >"$conf" <<'EOF'
# Written by local_test/container_engine.sh: crun and the default (higher)
# ulimits fail on this kind of host.
[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]

[engine]
runtime = "runc"
EOF
}

# Make docker.io/library/debian:bookworm-slim available to podman.
_ce_base_image() {
    local image="$_CE_BASE_DEFAULT"
    podman image exists "$image" && return 0
    if timeout 60 podman pull -q "$image" >/dev/null 2>&1; then
        return 0
    fi
    command -v debootstrap >/dev/null 2>&1 || _ce_apt_install debootstrap || return 1
    local mirror rootfs rc
    mirror="$(_ce_host_mirror)"
    rootfs="$(mktemp -d /var/tmp/bookworm-rootfs.XXXXXX)" || return 1
    _ce_log "building $image with debootstrap from $mirror (about 30 s)"
    _ce_quiet debootstrap --variant=minbase bookworm "$rootfs" "$mirror"
    rc=$?
    if [ $rc -eq 0 ]; then
        # Same sources as the official image (bookworm, -updates, -security) when the
        # host has them in deb822 form; debootstrap alone only writes bookworm.
        if [ -r /etc/apt/sources.list.d/debian.sources ]; then
            cp /etc/apt/sources.list.d/debian.sources "$rootfs/etc/apt/sources.list.d/debian.sources"
            rm -f "$rootfs/etc/apt/sources.list"
        fi
        # Slim it like the official -slim image: no docs, man pages or translations,
        # now and for the packages installed on top of it.
        cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/*
EOF
        find "$rootfs/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete 2>/dev/null
        find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null
        rm -rf "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/* "$rootfs"/usr/share/man/* \
            "$rootfs"/usr/share/groff/* "$rootfs"/usr/share/lintian/*
        rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb \
            "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/log/*.log
        tar -C "$rootfs" -c . | _ce_quiet podman import --change 'CMD ["bash"]' - "$image"
        rc=$?
    fi
    rm -rf "$rootfs"
    return $rc
}

_ce_setup_podman() {
    local missing=""
    command -v podman >/dev/null 2>&1 || missing="$missing podman"
    command -v runc >/dev/null 2>&1 || missing="$missing runc"
    command -v debootstrap >/dev/null 2>&1 || missing="$missing debootstrap"
    if [ -n "$missing" ]; then
        if [ "$(id -u)" != 0 ]; then
            _ce_log "need root to install:$missing"
            return 1
        fi
        _ce_log "installing$missing"
        # shellcheck disable=SC2086
        _ce_apt_install $missing || return 1
    fi
    if [ "$(id -u)" = 0 ]; then
        _ce_containers_conf || return 1
    fi
    _ce_base_image || { _ce_log "no base image $_CE_BASE_DEFAULT"; return 1; }
    podman info >/dev/null 2>&1 || { _ce_log "podman does not work here"; return 1; }
}

# Sets CONTAINER_ENGINE (docker or podman); returns non-zero when neither works.
engine_detect() {
    if [ -n "${CONTAINER_ENGINE:-}" ]; then
        if ! command -v "$CONTAINER_ENGINE" >/dev/null 2>&1; then
            _ce_log "CONTAINER_ENGINE=$CONTAINER_ENGINE is not an installed command"
            return 1
        fi
        if [ "$CONTAINER_ENGINE" = podman ] && [ -z "${_CE_READY:-}" ]; then
            _ce_setup_podman || return 1
            _CE_READY=1
        fi
        export CONTAINER_ENGINE
        return 0
    fi
    if _ce_docker_works; then
        CONTAINER_ENGINE=docker
    elif _ce_setup_podman; then
        CONTAINER_ENGINE=podman
        _CE_READY=1
    else
        return 1
    fi
    export CONTAINER_ENGINE
}

# engine ARGS...: run the engine command (docker or podman).
engine() {
    [ -n "${CONTAINER_ENGINE:-}" ] || engine_detect || return 1
    "$CONTAINER_ENGINE" "$@"
}

# engine_build TAG [extra build args...]: build container/ into TAG.
engine_build() {
    local tag="${1:-lightgbm-sagemaker:local}"
    [ $# -gt 0 ] && shift
    [ -n "${CONTAINER_ENGINE:-}" ] || engine_detect || return 1
    local args=(build -t "$tag" -f "$_CE_ROOT/container/Dockerfile")
    if [ "$CONTAINER_ENGINE" = podman ]; then
        local base="${BASE_IMAGE:-$_CE_BASE_DEFAULT}"
        args+=(--build-arg "BASE_IMAGE=$base")
        if podman image exists "$base"; then
            args+=(--pull=never)
        else
            args+=(--pull=missing)
        fi
        # pip inside the build must trust the host's CA (TLS may be intercepted):
        # mount the bundle somewhere neutral plus a pip.conf pointing at it. Never
        # over /etc/ssl/certs/ca-certificates.crt: installing Debian's ca-certificates
        # then fails with "Device or resource busy".
        local ca="${HOST_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
        if [ -r "$ca" ]; then
            local confdir="${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/lightgbm-container"
            mkdir -p "$confdir" || return 1
            printf '[global]\ncert = /run/hostca.crt\n' >"$confdir/pip.conf"
            args+=(-v "$ca:/run/hostca.crt:ro" -v "$confdir/pip.conf:/etc/pip.conf:ro")
        fi
    elif [ -n "${BASE_IMAGE:-}" ]; then
        args+=(--build-arg "BASE_IMAGE=$BASE_IMAGE")
    fi
    "$CONTAINER_ENGINE" "${args[@]}" "$@" "$_CE_ROOT/container"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    # Executed: set up and print the engine command.
    if engine_detect; then
        echo "$CONTAINER_ENGINE"
    else
        _ce_log "neither docker nor podman can be made to work"
        exit 1
    fi
else
    engine_detect || _ce_log "neither docker nor podman can be made to work"
fi
