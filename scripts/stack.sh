#!/usr/bin/env bash
# stack.sh - throw-away local servers for refstream's tests and demos (no Docker).
#
# Everything a `up` starts lives in one directory (--dir) on free 127.0.0.1 ports and
# is recorded there by PID files; `down` stops exactly that and nothing else. The
# shell-sourceable DIR/env tells clients where the servers are (ARCHITECTURE.md §4).
#
#   db     Postgres (initdb + pg_ctl, as the `postgres` user when run as root) + Redis
#   kafka  a real Apache Kafka broker, single node, KRaft combined mode, jars from
#          Maven Central (deploy/kafka/pom.xml), cached outside the work tree
#   mock   librdkafka's mock cluster as a process (build/rs-mock-kafka)
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO_DIR=$(cd "$SCRIPT_DIR/.." && pwd -P)
readonly SCRIPT_DIR REPO_DIR
readonly KAFKA_VERSION=3.9.1
# The topics refstream reads and writes by default (SPEC.md); tests may add their own.
readonly DEFAULT_TOPICS=(signups payments referral-credited referral-reversed refstream-dlq)
# Written into every directory `up` uses; `--purge` refuses to delete a directory
# without it, so a mistyped --dir can never cost anybody their files.
readonly MARKER=.refstream-stack
readonly PORT_ATTEMPTS=3

usage() {
	cat <<'EOF'
Usage:
  stack.sh up db    --dir DIR                 Postgres + Redis
  stack.sh up kafka --dir DIR                 Apache Kafka 3.9.1 broker (KRaft, single node)
  stack.sh up mock  --dir DIR [--partitions N] [--topic NAME]...
                                              librdkafka mock cluster (build/rs-mock-kafka)
  stack.sh topic    --dir DIR NAME PARTITIONS Create a topic on the broker running in DIR
  stack.sh down     [db|kafka|mock] --dir DIR [--purge]
                                              Stop what `up` started in DIR (all by default);
                                              --purge then deletes DIR
  stack.sh stop  postgres|redis|kafka --dir DIR [--immediate]
                                              Stop one server of a running stack, keeping
                                              its data and port (--immediate: Postgres
                                              without a checkpoint, as in a crash)
  stack.sh start postgres|redis|kafka --dir DIR
                                              Start it again on the same port and data
  stack.sh pid   postgres|redis|kafka --dir DIR
                                              Print the server's PID (for fault injection)
  stack.sh env      --dir DIR                 Print DIR's env lines
  stack.sh --help

`up` prints the env lines (also written to DIR/env, shell-sourceable) and is
idempotent: servers already running in DIR are reused. Servers listen on
127.0.0.1 only, on free ports.

Environment:
  RS_PG_BINDIR        Postgres binaries (default: highest /usr/lib/postgresql/*/bin)
  RS_PG_FSYNC         fsync for the throw-away Postgres: off (default) or on
  RS_PG_MAX_CONNECTIONS                              (default 100)
  RS_KAFKA_CACHE      Kafka jar cache (default ${XDG_CACHE_HOME:-$HOME/.cache}/refstream/kafka-3.9.1)
  RS_KAFKA_HEAP_OPTS  broker heap (default "-Xms256m -Xmx768m")
  RS_KAFKA_JVM_OPTS   extra broker JVM options
  RS_MOCK_KAFKA_BIN   mock cluster binary (default <repo>/build/rs-mock-kafka)
  RS_DB_START_TIMEOUT, RS_KAFKA_START_TIMEOUT  seconds (default 30, 90)
EOF
}

log() { printf 'stack.sh: %s\n' "$*" >&2; }

# While `up` starts something, UP_CLEANUP names the function that stops it again if
# the script fails half-way, so that a failed `up` leaves nothing running.
UP_CLEANUP=
on_exit() {
	local rc=$?
	if ((rc != 0)) && [[ -n $UP_CLEANUP ]]; then
		local fn=$UP_CLEANUP
		UP_CLEANUP=
		log "start-up failed; stopping what was started"
		set +e
		"$fn"
	fi
	exit "$rc"
}
trap on_exit EXIT
die() {
	log "error: $*"
	exit 1
}
bad_usage() {
	log "$*"
	usage >&2
	exit 2
}

# Prints the last lines of a server log after a failure, so that CI output says why.
show_log() {
	local f
	for f in "$@"; do
		[[ -s $f ]] || continue
		printf -- '----- last lines of %s -----\n' "$f" >&2
		tail -n 30 "$f" >&2
		printf -- '-----\n' >&2
	done
}

# ---------------------------------------------------------------------------
# Processes. PID files can outlive their process and the PID can be reused, so a
# PID counts as ours only if it is alive AND its command line contains a fragment
# that only our server has (its data directory, its config file). That is what
# keeps `down` from ever signalling a stranger.
# ---------------------------------------------------------------------------
read_pid() {
	local f=$1 pid=
	[[ -s $f ]] && read -r pid <"$f"
	[[ $pid =~ ^[0-9]+$ ]] && printf '%s\n' "$pid"
	return 0
}

pid_matches() {
	local pid=$1 frag=$2 cmd
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 1
	[[ -n $cmd && $cmd == *"$frag"* ]]
}

# SIGTERM, wait up to TIMEOUT seconds, then SIGKILL.
stop_pid() {
	local pid=$1 frag=$2 timeout=$3 name=$4 i deadline
	pid_matches "$pid" "$frag" || return 0
	log "stopping $name (pid $pid)"
	kill -TERM "$pid" 2>/dev/null || true
	deadline=$((SECONDS + timeout))
	while ((SECONDS < deadline)); do
		pid_matches "$pid" "$frag" || return 0
		sleep 0.1
	done
	log "$name did not stop within ${timeout}s, sending SIGKILL"
	kill -KILL "$pid" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		pid_matches "$pid" "$frag" || return 0
		sleep 0.1
	done
	die "$name (pid $pid) survived SIGKILL"
}

# Starts a command detached from our session (so that Ctrl-C or a test runner
# killing our process group does not take the server down half-way) with all three
# standard streams redirected (so that `$(stack.sh up ...)` does not wait for EOF
# forever). The wrapper writes its own PID before exec'ing, which is the server's
# PID whether or not setsid had to fork.
spawn() {
	local pidfile=$1 out=$2 err=$3
	shift 3
	rm -f "$pidfile"
	# shellcheck disable=SC2016 # $$ and $@ belong to the inner shell
	setsid nohup bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" \
		</dev/null >"$out" 2>"$err" &
	local i
	for ((i = 0; i < 100; i++)); do
		[[ -s $pidfile ]] && return 0
		sleep 0.05
	done
	die "could not start $1"
}

# ---------------------------------------------------------------------------
# Ports
# ---------------------------------------------------------------------------
port_in_use() {
	local p=$1
	if command -v ss >/dev/null 2>&1; then
		[[ -n $(ss -Hltn "sport = :$p" 2>/dev/null) ]]
		return
	fi
	# No ss: a successful connect means somebody listens.
	(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null
}

# Sets PORT to a free port. Stays below the kernel's ephemeral range when there is
# room: any outgoing connection may hold a port in that range, and the server's
# bind() would then fail at random.
PICKED_PORTS=" "
pick_port() {
	local lo=20000 hi=60000 eph_lo i p
	if read -r eph_lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null &&
		((eph_lo > lo + 2000)); then
		hi=$((eph_lo - 1))
	fi
	for ((i = 0; i < 200; i++)); do
		p=$((lo + (RANDOM * 32768 + RANDOM) % (hi - lo + 1)))
		[[ $PICKED_PORTS == *" $p "* ]] && continue
		port_in_use "$p" && continue
		PICKED_PORTS+="$p "
		PORT=$p
		return 0
	done
	die "no free port in $lo-$hi"
}

# ---------------------------------------------------------------------------
# The stack directory and its env files. Each service writes its own part
# (env.db, env.kafka); DIR/env is their concatenation.
# ---------------------------------------------------------------------------
prepare_dir() {
	[[ $DIR =~ ^[A-Za-z0-9._/+:@-]+$ ]] ||
		die "--dir must not contain spaces, quotes or other special characters: $DIR"
	if [[ -d $DIR && ! -e $DIR/$MARKER && -n $(ls -A "$DIR") ]]; then
		die "$DIR is not empty and was not created by stack.sh; use another --dir"
	fi
	mkdir -p "$DIR"
	: >"$DIR/$MARKER"
	DIR=$(cd "$DIR" && pwd -P)
	# Paths end up unquoted in env lines and in server command lines.
	[[ $DIR =~ ^[A-Za-z0-9._/+:@-]+$ ]] ||
		die "--dir must not contain spaces, quotes or other special characters: $DIR"
}

write_env_part() {
	local part=$1
	shift
	printf '%s\n' "$@" >"$DIR/env.$part.tmp"
	mv "$DIR/env.$part.tmp" "$DIR/env.$part"
	assemble_env
}

assemble_env() {
	local part parts=()
	for part in db kafka; do
		[[ -f $DIR/env.$part ]] && parts+=("$DIR/env.$part")
	done
	if ((${#parts[@]} == 0)); then
		rm -f "$DIR/env"
		return 0
	fi
	cat "${parts[@]}" >"$DIR/env.tmp"
	mv "$DIR/env.tmp" "$DIR/env"
}

print_env() {
	[[ -s $DIR/env ]] || die "nothing is running in $DIR (no $DIR/env)"
	cat "$DIR/env"
}

# ---------------------------------------------------------------------------
# Postgres
# ---------------------------------------------------------------------------
pg_bindir() {
	if [[ -n ${RS_PG_BINDIR:-} ]]; then
		[[ -x $RS_PG_BINDIR/initdb ]] || die "RS_PG_BINDIR=$RS_PG_BINDIR has no initdb"
		printf '%s\n' "$RS_PG_BINDIR"
		return 0
	fi
	local d v best='' bestv=-1
	for d in /usr/lib/postgresql/*/bin; do
		v=${d#/usr/lib/postgresql/}
		v=${v%/bin}
		[[ $v =~ ^[0-9]+$ && -x $d/initdb ]] || continue
		((v > bestv)) && bestv=$v best=$d
	done
	[[ -n $best ]] || die "no Postgres in /usr/lib/postgresql/*/bin (run scripts/install-deps.sh or set RS_PG_BINDIR)"
	printf '%s\n' "$best"
}

# Postgres refuses to run as root; initdb and pg_ctl then run as `postgres`. From
# `/` because the caller's working directory may be closed to that user.
as_pg() {
	if ((EUID == 0)); then
		(cd / && runuser -u postgres -- "$@")
	else
		"$@"
	fi
}

# PG_ROOT is DIR/pg: data/, run/ (socket), postgres.log. As root the tree must be
# owned by `postgres`, which must also be able to reach it; when DIR sits below a
# directory closed to that user (say /root) or the socket path would exceed the
# 107-byte limit of unix sockets, the tree lives in a private directory under
# /tmp instead and DIR/pg is a symlink to it.
pg_layout() {
	PG_ROOT=$DIR/pg
	if [[ -L $PG_ROOT ]]; then
		PG_ROOT=$(readlink -f "$PG_ROOT")
	fi
	PG_DATA=$PG_ROOT/data
	PG_SOCK=$PG_ROOT/run
	PG_LOG=$PG_ROOT/postgres.log
}

pg_make_root() {
	local reloc=false
	if ((EUID == 0)); then
		id postgres >/dev/null 2>&1 || die "running as root needs the postgres system user (apt-get install postgresql)"
		runuser -u postgres -- test -x "$DIR" 2>/dev/null || reloc=true
	fi
	local sock_suffix=/pg/run/.s.PGSQL.65535
	((${#DIR} + ${#sock_suffix} <= 107)) || reloc=true
	if $reloc; then
		local tmp
		tmp=$(mktemp -d /tmp/refstream-pg.XXXXXX)
		chmod 700 "$tmp"
		ln -s "$tmp" "$DIR/pg"
		log "Postgres files live in $tmp (DIR/pg links there: DIR is closed to user postgres or too long for a socket path)"
	else
		mkdir -m 700 "$DIR/pg"
	fi
	pg_layout
	mkdir -m 700 "$PG_SOCK"
	((EUID != 0)) || chown -R postgres:postgres "$PG_ROOT"
}

pg_running() {
	local pid
	pg_layout
	pid=$(read_pid "$PG_DATA/postmaster.pid")
	[[ -n $pid ]] && pid_matches "$pid" "-D $PG_DATA "
}

pg_stop() {
	local pid bindir
	pg_layout
	pid=$(read_pid "$PG_DATA/postmaster.pid")
	[[ -n $pid ]] && pid_matches "$pid" "-D $PG_DATA " || return 0
	bindir=$(pg_bindir)
	log "stopping Postgres (pid $pid)"
	as_pg "$bindir/pg_ctl" stop -D "$PG_DATA" -m fast -w -t 30 >/dev/null 2>&1 ||
		stop_pid "$pid" "-D $PG_DATA " 10 Postgres
}

# Removes the Postgres tree, including a relocated one under /tmp.
pg_remove() {
	pg_layout
	if [[ -L $DIR/pg ]]; then
		case $PG_ROOT in
		/tmp/refstream-pg.*) rm -rf "$PG_ROOT" ;;
		esac
	fi
	rm -rf "$DIR/pg"
}

pg_start() {
	local bindir=$1 timeout=${RS_DB_START_TIMEOUT:-30} fsync=${RS_PG_FSYNC:-off}
	local maxconn=${RS_PG_MAX_CONNECTIONS:-100} attempt opts
	[[ $fsync == on || $fsync == off ]] || die "RS_PG_FSYNC must be on or off"
	[[ $maxconn =~ ^[0-9]+$ ]] || die "RS_PG_MAX_CONNECTIONS must be a number"
	pg_make_root
	# trust: loopback only, in a throw-away directory. C locale: byte order, the same
	# on every machine.
	as_pg "$bindir/initdb" -D "$PG_DATA" -U postgres --auth=trust --encoding=UTF8 \
		--locale=C --no-sync >"$DIR/initdb.log" 2>&1 ||
		{
			show_log "$DIR/initdb.log"
			die "initdb failed"
		}
	for ((attempt = 1; attempt <= PORT_ATTEMPTS; attempt++)); do
		pick_port
		PG_PORT=$PORT
		# fsync=off (default) makes tests fast; a crash loses the data, which is
		# throw-away anyway. full_page_writes only matters when fsync is on.
		opts="-c listen_addresses=127.0.0.1 -c port=$PG_PORT"
		opts+=" -c unix_socket_directories=$PG_SOCK -c max_connections=$maxconn"
		opts+=" -c fsync=$fsync -c full_page_writes=$fsync"
		if as_pg "$bindir/pg_ctl" start -D "$PG_DATA" -l "$PG_LOG" -w -t "$timeout" \
			-o "$opts" >>"$DIR/initdb.log" 2>&1; then
			printf '%s\n' "$opts" >"$DIR/pg.opts"
			return 0
		fi
		as_pg "$bindir/pg_ctl" stop -D "$PG_DATA" -m immediate >/dev/null 2>&1 || true
		if ! grep -q 'could not bind\|Address already in use' "$PG_LOG" 2>/dev/null; then
			break
		fi
		log "Postgres port $PG_PORT was taken meanwhile, trying another"
	done
	show_log "$PG_LOG" "$DIR/initdb.log"
	die "Postgres did not start"
}

pg_wait_and_create_db() {
	local bindir=$1 timeout=${RS_DB_START_TIMEOUT:-30} deadline
	deadline=$((SECONDS + timeout))
	while ((SECONDS < deadline)); do
		"$bindir/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 1 && break
		sleep 0.1
	done
	"$bindir/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 1 || {
		show_log "$PG_LOG"
		die "Postgres on 127.0.0.1:$PG_PORT not ready after ${timeout}s"
	}
	# Superuser so that tests can create a database per test (isolation) and
	# extensions; it is a throw-away cluster.
	"$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres \
		-d postgres >>"$DIR/initdb.log" 2>&1 <<'SQL' || {
CREATE ROLE refstream LOGIN SUPERUSER;
CREATE DATABASE refstream OWNER refstream;
SQL
		show_log "$DIR/initdb.log"
		die "could not create role/database refstream"
	}
}

# ---------------------------------------------------------------------------
# Redis
# ---------------------------------------------------------------------------
redis_running() {
	local pid
	pid=$(read_pid "$DIR/redis.pid")
	[[ -n $pid ]] && pid_matches "$pid" redis-server
}

redis_stop() {
	local pid
	pid=$(read_pid "$DIR/redis.pid")
	[[ -n $pid ]] && stop_pid "$pid" redis-server 10 Redis
	rm -f "$DIR/redis.pid"
}

# Starts redis-server on port $1 and waits for PING. 0 = up, 1 = port taken,
# else dies.
redis_launch() {
	local port=$1 timeout=${RS_DB_START_TIMEOUT:-30} deadline
	rm -f "$DIR/redis.pid"
	: >"$DIR/redis.log"
	# No persistence: state is throw-away, and a save must never stall a test.
	redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
		--daemonize yes --pidfile "$DIR/redis.pid" --dir "$DIR/redis" \
		--logfile "$DIR/redis.log" </dev/null >"$DIR/redis.out" 2>&1 ||
		{
			show_log "$DIR/redis.out" "$DIR/redis.log"
			die "redis-server failed"
		}
	deadline=$((SECONDS + timeout))
	while ((SECONDS < deadline)); do
		if [[ $(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null) == PONG ]]; then
			redis_running && return 0
		fi
		grep -q "Failed listening on port $port" "$DIR/redis.log" && break
		sleep 0.1
	done
	redis_stop
	grep -q "Failed listening on port $port" "$DIR/redis.log" && return 1
	show_log "$DIR/redis.log"
	die "Redis did not answer PING on 127.0.0.1:$port"
}

redis_start() {
	local attempt
	command -v redis-server >/dev/null || die "redis-server not found (run scripts/install-deps.sh)"
	mkdir -p "$DIR/redis"
	for ((attempt = 1; attempt <= PORT_ATTEMPTS; attempt++)); do
		pick_port
		REDIS_PORT=$PORT
		redis_launch "$REDIS_PORT" && return 0
		log "Redis port $REDIS_PORT was taken meanwhile, trying another"
	done
	die "Redis could not bind a port"
}

# ---------------------------------------------------------------------------
# up db / down db
# ---------------------------------------------------------------------------
db_stop() {
	pg_stop
	redis_stop
}

up_db() {
	local bindir
	if [[ -f $DIR/env.db ]] && pg_running && redis_running; then
		log "db already running in $DIR"
		print_env
		return 0
	fi
	# Anything left over (a crash, a reboot, half an `up`) is stopped and wiped.
	[[ ! -e $DIR/pg && ! -e $DIR/redis ]] || log "stale db state in $DIR: starting fresh"
	db_stop
	pg_remove
	rm -rf "$DIR/redis" "$DIR/redis.log" "$DIR/redis.out" "$DIR/env.db" "$DIR/initdb.log"
	assemble_env

	bindir=$(pg_bindir)
	UP_CLEANUP=db_stop
	pg_start "$bindir"
	pg_wait_and_create_db "$bindir"
	redis_start
	UP_CLEANUP=
	write_env_part db \
		"REFSTREAM_DATABASE_URL=postgresql://refstream@127.0.0.1:$PG_PORT/refstream" \
		"REFSTREAM_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0" \
		"RS_PG_PORT=$PG_PORT" \
		"RS_REDIS_PORT=$REDIS_PORT" \
		"RS_PG_BINDIR=$bindir" \
		"RS_PG_SUPERUSER_URL=postgresql://refstream@127.0.0.1:$PG_PORT/postgres"
	print_env
}

down_db() {
	db_stop
	rm -f "$DIR/env.db"
	assemble_env
}

# ---------------------------------------------------------------------------
# Kafka (real broker)
# ---------------------------------------------------------------------------
java_bin() {
	local j=${JAVA_HOME:+$JAVA_HOME/bin/}java
	command -v "$j" >/dev/null 2>&1 || die "java not found (run scripts/install-deps.sh)"
	printf '%s\n' "$j"
}

kafka_cache() {
	local base=${XDG_CACHE_HOME:-${HOME:-}/.cache}
	[[ $base != /.cache ]] || base=${TMPDIR:-/tmp}/refstream-cache-$EUID
	printf '%s\n' "${RS_KAFKA_CACHE:-$base/refstream/kafka-$KAFKA_VERSION}"
}

# Sets KAFKA_LIBS to a directory holding the broker's jars, fetching them with Maven
# once. The marker records the pom's checksum: a changed pom refetches. A lock
# keeps two concurrent `up kafka` from downloading into the same place; the jars
# are copied to a temporary directory and renamed, so a crash never leaves a
# half-filled libs/ that looks complete.
ensure_kafka_libs() {
	local cache pom sum
	cache=$(kafka_cache)
	pom=$REPO_DIR/deploy/kafka/pom.xml
	[[ -f $pom ]] || die "missing $pom"
	sum=$(sha256sum "$pom")
	sum=${sum%% *}
	KAFKA_LIBS=$cache/libs
	[[ -f $cache/libs.complete && $(<"$cache/libs.complete") == "$sum" ]] && return 0
	command -v mvn >/dev/null || die "mvn not found (run scripts/install-deps.sh)"
	mkdir -p "$cache"
	(
		flock -w 900 9 || die "timed out waiting for the lock on $cache"
		[[ -f $cache/libs.complete && $(<"$cache/libs.complete") == "$sum" ]] && exit 0
		log "fetching Kafka $KAFKA_VERSION jars from Maven Central into $cache (once)"
		rm -rf "$cache/libs.tmp" "$cache/libs.complete"
		mvn -q -B -Dstyle.color=never -f "$pom" dependency:copy-dependencies \
			-DoutputDirectory="$cache/libs.tmp" >"$cache/mvn.log" 2>&1 ||
			{
				show_log "$cache/mvn.log"
				die "mvn could not fetch the Kafka jars"
			}
		[[ -f $cache/libs.tmp/kafka_2.13-$KAFKA_VERSION.jar ]] ||
			die "mvn ran but kafka_2.13-$KAFKA_VERSION.jar is missing in $cache/libs.tmp"
		rm -rf "$cache/libs"
		mv "$cache/libs.tmp" "$cache/libs"
		printf '%s\n' "$sum" >"$cache/libs.complete"
	) 9>"$cache/.lock"
}

# Runs a Kafka command-line class (storage tool, topic command) in a short-lived
# JVM tuned for start-up time, logging warnings only.
kafka_tool() {
	"$JAVA" -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Djava.awt.headless=true \
		-Dlog4j.configuration="file:$DIR/tools-log4j.properties" \
		-cp "$KAFKA_LIBS/*" "$@"
}

write_kafka_log4j() {
	# The broker logs to DIR/kafka.log, never to the terminal.
	cat >"$DIR/log4j.properties" <<EOF
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$DIR/kafka.log
log4j.appender.file.Append=true
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.org.apache.kafka.clients=WARN
EOF
	cat >"$DIR/tools-log4j.properties" <<'EOF'
log4j.rootLogger=WARN, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
EOF
}

write_server_properties() {
	local port=$1 cport=$2
	cat >"$DIR/server.properties" <<EOF
# Generated by scripts/stack.sh: single-node KRaft, broker and controller in one JVM.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$DIR/data
num.partitions=4
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=true
delete.topic.enable=true
# Records up to 4 MiB, so tests can send records above refstream's 1 MiB input
# limit (dead-lettered as too_large, unchanged).
message.max.bytes=4194304
# One broker: internal topics cannot have more replicas. Few partitions: the group
# and transaction coordinators load faster.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
# Tests start consumers right away; do not wait for more members to join.
group.initial.rebalance.delay.ms=0
# Sized for a 2-core test machine, not for production.
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.cleaner.dedupe.buffer.size=16777216
log.cleaner.threads=1
auto.leader.rebalance.enable=false
EOF
}

kafka_running() {
	local pid
	pid=$(read_pid "$DIR/kafka.pid")
	[[ -n $pid ]] && pid_matches "$pid" "kafka.Kafka $DIR/server.properties "
}

kafka_stop() {
	local pid
	pid=$(read_pid "$DIR/kafka.pid")
	# Controlled shutdown of a combined node takes a few seconds.
	[[ -n $pid ]] && stop_pid "$pid" "kafka.Kafka $DIR/server.properties " 60 Kafka
	rm -f "$DIR/kafka.pid"
}

kafka_bind_failed() {
	grep -qs 'BindException\|Address already in use' "$DIR/kafka.log" "$DIR/kafka.out"
}

# Starts the JVM and waits until the broker answers a metadata request (all topics:
# asking for one topic would auto-create it). 0 = up, 1 = port taken, else dies.
kafka_launch() {
	local port=$1 timeout=${RS_KAFKA_START_TIMEOUT:-90} deadline
	# shellcheck disable=SC2086 # heap and extra options are word lists on purpose
	spawn "$DIR/kafka.pid" "$DIR/kafka.out" "$DIR/kafka.out" \
		"$JAVA" ${RS_KAFKA_HEAP_OPTS:--Xms256m -Xmx768m} \
		-XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
		-XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
		-Dlog4j.configuration="file:$DIR/log4j.properties" -Dkafka.logs.dir="$DIR" \
		${RS_KAFKA_JVM_OPTS:-} -cp "$KAFKA_LIBS/*" kafka.Kafka "$DIR/server.properties"
	deadline=$((SECONDS + timeout))
	while ((SECONDS < deadline)); do
		if kcat -b "127.0.0.1:$port" -L -m 1 >/dev/null 2>&1; then
			kafka_running && return 0
		fi
		if ! kafka_running; then
			kafka_bind_failed && return 1
			show_log "$DIR/kafka.log" "$DIR/kafka.out"
			die "Kafka exited during start-up"
		fi
		sleep 0.2
	done
	kafka_stop
	show_log "$DIR/kafka.log" "$DIR/kafka.out"
	die "Kafka did not answer on 127.0.0.1:$port within ${timeout}s"
}

# Creates topics in parallel: each TopicCommand is its own JVM (~1 s), and the
# command creates only one topic per run.
create_topics() {
	local boot=$1 nparts=$2 t pid failed=0
	shift 2
	local -A pids=()
	for t in "$@"; do
		kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$boot" \
			--create --if-not-exists --topic "$t" --partitions "$nparts" \
			--replication-factor 1 >"$DIR/topic-$t.log" 2>&1 &
		pids[$t]=$!
	done
	for t in "${!pids[@]}"; do
		pid=${pids[$t]}
		if ! wait "$pid"; then
			show_log "$DIR/topic-$t.log"
			failed=1
		fi
	done
	((failed == 0)) || die "could not create topic(s) on $boot"
	for t in "$@"; do rm -f "$DIR/topic-$t.log"; done
	wait_topics "$boot" "$@"
}

# CreateTopics returns once the controller committed the topic; the broker's
# metadata cache follows a moment later. Wait for it, so that a client started
# right after `up` never sees "unknown topic".
wait_topics() {
	local boot=$1 md t deadline missing=''
	shift
	deadline=$((SECONDS + 30))
	while ((SECONDS < deadline)); do
		md=$(kcat -b "$boot" -L -m 2 2>/dev/null) || md=
		missing=
		for t in "$@"; do
			[[ $md == *"topic \"$t\" with "* ]] || missing+=" $t"
		done
		[[ -z $missing ]] && return 0
		sleep 0.2
	done
	die "topic(s)$missing not visible in the metadata of $boot"
}

kafka_kind() {
	[[ -f $DIR/env.kafka ]] || return 0
	sed -n 's/^RS_KAFKA_KIND=//p' "$DIR/env.kafka"
}

up_kafka() {
	local attempt port cport cluster_id
	if [[ $(kafka_kind) == real ]] && kafka_running; then
		log "kafka already running in $DIR"
		print_env
		return 0
	fi
	if [[ $(kafka_kind) == mock ]] && mock_running; then
		die "$DIR runs the mock cluster; use another --dir or 'down mock' first"
	fi
	command -v kcat >/dev/null || die "kcat not found (run scripts/install-deps.sh)"
	kafka_stop
	rm -rf "$DIR/data" "$DIR/kafka.log" "$DIR/kafka.out" "$DIR/format.log" "$DIR/env.kafka"
	assemble_env
	JAVA=$(java_bin)
	ensure_kafka_libs
	printf '%s\n' "$KAFKA_LIBS" >"$DIR/kafka.libs"
	write_kafka_log4j

	cluster_id=$(kafka_tool kafka.tools.StorageTool random-uuid 2>"$DIR/format.log") || {
		show_log "$DIR/format.log"
		die "kafka.tools.StorageTool random-uuid failed (jars in $KAFKA_LIBS broken?)"
	}
	UP_CLEANUP=kafka_stop
	for ((attempt = 1; attempt <= PORT_ATTEMPTS; attempt++)); do
		pick_port
		port=$PORT
		pick_port
		cport=$PORT
		write_server_properties "$port" "$cport"
		# The data directory does not depend on the ports: format once.
		if [[ ! -f $DIR/data/meta.properties ]]; then
			kafka_tool kafka.tools.StorageTool format -t "$cluster_id" \
				-c "$DIR/server.properties" >"$DIR/format.log" 2>&1 || {
				show_log "$DIR/format.log"
				die "kafka-storage format failed"
			}
		fi
		if kafka_launch "$port"; then
			create_topics "127.0.0.1:$port" 4 "${DEFAULT_TOPICS[@]}"
			UP_CLEANUP=
			write_env_part kafka "REFSTREAM_KAFKA_BROKERS=127.0.0.1:$port" "RS_KAFKA_KIND=real"
			print_env
			return 0
		fi
		kafka_stop
		log "Kafka port $port or $cport was taken meanwhile, trying others"
	done
	show_log "$DIR/kafka.log"
	die "Kafka could not bind its ports"
}

topic_cmd() {
	local name=$1 nparts=$2 boot
	[[ $name =~ ^[A-Za-z0-9._-]{1,249}$ ]] || bad_usage "bad topic name: $name"
	[[ $nparts =~ ^[1-9][0-9]*$ ]] || bad_usage "PARTITIONS must be a positive number"
	case $(kafka_kind) in
	real) ;;
	mock) die "the mock cluster has no CreateTopics API; use 'up mock --topic $name'" ;;
	*) die "no Kafka broker runs in $DIR" ;;
	esac
	kafka_running || die "the Kafka broker of $DIR is not running"
	KAFKA_LIBS=$(<"$DIR/kafka.libs")
	JAVA=$(java_bin)
	boot=$(sed -n 's/^REFSTREAM_KAFKA_BROKERS=//p' "$DIR/env.kafka")
	create_topics "$boot" "$nparts" "$name"
	log "topic $name ready on $boot"
}

# ---------------------------------------------------------------------------
# Mock cluster
# ---------------------------------------------------------------------------
mock_running() {
	local pid bin
	pid=$(read_pid "$DIR/mock.pid")
	[[ -n $pid && -s $DIR/mock.bin ]] || return 1
	bin=$(<"$DIR/mock.bin")
	pid_matches "$pid" "$bin "
}

mock_stop() {
	local pid
	if mock_running; then
		pid=$(read_pid "$DIR/mock.pid")
		stop_pid "$pid" "$(<"$DIR/mock.bin") " 10 "mock cluster"
	fi
	rm -f "$DIR/mock.pid"
}

up_mock() {
	local bin args=("$@") i boot=
	if [[ $(kafka_kind) == mock ]] && mock_running; then
		[[ "${args[*]}" == "$(cat "$DIR/mock.args" 2>/dev/null)" ]] ||
			log "warning: mock cluster already running with other options; reusing it"
		log "mock cluster already running in $DIR"
		print_env
		return 0
	fi
	if [[ $(kafka_kind) == real ]] && kafka_running; then
		die "$DIR runs a Kafka broker; use another --dir or 'down kafka' first"
	fi
	bin=${RS_MOCK_KAFKA_BIN:-$REPO_DIR/build/rs-mock-kafka}
	[[ -x $bin ]] || die "$bin not found; build it: cmake --build build --target rs-mock-kafka"
	bin=$(readlink -f "$bin")
	mock_stop
	rm -f "$DIR/env.kafka" "$DIR/mock.out" "$DIR/mock.log"
	assemble_env
	printf '%s\n' "$bin" >"$DIR/mock.bin"
	printf '%s\n' "${args[*]}" >"$DIR/mock.args"
	UP_CLEANUP=mock_stop
	spawn "$DIR/mock.pid" "$DIR/mock.out" "$DIR/mock.log" "$bin" "${args[@]}"
	# The binary prints its bootstrap line as soon as the cluster listens.
	for ((i = 0; i < 100; i++)); do
		boot=$(sed -n 's/^REFSTREAM_KAFKA_BROKERS=//p' "$DIR/mock.out")
		[[ -n $boot ]] && break
		mock_running || break
		sleep 0.1
	done
	if [[ -z $boot ]] || ! mock_running; then
		mock_stop
		show_log "$DIR/mock.log"
		die "mock cluster did not start"
	fi
	UP_CLEANUP=
	write_env_part kafka "REFSTREAM_KAFKA_BROKERS=$boot" "RS_KAFKA_KIND=mock"
	print_env
}

# ---------------------------------------------------------------------------
# One server of a running stack: stop / start / pid (fault injection). Data,
# ports and env stay as they are, so clients reconnect to the same address.
# ---------------------------------------------------------------------------
env_value() { # KEY: its value in DIR/env
	[[ -s $DIR/env ]] || die "nothing is running in $DIR (no $DIR/env)"
	sed -n "s/^$1=//p" "$DIR/env" | tail -n 1
}

service_pid() {
	local pid=''
	case $1 in
	postgres)
		pg_layout
		pid=$(read_pid "$PG_DATA/postmaster.pid")
		pid_matches "$pid" "-D $PG_DATA " || pid=''
		;;
	redis) redis_running && pid=$(read_pid "$DIR/redis.pid") ;;
	kafka) kafka_running && pid=$(read_pid "$DIR/kafka.pid") ;;
	esac
	[[ -n $pid ]] || die "$1 is not running in $DIR"
	printf '%s\n' "$pid"
}

service_stop() {
	local mode=$2 bindir
	case $1 in
	postgres)
		pg_running || return 0
		bindir=$(pg_bindir)
		log "stopping Postgres ($mode)"
		as_pg "$bindir/pg_ctl" stop -D "$PG_DATA" -m "$mode" -w -t 30 >/dev/null
		;;
	redis) redis_stop ;;
	kafka) kafka_stop ;;
	esac
}

service_start() {
	local bindir port
	case $1 in
	postgres)
		pg_running && return 0
		bindir=$(pg_bindir)
		[[ -s $DIR/pg.opts ]] || die "no Postgres was set up in $DIR"
		as_pg "$bindir/pg_ctl" start -D "$PG_DATA" -l "$PG_LOG" -w \
			-t "${RS_DB_START_TIMEOUT:-30}" -o "$(<"$DIR/pg.opts")" >>"$DIR/initdb.log" 2>&1 ||
			{
				show_log "$PG_LOG"
				die "Postgres did not start again"
			}
		;;
	redis)
		redis_running && return 0
		port=$(env_value RS_REDIS_PORT)
		redis_launch "$port" || die "Redis port $port is taken"
		;;
	kafka)
		kafka_running && return 0
		[[ -s $DIR/kafka.libs ]] || die "no Kafka broker was set up in $DIR"
		KAFKA_LIBS=$(<"$DIR/kafka.libs")
		JAVA=$(java_bin)
		port=$(env_value REFSTREAM_KAFKA_BROKERS)
		kafka_launch "${port##*:}" || die "Kafka port ${port##*:} is taken"
		;;
	esac
	log "$1 running again in $DIR"
}

# ---------------------------------------------------------------------------
# down
# ---------------------------------------------------------------------------
down() {
	local what=$1 purge=$2
	if [[ ! -d $DIR ]]; then
		return 0
	fi
	DIR=$(cd "$DIR" && pwd -P)
	if [[ ! -e $DIR/$MARKER ]]; then
		! $purge || die "$DIR was not created by stack.sh; not deleting it"
		log "$DIR was not created by stack.sh; nothing to stop"
		return 0
	fi
	case $what in
	all | mock) mock_stop ;;&
	all | kafka) kafka_stop ;;&
	all | db) down_db ;;
	esac
	if [[ $what != db && -f $DIR/env.kafka ]]; then
		case $(kafka_kind) in
		real) [[ $what == mock ]] || rm -f "$DIR/env.kafka" ;;
		mock) [[ $what == kafka ]] || rm -f "$DIR/env.kafka" ;;
		esac
	fi
	assemble_env
	if $purge; then
		[[ $what == all ]] || die "--purge needs everything in $DIR stopped: use 'down --dir DIR --purge'"
		pg_remove
		rm -rf "$DIR"
		log "removed $DIR"
	fi
}

# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------
main() {
	local cmd=${1:-} sub='' purge=false immediate=false pos=() extra=()
	DIR=
	case $cmd in
	-h | --help | help)
		usage
		exit 0
		;;
	up | down | env | topic | stop | start | pid) shift ;;
	'') bad_usage "missing command" ;;
	*) bad_usage "unknown command: $cmd" ;;
	esac
	while (($#)); do
		case $1 in
		--dir)
			(($# >= 2)) || bad_usage "--dir needs a value"
			DIR=$2
			shift 2
			;;
		--dir=*)
			DIR=${1#--dir=}
			shift
			;;
		--purge)
			purge=true
			shift
			;;
		--immediate)
			immediate=true
			shift
			;;
		--partitions | --topic | --brokers)
			(($# >= 2)) || bad_usage "$1 needs a value"
			extra+=("$1" "$2")
			shift 2
			;;
		-h | --help)
			usage
			exit 0
			;;
		-*) bad_usage "unknown option: $1" ;;
		*)
			pos+=("$1")
			shift
			;;
		esac
	done
	[[ -n $DIR ]] || bad_usage "--dir DIR is required"
	[[ $cmd == up || ${#extra[@]} -eq 0 ]] || bad_usage "${extra[0]} only goes with 'up mock'"
	[[ $cmd == down || $purge == false ]] || bad_usage "--purge only goes with down"
	[[ $cmd == stop || $immediate == false ]] || bad_usage "--immediate only goes with stop"

	case $cmd in
	up)
		((${#pos[@]} == 1)) || bad_usage "up needs exactly one of: db kafka mock"
		sub=${pos[0]}
		[[ $sub == mock || ${#extra[@]} -eq 0 ]] || bad_usage "${extra[0]} only goes with 'up mock'"
		case $sub in
		db | kafka | mock) ;;
		*) bad_usage "unknown service: $sub" ;;
		esac
		prepare_dir
		"up_$sub" "${extra[@]}"
		;;
	down)
		((${#pos[@]} <= 1)) || bad_usage "down takes at most one service"
		sub=${pos[0]:-all}
		case $sub in
		all | db | kafka | mock) ;;
		*) bad_usage "unknown service: $sub" ;;
		esac
		down "$sub" "$purge"
		;;
	env)
		((${#pos[@]} == 0)) || bad_usage "env takes no arguments"
		[[ -d $DIR ]] || die "$DIR does not exist"
		DIR=$(cd "$DIR" && pwd -P)
		print_env
		;;
	stop | start | pid)
		((${#pos[@]} == 1)) || bad_usage "$cmd needs one of: postgres redis kafka"
		case ${pos[0]} in
		postgres | redis | kafka) ;;
		*) bad_usage "unknown server: ${pos[0]}" ;;
		esac
		[[ -d $DIR ]] || die "$DIR does not exist"
		DIR=$(cd "$DIR" && pwd -P)
		case $cmd in
		stop) service_stop "${pos[0]}" "$($immediate && echo immediate || echo fast)" ;;
		start) service_start "${pos[0]}" ;;
		pid) service_pid "${pos[0]}" ;;
		esac
		;;
	topic)
		((${#pos[@]} == 2)) || bad_usage "topic needs NAME PARTITIONS"
		[[ -d $DIR ]] || die "$DIR does not exist"
		DIR=$(cd "$DIR" && pwd -P)
		topic_cmd "${pos[0]}" "${pos[1]}"
		;;
	esac
}

main "$@"
