#!/usr/bin/env bash
# What loading pg_cluster costs a write workload, on one and the same
# cluster: pgbench with the extension loaded (synchronous_mode = off) and
# not loaded at all, the cluster restarted between the two.
#
# Usage: bash bench/preload.sh
#
# bench/syncrep.sh compares two clusters side by side (off / none); this
# compares one cluster with itself, so that nothing but the library
# differs: the same data directories, the same files, the same ports.  A
# 3-node cluster on loopback (a primary and two streaming standbys) is
# created once with pg_cluster.  Every round restarts all three servers
# with shared_preload_libraries = 'pg_cluster' ("loaded": the workers
# heartbeat, every commit passes the fence) and with '' ("none": plain
# streaming replication), which one first alternating from round to round.
# After each restart: 3 s of pgbench to warm the caches (not counted),
# then, for every client count, a checkpoint and RUN_SECONDS s of pgbench
# simple-update (-N).  Reported are the median TPS per side and the median
# of the per-round ratios.  Written to bench/results/preload.md.
#
# TPS differences of a few percent drown in the noise of single runs on a
# small shared machine, so every loaded run also measures what pg_cluster's
# own processes cost directly: the CPU time of the three workers and of the
# backends answering heartbeats (/proc/PID/schedstat, nanoseconds), as a
# share of the CPU time the whole machine was busy during the run
# (/proc/stat).  On a machine where pgbench saturates the CPU, that share
# is about what the TPS can lose.  Both sides also report the CPU time per
# transaction, which the disk's latency does not blur.
#
# With PIN=1 the primary (every process of it) and pgbench run on CPU 0,
# the two standbys on CPU 1 (taskset): the primary then pays for its own
# node only, as it would on a machine of its own, instead of sharing the
# two cores with the standbys' servers and workers.
#
# With PERF=1 (needs perf, Debian package linux-perf), every loaded side
# adds one run (4 clients, not counted) sampled by perf, and reports
# pg_cluster.so's share of the samples of the backends serving pgbench:
# the cost of the commit fence itself.
#
# Environment: PIN (default 0), PERF (default 0), CLIENTS (default
# "1 4 8"), ROUNDS (default 7), RUN_SECONDS (default 10), SCALE (default 10), PGC_BENCH_PORT (first port, default
# 54381), PGC_BENCH_DIR (default /tmp/pg_cluster-bench-preload; removed at
# exit), RESULTS_FILE (instead of bench/results/preload.md).
#
# Run as root (servers run as postgres) or as a normal user; pg_cluster must
# be installed (scripts/demo.sh or scripts/test.sh).

set -euo pipefail
bench_here=$(cd "$(dirname "$0")/.." && pwd)
. "$bench_here/scripts/demo.sh"
. "$bench_here/bench/lib.sh"
set -euo pipefail

PIN=${PIN:-0}
PERF=${PERF:-0}
CLIENTS=${CLIENTS:-"1 4 8"}
ROUNDS=${ROUNDS:-7}
SECONDS_PER_RUN=${RUN_SECONDS:-10}
SCALE=${SCALE:-10}
cluster_port_base=${PGC_BENCH_PORT:-54381}
cluster_dir=${PGC_BENCH_DIR:-/tmp/pg_cluster-bench-preload}
default_results=preload.md
[ "$PIN" = 1 ] && default_results=preload-pinned.md
results_file=${RESULTS_FILE:-$bench_here/bench/results/$default_results}
work=$(mktemp -d /tmp/pgc-bench-preload.XXXXXX)
cluster_what="pg_cluster benchmark cluster"
cluster_marker_name=PG_CLUSTER_BENCH
cluster_supervised=0
cluster_extra_conf="pg_cluster.synchronous_mode = off"

cleanup() {
	local status=$?
	trap - EXIT INT TERM
	set +e
	cluster_exists && cluster_remove
	rm -rf "$work"
	exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# streaming COUNT: n1 has COUNT streaming standbys.
streaming() {
	[ "$(node_value n1 "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")" = "$1" ]
}

# n1_leads: n1 leads its term with a lease (it accepts writes).
n1_leads() {
	[ "$(node_value n1 "SELECT state FROM pg_cluster.status")" = leader ]
}

# restart_as SIDE: every node restarted with the library (loaded) or
# without it (none); a later line of postgresql.conf wins.
restart_as() {
	local lib="" node
	[ "$1" = loaded ] && lib=pg_cluster
	cluster_stop
	for node in "${cluster_nodes[@]}"; do
		echo "shared_preload_libraries = '$lib'" | append_to_file "$(node_data "$node")/postgresql.conf"
	done
	cluster_start
	if [ "$PIN" = 1 ]; then
		pin_node n1 0
		pin_node n2 1
		pin_node n3 1
	fi
	wait_until "two streaming standbys" streaming 2
	[ "$1" = none ] || wait_until "n1 to lead" n1_leads
	[ "$(node_value n1 "SHOW shared_preload_libraries")" = "$lib" ] ||
		die "n1 runs with the wrong shared_preload_libraries"
}

# pg_cluster_pids NODE...: the workers of these nodes and their backends
# answering heartbeats.
pg_cluster_pids() {
	local node
	for node in "$@"; do
		node_value "$node" "SELECT pid FROM pg_stat_activity
			WHERE backend_type = 'pg_cluster'
			   OR application_name LIKE 'pg_cluster heartbeat from %'"
	done
}

# cpu_ns_of PID...: their time on CPU, nanoseconds, summed.
cpu_ns_of() {
	local pid ns _ sum=0
	for pid in "$@"; do
		if read -r ns _ <"/proc/$pid/schedstat" 2>/dev/null; then sum=$((sum + ns)); fi
	done
	echo "$sum"
}

pgbench_tps() {
	local pin=()
	[ "$PIN" = 1 ] && pin=(taskset -c 0)
	run_as_runner "${pin[@]}" "$PG_BINDIR/pgbench" -n -N -c "$1" -j "$1" -T "$2" \
		-h "$cluster_dir" -p "$(node_port n1)" -U postgres postgres 2>&1 |
		awk '/^tps = / { printf "%.1f", $3 }'
}

# cpu_busy_ns [CPU]: the time the machine's CPUs (or that one CPU) were
# busy, nanoseconds.
cpu_busy_ns() {
	awk -v hz="$(getconf CLK_TCK)" -v cpu="cpu${1:-}" '$1 == cpu {
		printf "%.0f", ($2 + $3 + $4 + $7 + $8 + $9) * 1e9 / hz; exit }' /proc/stat
}

# percent PART WHOLE
percent() {
	awk -v p="$1" -v w="$2" 'BEGIN { printf "%.2f", (w > 0 ? 100 * p / w : 0) }'
}

# measured_run SIDE CLIENTS: one counted run.  Sets run_tps; run_cpu_us,
# the CPU time per transaction in microseconds (of CPU 0, where the
# primary runs, with PIN=1; of the whole machine otherwise); and on the
# loaded side run_share_all and run_share_primary (PIN=1 only; "-"
# otherwise).  Both sides run the same commands: what is only measured on
# the loaded side is read before and after the run.
measured_run() {
	local all=() primary=() own0 own1 prim0 prim1 busy0 busy1 core0 core1 cpu=""
	if [ "$1" = loaded ]; then
		all=($(pg_cluster_pids "${cluster_nodes[@]}"))
		primary=($(pg_cluster_pids n1))
	fi
	[ "$PIN" = 1 ] && cpu=0
	own0=$(cpu_ns_of "${all[@]}")
	prim0=$(cpu_ns_of "${primary[@]}")
	busy0=$(cpu_busy_ns)
	core0=$(cpu_busy_ns $cpu)
	run_tps=$(pgbench_tps "$2" "$SECONDS_PER_RUN")
	own1=$(cpu_ns_of "${all[@]}")
	prim1=$(cpu_ns_of "${primary[@]}")
	busy1=$(cpu_busy_ns)
	core1=$(cpu_busy_ns $cpu)
	[ -n "$run_tps" ] || die "pgbench failed ($1, $2 clients)"
	run_cpu_us=$(awk -v ns=$((core1 - core0)) -v tps="$run_tps" -v s="$SECONDS_PER_RUN" \
		'BEGIN { printf "%.1f", ns / 1000 / (tps * s) }')
	run_share_all=-
	run_share_primary=-
	[ "$1" = loaded ] || return 0
	run_share_all=$(percent $((own1 - own0)) $((busy1 - busy0)))
	[ "$PIN" = 1 ] && run_share_primary=$(percent $((prim1 - prim0)) $((core1 - core0)))
	return 0
}

# perf_run: an extra loaded run (4 clients, not counted) sampled by perf;
# sets run_perf_share, pg_cluster.so's share of the samples of the
# backends serving pgbench: the commit fence.
perf_run() {
	local perf_pid backends
	perf record -a -F 4999 -o "$work/perf.data" -- sleep "$((SECONDS_PER_RUN - 1))" >/dev/null 2>&1 &
	perf_pid=$!
	# the backends serving pgbench, once it connected
	(sleep 1 && node_value n1 "SELECT pid FROM pg_stat_activity
		WHERE application_name = 'pgbench'" >"$work/pgbench_pids") &
	pgbench_tps 4 "$SECONDS_PER_RUN" >/dev/null
	wait
	backends=$(paste -sd, "$work/pgbench_pids")
	run_perf_share=$(perf report -i "$work/perf.data" --pid="$backends" --sort dso -g none \
		--stdio 2>/dev/null |
		awk '$2 == "pg_cluster.so" { sub("%", "", $1); v = $1 } END { printf "%.2f", v + 0 }')
}

[ "$PERF" = 1 ] && ! command -v perf >/dev/null && die "PERF=1 needs perf (apt-get install linux-perf)"
section "pgbench simple-update, scale $SCALE, clients: $CLIENTS; $ROUNDS rounds of $SECONDS_PER_RUN s per side"
note "creating the cluster in $cluster_dir"
cluster_create >/dev/null
wait_until "two streaming standbys" streaming 2
cluster_wait_leader >/dev/null
run_as_runner "$PG_BINDIR/pgbench" -q -i -s "$SCALE" -h "$cluster_dir" -p "$(node_port n1)" \
	-U postgres postgres >/dev/null 2>&1 || die "pgbench -i failed"

: >"$work/samples"
: >"$work/cpu"
: >"$work/shares"
: >"$work/perf"
for ((round = 1; round <= ROUNDS; round++)); do
	if ((round % 2)); then order=(loaded none); else order=(none loaded); fi
	for side in "${order[@]}"; do
		restart_as "$side"
		pgbench_tps 4 3 >/dev/null
		for clients in $CLIENTS; do
			node_value n1 "CHECKPOINT" >/dev/null
			measured_run "$side" "$clients"
			echo "$clients $side $round $run_tps" >>"$work/samples"
			echo "$clients $side $round $run_cpu_us" >>"$work/cpu"
			detail=""
			if [ "$side" = loaded ]; then
				echo "$clients $round $run_share_all $run_share_primary" >>"$work/shares"
				detail="; pg_cluster's processes: $run_share_all % of the busy CPU$([ "$PIN" = 1 ] &&
					echo ", the primary's $run_share_primary % of CPU 0")"
			fi
			note "round $round, $side, clients $clients: $run_tps tps, $run_cpu_us µs CPU per transaction$detail"
		done
		if [ "$PERF" = 1 ] && [ "$side" = loaded ]; then
			perf_run
			echo "$round $run_perf_share" >>"$work/perf"
			note "round $round, perf: pg_cluster.so has $run_perf_share % of the pgbench backends' samples"
		fi
	done
done

# share_median CLIENTS COLUMN: the median of a column of the shares file.
share_median() {
	local values
	values=$(awk -v c="$1" -v k="$2" '$1 == c && $k != "-" { print $k }' "$work/shares")
	if [ -z "$values" ]; then echo "–"; else echo "$values" | median_of | awk '{ printf "%.2f %%", $1 }'; fi
}

{
	cat <<EOF
# Loading pg_cluster: one cluster against itself

\`$([ "$PIN" = 1 ] && printf 'PIN=1 ')$([ "$PERF" = 1 ] && printf 'PERF=1 ')bash bench/preload.sh\` on $(date -u +%Y-%m-%d), $(nproc) cores, PostgreSQL $("$PG_CONFIG" --version | awk '{ print $2 }').
One 3-node cluster on loopback (a primary, two streaming standbys$([ "$PIN" = 1 ] &&
	printf '%s' "; the primary and pgbench pinned to CPU 0, the standbys to CPU 1")),
restarted every round with \`shared_preload_libraries = 'pg_cluster'\`
(\`synchronous_mode = off\`: heartbeats, the commit fence) and with \`''\`,
which one first alternating; after each restart 3 s of pgbench to warm the
caches, then per client count a checkpoint and $SECONDS_PER_RUN s of pgbench
simple-update (\`-N\`), scale $SCALE; $ROUNDS rounds.  TPS columns are
medians, the ratios medians of the per-round ratios.

**CPU per tx** is the CPU time per transaction, loaded over none: $([ "$PIN" = 1 ] &&
	echo "the busy time of CPU 0, where the primary and pgbench run," || echo "the busy time of the machine's CPUs")
divided by the transactions.  What pg_cluster's own
processes cost in the loaded runs (medians over the rounds): **all**, the
CPU time of the three workers and of the backends answering heartbeats, as
a share of the time the machine's CPUs were busy; **primary** (PIN=1), the
primary's worker and heartbeat-answering backends as a share of CPU 0's
busy time: what a primary on a machine of its own pays.

| clients | loaded (off) | none | TPS loaded / none | CPU per tx loaded / none | all | primary |
|---:|---:|---:|---:|---:|---:|---:|
EOF
	for clients in $CLIENTS; do
		printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$clients" "$(median "$work/samples" "$clients" loaded)" \
			"$(median "$work/samples" "$clients" none)" "$(ratio_median "$work/samples" "$clients" loaded none)" \
			"$(ratio_median "$work/cpu" "$clients" loaded none)" \
			"$(share_median "$clients" 3)" "$(share_median "$clients" 4)"
	done
	echo
	if [ -s "$work/perf" ]; then
		cat <<EOF
The commit fence (PERF=1): in an extra loaded run per round (4 clients,
sampled by \`perf record -a\`), pg_cluster.so had a median of
$(awk '{ print $2 }' "$work/perf" | median_of | awk '{ printf "%.2f", $1 }') % of the samples of the backends serving pgbench
(per round: $(awk '{ printf "%s%s", sep, $2; sep = ", " }' "$work/perf")).

EOF
	fi
	cat <<EOF
Bar: loaded / none ≥ 0.99.

All runs (clients, side, round, TPS, µs CPU per transaction):

\`\`\`
$(paste -d' ' "$work/samples" <(awk '{ print $4 }' "$work/cpu"))
\`\`\`

Every loaded run (clients, round, all %, primary %; "-": not measured):

\`\`\`
$(cat "$work/shares")
\`\`\`
EOF
} >"$results_file"
section "Results (also in $results_file)"
sed -n '/^| clients/,/^$/p' "$results_file"
