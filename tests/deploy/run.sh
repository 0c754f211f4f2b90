#!/usr/bin/env bash
# The deploy tier: what deploy/ ships, checked without a cluster.
#   1. every overlay of deploy/kubernetes rendered by kustomize (pinned,
#      scripts/kustomize.sh); production refuses to render without the
#      operator's secrets.env
#   2. the renders validated (tests/deploy/check_manifests.py): Kubernetes
#      1.30 and 1.37 schemas, strict (kubernetes-validate); KEDA's and the
#      Prometheus Operator's custom resources against their CRDs (from the
#      Go modules of those projects, pinned, via the Go module proxy); the
#      restricted Pod Security Standard; selectors, names, tags, the Secret
#   3. docker-compose.yml against the Compose Specification schema
#      (tests/deploy/check_compose.py; compose-go's schema, pinned)
#   4. the alert rules: promtool check rules, promtool test rules
#   5. a real Prometheus scraping a running `refstream consume`
#      (tests/deploy/test_prometheus.sh) on a throw-away stack
#      (scripts/stack.sh: Postgres, Redis, Kafka on loopback)
# RS_BIN is the refstream binary for 5 (default build/refstream). Prints one
# line per check and closes with "deploy: N passed, M failed"; exits 1 when
# a check failed or none ran.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD

KEDA=github.com/kedacore/keda/v2@v2.21.0
PROM_OPERATOR=github.com/prometheus-operator/prometheus-operator@v0.85.0
COMPOSE_GO=github.com/compose-spec/compose-go/v2@v2.16.2
export RS_BIN=${RS_BIN:-$REPO/build/refstream}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/rs-deploy.XXXXXX")
STACK=$TMP/stack
cleanup() {
        local rc=$?
        [ ! -d "$STACK" ] || scripts/stack.sh down --dir "$STACK" --purge >/dev/null 2>&1 || true
        rm -rf "$TMP"
        exit "$rc"
}
trap cleanup EXIT

PASSED=0
FAILED=0
# step [-v] NAME COMMAND...: one check; its output is shown when it fails
# (with -v, always).
step() {
        local verbose=false name
        [ "$1" != -v ] || { verbose=true; shift; }
        name=$1
        shift
        if "$@" >"$TMP/step.log" 2>&1; then
                PASSED=$((PASSED + 1))
                ! $verbose || sed 's/^/    /' "$TMP/step.log"
                echo "ok - $name"
        else
                FAILED=$((FAILED + 1))
                echo "not ok - $name"
                sed 's/^/    /' "$TMP/step.log" | tail -n 200
        fi
}
# counted NAME COMMAND...: a checker printing its own ok/not ok lines and a
# closing "NAME: N passed, M failed" line, added to the tier's counts.
counted() {
        local name=$1 line p f
        shift
        "$@" >"$TMP/counted.log" 2>&1 || true
        cat "$TMP/counted.log"
        line=$(grep -E "^$name: [0-9]+ passed, [0-9]+ failed$" "$TMP/counted.log" | tail -n 1 || true)
        if [ -z "$line" ]; then
                FAILED=$((FAILED + 1))
                echo "not ok - $name did not finish"
                return
        fi
        read -r p f < <(sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed/\1 \2/' <<<"$line")
        PASSED=$((PASSED + p))
        FAILED=$((FAILED + f))
}

go_bin() {
        command -v go || { [ -x /usr/local/go/bin/go ] && echo /usr/local/go/bin/go; } ||
                { echo "deploy: go not found" >&2; return 1; }
}
# module_dir MODULE@VERSION: the module's files, downloaded once from the Go
# module proxy into the Go module cache (read only there).
module_dir() {
        (cd "$TMP" && GOFLAGS=-mod=mod "$(go_bin)" mod download -json "$1") | jq -er .Dir
}

PY=$(scripts/pyenv.sh)
export PY

# ---- 1. Render. A copy of deploy/ with a secrets.env the operator would
# write (made-up values): nothing is written into the work tree.
cp -r deploy "$TMP/deploy"
rm -f "$TMP"/deploy/kubernetes/overlays/*/secrets.env
RENDERED=$TMP/rendered
mkdir -p "$RENDERED"
scripts/kustomize.sh version >/dev/null
render_fails_without_secret() {
        local out
        if out=$(scripts/kustomize.sh build "$TMP/deploy/kubernetes/overlays/production" 2>&1); then
                echo "rendered without secrets.env"
                return 1
        fi
        grep -q 'secrets.env' <<<"$out" || { echo "$out"; return 1; }
}
step "production does not render without the operator's secrets.env" render_fails_without_secret
printf '%s\n' 'REFSTREAM_DATABASE_URL=postgresql://refstream:test-only@db.example:5432/refstream?sslmode=require' \
        'REFSTREAM_REDIS_URL=redis://:test-only@redis.example:6379/0' \
        >"$TMP/deploy/kubernetes/overlays/production/secrets.env"
cp "$TMP/deploy/kubernetes/overlays/production/secrets.env" "$RENDERED/production.secrets.env"
for overlay in dev production statefulset; do
        step "kustomize build overlays/$overlay" \
                sh -c 'scripts/kustomize.sh build "$1" >"$2"' sh \
                "$TMP/deploy/kubernetes/overlays/$overlay" "$RENDERED/$overlay.yaml"
done

# ---- 2. Validate.
CRDS=$TMP/crds
mkdir -p "$CRDS"
fetch_crds() {
        local keda op
        keda=$(module_dir "$KEDA")
        op=$(module_dir "$PROM_OPERATOR")
        cp "$keda/config/crd/bases/keda.sh_scaledobjects.yaml" \
                "$op/example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml" \
                "$op/example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml" "$CRDS/"
}
step "CRDs of KEDA ${KEDA#*@} and the Prometheus Operator ${PROM_OPERATOR#*@} (Go module proxy)" fetch_crds
METRICS_FILE=$TMP/metrics.txt
counted manifests "$PY" tests/deploy/check_manifests.py --repo "$REPO" --rendered "$RENDERED" \
        --crds "$CRDS" --metrics-out "$METRICS_FILE"

# ---- 3. Compose.
compose_schema() { cp "$(module_dir "$COMPOSE_GO")/schema/compose-spec.json" "$TMP/compose-spec.json"; }
step "the Compose Specification schema of compose-go ${COMPOSE_GO#*@} (Go module proxy)" compose_schema
counted compose "$PY" tests/deploy/check_compose.py --repo "$REPO" --schema "$TMP/compose-spec.json"

# ---- 4. Alert rules.
step "promtool check rules deploy/alerts/refstream.rules.yml" promtool check rules deploy/alerts/refstream.rules.yml
step "promtool test rules deploy/alerts/refstream.rules.test.yml (a test per alert)" \
        promtool test rules deploy/alerts/refstream.rules.test.yml

# ---- 5. A real Prometheus scraping refstream.
prometheus_test() {
        [ -x "$RS_BIN" ] || { echo "no refstream binary at $RS_BIN (build it, or set RS_BIN)"; return 1; }
        scripts/stack.sh up db --dir "$STACK" >/dev/null
        scripts/stack.sh up kafka --dir "$STACK" >/dev/null
        RS_STACK_ENV=$STACK/env METRICS_FILE=$METRICS_FILE RS_RENDERED=$RENDERED/production.yaml \
                bash tests/deploy/test_prometheus.sh
}
step -v "Prometheus scrapes a running refstream consume (tests/deploy/test_prometheus.sh)" prometheus_test

echo "deploy: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ] && [ "$PASSED" -gt 0 ]
