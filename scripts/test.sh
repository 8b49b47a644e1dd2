#!/usr/bin/env bash
# Installs what the tests need, builds and installs pg_cluster, and runs
# every test: pg_regress (one node), the TAP suites (several nodes), the
# protocol model checks and the fault-injection suite (network namespaces;
# root only, skipped otherwise).
#
# Usage: scripts/test.sh [--no-deps] [TAP test files...]
#
# Run as root (CI) or as a user with sudo.  PostgreSQL refuses to run as
# root, so the servers run as the unprivileged user "postgres" on a copy of
# the tree that user owns.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/scripts/common.sh"

install_deps=1
if [ "${1:-}" = "--no-deps" ]; then
	install_deps=0
	shift
fi

if [ $install_deps = 1 ]; then
	pgc_install_packages
fi
pgc_build_and_install

workdir=$(pgc_unprivileged_copy)
# keep the servers' logs of a failed run for a post-mortem
trap 'if [ "${status:-1}" = 0 ]; then rm -rf "$workdir"; else echo "logs kept in $workdir/tmp_check/log"; fi' EXIT

status=1
passed=0
failed=0
record() {
	if [ "$1" = 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
}

echo "=== pg_regress: one-node SQL surface"
rc=0
pgc_as_runner "cd '$workdir' && make installcheck PG_CONFIG=$PG_CONFIG" || rc=$?
if [ $rc != 0 ]; then
	cat "$workdir"/regression.diffs 2>/dev/null || true
fi
record $rc

echo "=== TAP: multi-node behaviour"
tap_tests="$*"
rc=0
pgc_as_runner "cd '$workdir' && make tapcheck PG_CONFIG=$PG_CONFIG ${tap_tests:+PROVE_TESTS='$tap_tests'} ${PROVE_FLAGS:+PROVE_FLAGS='$PROVE_FLAGS'}" || rc=$?
if [ $rc != 0 ]; then
	for log in "$workdir"/tmp_check/log/regress_log_*; do
		[ -f "$log" ] || continue
		echo "----- tail of $log"
		tail -n 60 "$log"
	done
fi
record $rc

if [ -z "$tap_tests" ] && [ -f "$here/model/check.sh" ]; then
	echo "=== Spin: the election, lease and fencing protocol"
	rc=0
	bash "$here/model/check.sh" || rc=$?
	record $rc
fi

if [ -z "$tap_tests" ]; then
	echo "=== Faults: partitions, hangs and crashes in network namespaces (short schedule)"
	rc=0
	perl "$here/test/faults/run.pl" --duration "${FAULTS_DURATION:-120}" ${FAULTS_SEED:+--seed "$FAULTS_SEED"} || rc=$?
	record $rc
fi

status=$failed
if [ $status = 0 ]; then
	echo "All pg_cluster tests passed."
else
	echo "Some pg_cluster tests FAILED."
fi
# last, one line a CI runner can read: the suites above (pg_regress, TAP, model, faults)
echo "suites: $passed passed, $failed failed"
exit $status
