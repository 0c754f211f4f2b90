#!/usr/bin/env bash
# docs/guarantees.md, idempotency by event_id: the same events delivered several times
# (other offsets, same event ids; in the same batch, in later batches, as JSON
# and as Avro) have one effect: one referral each, one pair of credits each,
# every credit_id once on the credited topic, one inbox row per distinct event
# whose replay needs one (docs/design.md §2: here every sign-up carries a code
# and every charge is a referee's first), none for the events whose effect is
# idempotent by itself (a sign-up without a code, a charge of a user who signed
# up and has no pending referral), which, delivered twice, have one effect too.
# Sign-up and payment event ids are separate namespaces: a payment whose
# event_id equals a sign-up's is still applied.
. "$(dirname "$0")/lib.sh"
setup

rs admin program create --key main --name Main --currency USD --reward-fixed 500 \
        --referee-reward 250 >/dev/null
A=$(rs admin codes issue --program main --user alice)
NOW=$(date +%s%3N)

# Dan's sign-up and payment share the event id "shared-dan".
signups() {
        for u in bob carol; do
                printf '%s\t{"event_id":"su-%s","occurred_at":%s,"user_id":"%s","referral_code":"%s"}\n' \
                        "$u" "$u" "$NOW" "$u" "$A"
        done
        printf 'dan\t{"event_id":"shared-dan","occurred_at":%s,"user_id":"dan","referral_code":"%s"}\n' \
                "$NOW" "$A"
}
payments() {
        for u in bob carol; do
                printf '%s\t{"event_id":"pay-%s","occurred_at":%s,"user_id":"%s","payment_id":"p-%s","amount_minor":1000,"currency":"USD","kind":"CHARGE"}\n' \
                        "$u" "$u" $((NOW + 1000)) "$u" "$u"
        done
        printf 'dan\t{"event_id":"shared-dan","occurred_at":%s,"user_id":"dan","payment_id":"p-dan","amount_minor":1000,"currency":"USD","kind":"CHARGE"}\n' \
                $((NOW + 1000))
}
seen() { wait_metric 'refstream_events_total{' "$1" 30; }

start_consumer

# Each sign-up twice, back to back (most likely in one batch).
{ signups; signups; } | kcat_produce_keyed "$REFSTREAM_TOPIC_SIGNUPS"
seen 6
# Each payment twice, once the referrals exist.
{ payments; payments; } | kcat_produce_keyed "$REFSTREAM_TOPIC_PAYMENTS"
seen 12
wait_sql "SELECT count(*) FROM rs_outbox_state WHERE published_at IS NULL" 0 30
# Everything again, after it was committed (later batches): as JSON, and
# as Avro from `refstream publish` (the same events in the other format).
signups | kcat_produce_keyed "$REFSTREAM_TOPIC_SIGNUPS"
payments | kcat_produce_keyed "$REFSTREAM_TOPIC_PAYMENTS"
signups | cut -f2 | rs publish signup >/dev/null 2>&1 || fail "refstream publish signup"
payments | cut -f2 | rs publish payment >/dev/null 2>&1 || fail "refstream publish payment"
seen 24
# (The metric counts a batch after its COMMIT, so any outbox row a duplicate
# wrongly produced exists by now; wait until it is on the topic.)
wait_sql "SELECT count(*) FROM rs_outbox_state WHERE published_at IS NULL" 0 30

# 24 records, 6 distinct events. The sign-ups carry a code, so the inbox
# recognises each of their replays: 3 applied, 9 duplicates. A charge is
# recorded when it is processed while its referral is pending; a replay that
# comes once the referral is credited is not looked up in the inbox (the
# first charge it would be is there already, so it changes nothing) and is
# counted as applied: the payments' split between the two outcomes depends on
# the batches, their sum does not, and the effects below show that each
# payment had one.
expect_eq "$(metric_sum 'refstream_events_total{type="signup",outcome="applied"}')" 3 "sign-ups applied"
expect_eq "$(metric_sum 'refstream_events_total{type="signup",outcome="duplicate"}')" 9 "sign-up duplicates"
expect_eq "$(($(metric_sum 'refstream_events_total{type="payment",outcome="applied"}') +
        $(metric_sum 'refstream_events_total{type="payment",outcome="duplicate"}')))" 12 \
        "payments applied or duplicate"
expect_eq "$(metric_sum 'refstream_events_total{type="payment",outcome="dlq"}')" 0 "payments dead-lettered"
# The replays of recorded events met their inbox rows in the optimistic
# insert: those batches ran again the careful way (docs/design.md §2).
[ "$(metric_sum 'refstream_batch_retries_total{reason="replay"}')" -ge 1 ] ||
        fail "no batch ran again for the replayed sign-ups"
# The inbox: exactly the 6 distinct events, each under its kind (the sign-up
# and the payment "shared-dan" are two rows).
expect_eq "$(psql_q "SELECT string_agg(e.kind || ':' || e.id, ' ' ORDER BY e.kind, e.id)
                FROM (VALUES ('signup', 'su-bob'), ('signup', 'su-carol'), ('signup', 'shared-dan'),
                        ('payment', 'pay-bob'), ('payment', 'pay-carol'), ('payment', 'shared-dan')) e (kind, id)
                JOIN rs_inbox i ON i.key = rs_inbox_key(e.kind, e.id)")" \
        "payment:pay-bob payment:pay-carol payment:shared-dan signup:shared-dan signup:su-bob signup:su-carol" \
        "inbox rows of the events"
expect_eq "$(psql_q "SELECT count(*) FROM rs_inbox")" 6 "inbox rows"

# One effect each: a referral per referee (dan's included: his sign-up was
# not mistaken for his payment), the code used 3 times, two credits per
# referral (dan's from the payment with the shared id), no rejections.
expect_eq "$(psql_q "SELECT string_agg(referee_user_id || ':' || status, ' ' ORDER BY referee_user_id)
                FROM rs_referrals")" "bob:credited carol:credited dan:credited" "referrals"
expect_eq "$(psql_q "SELECT uses_count FROM rs_codes")" 3 "uses_count"
expect_eq "$(psql_q "SELECT count(*) FROM rs_credits")" 6 "credit rows"
expect_eq "$(psql_q "SELECT count(*) FROM rs_rejections")" 0 "rejections"
expect_eq "$(psql_q "SELECT rewarded_count FROM rs_referrer_stats")" 3 "alice's rewarded count"

# The credited topic: 6 records, each credit_id exactly once, matching the
# credits in the database.
credited=$(decode_records "$REFSTREAM_TOPIC_CREDITED")
expect_eq "$(wc -l <<<"$credited")" 6 "records on the credited topic"
expect_eq "$(jq -r .value.credit_id <<<"$credited" | sort | uniq -d | wc -l)" 0 "repeated credit ids"
expect_eq "$(jq -r .value.credit_id <<<"$credited" | sort | tr '\n' ' ')" \
        "$(psql_q "SELECT id FROM rs_credits ORDER BY id" | tr '\n' ' ')" "credit ids = database credits"
expect_eq "$(jq -c 'select(.value.referee_user_id == "dan") | [.value.role, .value.source_event_id]' \
        <<<"$credited" | sort | tr '\n' ' ')" '["REFEREE","shared-dan"] ["REFERRER","shared-dan"] ' \
        "dan's credits"
expect_eq "$(jq -r '.value.referrer_rewarded_count' <<<"$credited" | sort | tr '\n' ' ')" "1 1 2 2 3 3 " \
        "rewarded counts (each referral counted once)"

# Events that need no inbox row: erin signs up without a code, then (once
# that is processed: a charge of a user who has not signed up yet would be
# recorded) pays; each delivered twice, back to back.
erin_signup() {
        printf 'erin\t{"event_id":"su-erin","occurred_at":%s,"user_id":"erin","email_hash":"h-erin"}\n' "$NOW"
}
erin_charge() {
        printf 'erin\t{"event_id":"pay-erin","occurred_at":%s,"user_id":"erin","payment_id":"p-erin","amount_minor":1000,"currency":"USD","kind":"CHARGE"}\n' \
                $((NOW + 1000))
}
{ erin_signup; erin_signup; } | kcat_produce_keyed "$REFSTREAM_TOPIC_SIGNUPS"
seen 26
{ erin_charge; erin_charge; } | kcat_produce_keyed "$REFSTREAM_TOPIC_PAYMENTS"
seen 28
# Their effects, once: erin signed up, her charge is her first; no referral,
# credit, rejection or output for her.
expect_eq "$(psql_q "SELECT signup_event_id || ':' || email_hash FROM rs_users WHERE user_id = 'erin'")" \
        "su-erin:h-erin" "erin's sign-up"
expect_eq "$(psql_q "SELECT event_id || ':' || payment_id || ':' || amount_minor FROM rs_first_charges
                WHERE user_id = 'erin'")" "pay-erin:p-erin:1000" "erin's first charge"
expect_eq "$(psql_q "SELECT (SELECT count(*) FROM rs_referrals) || ' ' || (SELECT count(*) FROM rs_credits)
                || ' ' || (SELECT count(*) FROM rs_rejections) || ' ' || (SELECT count(*) FROM rs_outbox)")" \
        "3 6 0 6" "referrals, credits, rejections and outbox rows after erin's events"
# ...and no inbox row.
expect_eq "$(psql_q "SELECT count(*) FROM rs_inbox WHERE key IN (rs_inbox_key('signup', 'su-erin'),
                rs_inbox_key('payment', 'pay-erin'))")" 0 "inbox rows of erin's events"
expect_eq "$(psql_q "SELECT count(*) FROM rs_inbox")" 6 "inbox rows after erin's events"

stop_consumer
pass
