#!/usr/bin/env bash
# README command 2 (and CI's .ci/run): set up a fresh Debian 12 machine and run
# the whole test suite.
#   1. gcc build, all tiers: unit, integration (real Postgres + Redis,
#      in-process mock Kafka), system (the binary + a real Kafka broker + kcat),
#      chaos (3 instances under injected faults, checked by an independent model)
#   2. deploy (tests/deploy/run.sh): the Kustomize overlays rendered and
#      validated, the compose file, the alert rules (promtool), a real
#      Prometheus scraping `refstream consume`; container
#      (tests/container/run.sh): the image built from deploy/Dockerfile with
#      podman, `refstream demo` and `consume` run in containers
#   3. clang-14 ASan/UBSan build: unit + integration, plus the decoder fuzzer
#      for a fixed number of runs
# Every tier must run at least one test and pass; a tier that did not run
# (a missing broker, say) fails the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

run_tier() { # build-dir label
        local out
        out=$(mktemp)
        if ! ctest --test-dir "$1" -L "^$2\$" --output-on-failure -j2 2>&1 | tee "$out"; then
                echo "test.sh: tier '$2' failed in $1" >&2
                rm -f "$out"
                return 1
        fi
        if ! grep -qE '100% tests passed, 0 tests failed out of [1-9]' "$out"; then
                echo "test.sh: tier '$2' ran no tests in $1" >&2
                rm -f "$out"
                return 1
        fi
        rm -f "$out"
}

RS_BUILD_DIR=build scripts/build.sh
for tier in unit integration system chaos; do
        run_tier build "$tier"
done
RS_BIN=$PWD/build/refstream tests/deploy/run.sh
tests/container/run.sh

RS_BUILD_DIR=build-asan scripts/build.sh -DCMAKE_C_COMPILER=clang-14 -DRS_SANITIZE=ON \
        -DRS_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
for tier in unit integration; do
        run_tier build-asan "$tier"
done
echo "test.sh: all tiers passed"
