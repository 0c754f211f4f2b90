#!/usr/bin/env bash
# stack.sh - throw-away local servers for refstream's tests and demos (no Docker).
#
# Everything an `up` starts lives in one directory (--dir) on free 127.0.0.1 ports
# and is recorded there by PID files; `down` stops exactly that and nothing else.
# The shell-sourceable DIR/env tells clients where the servers are.
#
#   db     Postgres (scripts/stack/postgres.sh) + Redis (scripts/stack/redis.sh)
#   kafka  a real Apache Kafka broker (scripts/stack/kafka.sh)
# Shared helpers: scripts/stack/common.sh.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO_DIR=$(cd "$SCRIPT_DIR/.." && pwd -P)
readonly SCRIPT_DIR REPO_DIR
readonly KAFKA_VERSION=3.9.1
# The topics refstream reads and writes by default; tests may add their own.
readonly DEFAULT_TOPICS=(signups payments referral-credited referral-reversed refstream-dlq)
# Written into every directory `up` uses; `--purge` refuses to delete a directory
# without it, so a mistyped --dir can never cost anybody their files.
readonly MARKER=.refstream-stack
readonly PORT_ATTEMPTS=3

# shellcheck source=scripts/stack/common.sh
. "$SCRIPT_DIR/stack/common.sh"
# shellcheck source=scripts/stack/postgres.sh
. "$SCRIPT_DIR/stack/postgres.sh"
# shellcheck source=scripts/stack/redis.sh
. "$SCRIPT_DIR/stack/redis.sh"
# shellcheck source=scripts/stack/kafka.sh
. "$SCRIPT_DIR/stack/kafka.sh"

usage() {
	cat <<'EOF'
Usage:
  stack.sh up db    --dir DIR                 Postgres + Redis
  stack.sh up kafka --dir DIR                 Apache Kafka 3.9.1 broker (KRaft, single node)
  stack.sh topic    --dir DIR NAME PARTITIONS Create a topic on the broker running in DIR
  stack.sh down     [db|kafka] --dir DIR [--purge]
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
  RS_DB_START_TIMEOUT, RS_KAFKA_START_TIMEOUT  seconds (default 30, 90)
EOF
}

# ---------------------------------------------------------------------------
# up db / down db: Postgres and Redis together
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
# One server of a running stack: stop / start / pid (fault injection). Data,
# ports and env stay as they are, so clients reconnect to the same address.
# ---------------------------------------------------------------------------
service() { # ACTION SERVER IMMEDIATE(true|false)
	case $1/$2 in
	pid/postgres) pg_pid ;;
	pid/redis) redis_pid ;;
	pid/kafka) kafka_pid ;;
	stop/postgres) if $3; then pg_service_stop immediate; else pg_service_stop fast; fi ;;
	stop/redis) redis_stop ;;
	stop/kafka) kafka_stop ;;
	start/postgres) pg_service_start ;;
	start/redis) redis_service_start ;;
	start/kafka) kafka_service_start ;;
	esac
	[[ $1 != start ]] || log "$2 running again in $DIR"
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
	all | kafka)
		kafka_stop
		rm -f "$DIR/env.kafka"
		;;&
	all | db) down_db ;;
	esac
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
	local cmd=${1:-} sub='' purge=false immediate=false pos=()
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
	[[ $cmd == down || $purge == false ]] || bad_usage "--purge only goes with down"
	[[ $cmd == stop || $immediate == false ]] || bad_usage "--immediate only goes with stop"

	case $cmd in
	up)
		((${#pos[@]} == 1)) || bad_usage "up needs exactly one of: db kafka"
		sub=${pos[0]}
		case $sub in
		db | kafka) ;;
		*) bad_usage "unknown service: $sub" ;;
		esac
		prepare_dir
		"up_$sub"
		;;
	down)
		((${#pos[@]} <= 1)) || bad_usage "down takes at most one service"
		sub=${pos[0]:-all}
		case $sub in
		all | db | kafka) ;;
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
		service "$cmd" "${pos[0]}" "$immediate"
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
