#!/usr/bin/env bash
# The container tier: deploy/Dockerfile built and run with podman (no Docker
# engine needed; scripts/podman.sh's own configuration and image store).
#   1. the base image (scripts/container-base.sh: debootstrap, once per
#      machine; imported once per store)
#   2. the runtime image (default target) as refstream:<version> and the demo
#      image as refstream:demo
#   3. the runtime image: user 10001, no compiler, headers or -dev packages,
#      every library refstream links present; `refstream --help`
#   4. `podman run --rm refstream:demo`: the demo prints its credits
#   5. one `consume` container (host network, read-only root, no
#      capabilities, as the Kubernetes manifests run it) against a throw-away
#      stack on loopback (scripts/stack.sh): migrate and admin in containers
#      too, a sign-up and a payment in, a ReferralCredited out, /readyz,
#      /metrics, JSON logs, exit 0 on SIGTERM
# Needs root. Prints one line per check and closes with
# "container: N passed, M failed"; exits 1 when a check failed or none ran.
set -euo pipefail
cd "$(dirname "$0")/../.."

VERSION=$(sed -n 's/^project(refstream VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
IMAGE=localhost/refstream:$VERSION
DEMO=localhost/refstream:demo
P=scripts/podman.sh
TMP=$(mktemp -d "${TMPDIR:-/tmp}/rs-container.XXXXXX")
STACK=$TMP/stack
CONSUMER=rs-test-consume-$$
cleanup() {
        local rc=$?
        $P rm -f "$CONSUMER" >/dev/null 2>&1 || true
        [ ! -d "$STACK" ] || scripts/stack.sh down --dir "$STACK" --purge >/dev/null 2>&1 || true
        rm -rf "$TMP"
        exit "$rc"
}
trap cleanup EXIT

PASSED=0
FAILED=0
step() { # NAME COMMAND...: one check, timed; its output is shown when it fails
        local name=$1 start=$SECONDS
        shift
        if "$@" >"$TMP/step.log" 2>&1; then
                PASSED=$((PASSED + 1))
                echo "ok - $name ($((SECONDS - start)) s)"
        else
                FAILED=$((FAILED + 1))
                echo "not ok - $name ($((SECONDS - start)) s)"
                sed 's/^/    /' "$TMP/step.log" | tail -n 80
        fi
}
finish() {
        echo "container: $PASSED passed, $FAILED failed"
        [ "$FAILED" -eq 0 ] && [ "$PASSED" -gt 0 ]
        exit
}
[ -n "$VERSION" ] || { echo "no project version in CMakeLists.txt" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "container: podman needs root here" >&2; exit 1; }

# ---- 1, 2. Images.
step "base image (debootstrap minbase bookworm, cached)" scripts/container-base.sh
step "build $IMAGE (deploy/Dockerfile, default target)" \
        $P build --network host -f deploy/Dockerfile -t "$IMAGE" .
step "build $DEMO (--target demo)" \
        $P build --network host -f deploy/Dockerfile --target demo -t "$DEMO" .
# An image of an earlier run must not stand in for one that did not build.
[ "$FAILED" -eq 0 ] || finish

# ---- 3. The runtime image.
image_config() {
        local cfg
        cfg=$($P image inspect --format '{{.Config.User}}|{{json .Config.Entrypoint}}|{{json .Config.Cmd}}' "$IMAGE")
        echo "$cfg"
        [ "$cfg" = '10001:10001|["/usr/local/bin/refstream"]|["consume"]' ]
}
step "runs as user 10001:10001, refstream consume by default" image_config
only_runtime() {
        # shellcheck disable=SC2016 # expanded in the container
        $P run --rm --network none --entrypoint /bin/sh "$IMAGE" -c '
                set -e
                [ "$(id -u):$(id -g)" = 10001:10001 ] || { echo "uid $(id -u)"; exit 1; }
                for t in cc gcc cmake ninja make; do
                        ! command -v $t || { echo "$t in the image"; exit 1; }
                done
                dev=$(dpkg-query -W -f "\${Package}\n" | grep -E -- "-dev$" || true)
                [ -z "$dev" ] || { echo "-dev packages: $dev"; exit 1; }
                ! ls /usr/include/librdkafka /usr/include/postgresql 2>/dev/null || exit 1
                ldd /usr/local/bin/refstream
                ! ldd /usr/local/bin/refstream | grep -q "not found"'
}
step "only runtime libraries: no compiler, headers or -dev packages; every library found" only_runtime
help_runs() {
        local out
        out=$($P run --rm --network none "$IMAGE" --help)
        echo "$out"
        grep -q '^  consume ' <<<"$out" && grep -q '^  demo ' <<<"$out"
}
step "refstream --help" help_runs

# ---- 4. The demo, out of the box.
demo_runs() {
        $P run --rm --network none "$DEMO" >"$TMP/demo.out" 2>&1 || { cat "$TMP/demo.out"; return 1; }
        cat "$TMP/demo.out"
        grep -q '^ReferralCredited on referral-credited:' "$TMP/demo.out" &&
                [ "$(grep -cE '^  [0-9a-f]{8} +[a-z]+ +\+[0-9]+ +USD' "$TMP/demo.out")" -ge 2 ] &&
                grep -q '^ReferralCreditReversed on referral-reversed:' "$TMP/demo.out" &&
                grep -q '^done in ' "$TMP/demo.out"
}
step "podman run --rm $DEMO prints credits, reversals and done" demo_runs

# ---- 5. consume against the host's stack.
stack_up() {
        scripts/stack.sh up db --dir "$STACK" && scripts/stack.sh up kafka --dir "$STACK"
        grep '^REFSTREAM_' "$STACK/env" >"$TMP/refstream.env"
}
step "stack: Postgres, Redis, Kafka on loopback" stack_up
run_in() { $P run --rm --network host --env-file "$TMP/refstream.env" "$IMAGE" "$@"; }
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BROKERS=$(sed -n 's/^REFSTREAM_KAFKA_BROKERS=//p' "$STACK/env" 2>/dev/null || true)

prepare() {
        run_in migrate
        run_in admin program create --key ct --name "Container" --currency USD --reward-fixed 500 \
                --min-payment 1000
        run_in admin codes issue --program ct --user alice >"$TMP/code"
        [ -s "$TMP/code" ]
}
step "migrate and admin in containers" prepare

until_ok() { # SECONDS COMMAND...: polls every 0.5 s
        local deadline=$((SECONDS + $1))
        shift
        until "$@"; do
                ((SECONDS < deadline)) || return 1
                sleep 0.5
        done
}
ready() { [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/readyz")" = 200 ]; }
start_consume() {
        $P run -d --name "$CONSUMER" --network host --read-only --cap-drop ALL \
                --security-opt no-new-privileges --env-file "$TMP/refstream.env" \
                -e "REFSTREAM_HTTP_ADDR=127.0.0.1:$PORT" -e REFSTREAM_BATCH_LINGER_MS=20 "$IMAGE"
        until_ok 60 ready || { $P logs "$CONSUMER" | tail -n 30; return 1; }
}
step "consume container (read-only root, no capabilities) becomes ready" start_consume

credited() { [ "$(kcat -b "$BROKERS" -C -t referral-credited -o beginning -e -q -f '%o\n' 2>/dev/null | wc -l)" -ge 1 ]; }
process() {
        local code now p o
        code=$(<"$TMP/code")
        now=$(date +%s%3N)
        echo "{\"event_id\":\"ct-s1\",\"occurred_at\":$now,\"user_id\":\"bob\",\"referral_code\":\"$code\"}" |
                kcat -b "$BROKERS" -P -t signups -k bob
        echo "{\"event_id\":\"ct-p1\",\"occurred_at\":$((now + 1000)),\"user_id\":\"bob\",\"payment_id\":\"pay-1\",\"amount_minor\":1999,\"currency\":\"USD\",\"kind\":\"CHARGE\"}" |
                kcat -b "$BROKERS" -P -t payments -k bob
        until_ok 60 credited || { $P logs "$CONSUMER" | tail -n 30; return 1; }
        # The referrer's credit (keyed by the beneficiary), decoded by
        # `refstream decode` in a container.
        read -r p o < <(kcat -b "$BROKERS" -C -t referral-credited -o beginning -e -q -f '%p %o %k\n' \
                2>/dev/null | awk '$3 == "alice" { print $1, $2; exit }')
        [ -n "${o:-}" ] || { echo "no record keyed alice on referral-credited"; return 1; }
        kcat -b "$BROKERS" -C -t referral-credited -p "$p" -o "$o" -c 1 -e -q -f '%s' |
                $P run -i --rm --network none "$IMAGE" decode >"$TMP/credit.json"
        cat "$TMP/credit.json"
        jq -e '.beneficiary_user_id == "alice" and .amount_minor == 500 and .role == "REFERRER"' "$TMP/credit.json"
}
step "a sign-up and a payment in, the referrer's ReferralCredited out (decoded in a container)" process

observed() {
        local m
        m=$(curl -fsS "http://127.0.0.1:$PORT/metrics")
        grep -E '^refstream_events_total\{type="(signup|payment)",outcome="applied"\} 1$' <<<"$m" | wc -l |
                grep -qx 2 || { grep '^refstream_events_total' <<<"$m"; return 1; }
        # Logs: one JSON object per line (the image's REFSTREAM_LOG_FORMAT=json).
        $P logs "$CONSUMER" >"$TMP/consume.log" 2>&1
        head -n 3 "$TMP/consume.log"
        jq -e -s 'length > 3 and all(.[]; has("ts") and has("level") and has("msg"))' \
                "$TMP/consume.log" >/dev/null
}
step "/metrics counts both events; the logs are JSON lines" observed

stops_cleanly() {
        local rc
        $P stop -t 40 "$CONSUMER" >/dev/null
        rc=$($P inspect --format '{{.State.ExitCode}}' "$CONSUMER")
        echo "exit code $rc"
        $P logs "$CONSUMER" 2>&1 | tail -n 3
        [ "$rc" = 0 ]
}
step "podman stop (SIGTERM): consume exits 0" stops_cleanly

# Housekeeping, not a check: the build stage tagged too (its layers stay the
# cache of the next run), then images no tag refers to any more (earlier
# runs' layers; vfs stores every layer whole) are removed.
$P rm -f "$CONSUMER" >/dev/null 2>&1 || true
$P build --network host -f deploy/Dockerfile --target build -t localhost/refstream:build . >/dev/null 2>&1 || true
$P image prune -f >/dev/null 2>&1 || true
finish
