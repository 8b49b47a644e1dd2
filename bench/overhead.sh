#!/usr/bin/env bash
# What the pg_cluster worker costs on an idle cluster (3 nodes by default).
#
# Usage: bash bench/overhead.sh
#
# Builds a NODES-node cluster on loopback the way scripts/demo.sh does (n1
# primary, the others streaming standbys, pg_cluster.heartbeat_interval =
# 100ms), waits until every node reaches every node, then RUNS times, for
# DURATION seconds of idleness, measures on every node:
#
#   - the CPU time of the pg_cluster worker (utime + stime of
#     /proc/PID/stat over the interval, in % of one core; also from
#     /proc/PID/schedstat, which counts nanoseconds instead of ticks);
#   - the worker's PSS (/proc/PID/smaps_rollup) and, at the same moment,
#     the PSS of an idle client backend of the same node (a psql session
#     sleeping in pg_sleep) as the baseline;
#   - the heartbeats the worker sent to each peer, per second
#     (pg_cluster.nodes.heartbeats_sent);
#   - for the full picture, the backends that serve the peers' heartbeats
#     ("pg_cluster heartbeat from ..." in pg_stat_activity): they are
#     ordinary backends, one per peer, and cost CPU and memory too;
#   - the heartbeat traffic: the bytes (TCP payload, both directions) and
#     segments of the workers' connections to their peers, from the
#     kernel's counters of each socket (ss -ti: bytes_sent, bytes_received,
#     segs_out, segs_in), per connection and for the whole cluster;
#   - whether the idle cluster stayed calm: elections started, peers seen
#     unreachable and term changes during the interval (pg_cluster.events).
#
# Prints a markdown table (median, min, max over all nodes and runs) and
# writes it to bench/results/overhead.md.  The cluster is removed at exit.
#
# Environment: NODES (nodes of the cluster, default 3), DURATION (seconds,
# default 30), RUNS (default 3), WARMUP (seconds idle before the first run,
# default 5), PGC_BENCH_DIR (default /tmp/pg_cluster-bench-overhead),
# PGC_BENCH_PORT (port of n1, default 54331; the others use the next
# ports), RESULTS_FILE (where the report goes; default
# bench/results/overhead.md, with NODES other than 3
# bench/results/overhead-NODESnodes.md), SAMPLES_OUT (if set, the samples
# are also copied there: "metric value run node" per line).  Run as root
# (servers run as postgres) or as a normal user; the extension must be
# installed (bash scripts/demo.sh or scripts/test.sh); ss (iproute2) for
# the traffic.
#
# Budget: < 2 MiB PSS beyond an idle backend, < 0.5 % of one core.

set -euo pipefail
bench_here=$(cd "$(dirname "$0")/.." && pwd)
# the cluster helpers (cluster_*, node_*, wait_until) and common.sh
. "$bench_here/scripts/demo.sh"
set -euo pipefail

NODES=${NODES:-3}
DURATION=${DURATION:-30}
RUNS=${RUNS:-3}
WARMUP=${WARMUP:-5}
cluster_dir=${PGC_BENCH_DIR:-/tmp/pg_cluster-bench-overhead}
cluster_port_base=${PGC_BENCH_PORT:-54331}
cluster_port_env=PGC_BENCH_PORT
cluster_dir_env=PGC_BENCH_DIR
cluster_marker_name=PG_CLUSTER_BENCH
cluster_what="pg_cluster benchmark cluster"
cluster_heartbeat_interval=100ms
cluster_failover_timeout=1s
cluster_connect_timeout=500ms
cluster_nodes=()
for ((i = 1; i <= NODES; i++)); do
	cluster_nodes+=("n$i")
done

results_dir=$bench_here/bench/results
if [ -n "${RESULTS_FILE:-}" ]; then
	results_file=$RESULTS_FILE
elif [ "$NODES" = 3 ]; then
	results_file=$results_dir/overhead.md
else
	results_file=$results_dir/overhead-${NODES}nodes.md
fi
budget_pss_kib=2048
budget_cpu_pct=0.5

clk_tck=$(getconf CLK_TCK)
samples=$(mktemp /tmp/pgc-bench-samples.XXXXXX)
idle_pids=()
current_run=0

cleanup() {
	local status=$? pid
	trap - EXIT INT TERM
	set +e
	for pid in "${idle_pids[@]}"; do
		kill "$pid" 2>/dev/null
	done
	if cluster_exists; then
		echo "=== removing the benchmark cluster in $cluster_dir"
		cluster_remove
	fi
	for pid in "${idle_pids[@]}"; do
		wait "$pid" 2>/dev/null
	done
	rm -f "$samples" "$samples.sockets0" "$samples.sockets1"
	exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- /proc

# cpu_ticks PID: utime + stime in clock ticks (fields 14 and 15 of
# /proc/PID/stat, counted after the command name, which may hold spaces).
cpu_ticks() {
	local stat
	local -a field
	stat=$(cat "/proc/$1/stat")
	# after "PID (comm) ", field[0] is the state: field 3 of the file
	read -ra field <<<"${stat##*) }"
	echo $((field[11] + field[12]))
}

# cpu_ns PID: time on CPU in nanoseconds from /proc/PID/schedstat, or
# nothing when the kernel does not provide it.
cpu_ns() {
	local ns _
	if read -r ns _ <"/proc/$1/schedstat" 2>/dev/null; then echo "$ns"; fi
}

# pss_kib PID: proportional set size in KiB.
pss_kib() {
	awk '/^Pss:/ { print $2; exit }' "/proc/$1/smaps_rollup"
}

# private_kib PID: memory no other process maps (Private_Clean +
# Private_Dirty) in KiB; unlike PSS it does not move when other processes
# that share pages come and go, so its growth shows a leak.
private_kib() {
	awk '/^Private_(Clean|Dirty):/ { kib += $2 } END { print kib + 0 }' "/proc/$1/smaps_rollup"
}

# socket_counters PID...: "pid local peer bytes_sent bytes_received
# segs_out segs_in" for every established TCP socket of these processes
# (ss -tinp: a line per socket, then an indented line of its counters;
# counters that are still 0 are not printed).
socket_counters() {
	ss -Htinp state established 2>/dev/null | awk -v pids=" $* " '
		/^[^ \t]/ {
			pid = ""
			if (match($0, /pid=[0-9]+/)) {
				p = substr($0, RSTART + 4, RLENGTH - 4)
				if (index(pids, " " p " ")) { pid = p; local = $3; peer = $4 }
			}
			next
		}
		pid != "" {
			bs = br = so = si = 0
			for (i = 1; i <= NF; i++) {
				split($i, kv, ":")
				if (kv[1] == "bytes_sent") bs = kv[2]
				else if (kv[1] == "bytes_received") br = kv[2]
				else if (kv[1] == "segs_out") so = kv[2]
				else if (kv[1] == "segs_in") si = kv[2]
			}
			print pid, local, peer, bs, br, so, si
			pid = ""
		}'
}

# calm_counts T0 T1: "elections unreachable" summed over the nodes: events
# election_started and peer_unreachable between the epochs T0 and T1.
calm_counts() {
	local node e=0 u=0 a b
	for node in "${cluster_nodes[@]}"; do
		read -r a b < <(node_psql "$node" -At -F ' ' -c "SELECT count(*) FILTER (WHERE kind = 'election_started'),
				count(*) FILTER (WHERE kind = 'peer_unreachable')
			FROM pg_cluster.events WHERE event_time BETWEEN to_timestamp($1) AND to_timestamp($2)")
		e=$((e + a))
		u=$((u + b))
	done
	echo "$e $u"
}

# max_term: the highest term any node knows.
max_term() {
	local node t max=0
	for node in "${cluster_nodes[@]}"; do
		t=$(node_value "$node" "SELECT term FROM pg_cluster.status")
		[ "$t" -le "$max" ] || max=$t
	done
	echo "$max"
}

# sample METRIC VALUE [NODE]: one measurement (of the current run).
sample() {
	printf '%s %s %s %s\n' "$1" "$2" "$current_run" "${3:--}" >>"$samples"
}

# ---------------------------------------------------------------- runs

# start_idle_session NODE RUN: a client session that stays connected (in
# pg_sleep) for the whole interval; sets idle[NODE] (of the caller) to the
# pid of its backend.
start_idle_session() {
	local node=$1 run=$2 app="pgc_bench_idle_$1_$2"
	run_as_runner env PGAPPNAME="$app" "$PG_BINDIR/psql" -X -q -h "$cluster_dir" \
		-p "$(node_port "$node")" -U postgres -d postgres \
		-c "SELECT pg_sleep($DURATION + 5)" >/dev/null 2>&1 &
	idle_pids+=($!)
	wait_until "the idle session on $node" node_has_session "$node" "$app"
	idle[$node]=$(node_value "$node" "SELECT pid FROM pg_stat_activity WHERE application_name = '$app'")
}

node_has_session() {
	[ -n "$(node_value "$1" "SELECT pid FROM pg_stat_activity WHERE application_name = '$2'")" ]
}

# heartbeats NODE: "peer heartbeats_sent epoch" for every peer of NODE,
# with the server's clock at the moment of reading.
heartbeats() {
	node_psql "$1" -At -F ' ' -c \
		"SELECT node_name, heartbeats_sent, extract(epoch FROM clock_timestamp())
		 FROM pg_cluster.nodes WHERE NOT is_self ORDER BY node_name"
}

# serving_pids NODE: the backends of NODE that serve peers' heartbeats.
serving_pids() {
	node_value "$1" "SELECT pid FROM pg_stat_activity
		WHERE application_name LIKE 'pg_cluster heartbeat from %' ORDER BY pid"
}

measure_run() {
	local run=$1 node i
	local -A worker idle ticks0 ns0 hb0 serving sticks0 sns0
	local t0 t1 secs pid peer count at term0 cluster_cpu node_cpu elections unreachable
	local cluster_ns=0 node_ns

	current_run=$run
	echo "=== run $run of $RUNS: $DURATION s idle"
	for node in "${cluster_nodes[@]}"; do
		worker[$node]=$(node_value "$node" "SELECT worker_pid FROM pg_cluster.status")
		[ -n "${worker[$node]}" ] || die "no pg_cluster worker on $node"
		start_idle_session "$node" "$run"
		serving[$node]=$(serving_pids "$node" | tr '\n' ' ')
		hb0[$node]=$(heartbeats "$node")
	done

	term0=$(max_term)
	t0=$(now)
	socket_counters "${worker[@]}" >"$samples.sockets0"
	for node in "${cluster_nodes[@]}"; do
		ticks0[$node]=$(cpu_ticks "${worker[$node]}")
		ns0[$node]=$(cpu_ns "${worker[$node]}")
		for pid in ${serving[$node]}; do
			sticks0[$pid]=$(cpu_ticks "$pid")
			sns0[$pid]=$(cpu_ns "$pid")
		done
	done

	sleep "$DURATION"

	t1=$(now)
	socket_counters "${worker[@]}" >"$samples.sockets1"
	secs=$(elapsed "$t0" "$t1")
	cluster_cpu=0
	for node in "${cluster_nodes[@]}"; do
		local w=${worker[$node]} ticks sticks ns wpss ipss
		ticks=$(($(cpu_ticks "$w") - ${ticks0[$node]}))
		node_cpu=$ticks
		node_ns=""
		ns=$(cpu_ns "$w")
		wpss=$(pss_kib "$w")
		ipss=$(pss_kib "${idle[$node]}")
		sample worker_cpu "$(awk -v t="$ticks" -v hz="$clk_tck" -v s="$secs" 'BEGIN { printf "%.4f", t / hz / s * 100 }')"
		if [ -n "$ns" ] && [ -n "${ns0[$node]}" ]; then
			sample worker_cpu_ns "$(awk -v a="${ns0[$node]}" -v b="$ns" -v s="$secs" 'BEGIN { printf "%.4f", (b - a) / 1e9 / s * 100 }')"
			node_ns=$((ns - ${ns0[$node]}))
		fi
		sample worker_pss "$wpss" "$node"
		sample worker_private "$(private_kib "$w")" "$node"
		sample idle_pss "$ipss"
		sample worker_minus_idle_pss $((wpss - ipss))
		for pid in ${serving[$node]}; do
			[ -r "/proc/$pid/stat" ] || continue
			sticks=$(($(cpu_ticks "$pid") - ${sticks0[$pid]}))
			node_cpu=$((node_cpu + sticks))
			ns=$(cpu_ns "$pid")
			if [ -n "$node_ns" ] && [ -n "$ns" ] && [ -n "${sns0[$pid]}" ]; then
				node_ns=$((node_ns + ns - ${sns0[$pid]}))
			else
				node_ns=""
			fi
			sample serving_cpu "$(awk -v t="$sticks" -v hz="$clk_tck" -v s="$secs" 'BEGIN { printf "%.4f", t / hz / s * 100 }')"
			sample serving_pss "$(pss_kib "$pid")"
		done
		sample node_cpu "$(awk -v t="$node_cpu" -v hz="$clk_tck" -v s="$secs" 'BEGIN { printf "%.4f", t / hz / s * 100 }')" "$node"
		cluster_cpu=$((cluster_cpu + node_cpu))
		if [ -n "$node_ns" ] && [ -n "$cluster_ns" ]; then
			sample node_cpu_ns "$(awk -v t="$node_ns" -v s="$secs" 'BEGIN { printf "%.4f", t / 1e9 / s * 100 }')" "$node"
			cluster_ns=$((cluster_ns + node_ns))
		else
			cluster_ns=""
		fi
		while read -r peer count at; do
			sample hb_per_s "$(awk -v p="$peer" -v b="$count" -v t="$at" \
				'$1 == p { printf "%.2f", (b - $2) / (t - $3) }' <<<"${hb0[$node]}")"
		done < <(heartbeats "$node")
		printf '    %s: worker %s ticks in %s s, PSS worker %s KiB, idle backend %s KiB\n' \
			"$node" "$ticks" "$secs" "$wpss" "$ipss"
	done

	sample cluster_cpu "$(awk -v t="$cluster_cpu" -v hz="$clk_tck" -v s="$secs" 'BEGIN { printf "%.4f", t / hz / s * 100 }')"
	if [ -n "$cluster_ns" ]; then
		sample cluster_cpu_ns "$(awk -v t="$cluster_ns" -v s="$secs" 'BEGIN { printf "%.4f", t / 1e9 / s * 100 }')"
	fi
	# heartbeat traffic: the sockets there at both ends of the interval
	awk -v s="$secs" -v run="$run" -v out="$samples" '
		NR == FNR { k = $1 " " $2 " " $3; b[k] = $4 + $5; g[k] = $6 + $7; next }
		{
			k = $1 " " $2 " " $3
			if (!(k in b)) { gone++; next }
			db = ($4 + $5 - b[k]) / s; dg = ($6 + $7 - g[k]) / s
			printf "hb_bytes_conn %.1f %s -\n", db, run >>out
			printf "hb_segs_conn %.2f %s -\n", dg, run >>out
			tb += db; tg += dg; n++
		}
		END {
			printf "hb_bytes_cluster %.1f %s -\n", tb, run >>out
			printf "hb_segs_cluster %.1f %s -\n", tg, run >>out
			printf "hb_connections %d %s -\n", n, run >>out
			printf "    heartbeat connections: %d (%d not there at both ends), %.0f bytes/s, %.0f segments/s in all\n", n, gone, tb, tg
		}' "$samples.sockets0" "$samples.sockets1"
	read -r elections unreachable < <(calm_counts "$t0" "$t1")
	sample idle_elections "$elections"
	sample idle_unreachable "$unreachable"
	sample idle_term_changes $(($(max_term) - term0))

	# end the idle sessions of this run
	for node in "${cluster_nodes[@]}"; do
		node_value "$node" "SELECT pg_terminate_backend(${idle[$node]})" >/dev/null
	done
	for pid in "${idle_pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	idle_pids=()
}

# ---------------------------------------------------------------- report

# stats METRIC: "median min max count" of the samples of METRIC.
stats() {
	awk -v m="$1" '$1 == m { print $2 }' "$samples" | sort -g | awk '
		{ v[NR] = $1 }
		END {
			if (NR == 0) { print "- - - 0"; exit }
			med = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			printf "%s %s %s %d\n", med, v[1], v[NR], NR
		}'
}

# row LABEL METRIC FORMAT BUDGET
row() {
	local med min max n
	read -r med min max n < <(stats "$2")
	[ "$n" != 0 ] || return 0
	printf "| %s | $3 | $3 | $3 | %s | %s |\n" "$1" "$med" "$min" "$max" "$n" "$4"
}

# verdict LABEL METRIC BUDGET UNIT FORMAT: judged on the maximum.
verdict() {
	local label=$1 metric=$2 budget=$3 unit=$4 format=$5 med min max n word
	read -r med min max n < <(stats "$metric")
	if awk -v x="$max" -v b="$budget" 'BEGIN { exit !(x < b) }'; then
		word="within budget"
	else
		word="OVER budget"
	fi
	printf -- "- %s: **%s** (< %s %s): median $format, max $format.\n" \
		"$label" "$word" "$budget" "$unit" "$med" "$max"
}

# growth METRIC: per node, the value in the last run minus the first.
growth() {
	local node sep=""
	for node in "${cluster_nodes[@]}"; do
		printf '%s%s %s' "$sep" "$node" "$(awk -v m="$1" -v n="$node" '$1 == m && $4 == n {
				if (first == "") first = $2
				last = $2
			}
			END { printf "%+d", last - first }' "$samples")"
		sep=", "
	done
}

report() {
	local commit pgversion
	commit=$(git -C "$bench_here" rev-parse --short HEAD 2>/dev/null || echo unknown)
	if [ -n "$(git -C "$bench_here" status --porcelain -- src 2>/dev/null)" ]; then
		commit="$commit (src/ modified)"
	fi
	pgversion=$(node_value n1 "SHOW server_version")
	cat <<EOF
# pg_cluster worker overhead

Idle $NODES-node cluster on loopback (n1 primary, the others streaming
standbys), pg_cluster.heartbeat_interval = $cluster_heartbeat_interval, so each worker
heartbeats $((NODES - 1)) peers.  $RUNS runs of $DURATION s each; every node of every run
is one sample (heartbeat rates: every peer of every node).  Baseline: an idle
client backend of the same node (a psql session in pg_sleep), measured at the
same moment as the worker.  CPU from utime+stime of /proc/PID/stat (CLK_TCK
$clk_tck); "schedstat" is the same from /proc/PID/schedstat (nanoseconds).

- date: $(date -u '+%Y-%m-%d %H:%M UTC'); commit $commit
- PostgreSQL $pgversion; kernel $(uname -r); $(nproc) CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
- shared memory of pg_cluster: $(node_value n1 "SELECT size FROM pg_shmem_allocations WHERE name = 'pg_cluster'") bytes (per node, in the shared segment, not in the PSS figures below)

| metric | median | min | max | samples | budget |
|---|---:|---:|---:|---:|---|
$(row "worker CPU, % of one core" worker_cpu %.3f "< $budget_cpu_pct")
$(row "worker CPU, % of one core (schedstat)" worker_cpu_ns %.3f "< $budget_cpu_pct")
$(row "worker PSS, KiB" worker_pss %.0f "")
$(row "worker private memory, KiB" worker_private %.0f "")
$(row "idle backend PSS, KiB" idle_pss %.0f "")
$(row "worker PSS minus idle backend PSS, KiB" worker_minus_idle_pss %.0f "< $budget_pss_kib")
$(row "heartbeats/s per peer" hb_per_s %.2f "")
$(row "backend serving a peer's heartbeats: CPU, % of one core" serving_cpu %.3f "")
$(row "backend serving a peer's heartbeats: PSS, KiB" serving_pss %.0f "")
$(row "worker + its node's serving backends: CPU, % of one core" node_cpu %.3f "")
$(row "worker + its node's serving backends: CPU, % of one core (schedstat)" node_cpu_ns %.3f "")
$(row "whole cluster (all workers and serving backends): CPU, % of one core" cluster_cpu %.3f "")
$(row "whole cluster (all workers and serving backends): CPU, % of one core (schedstat)" cluster_cpu_ns %.3f "")
$(row "heartbeat traffic per connection, bytes/s (payload, both directions)" hb_bytes_conn %.0f "")
$(row "heartbeat traffic per connection, TCP segments/s" hb_segs_conn %.1f "")
$(row "heartbeat traffic, whole cluster, bytes/s" hb_bytes_cluster %.0f "")
$(row "heartbeat traffic, whole cluster, TCP segments/s" hb_segs_cluster %.0f "")
$(row "heartbeat connections measured" hb_connections %.0f "")
$(row "elections started while idle (all nodes)" idle_elections %.0f "0")
$(row "peers seen unreachable while idle (all nodes)" idle_unreachable %.0f "0")
$(row "term changes while idle" idle_term_changes %.0f "0")

$(verdict "worker CPU" worker_cpu "$budget_cpu_pct" "% of one core" %.3f)
$(verdict "worker PSS beyond an idle backend" worker_minus_idle_pss "$budget_pss_kib" "KiB" %.0f)
- worker memory change from the first run to the last, KiB: private $(growth worker_private); PSS $(growth worker_pss)
- not in the budget: every node also keeps one backend per peer busy answering
  heartbeats ("serving" rows), i.e. $((NODES - 1)) backends per node here.
- heartbeat traffic: TCP payload of the workers' connections to their peers
  (requests and answers), from the sockets' kernel counters (ss -ti) at both
  ends of each interval; a connection is one worker's heartbeats to one
  peer, $((NODES * (NODES - 1))) in the cluster.  Loopback adds 52 bytes of IP and TCP
  headers per segment.
EOF
}

# ---------------------------------------------------------------- main

bench_main() {
	local run leader
	[ -f "$("$PG_CONFIG" --pkglibdir)/pg_cluster.so" ] ||
		die "pg_cluster is not installed; run: bash scripts/demo.sh (or scripts/test.sh)"
	echo "=== creating a $NODES-node cluster in $cluster_dir (heartbeat $cluster_heartbeat_interval)"
	cluster_create
	cluster_wait_all_reachable
	leader=$(cluster_wait_leader)
	echo "=== all nodes reachable; leader $leader; $WARMUP s of warm-up"
	sleep "$WARMUP"
	cluster_wait_all_reachable
	for ((run = 1; run <= RUNS; run++)); do
		measure_run "$run"
	done

	if [ -n "${SAMPLES_OUT:-}" ]; then
		cp "$samples" "$SAMPLES_OUT"
	fi
	mkdir -p "$(dirname "$results_file")"
	report >"$results_file.tmp"
	mv "$results_file.tmp" "$results_file"
	echo
	cat "$results_file"
	echo
	echo "(written to ${results_file#"$bench_here"/})"
}

bench_main
