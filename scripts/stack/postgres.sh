# shellcheck shell=bash
# Postgres for scripts/stack.sh (sourced): initdb + pg_ctl in DIR/pg, as the
# `postgres` user when run as root, on a free loopback port.

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

# ---- one server of a running stack (stack.sh stop|start|pid postgres)
pg_pid() {
	local pid
	pg_layout
	pid=$(read_pid "$PG_DATA/postmaster.pid")
	pid_matches "$pid" "-D $PG_DATA " || die "postgres is not running in $DIR"
	printf '%s\n' "$pid"
}

pg_service_stop() { # MODE: fast or immediate (as in a crash)
	local bindir
	pg_running || return 0
	bindir=$(pg_bindir)
	log "stopping Postgres ($1)"
	as_pg "$bindir/pg_ctl" stop -D "$PG_DATA" -m "$1" -w -t 30 >/dev/null
}

pg_service_start() {
	local bindir
	pg_running && return 0
	bindir=$(pg_bindir)
	[[ -s $DIR/pg.opts ]] || die "no Postgres was set up in $DIR"
	as_pg "$bindir/pg_ctl" start -D "$PG_DATA" -l "$PG_LOG" -w \
		-t "${RS_DB_START_TIMEOUT:-30}" -o "$(<"$DIR/pg.opts")" >>"$DIR/initdb.log" 2>&1 ||
		{
			show_log "$PG_LOG"
			die "Postgres did not start again"
		}
}
