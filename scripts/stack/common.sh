# shellcheck shell=bash
# Shared by the parts of scripts/stack.sh (sourced, not run): logging, the
# processes it owns, free ports, the stack directory and its env files.

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
		# shellcheck disable=SC2034 # the result, read by the caller
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

env_value() { # KEY: its value in DIR/env
	[[ -s $DIR/env ]] || die "nothing is running in $DIR (no $DIR/env)"
	sed -n "s/^$1=//p" "$DIR/env" | tail -n 1
}
