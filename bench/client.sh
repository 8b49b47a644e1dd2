# Shared by the benchmarks that run bench/writer.c against a cluster made
# with the helpers of scripts/demo.sh (sourced, not run).  The sourcing
# script sets $work (a scratch directory) before it sources this file.

writer_pid=""

# bench_cleanup: the EXIT trap: stops the client, removes the cluster and
# the scratch directory, keeps the exit status.
bench_cleanup() {
	local status=$?
	trap - EXIT INT TERM
	set +e
	if [ -n "$writer_pid" ]; then
		kill "$writer_pid" 2>/dev/null
		wait "$writer_pid" 2>/dev/null
	fi
	if cluster_exists; then
		echo "=== removing the benchmark cluster in $cluster_dir"
		cluster_remove
	fi
	rm -rf "$work"
	exit $status
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

# build_writer: builds the client into $work/writer.
build_writer() {
	gcc -O2 -Wall -Wextra -Werror -o "$work/writer" "$bench_here/bench/writer.c" \
		-I"$("$PG_CONFIG" --includedir)" -L"$("$PG_CONFIG" --libdir)" -lpq ||
		die "could not build bench/writer.c (needs gcc and libpq-dev)"
}
