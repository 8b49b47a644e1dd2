#!/usr/bin/env bash
# What pg_cluster costs a write workload, measured with pgbench.
#
# Usage: bash bench/syncrep.sh
#
# Four 3-node clusters on loopback (a primary and two streaming standbys),
# all up at once, benchmarked in turns so that they share the same machine
# state:
#
#   quorum    pg_cluster loaded, synchronous_mode = quorum (the extension
#             sets synchronous_standby_names = 'ANY 1 ("n2", "n3")')
#   by hand   no pg_cluster; synchronous_standby_names = 'ANY 1 (n2, n3)'
#             set by hand: the same replication without the extension
#   off       pg_cluster loaded, synchronous_mode = off (asynchronous)
#   none      no pg_cluster at all (asynchronous)
#
# For every client count, ROUNDS rounds; each round runs pgbench
# simple-update (-N) for RUN_SECONDS seconds on each cluster, the two of a
# comparison back to back (quorum with by hand, off with none), which one
# first alternating from round to round.  The ratio of a round is that of
# the two back-to-back runs, so a machine that drifts (disk, other load)
# affects both sides alike; reported are the median TPS per cluster and the
# median of the per-round ratios.  Written to bench/results/syncrep.md.
#
# Before every run all four primaries checkpoint, so that no cluster's
# checkpoint writes fall into another's measured window.
#
# Environment: CLIENTS (default "1 4 8"), ROUNDS (default 7), RUN_SECONDS
# (default 10), SCALE (pgbench scale, default 10), PGC_BENCH_PORT (first
# port, default 54361; the clusters use 12 ports from there),
# PGC_BENCH_DIR (where the clusters go, default
# /tmp/pg_cluster-bench-syncrep; removed at exit), RESULTS_FILE (where the
# report goes instead of bench/results/syncrep.md).
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
port_base=${PGC_BENCH_PORT:-54361}
base_dir=${PGC_BENCH_DIR:-/tmp/pg_cluster-bench-syncrep}
results_file=${RESULTS_FILE:-$bench_here/bench/results/syncrep.md}
work=$(mktemp -d /tmp/pgc-bench-syncrep.XXXXXX)
setups=(quorum byhand off none)
cluster_what="pg_cluster benchmark cluster"
cluster_marker_name=PG_CLUSTER_BENCH
cluster_supervised=0

# use_setup NAME: points the cluster helpers at that setup's cluster.
use_setup() {
	local i
	for i in "${!setups[@]}"; do
		[ "${setups[$i]}" = "$1" ] && break
	done
	cluster_dir=$base_dir/$1
	cluster_port_base=$((port_base + 3 * i))
	case $1 in
	quorum)
		cluster_preload=pg_cluster
		cluster_extra_conf="pg_cluster.synchronous_mode = quorum" ;;
	byhand)
		cluster_preload=""
		cluster_extra_conf="synchronous_standby_names = 'ANY 1 (n2, n3)'" ;;
	off)
		cluster_preload=pg_cluster
		cluster_extra_conf="pg_cluster.synchronous_mode = off" ;;
	none)
		cluster_preload=""
		cluster_extra_conf="" ;;
	esac
}

cleanup() {
	local status=$? s
	trap - EXIT INT TERM
	set +e
	for s in "${setups[@]}"; do
		use_setup "$s"
		cluster_exists && cluster_remove
	done
	rm -rf "$work" "$base_dir"
	exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# streaming NODE COUNT: the primary NODE has COUNT streaming standbys.
streaming() {
	[ "$(node_value "$1" "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")" = "$2" ]
}

# sync_in_force: the extension's configuration is in force on n1.
sync_in_force() {
	[ "$(node_value n1 "SELECT sync_state LIKE 'commits wait%' FROM pg_cluster.status")" = t ]
}

section "pgbench simple-update, scale $SCALE, clients: $CLIENTS; $ROUNDS rounds of $SECONDS_PER_RUN s per cluster"
mkdir -p "$base_dir"
[ "$(id -u)" != 0 ] || chown "$(pgc_runner)" "$base_dir"
for s in "${setups[@]}"; do
	use_setup "$s"
	note "creating cluster \"$s\" in $cluster_dir"
	cluster_create >/dev/null
	wait_until "$s: two streaming standbys" streaming n1 2
	if [ -n "$cluster_preload" ]; then
		cluster_wait_leader >/dev/null
	fi
	[ "$s" != quorum ] || wait_until "the synchronous configuration" sync_in_force
	run_as_runner "$PG_BINDIR/pgbench" -q -i -s "$SCALE" -h "$cluster_dir" -p "$(node_port n1)" \
		-U postgres postgres >/dev/null 2>&1 || die "pgbench -i failed on $s"
done
use_setup quorum
note "n1 of \"quorum\": synchronous_standby_names = $(node_value n1 "SHOW synchronous_standby_names")"

: >"$work/samples"
for clients in $CLIENTS; do
	for ((round = 1; round <= ROUNDS; round++)); do
		# the two sides of a comparison back to back, alternating which first
		if ((round % 2)); then
			order=(quorum byhand off none)
		else
			order=(byhand quorum none off)
		fi
		for s in "${order[@]}"; do
			# no cluster's checkpoint may fall into the measured window
			for c in "${setups[@]}"; do
				use_setup "$c"
				node_value n1 "CHECKPOINT" >/dev/null
			done
			use_setup "$s"
			tps=$(run_as_runner "$PG_BINDIR/pgbench" -n -N -c "$clients" -j "$clients" \
				-T "$SECONDS_PER_RUN" -h "$cluster_dir" -p "$(node_port n1)" -U postgres postgres 2>&1 |
				awk '/^tps = / { printf "%.1f", $3 }')
			[ -n "$tps" ] || die "pgbench failed on $s"
			echo "$clients $s $round $tps" >>"$work/samples"
			note "clients $clients, round $round, $s: $tps tps"
		done
	done
done

{
	cat <<EOF
# Synchronous mode and overhead benchmark

\`bash bench/syncrep.sh\` on $(date -u +%Y-%m-%d), $(nproc) cores, PostgreSQL $("$PG_CONFIG" --version | awk '{ print $2 }').
Four 3-node clusters on loopback, up at once, benchmarked in turns:
pgbench simple-update (\`-N\`), scale $SCALE, $SECONDS_PER_RUN s per run, $ROUNDS
rounds per client count; the two sides of a comparison run back to back
(alternating which first), every run after a checkpoint of all four
primaries; TPS columns are medians, ratio columns the median of the
per-round ratios.

- **quorum**: pg_cluster, \`synchronous_mode = quorum\` (it manages
  \`synchronous_standby_names = 'ANY 1 ("n2", "n3")'\`)
- **by hand**: no pg_cluster, \`synchronous_standby_names = 'ANY 1 (n2, n3)'\`
- **off**: pg_cluster loaded, \`synchronous_mode = off\` (asynchronous)
- **none**: no pg_cluster (asynchronous)

| clients | quorum | by hand | quorum / by hand | off | none | off / none |
|---:|---:|---:|---:|---:|---:|---:|
EOF
	for clients in $CLIENTS; do
		q=$(median "$work/samples" "$clients" quorum)
		h=$(median "$work/samples" "$clients" byhand)
		o=$(median "$work/samples" "$clients" off)
		n=$(median "$work/samples" "$clients" none)
		printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$clients" "$q" "$h" \
			"$(ratio_median "$work/samples" "$clients" quorum byhand)" "$o" "$n" \
			"$(ratio_median "$work/samples" "$clients" off none)"
	done
	cat <<EOF

Bars: quorum / by hand ≥ 0.97; off / none ≥ 0.99.

All runs (clients, cluster, round, TPS):

\`\`\`
$(cat "$work/samples")
\`\`\`
EOF
} >"$results_file"
section "Results (also in $results_file)"
sed -n '/^| clients/,/^$/p' "$results_file"
