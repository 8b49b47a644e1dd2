#!/usr/bin/env bash
# What the pg_cluster worker costs on an idle 3-node cluster.
#
# Usage: bash bench/overhead.sh
#
# Builds a 3-node cluster on loopback the way scripts/demo.sh does (n1
# primary, n2 and n3 streaming standbys, pg_cluster.heartbeat_interval =
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
#     ordinary backends, one per peer, and cost CPU and memory too.
#
# Prints a markdown table (median, min, max over all nodes and runs) and
# writes it to bench/results/overhead.md.  The cluster is removed at exit.
#
# Environment: DURATION (seconds, default 30), RUNS (default 3), WARMUP
# (seconds idle before the first run, default 5), PGC_BENCH_DIR (default
# /tmp/pg_cluster-bench-overhead), PGC_BENCH_PORT (port of n1, default
# 54331).  Run as root (servers run as postgres) or as a normal user; the
# extension must be installed (bash scripts/demo.sh or scripts/test.sh).
#
# Budget: < 2 MiB PSS beyond an idle backend, < 0.5 % of one core.

set -euo pipefail
bench_here=$(cd "$(dirname "$0")/.." && pwd)
# the cluster helpers (cluster_*, node_*, wait_until) and common.sh
. "$bench_here/scripts/demo.sh"
set -euo pipefail

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

results_dir=$bench_here/bench/results
results_file=$results_dir/overhead.md
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
	rm -f "$samples"
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
	local -A worker idle ticks0 ns0 hb0 serving sticks0
	local t0 t1 secs pid peer count at

	current_run=$run
	echo "=== run $run of $RUNS: $DURATION s idle"
	for node in "${cluster_nodes[@]}"; do
		worker[$node]=$(node_value "$node" "SELECT worker_pid FROM pg_cluster.status")
		[ -n "${worker[$node]}" ] || die "no pg_cluster worker on $node"
		start_idle_session "$node" "$run"
		serving[$node]=$(serving_pids "$node" | tr '\n' ' ')
		hb0[$node]=$(heartbeats "$node")
	done

	t0=$(now)
	for node in "${cluster_nodes[@]}"; do
		ticks0[$node]=$(cpu_ticks "${worker[$node]}")
		ns0[$node]=$(cpu_ns "${worker[$node]}")
		for pid in ${serving[$node]}; do
			sticks0[$pid]=$(cpu_ticks "$pid")
		done
	done

	sleep "$DURATION"

	t1=$(now)
	secs=$(elapsed "$t0" "$t1")
	for node in "${cluster_nodes[@]}"; do
		local w=${worker[$node]} ticks ns wpss ipss
		ticks=$(($(cpu_ticks "$w") - ${ticks0[$node]}))
		ns=$(cpu_ns "$w")
		wpss=$(pss_kib "$w")
		ipss=$(pss_kib "${idle[$node]}")
		sample worker_cpu "$(awk -v t="$ticks" -v hz="$clk_tck" -v s="$secs" 'BEGIN { printf "%.4f", t / hz / s * 100 }')"
		if [ -n "$ns" ] && [ -n "${ns0[$node]}" ]; then
			sample worker_cpu_ns "$(awk -v a="${ns0[$node]}" -v b="$ns" -v s="$secs" 'BEGIN { printf "%.4f", (b - a) / 1e9 / s * 100 }')"
		fi
		sample worker_pss "$wpss" "$node"
		sample worker_private "$(private_kib "$w")" "$node"
		sample idle_pss "$ipss"
		sample worker_minus_idle_pss $((wpss - ipss))
		for pid in ${serving[$node]}; do
			[ -r "/proc/$pid/stat" ] || continue
			sample serving_cpu "$(awk -v t="$(($(cpu_ticks "$pid") - ${sticks0[$pid]}))" -v hz="$clk_tck" -v s="$secs" 'BEGIN { printf "%.4f", t / hz / s * 100 }')"
			sample serving_pss "$(pss_kib "$pid")"
		done
		while read -r peer count at; do
			sample hb_per_s "$(awk -v p="$peer" -v b="$count" -v t="$at" \
				'$1 == p { printf "%.2f", (b - $2) / (t - $3) }' <<<"${hb0[$node]}")"
		done < <(heartbeats "$node")
		printf '    %s: worker %s ticks in %s s, PSS worker %s KiB, idle backend %s KiB\n' \
			"$node" "$ticks" "$secs" "$wpss" "$ipss"
	done

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

Idle 3-node cluster on loopback (n1 primary, n2 and n3 streaming standbys),
pg_cluster.heartbeat_interval = $cluster_heartbeat_interval, so each worker
heartbeats 2 peers.  $RUNS runs of $DURATION s each; every node of every run
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

$(verdict "worker CPU" worker_cpu "$budget_cpu_pct" "% of one core" %.3f)
$(verdict "worker PSS beyond an idle backend" worker_minus_idle_pss "$budget_pss_kib" "KiB" %.0f)
- worker memory change from the first run to the last, KiB: private $(growth worker_private); PSS $(growth worker_pss)
- not in the budget: every node also keeps one backend per peer busy answering
  heartbeats (the last two rows), i.e. 2 backends per node here.
EOF
}

# ---------------------------------------------------------------- main

bench_main() {
	local run leader
	[ -f "$("$PG_CONFIG" --pkglibdir)/pg_cluster.so" ] ||
		die "pg_cluster is not installed; run: bash scripts/demo.sh (or scripts/test.sh)"
	echo "=== creating a 3-node cluster in $cluster_dir (heartbeat $cluster_heartbeat_interval)"
	cluster_create
	cluster_wait_all_reachable
	leader=$(cluster_wait_leader)
	echo "=== all nodes reachable; leader $leader; $WARMUP s of warm-up"
	sleep "$WARMUP"
	cluster_wait_all_reachable
	for ((run = 1; run <= RUNS; run++)); do
		measure_run "$run"
	done

	mkdir -p "$results_dir"
	report >"$results_file.tmp"
	mv "$results_file.tmp" "$results_file"
	echo
	cat "$results_file"
	echo
	echo "(written to ${results_file#"$bench_here"/})"
}

bench_main
