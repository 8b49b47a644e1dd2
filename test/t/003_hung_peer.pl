# A peer that hangs (SIGSTOP of its whole instance: the TCP connection stays
# open but nothing answers) must not delay heartbeats between the others.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use PgClusterTest;

# Four nodes, so that while n4 hangs the leader n1 still has its majority
# and two standbys heartbeat each other every interval (a standby heartbeats
# its leader only every 10th interval, docs/protocol.md §3.1): the pace of
# n1 -> n2 shows the leader's worker, that of n2 -> n3 a standby's.
my @nodes = create_cluster(data => 4);
my ($n1, $n2, $n3, $n4) = @nodes;
wait_for($_, "SELECT count(*) = 4 FROM pg_cluster.nodes WHERE reachable") for @nodes;

# average interval between answered heartbeats from $from to $to over a
# window of about $seconds, measured by the sender's counters
sub heartbeat_interval
{
	my ($from, $to, $seconds) = @_;
	my $query =
	  "SELECT heartbeats_answered, extract(epoch FROM clock_timestamp()) FROM pg_cluster.nodes WHERE node_name = '$to'";
	my ($c0, $t0) = split /\|/, sql($from, $query);
	# a bounded measurement window, not a wait for a condition
	sql($from, "SELECT pg_sleep($seconds)");
	my ($c1, $t1) = split /\|/, sql($from, $query);
	return ($c1 > $c0) ? ($t1 - $t0) / ($c1 - $c0) : 9999;
}

my $before = heartbeat_interval($n1, 'n2', 2);
note sprintf("n1 -> n2: one heartbeat every %.1f ms with all nodes up", $before * 1000);

my $before_23 = heartbeat_interval($n2, 'n3', 2);
note sprintf("n2 -> n3: one heartbeat every %.1f ms with all nodes up", $before_23 * 1000);

stop_process_group($n4);
my $t_stop = time;
my $at = wait_for($n1, "SELECT NOT reachable FROM pg_cluster.nodes WHERE node_name = 'n4'");
note sprintf("n1 sees the hung n4 unreachable after %.3f s (bound 0.8 s)", $at - $t_stop);
pass('a hung peer turns unreachable');

# n4 is now hung: every connection attempt to it waits for the 500 ms
# connect timeout.  Heartbeats between the others must keep their pace.
my $during_12 = heartbeat_interval($n1, 'n2', 3);
my $during_23 = heartbeat_interval($n2, 'n3', 3);
note sprintf("while n4 hangs: n1 -> n2 every %.1f ms, n2 -> n3 every %.1f ms",
	$during_12 * 1000, $during_23 * 1000);
# 100 ms heartbeats; a worker blocked on n4 would show >= 500 ms
cmp_ok($during_12, '<', 0.300, 'the leader\'s heartbeats (n1 -> n2) not delayed by the hung n4');
cmp_ok($during_23, '<', 0.300, 'a standby\'s heartbeats (n2 -> n3) not delayed by the hung n4');
is(sql($n1, "SELECT reachable FROM pg_cluster.nodes WHERE node_name = 'n2'"),
	't', 'n2 stays reachable from n1');
like(sql($n1, "SELECT last_error FROM pg_cluster.nodes WHERE node_name = 'n4'"),
	qr/timed out/, 'the hung peer is reported as timing out');

continue_process_group($n4);
wait_for($_, "SELECT count(*) = 4 FROM pg_cluster.nodes WHERE reachable") for @nodes;
pass('n4 is back after SIGCONT');

# a hung postmaster alone (its worker and backends still run) is a
# different fault: the existing connections keep working
my $pm = postmaster_pid($n4);
kill 'STOP', $pm;
my $during_pm = heartbeat_interval($n1, 'n4', 1);
kill 'CONT', $pm;
note sprintf("n1 -> n4 with only n4's postmaster stopped: every %.1f ms", $during_pm * 1000);
cmp_ok($during_pm, '<', 0.300, 'established connections survive a stopped postmaster');

done_testing();
