#!/usr/bin/env bash
# Soak: one `refstream consume` under a steady load for a long time, sampling
# what would grow if something leaked. A benchmark, not a test: it prints the
# samples and a summary, and judges nothing.
#
#   bench/soak.sh [SECONDS] [EVENTS_PER_SECOND]        (defaults: 1800 2000)
#
# Its own stack in a temp directory (scripts/stack.sh; Postgres fsync off),
# one program with 50 codes, `refstream loadgen --rate` publishing for
# SECONDS, and every 10 s: the consumer's resident memory (VmRSS), its open
# file descriptors, Postgres connections of the database, the consumer lag
# (refstream_consumer_lag) and the events processed so far. The samples go
# to SOAK_OUT (default: soak-<date>.csv in the temp directory, printed at the
# end) and the summary compares the first and the last fifth of the run.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TOTAL=${1:-1800}
RATE=${2:-2000}
BIN=${RS_BIN:-build/refstream}
[ -x "$BIN" ] || scripts/build.sh

work=$(mktemp -d "${TMPDIR:-/tmp}/rs-soak.XXXXXX")
out=${SOAK_OUT:-$work/soak-$(date -u +%Y%m%dT%H%M%SZ).csv}
cleanup() {
        [ -n "${gen:-}" ] && kill "$gen" 2>/dev/null || true
        [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null || true
        wait 2>/dev/null || true
        scripts/stack.sh down --dir "$work/stack" --purge >/dev/null 2>&1 || true
}
trap cleanup EXIT
scripts/stack.sh up db --dir "$work/stack" >/dev/null
scripts/stack.sh up kafka --dir "$work/stack" >/dev/null
set -a
. "$work/stack/env"
set +a
export REFSTREAM_HTTP_ADDR=127.0.0.1:0 REFSTREAM_LOG_LEVEL=warn
"$BIN" migrate >/dev/null
"$BIN" admin program create --key soak --name Soak --currency USD --reward-percent 500 \
        --reward-cap 2000 --referee-reward 300 --min-payment 1000 >/dev/null
codes=$(printf 'ref%s\n' $(seq 1 50) | "$BIN" admin codes backfill --program soak | cut -f2 |
        paste -sd,)

"$BIN" consume --log-level info >"$work/consume.log" 2>&1 &
pid=$!
port=
for _ in $(seq 1 100); do
        port=$(sed -n 's/.*serving .* (port \([0-9]*\)).*/\1/p' "$work/consume.log" | head -n1)
        [ -n "$port" ] && break
        sleep 0.1
done
[ -n "$port" ] || { echo "soak: the consumer did not start" >&2; exit 1; }

# About 1.7 events per referee (loadgen's defaults): enough for SECONDS.
"$BIN" loadgen --seed 11 --rate "$RATE" --codes "$codes" \
        --count $((SECONDS_TOTAL * RATE * 10 / 17 + 1000)) >"$work/loadgen.log" 2>&1 &
gen=$!

metric() {
        curl -fsS "http://127.0.0.1:$port/metrics" |
                awk -v p="$1" 'index($0, p) == 1 { s += $NF } END { printf "%d", s }'
}
echo "t_s,rss_kib,fds,pg_connections,lag,events" | tee "$out"
start=$(date +%s)
while :; do
        t=$(($(date +%s) - start))
        kill -0 "$pid" 2>/dev/null || { echo "soak: the consumer exited" >&2; exit 1; }
        rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")
        fds=$(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 | wc -l)
        conns=$(psql -X -At "$REFSTREAM_DATABASE_URL" -c \
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
                 AND application_name = 'refstream'")
        echo "$t,$rss,$fds,$conns,$(metric refstream_consumer_lag),$(metric refstream_events_total)" |
                tee -a "$out"
        [ "$t" -ge "$SECONDS_TOTAL" ] && break
        sleep $((10 - ($(date +%s) - start) % 10))
done
kill "$gen" 2>/dev/null || true
awk -F, -v total="$SECONDS_TOTAL" -v rate="$RATE" 'NR > 1 {
        n++; t[n] = $1; rss[n] = $2; fds[n] = $3; pg[n] = $4; ev[n] = $6
        if ($2 > maxrss) maxrss = $2; if ($3 > maxfd) maxfd = $3; if ($4 > maxpg) maxpg = $4; if ($5 > maxlag) maxlag = $5 }
    END {
        k = int(n / 5); if (k < 1) k = 1
        for (i = 1; i <= k; i++) { a += rss[i]; b += rss[n - k + i] }
        printf "\nsoak: %d s at %d events/s: %d events processed (%.0f/s)\n", t[n], rate, ev[n],
               ev[n] / (t[n] > 0 ? t[n] : 1)
        printf "  RSS: first fifth %.1f MiB, last fifth %.1f MiB (max %.1f MiB)\n",
               a / k / 1024, b / k / 1024, maxrss / 1024
        printf "  open fds: first %d, last %d, max %d\n", fds[1], fds[n], maxfd
        printf "  Postgres connections: first %d, last %d, max %d\n", pg[1], pg[n], maxpg
        printf "  largest lag sampled: %d records\n", maxlag
    }' "$out"
echo "samples: $out"
