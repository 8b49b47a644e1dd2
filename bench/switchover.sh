#!/usr/bin/env bash
# Planned switchover of pg_cluster as a client sees it.
#
# Usage: bash bench/switchover.sh
#
# Builds a 3-node cluster on loopback the way scripts/demo.sh does, every
# server run by pg_cluster_ctl, and runs RUNS switchovers back and forth
# between n1 and n2, each called on n3 (which forwards it to the leader and
# returns when the target is the leader and writable).  During each run a
# client (bench/writer.c) inserts a row every INTERVAL_MS through the
# read-write multi-host URI of pg_cluster.connection_uri(), reconnecting
# after every error.  Measured per run:
#
#   - write-unavailability window: the first write acknowledged after the
#     call began minus the last acknowledged before it (the longest gap
#     between two acknowledged writes from the call on; client clock);
#   - acknowledged writes lost: ids the client got acknowledged that the
#     new primary does not have (must be 0);
#   - command time: how long SELECT pg_cluster.switchover() took (psql);
#   - old primary streaming again: from the call's return until the old
#     primary, restarted by pg_cluster_ctl as a standby, streams from the
#     new one (polled every 20 ms);
#   - whether pg_rewind ran (it must not).
#
# Then REJOIN_RUNS times, the rejoin after a failover: kill -9 of the
# primary's whole instance, a new leader is elected, and the old primary is
# started again under pg_cluster_ctl: measured is the time from that start
# until it streams from the new primary (pg_rewind included).
#
# Prints a line per run and a markdown table (median, min, max), written to
# bench/results/switchover.md.  The cluster is removed at exit.
#
# Environment:
#   RUNS          switchovers (default 7)
#   REJOIN_RUNS   failovers followed by a rejoin (default 3)
#   BEFORE        seconds the client writes before the call (default 2)
#   AFTER         seconds it writes after the call began (default 3)
#   INTERVAL_MS   the client's period (default 20)
#   PGC_BENCH_DIR default /tmp/pg_cluster-bench-switchover
#   RESULTS_FILE  where the report goes instead (bench/report.sh)
#   TIMELINE_DIR  if set, every switchover leaves there a directory
#                 switchover-rRUN with the client's log (writer.log), the
#                 call's start and return, when the old primary streamed
#                 again and the nodes' ports (meta), and the nodes'
#                 pg_cluster.events from 3 s before the call on (events.tsv;
#                 the old primary's events before its restart come from its
#                 server log, where every event is logged too), for the
#                 timeline plots of bench/report.sh
#   PGC_BENCH_PORT port of n1, default 54351 (n2, n3: the next two)
#
# Run as root (servers run as postgres) or as a normal user; the extension
# and pg_cluster_ctl must be installed (scripts/demo.sh or scripts/test.sh);
# needs gcc and libpq-dev.

set -euo pipefail
bench_here=$(cd "$(dirname "$0")/.." && pwd)
. "$bench_here/scripts/demo.sh"
set -euo pipefail

RUNS=${RUNS:-7}
REJOIN_RUNS=${REJOIN_RUNS:-3}
BEFORE=${BEFORE:-2}
AFTER=${AFTER:-3}
INTERVAL_MS=${INTERVAL_MS:-20}

cluster_dir=${PGC_BENCH_DIR:-/tmp/pg_cluster-bench-switchover}
cluster_port_base=${PGC_BENCH_PORT:-54351}
cluster_port_env=PGC_BENCH_PORT
cluster_dir_env=PGC_BENCH_DIR
cluster_marker_name=PG_CLUSTER_BENCH
cluster_what="pg_cluster benchmark cluster"
cluster_supervised=1

results_file=${RESULTS_FILE:-$bench_here/bench/results/switchover.md}
work=$(mktemp -d /tmp/pgc-bench-switchover.XXXXXX)
samples=$work/samples
. "$bench_here/bench/client.sh"
build_writer

# ledger_ready NODE: the (new) ledger table exists on NODE.
ledger_ready() {
	[ "$(node_value "$1" "SELECT count(*) FROM ledger")" = 0 ]
}

# wait_streaming NODE PRIMARY T0: polls every 20 ms until NODE streams from
# PRIMARY; dies cluster_wait_timeout seconds after T0.
wait_streaming() {
	until node_streams_from "$1" "$2" 2>/dev/null; do
		awk -v a="$3" -v b="$(now)" -v m="$cluster_wait_timeout" 'BEGIN { exit !(b - a < m) }' ||
			die "$1 does not stream from $2"
		sleep 0.02
	done
}

# log_events NODE FROM TO: the pg_cluster events in NODE's server log
# between the epochs FROM and TO, as lines of events.tsv (the log's times
# are in the server's log_timezone, with milliseconds: log_line_prefix
# starts with %m).
log_events() {
	local tz from to about line day time zone rest
	tz=$(node_value "$1" "SHOW log_timezone")
	from=$(TZ=$tz date -d "@$2" '+%Y-%m-%d %H:%M:%S.%3N')
	to=$(TZ=$tz date -d "@$3" '+%Y-%m-%d %H:%M:%S.%3N')
	grep -a -A 1 ' LOG:  pg_cluster: ' "$(node_log "$1")" 2>/dev/null |
		awk -v from="$from" -v to="$to" '
			/ LOG:  pg_cluster: / { t = $1 " " $2; line = (t >= from && t < to) ? $0 : ""; next }
			line != "" && /DETAIL:  Node "/ { split($0, d, "\""); print d[2] "\t" line; line = "" }' |
		while IFS=$'\t' read -r about line; do
			read -r day time zone rest <<<"$line"
			rest=${rest#*pg_cluster: }
			printf '%s\t%s\t-\t%s\t%s\t%s (server log)\n' "$1" "$(TZ=$tz date -d "$day $time" +%s.%3N)" \
				"$about" "${rest%%: *}" "${rest#*: }"
		done
}

# save_timeline RUN T0 T1 T_STREAM CALLER OLD TARGET LOG: the material of
# one switchover's timeline plot (see TIMELINE_DIR above).
save_timeline() {
	local dir=$TIMELINE_DIR/switchover-r$1 node restarted
	mkdir -p "$dir"
	cp "$8" "$dir/writer.log"
	{
		echo "call $2 $3 $5 $6 $7"
		echo "streaming $4"
		for node in "${cluster_nodes[@]}"; do
			echo "port $node $(node_port "$node")"
		done
	} >"$dir/meta"
	: >"$dir/events.tsv"
	for node in "${cluster_nodes[@]}"; do
		node_psql "$node" -At -F $'\t' -c "SELECT '$node', extract(epoch FROM event_time), term, node_name,
				kind, regexp_replace(detail, '\s+', ' ', 'g')
			FROM pg_cluster.events WHERE event_time >= to_timestamp($2 - 3) ORDER BY seq" >>"$dir/events.tsv"
	done
	# the old primary was restarted: its events before that are in its log
	restarted=$(node_value "$6" "SELECT extract(epoch FROM min(event_time)) FROM pg_cluster.events")
	log_events "$6" "$(awk -v t="$2" 'BEGIN { printf "%.3f", t - 3 }')" "${restarted:-$(now)}" >>"$dir/events.tsv"
}

# one_run RUN: one switchover from the current leader to the other of n1/n2.
one_run() {
	local run=$1 old target caller=n3 uri log t0 t1 t_stream out
	local gap acked lost rewinds
	old=$(cluster_wait_leader)
	if [ "$old" = n1 ]; then target=n2; else target=n1; fi

	node_psql "$old" -c "DROP TABLE IF EXISTS ledger" -c "CREATE TABLE ledger (id bigint PRIMARY KEY, at timestamptz NOT NULL)"
	for node in "${cluster_nodes[@]}"; do
		wait_until "the ledger on $node" ledger_ready "$node"
	done
	rewinds=$(grep -c 'running pg_rewind' "$(node_log "$old")" || true)
	uri=$(node_value "$old" "SELECT pg_cluster.connection_uri()")
	log=$work/writer-$run.log
	PGUSER=postgres "$work/writer" "$uri" "$((BEFORE + AFTER))" "$INTERVAL_MS" "$log" &
	writer_pid=$!
	sleep "$BEFORE"

	t0=$(now)
	out=$(node_value "$caller" "SELECT pg_cluster.switchover('$target')") ||
		die "run $run: the switchover failed: $out"
	t1=$(now)
	[ "$out" = "$target" ] || die "run $run: switchover returned '$out', not $target"
	wait_streaming "$old" "$target" "$t1"
	t_stream=$(now)
	wait "$writer_pid" || die "run $run: the client failed"
	writer_pid=""
	if [ -n "${TIMELINE_DIR:-}" ]; then
		save_timeline "$run" "$t0" "$t1" "$t_stream" "$caller" "$old" "$target" "$log"
	fi

	gap=$(awk -v t="$t0" '$1 == "ok" { if (prev != "" && $4 >= t && $4 - prev > g) g = $4 - prev; prev = $4 }
		END { printf "%.0f", g * 1000 }' "$log")
	awk '$1 == "ok" { print $2 }' "$log" | sort -n >"$work/acked"
	node_value "$target" "SELECT id FROM ledger ORDER BY id" | sort -n >"$work/table"
	acked=$(wc -l <"$work/acked")
	lost=$(awk 'NR == FNR { seen[$0] = 1; next } !($0 in seen)' "$work/table" "$work/acked" | wc -l)
	rewinds=$(($(grep -c 'running pg_rewind' "$(node_log "$old")" || true) - rewinds))
	printf '%s %s %s %s %s %s %s %s\n' "$run" "$old" "$target" "$gap" "$lost" \
		"$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", (b - a) * 1000 }')" \
		"$(awk -v a="$t1" -v b="$t_stream" 'BEGIN { printf "%.0f", (b - a) * 1000 }')" "$acked $rewinds" >>"$samples"
	tail -n 1 "$samples" | awk '{ printf "    run %s: %s -> %s: write gap %s ms, %s of %s acknowledged writes lost, command %s ms, old primary streaming %s ms after; pg_rewind runs: %s\n", $1, $2, $3, $4, $5, $8, $6, $7, $9 }'
}

# rejoin_run RUN: kill -9 of the leader, then its restart under
# pg_cluster_ctl; appends "RUN OLD NEW MS REWOUND" to $rejoins.
rejoin_run() {
	local run=$1 old new t0 t1 deadline rewound
	old=$(cluster_wait_leader)
	node_kill_instance "$old"
	deadline=$(($(date +%s) + cluster_wait_timeout))
	until new=$(new_leader "$old"); do
		[ "$(date +%s)" -lt "$deadline" ] || die "rejoin run $run: no new leader"
		sleep 0.05
	done
	t0=$(now)
	node_start "$old"
	wait_streaming "$old" "$new" "$t0"
	t1=$(now)
	rewound=$(node_value "$old" "SELECT count(*) FROM pg_cluster.events WHERE kind = 'rejoined' AND detail LIKE '%rewind=yes%'")
	printf '%s %s %s %s %s\n' "$run" "$old" "$new" \
		"$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", (b - a) * 1000 }')" "$rewound" >>"$rejoins"
	tail -n 1 "$rejoins" | awk '{ printf "    rejoin %s: %s killed, %s leads; %s streams from it %s ms after its restart (pg_rewind: %s)\n", $1, $2, $3, $2, $4, ($5 > 0 ? "yes" : "no") }'
}

# stats COLUMN [FILE]: "median | min | max" of a column of the samples.
stats() {
	awk -v c="$1" '{ print $c }' "${2:-$samples}" | sort -g | awk '
		{ v[NR] = $1 }
		END {
			med = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			printf "%g | %g | %g", med, v[1], v[NR]
		}'
}

section "Switchover benchmark: $RUNS switchovers between n1 and n2, called on n3, client every $INTERVAL_MS ms"
cluster_create >/dev/null
cluster_wait_all_reachable
cluster_wait_leader >/dev/null
: >"$samples"
for ((run = 1; run <= RUNS; run++)); do
	one_run "$run"
done
rejoins=$work/rejoins
: >"$rejoins"
section "Rejoin after a failover: kill -9 of the primary, then its restart under pg_cluster_ctl"
for ((run = 1; run <= REJOIN_RUNS; run++)); do
	rejoin_run "$run"
done

mkdir -p "$(dirname "$results_file")"
{
	cat <<EOF
# Switchover benchmark

\`bash bench/switchover.sh\` on $(date -u +%Y-%m-%d), $(nproc) cores, PostgreSQL $("$PG_CONFIG" --version | awk '{ print $2 }'),
defaults (heartbeat_interval 100ms, failover_timeout 1s); a 3-node cluster on
loopback, every server run by pg_cluster_ctl; $RUNS switchovers back and forth
between n1 and n2, each called on n3; a client inserting a row every
$INTERVAL_MS ms through the read-write multi-host URI.

| run | from → to | write gap, ms | acknowledged lost | command, ms | old primary streaming after, ms | acknowledged writes | pg_rewind runs |
|---:|---|---:|---:|---:|---:|---:|---:|
$(awk '{ printf "| %s | %s → %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9 }' "$samples")

| metric ($RUNS runs) | median | min | max | bar |
|---|---:|---:|---:|---|
| write-unavailability window (client), ms | $(stats 4) | ≤ 200 |
| command time, ms | $(stats 6) | ≤ 1000 |
| old primary streaming from the new one after the call returned, ms | $(stats 7) | ≤ 5000 |
| acknowledged writes lost | $(stats 5) | 0 |

- acknowledged writes lost in all runs: $(awk '{ t += $5; n += $8 } END { print t + 0 " of " n + 0 }' "$samples")
- pg_rewind runs in all runs: $(awk '{ t += $9 } END { print t + 0 }' "$samples")

## Rejoin after a failover

kill -9 of the primary's whole instance; once a new leader is elected, the
old primary is started again under pg_cluster_ctl: it finds the new leader,
shuts down, is rewound by pg_rewind and restarts as a standby.

| run | killed | new leader | restart → streaming, ms | pg_rewind |
|---:|---|---|---:|---|
$(awk '{ printf "| %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, ($5 > 0 ? "yes" : "no") }' "$rejoins")

| metric ($REJOIN_RUNS runs) | median | min | max | bar |
|---|---:|---:|---:|---|
| old primary streaming after its restart, ms | $(stats 4 "$rejoins") | ≤ 10000 (Patroni: 13.5 s) |

Reference (measured on this machine kind, from the issue): Patroni 3.0.2
\`patronictl switchover\` 1.4 s without writes (command 3 s); pg_auto_failover
2.0 \`perform switchover\` about 2.5–3 s (command 3.5 s); repmgr needs ssh
between nodes, the manual sequence by hand took 0.26 s.
EOF
} >"$results_file"
section "Results (also in $results_file)"
grep -E '^\| (metric|---|write|command|old primary|acknowledged)' "$results_file"
