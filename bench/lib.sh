# Helpers of the write-workload benchmarks (sourced by bench/syncrep.sh and
# bench/preload.sh, after scripts/demo.sh): medians of samples, pinning a
# node to a CPU, freezing a cluster.  A samples file has one run per line:
# CLIENTS SIDE ROUND TPS.

# median_of: the median of the numbers on stdin.
median_of() {
	sort -g | awk '
		{ v[NR] = $1 }
		END { printf "%.3f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# median FILE CLIENTS SIDE: the median TPS of SIDE at CLIENTS clients
# (CLIENTS "all": at every client count).
median() {
	awk -v c="$2" -v s="$3" '($1 == c || c == "all") && $2 == s { print $4 }' "$1" | median_of |
		awk '{ printf "%.1f", $1 }'
}

# round_ratios FILE CLIENTS A B: TPS(A) / TPS(B) of every round (the two
# sides of a round ran back to back), one per line; CLIENTS as in median.
round_ratios() {
	awk -v c="$2" -v a="$3" -v b="$4" '
		$1 == c || c == "all" { key = $1 " " $3 }
		($1 == c || c == "all") && $2 == a { x[key] = $4 }
		($1 == c || c == "all") && $2 == b { y[key] = $4 }
		END { for (r in x) if (r in y && y[r] > 0) print x[r] / y[r] }' "$1"
}

# ratio_median FILE CLIENTS A B: the median of the per-round ratios.
ratio_median() {
	round_ratios "$@" | median_of
}

# ratio_median_ci FILE CLIENTS A B: a distribution-free confidence
# interval of that median, at least 95 %: the k-th smallest and the k-th
# largest of the n ratios, k = n/2 - 0.98 sqrt(n) rounded down (normal
# approximation of the binomial), at least 1.
ratio_median_ci() {
	round_ratios "$@" | sort -g | awk '
		{ v[NR] = $1 }
		END {
			k = int(NR / 2 - 0.98 * sqrt(NR)); if (k < 1) k = 1
			if (NR == 0) print "-"; else printf "%.3f–%.3f", v[k], v[NR + 1 - k]
		}'
}

# node_processes NODE: the postmaster of NODE (of the current cluster) and
# its children.
node_processes() {
	local pm
	pm=$(head -n 1 "$(node_data "$1")/postmaster.pid")
	echo "$pm" $(pgrep -P "$pm")
}

# pin_node NODE CPU: every process of NODE, and those it starts later
# (they inherit the postmaster's affinity), on CPU.
pin_node() {
	local pid
	for pid in $(node_processes "$1"); do
		taskset -p -c "$2" "$pid" >/dev/null
	done
}

# signal_cluster SIGNAL: SIGNAL (STOP or CONT) to every process of every
# node of the current cluster.  A stopped cluster costs the one measured
# meanwhile nothing; its clocks go on, so a cluster with pg_cluster must
# have a failover timeout longer than it stays stopped.
signal_cluster() {
	local node
	for node in "${cluster_nodes[@]}"; do
		# a backend may have exited since it was listed
		kill "-$1" $(node_processes "$node") 2>/dev/null || true
	done
}
