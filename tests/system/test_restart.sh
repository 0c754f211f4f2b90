#!/usr/bin/env bash
# Exactly-once effects under crashes (docs/guarantees.md). A seeded `refstream loadgen`
# stream is published while a consumer runs; the consumer is killed with
# SIGKILL four times (early, mid-stream, right after a batch commit, right
# after the first batch of a restart) and restarted each time. A reference
# consumer reads the same input into a second database without interruption.
# At the end the crashed database must hold exactly what the clean one holds,
# every input event must be in the inbox once, and the credited topic must
# carry every credit (duplicates allowed: at-least-once) and nothing else.
. "$(dirname "$0")/lib.sh"

# Small batches and a short outbox lease: many commits to crash between, and
# rows a dead instance had claimed are republished within seconds.
export REFSTREAM_BATCH_SIZE=50
export REFSTREAM_OUTBOX_LEASE_MS=3000
# Static group membership (as a StatefulSet would have): a restarted instance
# takes over its dead predecessor's partitions at once instead of waiting for
# the broker to time its session out (45 s by default).
export REFSTREAM_RDKAFKA_GROUP_INSTANCE_ID=restart-crashy
setup

# The reference: its own database, group and output topics; no Redis, so it
# shares nothing with the crashed consumer but the input topics.
REF_URL="${RS_PG_SUPERUSER_URL%/*}/${DB}_ref"
REF_CREDITED=$REFSTREAM_TOPIC_CREDITED-ref
REF_REVERSED=$REFSTREAM_TOPIC_REVERSED-ref
REF_DLQ=$REFSTREAM_TOPIC_DLQ-ref
psql -X -q -v ON_ERROR_STOP=1 "$RS_PG_SUPERUSER_URL" \
        -c "DROP DATABASE IF EXISTS \"${DB}_ref\" WITH (FORCE)" -c "CREATE DATABASE \"${DB}_ref\"" \
        2>/dev/null
rs migrate --database-url "$REF_URL" >/dev/null
for t in "$REF_CREDITED" "$REF_REVERSED" "$REF_DLQ"; do
        kcat -b "$BROKERS" -L -t "$t" -X allow.auto.create.topics=true >/dev/null 2>&1 || true
done

# The same program and the same codes in both databases (credit ids derive
# from program key, referee and role, so they are comparable across them).
# Single-sided with a minimum payment: some charges are BELOW_MINIMUM.
for url in "$REFSTREAM_DATABASE_URL" "$REF_URL"; do
        rs admin program create --database-url "$url" --key crashy --name "Crash test" \
                --currency USD --reward-fixed 500 --min-payment 1000 --goal 20 >/dev/null
done
CODES=
for i in 1 2 3 4 5 6 7 8; do
        c=$(rs admin codes issue --program crashy --user "referrer$i")
        rs admin codes issue --database-url "$REF_URL" --program crashy --user "referrer$i" \
                --code "$c" >/dev/null
        CODES="$CODES${CODES:+,}$c"
done

start_consumer reference --database-url "$REF_URL" --group-id "$REFSTREAM_GROUP_ID-ref" \
        --topic-credited "$REF_CREDITED" --topic-reversed "$REF_REVERSED" --topic-dlq "$REF_DLQ" \
        --redis-url '' -X group.instance.id=restart-ref
REF_PID=$CONSUMER_PID

# The stream: 2000 referees as JSON (so kcat + jq can list the input's event
# ids independently of refstream), ~3400 events at 250/s (~14 s).
rs loadgen --seed 42 --count 2000 --rate 250 --codes "$CODES" --format json \
        >"$RS_TMP/loadgen.log" 2>&1 &
LG_PID=$!
RS_PIDS+=("$LG_PID")

inbox="SELECT count(*) FROM rs_inbox"
KILL_AT=()

# crash_now: SIGKILL the current consumer, remember how far the inbox was.
crash_now() {
        kill -9 "$CONSUMER_PID"
        wait "$CONSUMER_PID" 2>/dev/null || true
        KILL_AT+=("$(psql_q "$inbox")")
        log "killed consumer $1 with inbox at ${KILL_AT[-1]}"
}

# until_next_batch: returns as soon as the consumer's batch counter moves,
# i.e. right after a batch committed and its output was handed to Kafka
# (before the delivery reports are marked in the outbox, before the
# auto-commit of its offsets).
until_next_batch() {
        local before
        before=$(metric refstream_batches_total)
        WAIT_STEP=0.01 wait_until 30 "a batch to be committed" batches_other_than "$before"
}
batches_other_than() { [ "$(metric refstream_batches_total)" != "$1" ]; }

# 1. Early: as soon as the first batch is in Postgres.
start_consumer crash1
wait_sql_ge "$inbox" 1
crash_now 1
# 2. Mid-stream: a third of the way through.
start_consumer crash2
wait_sql_ge "$inbox" 1200
crash_now 2
# 3. Right after a batch, while the stream still flows.
start_consumer crash3
until_next_batch
crash_now 3

wait "$LG_PID" || fail "loadgen failed: $(cat "$RS_TMP/loadgen.log")"
# The input, read back with kcat: every event id and how many records.
for t in "$REFSTREAM_TOPIC_SIGNUPS" "$REFSTREAM_TOPIC_PAYMENTS"; do
        kcat -b "$BROKERS" -C -t "$t" -o beginning -e -q -f '%s\n' 2>/dev/null
done | jq -r .event_id | sort >"$RS_TMP/input_ids"
TOTAL=$(wc -l <"$RS_TMP/input_ids")
[ "$TOTAL" -gt 3000 ] || fail "loadgen published only $TOTAL events"
for i in 0 1 2; do
        [ "${KILL_AT[$i]}" -lt "$TOTAL" ] || fail "kill $((i + 1)) came after the stream was done"
done

# 4. Right after the first batch of a restarted consumer (a replay of what
# the previous one had not committed), then the final, uninterrupted one.
start_consumer crash4
until_next_batch
crash_now 4
start_consumer final
wait_sql "$inbox" "$TOTAL" 60
wait_sql "SELECT count(*) FROM rs_outbox WHERE published_at IS NULL" 0 30
replayed=$(metric 'refstream_events_total{type="signup",outcome="duplicate"}')
replayed=$((replayed + $(metric 'refstream_events_total{type="payment",outcome="duplicate"}')))
stop_consumer
reference_done() {
        [ "$(psql_at "$REF_URL" "$inbox")" = "$TOTAL" ] &&
                [ "$(psql_at "$REF_URL" "SELECT count(*) FROM rs_outbox WHERE published_at IS NULL")" = 0 ]
}
wait_until 30 "the reference consumer to finish" reference_done
expect_eq "$(psql_at "$REF_URL" "$inbox")" "$TOTAL" "events processed by the reference consumer"
stop_consumer "$REF_PID"

# The inbox holds each input event exactly once (its key is the event id; the
# sets must be equal), and nothing was dead-lettered.
psql_q "SELECT event_id FROM rs_inbox WHERE kind IN ('signup', 'payment') ORDER BY 1" |
        sort >"$RS_TMP/inbox_ids"
cmp -s "$RS_TMP/input_ids" "$RS_TMP/inbox_ids" ||
        fail "inbox differs from the input: $(diff "$RS_TMP/input_ids" "$RS_TMP/inbox_ids" | head -5)"
expect_eq "$(sort -u "$RS_TMP/input_ids" | wc -l)" "$TOTAL" "distinct input event ids"
expect_eq "$(psql_q "SELECT count(*) FROM rs_inbox WHERE kind = 'dlq'")" 0 "dead letters"

# Every effect equals the clean run's: the same referrals, credits,
# rejections (no replay recorded one twice), code uses and referrer counts.
# (referrer_rewarded_count/goal_reached of a credit depend on the order in
# which partitions were processed, so they are compared as counts below.)
same() { # WHAT SQL
        psql_q "$2" >"$RS_TMP/crash.out"
        psql_at "$REF_URL" "$2" >"$RS_TMP/ref.out"
        cmp -s "$RS_TMP/crash.out" "$RS_TMP/ref.out" ||
                fail "$1 differ from the clean run: $(diff "$RS_TMP/ref.out" "$RS_TMP/crash.out" | head -6)"
}
same referrals "SELECT id, code, referrer_user_id, referee_user_id, status, signup_event_id,
        payment_id, payment_event_id, reversal_event_id FROM rs_referrals ORDER BY id"
same credits "SELECT id, referral_id, beneficiary_user_id, role, amount_minor, currency, status,
        source_event_id, reversal_event_id FROM rs_credits ORDER BY id"
same rejections "SELECT event_id, event_type, reason, user_id, code FROM rs_rejections
        ORDER BY event_id, reason"
same codes "SELECT code, owner_user_id, uses_count, status FROM rs_codes ORDER BY code"
same "referrer counts" "SELECT referrer_user_id, rewarded_count FROM rs_referrer_stats ORDER BY 1"
same "goals reached" "SELECT beneficiary_user_id, count(*) FILTER (WHERE goal_reached)
        FROM rs_credits WHERE role = 'referrer' GROUP BY 1 ORDER BY 1"
same "outbox rows" "SELECT destination, count(*) FROM rs_outbox GROUP BY 1 ORDER BY 1"
same "users" "SELECT user_id, email_hash FROM rs_users ORDER BY 1"
# Each referrer's credits count 1..n once each: no slot was taken twice.
expect_eq "$(psql_q "SELECT count(*) FROM (SELECT beneficiary_user_id FROM rs_credits
        WHERE role = 'referrer' GROUP BY 1 HAVING count(*) <> count(DISTINCT referrer_rewarded_count)
        OR max(referrer_rewarded_count) <> count(*)) x")" 0 "referrers with a gap or a repeat in their counts"

# The scenario is not trivial: all kinds of effects happened.
read -r refs credited reversed <<<"$(psql_q "SELECT count(*), count(*) FILTER (WHERE status =
        'credited'), count(*) FILTER (WHERE status = 'reversed') FROM rs_referrals" | tr '|' ' ')"
[ "$refs" -gt 1000 ] && [ "$credited" -gt 700 ] && [ "$reversed" -gt 0 ] ||
        fail "too little happened: $refs referrals, $credited credited, $reversed reversed"
for reason in UNKNOWN_CODE BELOW_MINIMUM; do
        [ "$(psql_q "SELECT count(*) FROM rs_rejections WHERE reason = '$reason'")" -gt 0 ] ||
                fail "no $reason rejection"
done

# Kafka: every credit in Postgres is on the credited topic, and every record
# there is a credit in Postgres. Duplicates are allowed after SIGKILL.
decode_all "$REFSTREAM_TOPIC_CREDITED" >"$RS_TMP/credited.json"
jq -r .credit_id "$RS_TMP/credited.json" | sort >"$RS_TMP/topic_all"
sort -u "$RS_TMP/topic_all" >"$RS_TMP/topic_ids"
psql_q "SELECT id FROM rs_credits ORDER BY 1" | sort >"$RS_TMP/pg_ids"
cmp -s "$RS_TMP/pg_ids" "$RS_TMP/topic_ids" ||
        fail "credited topic and rs_credits differ: $(diff "$RS_TMP/pg_ids" "$RS_TMP/topic_ids" | head -5)"
# Duplicates are byte-for-byte the same event (the outbox row, republished).
expect_eq "$(jq -c . "$RS_TMP/credited.json" | sort -u | wc -l)" "$(wc -l <"$RS_TMP/topic_ids")" \
        "distinct credited records (a duplicate with different content?)"
decode_all "$REFSTREAM_TOPIC_REVERSED" | jq -r .credit_id | sort -u >"$RS_TMP/rev_topic"
psql_q "SELECT id FROM rs_credits WHERE status = 'reversed' ORDER BY 1" | sort >"$RS_TMP/rev_pg"
cmp -s "$RS_TMP/rev_pg" "$RS_TMP/rev_topic" || fail "reversed topic and reversed credits differ"
expect_eq "$(topic_count "$REFSTREAM_TOPIC_DLQ")" 0 "records on the DLQ"

dups=$(($(wc -l <"$RS_TMP/topic_all") - $(wc -l <"$RS_TMP/topic_ids")))
log "$TOTAL events, kills at inbox ${KILL_AT[*]}; $(wc -l <"$RS_TMP/topic_ids") credits," \
        "$dups duplicate records on the credited topic; the final consumer skipped" \
        "$replayed replayed events"
psql -X -q "$RS_PG_SUPERUSER_URL" -c "DROP DATABASE IF EXISTS \"${DB}_ref\" WITH (FORCE)" \
        2>/dev/null || true
pass
