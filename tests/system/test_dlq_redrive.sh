#!/usr/bin/env bash
# docs/commands.md §4, `refstream admin dlq`: a sign-up framed with a schema
# id the registry (tests/tools/schema_registry.py) does not know yet is
# dead-lettered (unknown_schema), beside a record that is bad for good
# (bad_framing). `admin dlq list` shows both (text and --json, bytes
# unchanged). The operator registers the schema, restarts the consumer and
# redrives: both go back to their source partition with the header
# refstream_redriven_from; the sign-up now has its effect (a referral), once;
# the bad one is dead-lettered again, as a new dead letter; a second redrive
# sends nothing.
. "$(dirname "$0")/lib.sh"
setup

TOOLS=$RS_SOURCE_DIR/tests/tools
python3 "$TOOLS/schema_registry.py" --first-id 500 --port-file "$RS_TMP/reg.port" \
        --control-port-file "$RS_TMP/reg.control" 2>"$RS_TMP/registry.log" &
RS_PIDS+=("$!")
wait_until 10 "the test registry" test -s "$RS_TMP/reg.control"
REG="http://127.0.0.1:$(cat "$RS_TMP/reg.port")"
export REFSTREAM_SCHEMA_REGISTRY_URL=$REG
SU=$REFSTREAM_TOPIC_SIGNUPS
DLQ=$REFSTREAM_TOPIC_DLQ

rs admin program create --key main --name Main --currency USD --reward-fixed 500 >/dev/null
A=$(rs admin codes issue --program main --user alice)
NOW=$(date +%s%3N)

start_consumer
# The consumer registered its output schemas; the registry gives the next
# schema registered the next id.
max_id() {
        local s id max=0
        for s in $(curl -fsS "$REG/subjects" | jq -r '.[]'); do
                id=$(curl -fsS "$REG/subjects/$s/versions/latest" | jq -r .id)
                ((id > max)) && max=$id
        done
        echo "$max"
}
NEXT=$(($(max_id) + 1))
[ "$NEXT" -gt 500 ] || fail "no schema registered by the consumer (next id $NEXT)"

# A team's new writer schema, not registered yet, and a sign-up with alice's
# code written with it (Avro, framed with the id it will get).
cat >"$RS_TMP/signup-new.avsc" <<'EOF'
{"type": "record", "name": "SignupEvent", "namespace": "com.acme.onboarding", "fields": [
  {"name": "event_id", "type": "string"},
  {"name": "occurred_at", "type": "long"},
  {"name": "user_id", "type": "string"},
  {"name": "referral_code", "type": ["null", "string"], "default": null}]}
EOF
perl -e '
        sub varint { my $z = shift; my $s = ""; while ($z >= 0x80) { $s .= chr(($z & 0x7f) | 0x80); $z >>= 7 } $s . chr($z) }
        sub str { varint(2 * length($_[0])) . $_[0] }
        my ($id, $now, $code) = @ARGV;
        binmode STDOUT;
        print "\x00", pack("N", $id), str("e-newbie"), varint(2 * $now), str("newbie"), varint(2), str($code);
' "$NEXT" "$NOW" "$A" >"$RS_TMP/newbie"
kcat_produce_file "$SU" newbie "$RS_TMP/newbie"
printf '\xff\xfegarbage' >"$RS_TMP/junk"
kcat_produce_file "$SU" junk "$RS_TMP/junk"

wait_until 60 "two dead letters" sql_is "SELECT count(*) FROM rs_outbox_state WHERE destination = 'dlq'
        AND published_at IS NOT NULL" 2
expect_eq "$(topic_count "$DLQ")" 2 "dead letters on the DLQ topic"
expect_eq "$(psql_q "SELECT count(*) FROM rs_users WHERE user_id = 'newbie'")" 0 \
        "newbie signed up before the fix"
stop_consumer

# list: text and JSON, the same dead letters.
src=$(records "$SU")
src_of() { jq -c "select(.key == \"$1\")" <<<"$src"; }
NB_PART=$(src_of newbie | jq -r .partition)
NB_OFF=$(src_of newbie | jq -r .offset)
out=$(rs admin dlq list)
log "list:"$'\n'"$out"
[[ "$out" == *"from $SU/$NB_PART/$NB_OFF  unknown_schema"* ]] || fail "list does not show newbie: $out"
[[ "$out" == *"bad_framing"* && "$out" == *'key: "junk"  9 bytes: "\xff\xfegarbage"'* ]] ||
        fail "list does not show junk: $out"
[[ "$out" == *"2 dead letters"* ]] || fail "list does not count 2: $out"
json=$(rs admin dlq list --json)
expect_eq "$(jq length <<<"$json")" 2 "dead letters listed as JSON"
nb=$(jq -c '.[] | select(.key == "newbie")' <<<"$json")
expect_eq "$(jq -r '[.source_topic, .source_partition, .source_offset, .error_class, .redriven] | @tsv' <<<"$nb")" \
        "$SU"$'\t'"$NB_PART"$'\t'"$NB_OFF"$'\tunknown_schema\t' "newbie's dead letter"
expect_eq "$(jq -r .value_hex <<<"$nb")" "$(od -An -v -tx1 "$RS_TMP/newbie" | tr -d ' \n')" \
        "newbie's bytes"
expect_eq "$(rs admin dlq list --class bad_framing --json | jq -r '.[].key')" junk "--class"
expect_eq "$(rs admin dlq list --topic nowhere --json | jq length)" 0 "--topic"
expect_eq "$(rs admin dlq list --limit 1 --json | jq length)" 1 "--limit"
rc=0
rs admin dlq list --class nope >/dev/null 2>"$RS_TMP/usage.err" || rc=$?
expect_eq "$rc" 2 "exit status of an unknown --class"
grep -q -- "--class" "$RS_TMP/usage.err" || fail "the usage error does not name --class"

# A dry run sends nothing.
out=$(rs admin dlq redrive --dry-run)
[[ "$out" == *"2 selected: 2 would be sent"* ]] || fail "dry run: $out"
expect_eq "$(topic_count "$SU")" 2 "records on $SU after the dry run"

# The fix: the schema is registered (it gets the id the record carries).
got=$(curl -fsS -X POST -H 'Content-Type: application/vnd.schemaregistry.v1+json' \
        --data "$(jq -n --rawfile s "$RS_TMP/signup-new.avsc" '{schema: $s}')" \
        "$REG/subjects/$SU-value/versions" | jq -r .id)
expect_eq "$got" "$NEXT" "the id the new schema got"

out=$(rs admin dlq redrive)
log "redrive:"$'\n'"$out"
[[ "$out" == *"2 selected: 2 sent, 0 already redriven, 0 skipped"* ]] || fail "redrive: $out"
expect_eq "$(topic_count "$SU")" 4 "records on $SU after the redrive"
# Each copy: in its source partition, same key and bytes, the header naming
# its dead letter.
dl=$(records "$DLQ")
for name in newbie junk; do
        orig=$(src_of "$name")
        d=$(jq -c "select(.key == \"$name\")" <<<"$dl")
        copy=$(records "$SU" | jq -c "select(.key == \"$name\" and .offset != $(jq .offset <<<"$orig"))")
        expect_eq "$(jq -r .partition <<<"$copy")" "$(jq -r .partition <<<"$orig")" "$name: partition"
        expect_eq "$(jq -r '.headers.refstream_redriven_from' <<<"$copy")" \
                "$DLQ/$(jq -r .partition <<<"$d")/$(jq -r .offset <<<"$d")" "$name: header"
        expect_eq "$(record_hex "$SU" "$(jq -r .partition <<<"$copy")" "$(jq -r .offset <<<"$copy")")" \
                "$(od -An -v -tx1 "$RS_TMP/$name" | tr -d ' \n')" "$name: bytes"
done
JUNK_COPY=$(records "$SU" | jq -c 'select(.key == "junk" and .headers.refstream_redriven_from != null)')

# The consumer, restarted after the fix, gives the sign-up its effect; the
# junk is dead-lettered again, as a new dead letter naming the copy.
start_consumer after
wait_sql "SELECT count(*) FROM rs_referrals WHERE referee_user_id = 'newbie'
        AND referrer_user_id = 'alice'" 1
wait_until 60 "the junk's new dead letter" sql_is "SELECT count(*) FROM rs_outbox_state
        WHERE destination = 'dlq' AND published_at IS NOT NULL" 3
stop_consumer
new=$(records "$DLQ" | jq -c "select(.key == \"junk\" and .headers.source_offset == \"$(jq -r .offset <<<"$JUNK_COPY")\")")
expect_eq "$(jq -r '[.headers.error_class, .headers.source_partition] | @tsv' <<<"$new")" \
        "bad_framing"$'\t'"$(jq -r .partition <<<"$JUNK_COPY")" "the junk's new dead letter"
expect_eq "$(psql_q "SELECT signup_event_id FROM rs_users WHERE user_id = 'newbie'")" e-newbie \
        "newbie's sign-up"

# A second redrive sends nothing of what was sent; the new dead letter is
# new (a dry run says it would go).
out=$(rs admin dlq redrive --class unknown_schema)
[[ "$out" == *"1 selected: 0 sent, 1 already redriven, 0 skipped"* ]] || fail "second redrive: $out"
out=$(rs admin dlq redrive --dry-run)
[[ "$out" == *"3 selected: 1 would be sent, 2 already redriven"* ]] || fail "dry run after: $out"
expect_eq "$(topic_count "$SU")" 4 "records on $SU after the second redrive"
expect_eq "$(rs admin dlq list --json | jq -c 'map(.redriven) | group_by(.) | map([.[0], length])')" \
        '[[null,1],["sent",2]]' "dead letters listed as redriven"
expect_eq "$(psql_q "SELECT count(*) FROM rs_referrals")" 1 "referrals"
pass
