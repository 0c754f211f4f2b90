#!/usr/bin/env bash
# What an operator watches (docs/guarantees.md, §5): /healthz, /readyz, /metrics in
# Prometheus text format with counters that match the traffic; Redis down
# (lookups go to Postgres, counted as cache errors, processing goes on);
# JSON logs (every line an object with ts/level/msg); librdkafka properties
# passed through from the environment and from -X; retention of the inbox
# and of held refunds.
. "$(dirname "$0")/lib.sh"
setup
rs admin program create --key ops --name "Ops" --currency USD --reward-fixed 100 >/dev/null
C=$(rs admin codes issue --program ops --user owner)
NOPE="NOPE-$RUN_ID" # no such code (unique: Redis is shared between tests)

# records USER|JSON lines -> signups topic (keyed by user).
su_line() { # USER [CODE] [EVENT_ID]
        local code=""
        [ -n "${2:-}" ] && code=",\"referral_code\":\"$2\""
        printf '%s\t%s\n' "$1" "{\"event_id\":\"${3:-su-$1}\",\"occurred_at\":$(date +%s%3N),\"user_id\":\"$1\"$code}"
}
pay_line() { # USER
        printf '%s\t%s\n' "$1" "{\"event_id\":\"pay-$1\",\"occurred_at\":$(($(date +%s%3N) + 1000)),\"user_id\":\"$1\",\"payment_id\":\"p-$1\",\"amount_minor\":1500,\"currency\":\"USD\",\"kind\":\"CHARGE\"}"
}
ev() { metric "refstream_events_total{type=\"$1\",outcome=\"$2\"}"; } # TYPE OUTCOME

# ---- Health and readiness; librdkafka settings from the environment.
# A long negative TTL: the unknown code stays negatively cached for wave 2.
export REFSTREAM_RDKAFKA_CLIENT_ID=ops-env-client
start_consumer metrics --cache-negative-ttl-ms 600000
expect_eq "$(http_code /healthz)" 200 "/healthz"
wait_http /readyz 200 30
[[ "$(grep 'effective configuration' "$RS_TMP/metrics.log")" == *" rdkafka.client.id=ops-env-client"* ]] ||
        fail "REFSTREAM_RDKAFKA_CLIENT_ID is not in the effective configuration"
expect_eq "$(http_code /no-such-page)" 404 "an unknown path"

# ---- Wave 1: 6 sign-ups (3 with the code, 1 with an unknown code, 1 with
# what cannot be a code, 1 without), 2 charges, 1 malformed record; then wave
# 2: the code and the unknown code again (now cached), and a redelivered
# sign-up. The redelivered one is u11's: it carries a code, so the inbox
# recorded it and knows it again (a sign-up without a code is not recorded,
# docs/design.md §2: delivered again it would count as applied), and its code
# is not the shape of a code, so it is not looked up (the cache counts below
# stay exact).
{
        su_line u1 "$C"
        su_line u2 "$C"
        su_line u3 "$C"
        su_line u4 "$NOPE"
        su_line u11 "not a code!"
        su_line u5
        printf '%s\t%s\n' "u6" "this is not an event"
} | kcat_produce_keyed "$REFSTREAM_TOPIC_SIGNUPS"
{
        pay_line u1
        pay_line u2
} | kcat_produce_keyed "$REFSTREAM_TOPIC_PAYMENTS"
wait_metric 'refstream_events_total{' 9
wait_sql "SELECT count(*) FROM rs_outbox_state WHERE published_at IS NULL" 0 30
expect_eq "$(ev signup applied) $(ev signup dlq) $(ev payment applied)" "6 1 2" \
        "signup applied, signup dlq, payment applied"
expect_eq "$(metric 'refstream_rejections_total{reason="UNKNOWN_CODE"}')" 2 "UNKNOWN_CODE rejections"
expect_eq "$(metric 'refstream_credits_issued_total{role="referrer"}')" 2 "referrer credits"
expect_eq "$(metric refstream_referrals_created_total)" 3 "referrals created"
expect_eq "$(metric 'refstream_outbox_delivered_total{destination="credited"}') $(metric 'refstream_outbox_delivered_total{destination="dlq"}')" \
        "2 1" "outbox deliveries (credited, dlq)"
misses=$(metric 'refstream_cache_lookups_total{result="miss"}')
hits=$(metric 'refstream_cache_lookups_total{result="hit"}')
neg=$(metric 'refstream_cache_lookups_total{result="negative_hit"}')
[ "$misses" -ge 2 ] || fail "cache misses after the first lookups of two codes: $misses"
{
        su_line u7 "$C"
        su_line u8 "$NOPE"
        su_line u11 "not a code!" su-u11 # u11's sign-up delivered again
} | kcat_produce_keyed "$REFSTREAM_TOPIC_SIGNUPS"
wait_metric 'refstream_events_total{type="signup",outcome="applied"}' 8
wait_metric 'refstream_events_total{type="signup",outcome="duplicate"}' 1 10
expect_eq "$(ev signup applied) $(ev signup duplicate)" "8 1" "signup applied, duplicate"
expect_eq "$(metric 'refstream_cache_lookups_total{result="hit"}')" $((hits + 1)) "cache hits (the code)"
expect_eq "$(metric 'refstream_cache_lookups_total{result="negative_hit"}')" $((neg + 1)) \
        "negative cache hits (the unknown code)"
expect_eq "$(metric 'refstream_cache_lookups_total{result="miss"}')" "$misses" "cache misses after wave 2"
expect_eq "$(metric refstream_cache_errors_total)" 0 "cache errors with Redis up"
# The counters agree with Postgres (each sign-up here is a user's only one).
expect_eq "$(ev signup applied)" "$(psql_q "SELECT count(*) FROM rs_users WHERE signup_event_id IS NOT NULL")" \
        "applied sign-ups vs the users who signed up"
expect_eq "$(metric 'refstream_rejections_total{reason="UNKNOWN_CODE"}')" \
        "$(psql_q "SELECT count(*) FROM rs_rejections WHERE reason = 'UNKNOWN_CODE'")" \
        "UNKNOWN_CODE rejections vs Postgres"

# ---- The exposition format: Content-Type, HELP and TYPE for every family,
# every sample line "name{labels} value", histograms consistent.
ctype=$(curl -sS -o /dev/null -w '%{content_type}' "http://127.0.0.1:$HTTP_PORT/metrics")
[[ "$ctype" == "text/plain; version=0.0.4"* ]] || fail "/metrics Content-Type: $ctype"
http_get /metrics >"$RS_TMP/metrics.txt"
bad=$(grep -v '^#' "$RS_TMP/metrics.txt" |
        grep -Evc '^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"]*",?)*\})? -?[0-9.eE+-]+$|^[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? [+-]Inf$|^$' || true)
expect_eq "$bad" 0 "malformed sample lines"
# Each sample belongs to a family announced by HELP and TYPE lines before it
# (histogram samples by their _bucket/_sum/_count suffixes).
awk '/^# HELP / { help[$3] = 1; next }
        /^# TYPE / { type[$3] = $4; next }
        /^#/ || /^$/ { next }
        { n = $1; sub(/\{.*/, "", n); b = n
          if (!(n in type)) { sub(/_(bucket|sum|count)$/, "", b)
                  if (type[b] != "histogram") { print "untyped " n; bad = 1; next } }
          if (!(b in help)) { print "no HELP for " b; bad = 1 } }
        END { exit bad }' "$RS_TMP/metrics.txt" >"$RS_TMP/format.err" ||
        fail "exposition format: $(head -3 "$RS_TMP/format.err")"
grep -q '^# TYPE refstream_events_total counter$' "$RS_TMP/metrics.txt" || fail "events_total is not a counter"
grep -q '^# TYPE refstream_batch_duration_seconds histogram$' "$RS_TMP/metrics.txt" ||
        fail "batch_duration_seconds is not a histogram"
h=refstream_batch_duration_seconds
count=$(awk -v s="${h}_count" '$1 == s {print $2}' "$RS_TMP/metrics.txt")
inf=$(awk -v s="${h}_bucket{le=\"+Inf\"}" '$1 == s {print $2}' "$RS_TMP/metrics.txt")
batches=$(awk '$1 == "refstream_batches_total" {print $2}' "$RS_TMP/metrics.txt")
[ -n "$count" ] && [ "$count" -gt 0 ] || fail "no batches observed in $h"
expect_eq "$inf" "$count" "$h: +Inf bucket vs count"
expect_eq "$count" "$batches" "$h: count vs refstream_batches_total"
grep -q "^${h}_sum [0-9]" "$RS_TMP/metrics.txt" || fail "no ${h}_sum"
grep "^${h}_bucket" "$RS_TMP/metrics.txt" | awk '{ if ($2 < prev) bad = 1; prev = $2 } END { exit bad }' ||
        fail "$h buckets are not cumulative"
expect_eq "$(grep -c "^${h}_bucket" "$RS_TMP/metrics.txt")" \
        "$(grep "^${h}_bucket" "$RS_TMP/metrics.txt" | sed 's/.*le="\([^"]*\)".*/\1/' | sort -u | wc -l)" \
        "distinct buckets of $h"
stop_consumer

# ---- Redis unavailable, JSON logs, debug level, -X over the environment.
# Sign-ups with the code are still resolved (through Postgres) and counted
# as cache errors.
export REFSTREAM_LOG_FORMAT=json
start_consumer degraded --redis-url redis://127.0.0.1:1/0 --redis-timeout-ms 100 \
        --log-level debug -X client.id=ops-flag-client -X debug=cgrp
unset REFSTREAM_LOG_FORMAT REFSTREAM_RDKAFKA_CLIENT_ID
wait_http /readyz 200 30
{
        su_line u9 "$C"
        su_line u10 "$C"
} | kcat_produce_keyed "$REFSTREAM_TOPIC_SIGNUPS"
wait_metric 'refstream_events_total{type="signup",outcome="applied"}' 2
expect_eq "$(psql_q "SELECT count(*) FROM rs_referrals WHERE referee_user_id IN ('u9', 'u10')")" 2 \
        "referrals made with Redis down"
[ "$(metric refstream_cache_errors_total)" -gt 0 ] || fail "no cache errors counted with Redis down"
expect_eq "$(http_code /healthz)" 200 "/healthz with Redis down"
expect_eq "$(http_code /readyz)" 200 "/readyz with Redis down"
stop_consumer
log_file=$RS_TMP/degraded.log
lines=$(wc -l <"$log_file")
[ "$lines" -gt 5 ] || fail "too few log lines: $lines"
objects=$(jq -c 'select((.ts | type) == "string" and (.level | type) == "string" and (.msg | type) == "string")' \
        "$log_file" | wc -l) || fail "a log line is not JSON: $(grep -v '^{' "$log_file" | head -2)"
expect_eq "$objects" "$lines" "log lines that are JSON objects with ts, level and msg"
expect_eq "$(jq -r .level "$log_file" | sort -u | grep -cv '^\(debug\|info\|warn\|error\)$')" 0 "unknown levels"
# (counted with grep -c: grep -q would close the pipe early under pipefail)
jq -r .msg "$log_file" >"$RS_TMP/messages"
[ "$(grep -c 'ops-flag-client#consumer' "$RS_TMP/messages")" -gt 0 ] || fail "-X client.id was not used"
expect_eq "$(grep -c 'ops-env-client#' "$RS_TMP/messages" || true)" 0 \
        "log lines of a client named by the environment's client.id (-X must win)"
[ "$(jq -r 'select(.level == "warn" or .level == "error") | .msg' "$log_file" | grep -ci redis)" -gt 0 ] ||
        fail "Redis being down was not logged"

# ---- Retention: inbox rows and held refunds older than
# REFSTREAM_INBOX_RETENTION_HOURS are deleted when a consumer starts (and
# every minute); younger ones, and everything with retention 0, are kept.
old="rs_inbox_key('signup', 'old-su'), rs_inbox_key('payment', 'old-pay')"
psql_q "INSERT INTO rs_inbox (key, processed_at) VALUES
        (rs_inbox_key('signup', 'old-su'), now() - interval '1000 hours'),
        (rs_inbox_key('payment', 'old-pay'), now() - interval '50 hours'),
        (rs_inbox_key('dlq', 'young-dlq'), now() - interval '2 hours');
        INSERT INTO rs_held_refunds (user_id, refund_of, event_id, occurred_at, created_at) VALUES
        ('ghost', 'p-old', 'ev-old', now(), now() - interval '1000 hours'),
        ('ghost', 'p-young', 'ev-young', now(), now() - interval '2 hours')" >/dev/null
kept_inbox=$(psql_q "SELECT count(*) FROM rs_inbox")
start_consumer keep-all --inbox-retention-hours 0
wait_http /readyz 200 30
stop_consumer
expect_eq "$(psql_q "SELECT count(*) FROM rs_inbox") $(psql_q "SELECT count(*) FROM rs_held_refunds")" \
        "$kept_inbox 2" "inbox rows and held refunds with retention 0"
# Outbox rows published past REFSTREAM_OUTBOX_RETENTION_HOURS go too: the
# first batch's, and a row published on its own (as the sweep republishes one).
psql_q "UPDATE rs_outbox_batches SET published_at = now() - interval '200 hours'
        WHERE id = (SELECT min(id) FROM rs_outbox_batches)" >/dev/null
psql_q "INSERT INTO rs_outbox (destination, event_type, source_topic, source_partition,
        source_offset, published_at) VALUES ('credited', 'ReferralCredited', 'signups', 0, 0,
        now() - interval '200 hours')" >/dev/null
outbox_rows=$(psql_q "SELECT count(*) FROM rs_outbox")
old_rows=$(psql_q "SELECT count(*) FROM rs_outbox_state WHERE published_at < now() - interval '100 hours'")
[ "$old_rows" -ge 2 ] || fail "expected a batch and a row published 200 hours ago, found $old_rows rows"
start_consumer retention --inbox-retention-hours 24 --outbox-retention-hours 100
wait_sql "SELECT count(*) FROM rs_inbox WHERE key IN ($old)" 0 30
wait_sql "SELECT string_agg(refund_of, ',') FROM rs_held_refunds" p-young 30
wait_sql "SELECT count(*) FROM rs_outbox" $((outbox_rows - old_rows)) 30
expect_eq "$(psql_q "SELECT count(*) FROM rs_outbox o WHERE batch_id IS NOT NULL AND NOT EXISTS
        (SELECT 1 FROM rs_outbox_batches b WHERE b.id = o.batch_id)")" 0 "outbox rows left of a deleted batch"
expect_eq "$(psql_q "SELECT count(*) FROM rs_inbox")" $((kept_inbox - 2)) "inbox rows kept (the young ones)"
expect_eq "$(psql_q "SELECT count(*) FROM rs_inbox WHERE key = rs_inbox_key('dlq', 'young-dlq')")" 1 \
        "the young inbox row inserted with the old ones"
stop_consumer
grep -q 'retention: deleted 2 inbox rows and 1 held refunds older than 24 hours' "$RS_TMP/retention.log" ||
        fail "the retention pass was not logged: $(grep retention "$RS_TMP/retention.log")"
pass
