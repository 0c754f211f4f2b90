#!/usr/bin/env bash
# docs/commands.md (SIGTERM, exit codes, --help, migrate) and §5 (configuration):
#  - SIGTERM finishes the batch in flight, commits, exits 0; a restarted
#    consumer of the same group re-reads nothing;
#  - a second SIGTERM during shutdown exits at once;
#  - bad settings exit 2 naming the setting; a config file is applied and
#    env and flags override it; unknown REFSTREAM_* only warn; secrets are
#    redacted in logs;
#  - --help everywhere, unknown command, unmigrated database, migrate twice.
# To hold a batch "in flight" for as long as we like, the test locks rs_inbox
# from another session: the batch transaction inserts into it before it
# writes any effect, when the batch holds an event the inbox records (a
# sign-up with a code, as all of this test's sign-ups but the sentinels are).
. "$(dirname "$0")/lib.sh"
setup

rs admin program create --key sd --name "Shutdown" --currency USD --reward-fixed 100 >/dev/null
CODE=$(rs admin codes issue --program sd --user owner)
inbox="SELECT count(*) FROM rs_inbox"
referrals="SELECT count(*) FROM rs_referrals"

# signups N M: sign-ups of users uN..uM with the code (JSON, keyed by user):
# each makes a referral and an inbox row.
signups() {
        local i
        for i in $(seq "$1" "$2"); do
                printf '%s\t%s\n' "u$i" "{\"event_id\":\"su-u$i\",\"occurred_at\":$(date +%s%3N),\"user_id\":\"u$i\",\"referral_code\":\"$CODE\"}"
        done | kcat_produce_keyed "$REFSTREAM_TOPIC_SIGNUPS"
}

# lock_inbox / unlock_inbox: another session holds a SHARE lock on rs_inbox,
# so the consumer's next batch transaction waits at its inbox INSERT.
lock_inbox() {
        PGAPPNAME=rs-test-locker psql -X -q "$REFSTREAM_DATABASE_URL" \
                -c "BEGIN; LOCK TABLE rs_inbox IN SHARE MODE; SELECT pg_sleep(120); COMMIT;" \
                >/dev/null 2>&1 &
        LOCKER_PID=$!
        RS_PIDS+=("$LOCKER_PID")
        wait_sql "SELECT count(*) FROM pg_locks WHERE relation = 'rs_inbox'::regclass
                AND mode = 'ShareLock' AND granted" 1 10
}
unlock_inbox() {
        psql_q "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                WHERE application_name = 'rs-test-locker'" >/dev/null
        wait "$LOCKER_PID" 2>/dev/null || true
}
waiting_for_lock="SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
        AND wait_event_type = 'Lock'"

# ---- 1. SIGTERM finishes the batch in flight, commits and exits 0.
start_consumer first
FIRST_LOG=$RS_TMP/first.log
signups 1 10
wait_sql "$referrals" 10
lock_inbox
signups 11 11
wait_sql "$waiting_for_lock" 1 30 # the batch with u11 is in its transaction
kill -TERM "$CONSUMER_PID"
expect_eq "$(psql_q "$referrals") $(psql_q "$inbox")" "10 10" "referrals and inbox while the batch waits"
unlock_inbox
wait_exit "$CONSUMER_PID" 30
expect_eq "$WAIT_RC" 0 "exit status after SIGTERM"
expect_eq "$(psql_q "$inbox")" 11 "inbox after shutdown (the batch was finished)"
expect_eq "$(psql_q "$referrals")" 11 "referrals after shutdown"
grep -q '\[consumer\] stopped' "$FIRST_LOG" || fail "no 'stopped' line in the log"

# ---- 2. Configuration from a file, the environment and flags (defaults <
# file < environment < flags), used by the restarted consumer, which must
# re-read nothing: its offsets were committed at shutdown.
conf=$RS_TMP/refstream.conf
FILE_URL=$(echo "${RS_PG_SUPERUSER_URL%/*}/$DB" | sed 's|://\([^@/:]*\)@|://\1:Fi1eSecret42@|')
[[ "$FILE_URL" == *Fi1eSecret42@* ]] || fail "could not build a URL with a password"
cat >"$conf" <<EOF
# refstream settings (comments and blank lines are ignored)

REFSTREAM_DATABASE_URL=$FILE_URL
REFSTREAM_BATCH_SIZE=111
export REFSTREAM_BATCH_LINGER_MS=33
REFSTREAM_CACHE_TTL_MS="7000"
REFSTREAM_RDKAFKA_SESSION_TIMEOUT_MS=6000
REFSTREAM_RDKAFKA_HEARTBEAT_INTERVAL_MS=1000
EOF
# The file alone is enough to reach the database: migrate finds it current.
out=$(env -u REFSTREAM_DATABASE_URL "$RS_BIN" migrate --config "$conf" 2>&1) ||
        fail "migrate with --config failed: $out"
[[ "$out" == *"up to date"* ]] || fail "migrate --config did not use the file's database: $out"

saved_url=$REFSTREAM_DATABASE_URL
unset REFSTREAM_DATABASE_URL
export REFSTREAM_CACHE_TTL_MS=8000 REFSTREAM_FOO=bar
start_consumer second --config "$conf" --cache-ttl-ms 9000
SECOND_PID=$CONSUMER_PID
export REFSTREAM_DATABASE_URL=$saved_url
unset REFSTREAM_CACHE_TTL_MS REFSTREAM_FOO
SECOND_LOG=$RS_TMP/second.log
eff=$(grep 'effective configuration' "$SECOND_LOG")
for want in " batch-size=111 " " batch-linger-ms=20 " " cache-ttl-ms=9000 " \
        " rdkafka.session.timeout.ms=6000" "/$DB "; do
        # file only; env (lib.sh: 20) over file (33); flag over env and file;
        # librdkafka pass-through from the file; the file's database
        [[ "$eff" == *"$want"* ]] || fail "effective configuration lacks [$want]: $eff"
done
grep -q 'unknown environment variables: REFSTREAM_FOO' "$SECOND_LOG" ||
        fail "REFSTREAM_FOO was not warned about"
wait_http /readyz 200 30
expect_eq "$(psql_q "$referrals") $(psql_q "$inbox")" "11 11" "referrals and inbox after the restart"
# A sentinel sign-up in every partition: once all four are applied, every
# partition has been read past the point where a consumer that had not
# committed would have re-read the first 11; the restarted one saw nothing
# else. (The sentinels carry no code: they make users, no referral and no
# inbox row, docs/design.md §2.)
for p in 0 1 2 3; do
        echo "{\"event_id\":\"sentinel-$p\",\"occurred_at\":$(date +%s%3N),\"user_id\":\"sentinel$p\"}" |
                kcat -b "$BROKERS" -P -t "$REFSTREAM_TOPIC_SIGNUPS" -p "$p"
done
wait_metric 'refstream_events_total{type="signup",outcome="applied"}' 4 30
expect_eq "$(metric_sum refstream_events_total)" 4 "events seen by the restarted consumer"
expect_eq "$(psql_q "SELECT count(*) FROM rs_users WHERE signup_event_id IS NOT NULL")" 15 \
        "users who signed up, after the sentinels"
expect_eq "$(psql_q "$referrals") $(psql_q "$inbox")" "11 11" "referrals and inbox after the sentinels"
# Secrets: the password is in the file, never in the log; the URL is logged
# redacted.
grep -q 'Fi1eSecret42' "$SECOND_LOG" && fail "the database password appears in the log"
[[ "$eff" == *":***@"* ]] || fail "the database URL is not logged redacted: $eff"

# ---- 3. A second SIGTERM during shutdown exits at once.
lock_inbox
signups 13 13
wait_sql "$waiting_for_lock" 1 30
kill -TERM "$SECOND_PID"
# Two signals sent at once could arrive as one: the second goes once the
# first is no longer pending.
wait_until 10 "the first SIGTERM to be delivered" term_delivered "$SECOND_PID"
kill -TERM "$SECOND_PID"
wait_exit "$SECOND_PID" 3 # the lock is still held: only an immediate exit ends it
[ "$WAIT_RC" -ne 0 ] || fail "an interrupted shutdown exited 0"
grep -q 'second signal' "$SECOND_LOG" || fail "no 'second signal' message"
unlock_inbox
# The abandoned batch is not lost: the next consumer applies u13 once.
start_consumer third
wait_sql "$referrals" 12 60
expect_eq "$(psql_q "$inbox")" 12 "inbox rows"
expect_eq "$(psql_q "SELECT uses_count FROM rs_codes WHERE code = '$CODE'")" 12 "uses of the code"
expect_eq "$(psql_q "SELECT count(*) FROM rs_rejections")" 0 "rejections"
stop_consumer

# ---- 4. Bad settings: exit 2, and the message names the setting. (If one
# were accepted, the consumer would run and `timeout` would give 124.)
config_error() { # WHAT NAME COMMAND...
        local what=$1 name=$2 rc=0 out
        shift 2
        out=$(timeout 20 "$@" 2>&1) || rc=$?
        expect_eq "$rc" 2 "exit status for $what"
        [[ "$out" == *"$name"* ]] || fail "$what: the message does not name $name: $out"
}
config_error "REFSTREAM_BATCH_SIZE=abc" REFSTREAM_BATCH_SIZE \
        env REFSTREAM_BATCH_SIZE=abc "$RS_BIN" consume
config_error "--batch-size 0" --batch-size "$RS_BIN" consume --batch-size 0
config_error "REFSTREAM_LOG_FORMAT=xml" REFSTREAM_LOG_FORMAT \
        env REFSTREAM_LOG_FORMAT=xml "$RS_BIN" consume
config_error "REFSTREAM_REDIS_URL=localhost" REFSTREAM_REDIS_URL \
        env REFSTREAM_REDIS_URL=localhost "$RS_BIN" consume
config_error "a Redis URL with a bad port" REFSTREAM_REDIS_URL \
        env REFSTREAM_REDIS_URL=redis://127.0.0.1:99999/0 "$RS_BIN" consume
config_error "--http-addr without a port" --http-addr "$RS_BIN" consume --http-addr localhost
config_error "a registry URL that is not http(s)" REFSTREAM_SCHEMA_REGISTRY_URL \
        env REFSTREAM_SCHEMA_REGISTRY_URL=registry:8081 "$RS_BIN" consume
config_error "a registry URL with a query" --schema-registry-url \
        "$RS_BIN" consume --schema-registry-url 'http://registry:8081/?x=1'
config_error "registry basic auth without a password" REFSTREAM_SCHEMA_REGISTRY_BASIC_AUTH \
        env REFSTREAM_SCHEMA_REGISTRY_BASIC_AUTH=justauser "$RS_BIN" consume
config_error "an unknown flag" --no-such-flag "$RS_BIN" consume --no-such-flag
config_error "-X bogus.property=1" bogus.property "$RS_BIN" consume -X bogus.property=1
config_error "REFSTREAM_RDKAFKA_BOGUS_PROPERTY=1" bogus.property \
        env REFSTREAM_RDKAFKA_BOGUS_PROPERTY=1 "$RS_BIN" consume
echo "REFSTREAM_BATCH_SIZE=-5" >"$RS_TMP/bad.conf"
config_error "a bad value in the config file" REFSTREAM_BATCH_SIZE \
        "$RS_BIN" consume --config "$RS_TMP/bad.conf"
config_error "a missing config file" "$RS_TMP/missing.conf" \
        "$RS_BIN" consume --config "$RS_TMP/missing.conf"

# ---- 5. --help on every command and subcommand exits 0; unknown commands 2.
for cmd in "" consume migrate publish "publish signup" "publish payment" admin "admin program" \
        "admin program create" "admin program update" "admin codes" "admin codes issue" \
        "admin codes update" "admin codes backfill" "admin stats" "admin referrals" \
        "admin referrals release" "admin referrals cancel" "admin dlq list" "admin dlq redrive" demo \
        loadgen decode; do
        rc=0
        # shellcheck disable=SC2086
        out=$("$RS_BIN" $cmd --help 2>&1) || rc=$?
        expect_eq "$rc" 0 "exit status of 'refstream $cmd --help'"
        [[ "$out" == Usage:* ]] || fail "'refstream $cmd --help' prints no usage: ${out:0:80}"
done
for cmd in bogus "admin bogus" "admin codes bogus"; do
        rc=0
        # shellcheck disable=SC2086
        "$RS_BIN" $cmd >/dev/null 2>&1 || rc=$?
        expect_eq "$rc" 2 "exit status of 'refstream $cmd'"
done
rc=0
"$RS_BIN" >/dev/null 2>&1 || rc=$?
expect_eq "$rc" 2 "exit status of 'refstream' without a command"

# ---- 6. An unmigrated database (the migration job still running): consume
# waits, alive but not ready, saying what it waits for (with a keyword-style
# connection string whose password must not be logged), and starts once
# migrate has applied the schema; migrate applies it once, a second run
# applies nothing. A migration edited after it was applied makes migrate and
# consume refuse, naming the file.
EMPTY=${DB}_empty
psql -X -q -v ON_ERROR_STOP=1 "$RS_PG_SUPERUSER_URL" -c "DROP DATABASE IF EXISTS \"$EMPTY\" WITH (FORCE)" \
        -c "CREATE DATABASE \"$EMPTY\"" 2>/dev/null
kw="host=127.0.0.1 port=$RS_PG_PORT dbname=$EMPTY user=refstream password=KwSecret77"
start_consumer unmigrated --database-url "$kw" --group-id "$REFSTREAM_GROUP_ID-unmigrated"
wait_until 30 "/readyz to say to run refstream migrate" says /readyz 'run `refstream migrate`'
expect_eq "$(http_code /readyz)" 503 "/readyz while waiting for the schema"
expect_eq "$(http_code /healthz)" 200 "/healthz while waiting for the schema"
rc=0
out=$("$RS_BIN" admin program list --database-url "$kw" 2>&1) || rc=$?
expect_eq "$rc" 1 "exit status of admin on an unmigrated database"
[[ "$out" == *"run \`refstream migrate\` first"* ]] || fail "admin does not say to run refstream migrate: $out"
grep -q "waiting for the database schema" "$RS_TMP/unmigrated.log" ||
        fail "the log does not say what consume waits for"
out=$("$RS_BIN" migrate --database-url "$kw" 2>&1) || fail "first migrate failed: $out"
[[ "$out" == *"applied"*001_init.sql* ]] || fail "first migrate applied nothing: $out"
wait_http /readyz 200
stop_consumer
log_text=$(cat "$RS_TMP/unmigrated.log")
[[ "$log_text" == *KwSecret77* ]] && fail "the password of a keyword connection string was logged"
[[ "$log_text" == *"password=***"* ]] || fail "the keyword connection string is not logged redacted"
tables=$(psql_at "${RS_PG_SUPERUSER_URL%/*}/$EMPTY" "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'rs\_%'")
out=$("$RS_BIN" migrate --database-url "$kw" 2>&1) || fail "second migrate failed: $out"
[[ "$out" == *applied* ]] && fail "second migrate applied something: $out"
[[ "$out" == *"up to date"* ]] || fail "second migrate does not say it is up to date: $out"
expect_eq "$(psql_at "${RS_PG_SUPERUSER_URL%/*}/$EMPTY" "SELECT count(*) FROM rs_schema_migrations")" \
        "$(ls "$(dirname "$0")/../../sql/"*.sql | wc -l)" "recorded migrations"
expect_eq "$(psql_at "${RS_PG_SUPERUSER_URL%/*}/$EMPTY" "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'rs\_%'")" \
        "$tables" "tables after the second migrate"
psql_at "${RS_PG_SUPERUSER_URL%/*}/$EMPTY" "UPDATE rs_schema_migrations SET checksum = 'x' WHERE version = 1" >/dev/null
rc=0
out=$("$RS_BIN" migrate --database-url "$kw" 2>&1) || rc=$?
expect_eq "$rc" 1 "exit status of migrate after an applied migration was edited"
[[ "$out" == *"sql/001_init.sql was changed after it was applied"* ]] || fail "migrate does not name the edited migration: $out"
rc=0
out=$(timeout 60 "$RS_BIN" consume --database-url "$kw" --http-addr "" 2>&1) || rc=$?
expect_eq "$rc" 1 "exit status of consume after an applied migration was edited"
[[ "$out" == *"sql/001_init.sql was changed after it was applied"* ]] || fail "consume does not name the edited migration: $out"
psql -X -q "$RS_PG_SUPERUSER_URL" -c "DROP DATABASE IF EXISTS \"$EMPTY\" WITH (FORCE)" 2>/dev/null || true

# ---- 7. Kafka unreachable at start-up: consume waits (not a crash loop),
# says so on /readyz, and SIGTERM still ends it at once with 0.
start_consumer nokafka --kafka-brokers 127.0.0.1:1
wait_until 30 "/readyz to say Kafka is unreachable" says /readyz "Kafka (127.0.0.1:1) unreachable"
expect_eq "$(http_code /readyz)" 503 "/readyz while waiting for Kafka"
expect_eq "$(http_code /healthz)" 200 "/healthz while waiting for Kafka"
stop_consumer
pass
