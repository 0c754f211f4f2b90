#!/usr/bin/env bash
# Horizontal scale (docs/rules.md §2, §3.2, §3.4; docs/design.md §1): two `refstream
# consume` processes in one group share the 4 partitions of each topic.
#  - a code with max_uses=1 and 110 referees on all partitions: one winner,
#    uses_count 1, status exhausted, CODE_EXHAUSTED for everybody else;
#  - a program with max_rewarded=5 and 30 qualifying referees of one referrer:
#    exactly 5 referrer credits (counts 1..5, the goal announced once), 25
#    REFERRER_CAP_REACHED;
#  - every event exactly once, although the group rebalances when the second
#    consumer joins mid-stream and again when the first one stops.
. "$(dirname "$0")/lib.sh"
setup

rs admin program create --key solo --name "One use" --currency USD --reward-fixed 100 >/dev/null
rs admin program create --key capped --name "Capped" --currency USD --reward-fixed 300 \
        --referee-reward 100 --max-rewarded 5 --goal 3 >/dev/null
X=$(rs admin codes issue --program solo --user solo-owner --max-uses 1)
Y=$(rs admin codes issue --program capped --user bigref)
# Every event of this test needs an inbox row (docs/design.md §2: sign-ups
# with a code, charges of referees), so the inbox counts the events processed.
inbox="SELECT count(*) FROM rs_inbox"

# x_signups N M: users xN..xM sign up with X (keyed by user: all partitions).
x_signups() {
        local i t
        t=$(date +%s%3N)
        for i in $(seq "$1" "$2"); do
                printf '%s\t%s\n' "x$i" "{\"event_id\":\"su-x$i\",\"occurred_at\":$t,\"user_id\":\"x$i\",\"referral_code\":\"$X\"}"
        done | kcat_produce_keyed "$REFSTREAM_TOPIC_SIGNUPS"
}
# y_referees N M: users yN..yM sign up with Y and pay a qualifying charge.
y_referees() {
        local i t
        t=$(date +%s%3N)
        for i in $(seq "$1" "$2"); do
                printf '%s\t%s\n' "y$i" "{\"event_id\":\"su-y$i\",\"occurred_at\":$t,\"user_id\":\"y$i\",\"referral_code\":\"$Y\"}"
        done | kcat_produce_keyed "$REFSTREAM_TOPIC_SIGNUPS"
        for i in $(seq "$1" "$2"); do
                printf '%s\t%s\n' "y$i" "{\"event_id\":\"pay-y$i\",\"occurred_at\":$((t + 1000)),\"user_id\":\"y$i\",\"payment_id\":\"p-y$i\",\"amount_minor\":2000,\"currency\":\"USD\",\"kind\":\"CHARGE\"}"
        done | kcat_produce_keyed "$REFSTREAM_TOPIC_PAYMENTS"
}
metric_of() { HTTP_PORT=$1 metric "$2"; } # PORT SERIES
applied_of() {
        echo $(($(metric_of "$1" 'refstream_events_total{type="signup",outcome="applied"}') +
                $(metric_of "$1" 'refstream_events_total{type="payment",outcome="applied"}')))
}

# Consumer A alone, then B joins while events are arriving.
start_consumer a
A_PID=$CONSUMER_PID A_PORT=$HTTP_PORT
wait_http /readyz 200 30
y_referees 1 10
start_consumer b
B_PID=$CONSUMER_PID B_PORT=$HTTP_PORT
# One referee every 0.5 s for 5 s: the rebalance (A learns of B at its next
# heartbeat, within 3 s) happens while events keep arriving.
for i in $(seq 11 20); do
        y_referees "$i" "$i"
        sleep 0.5
done
wait_sql "$inbox" 40
# The group rebalanced: A gave partitions up, both hold some now.
both_assigned() {
        grep -q 'revoked' "$RS_TMP/a.log" && [ "$(metric_of "$A_PORT" refstream_assigned_partitions)" -gt 0 ] &&
                [ "$(metric_of "$B_PORT" refstream_assigned_partitions)" -gt 0 ]
}
wait_until 30 "A and B to share the partitions" both_assigned
expect_eq "$(($(metric_of "$A_PORT" refstream_assigned_partitions) + $(metric_of "$B_PORT" refstream_assigned_partitions)))" \
        8 "partitions assigned to A and B together"
[ "$(metric_of "$B_PORT" refstream_assigned_partitions)" -lt 8 ] || fail "B holds every partition"

# Both race for the single use of X (and for Y's remaining cap slots).
a_before=$(applied_of "$A_PORT") b_before=$(applied_of "$B_PORT")
x_signups 1 100
y_referees 21 25
wait_sql "$inbox" 150
[ "$(applied_of "$A_PORT")" -gt "$a_before" ] || fail "A applied none of the racing events"
[ "$(applied_of "$B_PORT")" -gt "$b_before" ] || fail "B applied none of the racing events"

# A stops; B takes over all partitions and finishes the rest.
stop_consumer "$A_PID"
x_signups 101 110
y_referees 26 30
wait_sql "$inbox" 170
grep -q 'assigned 8 partitions' "$RS_TMP/b.log" || fail "B never held all 8 partitions"
wait_sql "SELECT count(*) FROM rs_outbox_state WHERE published_at IS NULL" 0 30
HTTP_PORT=$B_PORT
stop_consumer "$B_PID"

# The x sign-ups were spread over all 4 partitions (kcat's view).
expect_eq "$(kcat -b "$BROKERS" -C -t "$REFSTREAM_TOPIC_SIGNUPS" -o beginning -e -q -f '%k %p\n' |
        awk '$1 ~ /^x/ {print $2}' | sort -u | tr '\n' ' ')" "0 1 2 3 " "partitions of the x sign-ups"

# max_uses=1: one referral, the code exhausted, 109 CODE_EXHAUSTED.
expect_eq "$(psql_q "SELECT count(*) FROM rs_referrals WHERE code = '$X'")" 1 "referrals with X"
expect_eq "$(psql_q "SELECT uses_count || ' ' || status FROM rs_codes WHERE code = '$X'")" \
        "1 exhausted" "X's uses and status"
expect_eq "$(psql_q "SELECT count(*) FROM rs_rejections WHERE code = '$X' AND reason = 'CODE_EXHAUSTED'")" \
        109 "CODE_EXHAUSTED rejections"
# The one winner is one of the x users, and no x user got in twice.
expect_eq "$(psql_q "SELECT count(DISTINCT user_id) FROM rs_rejections WHERE code = '$X'")" 109 \
        "distinct rejected x users"

# max_rewarded=5: all 30 referrals qualify; 5 referrer credits, 30 referee
# credits, 25 REFERRER_CAP_REACHED; the referrer's count stops at 5.
expect_eq "$(psql_q "SELECT status || ' ' || count(*) FROM rs_referrals WHERE code = '$Y' GROUP BY status")" \
        "credited 30" "referrals with Y by status"
expect_eq "$(psql_q "SELECT role || ' ' || count(*) FROM rs_credits GROUP BY role ORDER BY role" | tr '\n' ',')" \
        "referee 30,referrer 5," "credits by role"
expect_eq "$(psql_q "SELECT count(*) FROM rs_rejections WHERE reason = 'REFERRER_CAP_REACHED'")" 25 \
        "REFERRER_CAP_REACHED rejections"
expect_eq "$(psql_q "SELECT rewarded_count FROM rs_referrer_stats WHERE referrer_user_id = 'bigref'")" 5 \
        "bigref's rewarded count"

# Exactly once overall: every event in the inbox once, no extra rejections.
expect_eq "$(psql_q "$inbox")" 170 "inbox rows"
expect_eq "$(psql_q "SELECT count(*) FROM rs_rejections")" 134 "rejections"
expect_eq "$(psql_q "SELECT count(*) FROM rs_referrals")" 31 "referrals"

# Kafka: 35 credits, once each (no crash here, so exactly once); bigref's
# carry the counts 1..5, and goal_reached only on the 3rd.
decode_all "$REFSTREAM_TOPIC_CREDITED" >"$RS_TMP/credited.json"
expect_eq "$(wc -l <"$RS_TMP/credited.json")" 35 "records on the credited topic"
expect_eq "$(jq -r .credit_id "$RS_TMP/credited.json" | sort -u | wc -l)" 35 "distinct credit ids"
expect_eq "$(jq -r 'select(.role == "REFERRER") | .referrer_rewarded_count' "$RS_TMP/credited.json" | sort -n | tr '\n' ' ')" \
        "1 2 3 4 5 " "referrer_rewarded_count of bigref's credits"
expect_eq "$(jq -r 'select(.role == "REFERRER" and .goal_reached) | .referrer_rewarded_count' "$RS_TMP/credited.json")" \
        3 "the credit that reached the goal"
expect_eq "$(jq -r 'select(.goal_reached) | .role' "$RS_TMP/credited.json")" REFERRER \
        "roles of credits with goal_reached"
pass
