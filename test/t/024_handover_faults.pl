# Faults in the middle of a handover (docs/protocol.md §8), injected with
# pg_cluster.debug_handover_fault on the target:
#  1. the leader's server crashes and restarts while it waits for the
#     target's answer (the target answers late): the restarted leader must
#     not resume the term it was handing over (handed_over_term is
#     durable; the target might have taken it), an election decides, and
#     every node follows the new leader;
#  2. the target accepts, then answers with an error: that is an unclear
#     outcome, not a refusal, so the leader steps down instead of carrying
#     on, the target takes over, and the old leader rejoins as its standby.
# A writer runs throughout; every acknowledged write must be on the final
# primary.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use PgClusterTest;

my @nodes = create_cluster(data => 3, supervised => 1);
my ($n1, $n2, $n3) = @nodes;
sql($n1, "CREATE TABLE ledger (id bigint PRIMARY KEY, at timestamptz)");
$n1->wait_for_catchup($_) for ($n2, $n3);
my $writer = start_writer(cluster_uri(@nodes), 300, 20);
wait_for($n1, "SELECT count(*) >= 20 FROM ledger");

# wait_for_new_leader waits until a node leads a term newer than $term, as
# a primary with its lease; returns it
sub wait_for_new_leader
{
	my ($term) = @_;
	my $leader = wait_for_any_leader(@nodes);
	wait_for($leader, "SELECT term > $term AND NOT pg_is_in_recovery() FROM pg_cluster.status");
	return $leader;
}

# wait_streaming waits until every other node streams from $leader
sub wait_streaming
{
	my ($leader) = @_;
	my $name = $leader->name;
	foreach my $node (grep { $_ != $leader } @nodes)
	{
		wait_for($node, "SELECT state = 'streaming' AND leader = '$name' FROM pg_cluster.status");
	}
}

# wait_for_log waits until the log of $node matches $re after $offset;
# returns that part of the log
sub wait_for_log
{
	my ($node, $re, $offset) = @_;
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	for (;;)
	{
		my $log = substr(slurp_file($node->logfile), $offset);
		return $log if $log =~ $re;
		die "the log of " . $node->name . " does not match $re" if time > $deadline;
		select(undef, undef, undef, 0.05);
	}
}

# set_on sets a parameter with ALTER SYSTEM and reloads
sub set_on
{
	my ($node, $name, $value) = @_;
	sql($node, "ALTER SYSTEM SET $name = '$value'");
	sql($node, "SELECT pg_reload_conf()");
	wait_for($node, "SELECT current_setting('$name') = '$value'");
}

# wait_supervisor_exit waits until the pg_cluster_ctl of a crashed node
# ended; returns its exit status
sub wait_supervisor_exit
{
	my ($node) = @_;
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	for (;;)
	{
		my ($exited, $status) = supervisor_exited($node);
		return $status if $exited;
		die "pg_cluster_ctl of " . $node->name . " did not exit" if time > $deadline;
		select(undef, undef, undef, 0.01);
	}
}

# 1. the leader crashes while it waits for the target's answer
set_on($n2, 'pg_cluster.debug_handover_fault', 'delay');
# the answer comes late: the leader's statement_timeout on the target is
# its connect_timeout
set_on($n1, 'pg_cluster.connect_timeout', '5s');
# (the peer connections are made anew with the new timeout)
wait_for($n1, "SELECT bool_and(reachable AND (role = 'primary' OR state = 'streaming')) FROM pg_cluster.nodes");
my $term = sql($n1, "SELECT term FROM pg_cluster.status");
my $call = IPC::Run::start(
	[ 'psql', '-XAtq', '-d', $n1->connstr('postgres'),
	  '-c', "SELECT pg_cluster.switchover('n2', '6s')" ],
	'>', \my $call_out, '2>', \my $call_err);
wait_for($n2, "SELECT count(*) > 0 FROM pg_cluster.events WHERE kind = 'handover_fault'");
pass('n1 asked n2 to take over, and n2 delays its answer');
crash_instance($n1);
$call->finish;
is(wait_supervisor_exit($n1), 1, 'n1 crashed during the handover');

# (read in the log: n1 may rejoin as a standby at once, which restarts it
# and empties its event view)
my $log_offset = -s $n1->logfile;
start_supervised($n1);
my $log = wait_for_log($n1, qr/leadership_not_resumed: term $term was being handed over/, $log_offset);
pass('the restarted n1 does not resume the term it was handing over');
unlike($log, qr/leadership_resumed/, 'n1 never claimed that term again');
my $leader = wait_for_new_leader($term);
note "leader after the crash: " . $leader->name;
set_on($n2, 'pg_cluster.debug_handover_fault', 'none');
# n1 rejoins as a standby (pg_cluster_ctl restarts it, through pg_rewind
# when the new leader's timeline forked): it is reachable again once it
# streams
wait_streaming($leader);
sql($n1, "ALTER SYSTEM RESET pg_cluster.connect_timeout");
sql($n1, "SELECT pg_reload_conf()");
my $rows = sql($leader, "SELECT count(*) FROM ledger");
wait_for($leader, "SELECT count(*) >= $rows + 10 FROM ledger");
pass('writes go on on ' . $leader->name);

# 2. the target accepts, then answers with an error
my ($target) = grep { $_ != $leader } @nodes;
my ($tname, $lname) = ($target->name, $leader->name);
set_on($target, 'pg_cluster.debug_handover_fault', 'error');
wait_for($leader, "SELECT bool_and(reachable AND (role = 'primary' OR state = 'streaming')) FROM pg_cluster.nodes");
$term = sql($leader, "SELECT term FROM pg_cluster.status");
my ($ret, $out, $err) = $leader->psql('postgres', "SELECT pg_cluster.switchover('$tname', '5s')");
isnt($ret, 0, 'the switchover call fails');
like($err, qr/no clear answer from "$tname".*stepped down/, 'the error answer is an unclear outcome');
like(sql($leader, "SELECT detail FROM pg_cluster.events WHERE kind = 'switchover_failed' ORDER BY seq DESC LIMIT 1"),
	qr/no clear answer/, "$lname records why");
is(sql($leader, "SELECT fenced FROM pg_cluster.status"), 't',
	"$lname stepped down: it acknowledges no commit");
wait_for($target, "SELECT state = 'leader' AND NOT pg_is_in_recovery() FROM pg_cluster.status");
pass("$tname took over");
cmp_ok(sql($target, "SELECT term FROM pg_cluster.status"), '>', $term, 'in a newer term');
set_on($target, 'pg_cluster.debug_handover_fault', 'none');
wait_streaming($target);
pass("$lname rejoined as a standby of $tname");
$rows = sql($target, "SELECT count(*) FROM ledger");
wait_for($target, "SELECT count(*) >= $rows + 10 FROM ledger");
pass("writes go on on $tname");

stop_writer($writer);
my ($acked, $lines) = writer_log($writer);
my $acked_list = join(',', @$acked);
is(sql($target, "SELECT count(*) FROM ledger WHERE id = ANY('{$acked_list}'::bigint[])"),
	scalar(@$acked), scalar(@$acked) . " acknowledged writes, all on $tname");
done_testing();
