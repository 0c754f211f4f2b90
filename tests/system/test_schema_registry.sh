#!/usr/bin/env bash
# docs/events.md §2, Schema Registry: refstream among teams that produce and
# consume Avro through a registry (tests/tools/schema_registry.py, with basic
# auth) and confluent-kafka's stock serializers (tests/tools/avro_client.py).
#   - the registry's ids do not coincide with the manifest's;
#   - writers with a field refstream does not know, without fields that have
#     reader defaults, PaymentEvent version 1 and version 2 are all read;
#   - an unresolvable writer is wrong_schema, an unknown id unknown_schema;
#   - `refstream publish` frames with the registry's id of "<topic>-value";
#   - the output is registered and decoded by the stock deserializer;
#   - each schema id is fetched once; a registry outage (refused connections,
#     500, no answer) only delays: nothing is dead-lettered because of it,
#     everything is processed once;
#   - the password is never logged; a registry that refuses refstream's
#     output schema stops start-up with exit 2 and the registry's message.
. "$(dirname "$0")/lib.sh"
setup

PY=$("$RS_SOURCE_DIR/scripts/pyenv.sh")
TOOLS=$RS_SOURCE_DIR/tests/tools
AUTH="team:pw-$RUN_ID-secret"
"$PY" "$TOOLS/schema_registry.py" --basic-auth "$AUTH" --port-file "$RS_TMP/reg.port" \
        --control-port-file "$RS_TMP/reg.control" 2>"$RS_TMP/registry.log" &
RS_PIDS+=("$!")
wait_until 10 "the test registry" test -s "$RS_TMP/reg.control"
REG="http://127.0.0.1:$(cat "$RS_TMP/reg.port")"
CONTROL="http://127.0.0.1:$(cat "$RS_TMP/reg.control")"
export REFSTREAM_SCHEMA_REGISTRY_URL=$REG REFSTREAM_SCHEMA_REGISTRY_BASIC_AUTH=$AUTH
export REFSTREAM_SCHEMA_REGISTRY_TIMEOUT_MS=1000 # the "hang" outage below
SU=$REFSTREAM_TOPIC_SIGNUPS
PAY=$REFSTREAM_TOPIC_PAYMENTS

reg() { # METHOD PATH [JSON]: the registry's API, with the credentials
        curl -sS -u "$AUTH" -X "$1" -H 'Content-Type: application/vnd.schemaregistry.v1+json' \
                ${3:+--data "$3"} "$REG$2"
}
register() { # SUBJECT SCHEMA_FILE: prints the id
        reg POST "/subjects/$1/versions" "$(jq -n --rawfile s "$2" '{schema: $s}')" | jq -r .id
}
mode() { curl -sS -X POST --data "{\"mode\":\"$1\"}" "$CONTROL/mode" >/dev/null; }
fetches() { # ID: how often refstream asked the registry for it
        curl -sS "$CONTROL/stats" | jq -r ".schema_ids.\"$1\" // 0"
}
avro() { "$PY" "$TOOLS/avro_client.py" "$@" --registry "$REG" --auth "$AUTH"; }
# send NAME TOPIC SCHEMA < JSON lines: serialized by the stock serializer into
# $RS_TMP/NAME/, then produced one record per file, keyed by user_id.
send() {
        local f id
        id=$(avro serialize --topic "$2" --schema "$3" --out "$RS_TMP/$1")
        for f in "$RS_TMP/$1"/*; do
                kcat_produce_file "$2" "$(avro_user "$f")" "$f"
        done
        echo "$id"
}
avro_user() { basename "$1"; } # the files are named by index: keys need only differ

# Other subjects first: the registry's ids 1-6 are not refstream's schemas.
for i in 1 2 3 4 5 6; do
        printf '{"type":"record","name":"Other%s","fields":[{"name":"f","type":"string"}]}' "$i" \
                >"$RS_TMP/other$i.avsc"
        register "other-$i-value" "$RS_TMP/other$i.avsc" >/dev/null
done

# Several teams write to the input topics, with schemas of their own: the
# subjects do not enforce compatibility between them (refstream resolves each
# writer against its reader schema).
for t in "$SU" "$PAY"; do
        reg PUT "/config/$t-value" '{"compatibility": "NONE"}' >/dev/null
done

# The teams' writer schemas.
cat >"$RS_TMP/signup-extra.avsc" <<'EOF'
{"type": "record", "name": "SignupEvent", "namespace": "com.acme.growth", "fields": [
  {"name": "user_id", "type": "string"},
  {"name": "utm", "type": {"type": "record", "name": "Utm", "fields": [
     {"name": "source", "type": "string"}, {"name": "tags", "type": {"type": "array", "items": "string"}}]}},
  {"name": "event_id", "type": "string"},
  {"name": "occurred_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
  {"name": "referral_code", "type": ["null", "string"], "default": null},
  {"name": "email_hash", "type": ["null", "string"], "default": null},
  {"name": "score", "type": "double", "default": 0}]}
EOF
cat >"$RS_TMP/signup-min.avsc" <<'EOF'
{"type": "record", "name": "SignupEvent", "namespace": "com.acme.legacy", "fields": [
  {"name": "event_id", "type": "string"},
  {"name": "occurred_at", "type": "long"},
  {"name": "user_id", "type": "string"}]}
EOF
jq '.fields |= map(if .name == "amount_minor" then .type = "double" else . end)' \
        "$RS_SOURCE_DIR/schemas/history/PaymentEvent.v1.avsc" >"$RS_TMP/payment-double.avsc"

rs admin program create --key main --name Main --currency USD --reward-fixed 500 >/dev/null
A=$(rs admin codes issue --program main --user alice)
NOW=$(date +%s%3N)

# `refstream publish` registers SignupEvent under "<topic>-value" and frames
# with that id.
rs publish signup --user alice --event-id e-alice >/dev/null
SU_ID=$(reg GET "/subjects/$SU-value/versions/latest" | jq -r .id)
[ "$SU_ID" -gt 6 ] || fail "SignupEvent's id $SU_ID"
expect_eq "$(kcat_consume -t "$SU" -o beginning -e -q -f '%s' | head -c 5 | od -An -tx1 | tr -d ' ')" \
        "$(printf '00%08x' "$SU_ID")" "framing of refstream publish"

EXTRA_ID=$(send extra "$SU" "$RS_TMP/signup-extra.avsc" <<EOF
{"user_id": "bob", "utm": {"source": "ads", "tags": ["a", "b"]}, "event_id": "e-bob", "occurred_at": $NOW, "referral_code": "$A", "email_hash": null, "score": 1.5}
{"user_id": "carol", "utm": {"source": "mail", "tags": []}, "event_id": "e-carol", "occurred_at": $NOW, "referral_code": "$A", "email_hash": "h-carol", "score": 2.5}
EOF
)
MIN_ID=$(send min "$SU" "$RS_TMP/signup-min.avsc" <<EOF
{"event_id": "e-dave", "occurred_at": $NOW, "user_id": "dave"}
EOF
)
V1_ID=$(send v1 "$PAY" "$RS_SOURCE_DIR/schemas/history/PaymentEvent.v1.avsc" <<EOF
{"event_id": "p-bob", "occurred_at": $((NOW + 1000)), "user_id": "bob", "payment_id": "pay-bob", "amount_minor": 1000, "currency": "USD", "kind": "CHARGE", "refund_of": null}
EOF
)
V2_ID=$(send v2 "$PAY" "$RS_SOURCE_DIR/schemas/PaymentEvent.avsc" <<EOF
{"event_id": "p-carol", "occurred_at": $((NOW + 1000)), "user_id": "carol", "payment_id": "pay-carol", "amount_minor": 1000, "currency": "USD", "kind": "CHARGE", "refund_of": null, "payment_fingerprint": "card-carol"}
EOF
)
BAD_ID=$(send double "$PAY" "$RS_TMP/payment-double.avsc" <<EOF
{"event_id": "p-dbl", "occurred_at": $NOW, "user_id": "erin", "payment_id": "pay-dbl", "amount_minor": 10.5, "currency": "USD", "kind": "CHARGE", "refund_of": null}
EOF
)
printf '\x00\x00\x01\x86\x9f\x02\x04abcd' >"$RS_TMP/unknown-id" # id 99999
kcat_produce_file "$SU" unknown "$RS_TMP/unknown-id"
log "ids: signup $SU_ID, extra $EXTRA_ID, min $MIN_ID, v1 $V1_ID, v2 $V2_ID, double $BAD_ID"
for id in "$EXTRA_ID" "$MIN_ID" "$V1_ID" "$V2_ID" "$BAD_ID"; do
        [ "$id" -gt 6 ] || fail "schema id $id coincides with the manifest's"
done
NIN=8

start_consumer
wait_metric 'refstream_events_total{' "$NIN" 60
wait_sql "SELECT count(*) FROM rs_outbox_state WHERE published_at IS NULL" 0 30
# (In an aggregate, ORDER BY 1 sorts by the constant 1: the rows' order is
# named explicitly.)
expect_eq "$(psql_q "SELECT string_agg(referee_user_id || ':' || status, ',' ORDER BY referee_user_id)
        FROM rs_referrals")" "bob:credited,carol:credited" "referrals"
expect_eq "$(psql_q "SELECT string_agg(user_id, ',' ORDER BY user_id) FROM rs_users
        WHERE signup_event_id IS NOT NULL")" "alice,bob,carol,dave" "sign-ups"
expect_eq "$(psql_q "SELECT email_hash FROM rs_users WHERE user_id = 'carol'")" "h-carol" \
        "carol's e-mail hash"
expect_eq "$(psql_q "SELECT user_id || ':' || fingerprint FROM rs_payment_fingerprints")" \
        "carol:card-carol" "fingerprints remembered (version 2 only)"

# Dead letters: only the unresolvable writer and the unknown id.
dlq=$(records "$REFSTREAM_TOPIC_DLQ")
expect_eq "$(jq -sc 'map(.headers.error_class) | sort' <<<"$dlq")" \
        '["unknown_schema","wrong_schema"]' "dead letters"
log "$(jq -r '.headers.error_class + ": " + .headers.error_message' <<<"$dlq")"
grep -q "amount_minor" <<<"$(jq -r 'select(.headers.error_class == "wrong_schema")
        | .headers.error_message' <<<"$dlq")" || fail "wrong_schema does not name amount_minor"

# The output, registered under "<topic>-value", read by the stock deserializer.
CR_ID=$(reg GET "/subjects/$REFSTREAM_TOPIC_CREDITED-value/versions/latest" | jq -r .id)
credits=$(avro consume --brokers "$BROKERS" --topic "$REFSTREAM_TOPIC_CREDITED" --count 2)
expect_eq "$(jq -sc 'map([.beneficiary_user_id, .referee_user_id, .amount_minor, .role,
        ._schema_id == '"$CR_ID"']) | sort' <<<"$credits")" \
        '[["alice","bob",500,"REFERRER",true],["alice","carol",500,"REFERRER",true]]' \
        "credits as the stock deserializer reads them"

# Each id was fetched once (refstream's own ids are registered, not fetched).
for id in "$SU_ID" "$EXTRA_ID" "$MIN_ID" "$V1_ID" "$V2_ID" "$BAD_ID" 99999; do
        expect_eq "$(fetches "$id")" 1 "fetches of schema id $id"
done

# Outages: records of a schema not fetched yet wait while the registry
# refuses connections, answers 500, or does not answer within the timeout;
# then they are processed once, and none is dead-lettered.
ready() { [ "$(http_code /readyz)" = 200 ]; }
n=0
for m in refuse error500 hang; do
        n=$((n + 1))
        jq --arg f "campaign_$m" '.fields += [{"name": $f, "type": "string", "default": "none"}]' \
                "$RS_TMP/signup-min.avsc" >"$RS_TMP/signup-$m.avsc"
        printf '{"event_id": "e-%s-%s", "occurred_at": %s, "user_id": "%s-%s"}\n' \
                "$m" 1 "$NOW" "$m" 1 "$m" 2 "$NOW" "$m" 2 |
                avro serialize --topic "$SU" --schema "$RS_TMP/signup-$m.avsc" --out "$RS_TMP/$m" \
                        >"$RS_TMP/$m.id"
        mode "$m"
        for f in "$RS_TMP/$m"/*; do kcat_produce_file "$SU" "$m-$(basename "$f")" "$f"; done
        wait_until 30 "/readyz to report the registry ($m)" says /readyz "schema registry unavailable"
        expect_eq "$(psql_q "SELECT count(*) FROM rs_users WHERE user_id LIKE '$m-_'")" 0 \
                "sign-ups processed while the registry is down ($m)"
        mode ok
        wait_sql "SELECT count(*) FROM rs_users WHERE user_id LIKE '$m-_'" 2 60
        wait_until 30 "/readyz to be ready again ($m)" ready
        expect_eq "$(topic_count "$REFSTREAM_TOPIC_DLQ")" 2 "dead letters after the outage ($m)"
        log "$m: $(grep "schema registry unavailable" "$RS_TMP/consumer.log" | tail -n1 | tail -c 130)"
done
# Refused connections never reach the registry: one fetch of that id.
expect_eq "$(fetches "$(cat "$RS_TMP/refuse.id")")" 1 "fetches of the new schema id"
expect_eq "$(metric_sum 'refstream_schema_registry_requests_total{outcome="not_found"}')" 1 \
        "registry requests answered 404 (the unknown id)"
[ "$(metric_sum 'refstream_schema_registry_requests_total{outcome="unavailable"}')" -ge 3 ] ||
        fail "unavailable registry requests not counted"
# 2 registered (the output), 6 + n fetched (the unknown id is not a schema)
expect_eq "$(metric_sum 'refstream_schema_registry_cached_schemas')" $((8 + n)) "schemas cached"
stop_consumer
if grep -q "pw-$RUN_ID-secret" "$RS_TMP/consumer.log"; then
        fail "the registry password is in the log"
fi
grep -q 'schema-registry-basic-auth=team:\*\*\* ' "$RS_TMP/consumer.log" ||
        fail "the effective configuration does not show the registry user"

# A registry that refuses refstream's output schema: exit 2, with its message.
T2="t-$RS_TEST-$RUN_ID-credited2"
printf '{"type":"record","name":"ReferralCredited","fields":[{"name":"x","type":"string"}]}' \
        >"$RS_TMP/incompatible.avsc"
register "$T2-value" "$RS_TMP/incompatible.avsc" >/dev/null
rc=0
timeout 60 "$RS_BIN" consume --topic-credited "$T2" >"$RS_TMP/refused.log" 2>&1 || rc=$?
expect_eq "$rc" 2 "exit status when the registry refuses the output schema"
grep -q "incompatible" "$RS_TMP/refused.log" || fail "no registry message: $(tail -3 "$RS_TMP/refused.log")"
log "refused: $(grep -m1 incompatible "$RS_TMP/refused.log")"
log "OK"
