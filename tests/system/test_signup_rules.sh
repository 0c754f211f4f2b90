#!/usr/bin/env bash
# docs/rules.md §2 through the binary: which sign-ups with a referral code create a
# pending referral (and use up the code), and which are rejected, with which
# reason, as recorded in rs_rejections and reported by `refstream admin stats`.
# Sign-ups arrive as JSON (kcat) and as Avro (`refstream publish`). Events that
# depend on earlier ones are published in a later phase, after the earlier
# phase is visibly processed (the consumer counts all of its records as
# applied, after their batches' COMMIT): different users land in different
# partitions, so Kafka does not order them.
. "$(dirname "$0")/lib.sh"
setup

ms() { date -u -d "$1" +%s%3N; }
NOW=$(date +%s%3N)

# signup_json EVENT_ID USER [CODE] [EMAIL_HASH] [OCCURRED_AT]: one SignupEvent as
# JSON; OCCURRED_AT is JSON too: epoch ms (default now) or a quoted RFC 3339 time.
signup_json() {
        jq -cn --arg e "$1" --arg u "$2" --arg c "${3-}" --arg h "${4-}" --argjson t "${5:-$NOW}" \
                '{event_id: $e, occurred_at: $t, user_id: $u}
                 + (if $c != "" then {referral_code: $c} else {} end)
                 + (if $h != "" then {email_hash: $h} else {} end)'
}
# kv: the same, as "USER<TAB>JSON" for kcat_produce_keyed.
kv() { printf '%s\t%s\n' "$2" "$(signup_json "$@")"; }
# processed N: waits until the consumer has applied N sign-ups.
processed() { wait_metric 'refstream_events_total{type="signup",outcome="applied"}' "$1" 30; }

# Programs: "main" (no dates), one paused, one that runs only in January 2030.
rs admin program create --key main --name Main --currency USD --reward-fixed 500 >/dev/null
rs admin program create --key frozen --name Frozen --currency USD --reward-fixed 500 >/dev/null
rs admin program pause frozen >/dev/null
rs admin program create --key jan2030 --name "January 2030" --currency USD --reward-fixed 500 \
        --starts-at 2030-01-01T00:00:00Z --ends-at 2030-02-01T00:00:00Z >/dev/null

issue() { rs admin codes issue "$@" 2>/dev/null; } # (warnings about Z and F are expected)
A=$(issue --program main --user alice)
B=$(issue --program main --user bob)
K=$(issue --program main --user kate)
P=$(issue --program main --user paula)
R=$(issue --program main --user rita)
E=$(issue --program main --user ed --expires-at 2030-01-01T00:00:00Z)
X=$(issue --program main --user xena --max-uses 1)
Z=$(issue --program main --user zed --max-uses 0)
F=$(issue --program frozen --user fred)
J=$(issue --program jan2030 --user jan)
rs admin codes pause "$P" >/dev/null
rs admin codes revoke "$R" >/dev/null
# A code no program has (well-formed, so it is really looked up; the run id
# keeps it out of the Redis cache that other tests share).
NOCODE="NOSUCH-$RUN_ID"

start_consumer

# ---- Phase 1: sign-ups that depend on nothing but the codes above.
{
        kv s1-bob bob " ${A,,} " # lower case + spaces: valid
        kv s1-kate kate "" h-kate # kate's own sign-up (no code)
        kv s1-twin kate-twin "" h-kate # another account, kate's e-mail hash
        kv s1-unknown u-unknown "$NOCODE" # UNKNOWN_CODE
        kv s1-paused u-paused "$P" # CODE_INACTIVE (paused code)
        kv s1-expired u-expired "$E" "" '"2030-01-01T00:00:00Z"' # CODE_EXPIRED: at expires_at
        kv s1-frozen u-frozen "$F" # PROGRAM_INACTIVE (paused program)
        kv s1-early u-early "$J" "" '"2030-01-01T00:59:59.999+01:00"' # PROGRAM_INACTIVE: 1 ms early
        kv s1-jan u-jan "$J" "" "$(ms 2030-01-01T00:00:00Z)" # valid: at starts_at
        kv s1-x1 u-x1 "$X" # valid: the one use of X
} | kcat_produce_keyed "$REFSTREAM_TOPIC_SIGNUPS"
# The same kind of events as Avro, from the binary.
{
        signup_json s1-carol carol "  ${A,,}" # spaces + lower case: valid
        signup_json s1-revoked u-revoked "$R" # CODE_INACTIVE (revoked code)
        signup_json s1-fresh u-fresh "$E" "" '"2029-12-31T23:59:59.999Z"' # valid: 1 ms before expiry
        signup_json s1-zero u-zero "$Z" # CODE_EXHAUSTED (max_uses 0)
        signup_json s1-late u-late "$J" "" "$(ms 2030-03-01T00:00:00Z)" # PROGRAM_INACTIVE (after)
        signup_json s1-alice alice "$A" # SELF_REFERRAL (own code)
} | rs publish signup >/dev/null 2>&1 || fail "refstream publish signup"
processed 16

# ---- Phase 2: sign-ups that depend on phase 1 (X used once, kate's and
# kate-twin's e-mail hashes known, bob referred by alice).
{
        kv s2-x2 u-x2 "$X" # CODE_EXHAUSTED (max_uses 1 reached)
        kv s2-kate-alt kate-alt "$K" h-kate # SELF_REFERRAL (kate's e-mail hash)
        kv s2-twin kate-twin "$K" # SELF_REFERRAL (the hash of kate-twin's first sign-up)
        kv s2-bob bob "$K" # ALREADY_REFERRED (bob has A)
} | kcat_produce_keyed "$REFSTREAM_TOPIC_SIGNUPS"
{
        signup_json s2-kate-friend kate-friend "$K" h-friend # valid: another e-mail hash
        signup_json s2-alice alice "$B" # REFERRAL_CYCLE (alice referred bob)
} | rs publish signup >/dev/null 2>&1 || fail "refstream publish signup"
processed 22

# Exactly the valid sign-ups became pending referrals, attributed to the code's
# owner; the ALREADY_REFERRED sign-up did not move bob to kate's code (first
# valid sign-up wins).
got=$(psql_q "SELECT string_agg(referee_user_id || ':' || referrer_user_id || ':' || code || ':' ||
                status, ' ' ORDER BY referee_user_id) FROM rs_referrals")
expect_eq "$got" "bob:alice:$A:pending carol:alice:$A:pending kate-friend:kate:$K:pending u-fresh:ed:$E:pending u-jan:jan:$J:pending u-x1:xena:$X:pending" \
        "referrals"

# uses_count counts exactly the referrals; X became exhausted at its one use
# (Z, max_uses 0, is exhausted from the start: 0 is not "unlimited").
got=$(psql_q "SELECT string_agg(owner_user_id || '=' || uses_count || '/' || status, ' '
                ORDER BY owner_user_id) FROM rs_codes")
expect_eq "$got" "alice=2/active bob=0/active ed=1/active fred=0/active jan=1/active kate=1/active paula=0/paused rita=0/revoked xena=1/exhausted zed=0/exhausted" \
        "codes (uses_count/status)"

# Every rejected sign-up is recorded once, with its reason, the normalised
# code and the code's owner as referrer.
got=$(psql_q "SELECT string_agg(event_id || ':' || reason || ':' || coalesce(code, '-') || ':' ||
                coalesce(referrer_user_id, '-'), ' ' ORDER BY event_id) FROM rs_rejections
                WHERE event_type = 'signup'")
want="s1-alice:SELF_REFERRAL:$A:alice s1-early:PROGRAM_INACTIVE:$J:jan"
want+=" s1-expired:CODE_EXPIRED:$E:ed s1-frozen:PROGRAM_INACTIVE:$F:fred"
want+=" s1-late:PROGRAM_INACTIVE:$J:jan s1-paused:CODE_INACTIVE:$P:paula"
want+=" s1-revoked:CODE_INACTIVE:$R:rita s1-unknown:UNKNOWN_CODE:$NOCODE:-"
want+=" s1-zero:CODE_EXHAUSTED:$Z:zed s2-alice:REFERRAL_CYCLE:$B:bob"
want+=" s2-bob:ALREADY_REFERRED:$K:kate s2-kate-alt:SELF_REFERRAL:$K:kate"
want+=" s2-twin:SELF_REFERRAL:$K:kate s2-x2:CODE_EXHAUSTED:$X:xena"
expect_eq "$got" "$want" "rejections"
expect_eq "$(psql_q "SELECT count(*) FROM rs_rejections")" 14 "rejection rows"

# `admin stats --program` reports the same, per program.
stats=$(rs admin stats --program main --json)
expect_eq "$(echo "$stats" | jq -cS '.rejections.by_reason')" \
        '{"ALREADY_REFERRED":1,"CODE_EXHAUSTED":2,"CODE_EXPIRED":1,"CODE_INACTIVE":2,"REFERRAL_CYCLE":1,"SELF_REFERRAL":3}' \
        "stats main: rejections by reason"
expect_eq "$(echo "$stats" | jq -c '[.referrals.total, .referrals.pending, .codes.uses]')" \
        "[5,5,5]" "stats main: referrals total/pending, code uses"
stats=$(rs admin stats --program frozen --json)
expect_eq "$(echo "$stats" | jq -c '[.program.status, .rejections.by_reason]')" \
        '["paused",{"PROGRAM_INACTIVE":1}]' "stats frozen"
stats=$(rs admin stats --program jan2030 --json)
expect_eq "$(echo "$stats" | jq -c '[.referrals.total, .rejections.by_reason]')" \
        '[1,{"PROGRAM_INACTIVE":2}]' "stats jan2030"

# `admin stats --user`: the unknown code (no program) shows up for its user;
# bob was referred by alice and has two rejections, one as the referee
# (ALREADY_REFERRED) and one as the referrer whose code alice tried.
stats=$(rs admin stats --user u-unknown --json)
expect_eq "$(echo "$stats" | jq -c '[.rejections.total, .rejections.recent[0].reason, .rejections.recent[0].program]')" \
        '[1,"UNKNOWN_CODE",null]' "stats u-unknown"
stats=$(rs admin stats --user bob --json)
expect_eq "$(echo "$stats" | jq -c '[.referred_by[] | [.program, .referrer_user_id, .code, .status]]')" \
        "[[\"main\",\"alice\",\"$A\",\"pending\"]]" "stats bob: referred_by"
expect_eq "$(echo "$stats" | jq -c '[.rejections.recent[] | [.reason, .as]] | sort')" \
        '[["ALREADY_REFERRED","referee"],["REFERRAL_CYCLE","referrer"]]' "stats bob: rejections"
stats=$(rs admin stats --user alice --json)
expect_eq "$(echo "$stats" | jq -c '[.as_referrer[] | [.program, .referrals.total, .referrals.pending]]')" \
        '[["main",2,2]]' "stats alice: as referrer"

# The inbox records each sign-up with a code (docs/design.md §2): the 20
# that made a referral or a rejection; kate's and kate-twin's first sign-ups
# carry none and need no record.
expect_eq "$(psql_q "SELECT count(*) FROM rs_inbox WHERE key IN
                (SELECT rs_inbox_key('signup', signup_event_id) FROM rs_referrals
                 UNION SELECT rs_inbox_key('signup', event_id) FROM rs_rejections)")" 20 \
        "inbox rows of the sign-ups with a code"
expect_eq "$(psql_q "SELECT count(*) FROM rs_inbox")" 20 "inbox rows"

# No credits: nothing was paid.
expect_eq "$(psql_q "SELECT count(*) FROM rs_credits")" 0 "credits"

stop_consumer
pass
