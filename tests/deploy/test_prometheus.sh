#!/usr/bin/env bash
# A real Prometheus (Debian's package) scraping a running `refstream consume`
# with deploy/alerts/refstream.rules.yml loaded, as the ServiceMonitor and
# the PrometheusRule of the production overlay have it, all on loopback:
#   - the consumer runs with group.instance.id = a pod name, as the
#     StatefulSet overlay sets it (static membership through the librdkafka
#     pass-through), and becomes ready;
#   - a sign-up and a payment are processed, and Prometheus's HTTP API
#     answers refstream_events_total with them;
#   - every metric the alerts, the dashboard and the ScaledObject use
#     (METRICS_FILE, from check_manifests.py) is among the scraped ones;
#   - every dashboard query and the ScaledObject's query run without error,
#     the alert rules evaluate without error, and none fires for a healthy
#     consumer.
# Needs RS_BIN, RS_STACK_ENV (tests/system/lib.sh, whose helpers it uses),
# METRICS_FILE, RS_RENDERED (the rendered production overlay) and PY (a
# Python with PyYAML: scripts/pyenv.sh).
. "$(dirname "$0")/../system/lib.sh"
: "${METRICS_FILE:?}" "${RS_RENDERED:?}" "${PY:?the Python of scripts/pyenv.sh}"
REPO=$(cd "$(dirname "$0")/../.." && pwd -P)

setup
rs admin program create --key prom --name "Prom" --currency USD --reward-fixed 500 \
        --min-payment 1000 >/dev/null
CODE=$(rs admin codes issue --program prom --user alice)

# ---- The consumer, a member of its group under a static instance id.
export REFSTREAM_RDKAFKA_GROUP_INSTANCE_ID=refstream-0
start_consumer consumer
wait_http /readyz 200 60
grep -q 'effective configuration.* rdkafka.group.instance.id=refstream-0' "$RS_TMP/consumer.log" ||
        fail "group.instance.id is not in the effective configuration"

# ---- Prometheus: scrapes it every second, the alert rules loaded.
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PROM_PORT=$(free_port)
cat >"$RS_TMP/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $REPO/deploy/alerts/refstream.rules.yml
scrape_configs:
  - job_name: refstream-metrics
    static_configs:
      - targets: ["127.0.0.1:$HTTP_PORT"]
        labels: {namespace: refstream, pod: refstream-0}
EOF
promtool check config "$RS_TMP/prometheus.yml" >/dev/null || fail "promtool check config"
prometheus --config.file="$RS_TMP/prometheus.yml" --storage.tsdb.path="$RS_TMP/tsdb" \
        --web.listen-address="127.0.0.1:$PROM_PORT" >"$RS_TMP/prometheus.log" 2>&1 &
RS_PIDS+=("$!")
PROM_PID=$!
log "prometheus pid $PROM_PID on 127.0.0.1:$PROM_PORT"

prom() { # PATH [curl args]: Prometheus's JSON answer
        local path=$1
        shift
        curl -fsS "http://127.0.0.1:$PROM_PORT$path" "$@"
}
query() { prom /api/v1/query --data-urlencode "query=$1"; }
scalar() { # QUERY: the single value of an instant query ("" when none)
        query "$1" | jq -r 'if .status == "success" then (.data.result[0].value[1] // "") else error(.error) end'
}
value_is() { # QUERY WANT
        LAST=$(scalar "$1" 2>/dev/null || true)
        [ "$LAST" = "$2" ]
}
prom_ready() { prom /-/ready >/dev/null 2>&1; }
wait_until 30 "Prometheus to be ready" prom_ready
wait_until 30 "Prometheus to scrape refstream" value_is 'up{job="refstream-metrics"}' 1

# ---- A sign-up with the code and the referee's first charge.
NOW=$(date +%s%3N)
printf '%s\n' "{\"event_id\":\"s-bob\",\"occurred_at\":$NOW,\"user_id\":\"bob\",\"referral_code\":\"$CODE\"}" |
        kcat_produce "$REFSTREAM_TOPIC_SIGNUPS" bob
printf '%s\n' "{\"event_id\":\"p-bob\",\"occurred_at\":$((NOW + 1000)),\"user_id\":\"bob\",\"payment_id\":\"pay-bob\",\"amount_minor\":1999,\"currency\":\"USD\",\"kind\":\"CHARGE\"}" |
        kcat_produce "$REFSTREAM_TOPIC_PAYMENTS" bob
wait_sql "SELECT count(*) FROM rs_credits" 1 60

# refstream_events_total through Prometheus's HTTP API.
wait_until 30 "refstream_events_total in Prometheus" value_is 'sum(refstream_events_total)' 2
expect_eq "$(scalar 'refstream_events_total{type="signup",outcome="applied"}')" 1 "sign-ups applied (Prometheus)"
expect_eq "$(scalar 'refstream_events_total{type="payment",outcome="applied"}')" 1 "payments applied (Prometheus)"
expect_eq "$(scalar 'refstream_credits_issued_total{role="referrer"}')" 1 "referrer credits (Prometheus)"
expect_eq "$(scalar 'refstream_ready{namespace="refstream",pod="refstream-0"}')" 1 "refstream_ready (Prometheus)"
log "refstream_events_total: 1 sign-up and 1 payment applied, as scraped"

# ---- Every metric name of the alerts, the dashboard and the ScaledObject exists.
names=$(prom /api/v1/label/__name__/values | jq -r '.data[]')
missing=$(comm -23 <(sort -u "$METRICS_FILE") <(sort -u <<<"$names"))
[ -z "$missing" ] || fail "metrics used by deploy/ but not exposed by refstream: ${missing//$'\n'/ }"
[ "$(wc -l <"$METRICS_FILE")" -ge 10 ] || fail "too few metric names in $METRICS_FILE"
log "all $(wc -l <"$METRICS_FILE") metric names used by deploy/ are scraped"

# ---- The dashboard's queries (with Grafana's variables filled in) and KEDA's.
n=0
while IFS= read -r expr; do
        expr=${expr//\$__rate_interval/1m}
        expr=${expr//\$namespace/.*}
        status=$(query "$expr" | jq -r '.status + " " + (.error // "")') || status="request failed"
        [ "$status" = "success " ] || fail "dashboard query [$expr]: $status"
        n=$((n + 1))
done < <(jq -r '.panels[].targets[].expr' "$REPO/deploy/grafana/refstream-dashboard.json")
[ "$n" -ge 7 ] || fail "only $n dashboard queries"
rate=$(scalar "$(jq -r '.panels[] | select(.title == "Throughput by outcome") | .targets[0].expr' \
        "$REPO/deploy/grafana/refstream-dashboard.json" | sed -e 's/\$__rate_interval/5m/' -e 's/\$namespace/refstream/')" ||
        true)
[ -n "$rate" ] || fail "the throughput panel shows nothing after traffic"
keda=$("$PY" -c '
import sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d and d["kind"] == "ScaledObject":
        print(d["spec"]["triggers"][0]["metadata"]["query"])' "$RS_RENDERED")
lag=$(scalar "$keda") || fail "the ScaledObject's query [$keda] failed"
[[ $lag =~ ^[0-9]+$ ]] || fail "the ScaledObject's query [$keda] gave [$lag], not a record count"
log "$n dashboard queries run; KEDA's query gives lag $lag"

# ---- The alert rules: loaded, evaluated without error, none firing.
rules_ok() {
        LAST=$(prom /api/v1/rules | jq -r '[.data.groups[].rules[] | select(.type == "alerting")] |
                "\(length) \([.[] | select(.health == "ok" and .lastEvaluation != "0001-01-01T00:00:00Z")] | length)"')
        [ "$LAST" = "7 7" ]
}
wait_until 30 "the 7 alert rules to be evaluated healthy" rules_ok
firing=$(prom /api/v1/alerts | jq -r '[.data.alerts[] | select(.state == "firing") | .labels.alertname] | join(",")')
[ -z "$firing" ] || fail "alerts firing for a healthy consumer: $firing"

stop_consumer
kill -TERM "$PROM_PID"
wait "$PROM_PID" || true
pass
