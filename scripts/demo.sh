#!/usr/bin/env bash
# README command 1: set up a fresh Debian 12 machine and run `refstream demo`,
# the embedded default (in-process mock Kafka, throw-away Postgres and Redis).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
exec build/refstream demo "$@"
