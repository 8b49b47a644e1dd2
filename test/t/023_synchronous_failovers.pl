# Synchronous mode "quorum", 3 data nodes under pg_cluster_ctl: a client
# writes through five successive kill -9 failovers (each old primary
# restarted and rejoined in between) and a switchover; every commit it got
# acknowledged is on the final primary.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgClusterTest;

my @nodes = create_cluster(data => 3, supervised => 1,
	settings => { 'pg_cluster.synchronous_mode' => 'quorum' });
sql($nodes[0], "CREATE TABLE ledger (id bigint PRIMARY KEY, at timestamptz)");
wait_for($nodes[0], "SELECT sync_state LIKE 'commits wait%' FROM pg_cluster.status");

my $writer = start_writer(cluster_uri(@nodes), 600, 10);
my $leader = $nodes[0];
for my $round (1 .. 5)
{
	my $rows = sql($leader, "SELECT count(*) FROM ledger");
	wait_for($leader, "SELECT count(*) >= $rows + 20 FROM ledger");
	crash_instance($leader);
	my @others = grep { $_ != $leader } @nodes;
	my $new = wait_for_any_leader(@others);
	note "failover $round: " . $leader->name . ' -> ' . $new->name;
	wait_for($new, "SELECT sync_state LIKE 'commits wait%' FROM pg_cluster.status");
	# the old primary comes back through pg_rewind and follows
	for (1 .. 1000) { last if (supervisor_exited($leader))[0]; select(undef, undef, undef, 0.01); }
	start_supervised($leader);
	wait_for($leader, "SELECT state = 'streaming' AND leader = '" . $new->name . "' FROM pg_cluster.status");
	$leader = $new;
}
pass('five failovers, each old primary rejoined');

my ($target) = grep { $_ != $leader } @nodes;
wait_for($leader, "SELECT count(*) = 2 FROM pg_cluster.nodes WHERE NOT is_self AND state = 'streaming' AND eligible");
my $name = sql($target, "SELECT pg_cluster.switchover('" . $target->name . "')");
is($name, $target->name, 'and a switchover in synchronous mode');
$leader = $target;
my $rows = sql($leader, "SELECT count(*) FROM ledger");
wait_for($leader, "SELECT count(*) >= $rows + 20 FROM ledger");

stop_writer($writer);
my ($acked) = writer_log($writer);
my $list = join(',', @$acked);
is(sql($leader, "SELECT count(*) FROM ledger WHERE id = ANY('{$list}'::bigint[])"),
	scalar(@$acked), scalar(@$acked) . ' acknowledged commits, none missing on the final primary');
done_testing();
