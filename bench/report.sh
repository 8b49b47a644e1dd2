#!/usr/bin/env bash
# The benchmark report of pg_cluster: runs the benchmarks of bench/ and
# writes bench/results/REPORT.md with their tables and PNG plots.
#
# Usage: make bench [QUICK=1]        (or: bash bench/report.sh)
#
# The parts, in this order (each a benchmark script of bench/, run with
# its own ports and directory, its cluster removed at its exit):
#
#   failover    bench/failover.sh: kill -9 of the primary under a writing
#               client, heartbeat/failover_timeout 100ms/1s and 50ms/500ms;
#               one run of 100ms/1s (the one with the median write gap)
#               becomes the failover timeline
#   timeouts    bench/failover.sh with 200ms/2s and 200ms/4s: with the two
#               above, the failover time against failover_timeout (not
#               400ms/4s: a heartbeat_interval above 200ms in
#               postgresql.conf stops the server at startup, because
#               failover_timeout's built-in 1s is checked against it
#               before the configured value applies)
#   quorum      bench/failover.sh with synchronous_mode = quorum
#   switchover  bench/switchover.sh: switchovers and rejoins under the
#               client; the switchover with the median window becomes the
#               switchover timeline
#   syncrep     bench/syncrep.sh: pgbench TPS, quorum mode / the same
#               synchronous_standby_names by hand, extension off / not loaded
#   overhead    bench/overhead.sh: idle 3-node cluster, worker CPU, memory,
#               heartbeat traffic
#   scale       bench/overhead.sh with 5 and 7 nodes
#   faults      stability: test/faults/run.pl, the fault-injection suite in
#               network namespaces (root), a seeded random schedule of
#               FAULTS_DURATION seconds (default 3600; QUICK: 300), with
#               the invariant checks; its summary goes into the report
#
# then makes the plots with gnuplot (timeline-failover.png,
# timeline-switchover.png, rto.png, scale.png) and REPORT.md from the data
# the parts left in the data directory (data/: samples, the two timelines'
# client logs and events, what ran when).  Each benchmark also writes its
# own results file as it does when run alone (failover.md, switchover.md,
# ...; new here: failover-timeouts.md, overhead-5nodes.md,
# overhead-7nodes.md).
#
# Environment:
#   QUICK=1      fewer and shorter runs (a few minutes, for development);
#                everything goes to bench/results/quick/ instead, which is
#                not committed, and the report says QUICK
#   PARTS        the parts to run (default: all), e.g. PARTS="failover scale";
#                the report is made from the data of the latest run of each
#                part, and says when each ran
#   REPORT_ONLY=1  run nothing: plots and REPORT.md again from the data
#   PGC_BENCH_PORT first port (default 55401; the parts use 42 ports from
#                there, apart from the other benchmarks' and the tests')
#
# Installs what it needs that is missing (gnuplot-nox, gcc, libpq-dev,
# iproute2) with apt-get as root (through sudo otherwise).  Run as root (the
# servers run as postgres) or as a normal user with sudo; pg_cluster and
# pg_cluster_ctl must be installed (make install, or scripts/test.sh).
# The full run takes about 35 minutes on 2 cores, plus the fault schedule
# (60 minutes by default).

set -euo pipefail
bench_here=$(cd "$(dirname "$0")/.." && pwd)
here=$bench_here
. "$bench_here/scripts/common.sh"

QUICK=${QUICK:-0}
case $QUICK in 1 | yes | true) QUICK=1 ;; *) QUICK=0 ;; esac
all_parts="failover timeouts quorum switchover syncrep overhead scale faults"
PARTS=${PARTS:-$all_parts}
REPORT_ONLY=${REPORT_ONLY:-0}
port_base=${PGC_BENCH_PORT:-55401}

if [ "$QUICK" = 1 ]; then
	out=$bench_here/bench/results/quick
else
	out=$bench_here/bench/results
fi
data=$out/data
raw=$out/raw
work=$(mktemp -d /tmp/pgc-bench-report.XXXXXX)
child=""

say() {
	printf '=== %s %s\n' "$(date +%T)" "$*"
}

die() {
	printf 'report.sh: error: %s\n' "$*" >&2
	exit 1
}

# ---------------------------------------------------------------- cleanup

# Every benchmark removes its cluster at its exit (also on SIGTERM); this
# stops the one running and, as a last resort, removes what is left in our
# directories (servers stopped with -m immediate).
report_cleanup() {
	local status=$? dir pidfile pgdata
	trap - EXIT INT TERM
	set +e
	if [ -n "$child" ] && kill -0 "$child" 2>/dev/null; then
		say "stopping the running benchmark (pid $child)"
		kill -TERM "$child" 2>/dev/null
		wait "$child" 2>/dev/null
	fi
	for dir in /tmp/pg_cluster-report-*; do
		[ -d "$dir" ] || continue
		[ -n "$(find "$dir" -maxdepth 2 -name PG_CLUSTER_BENCH -print -quit 2>/dev/null)" ] || continue
		echo "report.sh: removing what is left in $dir" >&2
		for pidfile in $(find "$dir" -maxdepth 2 -name '*.ctl.pid'); do
			kill -TERM "$(cat "$pidfile")" 2>/dev/null
		done
		sleep 1
		for pgdata in $(find "$dir" -maxdepth 3 -name PG_VERSION -printf '%h\n'); do
			pgc_as_runner "$(printf '%q' "$PG_BINDIR/pg_ctl") -D $(printf '%q' "$pgdata") -m immediate stop" >/dev/null 2>&1
		done
		rm -rf "$dir"
	done
	rm -rf "$work"
	exit $status
}
trap report_cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- setup

# ensure_packages: the Debian packages this needs, installed if missing.
ensure_packages() {
	pgc_apt_install gnuplot-nox gcc libpq-dev iproute2
}

# ---------------------------------------------------------------- parts

# part_record NAME STATUS START SECONDS LOAD: what ran when, kept in
# data/parts (the latest line of a part replaces the earlier one), with
# the installed pg_cluster.so (the start of its sha256).
part_record() {
	touch "$data/parts"
	awk -v n="$1" '$1 != n' "$data/parts" >"$work/parts"
	printf '%s %s %s %s %s %s\n' "$1" "$2" "$3" "$4" "$5" "$(so_sha)" >>"$work/parts"
	cp "$work/parts" "$data/parts"
}

so_sha() {
	sha256sum "$("$PG_CONFIG" --pkglibdir)/pg_cluster.so" 2>/dev/null | cut -c 1-12
}

# run_bench PART LOGNAME ENV... -- SCRIPT: one benchmark script in the
# background (so that a signal to us can stop it and its trap can remove
# its cluster), its output in raw/LOGNAME.log; fails when it fails.
run_bench() {
	local part=$1 name=$2 status=0
	shift 2
	local -a envs=()
	while [ "$1" != -- ]; do
		envs+=("$1")
		shift
	done
	shift
	say "$part: $* ${envs[*]}"
	env "${envs[@]}" bash "$bench_here/bench/$1" >"$raw/$name.log" 2>&1 &
	child=$!
	wait "$child" || status=$?
	child=""
	if [ "$status" != 0 ]; then
		echo "report.sh: bench/$1 failed (exit $status); the end of raw/$name.log:" >&2
		tail -n 25 "$raw/$name.log" >&2
		return 1
	fi
	grep -E '^\| (metric|write|command|old primary|acknowledged|[0-9]+ \| [0-9])' "$raw/$name.log" | head -n 12 | sed 's/^/    /' || true
}

# other_jobs: what else uses the CPUs (model checks, tests), for the record.
other_jobs() {
	local pan tests
	pan=$(pgrep -x pan | wc -l)
	tests=$(pgrep -f 'prove|pg_regress' | wc -l)
	echo "pan:$pan,tests:$tests"
}

# median_run FILE SETTING COLUMN: the run (column 2) of the samples of
# SETTING whose COLUMN is the median (the lower one of an even count).
median_run() {
	awk -v s="$2" -v c="$3" '$1 == s && $c != "-" { print $c, $2 }' "$1" | sort -g |
		awk '{ v[NR] = $2 } END { if (NR) print v[int((NR + 1) / 2)] }'
}

part_failover() {
	local runs=5 run
	[ "$QUICK" = 0 ] || runs=2
	run_bench failover failover RUNS=$runs SETTINGS="100ms/1s 50ms/500ms" \
		PGC_BENCH_PORT=$port_base PGC_BENCH_DIR=/tmp/pg_cluster-report-failover \
		PGC_BENCH_ANOMALIES=$raw/anomalies RESULTS_FILE="$out/failover.md" \
		SAMPLES_OUT="$data/failover.samples" TIMELINE_DIR="$work/timelines" -- failover.sh || return 1
	run=$(median_run "$data/failover.samples" 100ms/1s 3)
	rm -rf "$data/timeline-failover"
	cp -r "$work/timelines/failover-s0-r$run" "$data/timeline-failover"
	echo "run $run" >>"$data/timeline-failover/meta"
}

part_timeouts() {
	local runs=5
	[ "$QUICK" = 0 ] || runs=1
	run_bench timeouts failover-timeouts RUNS=$runs SETTINGS="200ms/2s 200ms/4s" AFTER_KILL=8 \
		PGC_BENCH_PORT=$((port_base + 3)) PGC_BENCH_DIR=/tmp/pg_cluster-report-timeouts \
		PGC_BENCH_ANOMALIES=$raw/anomalies RESULTS_FILE="$out/failover-timeouts.md" \
		SAMPLES_OUT="$data/timeouts.samples" -- failover.sh || return 1
}

part_quorum() {
	local runs=5
	[ "$QUICK" = 0 ] || runs=1
	run_bench quorum failover-quorum RUNS=$runs SETTINGS="100ms/1s" SYNC_MODE=quorum \
		PGC_BENCH_PORT=$((port_base + 6)) PGC_BENCH_DIR=/tmp/pg_cluster-report-quorum \
		PGC_BENCH_ANOMALIES=$raw/anomalies RESULTS_FILE="$out/failover-quorum.md" \
		SAMPLES_OUT="$data/quorum.samples" -- failover.sh || return 1
}

part_switchover() {
	local runs=7 rejoins=3 run
	[ "$QUICK" = 0 ] || { runs=3; rejoins=1; }
	run_bench switchover switchover RUNS=$runs REJOIN_RUNS=$rejoins \
		PGC_BENCH_PORT=$((port_base + 10)) PGC_BENCH_DIR=/tmp/pg_cluster-report-switchover \
		RESULTS_FILE="$out/switchover.md" TIMELINE_DIR="$work/timelines" -- switchover.sh || return 1
	# the run with the median window (column 4 of the per-run table)
	run=$(awk -F ' *\\| *' '/^\| [0-9]+ \| n[0-9] → n[0-9] \|/ { print $4, $2 }' "$out/switchover.md" | sort -g |
		awk '{ v[NR] = $2 } END { if (NR) print v[int((NR + 1) / 2)] }')
	rm -rf "$data/timeline-switchover"
	cp -r "$work/timelines/switchover-r$run" "$data/timeline-switchover"
	echo "run $run" >>"$data/timeline-switchover/meta"
}

part_syncrep() {
	local -a q=()
	[ "$QUICK" = 0 ] || q=(CLIENTS="1 4" ROUNDS=1 RUN_SECONDS=3 SCALE=1)
	run_bench syncrep syncrep "${q[@]}" PIN=1 PGC_BENCH_PORT=$((port_base + 30)) \
		PGC_BENCH_DIR=/tmp/pg_cluster-report-syncrep RESULTS_FILE="$out/syncrep.md" -- syncrep.sh || return 1
}

# overhead_run NODES: bench/overhead.sh on a NODES-node cluster.
overhead_run() {
	local file=overhead.md duration=30 runs=3
	[ "$1" = 3 ] || file=overhead-${1}nodes.md
	[ "$QUICK" = 0 ] || { duration=10; runs=1; }
	run_bench "$([ "$1" = 3 ] && echo overhead || echo scale)" "overhead-$1" NODES="$1" \
		DURATION=$duration RUNS=$runs WARMUP=10 \
		PGC_BENCH_PORT=$((port_base + 20)) PGC_BENCH_DIR=/tmp/pg_cluster-report-overhead \
		RESULTS_FILE="$out/$file" SAMPLES_OUT="$data/overhead-$1.samples" -- overhead.sh || return 1
}

part_overhead() {
	overhead_run 3 || return 1
}

part_scale() {
	overhead_run 5 || return 1
	overhead_run 7
}

# part_faults: the long fault schedule; its log in raw/faults.log, its
# summary (seed, faults by type, convergence times, verdict) in
# data/faults.txt.  FAULTS_SEED replays a schedule.
part_faults() {
	local duration=${FAULTS_DURATION:-3600} status=0
	[ "$QUICK" = 0 ] || duration=${FAULTS_DURATION:-300}
	say "faults: test/faults/run.pl --duration $duration${FAULTS_SEED:+ --seed $FAULTS_SEED}"
	pgc_as_root perl "$bench_here/test/faults/run.pl" --duration "$duration" \
		${FAULTS_SEED:+--seed "$FAULTS_SEED"} --dir /tmp/pg_cluster-report-faults >"$raw/faults.log" 2>&1 &
	child=$!
	wait "$child" || status=$?
	child=""
	grep -E '\] (faults: seed|clients:|outcomes:|faults injected:|converged after [a-z_]+ +n=|checked:|PASS|FAIL)' \
		"$raw/faults.log" | sed 's/^\[ *[0-9.]*\] //' >"$data/faults.txt" || true
	echo "exit $status" >>"$data/faults.txt"
	sed 's/^/    /' "$data/faults.txt"
	return "$status"
}

# ---------------------------------------------------------------- numbers

# mmm: "median min max count" of the numbers on stdin ("- - - 0" if none).
mmm() {
	sort -g | awk '
		{ v[NR] = $1 }
		END {
			if (NR == 0) { print "- - - 0"; exit }
			med = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			print med, v[1], v[NR], NR
		}'
}

# cell FORMAT: "median (min–max)" of the numbers on stdin, formatted.
cell() {
	local med min max n
	read -r med min max n < <(mmm)
	if [ "$n" = 0 ]; then
		echo "–"
	elif [ "$n" = 1 ] || [ "$min" = "$max" ]; then
		printf "$1\n" "$med"
	else
		printf "$1 ($1–$1)\n" "$med" "$min" "$max"
	fi
}

# ms VALUE: a setting like 100ms or 1s in milliseconds.
ms() {
	case $1 in
	*ms) echo "${1%ms}" ;;
	*s) echo $((${1%s} * 1000)) ;;
	*) echo "$1" ;;
	esac
}

# fo SAMPLES SETTING COLUMN: the column of the failover samples of SETTING.
fo() {
	awk -v s="$2" -v c="$3" '!/^#/ && $1 == s && $c != "-" { print $c }' "$1" 2>/dev/null
}

# ov NODES METRIC [NODE]: the samples of an overhead metric.
ov() {
	awk -v m="$2" '$1 == m { print $2 }' "$data/overhead-$1.samples" 2>/dev/null
}

have() {
	[ -s "$data/$1" ]
}

# ---------------------------------------------------------------- timelines

# timeline_data KIND: from data/timeline-KIND (meta, writer.log,
# events.tsv) makes $work/KIND.dat (per 100 ms: acknowledged writes by
# node) and $work/KIND.events ("seconds label" per marked event, from the
# reference time: the kill, or the switchover call), and sets tl_ref,
# tl_xmin, tl_xmax, tl_nodes.
timeline_data() {
	local kind=$1 dir
	dir=$data/timeline-$1
	tl_nodes=$(awk '$1 == "port" { printf "%s%s", sep, $2; sep = " " }' "$dir/meta")
	if [ "$kind" = failover ]; then
		tl_ref=$(awk '$1 == "kill" { print $2 }' "$dir/meta")
	else
		tl_ref=$(awk '$1 == "call" { print $2 }' "$dir/meta")
	fi
	# the marked events: pg_cluster.events by rule, the first of each rule
	# after the reference time (minus 50 ms: a handover begins with the call)
	sort -t $'\t' -k2,2g "$dir/events.tsv" | awk -F '\t' -v ref="$tl_ref" -v kind="$kind" -v metafile="$dir/meta" -v q="'" '
		BEGIN {
			while ((getline line < metafile) > 0) {
				split(line, m, " ")
				if (m[1] == "kill") { old = m[3] }
				if (m[1] == "winner") { new = m[2] }
				if (m[1] == "call") { t1 = m[3]; caller = m[4]; old = m[5]; new = m[6] }
				if (m[1] == "streaming") { tstream = m[2] }
			}
			if (kind == "failover") {
				print 0, "kill -9 of " old " (its postmaster and all children)"
			} else {
				print 0, "pg_cluster.switchover(" q new q ") called on " caller
				printf "%.6f %s\n", t1 - ref, "the call returns"
				printf "%.6f %s\n", tstream - ref, old " streams from " new " again (polled)"
			}
		}
		function mark(rule, label) {
			if (rule in done) return
			done[rule] = 1
			printf "%.6f %s\n", $2 - ref, label
		}
		$2 < ref - 0.05 { next }
		kind == "failover" && $5 == "peer_unreachable" && $4 == old { mark("unreach", old " seen unreachable (by " $1 ")") }
		kind == "failover" && $1 == new && $5 == "election_started" { mark("stand", new " wins the pre-vote, stands for term " $3) }
		$1 == new && $5 == "elected" { mark("elected", new " elected (term " $3 ")") }
		$1 == new && $5 == "promotion" { mark("promotion", new " calls pg_promote()") }
		$1 == new && $5 == "state_changed" && $6 ~ /-> leader/ { mark("leader", new " promoted, leader holding its lease") }
		kind == "failover" && $1 != new && $5 == "follow" { mark("follow", $1 " follows " new) }
		kind == "failover" && $1 != new && $5 == "state_changed" && $6 ~ /-> streaming/ && ("follow" in done) { mark("streams", $1 " streams from " new) }
		kind == "switchover" && $1 == old && $5 == "switchover_started" { mark("sw_start", old " starts the switchover (checkpoint)") }
		kind == "switchover" && $1 == old && $5 == "switchover_handover" { mark("sw_hand", old " holds commits, hands over to " new) }
		kind == "switchover" && $1 == new && $5 == "handover_accepted" { mark("accepted", new " accepts the handover") }
		kind == "switchover" && $1 == old && $5 == "shutdown" { mark("shutdown", old " asks for a fast shutdown") }
		kind == "switchover" && $1 == old && $5 == "rejoined" { mark("rejoined", old " restarted as a standby (pg_cluster_ctl)") }
		kind == "switchover" && $1 == caller && $5 == "follow" { mark("follow", caller " follows " new) }
	' | sort -g >"$work/$kind.events"
	# the client's side: the last write acknowledged before the longest
	# pause from the reference time on (the kill: the one before it) and
	# the first after it, and by whom
	awk -v ref="$tl_ref" -v kind="$kind" -v metafile="$dir/meta" '
		BEGIN { while ((getline line < metafile) > 0) { split(line, m, " "); if (m[1] == "port") node[m[3]] = m[2] } }
		$1 != "ok" { next }
		prev != "" && $4 >= ref && $4 - prev > gap { gap = $4 - prev; a = prev; an = prevnode; b = $4; bn = node[$5] }
		{ prev = $4; prevnode = node[$5] }
		END {
			if (b == "") exit
			what = (kind == "failover") ? "the kill" : "the pause"
			printf "%.6f client: last write acknowledged before %s (by %s)\n", a - ref, what, an
			printf "%.6f client: first write acknowledged after it (by %s), gap %.0f ms\n", b - ref, bn, (b - a) * 1000
		}' "$dir/writer.log" >>"$work/$kind.events"
	sort -g -o "$work/$kind.events" "$work/$kind.events"
	# the window: 1 s before the kill to at least 2.5 s after it; 0.5 s
	# before the call to at least 0.8 s after it
	if [ "$kind" = failover ]; then
		tl_xmin=-1.0
		tl_xmax=$(awk '{ m = $1 } END { x = int((m + 0.8) * 2 + 0.999) / 2; printf "%.1f", (x < 2.5 ? 2.5 : x) }' "$work/$kind.events")
	else
		tl_xmin=-0.5
		tl_xmax=$(awk '{ m = $1 } END { x = int((m + 0.3) * 10 + 0.999) / 10; printf "%.1f", (x < 0.8 ? 0.8 : x) }' "$work/$kind.events")
	fi
	awk -v ref="$tl_ref" -v lo="$tl_xmin" -v hi="$tl_xmax" -v nodes="$tl_nodes" -v metafile="$dir/meta" '
		BEGIN {
			while ((getline line < metafile) > 0) { split(line, m, " "); if (m[1] == "port") node[m[3]] = m[2] }
			n = split(nodes, name, " ")
		}
		$1 == "ok" {
			x = ($4 - ref) / 0.1
			b = int(x); if (b > x) b--
			count[b, node[$5]]++
		}
		END {
			printf "# bucket_start_s"
			for (i = 1; i <= n; i++) printf " %s", name[i]
			printf "\n"
			for (b = int(lo * 10 - 0.5); b < hi * 10; b++) {
				printf "%.1f", b / 10
				for (i = 1; i <= n; i++) printf " %d", count[b, name[i]]
				printf "\n"
			}
		}' "$dir/writer.log" >"$work/$kind.dat"
}

# plot_timeline KIND TITLE XLABEL REFERENCE: the PNG of a timeline.
plot_timeline() {
	local kind=$1 title=$2 xlabel=$3 reference=$4 gp i col sum plots="" colors
	gp=$work/$kind.gp
	local -a nodes
	read -ra nodes <<<"$tl_nodes"
	colors=("#1f77b4" "#ff7f0e" "#2ca02c" "#9467bd" "#8c564b" "#e377c2" "#7f7f7f")
	{
		cat <<EOF
set terminal pngcairo size 1500,620 font "DejaVu Sans,10" noenhanced
set output '$out/timeline-$kind.png'
set title "$title"
set xlabel "$xlabel"
set ylabel "acknowledged writes per 100 ms"
set xrange [$tl_xmin:$tl_xmax]
set yrange [0:8]
set ytics 1
set grid ytics lc rgb "#dddddd"
set lmargin at screen 0.05
set rmargin at screen 0.60
set bmargin at screen 0.11
set tmargin at screen 0.90
set style fill solid 0.85 border lc rgb "#ffffff"
set boxwidth 0.1 absolute
set key at graph 0.02, graph 0.97 left top box opaque
set style textbox opaque noborder
EOF
		# events: a dashed line and a number each; a number goes on the
		# highest row where it is 3 % of the window away from the last one
		awk -v lo="$tl_xmin" -v hi="$tl_xmax" '
			{
				t = $1; label = $0; sub(/^[^ ]+ /, "", label)
				for (level = 0; level < 9; level++)
					if (!(level in last) || t - last[level] >= (hi - lo) * 0.03) break
				last[level] = t; n++
				color = (label ~ /^client:/) ? "#1b7f3b" : (label ~ /^kill|called on|the call returns|polled/) ? "#c00000" : "#555555"
				printf "set arrow %d from %.4f, graph 0 to %.4f, graph 1 nohead lc rgb \"%s\" dt 2 lw 1.2 back\n", n, t, t, color
				printf "set label %d \"%d\" at %.4f, graph %.3f center front boxed font \",9\"\n", n, n, t, 0.95 - 0.055 * level
				gsub(/"/, "\\\"", label)
				printf "set label %d \"%2d  %+6.0f ms  %s\" at screen 0.615, screen %.3f left font \"DejaVu Sans Mono,9\"\n", 100 + n, n, t * 1000, label, 0.86 - 0.045 * (n - 1)
			}' "$work/$kind.events"
		echo "set label 99 \"Events, ms from $reference\" at screen 0.615, screen 0.90 left font \",10\""
		# stacked bars: the total first, then one node less each time
		for ((i = ${#nodes[@]}; i >= 1; i--)); do
			sum=""
			for ((col = 2; col <= i + 1; col++)); do sum="$sum${sum:+ + }\$$col"; done
			plots="$plots${plots:+, }'$work/$kind.dat' using (\$1 + 0.05):($sum) with boxes lc rgb \"${colors[$((i - 1))]}\" notitle"
		done
		for ((i = 1; i <= ${#nodes[@]}; i++)); do
			plots="$plots, keyentry with boxes lc rgb \"${colors[$((i - 1))]}\" title \"${nodes[$((i - 1))]}\""
		done
		echo "plot $plots"
	} >"$gp"
	gnuplot "$gp"
}

# events_table KIND: the marked events as a markdown table.
events_table() {
	echo "| # | ms | event |"
	echo "|---:|---:|---|"
	awk '{ t = $1; sub(/^[^ ]+ /, ""); printf "| %d | %+.0f | %s |\n", NR, t * 1000, $0 }' "$work/$1.events"
}

# ---------------------------------------------------------------- RTO, scale

rto_data() {
	local s hb ft
	: >"$work/rto.dat"
	awk '{ print $1 }' "$work/all.samples" | sort -u >"$work/settings"
	while read -r s; do
		hb=$(ms "${s%/*}")
		ft=$(ms "${s#*/}")
		printf '%s %s %s %s %s %s\n' "$ft" "$hb" \
			"$(fo "$work/all.samples" "$s" 3 | mmm | awk '{ print $1, $2, $3 }')" \
			"$(fo "$work/all.samples" "$s" 6 | mmm | awk '{ print $1 }')" \
			"$(fo "$work/all.samples" "$s" 5 | mmm | awk '{ print $1 }')" \
			"$(fo "$work/all.samples" "$s" 3 | wc -l)"
	done <"$work/settings" | sort -n >"$work/rto.dat"
	sed -i '1i # failover_timeout_ms heartbeat_ms gap_median gap_min gap_max leader_median elected_median runs' "$work/rto.dat"
	cp "$work/rto.dat" "$data/rto.dat"
}

plot_rto() {
	cat >"$work/rto.gp" <<EOF
set terminal pngcairo size 900,560 font "DejaVu Sans,10" noenhanced
set output '$out/rto.png'
set title "Failover time against pg_cluster.failover_timeout (kill -9 of the primary, 3 nodes, heartbeat_interval in brackets)"
set xlabel "pg_cluster.failover_timeout (heartbeat_interval), ms; log scale"
set ylabel "ms"
set logscale x 2
set xrange [350:5600]
set xtics ($(awk '!/^#/ { printf "%s\"%s (%s)\" %s", sep, $1, $2, $1; sep = ", " }' "$work/rto.dat"))
set yrange [0:*]
set grid lc rgb "#dddddd"
set key top left box opaque
plot '$work/rto.dat' using 1:3:4:5 with yerrorlines lw 2 pt 7 lc rgb "#1f77b4" title "write gap seen by the client: median, min-max", \\
	'' using 1:6 with linespoints lw 1.5 pt 5 lc rgb "#2ca02c" title "kill -> new leader holds its lease (median)", \\
	'' using 1:3:(sprintf("%.0f", \$3)) with labels offset 2.5,0.8 notitle, \\
	x with lines dt 2 lc rgb "#888888" title "failover_timeout itself"
EOF
	gnuplot "$work/rto.gp"
}

scale_data() {
	local n
	: >"$work/scale.dat"
	for n in 3 5 7; do
		have "overhead-$n.samples" || continue
		printf '%s %s %s %s %s %s %s\n' "$n" \
			"$(ov "$n" worker_cpu | mmm | awk '{ print $1, $2, $3 }')" \
			"$(ov "$n" node_cpu | mmm | awk '{ print $1, $2, $3 }')" \
			"$(ov "$n" cluster_cpu | mmm | awk '{ print $1, $2, $3 }')" \
			"$(ov "$n" hb_bytes_cluster | mmm | awk '{ print $1 / 1000, $2 / 1000, $3 / 1000 }')" \
			"$(ov "$n" hb_bytes_conn | mmm | awk '{ print $1 }')" \
			"$(ov "$n" hb_segs_cluster | mmm | awk '{ print $1 }')" >>"$work/scale.dat"
	done
	sed -i '1i # nodes worker_cpu(med min max) node_cpu(med min max) cluster_cpu(med min max) cluster_kB_s(med min max) conn_B_s_med cluster_segs_s_med' "$work/scale.dat"
	cp "$work/scale.dat" "$data/scale.dat"
}

plot_scale() {
	cat >"$work/scale.gp" <<EOF
set terminal pngcairo size 1400,480 font "DejaVu Sans,10" noenhanced
set output '$out/scale.png'
set multiplot layout 1,3 title "Idle cluster on loopback, heartbeat 100 ms: cost against the number of nodes (medians, bars: min-max)"
set xrange [2:8]
set xtics (3, 5, 7)
set xlabel "nodes"
set grid lc rgb "#dddddd"
set key top left box opaque
set yrange [0:*]
set title "CPU per node, % of one core"
plot '$work/scale.dat' using 1:2:3:4 with yerrorlines lw 2 pt 7 lc rgb "#1f77b4" title "pg_cluster worker", \\
	'' using 1:5:6:7 with yerrorlines lw 2 pt 5 lc rgb "#ff7f0e" title "worker + backends answering heartbeats"
set title "CPU of the whole cluster, % of one core"
plot '$work/scale.dat' using 1:8:9:10 with yerrorlines lw 2 pt 7 lc rgb "#d62728" title "all workers and heartbeat backends"
set offsets 0, 0, graph 0.12, 0
set title "Heartbeat traffic of the whole cluster, kB/s"
plot '$work/scale.dat' using 1:11:12:13 with yerrorlines lw 2 pt 7 lc rgb "#2ca02c" title "TCP payload, both directions", \\
	'' using 1:11:(sprintf("%.0f", \$11)) with labels offset 0,1.2 notitle
unset multiplot
EOF
	gnuplot "$work/scale.gp"
}

# ---------------------------------------------------------------- report

# section_table FILE START: the markdown table of FILE whose first line
# starts with START.
section_table() {
	awk -v s="$2" 'index($0, s) == 1 { on = 1 } on && !/^\|/ { exit } on { print }' "$1" 2>/dev/null
}

# part_line PART: "date, duration, status" of a part from data/parts.
part_line() {
	awk -v p="$1" '$1 == p {
			cmd = "date -u -d @" $3 " +\"%Y-%m-%d %H:%M UTC\""; cmd | getline d; close(cmd)
			split($5, l, "(")
			sub(/\)$/, "", l[2]); gsub(/:/, " ", l[2]); gsub(/,/, ", ", l[2])
			printf "%s | %d min %02d s | %s | %s | %s | %s", d, $4 / 60, $4 % 60, $2, l[1], l[2], $6
		}' "$data/parts" 2>/dev/null
}

failover_table() {
	local s settings=() header sep row
	while read -r s; do settings+=("$s"); done < <(failover_settings)
	header="| |"
	sep="|---|"
	for s in "${settings[@]}"; do
		header="$header ${s%/*} / ${s#*/} ($(fo "$work/all.samples" "$s" 3 | wc -l) runs) |"
		sep="$sep---:|"
	done
	echo "$header"
	echo "$sep"
	failover_row "write gap seen by the client, ms" 3 "${settings[@]}"
	failover_row "kill → failure detected (first peer_unreachable), ms" 4 "${settings[@]}"
	failover_row "kill → elected, ms" 5 "${settings[@]}"
	failover_row "kill → new leader holds its lease (accepts commits), ms" 6 "${settings[@]}"
	failover_row "kill → first acknowledged write, ms" 13 "${settings[@]}"
	row="| write gap minus failover_timeout, ms |"
	for s in "${settings[@]}"; do
		row="$row $(fo "$work/all.samples" "$s" 3 | awk -v f="$(ms "${s#*/}")" '{ print $1 - f }' | cell %.0f) |"
	done
	echo "$row"
	row="| acknowledged writes lost (all runs) |"
	for s in "${settings[@]}"; do
		row="$row $(awk -v s="$s" '!/^#/ && $1 == s { l += $7; a += $9 } END { print l + 0 " of " a + 0 }' "$work/all.samples") |"
	done
	echo "$row"
	row="| failovers that took more than one election |"
	for s in "${settings[@]}"; do
		row="$row $(awk -v s="$s" '!/^#/ && $1 == s { split($14, t, "→"); if (t[2] - t[1] > 1) m++; n++ } END { print m + 0 " of " n + 0 }' "$work/all.samples") |"
	done
	echo "$row"
}

failover_row() {
	local label=$1 col=$2 s row
	shift 2
	row="| $label |"
	for s in "$@"; do
		row="$row $(fo "$work/all.samples" "$s" "$col" | cell %.0f) |"
	done
	echo "$row"
}

quorum_table() {
	local label col off q r
	echo "| 100 ms / 1 s | off ($(fo "$data/failover.samples" 100ms/1s 3 | wc -l) runs) | quorum ($(fo "$data/quorum.samples" 100ms/1s 3 | wc -l) runs) | quorum / off (medians) |"
	echo "|---|---:|---:|---:|"
	while IFS=: read -r label col; do
		off=$(fo "$data/failover.samples" 100ms/1s "$col" | mmm | awk '{ print $1 }')
		q=$(fo "$data/quorum.samples" 100ms/1s "$col" | mmm | awk '{ print $1 }')
		r=$(awk -v a="$q" -v b="$off" 'BEGIN { if (b + 0 > 0 && a != "-") printf "%.2f", a / b; else print "–" }')
		echo "| $label | $(fo "$data/failover.samples" 100ms/1s "$col" | cell %.0f) | $(fo "$data/quorum.samples" 100ms/1s "$col" | cell %.0f) | $r |"
	done <<'EOF'
write gap seen by the client, ms:3
kill → elected, ms:5
kill → new leader holds its lease, ms:6
kill → first acknowledged write, ms:13
EOF
	echo "| acknowledged writes lost (all runs) | $(awk '!/^#/ && $1 == "100ms/1s" { l += $7; a += $9 } END { print l + 0 " of " a + 0 }' "$data/failover.samples") | $(awk '!/^#/ { l += $7; a += $9 } END { print l + 0 " of " a + 0 }' "$data/quorum.samples") | |"
}

syncrep_table() {
	local file=$out/syncrep.md c rounds
	awk '/^```/ { on = !on; next } on && NF == 4' "$file" >"$work/syncrep.samples"
	echo "| clients | rounds | quorum, TPS | by hand, TPS | **quorum / by hand** (bar ≥ 0.97) | off, TPS | none, TPS | **off / none** (bar ≥ 0.99) |"
	echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
	for c in $(awk '{ print $1 }' "$work/syncrep.samples" | sort -nu); do
		rounds=$(awk -v c="$c" '$1 == c && $2 == "quorum"' "$work/syncrep.samples" | wc -l)
		printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$c" "$rounds" \
			"$(awk -v c="$c" '$1 == c && $2 == "quorum" { print $4 }' "$work/syncrep.samples" | cell %.0f)" \
			"$(awk -v c="$c" '$1 == c && $2 == "byhand" { print $4 }' "$work/syncrep.samples" | cell %.0f)" \
			"$(ratios "$c" quorum byhand | cell %.3f)" \
			"$(awk -v c="$c" '$1 == c && $2 == "off" { print $4 }' "$work/syncrep.samples" | cell %.0f)" \
			"$(awk -v c="$c" '$1 == c && $2 == "none" { print $4 }' "$work/syncrep.samples" | cell %.0f)" \
			"$(ratios "$c" off none | cell %.3f)"
	done
}

# ratios CLIENTS A B: TPS(A) / TPS(B) of every round.
ratios() {
	awk -v c="$1" -v a="$2" -v b="$3" '$1 == c && $2 == a { x[$3] = $4 } $1 == c && $2 == b { y[$3] = $4 }
		END { for (r in x) if (r in y && y[r] > 0) print x[r] / y[r] }' "$work/syncrep.samples"
}

scale_table() {
	local n runs dur
	echo "| nodes | runs | worker CPU per node, % of one core | same, schedstat | worker + heartbeat backends per node, % | same, schedstat | whole cluster, % of one core | heartbeat traffic per connection, bytes/s | whole cluster, kB/s | whole cluster, TCP segments/s | heartbeats/s per peer |"
	echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	for n in 3 5 7; do
		have "overhead-$n.samples" || continue
		runs=$(ov "$n" cluster_cpu | wc -l)
		dur=$(grep -o 'runs of [0-9]* s' "$out/$([ "$n" = 3 ] && echo overhead.md || echo "overhead-${n}nodes.md")" 2>/dev/null | head -n 1 | awk '{ print $3 }')
		printf '| %s | %s × %s s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$n" "$runs" "${dur:-?}" \
			"$(ov "$n" worker_cpu | cell %.2f)" "$(ov "$n" worker_cpu_ns | cell %.2f)" \
			"$(ov "$n" node_cpu | cell %.2f)" "$(ov "$n" node_cpu_ns | cell %.2f)" \
			"$(ov "$n" cluster_cpu | cell %.1f)" "$(ov "$n" hb_bytes_conn | cell %.0f)" \
			"$(ov "$n" hb_bytes_cluster | awk '{ print $1 / 1000 }' | cell %.1f)" \
			"$(ov "$n" hb_segs_cluster | cell %.0f)" "$(ov "$n" hb_per_s | cell %.2f)"
	done
}

stability_table() {
	local n f
	echo "| nodes | idle time | elections started | peers seen unreachable | term changes | worker memory change, first run to last (private, KiB) |"
	echo "|---:|---:|---:|---:|---:|---|"
	for n in 3 5 7; do
		have "overhead-$n.samples" || continue
		f=$out/$([ "$n" = 3 ] && echo overhead.md || echo "overhead-${n}nodes.md")
		printf '| %s | %s s | %s | %s | %s | %s |\n' "$n" \
			"$(grep -o '[0-9]* runs of [0-9]* s' "$f" | head -n 1 | awk '{ print $1 * $4 }')" \
			"$(ov "$n" idle_elections | awk '{ t += $1 } END { print t + 0 }')" \
			"$(ov "$n" idle_unreachable | awk '{ t += $1 } END { print t + 0 }')" \
			"$(ov "$n" idle_term_changes | awk '{ t += $1 } END { print t + 0 }')" \
			"$(sed -n 's/.*first run to the last, KiB: private \([^;]*\);.*/\1/p' "$f" | head -n 1)"
	done
}

machine_lines() {
	local commit so
	commit=$(git -C "$bench_here" rev-parse --short HEAD 2>/dev/null || echo unknown)
	if [ -n "$(git -C "$bench_here" status --porcelain -- src 2>/dev/null)" ]; then
		commit="$commit (src/ had uncommitted changes)"
	fi
	so=$("$PG_CONFIG" --pkglibdir)/pg_cluster.so
	cat <<EOF
- report made: $(date -u '+%Y-%m-%d %H:%M UTC'); repository at commit $commit
- installed pg_cluster.so (now): built $(date -u -r "$so" '+%Y-%m-%d %H:%M UTC'), sha256 $(so_sha)
- machine: $(nproc) CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), $(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM; kernel $(uname -r); $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")
- PostgreSQL: $("$PG_CONFIG" --version)
- gnuplot: $(gnuplot --version 2>/dev/null)
EOF
}

write_report() {
	local mode="" f
	[ "$QUICK" = 0 ] || mode=" — QUICK RUN (fewer, shorter runs: not the reference figures)"
	cat "$data/failover.samples" "$data/timeouts.samples" 2>/dev/null | grep -v '^#' >"$work/all.samples" || true
	{
		cat <<EOF
# pg_cluster benchmark report$mode

Made by \`make bench$([ "$QUICK" = 0 ] || echo " QUICK=1")\` (\`bench/report.sh\`), which runs the benchmark scripts
of \`bench/\`, each on fresh clusters of its own on loopback, and draws the
plots with gnuplot.  Every figure is a median over the runs, with the
minimum and maximum in brackets; the number of runs is in each table.

$(machine_lines)

What ran, and when: the wall time of each part, the machine's load average
(1 min) when it started, the processes of model checks (pan) and tests
(prove, pg_regress) that ran beside it then, and which pg_cluster.so was
installed (start of its sha256) when it ended:

| part | started | wall time | status | load | other jobs | pg_cluster.so |
|---|---|---:|---|---:|---|---|
$(for p in $all_parts; do l=$(part_line "$p"); [ -z "$l" ] || echo "| $p | $l |"; done)
$([ ! -s "$data/wall" ] || awk '{ printf "\nWall time of the last run of the report: %d min %02d s (parts: %s).\n", $1 / 60, $1 % 60, substr($0, index($0, " ") + 1) }' "$data/wall")

EOF
		summary
		if have failover.samples; then
			cat <<EOF
## Failover

\`bench/failover.sh\`: 3 data nodes (n1 primary, n2 and n3 asynchronous
streaming standbys), a fresh cluster for every run; a client
(\`bench/writer.c\`, libpq) inserts a row every 20 ms through the read-write
multi-host URI of \`pg_cluster.connection_uri()\`, reconnecting after every
error; 3 s after it started, the primary's postmaster and all its children
get SIGKILL at once.  Event times are the servers' clocks (same machine);
the write gap is the client's: its last acknowledged write before the kill
to its first after it.  Columns: \`heartbeat_interval\` / \`failover_timeout\`.

$(failover_table)

Full tables, every run: [failover.md](failover.md)$(have timeouts.samples && echo ", [failover-timeouts.md](failover-timeouts.md)").

EOF
		fi
		if [ -d "$data/timeline-failover" ]; then
			cat <<EOF
### Timeline of one failover

![timeline of a failover](timeline-failover.png)

Run $(awk '$1 == "run" { print $2 }' "$data/timeline-failover/meta") of the 100 ms / 1 s runs above (the one with the median write gap).
Bars: the client's acknowledged writes per 100 ms, by the node that
acknowledged them (the server port the client was connected to); lines:
the kill (from the script) and events from \`pg_cluster.events\` of the
surviving nodes (\`event_time\`), ms from the kill:

$(events_table failover)

EOF
		fi
		if have rto.dat; then
			cat <<EOF
### Failover time against \`failover_timeout\`

![failover time against failover_timeout](rto.png)

| failover_timeout, ms | heartbeat_interval, ms | runs | write gap, ms | kill → elected, ms | kill → leader holds its lease, ms | gap − failover_timeout, ms |
|---:|---:|---:|---:|---:|---:|---:|
$(for s in $(failover_settings); do
	printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$(ms "${s#*/}")" "$(ms "${s%/*}")" "$(fo "$work/all.samples" "$s" 3 | wc -l)" \
		"$(fo "$work/all.samples" "$s" 3 | cell %.0f)" "$(fo "$work/all.samples" "$s" 5 | cell %.0f)" \
		"$(fo "$work/all.samples" "$s" 6 | cell %.0f)" \
		"$(fo "$work/all.samples" "$s" 3 | awk -v f="$(ms "${s#*/}")" '{ print $1 - f }' | cell %.0f)"
done)

The gap is the timeout plus a nearly constant remainder: the pre-vote
and vote round, the promotion (pg_promote, end of recovery) and the new
leader's first lease, then the client's next reconnection (it tries every
20 ms).  The heartbeat interval is a tenth of the timeout up to 2 s and
200 ms at 4 s: the check hooks require at least five heartbeats per
timeout, and a \`heartbeat_interval\` above 200 ms in postgresql.conf stops
the server at startup (\`failover_timeout\`'s built-in 1 s is checked
against it before the configured value applies).

EOF
		fi
		if [ -f "$out/switchover.md" ]; then
			cat <<EOF
## Switchover

\`bench/switchover.sh\`: 3 nodes, every server run by \`pg_cluster_ctl\`;
switchovers back and forth between n1 and n2, each called on n3, with the
same client writing every 20 ms; then failovers (kill -9), each followed by
the old primary's restart under \`pg_cluster_ctl\` (pg_rewind included).

$(section_table "$out/switchover.md" "| metric (")

$(awk 'index($0, "| metric (") == 1 { n++ } n == 2 && on == 0 && index($0, "| metric (") == 1 { on = 1 } on && !/^\|/ { exit } on { print }' "$out/switchover.md")

$(grep -E '^- (acknowledged writes lost in all runs|pg_rewind runs in all runs)' "$out/switchover.md")

Full tables: [switchover.md](switchover.md).

EOF
		fi
		if [ -d "$data/timeline-switchover" ]; then
			cat <<EOF
### Timeline of one switchover

![timeline of a switchover](timeline-switchover.png)

Run $(awk '$1 == "run" { print $2 }' "$data/timeline-switchover/meta") of the switchovers above (the one with the median window).  Bars: acknowledged
writes per 100 ms by node; lines: the call and its return (from the
script) and events from \`pg_cluster.events\` (the old primary's from before
its restart from its server log, where every event is logged too), ms from
the call:

$(events_table switchover)

EOF
		fi
		if have quorum.samples || [ -f "$out/syncrep.md" ]; then
			echo "## Synchronous mode"
			echo
		fi
		if have quorum.samples; then
			cat <<EOF
Failover in \`synchronous_mode = quorum\` (\`bench/failover.sh\` with
\`SYNC_MODE=quorum\`, same client and kill) against the asynchronous runs
above (\`off\`), defaults (100 ms / 1 s):

$(quorum_table)

Full table: [failover-quorum.md](failover-quorum.md).

EOF
		fi
		if [ -f "$out/syncrep.md" ]; then
			cat <<EOF
Cost on a write workload (\`PIN=1 bench/syncrep.sh\`): pgbench simple-update
on four 3-node clusters, the two sides of each comparison run back to back
(alternating which first), the three other clusters stopped (SIGSTOP) during
a run, every primary and pgbench on CPU 0, the standbys on CPU 1 (as if each
primary had a machine of its own); the ratios are per round (median, min–max
over the rounds), so that a drift of the machine hits both sides alike.
**quorum**: pg_cluster in quorum mode (it sets \`synchronous_standby_names =
'ANY 1 ("n2", "n3")'\`); **by hand**: no pg_cluster, the same names set by
hand; **off**: pg_cluster loaded, asynchronous; **none**: no pg_cluster.
$(sed -n 's/.*pgbench simple-update (`-N`), scale \([0-9]*\), \([0-9]*\) s per run.*/Scale \1, \2 s per run./p' "$out/syncrep.md")

$(syncrep_table)

Full table and every run: [syncrep.md](syncrep.md).

EOF
		fi
		if have overhead-3.samples; then
			cat <<EOF
## Overhead (idle 3-node cluster)

\`bench/overhead.sh\`: worker CPU from \`/proc/PID/stat\` (utime + stime; also
schedstat), PSS against an idle backend's, heartbeat rate and traffic, over
idle intervals after the cluster settled.

$(section_table "$out/overhead.md" "| metric |")

$(grep -E '^- (worker CPU|worker PSS beyond)' "$out/overhead.md")

Full table: [overhead.md](overhead.md).

EOF
		fi
		if have scale.dat && [ "$(grep -vc '^#' "$data/scale.dat")" -gt 1 ]; then
			cat <<EOF
## Scale: 3, 5 and 7 nodes

\`bench/overhead.sh\` with \`NODES\` = 3, 5, 7: all data nodes (n1 primary, the
others streaming standbys) on this machine's loopback, heartbeat 100 ms,
idle intervals after 10 s of settling.  CPU: utime + stime of the
pg_cluster worker and of the backends that answer the peers' heartbeats
(one per peer and node: "pg_cluster heartbeat from ..." in
pg_stat_activity), in % of one core, from utime + stime of
\`/proc/PID/stat\` (10 ms ticks) and, finer, from \`/proc/PID/schedstat\`
(nanoseconds on a CPU).  Traffic: TCP payload of the workers'
connections to their peers, both directions, from the kernel's counters of
each socket (\`ss -ti\` bytes_sent + bytes_received, at both ends of each
interval); a node has one connection to each peer, so the cluster has
N × (N − 1), and each carries 10 heartbeats a second.

![scale](scale.png)

$(scale_table)

Per node, the cost grows with the number of peers (one heartbeat
connection and one answering backend per peer); for the whole cluster it
grows with N × (N − 1).  Full tables: [overhead.md](overhead.md),
$(ls "$out"/overhead-*nodes.md 2>/dev/null | xargs -n 1 basename 2>/dev/null | awk '{ printf "%s[%s](%s)", sep, $1, $1; sep = ", " }').

EOF
		fi
		if have overhead-3.samples; then
			cat <<EOF
## Stability

There is no long-running (soak) benchmark in \`bench/\` yet.  What these
runs show: idle clusters stay calm (no election, no peer seen unreachable,
no term change during the idle intervals of the overhead and scale parts),
worker memory does not grow from one interval to the next, and the
failover runs count elections nobody asked for (a standby taking over
while the cluster was built or before the kill) and failovers that needed
more than one election.

$(stability_table)

| failover benchmark | heartbeat / failover_timeout | runs | runs started again: a standby took over before the kill | failovers that needed more than one election |
|---|---|---:|---:|---:|
$(for f in failover.md failover-timeouts.md failover-quorum.md; do
	[ -f "$out/$f" ] || continue
	samples=$data/$(case $f in failover.md) echo failover ;; failover-timeouts.md) echo timeouts ;; *) echo quorum ;; esac).samples
	awk -v f="$f" -v samples="$samples" '
		/^## heartbeat_interval/ { split($0, w, /[ ,]+/); s = w[3] "/" w[5] }
		/^- runs started again because a standby took over/ {
			n = 0; m = 0
			while ((getline line < samples) > 0) {
				split(line, c, " ")
				if (c[1] != s) continue
				n++; split(c[14], t, "→"); if (t[2] - t[1] > 1) m++
			}
			close(samples)
			printf "| [%s](%s) | %s | %d | %s | %d |\n", f, f, s, n, $NF, m
		}' "$out/$f"
done)

EOF
		fi
		if have faults.txt; then
			faults_section
		fi
		cat <<EOF
## How to reproduce

\`\`\`
make install          # pg_cluster and pg_cluster_ctl (or: bash scripts/test.sh)
make bench            # all parts, about 35 minutes on 2 cores: this report
make bench QUICK=1    # fewer, shorter runs, into bench/results/quick/ (a few minutes)
PARTS="failover scale" make bench    # some parts again; the report keeps the others
REPORT_ONLY=1 make bench             # the plots and this file again from bench/results/data/
\`\`\`

Run as root (the servers run as the user postgres) or as a user with sudo;
gnuplot-nox, gcc and libpq-dev are installed if missing.  The clusters use
ports $port_base–$((port_base + 41)) and directories /tmp/pg_cluster-report-*, and are
removed at the end, also when a run fails or is interrupted.  Each script
also runs alone (\`bash bench/failover.sh\` etc., see its header for its
options).  The raw material of the plots is in [data/](data/): samples of
every run, and the client log and events of the two timelines.  A
benchmark shares the 2 cores with whatever else runs: the load averages
above tell how quiet the machine was.
EOF
	} >"$out/REPORT.md.tmp"
	mv "$out/REPORT.md.tmp" "$out/REPORT.md"
}

# faults_section: the stability part, from data/faults.txt.
faults_section() {
	local f=$data/faults.txt
	cat <<EOF
## Stability: the fault-injection suite

\`test/faults/run.pl\` (see the README, "Fault suite"): five servers under
\`pg_cluster_ctl\` (data nodes n1–n3, witnesses w1, w2) and two clients,
each in its own network namespace, \`synchronous_mode = quorum\`, default
timings (heartbeat 100 ms, failover_timeout 1 s); each client writes a
unique id every 20 ms.  Every fault type once, then random faults until
the duration is over; after each heal the cluster must converge (I5), a
fault that touched no leader must leave it in place (I4), and at the end
the clients' logs are checked for I1 and I2.

- $(sed -n 's/^faults: //p' "$f" | head -n 1)
- $(grep -E '^(PASS|FAIL)' "$f" | head -n 1)
- $(grep '^clients:' "$f" | head -n 1)
- $(grep '^outcomes:' "$f" | head -n 1)
- $(grep '^checked:' "$f" | head -n 1)
- $(grep '^faults injected:' "$f" | head -n 1)

| fault type | injected | converged after the heal, median | max |
|---|---:|---:|---:|
$(awk '/^converged after [a-z_]+ +n=/ { n = $4; sub(/^n=/, "", n); med = $6; mx = $9; sub(/,$/, "", med)
	printf "| %s | %s | %s s | %s s |\n", $3, n, med, mx }' "$f")

Raw log of the run: \`raw/faults.log\` (not committed; the server, client
and harness logs of a failing run stay in /tmp/pg_cluster-report-faults).

EOF
}

# failover_settings: the settings of the failover samples, by timeout.
failover_settings() {
	local s
	awk '{ print $1 }' "$work/all.samples" | sort -u | while read -r s; do
		echo "$(ms "${s#*/}") $s"
	done | sort -n | awk '{ print $2 }'
}

# summary: the main figures, at the top of the report.
summary() {
	local s c n
	echo "## Main figures"
	echo
	echo "| | median (min–max) | runs |"
	echo "|---|---:|---:|"
	for s in $(failover_settings); do
		echo "| failover (kill -9 of the primary), heartbeat ${s%/*} / failover_timeout ${s#*/}$([ "$s" != 100ms/1s ] || echo " (defaults)"): write gap, ms; acknowledged writes lost | $(fo "$work/all.samples" "$s" 3 | cell %.0f); $(awk -v s="$s" '$1 == s { l += $7; a += $9 } END { print l + 0 " of " a + 0 }' "$work/all.samples") | $(fo "$work/all.samples" "$s" 3 | wc -l) |"
	done
	if have quorum.samples; then
		echo "| failover in quorum mode: write gap, ms; acknowledged writes lost | $(fo "$data/quorum.samples" 100ms/1s 3 | cell %.0f); $(awk '!/^#/ { l += $7; a += $9 } END { print l + 0 " of " a + 0 }' "$data/quorum.samples") lost | $(fo "$data/quorum.samples" 100ms/1s 3 | wc -l) |"
	fi
	if [ -f "$out/switchover.md" ]; then
		awk -F ' *\\| *' '/^\| write-unavailability window/ { printf "| switchover: write-unavailability window, ms | %s (%s–%s) |", $3, $4, $5 }
			/^\| metric \(/ && !n++ { split($2, r, /[( ]/); runs = r[3] } END { print " " runs " |" }' "$out/switchover.md"
	fi
	if [ -f "$out/syncrep.md" ]; then
		awk '/^```/ { on = !on; next } on && NF == 4' "$out/syncrep.md" >"$work/syncrep.samples"
		for c in $(awk '{ print $1 }' "$work/syncrep.samples" | sort -nu); do
			echo "| pgbench, $c client(s): TPS quorum / same names by hand; off / not loaded | $(ratios "$c" quorum byhand | cell %.3f); $(ratios "$c" off none | cell %.3f) | $(ratios "$c" quorum byhand | wc -l) |"
		done
	fi
	if have overhead-3.samples; then
		echo "| idle 3 nodes: worker CPU, % of one core | $(ov 3 worker_cpu | cell %.2f) | $(ov 3 worker_cpu | wc -l) |"
	fi
	for n in 3 5 7; do
		have "overhead-$n.samples" || continue
		echo "| idle $n nodes: CPU per node (worker + heartbeat backends), %; heartbeat traffic of the cluster, kB/s | $(ov "$n" node_cpu | cell %.2f); $(ov "$n" hb_bytes_cluster | awk '{ print $1 / 1000 }' | cell %.1f) | $(ov "$n" cluster_cpu | wc -l) |"
	done
	echo
}

# ---------------------------------------------------------------- main

report_main() {
	local p t0 t_start status=0 failed=""
	mkdir -p "$data" "$raw"
	ensure_packages
	if [ "$REPORT_ONLY" != 1 ]; then
		[ -f "$("$PG_CONFIG" --pkglibdir)/pg_cluster.so" ] && [ -x "$PG_BINDIR/pg_cluster_ctl" ] ||
			die "pg_cluster is not installed; run: make install (or bash scripts/test.sh)"
		say "benchmark report$([ "$QUICK" = 0 ] || echo " (QUICK)"): parts $PARTS; results in ${out#"$bench_here"/}"
		t_start=$(date +%s)
		for p in $PARTS; do
			case " $all_parts " in *" $p "*) ;; *) die "unknown part $p (parts: $all_parts)" ;; esac
		done
		for p in $all_parts; do
			case " $PARTS " in *" $p "*) ;; *) continue ;; esac
			t0=$(date +%s)
			local load
			load="$(cut -d ' ' -f 1 /proc/loadavg)($(other_jobs))"
			if "part_$p"; then
				part_record "$p" ok "$t0" $(($(date +%s) - t0)) "$load"
			else
				part_record "$p" FAILED "$t0" $(($(date +%s) - t0)) "$load"
				failed="$failed $p"
			fi
		done
		total_seconds=$(($(date +%s) - t_start))
		echo "$total_seconds $PARTS" >"$data/wall"
	fi
	say "plots and report"
	if [ -d "$data/timeline-failover" ]; then
		timeline_data failover
		plot_timeline failover "One failover: kill -9 of the primary, 3 nodes, heartbeat 100 ms, failover_timeout 1 s; a client writes every 20 ms" \
			"seconds from the kill" "the kill"
	fi
	if [ -d "$data/timeline-switchover" ]; then
		timeline_data switchover
		plot_timeline switchover "One switchover: pg_cluster.switchover() under a client writing every 20 ms, 3 nodes under pg_cluster_ctl" \
			"seconds from the call" "the call"
	fi
	if have failover.samples; then
		cat "$data/failover.samples" "$data/timeouts.samples" 2>/dev/null | grep -v '^#' >"$work/all.samples" || true
		rto_data
		plot_rto
	fi
	if have overhead-3.samples || have overhead-5.samples; then
		scale_data
		[ "$(grep -vc '^#' "$data/scale.dat")" -lt 2 ] || plot_scale
	fi
	write_report
	say "written: ${out#"$bench_here"/}/REPORT.md and $(cd "$out" && ls ./*.png 2>/dev/null | xargs -n 1 basename | paste -sd ' ')"
	if [ -n "${total_seconds:-}" ]; then
		say "wall time: $((total_seconds / 60)) min $((total_seconds % 60)) s"
	fi
	[ -z "$failed" ] || die "parts that failed:$failed (their logs are in ${raw#"$bench_here"/})"
}

report_main
