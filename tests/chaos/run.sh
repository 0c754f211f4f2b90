#!/usr/bin/env bash
# Fault-injection run (tests/chaos/README.md): its own Postgres, Redis and
# Kafka broker (scripts/stack.sh, in a temporary directory), N `refstream
# consume` instances, a seeded stream and seeded faults, an independent check.
#
#   tests/chaos/run.sh [--records N] [--faults N] [--instances N] [--seed S]
#                      [--max-duplicate-pct P] [--self-check] [--report FILE]
#
# RS_BIN names the refstream binary (default build/refstream); RS_CHAOS_KEEP=1
# keeps the temporary directory (logs) after a passing run too.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd -P)
bin=${RS_BIN:-$repo/build/refstream}
[[ -x $bin ]] || { echo "run.sh: $bin not found; build first (scripts/build.sh)" >&2; exit 2; }
python=$("$repo/scripts/pyenv.sh")
work=$(mktemp -d "${TMPDIR:-/tmp}/rs-chaos.XXXXXX")
stack=$work/stack
rc=0
cleanup() {
        "$repo/scripts/stack.sh" down --dir "$stack" --purge >/dev/null 2>&1 || true
        if [[ $rc -eq 0 && -z ${RS_CHAOS_KEEP:-} ]]; then
                rm -rf "$work"
        else
                echo "run.sh: logs kept in $work" >&2
        fi
}
trap cleanup EXIT
"$repo/scripts/stack.sh" up db --dir "$stack" >/dev/null
"$repo/scripts/stack.sh" up kafka --dir "$stack" >/dev/null
"$python" "$repo/tests/chaos/chaos.py" --refstream "$bin" --stack "$stack" \
        --stack-sh "$repo/scripts/stack.sh" --workdir "$work" "$@" || rc=$?
exit $rc
