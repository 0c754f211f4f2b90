#!/usr/bin/env bash
# docs/rules.md §3 through the binary: which charges qualify a pending referral and
# what is credited (ReferralCredited on the credited topic), which are
# rejected and why, goal progress and the referrer cap, a payment processed
# before its sign-up, and refunds (ReferralCreditReversed), including a refund
# processed before its charge. Payments arrive as JSON (kcat) and as Avro
# (`refstream publish`). Events of one user share a key, hence a partition,
# hence their order; events that depend on another user's or topic's events
# are published in a later phase, once the earlier phase is visibly processed:
# once the consumer counts every record of it as applied (the counter moves
# after the batch's COMMIT; every event here is distinct, so none is a
# duplicate, and none is malformed).
. "$(dirname "$0")/lib.sh"
setup

HOUR=3600000
DAY=86400000
NOW=$(date +%s%3N)
S=$((NOW - 10 * DAY)) # every sign-up happens at S

# Programs:
#   pay: fixed 500 to the referrer, 250 to the referee, minimum 1000, 7-day
#        window, goal 2, at most 3 rewarded referrals per referrer
#   pct: 15% of the payment to the referrer, capped at 700, single-sided
#   rf:  fixed 300 + 100 to the referee, for the refund scenarios
rs admin program create --key pay --name Pay --currency USD --reward-fixed 500 \
        --referee-reward 250 --min-payment 1000 --window-days 7 --goal 2 --max-rewarded 3 >/dev/null
rs admin program create --key pct --name Percent --currency USD --reward-percent 1500 \
        --reward-cap 700 >/dev/null
rs admin program create --key rf --name Refunds --currency USD --reward-fixed 300 \
        --referee-reward 100 >/dev/null
A=$(rs admin codes issue --program pay --user alice)
P=$(rs admin codes issue --program pct --user paula)
O=$(rs admin codes issue --program rf --user olga)

# signup USER CODE [AT]: "USER<TAB>SignupEvent JSON"; event id su-USER.
signup() {
        printf '%s\t{"event_id":"su-%s","occurred_at":%s,"user_id":"%s","referral_code":"%s"}\n' \
                "$1" "$1" "${3:-$S}" "$1" "$2"
}
# pay EVENT_ID USER PAYMENT_ID AMOUNT CURRENCY AT [REFUND_OF]: "USER<TAB>
# PaymentEvent JSON", a CHARGE, or a REFUND of REFUND_OF when given.
pay() {
        local kind=CHARGE refund=
        [ -n "${7-}" ] && kind=REFUND refund=",\"refund_of\":\"$7\""
        printf '%s\t{"event_id":"%s","occurred_at":%s,"user_id":"%s","payment_id":"%s","amount_minor":%s,"currency":"%s","kind":"%s"%s}\n' \
                "$2" "$1" "$6" "$2" "$3" "$4" "$5" "$kind" "$refund"
}
# processed TYPE N: waits until the consumer has applied N records of TYPE.
processed() { wait_metric "refstream_events_total{type=\"$1\",outcome=\"applied\"}" "$2" 30; }

start_consumer

# ---- Phase 1: the sign-ups; ivan pays before he signs up; lena's refund
# comes before her charge.
{
        for u in bob carol dave erin frank gina hank; do signup "$u" "$A"; done
        for u in jack kim lena; do signup "$u" "$O"; done
} | kcat_produce_keyed "$REFSTREAM_TOPIC_SIGNUPS"
# The percent program's sign-ups as Avro.
{ signup q1 "$P"; signup q2 "$P"; } | cut -f2 | rs publish signup >/dev/null 2>&1 ||
        fail "refstream publish signup"
{
        pay pay-i1 ivan p-i1 2000 USD $((S + HOUR))
        pay ref-l1 lena r-l1 2000 USD $((S + 3 * HOUR)) p-l1
} | kcat_produce_keyed "$REFSTREAM_TOPIC_PAYMENTS"
processed signup 12
processed payment 2
# Neither payment had anything to act on yet: both are remembered.
expect_eq "$(psql_q "SELECT count(*) FROM rs_credits")" 0 "credits after phase 1"
expect_eq "$(psql_q "SELECT payment_id FROM rs_first_charges WHERE user_id = 'ivan'")" p-i1 \
        "ivan's remembered charge"
expect_eq "$(psql_q "SELECT refund_of FROM rs_held_refunds WHERE user_id = 'lena'")" p-l1 \
        "lena's held refund"

# ---- Phase 2: charges against the pending referrals, and ivan's sign-up.
{
        pay pay-b0 bob p-b0 5000 USD $((S - HOUR))          # OUTSIDE_WINDOW: before the sign-up
        pay pay-b1 bob p-b1 1500 USD $((S + HOUR))          # qualifies
        pay pay-c1 carol p-c1 5000 USD $((S + 8 * DAY))     # OUTSIDE_WINDOW: after 7 days
        pay pay-d1 dave p-d1 999 USD $((S + HOUR))          # BELOW_MINIMUM
        pay pay-e1 erin p-e1 5000 EUR $((S + HOUR))         # CURRENCY_MISMATCH
        pay pay-f1 frank p-f1 2000 USD $((S + HOUR))        # qualifies
        pay pay-g1 gina p-g1 2000 USD $((S + HOUR))         # qualifies
        pay pay-h1 hank p-h1 2000 USD $((S + HOUR))         # qualifies: 4th for alice, cap 3
        pay pay-j1 jack p-j1 2000 USD $((S + HOUR))         # qualifies (refunded in phase 3)
        pay pay-k1 kim p-k1 2000 USD $((S + HOUR))          # qualifies
        pay pay-k2 kim p-k2 500 USD $((S + 2 * HOUR))       # a later charge, not qualifying
        pay pay-l1 lena p-l1 2000 USD $((S + HOUR))         # qualifies, then the held refund
} | kcat_produce_keyed "$REFSTREAM_TOPIC_PAYMENTS"
{
        pay pay-q1 q1 p-q1 3333 USD $((S + HOUR))           # 15% = 499.95: 499
        pay pay-q2 q2 p-q2 10000 USD $((S + HOUR))          # 15% = 1500: capped at 700
} | cut -f2 | rs publish payment >/dev/null 2>&1 || fail "refstream publish payment"
signup ivan "$O" | kcat_produce_keyed "$REFSTREAM_TOPIC_SIGNUPS"
processed payment 16
processed signup 13

# ---- Phase 3: refunds of charges processed in phase 2.
{
        pay ref-j1 jack r-j1 2000 USD $((S + 5 * HOUR)) p-j1 # the qualifying payment
        pay ref-k2 kim r-k2 500 USD $((S + 5 * HOUR)) p-k2   # not the qualifying payment
} | kcat_produce_keyed "$REFSTREAM_TOPIC_PAYMENTS"
processed payment 18
# ---- Phase 4: jack's refund again (another event, same refund_of).
pay ref-j1-again jack r-j1b 2000 USD $((S + 6 * HOUR)) p-j1 |
        kcat_produce_keyed "$REFSTREAM_TOPIC_PAYMENTS"
processed payment 19
wait_sql "SELECT count(*) FROM rs_outbox_state WHERE published_at IS NULL" 0 30

# The inbox holds every event whose replay needs it (docs/design.md §2): the
# sign-ups (all with a code), the refunds, and every charge a referral judged
# or could judge (processed before its user's sign-up or while the referral
# was pending). All but kim's second charge: it needs a record only if it was
# processed in the batch of her first, her referral still pending.
must=(su-bob su-carol su-dave su-erin su-frank su-gina su-hank su-jack su-kim su-lena su-q1 su-q2 su-ivan)
keys=$(printf "rs_inbox_key('signup', '%s')," "${must[@]}")
must=(pay-i1 ref-l1 pay-b0 pay-b1 pay-c1 pay-d1 pay-e1 pay-f1 pay-g1 pay-h1 pay-j1 pay-k1 pay-l1
        pay-q1 pay-q2 ref-j1 ref-k2 ref-j1-again)
keys+=$(printf "rs_inbox_key('payment', '%s')," "${must[@]}")
expect_eq "$(psql_q "SELECT count(*) FROM rs_inbox WHERE key IN (${keys%,})")" 31 \
        "inbox rows of the events that need one"
expect_eq "$(psql_q "SELECT count(*) FROM rs_inbox WHERE key NOT IN (${keys%,},
                rs_inbox_key('payment', 'pay-k2'))")" 0 "other inbox rows"

credited=$(decode_records "$REFSTREAM_TOPIC_CREDITED")
reversed=$(decode_records "$REFSTREAM_TOPIC_REVERSED")
# cr JQ_FILTER: jq -c over the credit values.
cr() { jq -c "$1" <<<"$credited"; }

# pay: 4 qualifying referrals -> 3 referrer credits (cap 3) + 4 referee
# credits; pct: 2 referrer credits; rf: ivan, jack, kim and lena, 2 each.
expect_eq "$(wc -l <<<"$credited")" 17 "records on the credited topic"
expect_eq "$(cr '.value.credit_id' | sort -u | wc -l)" 17 "distinct credit ids"

# ---- Fixed rewards, double-sided: amounts, beneficiaries (= the key), the
# source payment.
expect_eq "$(cr 'select(.value.program_key == "pay" and .value.role == "REFERRER")
                | [.value.beneficiary_user_id, .value.amount_minor]' | sort | uniq -c | tr -s ' ')" \
        ' 3 ["alice",500]' "pay: referrer credits"
expect_eq "$(cr 'select(.value.program_key == "pay" and .value.role == "REFEREE") | .value
                | [.beneficiary_user_id, .amount_minor, .source_event_id]' | sort | tr '\n' ' ')" \
        '["bob",250,"pay-b1"] ["frank",250,"pay-f1"] ["gina",250,"pay-g1"] ["hank",250,"pay-h1"] ' \
        "pay: referee credits"
expect_eq "$(cr 'select(.key != .value.beneficiary_user_id)' | wc -l)" 0 "keys = beneficiaries"
expect_eq "$(cr 'select(.headers.event_type != "ReferralCredited"
                or .headers.source_topic == null or .headers.source_partition == null
                or .headers.source_offset == null)' | wc -l)" 0 "credited headers"

# ---- Goal progress and the cap: alice's rewarded count goes 1, 2, 3 (in
# whatever order the partitions were consumed); goal_reached is true exactly
# on her credit with count 2 (= the goal); both credits of one referral carry
# the same count; the 4th qualifying referral got REFERRER_CAP_REACHED and
# only its referee credit.
expect_eq "$(cr 'select(.value.program_key == "pay") | .value
                | [.role, .referrer_rewarded_count, .referral_goal, .goal_reached]' |
        grep REFERRER | sort | tr '\n' ' ')" \
        '["REFERRER",1,2,false] ["REFERRER",2,2,true] ["REFERRER",3,2,false] ' "alice's goal progress"
expect_eq "$(cr 'select(.value.program_key == "pay" and .value.role == "REFEREE") | .value.goal_reached' |
        sort -u)" false "goal_reached on referee credits"
capped=$(psql_q "SELECT user_id FROM rs_rejections WHERE reason = 'REFERRER_CAP_REACHED'")
[[ "$capped" =~ ^(bob|frank|gina|hank)$ ]] || fail "one capped referee expected, got [$capped]"
for u in bob frank gina hank; do
        n=$(cr "select(.value.referee_user_id == \"$u\") | .value.referrer_rewarded_count" | sort -u | wc -l)
        expect_eq "$n" 1 "one rewarded count on both credits of $u's referral"
        roles=$(cr "select(.value.referee_user_id == \"$u\") | .value | [.role, .source_event_id]" |
                sort | tr '\n' ' ')
        if [ "$u" = "$capped" ]; then
                expect_eq "$roles" "[\"REFEREE\",\"pay-${u:0:1}1\"] " "credits of the capped referral ($u)"
        else
                expect_eq "$roles" "[\"REFEREE\",\"pay-${u:0:1}1\"] [\"REFERRER\",\"pay-${u:0:1}1\"] " \
                        "credits of $u's referral"
        fi
done
expect_eq "$(psql_q "SELECT rewarded_count FROM rs_referrer_stats WHERE referrer_user_id = 'alice'")" 3 \
        "alice's rewarded count"
expect_eq "$(rs admin stats --user alice --json | jq -c '.as_referrer[0]
                | [.program, .rewarded_count, .referral_goal, .goal_reached, .max_rewarded]')" \
        '["pay",3,2,true,3]' "stats alice"

# ---- Charges that do not qualify: recorded, the referral stays pending (bob's
# early charge did not stop his later one from qualifying).
got=$(psql_q "SELECT string_agg(event_id || ':' || user_id || ':' || reason || ':' ||
                referrer_user_id, ' ' ORDER BY event_id) FROM rs_rejections
                WHERE reason <> 'REFERRER_CAP_REACHED'")
expect_eq "$got" "pay-b0:bob:OUTSIDE_WINDOW:alice pay-c1:carol:OUTSIDE_WINDOW:alice pay-d1:dave:BELOW_MINIMUM:alice pay-e1:erin:CURRENCY_MISMATCH:alice" \
        "payment rejections"
got=$(psql_q "SELECT string_agg(r.referee_user_id || ':' || r.status || ':' ||
                coalesce(r.payment_id, '-'), ' ' ORDER BY r.referee_user_id) FROM rs_referrals r JOIN rs_programs p
                ON p.id = r.program_id WHERE p.key = 'pay'")
expect_eq "$got" "bob:credited:p-b1 carol:pending:- dave:pending:- erin:pending:- frank:credited:p-f1 gina:credited:p-g1 hank:credited:p-h1" \
        "pay referrals"

# ---- Percent rewards: rounded down, capped.
expect_eq "$(cr 'select(.value.program_key == "pct") | .value
                | [.referee_user_id, .role, .beneficiary_user_id, .amount_minor]' | sort | tr '\n' ' ')" \
        '["q1","REFERRER","paula",499] ["q2","REFERRER","paula",700] ' "percent credits"

# ---- Payment before sign-up: ivan's remembered charge credited his
# referral when the sign-up arrived; the credits name the payment as their
# source and the sign-up as the record that produced them.
expect_eq "$(cr 'select(.value.referee_user_id == "ivan") | [.value.role, .value.amount_minor,
                .value.source_event_id, .headers.source_topic]' | sort | tr '\n' ' ')" \
        "[\"REFEREE\",100,\"pay-i1\",\"$REFSTREAM_TOPIC_SIGNUPS\"] [\"REFERRER\",300,\"pay-i1\",\"$REFSTREAM_TOPIC_SIGNUPS\"] " \
        "ivan's credits"

# ---- Refunds. Jack's refund reversed both credits of his referral: one
# ReferralCreditReversed per credit, same credit_id, amount and beneficiary
# (= key), the refund as source; the duplicate refund added nothing.
# Lena's refund, processed before her charge, was held and applied when the
# charge credited her referral. Kim's refund of a non-qualifying charge did
# nothing.
expect_eq "$(wc -l <<<"$reversed")" 4 "records on the reversed topic"
for u in jack lena; do
        want=$(cr "select(.value.referee_user_id == \"$u\") | .value
                        | [.credit_id, .beneficiary_user_id, .amount_minor, .currency]" | sort)
        [ "$(wc -l <<<"$want")" = 2 ] || fail "$u: two credits expected, got [$want]"
        got=$(jq -c "select(.value.referral_id == $(cr "select(.value.referee_user_id == \"$u\")
                        | .value.referral_id" | head -n1)) | .value
                        | [.credit_id, .beneficiary_user_id, .amount_minor, .currency]" \
                <<<"$reversed" | sort)
        expect_eq "$got" "$want" "$u: reversals of the credits"
done
expect_eq "$(jq -c 'select(.key != .value.beneficiary_user_id)' <<<"$reversed" | wc -l)" 0 \
        "reversal keys = beneficiaries"
expect_eq "$(jq -c '[.value.source_event_id, .value.reason, .headers.event_type,
                .headers.source_topic, (.headers.source_partition | test("^[0-3]$")),
                (.headers.source_offset | test("^[0-9]+$"))]' <<<"$reversed" | sort | uniq -c | tr -s ' ')" \
        " 2 [\"ref-j1\",\"REFUND\",\"ReferralCreditReversed\",\"$REFSTREAM_TOPIC_PAYMENTS\",true,true]
 2 [\"ref-l1\",\"REFUND\",\"ReferralCreditReversed\",\"$REFSTREAM_TOPIC_PAYMENTS\",true,true]" \
        "reversal source events and headers"
# Lena's reversals were produced by her charge (the held refund applied then).
expect_eq "$(jq -r 'select(.value.source_event_id == "ref-l1") | .headers.source_offset' <<<"$reversed" | sort -u)" \
        "$(cr 'select(.value.source_event_id == "pay-l1") | .headers.source_offset' | sort -u | tr -d '"')" \
        "lena's reversals come from the record of her charge"
got=$(psql_q "SELECT string_agg(r.referee_user_id || ':' || r.status || ':' ||
                coalesce(r.reversal_event_id, '-') || ':' || (SELECT string_agg(k.status ||
                '/' || coalesce(k.reversal_event_id, '-'), ',' ORDER BY k.role) FROM rs_credits k
                WHERE k.referral_id = r.id), ' ' ORDER BY r.referee_user_id)
                FROM rs_referrals r JOIN rs_programs p ON p.id = r.program_id WHERE p.key = 'rf'")
expect_eq "$got" "ivan:credited:-:issued/-,issued/- jack:reversed:ref-j1:reversed/ref-j1,reversed/ref-j1 kim:credited:-:issued/-,issued/- lena:reversed:ref-l1:reversed/ref-l1,reversed/ref-l1" \
        "rf referrals and their credits"
expect_eq "$(psql_q "SELECT count(*) FROM rs_held_refunds WHERE user_id = 'lena'")" 0 \
        "lena's held refund is used up"
expect_eq "$(rs admin stats --user olga --json | jq -c '.credits[] | [.issued_count, .issued_minor,
                .reversed_count, .reversed_minor]')" '[2,600,2,600]' "stats olga: credits"

stop_consumer
pass
