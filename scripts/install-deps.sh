#!/usr/bin/env bash
# Installs every Debian package refstream needs to build, test and run its local
# stack. Idempotent: packages already present are not touched. Needs root or sudo.
set -euo pipefail

pkgs=(
  build-essential cmake ninja-build pkg-config git
  librdkafka-dev libavro-dev libhiredis-dev libpq-dev
  libmicrohttpd-dev libjansson-dev libcurl4-openssl-dev libcmocka-dev
  clang-14 libclang-rt-14-dev clang-format-14 shellcheck
  postgresql redis-server kcat
  default-jre-headless maven curl jq ca-certificates openssl procps
  python3 python3-venv
  podman buildah runc debootstrap prometheus
)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
    missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
