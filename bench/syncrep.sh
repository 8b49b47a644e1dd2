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
#   off1s     as off, with pg_cluster.heartbeat_interval = 1s instead of
#             100ms: compared with none (COMPARE=off1s/none), it separates
#             what the commit check costs (the same at any heartbeat rate)
#             from what the heartbeats cost (ten times less)
#   none2     a second cluster like none: compared with none
#             (COMPARE=none2/none), the control that shows what this method
#             reports for two clusters that do not differ (the first
#             created runs on files created earlier, on other ports)
#
# For every client count, ROUNDS rounds; each round runs pgbench
# simple-update (-N) for RUN_SECONDS seconds on each cluster, the two of a
# comparison back to back (quorum with by hand, off with none), which one
# first alternating from round to round.  The ratio of a round is that of
# the two back-to-back runs, so a machine that drifts (disk, other load)
# affects both sides alike; reported are the median TPS per cluster, the
# median of the per-round ratios and a distribution-free 95 % confidence
# interval of that median (order statistics of the ratios: it says how
# far the noise of the runs lets the median be trusted), per client count
# and over all of them.  Written to bench/results/syncrep.md.
#
# COMPARE chooses the comparisons (default "quorum/byhand off/none"; also
# off1s/none and none2/none; only the clusters they need are created):
# resolving a difference of 1 % on a
# machine where single runs vary by several percent takes many short
# rounds of one comparison, e.g. COMPARE=off/none ROUNDS=40 RUN_SECONDS=5.
#
# Before every run all the primaries checkpoint, so that no cluster's
# checkpoint writes fall into another's measured window, and then the
# other clusters are stopped (SIGSTOP to all their processes, SIGCONT
# after the run): an idle cluster with pg_cluster keeps heartbeating, which
# would slow whichever cluster runs meanwhile, so without this the clusters
# without pg_cluster would be charged for it.  Their clocks go on while
# they are stopped, so the clusters with pg_cluster run with
# pg_cluster.failover_timeout = 60s (a lease of 48 s) instead of 1 s: the
# heartbeats (every 100 ms), the lease renewals and the commit fence cost
# the same, but a stopped cluster keeps its leader.
#
# With PIN=1 every cluster's primary and pgbench run on CPU 0, the standbys
# on CPU 1 (taskset): a primary then pays for its own node only, as on a
# machine of its own.
#
# Environment: PIN (default 0), COMPARE (default "quorum/byhand off/none"),
# CLIENTS (default "1 4 8"), ROUNDS (default 7), RUN_SECONDS
# (default 10), SCALE (pgbench scale, default 10), PGC_BENCH_PORT (first
# port, default 54361; the clusters use 18 ports from there),
# PGC_BENCH_DIR (where the clusters go, default
# /tmp/pg_cluster-bench-syncrep; removed at exit), RESULTS_FILE (where the
# report goes instead of bench/results/syncrep.md).
#
# Run as root (servers run as postgres) or as a normal user; pg_cluster must
# be installed (scripts/demo.sh or scripts/test.sh).

set -euo pipefail
bench_here=$(cd "$(dirname "$0")/.." && pwd)
. "$bench_here/scripts/demo.sh"
. "$bench_here/bench/lib.sh"
set -euo pipefail

PIN=${PIN:-0}
COMPARE=${COMPARE:-"quorum/byhand off/none"}
CLIENTS=${CLIENTS:-"1 4 8"}
ROUNDS=${ROUNDS:-7}
SECONDS_PER_RUN=${RUN_SECONDS:-10}
SCALE=${SCALE:-10}
port_base=${PGC_BENCH_PORT:-54361}
base_dir=${PGC_BENCH_DIR:-/tmp/pg_cluster-bench-syncrep}
default_results=syncrep.md
[ "$PIN" = 1 ] && default_results=syncrep-pinned.md
results_file=${RESULTS_FILE:-$bench_here/bench/results/$default_results}
work=$(mktemp -d /tmp/pgc-bench-syncrep.XXXXXX)
all_setups=(quorum byhand off none off1s none2)
setups=()

# runs SETUP: SETUP's cluster is part of this run.
runs() {
	[[ " ${setups[*]} " == *" $1 "* ]]
}

for pair in $COMPARE; do
	case $pair in
	quorum/byhand | off/none | off1s/none | none2/none) ;;
	*) die "COMPARE: unknown comparison \"$pair\" (known: quorum/byhand off/none off1s/none none2/none)" ;;
	esac
	for side in ${pair%/*} ${pair#*/}; do
		runs "$side" || setups+=("$side")
	done
done
cluster_what="pg_cluster benchmark cluster"
cluster_marker_name=PG_CLUSTER_BENCH
cluster_supervised=0

# use_setup NAME: points the cluster helpers at that setup's cluster.
use_setup() {
	local i
	for i in "${!all_setups[@]}"; do
		[ "${all_setups[$i]}" = "$1" ] && break
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
	off | off1s)
		cluster_preload=pg_cluster
		cluster_extra_conf="pg_cluster.synchronous_mode = off" ;;
	none | none2)
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
		cluster_exists || continue
		signal_cluster CONT 2>/dev/null
		cluster_remove
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

# shown_everywhere NAME VALUE: SHOW NAME gives VALUE on every node of the
# current cluster.
shown_everywhere() {
	local node
	for node in "${cluster_nodes[@]}"; do
		[ "$(node_value "$node" "SHOW $1")" = "$2" ] || return 1
	done
}

# set_everywhere NAME VALUE SHOWN: NAME = VALUE on every node of the
# current cluster, reloaded; waits until SHOW gives SHOWN everywhere.
set_everywhere() {
	local node
	for node in "${cluster_nodes[@]}"; do
		echo "$1 = '$2'" | append_to_file "$(node_data "$node")/postgresql.conf"
		node_value "$node" "SELECT pg_reload_conf()" >/dev/null
	done
	wait_until "$(basename "$cluster_dir"): $1 = $2 everywhere" shown_everywhere "$1" "$3"
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
		# a leader now: a longer failover timeout lets it stay stopped
		set_everywhere pg_cluster.failover_timeout 60s 1min
	fi
	# the 60 s failover timeout allows it (at least 5 heartbeat intervals)
	[ "$s" != off1s ] || set_everywhere pg_cluster.heartbeat_interval 1s 1s
	[ "$s" != quorum ] || wait_until "the synchronous configuration" sync_in_force
	run_as_runner "$PG_BINDIR/pgbench" -q -i -s "$SCALE" -h "$cluster_dir" -p "$(node_port n1)" \
		-U postgres postgres >/dev/null 2>&1 || die "pgbench -i failed on $s"
done
if runs quorum; then
	use_setup quorum
	note "n1 of \"quorum\": synchronous_standby_names = $(node_value n1 "SHOW synchronous_standby_names")"
fi
if [ "$PIN" = 1 ]; then
	for s in "${setups[@]}"; do
		use_setup "$s"
		pin_node n1 0
		pin_node n2 1
		pin_node n3 1
	done
fi
pgbench_pin=()
[ "$PIN" = 1 ] && pgbench_pin=(taskset -c 0)

: >"$work/samples"
for clients in $CLIENTS; do
	for ((round = 1; round <= ROUNDS; round++)); do
		# the two sides of a comparison back to back, alternating which first
		order=()
		for pair in $COMPARE; do
			if ((round % 2)); then
				order+=(${pair%/*} ${pair#*/})
			else
				order+=(${pair#*/} ${pair%/*})
			fi
		done
		for s in "${order[@]}"; do
			# no cluster's checkpoint may fall into the measured window,
			# and the others are stopped during it
			for c in "${setups[@]}"; do
				use_setup "$c"
				signal_cluster CONT
				node_value n1 "CHECKPOINT" >/dev/null
			done
			for c in "${setups[@]}"; do
				[ "$c" = "$s" ] || { use_setup "$c"; signal_cluster STOP; }
			done
			use_setup "$s"
			[ "$s" != quorum ] || wait_until "the synchronous configuration" sync_in_force
			tps=$(run_as_runner "${pgbench_pin[@]}" "$PG_BINDIR/pgbench" -n -N -c "$clients" -j "$clients" \
				-T "$SECONDS_PER_RUN" -h "$cluster_dir" -p "$(node_port n1)" -U postgres postgres 2>&1 |
				awk '/^tps = / { printf "%.1f", $3 }')
			[ -n "$tps" ] || die "pgbench failed on $s"
			echo "$clients $s $round $tps" >>"$work/samples"
			note "clients $clients, round $round, $s: $tps tps"
		done
	done
done

# side_label SETUP
side_label() {
	case $1 in
	byhand) echo "by hand" ;;
	off1s) echo "off, heartbeat 1 s" ;;
	none2) echo "none (2nd cluster)" ;;
	*) echo "$1" ;;
	esac
}

# table_row CLIENTS: one row of the results table ("all": every client
# count pooled).
table_row() {
	local pair a b row="| $1 |"
	for pair in $COMPARE; do
		a=${pair%/*}
		b=${pair#*/}
		row+=" $(median "$work/samples" "$1" "$a") | $(median "$work/samples" "$1" "$b") |"
		row+=" **$(ratio_median "$work/samples" "$1" "$a" "$b")** ($(ratio_median_ci "$work/samples" "$1" "$a" "$b")) |"
	done
	echo "$row"
}

{
	header="| clients |"
	rule="|---:|"
	for pair in $COMPARE; do
		header+=" $(side_label ${pair%/*}) | $(side_label ${pair#*/}) | $(side_label ${pair%/*}) / $(side_label ${pair#*/}) (95 % CI) |"
		rule+="---:|---:|---:|"
	done
	cat <<EOF
# Synchronous mode and overhead benchmark

\`$([ "$PIN" = 1 ] && printf 'PIN=1 ')$([ "$COMPARE" = "quorum/byhand off/none" ] || printf 'COMPARE=%s ' "$COMPARE")ROUNDS=$ROUNDS RUN_SECONDS=$SECONDS_PER_RUN bash bench/syncrep.sh\` on $(date -u +%Y-%m-%d), $(nproc) cores, PostgreSQL $("$PG_CONFIG" --version | awk '{ print $2 }').
${#setups[@]} 3-node clusters on loopback$([ "$PIN" = 1 ] &&
	printf '%s' " (every primary and pgbench pinned to CPU 0, the standbys to CPU 1)"), benchmarked in turns:
pgbench simple-update (\`-N\`), scale $SCALE, $SECONDS_PER_RUN s per run, $ROUNDS
rounds per client count; the two sides of a comparison run back to back
(alternating which first), every run after a checkpoint of every
primary, with the other clusters stopped (SIGSTOP) during it; the
clusters with pg_cluster have \`failover_timeout = 60s\` so that they keep
their leader while stopped (heartbeats every 100 ms as by default).  TPS
columns are medians; ratio columns are the median of the per-round ratios
with a distribution-free 95 % confidence interval of that median (order
statistics of the per-round ratios); the row "all" pools the rounds of
every client count.

- **quorum**: pg_cluster, \`synchronous_mode = quorum\` (it manages
  \`synchronous_standby_names = 'ANY 1 ("n2", "n3")'\`)
- **by hand**: no pg_cluster, \`synchronous_standby_names = 'ANY 1 (n2, n3)'\`
- **off**: pg_cluster loaded, \`synchronous_mode = off\` (asynchronous)
- **none**: no pg_cluster (asynchronous)
$(runs off1s && printf '%s' "- **off, heartbeat 1 s**: as off, with \`pg_cluster.heartbeat_interval = 1s\`
")$(runs none2 && printf '%s' "- **none (2nd cluster)**: a second cluster like none, created before it: the control
")
$header
$rule
EOF
	for clients in $CLIENTS all; do
		table_row "$clients"
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
