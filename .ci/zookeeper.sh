#!/usr/bin/env bash
# Starts or stops a private ZooKeeper (Debian's zookeeper package) for the
# replicated ClickHouse tests, on loopback only, with its config, data and
# log under DIR.
#
#   .ci/zookeeper.sh start DIR    start it and wait until it answers ruok
#   .ci/zookeeper.sh stop DIR     stop it
#
# Port: ZK_PORT (default 2181).
set -euo pipefail

[ $# -eq 2 ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }
cmd=$1
dir=$(mkdir -p "$2" && cd "$2" && pwd)
port=${ZK_PORT:-2181}
pidfile=$dir/zookeeper.pid

ruok() { (exec 3<>"/dev/tcp/127.0.0.1/$port" && echo ruok >&3 && timeout 2 cat <&3) 2>/dev/null; }

start() {
	if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
		echo "zookeeper already running in $dir" >&2
		return 0
	fi
	mkdir -p "$dir/data"
	cat >"$dir/zoo.cfg" <<CFG
tickTime=2000
dataDir=$dir/data
clientPort=$port
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=ruok
CFG
	setsid java -Xmx256m -cp "/usr/share/java/*" -Dzookeeper.log.dir="$dir" \
		org.apache.zookeeper.server.quorum.QuorumPeerMain "$dir/zoo.cfg" >"$dir/out.log" 2>&1 </dev/null &
	echo $! >"$pidfile"
	for _ in $(seq 1 150); do
		if [ "$(ruok)" = "imok" ]; then
			echo "zookeeper on 127.0.0.1:$port, pid $(cat "$pidfile"), dir $dir"
			return 0
		fi
		sleep 0.2
	done
	echo "zookeeper did not answer on 127.0.0.1:$port" >&2
	tail -n 30 "$dir/out.log" >&2 || true
	stop
	exit 1
}

stop() {
	[ -f "$pidfile" ] || return 0
	local pid
	pid=$(cat "$pidfile")
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.2
	done
	kill -KILL "$pid" 2>/dev/null || true
	rm -f "$pidfile"
}

case $cmd in
start) start ;;
stop) stop ;;
*) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
