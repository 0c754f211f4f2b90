#!/usr/bin/env bash
# docs/guarantees.md, malformed records: each goes to the DLQ topic with its original
# bytes and key, and headers saying what was wrong and where it came from;
# consumption continues behind it in the same partition; replaying the same
# offsets (a new consumer group reading from the beginning) does not
# dead-letter them twice. The records are written with kcat, byte for byte.
. "$(dirname "$0")/lib.sh"
setup

rs admin program create --key main --name Main --currency USD --reward-fixed 500 >/dev/null
A=$(rs admin codes issue --program main --user alice)
NOW=$(date +%s%3N)

# bad NAME TOPIC ERROR_CLASS: the record in $RS_TMP/NAME is sent to TOPIC with
# key NAME and must be dead-lettered with ERROR_CLASS.
CASES=()
bad() {
        kcat_produce_file "$2" "$1" "$RS_TMP/$1"
        CASES+=("$1 $2 $3")
}
SU=$REFSTREAM_TOPIC_SIGNUPS
PAY=$REFSTREAM_TOPIC_PAYMENTS
f() { printf "$2" >"$RS_TMP/$1"; } # f NAME PRINTF_FORMAT: writes a record file

f garbage '\xff\xfe\x01garbage\n\x00'
bad garbage "$SU" bad_framing
# 0x00 + schema id 99 (not in the manifest) + anything.
f unknown-schema '\x00\x00\x00\x00\x63\x02\x04abcd'
bad unknown-schema "$SU" unknown_schema
# 0x00 + schema id 2 (PaymentEvent) on the sign-up topic.
f wrong-schema '\x00\x00\x00\x00\x02\x02e'
bad wrong-schema "$SU" wrong_schema
# 0x00 + schema id 1 (SignupEvent) + an event_id that announces 10 bytes
# (zig-zag 0x14) but carries 3.
f truncated-avro '\x00\x00\x00\x00\x01\x14abc'
bad truncated-avro "$SU" avro_decode
# JSON, but not an object: neither accepted wire format (bad framing).
f json-array '[{"event_id":"e1","occurred_at":1,"user_id":"u"}]'
bad json-array "$SU" bad_framing
# An object that does not parse.
f json-broken '{"event_id":"e2","occurred_at":'
bad json-broken "$SU" json_decode
f no-user "{\"event_id\":\"e3\",\"occurred_at\":$NOW,\"referral_code\":\"$A\"}"
bad no-user "$SU" missing_field
f long-id "{\"event_id\":\"$(printf 'x%.0s' $(seq 65))\",\"occurred_at\":$NOW,\"user_id\":\"u4\"}"
bad long-id "$SU" invalid_field
f float-amount "{\"event_id\":\"e5\",\"occurred_at\":$NOW,\"user_id\":\"u5\",\"payment_id\":\"p5\",\"amount_minor\":10.5,\"currency\":\"USD\",\"kind\":\"CHARGE\"}"
bad float-amount "$PAY" invalid_field
f refund-no-of "{\"event_id\":\"e6\",\"occurred_at\":$NOW,\"user_id\":\"u6\",\"payment_id\":\"p6\",\"amount_minor\":100,\"currency\":\"USD\",\"kind\":\"REFUND\"}"
bad refund-no-of "$PAY" missing_field
# Above the 1 MiB input limit (the test broker takes up to 4 MiB).
{ printf '{"event_id":"'; head -c 1048576 /dev/zero | tr '\0' x; printf '"}'; } >"$RS_TMP/too-large"
bad too-large "$PAY" too_large
# A valid sign-up the database refuses (a trigger, standing in for data
# Postgres cannot hold): isolated by bisection, dead-lettered unchanged.
psql_q "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS
        \$\$BEGIN IF NEW.user_id = 'poison-user' THEN RAISE EXCEPTION 'refused'; END IF;
        RETURN NEW; END\$\$" >/dev/null
psql_q "CREATE TRIGGER refuse_poison BEFORE INSERT ON rs_users FOR EACH ROW
        EXECUTE FUNCTION refuse_poison()" >/dev/null
f poison "{\"event_id\":\"e7\",\"occurred_at\":$NOW,\"user_id\":\"poison-user\"}"
bad poison "$SU" processing_error
# A record without a key (it must stay without one on the DLQ).
f no-key 'no key, no framing'
kcat -b "$BROKERS" -P -t "$SU" "$RS_TMP/no-key"
NBAD=$((${#CASES[@]} + 1))

# Behind every malformed record, in its partition (same key), a valid event:
# a sign-up with A (a referral), or a charge.
for c in "${CASES[@]}"; do
        read -r name topic _ <<<"$c"
        if [ "$topic" = "$SU" ]; then
                printf '%s\t{"event_id":"ok-%s","occurred_at":%s,"user_id":"%s","referral_code":"%s"}\n' \
                        "$name" "$name" "$NOW" "$name" "$A"
        fi
done | kcat_produce_keyed "$SU"
for c in "${CASES[@]}"; do
        read -r name topic _ <<<"$c"
        if [ "$topic" = "$PAY" ]; then
                printf '%s\t{"event_id":"ok-%s","occurred_at":%s,"user_id":"%s","payment_id":"p-%s","amount_minor":100,"currency":"USD","kind":"CHARGE"}\n' \
                        "$name" "$name" "$NOW" "$name" "$name"
        fi
done | kcat_produce_keyed "$PAY"
NSU_OK=$(printf '%s\n' "${CASES[@]}" | grep -c " $SU ")
NPAY_OK=$(printf '%s\n' "${CASES[@]}" | grep -c " $PAY ")
NIN=$((NBAD + NSU_OK + NPAY_OK))

start_consumer
wait_metric 'refstream_events_total{' "$NIN" 30
wait_sql "SELECT count(*) FROM rs_outbox_state WHERE published_at IS NULL" 0 30

# Consumption continued: every valid event behind a malformed one was applied.
expect_eq "$(metric_sum 'refstream_events_total{type="signup",outcome="applied"}')" $NSU_OK \
        "sign-ups applied"
expect_eq "$(metric_sum 'refstream_events_total{type="payment",outcome="applied"}')" $NPAY_OK \
        "payments applied"
expect_eq "$(psql_q "SELECT count(*) FROM rs_referrals WHERE referrer_user_id = 'alice'")" $NSU_OK \
        "referrals from the valid sign-ups"
expect_eq "$(psql_q "SELECT count(*) FROM rs_first_charges")" $NPAY_OK "charges remembered"

# Each malformed record is on the DLQ once, with its key, its bytes unchanged,
# the right error class, a message, and the topic/partition/offset it came from.
expect_eq "$(topic_count "$REFSTREAM_TOPIC_DLQ")" "$NBAD" "records on the DLQ topic"
dlq=$(records "$REFSTREAM_TOPIC_DLQ")
for c in "${CASES[@]}"; do
        read -r name topic class <<<"$c"
        src=$(records "$topic" | jq -sc "map(select(.key == \"$name\")) | min_by(.offset)")
        rec=$(jq -c "select(.key == \"$name\")" <<<"$dlq")
        [ "$(jq -s length <<<"$rec")" = 1 ] || fail "$name: one DLQ record expected, got [$rec]"
        h() { jq -r ".headers.\"$1\" // \"\"" <<<"$rec"; }
        expect_eq "$(h error_class)" "$class" "$name: error_class"
        [ -n "$(h error_message)" ] || fail "$name: empty error_message"
        expect_eq "$(h source_topic)" "$topic" "$name: source_topic"
        expect_eq "$(h source_partition)" "$(jq -r .partition <<<"$src")" "$name: source_partition"
        expect_eq "$(h source_offset)" "$(jq -r .offset <<<"$src")" "$name: source_offset"
        [ -n "$(h event_type)" ] || fail "$name: no event_type header"
        expect_eq "$(record_hex "$REFSTREAM_TOPIC_DLQ" "$(jq -r .partition <<<"$rec")" \
                "$(jq -r .offset <<<"$rec")")" "$(od -An -v -tx1 "$RS_TMP/$name" | tr -d ' \n')" \
                "$name: bytes"
        log "$name: $(h error_class): $(h error_message)"
done
rec=$(jq -c 'select(.key == null)' <<<"$dlq")
expect_eq "$(jq -c '[.headers.error_class, .headers.source_topic]' <<<"$rec")" \
        "[\"bad_framing\",\"$SU\"]" "no-key: DLQ record without a key"
expect_eq "$(record_hex "$REFSTREAM_TOPIC_DLQ" "$(jq -r .partition <<<"$rec")" \
        "$(jq -r .offset <<<"$rec")")" "$(od -An -v -tx1 "$RS_TMP/no-key" | tr -d ' \n')" \
        "no-key: bytes"
expect_eq "$(psql_q "SELECT count(*) FROM rs_outbox WHERE destination = 'dlq'")" "$NBAD" \
        "dlq outbox rows"
stop_consumer

# Replay: a new group reads both topics from the beginning. Every record is
# seen again (the metric counts them as duplicates), nothing is dead-lettered
# or applied a second time.
start_consumer replay --group-id "$REFSTREAM_GROUP_ID-replay"
wait_metric 'refstream_events_total{' "$NIN" 30
expect_eq "$(metric_sum 'refstream_events_total{type="signup",outcome="duplicate"}')" \
        "$(topic_count "$SU")" "sign-ups seen again as duplicates"
expect_eq "$(metric_sum 'refstream_events_total{type="payment",outcome="duplicate"}')" \
        "$(topic_count "$PAY")" "payments seen again as duplicates"
expect_eq "$(psql_q "SELECT count(*) FROM rs_outbox WHERE destination = 'dlq'")" "$NBAD" \
        "dlq outbox rows after the replay"
# The inbox: a row per dead letter, and one per valid event (each needs one:
# a sign-up with a code, a charge of a user who has not signed up), nothing
# more. (A dead letter's key is made from where it was read and a digest of
# its bytes, so the dead letters are counted as the rows that are not the
# valid events'.)
valid_keys=$(for c in "${CASES[@]}"; do
        read -r name topic _ <<<"$c"
        kind=payment
        [ "$topic" = "$SU" ] && kind=signup
        printf "rs_inbox_key('%s', 'ok-%s')," "$kind" "$name"
done)
expect_eq "$(psql_q "SELECT count(*) FROM rs_inbox WHERE key IN (${valid_keys%,})")" \
        $((NSU_OK + NPAY_OK)) "inbox rows of the valid events after the replay"
expect_eq "$(psql_q "SELECT count(*) FROM rs_inbox WHERE key NOT IN (${valid_keys%,})")" "$NBAD" \
        "dead letters' inbox rows after the replay"
expect_eq "$(topic_count "$REFSTREAM_TOPIC_DLQ")" "$NBAD" "DLQ records after the replay"
expect_eq "$(psql_q "SELECT count(*) FROM rs_referrals")" $NSU_OK "referrals after the replay"
stop_consumer

# refstream publish checks each line before publishing: bad lines are
# reported by number and not sent, the good ones are, and it exits 1; a bad
# flag value exits 2 naming the flag.
before=$(topic_count "$SU")
rc=0
out=$(printf '%s\n' "{\"event_id\":\"pub-1\",\"occurred_at\":$NOW,\"user_id\":\"pub\"}" 'not json' \
        '{"event_id":"pub-2","occurred_at":1}' | rs publish signup --format json 2>&1) || rc=$?
expect_eq "$rc" 1 "exit status of publish with invalid lines"
[[ "$out" == *"line 2: bad_framing"* && "$out" == *"line 3: missing_field"* ]] ||
        fail "publish does not name the invalid lines: $out"
expect_eq "$(topic_count "$SU")" $((before + 1)) "records published from the valid line"
rc=0
out=$(rs publish payment --user u --payment-id p --amount -5 --currency USD 2>&1) || rc=$?
expect_eq "$rc" 2 "exit status of publish with a negative amount"
[[ "$out" == *"--amount"* ]] || fail "publish does not name --amount: $out"
pass
