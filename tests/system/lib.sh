# shellcheck shell=bash
# Shared helpers of the system tests: the refstream binary as a user runs it,
# a real Kafka broker, Postgres and Redis from scripts/stack.sh, and kcat as an
# independent Kafka client. Sourced by tests/system/test_*.sh.
#
# Each test gets its own database, topics and consumer group (named after the
# test), so tests can run in parallel and leave nothing behind but their data.
set -euo pipefail

: "${RS_BIN:?RS_BIN must point at the refstream binary (ctest sets it)}"
: "${RS_STACK_ENV:?RS_STACK_ENV must name the stack env files (ctest sets it)}"

# The stack's settings (REFSTREAM_KAFKA_BROKERS, REFSTREAM_REDIS_URL, ...).
IFS=: read -r -a _rs_env_files <<<"$RS_STACK_ENV"
for _f in "${_rs_env_files[@]}"; do
        [ -f "$_f" ] || { echo "system test: missing stack env file $_f" >&2; exit 1; }
        set -a
        # shellcheck disable=SC1090
        . "$_f"
        set +a
done
[ "${RS_KAFKA_KIND:-}" = real ] || { echo "system test: needs the real Kafka broker" >&2; exit 1; }

RS_TEST=$(basename "$0" .sh)
RS_TEST=${RS_TEST#test_}
RS_TMP=$(mktemp -d "${TMPDIR:-/tmp}/rs-sys-$RS_TEST.XXXXXX")
RS_PIDS=()
RS_FAILED=0
BROKERS=$REFSTREAM_KAFKA_BROKERS
RUN_ID=$(date +%s%N | tail -c 7) # topics differ between runs of the suite

# Topics, group and database of this test.
export REFSTREAM_TOPIC_SIGNUPS="t-$RS_TEST-$RUN_ID-signups"
export REFSTREAM_TOPIC_PAYMENTS="t-$RS_TEST-$RUN_ID-payments"
export REFSTREAM_TOPIC_CREDITED="t-$RS_TEST-$RUN_ID-credited"
export REFSTREAM_TOPIC_REVERSED="t-$RS_TEST-$RUN_ID-reversed"
export REFSTREAM_TOPIC_DLQ="t-$RS_TEST-$RUN_ID-dlq"
export REFSTREAM_GROUP_ID="g-$RS_TEST-$RUN_ID"
export REFSTREAM_HTTP_ADDR=127.0.0.1:0
export REFSTREAM_BATCH_LINGER_MS=20
export REFSTREAM_OUTBOX_SWEEP_INTERVAL_MS=500
DB="sys_$RS_TEST"
export REFSTREAM_DATABASE_URL="${RS_PG_SUPERUSER_URL%/*}/$DB"

log() { echo "[$RS_TEST] $(date +%T.%3N) $*" >&2; }

fail() {
        log "FAIL: $*"
        RS_FAILED=1
        exit 1
}

# wait_until SECONDS WHAT COMMAND...: runs COMMAND every 0.2 s (WAIT_STEP) until it
# succeeds; fails the test after SECONDS, naming WHAT and, when COMMAND set
# LAST (what it saw last), that too. Every wait of these tests is this one.
wait_until() {
        local secs=$1 what=$2 deadline
        shift 2
        LAST=
        deadline=$((SECONDS + secs))
        until "$@"; do
                ((SECONDS < deadline)) || fail "waited ${secs}s for $what${LAST:+, last [$LAST]}"
                sleep "${WAIT_STEP:-0.2}"
        done
}

cleanup() {
        local rc=$?
        for pid in "${RS_PIDS[@]:-}"; do
                [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
        done
        if [ "$rc" -ne 0 ] || [ "$RS_FAILED" -ne 0 ]; then
                for f in "$RS_TMP"/*.log; do
                        [ -f "$f" ] || continue
                        echo "----- $f (last 40 lines)" >&2
                        tail -n 40 "$f" >&2
                done
        fi
        rm -rf "$RS_TMP"
        exit "$rc"
}
trap cleanup EXIT

rs() { "$RS_BIN" "$@"; }

psql_q() { psql -X -q -At -v ON_ERROR_STOP=1 "$REFSTREAM_DATABASE_URL" -c "$1"; }

# A fresh, migrated database for this test.
fresh_db() {
        psql -X -q -v ON_ERROR_STOP=1 "$RS_PG_SUPERUSER_URL" \
                -c "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" -c "CREATE DATABASE \"$DB\"" \
                2>/dev/null
        rs migrate >/dev/null
}

# Creates the test's topics (4 partitions, the broker's default) by asking the
# broker for their metadata with auto-creation allowed.
create_topics() {
        local t
        for t in "$REFSTREAM_TOPIC_SIGNUPS" "$REFSTREAM_TOPIC_PAYMENTS" "$REFSTREAM_TOPIC_CREDITED" \
                "$REFSTREAM_TOPIC_REVERSED" "$REFSTREAM_TOPIC_DLQ"; do
                printf '' | kcat -b "$BROKERS" -P -t "$t" -X allow.auto.create.topics=true 2>/dev/null ||
                        true
                kcat -b "$BROKERS" -L -t "$t" -X allow.auto.create.topics=true >/dev/null 2>&1 || true
        done
        wait_until 10 "the test's topics" topics_created
}

# create_topic NAME PARTITIONS: a topic with that many partitions (before
# setup, whose create_topics leaves an existing topic as it is).
create_topic() {
        local f
        for f in "${_rs_env_files[@]}"; do
                if grep -q REFSTREAM_KAFKA_BROKERS "$f"; then
                        "$RS_SOURCE_DIR/scripts/stack.sh" topic --dir "$(dirname "$f")" "$1" "$2" \
                                >/dev/null
                        return
                fi
        done
        fail "no Kafka stack to create topic $1 on"
}

topics_created() {
        LAST=$(kcat -b "$BROKERS" -L 2>/dev/null | grep -c "topic \"t-$RS_TEST-$RUN_ID-" || true)
        [ "$LAST" -ge 5 ]
}

setup() {
        fresh_db
        create_topics
}

# kcat_produce TOPIC KEY < lines: one record per line.
kcat_produce() { kcat -b "$BROKERS" -P -t "$1" -k "$2" -T >/dev/null; }

# kcat_produce_keyed TOPIC < "KEY<TAB>VALUE" lines: one record per line, each
# with its own key (one kcat for many users' events).
kcat_produce_keyed() { kcat -b "$BROKERS" -P -t "$1" -K $'\t' >/dev/null; }

# kcat_produce_file TOPIC KEY FILE: the file's bytes, unchanged, as one record
# (for binary and malformed input, and records above refstream's 1 MiB limit:
# the test broker accepts up to 4 MiB).
kcat_produce_file() { kcat -b "$BROKERS" -P -X message.max.bytes=4000000 -t "$1" -k "$2" "$3"; }

# mark_input_end: the end of the input: one more record at the end of every
# partition of both input topics (kcat -p), each of which leaves a row
# whatever came before it: a sign-up (without a code) of a user of its own, a
# charge of a user who never signs up (rs_first_charges). A consumer applies
# a partition's records in order, so once all of these rows are there, every
# record was processed (most events leave no trace of their own, a replayed
# one none). Sets END_MARKS and PAYMENT_MARKS (how many in all, and of
# them charges); END_MARKS_SQL counts the rows they left.
# shellcheck disable=SC2034 # read by the tests
END_MARKS_SQL="SELECT (SELECT count(*) FROM rs_users WHERE signup_event_id LIKE 'end-%')
        + (SELECT count(*) FROM rs_first_charges WHERE event_id LIKE 'end-%')"
mark_input_end() {
        local t p id
        END_MARKS=0 PAYMENT_MARKS=0
        for t in "$REFSTREAM_TOPIC_SIGNUPS" "$REFSTREAM_TOPIC_PAYMENTS"; do
                for p in $(kcat -b "$BROKERS" -L -t "$t" -J | jq '.topics[0].partitions[].partition'); do
                        id=end-${t##*-}-$p
                        if [ "$t" = "$REFSTREAM_TOPIC_SIGNUPS" ]; then
                                echo "{\"event_id\":\"$id\",\"occurred_at\":$(date +%s%3N),\"user_id\":\"$id\"}"
                        else
                                echo "{\"event_id\":\"$id\",\"occurred_at\":$(date +%s%3N),\"user_id\":\"$id\",\"payment_id\":\"p-$id\",\"amount_minor\":100,\"currency\":\"USD\",\"kind\":\"CHARGE\"}"
                        fi | kcat -b "$BROKERS" -P -t "$t" -p "$p" -k "$id"
                        END_MARKS=$((END_MARKS + 1))
                        [ "$t" = "$REFSTREAM_TOPIC_SIGNUPS" ] || PAYMENT_MARKS=$((PAYMENT_MARKS + 1))
                done
        done
        [ "$END_MARKS" -ge 2 ] || fail "no partitions to mark the end of"
}

# Starts `refstream consume` in the background; NAME names its log file.
# Sets CONSUMER_PID and HTTP_PORT.
start_consumer() {
        local name=${1:-consumer}
        shift || true
        # The log exists before the child opens it: reading a missing file
        # below would end the test silently (set -e with pipefail).
        : >"$RS_TMP/$name.log"
        "$RS_BIN" consume "$@" >"$RS_TMP/$name.log" 2>&1 &
        CONSUMER_PID=$!
        RS_PIDS+=("$CONSUMER_PID")
        HTTP_PORT=
        wait_until 10 "consumer $name to serve HTTP" serving "$name"
}

serving() { # NAME: the consumer logged its HTTP port (sets HTTP_PORT)
        HTTP_PORT=$(sed -n 's/.*serving .* (port \([0-9]*\)).*/\1/p' "$RS_TMP/$1.log" | head -n1)
        [ -n "$HTTP_PORT" ] && return 0
        kill -0 "$CONSUMER_PID" 2>/dev/null || fail "consumer $1 exited early"
        return 1
}

# Stops a consumer with SIGTERM and checks it exits 0.
stop_consumer() {
        local pid=${1:-$CONSUMER_PID} rc=0
        kill -TERM "$pid"
        wait "$pid" || rc=$?
        [ "$rc" -eq 0 ] || fail "consumer $pid exited $rc after SIGTERM"
}

# sql_is SQL WANT / sql_ge SQL N: the query prints WANT / a number >= N.
sql_is() {
        LAST=$(psql_q "$1" 2>/dev/null || true)
        [ "$LAST" = "$2" ]
}
sql_ge() {
        LAST=$(psql_q "$1" 2>/dev/null || true)
        [ -n "$LAST" ] && [ "$LAST" -ge "$2" ]
}

# wait_sql SQL EXPECTED [SECONDS]: polls until the query prints EXPECTED.
wait_sql() { wait_until "${3:-60}" "[$1] = [$2]" sql_is "$1" "$2"; }

expect_eq() { # ACTUAL EXPECTED WHAT
        [ "$1" = "$2" ] || fail "$3: expected [$2], got [$1]"
}

# kcat_consume ARGS: kcat as a consumer. A short fetch wait makes `-e` (exit at
# the end of the partitions) return at once instead of after librdkafka's
# default 500 ms wait on each empty fetch.
kcat_consume() { kcat -b "$BROKERS" -C -X fetch.wait.max.ms=10 "$@"; }

# topic_count TOPIC: how many records it holds.
topic_count() {
        kcat_consume -t "$1" -o beginning -e -q -f '%o\n' 2>/dev/null | wc -l
}

# decode_all TOPIC: every record decoded to JSON by `refstream decode`, one per
# line, in partition/offset order. One kcat read for the whole topic: kcat
# prints each value as "<length>\n<bytes>", perl cuts the stream into records
# and hands each one to `refstream decode`.
decode_all() {
        kcat_consume -t "$1" -o beginning -e -q -f '%S\n%s' 2>/dev/null |
                perl -e '
                        binmode STDIN;
                        my $bin = shift;
                        while (defined(my $len = <STDIN>)) {
                                chomp $len;
                                my $buf = "";
                                read(STDIN, $buf, $len) == $len or die "decode_all: short record\n";
                                open(my $d, "|-", $bin, "decode") or die "decode_all: $!\n";
                                binmode $d;
                                print $d $buf;
                                close $d or die "decode_all: refstream decode failed\n";
                        }' "$RS_BIN"
}

# records TOPIC: every record's metadata as one JSON object per line, in
# partition/offset order: topic, partition, offset, key and headers (an object
# {"name": "value"}). The value is left out (see record_hex, decode_records).
records() {
        kcat_consume -t "$1" -o beginning -e -q -J 2>/dev/null |
                jq -c 'del(.payload) | .headers = ((.headers // []) as $h
                        | [range(0; $h | length; 2) as $i | {($h[$i]): $h[$i + 1]}] | add // {})' |
                jq -sc 'sort_by(.partition, .offset) | .[]'
}

# decode_records TOPIC: records TOPIC, each with its value decoded by
# `refstream decode` under "value" (for output topics).
decode_records() {
        local topic=$1 line p o v
        records "$topic" | while read -r line; do
                p=$(jq -r .partition <<<"$line")
                o=$(jq -r .offset <<<"$line")
                v=$(kcat_consume -t "$topic" -p "$p" -o "$o" -c 1 -e -q -f '%s' | rs decode)
                jq -c --argjson v "$v" '. + {value: $v}' <<<"$line"
        done
}

# headers_of TOPIC: the headers of every record, one line each.
headers_of() {
        kcat_consume -t "$1" -o beginning -e -q -f '%h\n' 2>/dev/null
}

# record_hex TOPIC PARTITION OFFSET: the value of one record as a hex string.
record_hex() {
        kcat_consume -t "$1" -p "$2" -o "$3" -c 1 -e -q -f '%s' | od -An -v -tx1 |
                tr -d ' \n'
}

# metric_sum PREFIX: the sum of the running consumer's /metrics samples whose
# line starts with PREFIX: a whole family ("refstream_events_total"), or one
# series ('refstream_events_total{type="signup",outcome="applied"}').
metric_sum() {
        http_get /metrics | awk -v p="$1" 'index($0, p) == 1 { s += $NF } END { print s + 0 }'
}

# wait_metric PREFIX EXPECTED [SECONDS]: polls until metric_sum PREFIX prints
# EXPECTED, e.g. until the consumer has seen every input record (replays and
# duplicates included, which leave no trace in the database).
wait_metric() { wait_until "${3:-60}" "metric $1 = $2" metric_is "$1" "$2"; }
metric_is() {
        LAST=$(metric_sum "$1" 2>/dev/null || true)
        [ "$LAST" = "$2" ]
}

http_get() { curl -fsS "http://127.0.0.1:$HTTP_PORT$1"; }
http_text() { curl -sS "http://127.0.0.1:$HTTP_PORT$1" 2>/dev/null || true; }

# says PATH TEXT: the consumer's PATH answers with a body containing TEXT.
says() { [[ "$(http_text "$1")" == *"$2"* ]]; }
http_code() { curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTTP_PORT$1"; }

pass() { log "PASS"; }

# ---------------------------------------------------------------- more helpers
# (added for the restart, shutdown/config, two-consumer, lifecycle and
# operations scenarios; each is small and independent of the others)

# psql_at URL SQL: like psql_q, for another database of the test.
psql_at() { psql -X -q -At -v ON_ERROR_STOP=1 "$1" -c "$2"; }

# wait_sql_ge SQL N [SECONDS]: polls until the query prints a number >= N.
wait_sql_ge() { wait_until "${3:-60}" "[$1] >= $2" sql_ge "$1" "$2"; }

# wait_http PATH CODE [SECONDS]: polls the consumer's HTTP port until PATH
# answers with status CODE.
wait_http() { wait_until "${3:-60}" "$1 to answer $2" answers "$1" "$2"; }
answers() {
        LAST=$(http_code "$1")
        [ "$LAST" = "$2" ]
}

# metric 'NAME{LABELS}': the value of one series on /metrics (0 if absent);
# the argument is the series exactly as exposed, e.g.
# 'refstream_events_total{type="signup",outcome="applied"}'.
metric() {
        http_get /metrics | awk -v s="$1" '$1 == s { v = $2 } END { print v == "" ? 0 : v }'
}

# wait_exit PID SECONDS: waits for a background process of this shell to end
# and sets WAIT_RC to its exit status (fails the test if it is still alive
# after SECONDS). (Not for $(...): a subshell cannot wait for our children.)
# shellcheck disable=SC2034 # WAIT_RC is read by the tests
wait_exit() {
        wait_until "$2" "process $1 to exit" exited "$1"
        WAIT_RC=0
        wait "$1" || WAIT_RC=$?
}
exited() { ! kill -0 "$1" 2>/dev/null; }

# term_delivered PID: no SIGTERM (signal 15) is pending for PID: its handler ran.
term_delivered() {
        local mask
        for mask in $(awk '/^(SigPnd|ShdPnd):/ { print $2 }' "/proc/$1/status"); do
                (((16#$mask >> 14) & 1)) && return 1
        done
        return 0
}
