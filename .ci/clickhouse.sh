#!/usr/bin/env bash
# Starts or stops a private ClickHouse server for tests, on loopback only,
# with its config, data, tmp and logs all under DIR (no systemd, no /etc).
#
#   .ci/clickhouse.sh start DIR    start it and wait until it answers
#   .ci/clickhouse.sh stop DIR     stop it and wait until it is gone
#
# Ports: CH_TCP_PORT (native, default 9000) and CH_HTTP_PORT (default 8123).
# CH_CLUSTER="NAME=HOST:PORT,HOST:PORT,..." also declares the cluster NAME,
# one shard per entry (remote_servers): start every listed server with the
# same CH_CLUSTER. An entry HOST:PORT|HOST:PORT is one shard of replicas
# (internal_replication), which needs ZooKeeper: CH_ZOOKEEPER=HOST:PORT,
# each server's CH_MACROS="shard=01,replica=r1" and CH_INTERSERVER_PORT.
# Works as root: the data directory is created by, and so owned by, the
# user running the script, which is what clickhouse-server checks.
set -euo pipefail

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd=$1
dir=$(mkdir -p "$2" && cd "$2" && pwd)
tcp=${CH_TCP_PORT:-9000}
http=${CH_HTTP_PORT:-8123}
pidfile=$dir/clickhouse.pid
wait_secs=${CH_WAIT_SECS:-60}

log_tail() {
	echo "--- $dir/log/clickhouse-server.log (tail) ---" >&2
	tail -n 30 "$dir/log/clickhouse-server.log" >&2 2>/dev/null || true
	echo "--- $dir/log/stdout.log (tail) ---" >&2
	tail -n 30 "$dir/log/stdout.log" >&2 2>/dev/null || true
}

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# remote_servers renders CH_CLUSTER as ClickHouse's remote_servers section.
remote_servers() {
	[ -n "${CH_CLUSTER:-}" ] || return 0
	local name=${CH_CLUSTER%%=*} hosts=${CH_CLUSTER#*=} hp
	echo "    <remote_servers>"
	echo "        <$name>"
	local shard replicas
	for shard in ${hosts//,/ }; do
		echo "            <shard>"
		replicas=${shard//|/ }
		[ "$replicas" = "$shard" ] || echo "                <internal_replication>true</internal_replication>"
		for hp in $replicas; do
			echo "                <replica><host>${hp%:*}</host><port>${hp##*:}</port></replica>"
		done
		echo "            </shard>"
	done
	echo "        </$name>"
	echo "    </remote_servers>"
}

# zookeeper renders CH_ZOOKEEPER, CH_MACROS and, for replicas to fetch
# each other's parts, CH_INTERSERVER_PORT.
zookeeper() {
	if [ -n "${CH_ZOOKEEPER:-}" ]; then
		echo "    <zookeeper><node><host>${CH_ZOOKEEPER%:*}</host><port>${CH_ZOOKEEPER##*:}</port></node></zookeeper>"
	fi
	if [ -n "${CH_INTERSERVER_PORT:-}" ]; then
		echo "    <interserver_http_host>127.0.0.1</interserver_http_host>"
		echo "    <interserver_http_port>$CH_INTERSERVER_PORT</interserver_http_port>"
	fi
	if [ -n "${CH_MACROS:-}" ]; then
		local kv
		echo "    <macros>"
		for kv in ${CH_MACROS//,/ }; do
			echo "        <${kv%%=*}>${kv#*=}</${kv%%=*}>"
		done
		echo "    </macros>"
	fi
}

write_config() {
	mkdir -p "$dir/data" "$dir/tmp" "$dir/user_files" "$dir/format_schemas" "$dir/log"
	cat >"$dir/config.xml" <<EOF
<?xml version="1.0"?>
<yandex>
    <logger>
        <level>warning</level>
        <log>$dir/log/clickhouse-server.log</log>
        <errorlog>$dir/log/clickhouse-server.err.log</errorlog>
        <size>100M</size>
        <count>2</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>$tcp</tcp_port>
    <http_port>$http</http_port>
    <path>$dir/data/</path>
    <tmp_path>$dir/tmp/</tmp_path>
    <user_files_path>$dir/user_files/</user_files_path>
    <format_schema_path>$dir/format_schemas/</format_schema_path>
    <users_config>$dir/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <max_concurrent_queries>100</max_concurrent_queries>
    <mark_cache_size>268435456</mark_cache_size>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <mlock_executable>false</mlock_executable>
$(remote_servers)
$(zookeeper)
</yandex>
EOF
	cat >"$dir/users.xml" <<EOF
<?xml version="1.0"?>
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks>
                <ip>127.0.0.1</ip>
                <ip>::1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
EOF
}

start() {
	if running; then
		echo "clickhouse already running in $dir (pid $(cat "$pidfile"))" >&2
		return 0
	fi
	command -v clickhouse-server >/dev/null || { echo "clickhouse-server not installed" >&2; exit 1; }
	# Another server on our ports would answer the readiness check below in
	# place of ours, so refuse up front.
	local p
	for p in "$tcp" "$http"; do
		if port_busy "$p"; then
			echo "port 127.0.0.1:$p is already in use (another ClickHouse?); set CH_TCP_PORT/CH_HTTP_PORT" >&2
			exit 1
		fi
	done
	write_config
	# setsid: the server must not share the caller's process group (a ^C in
	# the terminal is handled by the trap, which calls stop).
	setsid clickhouse-server --config-file="$dir/config.xml" >"$dir/log/stdout.log" 2>&1 </dev/null &
	echo $! >"$pidfile"
	for _ in $(seq 1 $((wait_secs * 5))); do
		if ! running; then
			echo "clickhouse-server exited during startup" >&2
			log_tail
			rm -f "$pidfile"
			exit 1
		fi
		if clickhouse-client --host 127.0.0.1 --port "$tcp" --query 'SELECT 1' >/dev/null 2>&1; then
			echo "clickhouse $(clickhouse-client --host 127.0.0.1 --port "$tcp" --query 'SELECT version()') on 127.0.0.1:$tcp (http $http), pid $(cat "$pidfile"), dir $dir"
			return 0
		fi
		sleep 0.2
	done
	echo "clickhouse did not answer on 127.0.0.1:$tcp within ${wait_secs}s" >&2
	log_tail
	stop
	exit 1
}

stop() {
	[ -f "$pidfile" ] || return 0
	local pid
	pid=$(cat "$pidfile")
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 1 150); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.2
		done
		if kill -0 "$pid" 2>/dev/null; then
			echo "clickhouse (pid $pid) ignored SIGTERM for 30s; killing it" >&2
			kill -KILL "$pid" 2>/dev/null || true
			while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
		fi
	fi
	rm -f "$pidfile"
}

case $cmd in
start) start ;;
stop) stop ;;
*) usage ;;
esac
