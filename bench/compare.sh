#!/usr/bin/env bash
# refstream against the per-message baseline (bench/baseline/), on the same
# stream, on this machine: real Kafka broker, Postgres with fsync on, Redis.
#
#   bench/compare.sh [MIX] [USERS] [LATENCY_RATE]
#       MIX           heavy (default) or production (`refstream loadgen --mix`)
#       USERS         users of the stream (default 20000: 40,000 heavy events)
#       LATENCY_RATE  also measure latency with the stream published at this
#                     many events/s while refstream runs (default 0: skip)
#   RS_COMPARE_BASELINE=0 runs refstream alone (for long streams: the flatness
#   run of a million events; the credits are then not compared).
#   RS_COMPARE_PROFILE=1 also says where refstream's run spent its time: the
#   CPU seconds of refstream, Postgres and the broker over the run, and the
#   statements that took Postgres's time and the WAL they wrote
#   (pg_stat_statements, pg_stat_wal), and the rows
#   each table wrote (how many updates were HOT).
#   RS_COMPARE_LOGS=DIR keeps the processes' logs in DIR.
#
# For each system: a fresh database with the same program (fixed reward 500,
# referee reward 250, minimum 1000 USD, 30-day window) and the same 50 codes,
# and its own consumer group over the same topics. Both commit offsets every
# 200 ms; bench/measure.py polls the group's committed offsets from outside:
# start-up is the time to the first progress, steady state the time from
# there to zero lag. Then the credits of both databases are compared: the
# same beneficiaries, roles and amounts, or the run fails.
set -euo pipefail
cd "$(dirname "$0")/.."
MIX=${1:-heavy}
USERS=${2:-20000}
LATENCY_RATE=${3:-0}
BIN=${RS_BIN:-build/refstream}
[ -x "$BIN" ] || scripts/build.sh
PY=$(scripts/pyenv.sh)

dir=$(mktemp -d "${TMPDIR:-/tmp}/rs-compare.XXXXXX")
pids=()
cleanup() {
        [ -z "${RS_COMPARE_LOGS:-}" ] || cp "$dir"/*.log "$RS_COMPARE_LOGS"/ 2>/dev/null || true
        for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
        scripts/stack.sh down --dir "$dir/kafka" --purge >/dev/null 2>&1 || true
        scripts/stack.sh down --dir "$dir/db" --purge >/dev/null 2>&1 || true
        rm -rf "$dir"
}
trap cleanup EXIT
RS_PG_FSYNC=on scripts/stack.sh up db --dir "$dir/db" >/dev/null
PROFILE=${RS_COMPARE_PROFILE:-0}
if [ "$PROFILE" = 1 ]; then
        psql -X -q "$(scripts/stack.sh env --dir "$dir/db" | sed -n 's/^RS_PG_SUPERUSER_URL=//p')" \
                -c "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'"
        scripts/stack.sh stop postgres --dir "$dir/db" >/dev/null
        scripts/stack.sh start postgres --dir "$dir/db" >/dev/null
fi
scripts/stack.sh up kafka --dir "$dir/kafka" >/dev/null
set -a
. "$dir/db/env"
. "$dir/kafka/env"
set +a
B=$REFSTREAM_KAFKA_BROKERS
export REFSTREAM_HTTP_ADDR='' REFSTREAM_LOG_LEVEL=warn
export REFSTREAM_TOPIC_SIGNUPS=cmp-signups REFSTREAM_TOPIC_PAYMENTS=cmp-payments
export REFSTREAM_TOPIC_CREDITED=cmp-credited REFSTREAM_TOPIC_REVERSED=cmp-reversed
export REFSTREAM_TOPIC_DLQ=cmp-dlq
export REFSTREAM_RDKAFKA_AUTO_COMMIT_INTERVAL_MS=200
pg() { psql -X -q -At "$@"; }
newdb() { pg "$RS_PG_SUPERUSER_URL" -c "CREATE DATABASE $1"; echo "${RS_PG_SUPERUSER_URL%/*}/$1"; }

# setup DB: a migrated refstream database DB with the benchmark's program and
# its 50 codes: generated the first time (into codes.tsv, with their owners;
# the baseline gets the same), the same codes afterwards.
setup() {
        export REFSTREAM_DATABASE_URL
        REFSTREAM_DATABASE_URL=$(newdb "$1")
        "$BIN" migrate >/dev/null
        "$BIN" admin program create --key bench --name Bench --currency USD \
                --reward-fixed 500 --referee-reward 250 --min-payment 1000 >/dev/null
        if [ -f "$dir/codes.tsv" ]; then
                while IFS=$'\t' read -r code owner; do
                        "$BIN" admin codes issue --program bench --user "$owner" \
                                --code "$code" >/dev/null
                done <"$dir/codes.tsv"
        else
                for i in $(seq 1 50); do
                        printf '%s\tref%s\n' \
                                "$("$BIN" admin codes issue --program bench --user "ref$i")" "$i"
                done >"$dir/codes.tsv"
        fi
}
setup rs
codes=$(cut -f1 "$dir/codes.tsv" | paste -sd,)
# The output topics exist before the runs, as in production: a topic the
# broker creates on the first record it gets holds that producer's records
# back for a second or more.
for t in "$REFSTREAM_TOPIC_CREDITED" "$REFSTREAM_TOPIC_REVERSED" "$REFSTREAM_TOPIC_DLQ" \
        bl-credited lat-credited; do
        scripts/stack.sh topic --dir "$dir/kafka" "$t" 4 2>/dev/null
done

"$BIN" loadgen --mix "$MIX" --seed 7 --count "$USERS" --codes "$codes" 2>"$dir/loadgen.log" ||
        { cat "$dir/loadgen.log" >&2; exit 1; }
events=0
for t in "$REFSTREAM_TOPIC_SIGNUPS" "$REFSTREAM_TOPIC_PAYMENTS"; do
        events=$((events + $(kcat -b "$B" -C -t "$t" -o beginning -e -q -f '.\n' | wc -l)))
done
echo "stream: --mix $MIX, $USERS users, $events events; Postgres fsync on" >&2

# measure NAME GROUP PID: waits until GROUP has committed every input record;
# prints NAME and the measurement.
measure() {
        "$PY" bench/measure.py progress --brokers "$B" --group "$2" --pid "$3" \
                --topics "$REFSTREAM_TOPIC_SIGNUPS,$REFSTREAM_TOPIC_PAYMENTS" >"$dir/$1.json"
}

# ---- the baseline
BASELINE=${RS_COMPARE_BASELINE:-1}
if [ "$BASELINE" = 1 ]; then
bl_url=$(newdb bl)
"$PY" bench/baseline/consumer.py --init --brokers "$B" --group bl --database-url "$bl_url" \
        --redis-url "$REFSTREAM_REDIS_URL" --topic-signups "$REFSTREAM_TOPIC_SIGNUPS" \
        --topic-payments "$REFSTREAM_TOPIC_PAYMENTS" --topic-credited bl-credited \
        --reward 500 --referee-reward 250 --min-payment 1000 --currency USD --window-days 30 \
        --codes-file "$dir/codes.tsv" -X auto.commit.interval.ms=200 2>"$dir/baseline.log" &
pids+=("$!")
measure baseline bl "$!"
kill -TERM "${pids[-1]}"
wait "${pids[-1]}" || true
fi

# ---- refstream
# cpu PID...: CPU seconds (user + system) of the processes, with the children
# they waited for (Postgres's backends that ended).
cpu() {
        local p t=0
        for p in "$@"; do
                t=$((t + $(awk '{print $14 + $15 + $16 + $17}' "/proc/$p/stat" 2>/dev/null || echo 0)))
        done
        echo "$t"
}
pg_pids() {
        local pm
        pm=$(scripts/stack.sh pid postgres --dir "$dir/db")
        echo "$pm" $(pgrep -P "$pm")
}
if [ "$PROFILE" = 1 ]; then
        pg "$REFSTREAM_DATABASE_URL" -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" \
                -c "SELECT pg_stat_statements_reset()" \
                -c "SELECT pg_stat_reset_shared('wal')" >/dev/null
        # shellcheck disable=SC2046 # one PID per word
        pg0=$(cpu $(pg_pids)) k0=$(cpu "$(scripts/stack.sh pid kafka --dir "$dir/kafka")")
fi
REFSTREAM_GROUP_ID=rs "$BIN" consume 2>"$dir/refstream.log" &
pids+=("$!")
measure refstream rs "$!"
if [ "$PROFILE" = 1 ]; then
        # shellcheck disable=SC2046 # one PID per word
        pg1=$(cpu $(pg_pids)) k1=$(cpu "$(scripts/stack.sh pid kafka --dir "$dir/kafka")")
        rs1=$(cpu "${pids[-1]}")
        awk -v t="$(getconf CLK_TCK)" -v rs="$rs1" -v pg=$((pg1 - pg0)) -v k=$((k1 - k0)) \
                -v s="$(jq -r .zero_lag_s "$dir/refstream.json")" -v n="$(nproc)" \
                'BEGIN { printf "profile: CPU seconds over the run: refstream %.2f, Postgres %.2f, broker %.2f; %.2f s from start to zero lag on %d cores\n", rs / t, pg / t, k / t, s, n }'
        pg "$REFSTREAM_DATABASE_URL" -F ' ' -c "SELECT 'profile: WAL written over the run:',
                round(wal_bytes / 1048576.0, 1), 'MiB,', wal_fpi, 'full-page images'
                FROM pg_stat_wal"
        echo "profile: Postgres time by statement (ms, calls, rows, WAL KiB, full-page images, statement):"
        pg "$REFSTREAM_DATABASE_URL" -F ' | ' -c "SELECT round(total_exec_time), calls, rows,
                round(wal_bytes / 1024), wal_fpi,
                left(regexp_replace(query, '\s+', ' ', 'g'), 100)
                FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 12"
fi
kill -TERM "${pids[-1]}"
wait "${pids[-1]}"
if [ "$PROFILE" = 1 ]; then
        # After the exit: a backend reports its table counts about once a second.
        echo "profile: rows written by table (inserted, updated, of which HOT, deleted):"
        pg "$REFSTREAM_DATABASE_URL" -F ' | ' -c "SELECT relname, n_tup_ins, n_tup_upd,
                n_tup_hot_upd, n_tup_del FROM pg_stat_user_tables
                WHERE n_tup_ins + n_tup_upd + n_tup_del > 0 ORDER BY relname"
fi

# ---- the same credits
credits() { # URL SQL: beneficiary, role, amount, status, one per line, sorted
        pg "$1" -F ' ' -c "$2" | sort
}
credits "$REFSTREAM_DATABASE_URL" "SELECT beneficiary_user_id, upper(role), amount_minor,
        status FROM rs_credits" >"$dir/rs.credits"
if [ "$BASELINE" = 1 ]; then
credits "$bl_url" "SELECT beneficiary, role, amount_minor,
        CASE WHEN reversed_at IS NULL THEN 'issued' ELSE 'reversed' END
        FROM bl_credits" >"$dir/bl.credits"
if ! cmp -s "$dir/rs.credits" "$dir/bl.credits"; then
        echo "compare: the credits differ (refstream $(wc -l <"$dir/rs.credits")," \
                "baseline $(wc -l <"$dir/bl.credits")):" >&2
        diff "$dir/rs.credits" "$dir/bl.credits" | head -20 >&2
        exit 1
fi
fi

"$PY" - "$dir" "$events" "$(wc -l <"$dir/rs.credits")" <<'EOF'
import json, os, sys
d, events, credits = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
r = {n: json.load(open(f"{d}/{n}.json")) for n in ("refstream", "baseline")
     if os.path.exists(f"{d}/{n}.json")}
print(f"{'':10} {'events':>8} {'start-up s':>10} {'steady s':>9} {'events/s':>9} "
      f"{'1st tenth/s':>11} {'last tenth/s':>12} {'peak RSS MiB':>12}")
for n, m in r.items():
    print(f"{n:10} {events:8} {m['first_progress_s']:10} {m['steady_s']:9} "
          f"{m['events_per_s']:9} {m['first_tenth_per_s']:11} {m['last_tenth_per_s']:12} "
          f"{m['peak_rss_mib']:12}")
if "baseline" in r:
    print(f"ratio: {r['refstream']['events_per_s'] / r['baseline']['events_per_s']:.1f}x; "
          f"credits identical in both databases: {credits}")
else:
    print(f"credits: {credits} (no baseline run)")
EOF
# Charges processed before their sign-up need inbox rows that charges after
# it do not (docs/design.md §2): many more rows than the stream has refunds
# and referred users' events says that payments ran ahead of the sign-ups.
echo "refstream's inbox: $(pg "$REFSTREAM_DATABASE_URL" -c "SELECT count(*) FROM rs_inbox") rows"

# ---- latency at a steady rate (refstream only)
if [ "$LATENCY_RATE" -gt 0 ]; then
        export REFSTREAM_TOPIC_SIGNUPS=lat-signups REFSTREAM_TOPIC_PAYMENTS=lat-payments
        export REFSTREAM_TOPIC_CREDITED=lat-credited
        setup lat
        # Topics first, so that the consumer is assigned before the stream starts.
        "$BIN" loadgen --mix "$MIX" --seed 8 --count 1 --codes "$codes" 2>/dev/null
        REFSTREAM_GROUP_ID=lat "$BIN" consume 2>"$dir/latency.log" &
        pids+=("$!")
        sleep 5
        since=$(date +%s%3N) # the topic-creating record above is not timed
        "$BIN" loadgen --mix "$MIX" --seed 9 --count "$USERS" --codes "$codes" \
                --rate "$LATENCY_RATE" 2>"$dir/loadgen-rate.log"
        measure latency-run lat "${pids[-1]}"
        kill -TERM "${pids[-1]}"
        wait "${pids[-1]}"
        echo "latency at $LATENCY_RATE events/s, payment to ReferralCredited (first 5 s skipped):"
        "$PY" bench/measure.py latency --brokers "$B" --payments lat-payments \
                --credited lat-credited --since-ms "$since" --skip 5
fi
