#!/usr/bin/env bash
# Failover of pg_cluster as a client sees it: kill -9 of the primary's whole
# instance while a client writes.
#
# Usage: bash bench/failover.sh
#
# For every setting (heartbeat_interval/failover_timeout) and RUNS times:
# builds a fresh 3-node cluster on loopback the way scripts/demo.sh does
# (n1 primary, n2 and n3 streaming standbys), waits until they agree on a
# leader, and starts a client (bench/writer.c, built here against libpq)
# that inserts a row every 20 ms through the read-write multi-host URI of
# pg_cluster.connection_uri(), reconnecting after every error.  KILL_AFTER
# seconds after the client started, the primary's postmaster and all its
# children get SIGKILL at once; the client goes on for AFTER_KILL seconds.
# Measured per run:
#
#   - write gap: the first write acknowledged after the kill minus the last
#     acknowledged before it (client clock): what an application sees;
#   - kill -> elected: the "elected" event of the winner (server clock, the
#     same machine);
#   - kill -> leader: the winner's state_changed "-> leader" event: it is
#     promoted and holds a lease, i.e. it accepts commits;
#   - kill -> detected: the first peer_unreachable event about the killed
#     node on a survivor;
#   - acknowledged writes lost: ids the client got acknowledged that the new
#     primary does not have (replication is asynchronous: may be > 0);
#   - failed writes that committed anyway (ids whose INSERT reported an error
#     but are in the table: the error came after the commit);
#   - the winner.
#
# Prints a line per run and, per setting, a markdown table (median, min,
# max); writes them to bench/results/failover.md.  Every cluster is removed
# at exit.
#
# Environment:
#   RUNS              runs per setting (default 5)
#   HEARTBEAT         pg_cluster.heartbeat_interval (default 100ms)
#   FAILOVER_TIMEOUT  pg_cluster.failover_timeout (default 1s)
#   FASTEST           1 (default): also run the "fastest settings" line,
#                     heartbeat 50ms / failover_timeout 500ms; 0: do not.
#                     Ignored (0) when HEARTBEAT or FAILOVER_TIMEOUT is set.
#   SETTINGS          the settings to run, space-separated
#                     heartbeat_interval/failover_timeout pairs, e.g.
#                     "200ms/2s 400ms/4s"; when set, the three above are
#                     ignored
#   KILL_AFTER        seconds from the client's start to the kill (default 3)
#   AFTER_KILL        seconds the client goes on after the kill (default 5)
#   INTERVAL_MS       the client's period (default 20)
#   SYNC_MODE         pg_cluster.synchronous_mode (default off); other than
#                     off, the results go to bench/results/failover-MODE.md
#   RESULTS_FILE      where the report goes instead (bench/report.sh)
#   SAMPLES_OUT       if set, the per-run samples are also copied there
#                     (one line per run; the columns are listed in its
#                     first line, a comment)
#   TIMELINE_DIR      if set, every run leaves there a directory
#                     failover-sSETTING-rRUN with the client's log
#                     (writer.log), the kill time, the nodes' ports and the
#                     winner (meta) and the survivors' pg_cluster.events
#                     from 5 s before the kill on (events.tsv), for the
#                     timeline plots of bench/report.sh
#   PGC_BENCH_DIR     default /tmp/pg_cluster-bench-failover
#   PGC_BENCH_PORT    port of n1, default 54341 (n2, n3: the next two)
#   PGC_BENCH_ANOMALIES  where the logs and events of a cluster are kept in
#                     which a standby took over before the kill (while it
#                     was built or the client wrote; default
#                     /tmp/pg_cluster-bench-failover-anomalies;
#                     the run starts again on a new cluster)
#
# Run as root (servers run as postgres) or as a normal user; the extension
# must be installed (bash scripts/demo.sh or scripts/test.sh); needs gcc and
# libpq-dev.

set -euo pipefail
bench_here=$(cd "$(dirname "$0")/.." && pwd)
# the cluster helpers (cluster_*, node_*, wait_until) and common.sh
. "$bench_here/scripts/demo.sh"
set -euo pipefail

RUNS=${RUNS:-5}
KILL_AFTER=${KILL_AFTER:-3}
AFTER_KILL=${AFTER_KILL:-5}
INTERVAL_MS=${INTERVAL_MS:-20}
if [ -n "${HEARTBEAT:-}${FAILOVER_TIMEOUT:-}" ]; then
	FASTEST=0
fi
settings=("${HEARTBEAT:-100ms}/${FAILOVER_TIMEOUT:-1s}")
if [ "${FASTEST:-1}" = 1 ]; then
	settings+=("50ms/500ms")
fi
if [ -n "${SETTINGS:-}" ]; then
	read -ra settings <<<"$SETTINGS"
fi

cluster_dir=${PGC_BENCH_DIR:-/tmp/pg_cluster-bench-failover}
cluster_port_base=${PGC_BENCH_PORT:-54341}
cluster_port_env=PGC_BENCH_PORT
cluster_dir_env=PGC_BENCH_DIR
cluster_marker_name=PG_CLUSTER_BENCH
cluster_what="pg_cluster benchmark cluster"
cluster_connect_timeout=500ms

results_dir=$bench_here/bench/results
SYNC_MODE=${SYNC_MODE:-off}
cluster_extra_conf="pg_cluster.synchronous_mode = $SYNC_MODE"
if [ -n "${RESULTS_FILE:-}" ]; then
	results_file=$RESULTS_FILE
elif [ "$SYNC_MODE" = off ]; then
	results_file=$results_dir/failover.md
else
	results_file=$results_dir/failover-$SYNC_MODE.md
fi

work=$(mktemp -d /tmp/pgc-bench-failover.XXXXXX)
# logs of clusters that misbehaved while being built are kept here
anomalies_dir=${PGC_BENCH_ANOMALIES:-/tmp/pg_cluster-bench-failover-anomalies}
. "$bench_here/bench/client.sh"

# ---------------------------------------------------------------- one run

# first_event_after NODE T0 CONDITION: epoch of the first event of NODE at or
# after T0 matching CONDITION, or nothing.
first_event_after() {
	node_value "$1" "SELECT extract(epoch FROM min(event_time)) FROM pg_cluster.events
		WHERE event_time >= to_timestamp($2) AND ($3)"
}

# not_in A B: the lines of B that are not in A.
not_in() {
	awk 'NR == FNR { seen[$0] = 1; next } !($0 in seen)' "$1" "$2"
}

# in_both A B: the lines of B that are also in A.
in_both() {
	awk 'NR == FNR { seen[$0] = 1; next } $0 in seen' "$1" "$2"
}

# diff_ms A B: (B - A) in milliseconds, or "-" if either is missing.
diff_ms() {
	if [ -z "$1" ] || [ -z "$2" ]; then
		echo -
	else
		awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", (b - a) * 1000 }'
	fi
}

# keep_anomaly RUN LEADER WHEN: keeps the logs and events of a cluster in
# which LEADER took over from the first node without being asked to.
keep_anomaly() {
	local keep node
	keep=$anomalies_dir/$(date +%H%M%S)-run$1
	mkdir -p "$keep"
	for node in "${cluster_nodes[@]}"; do
		cp "$(node_log "$node")" "$keep/" 2>/dev/null || true
		node_psql "$node" -c "SELECT seq, event_time::time(3) AS time, term, node_name, kind, detail
			FROM pg_cluster.events ORDER BY seq" >"$keep/$node.events" 2>&1 || true
	done
	echo "    run $1: $3, $2 took over from ${cluster_nodes[0]}; logs and events kept in $keep;" \
		"the run starts again" >&2
	echo "$setting $1 $keep" >>"$work/setup-anomalies"
}

# create_cluster_led_by_first RUN: a fresh cluster whose first node, the
# primary the others were cloned from, is the leader.  A cluster where a standby took
# over while it was being built (an election nobody asked for) is kept
# aside (keep_anomaly), counted, and built again (3 tries).
create_cluster_led_by_first() {
	local run=$1 try leader term
	for ((try = 1; try <= 3; try++)); do
		cluster_create >/dev/null
		cluster_wait_all_reachable
		leader=$(cluster_wait_leader)
		# (its term may be 2 or more: a stalled bootstrap election is retried)
		if [ "$leader" = "${cluster_nodes[0]}" ]; then
			return 0
		fi
		term=$(node_value "$leader" "SELECT term FROM pg_cluster.status")
		keep_anomaly "$run" "$leader (term $term)" "while the cluster was built"
	done
	die "run $run: no cluster led by ${cluster_nodes[0]} in 3 tries"
}

# save_timeline DIR T_KILL OLD NEW LOG: the material of one run's timeline
# plot (see TIMELINE_DIR above).
save_timeline() {
	local dir=$1 node
	mkdir -p "$dir"
	cp "$5" "$dir/writer.log"
	{
		echo "kill $2 $3"
		echo "winner $4"
		for node in "${cluster_nodes[@]}"; do
			echo "port $node $(node_port "$node")"
		done
	} >"$dir/meta"
	: >"$dir/events.tsv"
	for node in $(cluster_running_nodes); do
		node_psql "$node" -At -F $'\t' -c "SELECT '$node', extract(epoch FROM event_time), term, node_name,
				kind, regexp_replace(detail, '\s+', ' ', 'g')
			FROM pg_cluster.events WHERE event_time >= to_timestamp($2 - 5) ORDER BY seq" >>"$dir/events.tsv"
	done
}

# one_run SETTING RUN: prints one line, appends a sample line to $samples;
# sets run_redo=1 instead when the first node lost office before the kill.
one_run() {
	local setting=$1 run=$2 old new uri log t_start t_kill node others=()
	local last_before first_after first_port gap elected leader detected t
	local acked lost late attempts fails deadline first_write term old_term

	cluster_heartbeat_interval=${setting%/*}
	cluster_failover_timeout=${setting#*/}
	create_cluster_led_by_first "$run"
	old=${cluster_nodes[0]}
	for node in "${cluster_nodes[@]}"; do
		[ "$node" = "$old" ] || others+=("$node")
	done
	old_term=$(node_value "$old" "SELECT term FROM pg_cluster.status")
	node_psql "$old" -c "CREATE TABLE ledger (id bigint PRIMARY KEY, at timestamptz NOT NULL)"
	uri=$(node_value "$old" "SELECT pg_cluster.connection_uri()")
	# the table on the standbys too, so nothing differs but the crash
	for node in "${others[@]}"; do
		wait_until "the table on $node" node_value "$node" "SELECT 'ledger'::regclass"
	done

	log=$work/writer-$run.log
	t_start=$(now)
	PGUSER=postgres "$work/writer" "$uri" "$((KILL_AFTER + AFTER_KILL))" "$INTERVAL_MS" "$log" &
	writer_pid=$!
	sleep "$(awk -v s="$t_start" -v k="$KILL_AFTER" -v n="$(now)" 'BEGIN { d = s + k - n; printf "%.3f", (d > 0 ? d : 0) }')"
	[ "$(awk '$1 == "ok"' "$log" | wc -l)" -gt 0 ] || die "run $run: the client wrote nothing before the kill (see $log)"
	if [ "$(cluster_leader 2>/dev/null)" != "$old" ]; then
		kill "$writer_pid" 2>/dev/null || true
		wait "$writer_pid" 2>/dev/null || true
		writer_pid=""
		keep_anomaly "$run" "$(cluster_leader 2>/dev/null || echo none)" "before the kill"
		run_redo=1
		return 0
	fi
	node_kill_instance "$old"
	t_kill=$killed_at
	wait "$writer_pid" || die "run $run: the client failed"
	writer_pid=""

	# the survivors agree on a leader (normally long done)
	deadline=$(($(date +%s) + cluster_wait_timeout))
	until new=$(new_leader "$old"); do
		[ "$(date +%s)" -lt "$deadline" ] || {
			cluster_diagnostics >&2
			die "run $run: no new leader $cluster_wait_timeout s after the kill"
		}
		sleep 0.05
	done

	read -r last_before first_after first_port < <(awk -v k="$t_kill" '
		$1 == "ok" && $4 < k { last = $4 }
		$1 == "ok" && $4 > k && first == "" { first = $4; port = $5 }
		END { print last, first, port }' "$log")
	gap=$(diff_ms "$last_before" "$first_after")
	elected=$(diff_ms "$t_kill" "$(first_event_after "$new" "$t_kill" "kind = 'elected'")")
	leader=$(diff_ms "$t_kill" "$(first_event_after "$new" "$t_kill" "kind = 'state_changed' AND detail LIKE '%-> leader%'")")
	detected=""
	for node in "${others[@]}"; do
		t=$(first_event_after "$node" "$t_kill" "kind = 'peer_unreachable' AND node_name = '$old'")
		if [ -n "$t" ] && { [ -z "$detected" ] || awk -v a="$t" -v b="$detected" 'BEGIN { exit !(a < b) }'; }; then
			detected=$t
		fi
	done
	detected=$(diff_ms "$t_kill" "$detected")

	awk '$1 == "ok" { print $2 }' "$log" | sort -n >"$work/acked"
	node_value "$new" "SELECT id FROM ledger ORDER BY id" | sort -n >"$work/table"
	acked=$(wc -l <"$work/acked")
	lost=$(not_in "$work/table" "$work/acked" | wc -l)
	awk '$1 == "fail" && $2 > 0 { print $2 }' "$log" | sort -n >"$work/failed"
	late=$(in_both "$work/table" "$work/failed" | wc -l)
	attempts=$(wc -l <"$log")
	fails=$(awk -v a="${last_before:-0}" -v b="${first_after:-0}" '$1 == "fail" && $3 >= a && $3 <= b' "$log" | wc -l)
	[ "$first_port" = "$(node_port "$new")" ] || [ -z "$first_port" ] ||
		echo "    note: the first write after the kill went to port $first_port, the leader is $new" >&2

	first_write=$(diff_ms "$t_kill" "$first_after")
	term=$(node_value "$new" "SELECT term FROM pg_cluster.status")
	printf '%s %s %s %s %s %s %s %s %s %s %s %s %s %s\n' "$setting" "$run" "$gap" "$detected" "$elected" \
		"$leader" "$lost" "$late" "$acked" "$fails" "$new" "$attempts" "$first_write" "$old_term→$term" >>"$samples"
	printf '    run %d: write gap %s ms; kill -> detected %s ms, elected %s ms, leader %s ms, first write %s ms; winner %s;' \
		"$run" "$gap" "$detected" "$elected" "$leader" "$first_write" "$new (term $old_term→$term)"
	printf ' %s acknowledged, %s lost, %s failed in the gap, %s failed but committed\n' \
		"$acked" "$lost" "$fails" "$late"
	if [ "$term" != $((old_term + 1)) ]; then
		echo "    more than one election (term $old_term -> $term); the survivors' events since the kill:"
		for node in "${others[@]}"; do
			node_psql "$node" -At -F ' ' -c "SELECT '      $node', round((extract(epoch FROM event_time) - $t_kill)::numeric, 3),
					term, node_name, kind, left(regexp_replace(detail, '\s+', ' ', 'g'), 100)
				FROM pg_cluster.events WHERE event_time >= to_timestamp($t_kill) ORDER BY seq"
		done
	fi
	if [ -n "${TIMELINE_DIR:-}" ]; then
		save_timeline "$TIMELINE_DIR/failover-s$setting_index-r$run" "$t_kill" "$old" "$new" "$log"
	fi
	# keep the failures of this run for the report
	awk -v a="${last_before:-0}" -v b="${first_after:-0}" '$1 == "fail" && $3 >= a && $3 <= b {
			$1 = $2 = $3 = $4 = ""; sub(/^ +/, ""); print }' "$log" |
		sed -E 's/"127\.0\.0\.1", //g; s/ Is the server running on that host and accepting TCP\/IP connections\?//g;
			s/(^- | |^)connection to server at port ([0-9]+) failed: /; \2: /g; s/^; //' >>"$work/errors-$setting_index"
	cp "$log" "$work/last-writer.log"
}

# ---------------------------------------------------------------- report

# stats SETTING COLUMN: "median min max" of a column of the samples.
stats() {
	awk -v s="$1" -v c="$2" '$1 == s && $c != "-" { print $c }' "$samples" | sort -g | awk '
		{ v[NR] = $1 }
		END {
			if (NR == 0) { print "- - -"; exit }
			med = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			printf "%g %g %g\n", med, v[1], v[NR]
		}'
}

row() {
	local med min max
	read -r med min max < <(stats "$1" "$3")
	printf '| %s | %s | %s | %s |\n' "$2" "$med" "$min" "$max"
}

sum_col() {
	awk -v s="$1" -v c="$2" '$1 == s { t += $c } END { print t + 0 }' "$samples"
}

setting_report() {
	local setting=$1 index=$2 hb ft
	hb=${setting%/*}
	ft=${setting#*/}
	cat <<EOF
## heartbeat_interval $hb, failover_timeout $ft

| run | write gap, ms | kill → detected, ms | kill → elected, ms | kill → leader, ms | kill → first write, ms | acknowledged | lost | failed but committed | winner (term before→after) |
|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|
$(awk -v s="$setting" '$1 == s { printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s (%s) |\n", $2, $3, $4, $5, $6, $13, $9, $7, $8, $11, $14 }' "$samples")

| metric ($RUNS runs) | median | min | max |
|---|---:|---:|---:|
$(row "$setting" "write gap (client), ms" 3)
$(row "$setting" "kill → failure detected (peer_unreachable), ms" 4)
$(row "$setting" "kill → elected, ms" 5)
$(row "$setting" "kill → leader (promoted, lease held), ms" 6)
$(row "$setting" "kill → first acknowledged write, ms" 13)
$(row "$setting" "acknowledged writes lost" 7)
$(row "$setting" "failed writes that committed anyway" 8)

- runs started again because a standby took over before the kill (an election nobody asked for): $(awk -v s="$setting" '$1 == s' "$work/setup-anomalies" | wc -l)
- winners: $(awk -v s="$setting" '$1 == s { print $11 }' "$samples" | sort | uniq -c | awk '{ printf "%s%s × %s", sep, $2, $1; sep = ", " }')
- acknowledged writes lost in all runs: $(sum_col "$setting" 7) of $(sum_col "$setting" 9)
- client errors between the last write before the kill and the first after, all runs:
$(sort "$work/errors-$index" 2>/dev/null | uniq -c | sort -rn | head -n 6 | awk '{ n = $1; $1 = ""; sub(/^ /, ""); printf "  - %d × `%s`\n", n, substr($0, 1, 160) }')

EOF
}

report() {
	local commit i
	commit=$(git -C "$bench_here" rev-parse --short HEAD 2>/dev/null || echo unknown)
	if [ -n "$(git -C "$bench_here" status --porcelain -- src 2>/dev/null)" ]; then
		commit="$commit (src/ modified)"
	fi
	cat <<EOF
# pg_cluster failover: kill -9 of the primary under a writing client

3-node cluster on loopback (n1 primary, n2 and n3 streaming standbys,
pg_cluster.synchronous_mode = $SYNC_MODE), fresh for every run.  A client (bench/writer.c,
libpq) inserts a row every $INTERVAL_MS ms through the read-write multi-host URI of
pg_cluster.connection_uri() (target_session_attrs=read-write,
connect_timeout=2), reconnecting after every error.  $KILL_AFTER s after it started,
the primary's postmaster and all its children get SIGKILL at once; the client
goes on for $AFTER_KILL s.

- **write gap**: first write acknowledged after the kill minus the last one
  acknowledged before it (client clock): what the application sees.
- **kill → detected / elected / leader**: from the kill to the first
  peer_unreachable event about the dead node on a survivor, to the winner's
  elected event, and to its state_changed "-> leader" event (promotion done
  and a lease acknowledged by a majority: it accepts commits).  Event times
  are the servers' clocks, on the same machine as the kill.
- **kill → first write**: from the kill to the first write acknowledged
  after it (the write gap minus the time from the last write to the kill).
- **lost**: ids the client got acknowledged that the new primary lacks.
- **failed but committed**: ids whose INSERT returned an error (e.g. the
  connection broke) but are in the table.
- **winner (term before→after)**: the new leader, and the term before the
  kill and after it (one more when the first election after the kill won).

- date: $(date -u '+%Y-%m-%d %H:%M UTC'); commit $commit
- PostgreSQL $(node_value "$(cluster_running_nodes | head -n 1)" "SHOW server_version"); kernel $(uname -r); $(nproc) CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
- load average at the start: $load_start; at the end: $(cut -d ' ' -f 1-3 /proc/loadavg)

EOF
	for i in "${!settings[@]}"; do
		setting_report "${settings[$i]}" "$i"
	done
}

# ---------------------------------------------------------------- main

bench_main() {
	local run i retries
	[ -f "$("$PG_CONFIG" --pkglibdir)/pg_cluster.so" ] ||
		die "pg_cluster is not installed; run: bash scripts/demo.sh (or scripts/test.sh)"
	build_writer
	samples=$work/samples
	: >"$samples"
	: >"$work/setup-anomalies"
	load_start=$(cut -d ' ' -f 1-3 /proc/loadavg)
	for i in "${!settings[@]}"; do
		setting_index=$i
		echo "=== heartbeat ${settings[$i]%/*}, failover_timeout ${settings[$i]#*/}: $RUNS runs" \
			"(client every $INTERVAL_MS ms, kill at $KILL_AFTER s, $AFTER_KILL s more)"
		for ((run = 1; run <= RUNS; run++)); do
			# (not "until one_run": set -e must hold inside it)
			retries=0
			while :; do
				run_redo=0
				one_run "${settings[$i]}" "$run"
				[ "$run_redo" = 1 ] || break
				retries=$((retries + 1))
				[ "$retries" -lt 3 ] || die "run $run: a standby took over before the kill 3 times"
			done
		done
	done

	if [ -n "${SAMPLES_OUT:-}" ]; then
		{
			echo "# setting run gap_ms detected_ms elected_ms leader_ms lost failed_committed acked failed_in_gap winner attempts first_write_ms terms"
			cat "$samples"
		} >"$SAMPLES_OUT"
	fi
	mkdir -p "$(dirname "$results_file")"
	report >"$results_file.tmp"
	mv "$results_file.tmp" "$results_file"
	echo
	cat "$results_file"
	echo "(written to ${results_file#"$bench_here"/})"
}

bench_main
