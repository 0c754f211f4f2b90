#!/usr/bin/env bash
# podman with refstream's own configuration and image store, for the
# container tier (tests/container) and for building the image by hand:
#   scripts/podman.sh build -f deploy/Dockerfile -t refstream:0.1.0 .
#
# Needs root and the Debian packages podman, buildah, runc and debootstrap
# (scripts/install-deps.sh). Nothing of the machine's own podman setup is read
# or changed: the configuration below lives in the cache directory, the images
# in a store of their own there (storage driver vfs, which works on any file
# system), and podman's run-time state under /run/refstream-podman/.
#   runtime runc        crun refuses some hosts' cgroup setup
#   cgroupfs, file      no systemd needed for cgroups or events
#   ulimits 16384       nofile and nproc, as hosts that forbid raising them allow
#
# RS_CACHE_DIR (default ${XDG_CACHE_HOME:-$HOME/.cache}/refstream) holds the
# store; RS_PODMAN_ROOT overrides its place (podman/ under RS_CACHE_DIR).
set -euo pipefail

cache=${RS_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/refstream}
root=${RS_PODMAN_ROOT:-$cache/podman}
# Run-time state per store (two stores must not share it).
run=/run/refstream-podman/$(printf '%s' "$root" | sha256sum | cut -c1-12)
mkdir -p "$root/storage" "$run"

conf=$root/containers.conf
storage=$root/storage.conf
want_conf=$(
        cat <<EOF
# Written by scripts/podman.sh; rewritten when it differs.
[containers]
default_ulimits = ["nofile=16384:16384", "nproc=16384:16384"]
log_driver = "k8s-file"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$run/events.log"
tmp_dir = "$run/libpod"
static_dir = "$root/storage/libpod"
volume_path = "$root/storage/volumes"
EOF
)
want_storage=$(
        cat <<EOF
# Written by scripts/podman.sh; rewritten when it differs.
[storage]
driver = "vfs"
graphroot = "$root/storage"
runroot = "$run/storage"
EOF
)
[[ -f $conf && $(<"$conf") == "$want_conf" ]] || printf '%s\n' "$want_conf" >"$conf"
[[ -f $storage && $(<"$storage") == "$want_storage" ]] || printf '%s\n' "$want_storage" >"$storage"

export CONTAINERS_CONF=$conf CONTAINERS_STORAGE_CONF=$storage
exec podman "$@"
