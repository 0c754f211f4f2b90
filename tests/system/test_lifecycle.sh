#!/usr/bin/env bash
# An operator's day (docs/rules.md §1, §3.1, §4 admin; issue "code lifecycle"): programs
# created, updated, paused, resumed and ended; several programs live at once;
# codes issued, vanity, paused, resumed, revoked, updated; cache invalidation
# that takes effect at once; expiry and exhaustion applied by the processor;
# backfill; and the stats/referrals reports reflecting all of it.
. "$(dirname "$0")/lib.sh"
setup
CROCKFORD='^[0-9A-HJKMNP-TV-Z]{8}$'
redis() { redis-cli -u "$REFSTREAM_REDIS_URL" "$@"; }
now_ms() { date +%s%3N; }
# Every event of this test needs an inbox row (docs/design.md §2: sign-ups
# with a code, charges of referees, a refund), so the inbox counts the
# events processed.
inbox="SELECT count(*) FROM rs_inbox"
EVENTS=0 # events published so far (all distinct), for wait_processed

# su USER CODE [OCCURRED_MS] [EVENT_ID]: a sign-up with a referral code.
su() {
        local at=${3:-$(now_ms)} id=${4:-su-$1}
        echo "{\"event_id\":\"$id\",\"occurred_at\":$at,\"user_id\":\"$1\",\"referral_code\":\"$2\"}" |
                kcat_produce "$REFSTREAM_TOPIC_SIGNUPS" "$1"
        EVENTS=$((EVENTS + 1))
}
# pay USER PAYMENT_ID AMOUNT CURRENCY [REFUND_OF]: a charge (or a refund).
pay() {
        local kind=CHARGE extra=
        [ -n "${5:-}" ] && kind=REFUND extra=",\"refund_of\":\"$5\""
        echo "{\"event_id\":\"ev-$2\",\"occurred_at\":$(now_ms),\"user_id\":\"$1\",\"payment_id\":\"$2\",\"amount_minor\":$3,\"currency\":\"$4\",\"kind\":\"$kind\"$extra}" |
                kcat_produce "$REFSTREAM_TOPIC_PAYMENTS" "$1"
        EVENTS=$((EVENTS + 1))
}
wait_processed() { wait_sql "$inbox" "$EVENTS" 30; }
rejection_of() { psql_q "SELECT string_agg(reason, ',' ORDER BY id) FROM rs_rejections WHERE event_id = '$1'"; }
program_of() { # REFEREE: the program keys of the referee's referrals
        psql_q "SELECT string_agg(p.key, ',' ORDER BY p.key) FROM rs_referrals r
                JOIN rs_programs p ON p.id = r.program_id WHERE r.referee_user_id = '$1'"
}
code_field() { rs admin codes show "$1" --json | jq -r ".$2"; }
prog_field() { rs admin program show "$1" --json | jq -r ".$2"; }

# ---- Programs: create, update (takes effect in rewards), pause/resume/end.
rs admin program create --key main --name "Main" --currency USD --reward-fixed 1000 \
        --referee-reward 500 --min-payment 1000 --goal 3 >/dev/null
rs admin program create --key side --name "Side (EUR)" --currency EUR --reward-fixed 200 >/dev/null
rs admin program create --key temp --name "Temporary" --currency USD --reward-fixed 100 >/dev/null
rs admin program update main --reward-fixed 1200 --name "Main 2026" >/dev/null
expect_eq "$(prog_field main reward_value) $(prog_field main name)" "1200 Main 2026" "updated program"
rs admin program pause temp >/dev/null
expect_eq "$(prog_field temp status)" paused "temp after pause"
rs admin program resume temp >/dev/null
expect_eq "$(prog_field temp status)" active "temp after resume"
T=$(rs admin codes issue --program temp --user tina)
rs admin program end temp >/dev/null
expect_eq "$(prog_field temp status)" ended "temp after end"
rc=0
rs admin program resume temp >/dev/null 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "an ended program was resumed"
expect_eq "$(prog_field temp status)" ended "temp after an attempt to resume it"

# ---- Codes: generated (8 Crockford chars), vanity (case-insensitive unique).
A=$(rs admin codes issue --program main --user alice)
[[ "$A" =~ $CROCKFORD ]] || fail "generated code [$A] is not 8 Crockford characters"
VANITY="Vip-$RUN_ID" # the run id keeps it unique in the shared Redis
V=$(rs admin codes issue --program main --user bob --code "$VANITY")
expect_eq "$V" "${VANITY^^}" "vanity code as stored"
expect_eq "$(code_field "${VANITY,,}" owner_user_id)" bob "vanity code looked up in lower case"
rc=0
rs admin codes issue --program main --user mallory --code "${VANITY,,}" >/dev/null 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "the same vanity code in another case was issued twice"
expect_eq "$(psql_q "SELECT count(*) FROM rs_codes WHERE upper(code) = '${VANITY^^}'")" 1 "vanity rows"
S=$(rs admin codes issue --program side --user carol)
M=$(rs admin codes issue --program main --user dave --max-uses 2)
P=$(rs admin codes issue --program main --user frank)

start_consumer
wait_http /readyz 200 30
# E expires 6 s from now (sign-ups are judged by their occurred_at).
E_EXP=$(($(now_ms) + 6000))
# (The milliseconds are zero-padded: "@S.45" would be 450 ms, not 45.)
E_EXP_TEXT=$(date -u -d "@$((E_EXP / 1000)).$(printf %03d $((E_EXP % 1000)))" +%Y-%m-%dT%H:%M:%S.%3NZ)
E=$(rs admin codes issue --program side --user erin --expires-at "$E_EXP_TEXT")
# E2 expires at the same time but sees no sign-up afterwards: only the
# processor's periodic sweep can mark it expired.
E2=$(rs admin codes issue --program side --user erik --expires-at "$E_EXP_TEXT")
expect_eq "$(code_field "$E" expires_at)" "$E_EXP_TEXT" "E's expiry as stored"

# ---- Wave 1: referrals in two programs at once.
su r1 "  ${A,,} " # trimmed, upper-cased
pay r1 pay-r1 2000 USD
su r2 "$A"
pay r2 pay-r2 3000 USD
su v1 "${VANITY,,}"
pay v1 pay-v1 500 USD # below main's minimum
su s1 "$S"
pay s1 pay-s1 5000 EUR
su m1 "$M"
su m2 "$M"
su e1 "$E"
su r1 "$S" "" su-r1-side # r1 again, with a code of the other program
su r2 "$V" "" su-r2-again # r2 again in main: already referred
wait_processed
expect_eq "$(program_of r1)" main,side "r1's programs (a sign-up's program is its code's)"
expect_eq "$(program_of s1) $(program_of e1) $(program_of v1)" "side side main" "programs of s1 e1 v1"
expect_eq "$(rejection_of su-r2-again)" ALREADY_REFERRED "r2's second sign-up in main"
expect_eq "$(rejection_of ev-pay-v1)" BELOW_MINIMUM "v1's small charge"
# r1's charge credited main; for r1's side referral it came before the sign-up.
expect_eq "$(rejection_of ev-pay-r1)" OUTSIDE_WINDOW "r1's charge in side"
expect_eq "$(psql_q "SELECT amount_minor || ' ' || currency FROM rs_credits WHERE beneficiary_user_id = 'alice'
        AND role = 'referrer' ORDER BY 1 LIMIT 1")" "1200 USD" "alice's reward (the updated amount)"
expect_eq "$(psql_q "SELECT amount_minor || ' ' || currency FROM rs_credits WHERE beneficiary_user_id = 'carol'")" \
        "200 EUR" "carol's reward in the side program"
# Exhaustion: the processor marks M exhausted when its 2nd use is taken.
expect_eq "$(code_field "$M" status) $(code_field "$M" uses_count)" "exhausted 2" "M after two uses"

# ---- Revocation invalidates the cache at once: A is cached now (it was just
# resolved), `revoke` deletes the entry, and a sign-up 1 ms after the
# revocation is refused.
expect_eq "$(redis EXISTS "refstream:code:v1:$A")" 1 "A cached in Redis"
rs admin codes revoke "$A" >/dev/null
expect_eq "$(redis EXISTS "refstream:code:v1:$A")" 0 "A cached in Redis after revoke"
revoked_at=$(psql_q "SELECT rs_ts_to_ms(updated_at) FROM rs_codes WHERE code = '$A'")
su r3 "$A" $((revoked_at + 1))
# Paused code and paused/ended programs.
rs admin codes pause "$P" >/dev/null
su p1 "$P"
rs admin program pause side >/dev/null
su s2 "$S"
su t1 "$T"
su m3 "$M"
wait_processed
expect_eq "$(rejection_of su-r3)" CODE_INACTIVE "sign-up right after the revocation"
expect_eq "$(rejection_of su-p1)" CODE_INACTIVE "sign-up with a paused code"
expect_eq "$(rejection_of su-s2)" PROGRAM_INACTIVE "sign-up in a paused program"
expect_eq "$(rejection_of su-t1)" PROGRAM_INACTIVE "sign-up in an ended program"
expect_eq "$(rejection_of su-m3)" CODE_EXHAUSTED "sign-up with an exhausted code"
# ...and after resume / a higher max-uses (status re-derived), they work.
rs admin codes resume "$P" >/dev/null
rs admin program resume side >/dev/null
rs admin codes update "$M" --max-uses 5 >/dev/null
expect_eq "$(code_field "$M" status)" active "M after max-uses 5"
su p2 "$P"
su s3 "$S"
su m4 "$M"
pay r2 refund-r2 3000 USD pay-r2 # r2's credits are reversed
wait_processed
expect_eq "$(program_of p2) $(program_of s3) $(program_of m4)" "main side main" "after resume"
expect_eq "$(code_field "$M" uses_count)" 3 "M's uses"
rs admin codes update "$M" --max-uses 3 >/dev/null
expect_eq "$(code_field "$M" status)" exhausted "M after max-uses = uses"
# expires-at re-derives the status both ways.
Q=$(rs admin codes issue --program main --user quinn)
rs admin codes update "$Q" --expires-at 2020-01-01T00:00:00Z >/dev/null
expect_eq "$(code_field "$Q" status)" expired "Q with an expiry in the past"
rs admin codes update "$Q" --expires-at none >/dev/null
expect_eq "$(code_field "$Q" status)" active "Q without expiry"

# ---- Expiry: after expires_at a sign-up is CODE_EXPIRED, and the processor
# sets the status to expired (when a sign-up finds it so, or in its sweep).
while [ "$(now_ms)" -le $((E_EXP + 100)) ]; do sleep 0.2; done
su e2 "$E"
wait_processed
expect_eq "$(rejection_of su-e2)" CODE_EXPIRED "sign-up after the expiry"
both_expired() { [ "$(code_field "$E" status)" = expired ] && [ "$(code_field "$E2" status)" = expired ]; }
wait_until 10 "E and E2 to be marked expired" both_expired
expect_eq "$(code_field "$E" status)" expired "E's status after its expiry"
expect_eq "$(code_field "$E2" status)" expired "E2's status after its expiry"
grep -q 'codes reached their expiry' "$RS_TMP/consumer.log" || fail "no sweep expired a code"
expect_eq "$(program_of e1)" side "e1's referral, made before the expiry"

# ---- Backfill: a code for every listed user, existing ones reused; a second
# run prints the same lines and creates nothing.
codes_before=$(psql_q "SELECT count(*) FROM rs_codes")
printf 'bf-1\nbf-2\n frank \nbf-1\n' | rs admin codes backfill --program main >"$RS_TMP/bf1" 2>/dev/null
expect_eq "$(wc -l <"$RS_TMP/bf1")" 4 "backfill output lines"
expect_eq "$(grep -c $'^frank\t'"$P"'$' "$RS_TMP/bf1")" 1 "frank keeps his code"
for u in bf-1 bf-2; do
        [[ "$(grep -m1 "^$u"$'\t' "$RS_TMP/bf1" | cut -f2)" =~ $CROCKFORD ]] || fail "no code for $u"
done
expect_eq "$(psql_q "SELECT count(*) FROM rs_codes")" $((codes_before + 2)) "codes after backfill"
printf 'bf-1\nbf-2\n frank \nbf-1\n' | rs admin codes backfill --program main >"$RS_TMP/bf2" 2>/dev/null
cmp -s "$RS_TMP/bf1" "$RS_TMP/bf2" || fail "a second backfill printed other lines"
expect_eq "$(psql_q "SELECT count(*) FROM rs_codes")" $((codes_before + 2)) "codes after the second backfill"

# ---- Reports. main: r1 credited; r2 reversed; v1, m1, m2, m4, p2 pending.
st=$(rs admin stats --program main --json)
expect_eq "$(echo "$st" | jq -c .referrals)" '{"total":7,"pending":5,"held":0,"credited":1,"reversed":1,"cancelled":0}' \
        "main's referrals by status"
expect_eq "$(echo "$st" | jq -c '[.credits[] | {role, issued_count, issued_minor, reversed_count, reversed_minor}] | sort_by(.role)')" \
        '[{"role":"referee","issued_count":1,"issued_minor":500,"reversed_count":1,"reversed_minor":500},{"role":"referrer","issued_count":1,"issued_minor":1200,"reversed_count":1,"reversed_minor":1200}]' \
        "main's credits by role"
expect_eq "$(echo "$st" | jq -cS '.rejections.by_reason')" \
        '{"ALREADY_REFERRED":1,"BELOW_MINIMUM":1,"CODE_EXHAUSTED":1,"CODE_INACTIVE":2}' \
        "main's rejections by reason"
expect_eq "$(echo "$st" | jq -r '[.rejections.recent[].event_id] | sort | join(" ")')" \
        "ev-pay-v1 su-m3 su-p1 su-r2-again su-r3" "main's recent rejections"
expect_eq "$(echo "$st" | jq -r '.rejections.recent[] | select(.event_id == "su-r3") | .code + " " + .reason')" \
        "$A CODE_INACTIVE" "the example of the revoked code"
expect_eq "$(echo "$st" | jq -r '.codes | "\(.revoked) \(.exhausted) \(.active)"')" "1 1 5" \
        "main's codes by status (A revoked; M exhausted; V, P, Q, bf-1, bf-2 active)"
side=$(rs admin stats --program side --json)
expect_eq "$(echo "$side" | jq -c .referrals)" '{"total":4,"pending":3,"held":0,"credited":1,"reversed":0,"cancelled":0}' \
        "side's referrals by status (s1 credited; r1, e1, s3 pending)"
expect_eq "$(echo "$side" | jq -cS '.rejections.by_reason')" \
        '{"CODE_EXPIRED":1,"OUTSIDE_WINDOW":1,"PROGRAM_INACTIVE":1}' \
        "side's rejections by reason"
# alice: two rewarded referrals (a reversal does not give the slot back).
us=$(rs admin stats --user alice --json)
expect_eq "$(echo "$us" | jq -r '.as_referrer[] | select(.program == "main") | .goal_progress')" "2 of 3" \
        "alice's goal progress"
expect_eq "$(echo "$us" | jq -r '.codes[] | .code + " " + .status')" "$A revoked" "alice's codes"
expect_eq "$(echo "$us" | jq -r '.rejections.recent[] | select(.as == "referrer") | .event_id')" su-r3 \
        "rejections of alice's code"
# alice's history keeps the referrals made through her code before it was
# revoked, with their credits.
hist=$(rs admin referrals --user alice --json)
expect_eq "$(echo "$hist" | jq -r '[.referrals[] | .referee_user_id + ":" + .code + ":" + .code_status + ":" + .status] | sort | join(" ")')" \
        "r1:$A:revoked:credited r2:$A:revoked:reversed" "alice's referral history"
expect_eq "$(echo "$hist" | jq -r '[.referrals[].credits[] | select(.beneficiary_user_id == "alice") | .status] | sort | join(" ")')" \
        "issued reversed" "alice's credits in her history"
stop_consumer
pass
