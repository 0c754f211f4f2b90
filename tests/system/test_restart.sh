#!/usr/bin/env bash
# Exactly-once effects under crashes (docs/guarantees.md). A seeded `refstream loadgen`
# stream is published while a consumer runs; the consumer is killed with
# SIGKILL four times (early, mid-stream, right after a batch commit, right
# after the first batch of a restart) and restarted each time. A reference
# consumer reads the same input into a second database without interruption.
# At the end the crashed database must hold exactly what the clean one holds,
# the inbox must hold every input event whose replay needs a record and
# nothing else (docs/design.md §2), and the credited topic must carry every
# credit (duplicates allowed: at-least-once) and nothing else.
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
REF_PID=$CONSUMER_PID REF_PORT=$HTTP_PORT

# The stream: 2000 referees as JSON (so kcat + jq can list the input's event
# ids independently of refstream), ~3400 events at 250/s (~14 s).
rs loadgen --seed 42 --count 2000 --rate 250 --codes "$CODES" --format json \
        >"$RS_TMP/loadgen.log" 2>&1 &
LG_PID=$!
RS_PIDS+=("$LG_PID")

# How far the crashed consumers got: the users who signed up (a sign-up
# always leaves its row; most other events need not leave one of their own).
signed_up="SELECT count(*) FROM rs_users WHERE signup_event_id IS NOT NULL"
KILL_AT=()

# crash_now: SIGKILL the current consumer, remember how far it got.
crash_now() {
        kill -9 "$CONSUMER_PID"
        wait "$CONSUMER_PID" 2>/dev/null || true
        KILL_AT+=("$(psql_q "$signed_up")")
        log "killed consumer $1 with ${KILL_AT[-1]} sign-ups processed"
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
until_next_batch
crash_now 1
# 2. Mid-stream: a third of the way through (of the 2000 sign-ups).
start_consumer crash2
wait_sql_ge "$signed_up" 700
crash_now 2
# 3. Right after a batch, while the stream still flows.
start_consumer crash3
until_next_batch
crash_now 3

wait "$LG_PID" || fail "loadgen failed: $(cat "$RS_TMP/loadgen.log")"
mark_input_end
# The input, read back with kcat: every event, its kind, and whether it needs
# an inbox row whatever the order it was processed in (a sign-up with a code,
# a refund; for charges, see the inbox check below).
kcat -b "$BROKERS" -C -t "$REFSTREAM_TOPIC_SIGNUPS" -o beginning -e -q -f '%s\n' 2>/dev/null |
        jq -r '["signup", .event_id, ((.referral_code // "") | test("\\S"))] | @tsv' >"$RS_TMP/input.tsv"
kcat -b "$BROKERS" -C -t "$REFSTREAM_TOPIC_PAYMENTS" -o beginning -e -q -f '%s\n' 2>/dev/null |
        jq -r '["payment", .event_id, .kind == "REFUND"] | @tsv' >>"$RS_TMP/input.tsv"
cut -f2 "$RS_TMP/input.tsv" | sort >"$RS_TMP/input_ids"
TOTAL=$(wc -l <"$RS_TMP/input_ids")
SIGNUPS=$(grep -c '^signup' "$RS_TMP/input.tsv")
[ "$TOTAL" -gt 3000 ] || fail "loadgen published only $TOTAL events"
for i in 0 1 2; do
        [ "${KILL_AT[$i]}" -lt "$SIGNUPS" ] || fail "kill $((i + 1)) came after the stream was done"
done

# 4. Right after the first batch of a restarted consumer (a replay of what
# the previous one had not committed), then the final, uninterrupted one.
start_consumer crash4
until_next_batch
crash_now 4
start_consumer final
wait_sql "$END_MARKS_SQL" "$END_MARKS" 60
wait_sql "SELECT count(*) FROM rs_outbox_state WHERE published_at IS NULL" 0 30
replayed=$(metric 'refstream_events_total{type="signup",outcome="duplicate"}')
replayed=$((replayed + $(metric 'refstream_events_total{type="payment",outcome="duplicate"}')))
stop_consumer
# The reference was never interrupted: it sees every record once.
ref_seen() { HTTP_PORT=$REF_PORT metric_sum 'refstream_events_total{'; }
reference_done() {
        [ "$(ref_seen)" = "$TOTAL" ] &&
                [ "$(psql_at "$REF_URL" "SELECT count(*) FROM rs_outbox_state WHERE published_at IS NULL")" = 0 ]
}
wait_until 30 "the reference consumer to finish" reference_done
expect_eq "$(ref_seen)" "$TOTAL" "events processed by the reference consumer"
expect_eq "$(psql_at "$REF_URL" "$END_MARKS_SQL")" "$END_MARKS" "end marks in the reference's database"
stop_consumer "$REF_PID"
expect_eq "$(sort -u "$RS_TMP/input_ids" | wc -l)" "$TOTAL" "distinct input event ids"

# The inbox (of both databases) holds a row for every input event whose
# replay needs one, and nothing else: no dead letter, no key of an event
# that is not in the input. Needed whatever the order of processing: by the
# sign-ups with a code, the refunds, and the charges a referral judged
# (qualifying or rejected: each was processed while the referral was
# pending, or before the sign-up, or was judged by it). Whether another
# charge needs a row depends on what was processed before it (a charge of a
# user who had not signed up yet does; of one who had, without a pending
# referral, does not).
inbox_check() { # URL: prints "NEEDED ROWS MISSING FOREIGN EXAMPLES-OF-MISSING"
        psql -X -q -At -F ' ' -v ON_ERROR_STOP=1 "$1" <<SQL
CREATE TEMP TABLE input (kind text, event_id text, needs boolean);
\copy input FROM '$RS_TMP/input.tsv'
CREATE TEMP TABLE input_keys AS SELECT rs_inbox_key(kind, event_id) AS key FROM input;
CREATE TEMP TABLE must AS
        SELECT event_id, rs_inbox_key(kind, event_id) AS key FROM input WHERE needs
        UNION SELECT payment_event_id, rs_inbox_key('payment', payment_event_id) FROM rs_referrals
                WHERE payment_event_id IS NOT NULL
        UNION SELECT event_id, rs_inbox_key('payment', event_id) FROM rs_rejections
                WHERE event_type = 'payment';
SELECT (SELECT count(*) FROM must), (SELECT count(*) FROM rs_inbox),
       (SELECT count(*) FROM must m WHERE NOT EXISTS (SELECT FROM rs_inbox i WHERE i.key = m.key)),
       (SELECT count(*) FROM rs_inbox i WHERE NOT EXISTS (SELECT FROM input_keys k WHERE k.key = i.key)),
       (SELECT coalesce(string_agg(event_id, ',' ORDER BY event_id), '-') FROM (SELECT event_id FROM must m
                WHERE NOT EXISTS (SELECT FROM rs_inbox i WHERE i.key = m.key) LIMIT 5) x);
SQL
}
for url in "$REFSTREAM_DATABASE_URL" "$REF_URL"; do
        read -r needed rows missing foreign examples <<<"$(inbox_check "$url")"
        log "${url##*/}: $rows inbox rows, $needed of them needed whatever the order"
        [ "$needed" -gt 1000 ] || fail "${url##*/}: only $needed events need an inbox row"
        expect_eq "$missing $foreign" "0 0" \
                "inbox rows missing and inbox rows of no input event (${url##*/}; missing: $examples)"
done
expect_eq "$(psql_q "SELECT count(*) FROM rs_outbox WHERE destination = 'dlq'")" 0 "dead letters"

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
same "first charges" "SELECT user_id, payment_id, event_id, amount_minor FROM rs_first_charges ORDER BY 1"
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
log "$TOTAL events, kills at ${KILL_AT[*]} of $SIGNUPS sign-ups; $(wc -l <"$RS_TMP/topic_ids") credits," \
        "$dups duplicate records on the credited topic; the final consumer skipped" \
        "$replayed replayed events"
psql -X -q "$RS_PG_SUPERUSER_URL" -c "DROP DATABASE IF EXISTS \"${DB}_ref\" WITH (FORCE)" \
        2>/dev/null || true
pass
