# shellcheck shell=bash
# Redis for scripts/stack.sh (sourced): redis-server without persistence in
# DIR/redis, on a free loopback port.

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

# ---- one server of a running stack (stack.sh stop|start|pid redis)
redis_pid() {
	redis_running || die "redis is not running in $DIR"
	read_pid "$DIR/redis.pid"
}

redis_service_start() {
	local port
	redis_running && return 0
	port=$(env_value RS_REDIS_PORT)
	redis_launch "$port" || die "Redis port $port is taken"
}
