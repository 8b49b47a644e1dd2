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
# Environment: CLIENTS (default "1 4 8"), ROUNDS (default 7), RUN_SECONDS
# (default 10), SCALE (default 10), PGC_BENCH_PORT (first port, default
# 54381), PGC_BENCH_DIR (default /tmp/pg_cluster-bench-preload; removed at
# exit), RESULTS_FILE (instead of bench/results/preload.md).
#
# Run as root (servers run as postgres) or as a normal user; pg_cluster must
# be installed (scripts/demo.sh or scripts/test.sh).

set -euo pipefail
bench_here=$(cd "$(dirname "$0")/.." && pwd)
. "$bench_here/scripts/demo.sh"
. "$bench_here/bench/medians.sh"
set -euo pipefail

CLIENTS=${CLIENTS:-"1 4 8"}
ROUNDS=${ROUNDS:-7}
SECONDS_PER_RUN=${RUN_SECONDS:-10}
SCALE=${SCALE:-10}
cluster_port_base=${PGC_BENCH_PORT:-54381}
cluster_dir=${PGC_BENCH_DIR:-/tmp/pg_cluster-bench-preload}
results_file=${RESULTS_FILE:-$bench_here/bench/results/preload.md}
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
	wait_until "two streaming standbys" streaming 2
	[ "$1" = none ] || wait_until "n1 to lead" n1_leads
	[ "$(node_value n1 "SHOW shared_preload_libraries")" = "$lib" ] ||
		die "n1 runs with the wrong shared_preload_libraries"
}

pgbench_tps() {
	run_as_runner "$PG_BINDIR/pgbench" -n -N -c "$1" -j "$1" -T "$2" \
		-h "$cluster_dir" -p "$(node_port n1)" -U postgres postgres 2>&1 |
		awk '/^tps = / { printf "%.1f", $3 }'
}

section "pgbench simple-update, scale $SCALE, clients: $CLIENTS; $ROUNDS rounds of $SECONDS_PER_RUN s per side"
note "creating the cluster in $cluster_dir"
cluster_create >/dev/null
wait_until "two streaming standbys" streaming 2
cluster_wait_leader >/dev/null
run_as_runner "$PG_BINDIR/pgbench" -q -i -s "$SCALE" -h "$cluster_dir" -p "$(node_port n1)" \
	-U postgres postgres >/dev/null 2>&1 || die "pgbench -i failed"

: >"$work/samples"
for ((round = 1; round <= ROUNDS; round++)); do
	if ((round % 2)); then order=(loaded none); else order=(none loaded); fi
	for side in "${order[@]}"; do
		restart_as "$side"
		pgbench_tps 4 3 >/dev/null
		for clients in $CLIENTS; do
			node_value n1 "CHECKPOINT" >/dev/null
			tps=$(pgbench_tps "$clients" "$SECONDS_PER_RUN")
			[ -n "$tps" ] || die "pgbench failed ($side, $clients clients)"
			echo "$clients $side $round $tps" >>"$work/samples"
			note "round $round, $side, clients $clients: $tps tps"
		done
	done
done

{
	cat <<EOF
# Loading pg_cluster: one cluster against itself

\`bash bench/preload.sh\` on $(date -u +%Y-%m-%d), $(nproc) cores, PostgreSQL $("$PG_CONFIG" --version | awk '{ print $2 }').
One 3-node cluster on loopback (a primary, two streaming standbys),
restarted every round with \`shared_preload_libraries = 'pg_cluster'\`
(\`synchronous_mode = off\`: heartbeats, the commit fence) and with \`''\`,
which one first alternating; after each restart 3 s of pgbench to warm the
caches, then per client count a checkpoint and $SECONDS_PER_RUN s of pgbench
simple-update (\`-N\`), scale $SCALE; $ROUNDS rounds.  TPS columns are
medians, the ratio the median of the per-round ratios.

| clients | loaded (off) | none | loaded / none |
|---:|---:|---:|---:|
EOF
	for clients in $CLIENTS; do
		printf '| %s | %s | %s | %s |\n' "$clients" "$(median "$work/samples" "$clients" loaded)" \
			"$(median "$work/samples" "$clients" none)" "$(ratio_median "$work/samples" "$clients" loaded none)"
	done
	cat <<EOF

Bar: loaded / none ≥ 0.99.

All runs (clients, side, round, TPS):

\`\`\`
$(cat "$work/samples")
\`\`\`
EOF
} >"$results_file"
section "Results (also in $results_file)"
sed -n '/^| clients/,/^$/p' "$results_file"
