#!/usr/bin/env bash
# The README's newcomer path: a program and a code from the CLI, a sign-up and
# a payment published as JSON with kcat, the ReferralCredited events read back
# with kcat (and decoded by `refstream decode`). Also the same with Avro from
# `refstream publish`.
. "$(dirname "$0")/lib.sh"
setup

rs admin program create --key spring --name "Spring 2026" --currency USD \
        --reward-fixed 500 --referee-reward 250 --min-payment 1000 >/dev/null
CODE=$(rs admin codes issue --program spring --user alice)
[[ "$CODE" =~ ^[0-9A-HJKMNP-TV-Z]{8}$ ]] || fail "issued code [$CODE] is not 8 Crockford chars"

now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
echo "{\"event_id\":\"su-bob\",\"occurred_at\":\"$now\",\"user_id\":\"bob\",\"referral_code\":\" ${CODE,,} \"}" |
        kcat_produce "$REFSTREAM_TOPIC_SIGNUPS" bob
echo "{\"event_id\":\"pay-bob\",\"occurred_at\":\"$now\",\"user_id\":\"bob\",\"payment_id\":\"p1\",\"amount_minor\":1999,\"currency\":\"USD\",\"kind\":\"CHARGE\"}" |
        kcat_produce "$REFSTREAM_TOPIC_PAYMENTS" bob
# Avro, from the binary: carol, the same code.
rs publish signup --user carol --code "$CODE" --event-id su-carol >/dev/null 2>&1
rs publish payment --user carol --payment-id p2 --amount 5000 --currency USD \
        --event-id pay-carol >/dev/null 2>&1

start_consumer
wait_sql "SELECT count(*) FROM rs_outbox_state WHERE published_at IS NOT NULL" 4

# kcat sees four credits keyed by beneficiary, Confluent-framed (magic 0x00,
# schema id 3), with the documented headers.
expect_eq "$(topic_count "$REFSTREAM_TOPIC_CREDITED")" 4 "records on the credited topic"
keys=$(kcat -b "$BROKERS" -C -t "$REFSTREAM_TOPIC_CREDITED" -o beginning -e -q -f '%k\n' | sort | tr '\n' ' ')
expect_eq "$keys" "alice alice bob carol " "record keys"
magic=$(kcat -b "$BROKERS" -C -t "$REFSTREAM_TOPIC_CREDITED" -o beginning -c 1 -e -q -f '%s' |
        head -c 5 | od -An -tx1 | tr -d ' \n')
expect_eq "$magic" 0000000003 "framing of the first record"
# The source is the payment, or the sign-up when the payment came first.
headers_of "$REFSTREAM_TOPIC_CREDITED" | while read -r hdr; do
        for h in event_type=ReferralCredited source_topic=t-quickstart- source_partition= source_offset=; do
                [[ "$hdr" == *"$h"* ]] || fail "header $h missing in [$hdr]"
        done
done

decoded=$(decode_all "$REFSTREAM_TOPIC_CREDITED")
bob_referrer=$(echo "$decoded" | jq -c 'select(.referee_user_id == "bob" and .role == "REFERRER")')
expect_eq "$(echo "$bob_referrer" | jq -r .amount_minor)" 500 "referrer reward"
expect_eq "$(echo "$bob_referrer" | jq -r .beneficiary_user_id)" alice "beneficiary"
expect_eq "$(echo "$bob_referrer" | jq -r .code)" "$CODE" "code"
expect_eq "$(echo "$bob_referrer" | jq -r .source_event_id)" pay-bob "source event"
expect_eq "$(echo "$decoded" | jq -r 'select(.role == "REFEREE") | .amount_minor' | sort -u)" 250 \
        "referee reward"
expect_eq "$(echo "$decoded" | jq -r .credit_id | sort -u | wc -l)" 4 "distinct credit ids"
counts=$(echo "$decoded" | jq -r 'select(.role == "REFERRER") | .referrer_rewarded_count' | sort | tr '\n' ' ')
expect_eq "$counts" "1 2 " "referrer_rewarded_count of alice's two credits"

stop_consumer
pass
