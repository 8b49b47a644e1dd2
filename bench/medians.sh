# Medians of benchmark samples (sourced by bench/syncrep.sh and
# bench/preload.sh).  A samples file has one run per line:
# CLIENTS SIDE ROUND TPS.

# median_of: the median of the numbers on stdin.
median_of() {
	sort -g | awk '
		{ v[NR] = $1 }
		END { printf "%.3f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# median FILE CLIENTS SIDE: the median TPS of SIDE at CLIENTS clients.
median() {
	awk -v c="$2" -v s="$3" '$1 == c && $2 == s { print $4 }' "$1" | median_of |
		awk '{ printf "%.1f", $1 }'
}

# ratio_median FILE CLIENTS A B: the median over rounds of TPS(A) / TPS(B)
# (the two sides of a round ran back to back).
ratio_median() {
	awk -v c="$2" -v a="$3" -v b="$4" '$1 == c && $2 == a { x[$3] = $4 } $1 == c && $2 == b { y[$3] = $4 }
		END { for (r in x) if (r in y && y[r] > 0) print x[r] / y[r] }' "$1" | median_of
}
