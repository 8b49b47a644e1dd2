#!/usr/bin/env bash
# model/check.sh -- model-check model/election.pml with spin.
#
# Usage: model/check.sh [-v]
#   -v  also print the replayed counterexample of every expected violation
#
# Every check builds pan in a private temporary directory (nothing is
# written to the repository) and its result must be the expected one:
#   pass       exhaustive search (-DCOLLAPSE, lossless) finished: errors 0,
#              no depth truncation, no memory bound reached
#   violation  the search finds the named assertion (breadth-first, so the
#              counterexample is a shortest one)
# The checks run in two lanes in parallel (2 cores).  Exit status 0 iff
# every check gave its expected result.
#
# The model's default is docs/protocol.md as it stands.  Some checks must
# find violations that document protocol issues (README.md):
#   no-selfvote-recheck-*  the protocol without the rule "the candidate's
#                          own vote obeys V3" (§4, added after this model
#                          found the flaw): two leaders hold leases at once
#   fixed-*                the behaviour before a fix the C code now has
#                          (commit 689744d), kept to show that the pass
#                          check of the fix is not vacuous:
#     fixed-witness-restart       the witness forgot the leader LSN it heard
#                          when it restarted: V5 bypassed.  src/ keeps it on
#                          disk (-DWITNESS_LSN_DURABLE), checked by witness-lsn
#     fixed-handover-restart      a leader that restarted while it handed
#                          over resumed the term it gave away: two writers.
#                          src/ records handed_over_term (-DHANDOVER_DURABLE),
#                          checked by the switchover-* checks
#     fixed-handover-lsn   the target, elected on a handover and not
#                          promoted, overwrote the witness's V5 memory with
#                          its lower LSN.  src/ only raises the heard
#                          position and keeps it on the witness's disk
#                          (-DWITNESS_LSN_DURABLE), checked by switchover-lsn
#                          and switchover-lsn-crash
#     fixed-handover-error-answer an error answer of a target that recorded
#                          the handover was taken for a refusal (P4).  src/
#                          takes it for an unclear outcome and steps down
#                          (-DERROR_UNCLEAR), checked by switchover-error-answer
#     fixed-sync-own-vote  the candidate's own vote ignored V9 (a primary
#                          stood whatever its record said); src/ checks its
#                          own record before standing and again with V3
#                          before raising the term (-DSELF_V9), as the
#                          sync-* pass checks do.  Compiled without
#                          -DBOOT_RECORD too: a vote request carrying the
#                          candidate's record, adopted by the voter, alone
#                          stops this trail
#     fixed-sync-version-collision  two leaders created the same
#                          sync_version with different contents, and a peer
#                          holding the other one counted as storing the
#                          leader's record.  src/ orders records by
#                          (creator's term, version) (-DSYNC_TERM_ORDER)
#     fixed-sync-bootstrap-acks  commits the bootstrap primary acknowledged
#                          in term 0 were lost by a failover before the first
#                          leader was ready.  src/ publishes "only the
#                          bootstrap primary" before it acknowledges, and
#                          voters adopt the record a vote request carries
#                          (-DBOOT_RECORD)
#   The sync-* checks include commits of the bootstrap, acknowledged for P5
#   (-DBOOT_COMMITS -DBOOT_ACKS).
# The other mutant-* checks take one rule out and must fail.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
model=$here/election.pml
verbose=0
[ "${1:-}" = "-v" ] && verbose=1

for tool in spin gcc; do
	command -v "$tool" >/dev/null || { echo "check.sh: $tool not found (apt-get install spin gcc)" >&2; exit 2; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# pass checks search millions of states: -O2; violation checks stop after
# fewer (mostly < 1 M): -O0, which compiles ~6 times faster, or -O1 where
# the check says so
PAN_CFLAGS="-w -DSAFETY -DMEMLIM=4000"

# check NAME EXPECT PATTERN SPINFLAGS [OPT]
#   EXPECT: pass | violation;  PATTERN: text of the violated assertion
#   (grep -F) for "violation";  OPT: gcc optimisation of a violation check
check() {
	local name=$1 expect=$2 pattern=$3 flags=$4 opt=${5:--O0}
	local dir=$work/$name
	mkdir -p "$dir"
	cp "$model" "$dir/election.pml"
	(
		cd "$dir"
		local start end verdict
		start=$(date +%s)
		if ! spin -a $flags election.pml > spin.log 2>&1; then
			echo "FAIL $name: spin -a failed: $(tail -3 spin.log)" > result
			exit 0
		fi
		if [ "$expect" = pass ]; then
			gcc -O2 $PAN_CFLAGS -DCOLLAPSE -o pan pan.c 2> gcc.log
			./pan -m300000 -w26 > pan.log 2>&1 || true
		else
			gcc $opt $PAN_CFLAGS -DBFS -o pan pan.c 2> gcc.log
			./pan > pan.log 2>&1 || true
		fi
		end=$(date +%s)
		local errors states
		errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' pan.log | tail -1)
		states=$(sed -n 's/^ *\([0-9.e+]*\) states, stored.*/\1/p' pan.log | tail -1)
		local info="states=${states:-?} time=$((end - start))s"
		if [ "$expect" = pass ]; then
			if [ "${errors:-x}" != 0 ]; then
				verdict="FAIL $name: expected no error, got errors=${errors:-?}: $(grep -m1 'assertion violated' pan.log || true)"
				spin -t $flags election.pml > trace.txt 2>&1 || true
			elif grep -q -e 'max search depth too small' -e 'Search not completed' -e 'reached -DMEMLIM' pan.log; then
				verdict="FAIL $name: search incomplete (depth or memory bound)"
			else
				verdict="ok   $name: no violation, exhaustive; $info"
			fi
		else
			if [ "${errors:-0}" -ge 1 ] && grep 'assertion violated' pan.log | grep -qF -- "$pattern"; then
				local depth
				depth=$(sed -n 's/.*assertion violated.*(at depth \([0-9]*\)).*/\1/p' pan.log | head -1)
				verdict="ok   $name: violation found as expected (trace of $depth steps); $info"
				spin -t $flags election.pml 2>&1 |
					grep -E '(-- tick --|<-|->|stands|ELECTED|COMMITS|VIOLATED|lost:|CRASHES|restarts|catches up|rejoins|assertion|SWITCHOVER|PROMOTES|SHUTS DOWN|steps down|gives|ACKNOWLEDGES|sync manager|in force|bootstraps)' |
					sed 's/^ *//' > trace.txt || true
			else
				verdict="FAIL $name: expected violation of '$pattern', got errors=${errors:-?} $(grep -m1 'assertion violated' pan.log || true)"
			fi
		fi
		echo "$verdict" > result
	)
}

# The switchover checks run with the fix of fixed-handover-restart and with
# a primary that does not lead allowed to stand, as src/ does.
SW_FIXES="-DHANDOVER_DURABLE -DPRIMARY_STANDS"
# Synchronous mode (quorum): the fixes of fixed-sync-own-vote,
# fixed-sync-version-collision and fixed-sync-bootstrap-acks (src/), the
# bootstrap commits (acknowledged, counted for P5), and the bounds (one
# message in flight; three terms with a witness, two with three data nodes)
SYNC_FIXES="-DSELF_V9 -DSYNC_TERM_ORDER -DBOOT_RECORD"
SYNC_BOOT="-DBOOT_COMMITS -DBOOT_ACKS"
SYNC_W="-DSYNC -DMAXSWITCH=0 -DWITNESS_LSN_DURABLE -DF=2 -DLEASE=1 -DDRIFT=1 -DMAXLSN=1 -DMAXTERM=3 -DMAXMSG=1"
SYNC_D="-DSYNC -DMAXSWITCH=0 -DTHREE_DATA -DF=2 -DLEASE=1 -DDRIFT=1 -DMAXLSN=1 -DMAXTERM=2 -DMAXMSG=1 -DMAXCRASH=0"

# name | expect | pattern | spin flags [| gcc -O for a violation check]
# lane A
CHECKS_A=(
	"threedata-safety|pass||-DMAXSWITCH=0 -DTHREE_DATA -DF=4 -DLEASE=3 -DDRIFT=1 -DMAXLSN=0 -DMAXTERM=3 -DMAXCRASH=1 -DMAXMSG=2"
	"threedata-switchover-safety|pass||$SW_FIXES -DTHREE_DATA -DF=2 -DLEASE=1 -DDRIFT=1 -DMAXLSN=0 -DMAXTERM=2 -DMAXCRASH=1 -DMAXMSG=2"
	"switchover-lsn|pass||$SW_FIXES -DWITNESS_LSN_DURABLE -DHEARD_LAST -DSTAND_LAG_RULE -DF=2 -DLEASE=1 -DDRIFT=1 -DMAXLSN=1 -DMAXTERM=3 -DMAXCRASH=0 -DMAXMSG=2"
	"reach-elected|violation|(1==1)|-DMAXSWITCH=0 -DREACH=1"
	"reach-failover-commit|violation|(2==2)|-DMAXSWITCH=0 -DREACH=2"
	"reach-switchover|violation|(3==3)|-DREACH=3"
	"mutant-lease5-failover5-drift1|violation|assertion violated 0|-DMAXSWITCH=0 -DF=5 -DLEASE=5 -DDRIFT=1 -DMAXLSN=0|-O1"
	"no-selfvote-recheck-witness|violation|assertion violated 0|-DMAXSWITCH=0 -DNO_SELFVOTE_RECHECK -DMAXLSN=0 -DMAXCRASH=0"
	"no-selfvote-recheck-threedata|violation|assertion violated 0|-DMAXSWITCH=0 -DNO_SELFVOTE_RECHECK -DTHREE_DATA -DMAXLSN=0 -DMAXCRASH=0"
	"fixed-witness-restart|violation|w_seen|-DMAXSWITCH=0 -DSTAND_LAG_RULE -DF=3 -DLEASE=2 -DMAXLSN=1"
	"fixed-handover-restart|violation|assertion violated 0|-DF=3 -DLEASE=2 -DDRIFT=1 -DMAXLSN=0 -DMAXTERM=2 -DMAXCRASH=1"
	"fixed-handover-lsn|violation|w_seen|-DHANDOVER_DURABLE -DHEARD_LAST -DSTAND_LAG_RULE -DF=2 -DLEASE=1 -DDRIFT=1 -DMAXLSN=1 -DMAXTERM=3 -DMAXCRASH=0|-O1"
	"fixed-handover-error-answer|violation|p4_ack|-DERROR_ANSWER -DHANDOVER_DURABLE -DF=3 -DLEASE=2 -DDRIFT=1 -DMAXLSN=1 -DMAXTERM=2 -DMAXCRASH=0"
	"mutant-no-hold-p1|violation|assertion violated 0|-DMUTANT_NO_HOLD $SW_FIXES -DF=3 -DLEASE=2 -DDRIFT=1 -DMAXLSN=0 -DMAXTERM=2 -DMAXCRASH=0"
	"mutant-no-hold-p4|violation|p4_ack|-DMUTANT_NO_HOLD $SW_FIXES -DF=3 -DLEASE=2 -DDRIFT=1 -DMAXLSN=1 -DMAXTERM=2 -DMAXCRASH=0"
	"mutant-resume-on-loss|violation|assertion violated 0|-DMUTANT_RESUME_ON_LOSS $SW_FIXES -DF=3 -DLEASE=2 -DDRIFT=1 -DMAXLSN=0 -DMAXTERM=2 -DMAXCRASH=0"
	"mutant-early-promote|violation|p4_ack|-DMUTANT_EARLY_PROMOTE $SW_FIXES -DF=3 -DLEASE=2 -DDRIFT=1 -DMAXLSN=1 -DMAXTERM=2 -DMAXCRASH=0"
	"sync-quorum-witness|pass||$SYNC_FIXES $SYNC_BOOT $SYNC_W -DMAXCRASH=1"
	"sync-quorum-witness-ver3|pass||$SYNC_FIXES $SYNC_BOOT $SYNC_W -DMAXCRASH=0 -DMAXVER=3"
	"reach-sync-failover-ack|violation|(6==6)|$SYNC_FIXES $SYNC_BOOT $SYNC_W -DMAXCRASH=0 -DREACH=6"
	"reach-sync-boot-failover|violation|(8==8)|$SYNC_FIXES $SYNC_BOOT $SYNC_W -DMAXCRASH=0 -DREACH=8"
	"fixed-sync-own-vote|violation|>=acked|-DSYNC_TERM_ORDER $SYNC_W -DMAXCRASH=0|-O1"
	"fixed-sync-version-collision|violation|>=acked|-DSELF_V9 -DBOOT_RECORD $SYNC_BOOT $SYNC_W -DMAXCRASH=0|-O1"
	"mutant-sync-no-v9|violation|>=acked|-DMUTANT_NO_V9 $SYNC_FIXES $SYNC_BOOT $SYNC_W -DMAXCRASH=0"
	"fixed-sync-bootstrap-acks|violation|>=acked|-DSELF_V9 -DSYNC_TERM_ORDER $SYNC_BOOT $SYNC_W -DMAXCRASH=0"
)
# lane B
CHECKS_B=(
	"witness-safety|pass||-DMAXSWITCH=0 -DF=5 -DLEASE=4 -DDRIFT=1 -DMAXLSN=0 -DMAXTERM=3 -DMAXCRASH=2 -DMAXMSG=2 -DLEASE_ORDER"
	"witness-lsn|pass||-DMAXSWITCH=0 -DWITNESS_LSN_DURABLE -DF=3 -DLEASE=2 -DDRIFT=1 -DMAXLSN=2 -DMAXTERM=3 -DMAXCRASH=1 -DMAXMSG=2"
	"switchover-safety|pass||$SW_FIXES -DF=3 -DLEASE=2 -DDRIFT=1 -DMAXLSN=0 -DMAXTERM=3 -DMAXCRASH=1 -DMAXMSG=2"
	"switchover-lsn-crash|pass||$SW_FIXES -DWITNESS_LSN_DURABLE -DHEARD_LAST -DSTAND_LAG_RULE -DF=2 -DLEASE=1 -DDRIFT=1 -DMAXLSN=1 -DMAXTERM=2 -DMAXCRASH=1 -DMAXMSG=2"
	"switchover-error-answer|pass||-DERROR_ANSWER -DERROR_UNCLEAR $SW_FIXES -DF=3 -DLEASE=2 -DDRIFT=1 -DMAXLSN=1 -DMAXTERM=2 -DMAXCRASH=0"
	"sync-quorum-threedata|pass||$SYNC_FIXES $SYNC_BOOT $SYNC_D -DMAXVER=3"
	"reach-sync-threedata-grow|violation|(7==7)|$SYNC_FIXES $SYNC_D -DREACH=7"
	"mutant-sync-shrink-first|violation|>=acked|-DMUTANT_SHRINK_FIRST $SYNC_FIXES $SYNC_BOOT $SYNC_W -DMAXCRASH=0"
	"mutant-sync-no-ready|violation|>=acked|-DMUTANT_NO_READY $SYNC_FIXES $SYNC_BOOT $SYNC_W -DMAXCRASH=0"
	"mutant-sync-no-v9-threedata|violation|>=acked|-DMUTANT_NO_V9 $SYNC_FIXES $SYNC_BOOT $SYNC_D|-O1"
	"mutant-handover-any-term|violation|assertion violated 0|-DMUTANT_HANDOVER_ANY_TERM $SW_FIXES -DF=2 -DLEASE=1 -DMAXLSN=0 -DMAXTERM=3 -DMAXCRASH=0|-O1"
)

run_lane() {
	local entry name expect pattern flags opt
	for entry in "$@"; do
		IFS='|' read -r name expect pattern flags opt <<< "$entry"
		check "$name" "$expect" "$pattern" "$flags" "$opt"
	done
}

t0=$(date +%s)
run_lane "${CHECKS_A[@]}" &
pid_a=$!
run_lane "${CHECKS_B[@]}" &
pid_b=$!
wait $pid_a $pid_b

status=0
echo "== pg_cluster election model: $(spin -V | head -1)"
for entry in "${CHECKS_B[@]}" "${CHECKS_A[@]}"; do
	IFS='|' read -r name expect pattern flags opt <<< "$entry"
	result=$(cat "$work/$name/result" 2>/dev/null || echo "FAIL $name: no result")
	case $name in
	no-selfvote-recheck-*) result="$result  [the flaw the §4 own-vote rule fixes]" ;;
	mutant-*) result="$result  [mutant: must fail]" ;;
	open-*) result="$result  [OPEN PROTOCOL ISSUE, see model/README.md]" ;;
	fixed-*) result="$result  [the behaviour before a fix src/ has, see model/README.md]" ;;
	esac
	echo "$result"
	echo "       flags: $flags"
	case $result in FAIL*) status=1 ;; esac
done
echo "== total $(( $(date +%s) - t0 ))s: $([ $status = 0 ] && echo 'all checks gave the expected result' || echo 'SOME CHECKS FAILED')"

if [ $verbose = 1 ] || [ $status != 0 ]; then
	for d in "$work"/*/; do
		[ -s "$d/trace.txt" ] || continue
		echo
		echo "== counterexample: $(basename "$d")"
		cut -c1-400 "$d/trace.txt"
	done
fi
exit $status
