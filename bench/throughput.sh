#!/usr/bin/env bash
# Processing throughput of `refstream consume` against a real Kafka broker,
# Postgres and Redis on this machine.
#
#   bench/throughput.sh [REFEREES] [BATCH_SIZE ...]     (defaults: 20000 1 100 500)
#
# For each batch size: a fresh database and fresh topics, one program with 50
# codes, `refstream loadgen --seed 7` publishes REFEREES referees (a sign-up
# each, 80% with a code, 70% paying, 1% of those refunding: about 1.7 events
# per referee), then one consumer processes the backlog. Throughput is input
# events divided by the span between the first and the last inbox row, so
# start-up and the consumer-group join are not counted. The inbox records
# only the events whose replay needs it (docs/design.md §2), not all: so the
# backlog ends with one more record in every input partition that the inbox
# does record (a sign-up with a code, a charge of a user who never signs up).
# A partition is processed in order, so the consumer is done when all of
# these are in the inbox, and the last inbox row is the end of the run. (The
# first is that of the first batch, unless it held only events that need no
# row: a few events at most, with batch size 1.) Batch size 1 is one
# transaction per event, the shape of a straightforward hand-written consumer.
#
# Uses the stack named by RS_STACK_ENV (env files, ':'-separated) or starts its
# own in a temp directory (and stops it afterwards); RS_PG_FSYNC=on gives that
# Postgres real durability (scripts/stack.sh defaults to fsync off).
set -euo pipefail
cd "$(dirname "$0")/.."
REFEREES=${1:-20000}
shift || true
if [ $# -gt 0 ]; then SIZES=("$@"); else SIZES=(1 100 500); fi
BIN=${RS_BIN:-build/refstream}
[ -x "$BIN" ] || scripts/build.sh

own_stack=
if [ -z "${RS_STACK_ENV:-}" ]; then
        own_stack=$(mktemp -d "${TMPDIR:-/tmp}/rs-bench.XXXXXX")
        scripts/stack.sh up db --dir "$own_stack/db" >/dev/null
        scripts/stack.sh up kafka --dir "$own_stack/kafka" >/dev/null
        RS_STACK_ENV="$own_stack/db/env:$own_stack/kafka/env"
fi
cleanup() {
        [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null || true
        if [ -n "$own_stack" ]; then
                scripts/stack.sh down --dir "$own_stack/kafka" --purge >/dev/null || true
                scripts/stack.sh down --dir "$own_stack/db" --purge >/dev/null || true
                rmdir "$own_stack" 2>/dev/null || true
        fi
}
trap cleanup EXIT
IFS=: read -r -a files <<<"$RS_STACK_ENV"
set -a
for f in "${files[@]}"; do
        # shellcheck source=/dev/null # the stack's env file
        . "$f"
done
set +a

export REFSTREAM_HTTP_ADDR='' REFSTREAM_LOG_LEVEL=warn
printf '%-10s %8s %10s %12s %9s\n' batch events seconds events/s credits
for size in "${SIZES[@]}"; do
        run=bench$RANDOM
        export REFSTREAM_DATABASE_URL="${RS_PG_SUPERUSER_URL%/*}/$run"
        for t in SIGNUPS PAYMENTS CREDITED REVERSED DLQ; do
                export "REFSTREAM_TOPIC_$t=$run-${t,,}"
        done
        export REFSTREAM_GROUP_ID=$run REFSTREAM_BATCH_SIZE=$size
        psql -X -q "$RS_PG_SUPERUSER_URL" -c "CREATE DATABASE $run" >/dev/null
        "$BIN" migrate >/dev/null
        "$BIN" admin program create --key bench --name Bench --currency USD \
                --reward-percent 500 --reward-cap 2000 --referee-reward 300 \
                --min-payment 1000 >/dev/null
        codes=$(for i in $(seq 1 50); do "$BIN" admin codes issue --program bench --user "ref$i"; done |
                paste -sd,)
        "$BIN" loadgen --seed 7 --count "$REFEREES" --codes "$codes" 2>/dev/null
        # The end marks: the code "END" cannot exist (too short), so the
        # sign-up is recorded (it carries a code) and rejected without a lookup.
        ends='' nends=0
        for t in "$REFSTREAM_TOPIC_SIGNUPS" "$REFSTREAM_TOPIC_PAYMENTS"; do
                for p in $(kcat -b "$REFSTREAM_KAFKA_BROKERS" -L -t "$t" -J |
                        jq '.topics[0].partitions[].partition'); do
                        id=end-$p kind=payment
                        json="{\"event_id\":\"$id\",\"occurred_at\":$(date +%s%3N),\"user_id\":\"end-pay-$p\",\"payment_id\":\"end-$p\",\"amount_minor\":100,\"currency\":\"USD\",\"kind\":\"CHARGE\"}"
                        if [ "$t" = "$REFSTREAM_TOPIC_SIGNUPS" ]; then
                                kind=signup
                                json="{\"event_id\":\"$id\",\"occurred_at\":$(date +%s%3N),\"user_id\":\"end-su-$p\",\"referral_code\":\"END\"}"
                        fi
                        echo "$json" | kcat -b "$REFSTREAM_KAFKA_BROKERS" -P -t "$t" -p "$p"
                        ends+="${ends:+, }rs_inbox_key('$kind', '$id')"
                        nends=$((nends + 1))
                done
        done
        events=0
        for t in "$REFSTREAM_TOPIC_SIGNUPS" "$REFSTREAM_TOPIC_PAYMENTS"; do
                n=$(kcat -b "$REFSTREAM_KAFKA_BROKERS" -C -t "$t" -o beginning -e -q -f '.\n' | wc -l)
                events=$((events + n))
        done
        "$BIN" consume &
        pid=$!
        until [ "$(psql -X -At "$REFSTREAM_DATABASE_URL" \
                -c "SELECT count(*) FROM rs_inbox WHERE key IN ($ends)")" -ge "$nends" ]; do
                sleep 0.5
        done
        kill -TERM "$pid"
        wait "$pid"
        pid=
        psql -X -At -F ' ' "$REFSTREAM_DATABASE_URL" -c "
                SELECT $size, $events,
                       round(extract(epoch FROM max(processed_at) - min(processed_at))::numeric, 2),
                       round($events / greatest(extract(epoch FROM max(processed_at)
                                                       - min(processed_at)), 0.001)),
                       (SELECT count(*) FROM rs_credits)
                FROM rs_inbox" | awk '{printf "%-10s %8s %10s %12s %9s\n", $1, $2, $3, $4, $5}'
        psql -X -q "$RS_PG_SUPERUSER_URL" -c "DROP DATABASE $run WITH (FORCE)" >/dev/null
done
