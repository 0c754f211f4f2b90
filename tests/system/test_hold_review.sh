#!/usr/bin/env bash
# docs/rules.md §8-§9 through the binary: a program with a reward hold and a
# daily referral limit; a qualifying charge makes the referral held (nothing
# published); `admin referrals cancel` cancels one (audited, nothing
# published), `admin referrals release` releases another, which the
# consumer's housekeeping publishes once; a refund during the hold cancels;
# a charge with the referrer's card is rejected SHARED_PAYMENT_METHOD; a
# sign-up over the daily limit is rejected VELOCITY_LIMIT; the stats show the
# held amounts and when they are due.
. "$(dirname "$0")/lib.sh"
setup

DAY=86400000
NOW=$(date +%s%3N)
S=$((NOW - DAY)) # sign-ups a day ago, charges now: due in 30 days

rs admin program create --key hold --name Hold --currency USD --reward-fixed 500 \
        --referee-reward 200 --hold-days 30 --max-referrals-per-day 4 >/dev/null
rs admin program show hold | grep -q "reward hold *30 days" || fail "hold not shown"
rs admin program show hold --json | grep -q '"max_referrals_per_day": 4' ||
        fail "daily limit not in the JSON"
A=$(rs admin codes issue --program hold --user alice)
B=$(rs admin codes issue --program hold --user alice)

signup() { # USER CODE AT
        printf '%s\t{"event_id":"su-%s","occurred_at":%s,"user_id":"%s","referral_code":"%s"}\n' \
                "$1" "$1" "$3" "$1" "$2"
}
pay() { # EVENT_ID USER PAYMENT_ID EXTRA_JSON (a CHARGE unless EXTRA says refund)
        local kind=CHARGE
        [[ "$4" == *refund_of* ]] && kind=REFUND
        printf '%s\t{"event_id":"%s","occurred_at":%s,"user_id":"%s","payment_id":"%s","amount_minor":5000,"currency":"USD","kind":"%s"%s}\n' \
                "$2" "$1" "$NOW" "$2" "$3" "$kind" "$4"
}
processed() { wait_metric "refstream_events_total{type=\"$1\",outcome=\"applied\"}" "$2" 30; }
referral_of() { psql_q "SELECT id FROM rs_referrals WHERE referee_user_id = '$1'"; }

start_consumer

# alice pays with her own card first.
pay a-1 alice pay-a1 ',"payment_fingerprint":"card-alice"' |
        kcat_produce_keyed "$REFSTREAM_TOPIC_PAYMENTS"
processed payment 1
# Five sign-ups with alice's two codes in 24 hours: the fifth is over the
# limit (sent once the four are in: users on different partitions have no
# order between them).
{
        signup bob "$A" "$S"
        signup carol "$B" "$((S + 1))"
        signup dave "$A" "$((S + 2))"
        signup erin "$B" "$((S + 3))"
} | kcat_produce_keyed "$REFSTREAM_TOPIC_SIGNUPS"
processed signup 4
signup fred "$A" "$((S + 4))" | kcat_produce_keyed "$REFSTREAM_TOPIC_SIGNUPS"
processed signup 5
wait_sql "SELECT count(*) FROM rs_rejections WHERE user_id = 'fred' AND reason = 'VELOCITY_LIMIT'" 1
expect_eq "$(psql_q "SELECT count(*) FROM rs_referrals")" 4 "referrals under the limit"
expect_eq "$(psql_q "SELECT sum(uses_count) FROM rs_codes")" 4 "uses (the fifth not counted)"

# bob, carol, dave qualify (held); erin pays with alice's card (rejected).
{
        pay b-1 bob pay-b1 ',"payment_fingerprint":"card-bob"'
        pay c-1 carol pay-c1 ''
        pay d-1 dave pay-d1 ''
        pay e-1 erin pay-e1 ',"payment_fingerprint":"card-alice"'
} | kcat_produce_keyed "$REFSTREAM_TOPIC_PAYMENTS"
processed payment 5
wait_sql "SELECT count(*) FROM rs_referrals WHERE status = 'held'" 3
expect_eq "$(psql_q "SELECT count(*) FROM rs_credits WHERE status = 'held'")" 6 "held credits"
expect_eq "$(psql_q "SELECT status FROM rs_referrals WHERE referee_user_id = 'erin'")" \
        pending "erin's referral after the shared card"
expect_eq "$(psql_q "SELECT count(*) FROM rs_rejections WHERE user_id = 'erin' AND reason = 'SHARED_PAYMENT_METHOD'")" \
        1 "shared card rejection"
rs admin stats --program hold | grep -q "held 3 (1500) due" || fail "held amounts not in stats"
rs admin stats --program hold --json | grep -q '"held_next_due": "' || fail "due time not in JSON"
rs admin stats --program hold | grep -q "SHARED_PAYMENT_METHOD" || fail "shared card not in stats"

# Operators: cancel bob's, release carol's; dave's is refunded during the hold.
BOB=$(referral_of bob)
CAROL=$(referral_of carol)
rs admin referrals cancel "$BOB" --reason "card under review" --actor ops-anna >"$RS_TMP/cancel.out"
grep -q "cancelled by ops-anna" "$RS_TMP/cancel.out" || fail "cancel output: $(cat "$RS_TMP/cancel.out")"
rc=0
rs admin referrals cancel "$BOB" --actor ops-anna 2>"$RS_TMP/again.err" || rc=$?
expect_eq "$rc" 1 "cancelling a cancelled referral"
grep -q "is cancelled: only a held referral" "$RS_TMP/again.err" || fail "second cancel: $(cat "$RS_TMP/again.err")"
rc=0
rs admin referrals release not-a-uuid --actor ops-anna 2>/dev/null || rc=$?
expect_eq "$rc" 1 "releasing a malformed id"
rc=0
rs admin referrals release 2>/dev/null || rc=$?
expect_eq "$rc" 2 "release without an id"
USER=ops-ben rs admin referrals release "$CAROL" --reason "verified" >/dev/null
pay d-r dave pay-dr ',"refund_of":"pay-d1"' | kcat_produce_keyed "$REFSTREAM_TOPIC_PAYMENTS"

# The housekeeping publishes carol's two credits, and nothing else.
wait_metric refstream_referrals_released_total 1 30
wait_sql "SELECT count(*) FROM rs_credits WHERE status = 'issued' AND released_at IS NOT NULL" 2
wait_sql "SELECT status FROM rs_referrals WHERE referee_user_id = 'dave'" cancelled
wait_until 30 "2 ReferralCredited on the topic" sh -c \
        "[ \"\$(kcat -b '$BROKERS' -C -e -q -o beginning -t '$REFSTREAM_TOPIC_CREDITED' -f '%k\n' | wc -l)\" -ge 2 ]"
expect_eq "$(psql_q "SELECT count(*) FROM rs_outbox WHERE destination <> 'dlq'")" 2 "records published"
expect_eq "$(psql_q "SELECT count(*) FROM rs_credits WHERE status = 'cancelled'")" 4 \
        "credits cancelled (bob's by an operator, dave's by the refund)"

rs admin referrals --user bob >"$RS_TMP/bob.txt"
grep -q "cancel by ops-anna: card under review" "$RS_TMP/bob.txt" || fail "audit of bob: $(cat "$RS_TMP/bob.txt")"
rs admin referrals --user carol --json >"$RS_TMP/carol.json"
grep -q '"actor": "ops-ben"' "$RS_TMP/carol.json" || fail "audit of carol: $(cat "$RS_TMP/carol.json")"
grep -q '"status": "credited"' "$RS_TMP/carol.json" || fail "carol not credited"

stop_consumer
pass
