#!/usr/bin/env bash
# A three-node pg_cluster demo on loopback, for a first look.
#
# Usage: bash scripts/demo.sh [--no-deps | --no-build] [demo|start|stop|clean]
#
#   demo   (default) install packages, build and install pg_cluster, create
#          a fresh 3-node cluster (n1 primary, n2 and n3 streaming standbys),
#          show its views, stop and restart n3 to show fault detection,
#          kill the primary (kill -9 of the whole instance) while a client
#          writes, to show a failover, restart the old primary under
#          pg_cluster_ctl (it rejoins as a standby after pg_rewind), switch
#          the primary role back to n1 with pg_cluster.switchover(), and
#          leave the cluster running.  Every server runs under
#          pg_cluster_ctl.  An earlier demo cluster is replaced.
#   start  start the existing demo cluster again (after "stop"), primaries
#          first, whichever node is the primary now.
#   stop   stop the three servers (fast shutdown), standbys first; the
#          data stays.
#   clean  stop the servers and remove the demo directory.
#
#   --no-deps   do not install Debian packages (still build and install)
#   --no-build  do not install packages nor build: use the installed pg_cluster
#
# Environment:
#   PGC_DEMO_DIR   where data, logs and sockets go (default /tmp/pg_cluster-demo)
#   PGC_DEMO_PORT  port of n1; n2 and n3 use the next two (default 54321)
#
# Run it as root (the servers then run as the user "postgres": PostgreSQL
# refuses to run as root) or as a normal user with sudo (to install).
# Only 127.0.0.1 and unix sockets in the demo directory are used.

# bench/overhead.sh sources this file for its cluster helpers (the functions
# cluster_* and node_*); sourced, it only defines them.

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$here/scripts/common.sh"

# What the cluster helpers work on; a script sourcing this file may change
# these after sourcing.
cluster_dir=${PGC_DEMO_DIR:-/tmp/pg_cluster-demo}
cluster_port_base=${PGC_DEMO_PORT:-54321}
cluster_nodes=(n1 n2 n3)
cluster_marker_name=PG_CLUSTER_DEMO
cluster_what="pg_cluster demo cluster"
# the environment variables that choose the directory and the ports
cluster_dir_env=PGC_DEMO_DIR
cluster_port_env=PGC_DEMO_PORT
# pg_cluster.* timings (the defaults of the extension, spelled out)
cluster_heartbeat_interval=100ms
cluster_failover_timeout=1s
cluster_connect_timeout=500ms
# more postgresql.conf lines for every node
cluster_extra_conf=""
# shared_preload_libraries: '' builds a plain streaming cluster without
# pg_cluster (a benchmark's baseline)
cluster_preload=pg_cluster
# seconds to wait for a condition before giving up
cluster_wait_timeout=${PGC_DEMO_TIMEOUT:-60}
# 1: every server runs under pg_cluster_ctl, which restarts a demoted node
# as a standby of the new primary (pg_rewind first when needed)
cluster_supervised=${cluster_supervised:-1}

# ---------------------------------------------------------------- helpers

section() {
	printf '\n=== %s\n' "$*"
}

note() {
	printf '    %s\n' "$*"
}

die() {
	printf '%s: error: %s\n' "$(basename "$0")" "$*" >&2
	exit 1
}

now() {
	date +%s.%N
}

# elapsed T0 [T1]: seconds between two now() values, 3 decimals.
elapsed() {
	awk -v a="$1" -v b="${2:-$(now)}" 'BEGIN { printf "%.3f", b - a }'
}

# run_as_runner CMD ARGS...: runs a command (argv, quoted here) as the user
# that runs the servers, from / (the runner may not read the current dir).
run_as_runner() {
	pgc_as_runner "cd / && $(printf '%q ' "$@")"
}

node_index() {
	local i
	for i in "${!cluster_nodes[@]}"; do
		if [ "${cluster_nodes[$i]}" = "$1" ]; then
			echo "$i"
			return 0
		fi
	done
	die "unknown node $1"
}

node_port() {
	echo $((cluster_port_base + $(node_index "$1")))
}

node_data() {
	echo "$cluster_dir/$1"
}

node_log() {
	echo "$cluster_dir/$1.log"
}

# node_psql NODE PSQL-ARGS...: psql as the superuser postgres on NODE,
# through the node's unix socket in the cluster directory.
node_psql() {
	local node=$1
	shift
	run_as_runner "$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 \
		-h "$cluster_dir" -p "$(node_port "$node")" -U postgres -d postgres "$@"
}

# node_value NODE SQL: the unaligned, header-less result of SQL on NODE.
node_value() {
	node_psql "$1" -At -c "$2"
}

node_is_running() {
	[ -f "$(node_data "$1")/PG_VERSION" ] &&
		run_as_runner "$PG_BINDIR/pg_ctl" -D "$(node_data "$1")" status >/dev/null 2>&1
}

node_ctl_pidfile() {
	echo "$cluster_dir/$1.ctl.pid"
}

node_start() {
	if [ "$cluster_supervised" = 1 ]; then
		# pg_cluster_ctl in its own session, its output (and the server's)
		# appended to the node's log
		pgc_as_runner "cd / && setsid $(printf '%q' "$PG_BINDIR/pg_cluster_ctl") run -D $(printf '%q' "$(node_data "$1")") \
			>>$(printf '%q' "$(node_log "$1")") 2>&1 </dev/null & echo \$! >$(printf '%q' "$(node_ctl_pidfile "$1")")"
		wait_until "$1 to accept connections" run_as_runner "$PG_BINDIR/pg_isready" -q \
			-h "$cluster_dir" -p "$(node_port "$1")"
		return 0
	fi
	run_as_runner "$PG_BINDIR/pg_ctl" -D "$(node_data "$1")" -l "$(node_log "$1")" \
		-w -t "$cluster_wait_timeout" start >/dev/null ||
		{
			tail -n 30 "$(node_log "$1")" >&2 || true
			die "could not start $1 (log: $(node_log "$1"))"
		}
}

# node_stop NODE: a fast shutdown (through pg_cluster_ctl when it runs the
# node, so that it does not restart it).
node_stop() {
	local pidfile pid deadline
	pidfile=$(node_ctl_pidfile "$1")
	if [ -f "$pidfile" ]; then
		pid=$(cat "$pidfile")
		if kill -0 "$pid" 2>/dev/null; then
			pgc_as_runner "kill -TERM $pid" || true
			deadline=$(($(date +%s) + cluster_wait_timeout))
			while kill -0 "$pid" 2>/dev/null; do
				[ "$(date +%s)" -lt "$deadline" ] || die "pg_cluster_ctl of $1 (pid $pid) did not stop"
				sleep 0.05
			done
		fi
		rm -f "$pidfile" 2>/dev/null || pgc_as_root rm -f "$pidfile"
	fi
	if node_is_running "$1"; then
		run_as_runner "$PG_BINDIR/pg_ctl" -D "$(node_data "$1")" -m fast \
			-w -t "$cluster_wait_timeout" stop >/dev/null
	fi
}

# wait_until DESCRIPTION CMD ARGS...: polls CMD until it succeeds, or dies
# with diagnostics after cluster_wait_timeout seconds.
wait_until() {
	local what=$1
	shift
	local deadline=$(($(date +%s) + cluster_wait_timeout))
	until "$@" >/dev/null 2>&1; do
		if [ "$(date +%s)" -ge "$deadline" ]; then
			printf '%s: timed out after %s s waiting for %s\n' "$(basename "$0")" "$cluster_wait_timeout" "$what" >&2
			cluster_diagnostics >&2
			exit 1
		fi
		sleep 0.2
	done
}

# print_table: formats rows of fields separated by \037 (the first row is
# the header) like psql's aligned output.
print_table() {
	awk -F '\037' '
		{
			for (i = 1; i <= NF; i++) {
				cell[NR, i] = $i
				if (length($i) > width[i]) width[i] = length($i)
			}
			if (NF > cols) cols = NF
			rows = NR
		}
		END {
			for (r = 1; r <= rows; r++) {
				line = ""
				for (i = 1; i <= cols; i++)
					line = line sprintf(i == 1 ? " %-*s " : "| %-*s ", width[i], cell[r, i])
				sub(/ +$/, "", line)
				print line
				if (r == 1) {
					line = ""
					for (i = 1; i <= cols; i++) {
						dashes = sprintf("%*s", width[i] + 2, "")
						gsub(/ /, "-", dashes)
						line = line (i == 1 ? "" : "+") dashes
					}
					print line
				}
			}
			printf "(%d row%s)\n", rows - 1, rows == 2 ? "" : "s"
		}'
}

# query_nodes SQL NODES...: runs SQL on every node and prints one table of
# all the rows (the header once).
query_nodes() {
	local sql=$1 node first=1
	shift
	for node in "$@"; do
		if [ $first = 1 ]; then
			node_psql "$node" -A -F $'\037' -P footer=off -P null=- -c "$sql"
			first=0
		else
			node_psql "$node" -A -t -F $'\037' -P null=- -c "$sql"
		fi
	done | print_table
}

# query_nodes_transposed SQL NODES...: runs SQL (one row) on every node and
# prints a table with a line per column and a column per node.
query_nodes_transposed() {
	local sql=$1 node
	shift
	for node in "$@"; do
		printf '\036%s\n' "$node"
		node_psql "$node" -A -t -x -F $'\037' -P null=- -c "$sql"
	done | awk -F '\037' '
		/^\036/ { n++; node[n] = substr($0, 2); next }
		NF == 2 {
			if (!($1 in row)) { rows++; name[rows] = $1; row[$1] = rows }
			value[row[$1], n] = $2
		}
		END {
			printf "column"
			for (j = 1; j <= n; j++) printf "\037%s", node[j]
			printf "\n"
			for (i = 1; i <= rows; i++) {
				printf "%s", name[i]
				for (j = 1; j <= n; j++) printf "\037%s", value[i, j]
				printf "\n"
			}
		}' | print_table | sed '$d'
}

# ---------------------------------------------------------------- cluster

cluster_marker() {
	echo "$cluster_dir/$cluster_marker_name"
}

cluster_exists() {
	[ -f "$(cluster_marker)" ]
}

cluster_peers() {
	local node list=""
	for node in "${cluster_nodes[@]}"; do
		list="$list${list:+,}$node=127.0.0.1:$(node_port "$node")"
	done
	echo "$list"
}

cluster_running_nodes() {
	local node
	for node in "${cluster_nodes[@]}"; do
		if node_is_running "$node"; then echo "$node"; fi
	done
}

# node_is_standby NODE: NODE's data directory is a standby's (it has
# standby.signal; a promotion removes it).  Works whether NODE runs or not.
node_is_standby() {
	[ -f "$(node_data "$1")/standby.signal" ]
}

# cluster_nodes_standbys_first: the nodes, standbys first (in reverse
# order), then the primaries (after a failover there may be two: the
# leader and a fenced old primary).
cluster_nodes_standbys_first() {
	local i node
	for ((i = ${#cluster_nodes[@]} - 1; i >= 0; i--)); do
		node=${cluster_nodes[$i]}
		if node_is_standby "$node"; then echo "$node"; fi
	done
	for ((i = ${#cluster_nodes[@]} - 1; i >= 0; i--)); do
		node=${cluster_nodes[$i]}
		if ! node_is_standby "$node"; then echo "$node"; fi
	done
}

# cluster_stop: stops every node that runs, standbys first, so no standby
# sees its primary go away and stands for election meanwhile.
cluster_stop() {
	local node
	for node in $(cluster_nodes_standbys_first); do
		node_stop "$node"
	done
}

# cluster_start: starts every node that does not run, primaries first
# (whichever nodes are primaries now), so no standby waits for a primary
# longer than the failover timeout and stands for election.
cluster_start() {
	local node
	for node in "${cluster_nodes[@]}"; do
		node_is_standby "$node" || node_is_running "$node" || node_start "$node"
	done
	for node in "${cluster_nodes[@]}"; do
		node_is_running "$node" || node_start "$node"
	done
}

# node_kill_instance NODE: a crash of the whole instance: SIGKILL of the
# postmaster and of all its children at the same moment.  PostgreSQL's
# children call setsid(), so a kill of the process group would miss them;
# the postmaster is stopped (SIGSTOP) first so it forks no child between
# the listing and the kill.  Sets killed_at (now() right after the kill:
# whatever a client got from NODE before it was sent before the kill) and
# killed_count (how many processes), then waits until every one is gone.
node_kill_instance() {
	local pm pids pid deadline
	pm=$(head -n 1 "$(node_data "$1")/postmaster.pid" 2>/dev/null) || true
	if [ -z "$pm" ] || ! kill -0 "$pm" 2>/dev/null; then
		die "$1 does not run"
	fi
	kill -STOP "$pm"
	pids="$pm $(ps -o pid= --ppid "$pm" | tr '\n' ' ')"
	# shellcheck disable=SC2086
	kill -KILL $pids
	# a builtin (bash 5), so no fork between the kill and the time
	killed_at=${EPOCHREALTIME:-$(now)}
	killed_count=$(wc -w <<<"$pids")
	deadline=$(($(date +%s) + cluster_wait_timeout))
	for pid in $pids; do
		# gone, or a zombie its new parent has not reaped yet
		while kill -0 "$pid" 2>/dev/null && [[ "$(ps -o stat= -p "$pid" 2>/dev/null)" != Z* ]]; do
			[ "$(date +%s)" -lt "$deadline" ] || die "process $pid of $1 survives SIGKILL"
			sleep 0.01
		done
	done
}

# cluster_remove: stops and deletes a cluster made by these helpers.  A
# directory without our marker is left alone unless it is empty.
cluster_remove() {
	if cluster_exists; then
		cluster_stop
		run_as_runner rm -rf "$cluster_dir"
		if [ -e "$cluster_dir" ]; then
			pgc_as_root rm -rf "$cluster_dir"
		fi
	elif [ -d "$cluster_dir" ] && [ -n "$(ls -A "$cluster_dir" 2>/dev/null)" ]; then
		die "$cluster_dir exists and is not a $cluster_what (no $cluster_marker_name file); remove it or set $cluster_dir_env to another directory"
	fi
}

# cluster_make_dir: an empty directory owned by the runner.
cluster_make_dir() {
	local runner
	runner=$(pgc_runner)
	if [ "$(id -u)" = 0 ]; then
		install -d -m 0755 -o "$runner" -g "$(id -gn "$runner")" "$cluster_dir"
	else
		mkdir -p "$cluster_dir"
	fi
	run_as_runner test -w "$cluster_dir" ||
		die "user $runner cannot write to $cluster_dir; set $cluster_dir_env to a directory it can reach"
}

cluster_check_ports() {
	local node port
	command -v ss >/dev/null || return 0
	for node in "${cluster_nodes[@]}"; do
		port=$(node_port "$node")
		if [ -n "$(ss -Hltn "sport = :$port" 2>/dev/null)" ]; then
			die "port $port (for $node) is already in use; set $cluster_port_env to another base port"
		fi
	done
}

# cluster_node_conf NODE: the postgresql.conf lines of the primary; the
# standbys copy them with the base backup and override name and port.
cluster_node_conf() {
	cat <<EOF

# ---- added by pg_cluster's scripts/demo.sh
listen_addresses = '127.0.0.1'
port = $(node_port "$1")
unix_socket_directories = '$cluster_dir'
cluster_name = '$1'
max_connections = 40
shared_preload_libraries = '$cluster_preload'
wal_log_hints = on
wal_keep_size = '256MB'
log_line_prefix = '%m [%p] %q%a '
pg_cluster.node_name = '$1'
pg_cluster.peers = '$(cluster_peers)'
pg_cluster.peer_conninfo = 'dbname=postgres user=postgres'
pg_cluster.heartbeat_interval = '$cluster_heartbeat_interval'
pg_cluster.failover_timeout = '$cluster_failover_timeout'
pg_cluster.connect_timeout = '$cluster_connect_timeout'
$cluster_extra_conf
EOF
}

cluster_standby_conf() {
	cat <<EOF

# ---- this standby (cloned from ${cluster_nodes[0]})
port = $(node_port "$1")
cluster_name = '$1'
pg_cluster.node_name = '$1'
EOF
}

# append_to_file FILE: appends stdin to FILE as the runner.
append_to_file() {
	pgc_as_runner "cat >> $(printf '%q' "$1")"
}

# cluster_create: a fresh cluster: the first node a primary with the
# extension, the others streaming standbys cloned by pg_basebackup -R.
cluster_create() {
	local primary=${cluster_nodes[0]} node

	cluster_remove
	cluster_check_ports
	cluster_make_dir
	printf '%s in %s, created %s by %s\n' "$cluster_what" "$cluster_dir" "$(date -Is)" \
		"$(id -un)" | append_to_file "$(cluster_marker)"

	note "initdb $primary"
	run_as_runner "$PG_BINDIR/initdb" -D "$(node_data "$primary")" -U postgres \
		--auth=trust -E UTF8 --locale=C.UTF-8 >"$cluster_dir/initdb.log" 2>&1 ||
		{
			cat "$cluster_dir/initdb.log" >&2
			die "initdb failed"
		}
	cluster_node_conf "$primary" | append_to_file "$(node_data "$primary")/postgresql.conf"
	note "start $primary (port $(node_port "$primary"))"
	node_start "$primary"
	[ -z "$cluster_preload" ] || node_psql "$primary" -c "CREATE EXTENSION pg_cluster"

	for node in "${cluster_nodes[@]:1}"; do
		note "pg_basebackup -R $node from $primary"
		run_as_runner "$PG_BINDIR/pg_basebackup" -h 127.0.0.1 -p "$(node_port "$primary")" \
			-U postgres -D "$(node_data "$node")" -R -X stream -c fast ||
			die "pg_basebackup of $node failed"
		cluster_standby_conf "$node" | append_to_file "$(node_data "$node")/postgresql.conf"
		note "start $node (port $(node_port "$node"))"
		node_start "$node"
	done
}

# node_sees_reachable NODE COUNT: NODE shows COUNT reachable nodes (itself
# included) in pg_cluster.nodes.
node_sees_reachable() {
	[ "$(node_value "$1" "SELECT count(*) FROM pg_cluster.nodes WHERE reachable")" = "$2" ]
}

# node_sees NODE PEER t|f: NODE shows PEER as reachable (t) or not (f).
node_sees() {
	[ "$(node_value "$1" "SELECT reachable FROM pg_cluster.nodes WHERE node_name = '$2'")" = "$3" ]
}

# cluster_wait_all_reachable: every node sees every node reachable.
cluster_wait_all_reachable() {
	local node
	for node in "${cluster_nodes[@]}"; do
		wait_until "$node to see ${#cluster_nodes[@]} reachable nodes" \
			node_sees_reachable "$node" "${#cluster_nodes[@]}"
	done
}

# cluster_leader: the leader all running nodes name in pg_cluster.status,
# provided they agree and the leader is not fenced (it accepts commits);
# fails otherwise.
cluster_leader() {
	local node leader first=""
	for node in $(cluster_running_nodes); do
		leader=$(node_value "$node" "SELECT coalesce(leader, '') FROM pg_cluster.status") || return 1
		[ -n "$leader" ] || return 1
		[ -z "$first" ] || [ "$leader" = "$first" ] || return 1
		first=$leader
	done
	[ -n "$first" ] &&
		[ "$(node_value "$first" "SELECT fenced FROM pg_cluster.status")" = f ] &&
		echo "$first"
}

# cluster_wait_leader: waits until the running nodes agree on an unfenced
# leader, and prints its name.
cluster_wait_leader() {
	wait_until "the nodes to agree on a leader that accepts commits" cluster_leader
	cluster_leader
}

cluster_diagnostics() {
	local node
	for node in $(cluster_running_nodes); do
		echo "--- pg_cluster.nodes and pg_cluster.status on $node"
		node_psql "$node" -c "SELECT node_name, reachable, connection, last_error FROM pg_cluster.nodes" || true
		node_psql "$node" -c "SELECT state, term, leader, fenced FROM pg_cluster.status" || true
	done
	for node in "${cluster_nodes[@]}"; do
		if [ -f "$(node_log "$node")" ]; then
			echo "--- last lines of $(node_log "$node")"
			tail -n 15 "$(node_log "$node")"
		fi
	done
}

# ---------------------------------------------------------------- the demo

nodes_columns="node_name, host, port, role, reachable, is_leader, term, timeline, lsn, lag_bytes, round(rtt_ms::numeric, 2) AS rtt_ms"

# one_line X: an SQL expression of the text X on one line (libpq messages
# have several) and at most 90 characters.
one_line() {
	local flat="regexp_replace(trim($1), '[[:space:]]+', ' ', 'g')"
	echo "CASE WHEN length($flat) > 90 THEN left($flat, 87) || '...' ELSE $flat END"
}

show_nodes() {
	local node=$1 extra=${2:-}
	echo "pg_cluster.nodes as $node sees it:"
	node_psql "$node" -P null=- -c "SELECT $nodes_columns$extra FROM pg_cluster.nodes"
}

show_status() {
	echo "TABLE pg_cluster.status on each node, one column per node:"
	query_nodes_transposed "TABLE pg_cluster.status" "$@"
}

show_events() {
	local node=$1 count=$2
	echo "The last $count of pg_cluster.events on $node:"
	node_psql "$node" -c "SELECT seq, event_time::time(3) AS time, node_name, kind, $(one_line detail) AS detail
		FROM (SELECT * FROM pg_cluster.events ORDER BY seq DESC LIMIT $count) AS e ORDER BY seq"
}

demo_build() {
	# common.sh prints its own headers
	if [ "$install_packages" = 1 ]; then
		pgc_install_packages
	fi
	if [ "$build" = 1 ]; then
		pgc_build_and_install
	fi
	[ -f "$("$PG_CONFIG" --pkglibdir)/pg_cluster.so" ] ||
		die "pg_cluster is not installed; run without --no-build"
}

demo_create() {
	local t0 leader
	section "Creating a 3-node cluster in $cluster_dir (runs as user $(pgc_runner))"
	if cluster_exists; then
		note "replacing the demo cluster already there"
	fi
	cluster_create
	t0=$(now)
	section "Waiting until every node sees the 3 nodes reachable and they agree on a leader"
	cluster_wait_all_reachable
	note "all nodes reachable from everywhere after $(elapsed "$t0") s"
	leader=$(cluster_wait_leader)
	note "every node names $leader the leader after $(elapsed "$t0") s"
}

demo_show() {
	local uri
	section "The cluster, as n1 sees it: TABLE pg_cluster.nodes"
	show_nodes n1
	section "Each node's own view of itself: TABLE pg_cluster.status"
	show_status "${cluster_nodes[@]}"
	section "Where clients should connect: SELECT pg_cluster.connection_uri()"
	uri=$(node_value n1 "SELECT pg_cluster.connection_uri()")
	echo "$uri"
	note "(it lists the data nodes; libpq tries them in turn and keeps the read-write one:"
	note " here it lands on $(run_as_runner "$PG_BINDIR/psql" -X -At -U postgres -d "$uri" \
		-c "SELECT current_setting('pg_cluster.node_name') || ', port ' || inet_server_port()"))"
}

demo_fault() {
	local t0 leader
	section "A fault: stopping n3 (fast shutdown)"
	t0=$(now)
	node_stop n3
	note "n3 stopped; waiting for n1 and n2 to notice"
	wait_until "n1 to see n3 unreachable" node_sees n1 n3 f
	wait_until "n2 to see n3 unreachable" node_sees n2 n3 f
	note "n1 and n2 see n3 unreachable $(elapsed "$t0") s after the stop began"
	echo
	show_nodes n1 ", $(one_line last_error) AS last_error"
	echo "and as n2 sees it:"
	node_psql n2 -P null=- -c "SELECT node_name, role, reachable, connection, $(one_line last_error) AS last_error FROM pg_cluster.nodes"
	echo "pg_cluster.status: has_quorum stays true, 2 of 3 nodes are a majority:"
	query_nodes "SELECT node_name, role, state, leader, nodes_total, peers_reachable, has_quorum FROM pg_cluster.status" n1 n2
	echo
	show_events n1 6

	section "Recovery: starting n3 again"
	t0=$(now)
	node_start n3
	cluster_wait_all_reachable
	note "every node sees the 3 nodes reachable again $(elapsed "$t0") s after the start"
	leader=$(cluster_wait_leader)
	note "leader: $leader"
	echo
	show_nodes n1
	show_events n1 3
}

# compact_error TEXT: a libpq or server error on one line; a failed
# multi-host connection as "port: reason" per host, e.g. "54321: Connection
# refused; 54322: session is read-only".
compact_error() {
	local hosts
	hosts=$(sed -n -E 's/.*port ([0-9]+) failed: (.*)/\1: \2/p' <<<"$1" | paste -sd ';' | sed 's/;/; /g')
	if [ -n "$hosts" ]; then
		echo "$hosts"
	else
		head -n 1 <<<"$1" | cut -c 1-150
	fi
}

# demo_writer URI COUNT LOG [TABLE]: a client that inserts a row into TABLE
# (default demo_writes) through the multi-host URI every 100 ms, COUNT
# times, with a new psql (and connection) each time, and logs per attempt
# "EPOCH ok ID" or "EPOCH fail ID MESSAGE" (EPOCH: when psql returned).
demo_writer() {
	local uri=$1 count=$2 log=$3 table=${4:-demo_writes} i out
	for ((i = 1; i <= count; i++)); do
		if out=$("$PG_BINDIR/psql" -X -q -At -U postgres -d "$uri" -v ON_ERROR_STOP=1 \
			-c "INSERT INTO $table (id, at) VALUES ($i, clock_timestamp()) RETURNING id" 2>&1); then
			printf '%s ok %s\n' "$(now)" "$i"
		else
			printf '%s fail %s %s\n' "$(now)" "$i" "$(compact_error "$out")"
		fi >>"$log"
		sleep 0.1
	done
}

# count_ok LOG: the writes LOG records as acknowledged.
count_ok() {
	awk '$2 == "ok"' "$1" | wc -l
}

# new_leader OLD: a node other than OLD that says it is the leader and is
# not fenced; fails if there is none.
new_leader() {
	local node
	for node in $(cluster_running_nodes); do
		[ "$node" != "$1" ] || continue
		if [ "$(node_value "$node" "SELECT state = 'leader' AND NOT fenced FROM pg_cluster.status" 2>/dev/null)" = t ]; then
			echo "$node"
			return 0
		fi
	done
	return 1
}

# node_fenced_under NODE LEADER: NODE says it is fenced and LEADER leads.
node_fenced_under() {
	[ "$(node_value "$1" "SELECT state = 'fenced' AND fenced AND leader = '$2' FROM pg_cluster.status")" = t ]
}

# event_offset NODE T0 SQL-CONDITION: seconds from the epoch T0 to the
# first event of NODE since T0 that matches the condition (3 decimals).
event_offset() {
	node_value "$1" "SELECT round((extract(epoch FROM min(event_time)) - $2)::numeric, 3)
		FROM pg_cluster.events WHERE event_time >= to_timestamp($2) AND ($3)"
}

demo_failover() {
	local old new t_kill t_leader uri log writer_pid node deadline others=()
	local rows last_before first_after landed

	old=$(cluster_wait_leader)
	section "Failover: the primary, $old, crashes while a client writes"
	note "the leader now is $old:"
	query_nodes "SELECT node_name, role, state, term, leader, fenced, timeline FROM pg_cluster.status" \
		"${cluster_nodes[@]}"
	for node in "${cluster_nodes[@]}"; do
		[ "$node" = "$old" ] || others+=("$node")
	done

	uri=$(node_value "$old" "SELECT pg_cluster.connection_uri()")
	node_psql "$old" -c "CREATE TABLE demo_writes (id int PRIMARY KEY, at timestamptz NOT NULL)"
	log=$cluster_dir/demo_writer.log
	: >"$log"
	echo
	echo "A client inserts a row (id, clock_timestamp()) into demo_writes every 100 ms,"
	echo "100 times, with a new psql each time, through the multi-host URI:"
	echo "    $uri"
	demo_writer "$uri" 100 "$log" &
	writer_pid=$!
	deadline=$(($(date +%s) + cluster_wait_timeout))
	until [ "$(count_ok "$log")" -ge 15 ]; do
		[ "$(date +%s)" -lt "$deadline" ] || die "the client could not write (see $log)"
		kill -0 "$writer_pid" 2>/dev/null || die "the client stopped (see $log)"
		sleep 0.05
	done

	node_kill_instance "$old"
	t_kill=$killed_at
	note "$(date -d "@$t_kill" +%T.%3N): kill -9 of $old's postmaster and its $((killed_count - 1)) children" \
		"(after $(count_ok "$log") acknowledged writes)"

	note "waiting for ${others[*]} to elect a new leader that accepts commits..."
	deadline=$(($(date +%s) + cluster_wait_timeout))
	until new=$(new_leader "$old"); do
		if [ "$(date +%s)" -ge "$deadline" ]; then
			echo "no new leader $cluster_wait_timeout s after the kill" >&2
			cluster_diagnostics >&2
			exit 1
		fi
		sleep 0.05
	done
	t_leader=$(now)
	note "$new is the leader, not fenced, $(elapsed "$t_kill" "$t_leader") s after the kill (polled every 50 ms)"
	note "from $new's events: elected $(event_offset "$new" "$t_kill" "kind = 'elected'") s," \
		"promoted (state leader) $(event_offset "$new" "$t_kill" "kind = 'state_changed' AND detail LIKE '%-> leader%'") s after the kill"

	echo
	show_nodes "$new"
	echo "pg_cluster.events since the kill on ${others[*]} (seconds after the kill):"
	query_nodes "SELECT round((extract(epoch FROM event_time) - $t_kill)::numeric, 3) AS after_kill_s,
			current_setting('pg_cluster.node_name') AS on_node, term, node_name, kind, $(one_line detail) AS detail
		FROM pg_cluster.events WHERE event_time >= to_timestamp($t_kill) ORDER BY seq" "${others[@]}"
	for node in "${others[@]}"; do
		[ "$node" != "$new" ] || continue
		echo "$node streams from the new primary (primary_conninfo set by pg_cluster, ALTER SYSTEM + reload):"
		wait_until "$node to stream from $new" node_streams_from "$node" "$new"
		node_psql "$node" -c "SELECT '$node' AS standby, sender_host, sender_port, status, received_tli AS timeline FROM pg_stat_wal_receiver"
	done

	section "What the client saw"
	note "waiting for the client to finish its 100 writes..."
	wait "$writer_pid" || true
	read -r last_before first_after < <(awk -v k="$t_kill" '
		$2 == "ok" && $1 < k { last = $1 }
		$2 == "ok" && $1 > k && first == "" { first = $1 }
		END { print last, first }' "$log")
	if [ -z "$last_before" ] || [ -z "$first_after" ]; then
		die "no write before or after the kill (see $log)"
	fi
	echo "The client's log around the kill ($log; times: when psql returned):"
	awk -v a="$last_before" -v b="$first_after" -v k="$t_kill" '
		$1 >= a && $1 <= b {
			if (!killed && $1 > k) { lines[++n] = k " ---- kill -9 of the primary"; killed = 1 }
			lines[++n] = $0
		}
		END {
			# the first 5 lines and the last 3
			for (i = 1; i <= n; i++)
				if (i <= 5 || i > n - 3) print lines[i]
				else if (i == 6) print "- ...  (" n - 8 " more)"
		}' "$log" | while read -r t rest; do
		if [ "$t" = - ]; then
			printf '    %-12s  %s\n' "" "$rest"
		else
			printf '    %s  %s\n' "$(date -d "@$t" +%T.%3N)" "$rest"
		fi
	done
	note "write gap: $(elapsed "$last_before" "$first_after") s from the last acknowledged write before the kill to the first after it"
	note "$(awk -v a="$last_before" -v b="$first_after" '$2 == "fail" && $1 > a && $1 < b' "$log" | wc -l) attempts failed in between; by message:"
	awk -v a="$last_before" -v b="$first_after" '$2 == "fail" && $1 > a && $1 < b {
			$1 = $2 = $3 = ""; sub(/^ +/, ""); print }' "$log" | sort | uniq -c | sort -rn | head -n 5 |
		sed 's/^/      /'
	rows=$(node_value "$new" "SELECT count(*) FROM demo_writes")
	awk '$2 == "ok" { print $3 }' "$log" >"$cluster_dir/demo_acked.ids"
	node_value "$new" "SELECT id FROM demo_writes" >"$cluster_dir/demo_table.ids"
	note "$(wc -l <"$cluster_dir/demo_acked.ids") writes acknowledged in all; demo_writes on $new has $rows rows;" \
		"acknowledged but missing on $new: $(awk 'NR == FNR { seen[$0] = 1; next } !($0 in seen)' \
			"$cluster_dir/demo_table.ids" "$cluster_dir/demo_acked.ids" | wc -l)"
	note "(replication is asynchronous: a write acknowledged by $old just before the crash and not yet"
	note " streamed would be lost; pg_cluster does not add synchronous replication)"

	section "The old primary, $old, restarts under pg_cluster_ctl: it rejoins as a standby of $new"
	note "(pg_cluster_ctl runs postgres; the extension sees that $new leads a newer timeline,"
	note " writes standby.signal, primary_conninfo and a rejoin marker, and shuts down cleanly;"
	note " pg_cluster_ctl runs pg_rewind against $new and starts it again as a standby)"
	t0=$(now)
	node_start "$old"
	wait_until "$old to stream from $new" node_streams_from "$old" "$new"
	wait_until "$old to be in state streaming" node_in_state "$old" streaming
	note "$old streams from $new $(elapsed "$t0") s after its restart"
	query_nodes "SELECT node_name, role, state, term, leader, fenced, timeline FROM pg_cluster.status" \
		"${cluster_nodes[@]}"
	echo "pg_cluster_ctl's steps, from $(node_log "$old"):"
	grep -E 'pg_cluster_ctl: (postgres stopped to rejoin|running pg_rewind|pg_rewind succeeded|rejoin done)' \
		"$(node_log "$old")" | tail -n 4 | cut -c 1-170 | sed 's/^/    /' || true
	show_events "$old" 3
	note "demo_writes on $old: $(node_value "$old" "SELECT count(*) FROM demo_writes") rows, as on $new"
}

# log_has_acks LOG N: the demo client's LOG has at least N acknowledged writes.
log_has_acks() {
	[ "$(count_ok "$1")" -ge "$2" ]
}

# node_in_state NODE STATE: pg_cluster.status.state of NODE is STATE.
node_in_state() {
	[ "$(node_value "$1" "SELECT state FROM pg_cluster.status")" = "$2" ]
}

demo_switchover() {
	local old target caller t0 t1 log writer_pid last_before first_after gap
	old=$(cluster_wait_leader)
	target=${cluster_nodes[0]}
	[ "$target" != "$old" ] || target=${cluster_nodes[1]}
	for caller in "${cluster_nodes[@]}"; do
		[ "$caller" = "$old" ] || [ "$caller" = "$target" ] || break
	done
	section "Planned switchover: $old hands the primary role back to $target, in one SQL call"
	log=$cluster_dir/demo_switchover_writer.log
	: >"$log"
	node_psql "$old" -c "CREATE TABLE demo_switchover_writes (id int PRIMARY KEY, at timestamptz NOT NULL)"
	echo "The client writes again, into demo_switchover_writes, every 100 ms."
	demo_writer "$(node_value "$old" "SELECT pg_cluster.connection_uri()")" 60 "$log" demo_switchover_writes &
	writer_pid=$!
	wait_until "the client to write" log_has_acks "$log" 10
	echo "    \$ psql -h $cluster_dir -p $(node_port "$caller") -c \"SELECT pg_cluster.switchover('$target')\""
	t0=$(now)
	node_psql "$caller" -c "SELECT pg_cluster.switchover('$target')" | sed 's/^/    /'
	t1=$(now)
	note "the call, on $caller, returned after $(elapsed "$t0" "$t1") s, when $target was the leader and writable"
	wait_until "$old to stream from $target" node_streams_from "$old" "$target"
	note "$old (restarted by pg_cluster_ctl, no pg_rewind needed) streams from $target $(elapsed "$t1") s after the call returned"
	wait "$writer_pid" || true
	read -r last_before first_after gap < <(awk -v t="$t0" '
		$2 == "ok" { if (prev != "" && prev >= t - 1 && $1 - prev > gap) { gap = $1 - prev; a = prev; b = $1 } prev = $1 }
		END { printf "%s %s %.3f\n", a, b, gap }' "$log")
	note "the client's longest wait between two acknowledged writes: $gap s (it writes every 100 ms"
	note " with a new psql each time, so ~0.1 s is the normal pace)"
	query_nodes "SELECT node_name, role, state, term, leader, timeline FROM pg_cluster.status" \
		"${cluster_nodes[@]}"
	echo "pg_cluster.events on $target about the handover:"
	node_psql "$target" -P null=- -c "SELECT event_time::time(3) AS time, term, node_name, kind, $(one_line detail) AS detail
		FROM pg_cluster.events WHERE event_time >= to_timestamp($t0) AND kind IN
			('handover_accepted', 'election_started', 'elected', 'state_changed', 'promotion', 'promoted', 'handover_done')
		ORDER BY seq"
}

# uri_lands URI: the node a session opened with URI is connected to.
uri_lands() {
	"$PG_BINDIR/psql" -X -At -U postgres -d "$1" -c "SELECT current_setting('pg_cluster.node_name')" 2>/dev/null
}

# node_streams_from NODE PRIMARY: NODE's WAL receiver streams from PRIMARY.
node_streams_from() {
	[ "$(node_value "$1" "SELECT sender_port = $(node_port "$2") AND status = 'streaming' FROM pg_stat_wal_receiver")" = t ]
}

# demo_command: how to run this script again on the same cluster.
demo_command() {
	local env=""
	[ -z "${PGC_DEMO_DIR:-}" ] || env="PGC_DEMO_DIR=$(printf %q "$PGC_DEMO_DIR") "
	[ -z "${PGC_DEMO_PORT:-}" ] || env="${env}PGC_DEMO_PORT=$PGC_DEMO_PORT "
	echo "${env}bash scripts/demo.sh"
}

demo_instructions() {
	local uri node landed
	uri=$(node_value n1 "SELECT pg_cluster.connection_uri()")
	section "The demo cluster is running"
	cat <<EOF
Data directories, logs (n1.log ...) and sockets are in $cluster_dir.

Connect to one node (as the database superuser postgres):
EOF
	for node in "${cluster_nodes[@]}"; do
		printf '    psql -h %s -p %s -U postgres      # %s, %s\n' "$cluster_dir" \
			"$(node_port "$node")" "$node" \
			"$(node_value "$node" "SELECT role || CASE WHEN fenced THEN ', fenced: refuses writes' ELSE '' END FROM pg_cluster.status")"
	done
	cat <<EOF

Connect to whichever node is the primary (libpq multi-host URI):
    psql -U postgres '$uri'
EOF
	landed=$(uri_lands "$uri" || true)
	if [ -n "$landed" ] &&
		[ "$(node_value "$landed" "SELECT fenced FROM pg_cluster.status")" = t ]; then
		cat <<EOF
  (Caution: today it lands on $landed, a fenced old primary that refuses
   commits: read-write does not skip it.  Stop $landed to write through it:
   $([ "$(id -u)" != 0 ] || echo "runuser -u $(pgc_runner) -- ")$(printf '%q ' "$PG_BINDIR/pg_ctl" -D "$(node_data "$landed")" stop | sed 's/ $//'))
EOF
	fi
	cat <<EOF

Then try:
    TABLE pg_cluster.nodes;   TABLE pg_cluster.status;   TABLE pg_cluster.events;

Stop the cluster (keeps the data):   $(demo_command) stop
Start it again:                      $(demo_command) start
Stop it and remove everything:       $(demo_command) clean

(Demo only: every local user may connect as superuser without a password.)
EOF
}

# The steps of "demo", in order.
demo_steps=(demo_build demo_create demo_show demo_fault demo_failover demo_switchover demo_instructions)

cmd_demo() {
	local step
	for step in "${demo_steps[@]}"; do
		"$step"
	done
}

cmd_start() {
	local leader
	cluster_exists || die "no demo cluster in $cluster_dir; run: $(demo_command)"
	section "Starting the demo cluster in $cluster_dir"
	cluster_start
	cluster_wait_all_reachable
	leader=$(cluster_wait_leader)
	note "leader: $leader"
	show_nodes n1
	demo_instructions
}

cmd_stop() {
	if ! cluster_exists; then
		echo "No demo cluster in $cluster_dir."
		return 0
	fi
	section "Stopping the demo cluster in $cluster_dir"
	cluster_stop
	echo "Stopped; the data stays in $cluster_dir."
	echo "Start it again with: $(demo_command) start   (or remove it: $(demo_command) clean)"
}

cmd_clean() {
	if ! cluster_exists; then
		echo "No demo cluster in $cluster_dir."
		return 0
	fi
	section "Stopping and removing the demo cluster in $cluster_dir"
	cluster_remove
	echo "Removed $cluster_dir."
}

usage() {
	sed -n '2,/^$/s/^# \{0,1\}//p' "$here/scripts/demo.sh"
}

demo_main() {
	local cmd=""
	install_packages=1
	build=1
	while [ $# -gt 0 ]; do
		case $1 in
		--no-deps) install_packages=0 ;;
		--no-build) install_packages=0 build=0 ;;
		-h | --help | help) usage; return 0 ;;
		demo | start | stop | clean)
			[ -z "$cmd" ] || die "one command at a time"
			cmd=$1
			;;
		*)
			usage >&2
			return 2
			;;
		esac
		shift
	done
	"cmd_${cmd:-demo}"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -euo pipefail
	demo_main "$@"
fi
