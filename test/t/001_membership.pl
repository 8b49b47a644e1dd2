# Three nodes on loopback see each other: reachability, roles, LSNs, the
# worker process, and the worker's restart by the postmaster.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use PgClusterTest;

my $t_start = time;
my @nodes = create_cluster(data => 3, no_wait => 1);
my ($n1, $n2, $n3) = @nodes;
my $t_started = time;

# every node sees every node reachable
foreach my $node (@nodes)
{
	my $at = wait_for($node,
		"SELECT count(*) = 3 FROM pg_cluster.nodes WHERE reachable");
	note sprintf("%s sees all 3 nodes reachable %.3f s after the last start",
		$node->name, $at - $t_started);
	pass($node->name . " sees all nodes reachable");
}

# the primary is elected the first leader (term 1) without a promotion
my $t_leader = wait_for_leader('n1', @nodes);
note sprintf("n1 became leader of term 1 %.3f s after the last start", $t_leader - $t_started);
is(sql($n1, "SELECT term FROM pg_cluster.status"), '1', 'the first leader has term 1');
is(sql($n1, "SELECT count(*) FROM pg_cluster.events WHERE kind = 'promotion'"), '0',
	'without a promotion');

# right roles everywhere, one leader: the primary
foreach my $node (@nodes)
{
	is( sql($node,
			"SELECT string_agg(node_name || ':' || role || ':' || is_leader, ',' ORDER BY node_name) FROM pg_cluster.nodes"
		),
		'n1:primary:true,n2:standby:false,n3:standby:false',
		$node->name . ' sees the right roles and the leader');
	is(sql($node, "SELECT leader FROM pg_cluster.status"), 'n1',
		$node->name . ' names n1 as leader');
}
is(sql($n1, "SELECT state || '/' || fenced FROM pg_cluster.status"), 'leader/false', 'n1 state');
wait_for($_, "SELECT state = 'streaming' FROM pg_cluster.status") for ($n2, $n3);
pass('standbys are streaming');

# the views follow the primary's WAL
sql($n1, "CREATE TABLE t AS SELECT g FROM generate_series(1, 10000) g");
my $lsn = sql($n1, "SELECT pg_current_wal_flush_lsn()");
my $t_write = time;
foreach my $node (@nodes)
{
	my $at = wait_for($node,
		"SELECT bool_and(lsn >= '$lsn' AND timeline = 1) FROM pg_cluster.nodes WHERE role IN ('primary', 'standby')"
	);
	note sprintf("%s sees every node's LSN past %s %.3f s after the write",
		$node->name, $lsn, $at - $t_write);
	pass($node->name . ' sees the LSNs of all nodes');
}
# lag is shown against the leader
wait_for($n1, "SELECT count(*) = 0 FROM pg_cluster.nodes WHERE lag_bytes IS NULL");
pass('lag_bytes known for every data node');

# one worker per instance, named so that ps shows it
foreach my $node (@nodes)
{
	is( sql($node,
			"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_cluster'"),
		'1',
		$node->name . ' runs one pg_cluster worker');
}
my $pid = sql($n2, "SELECT worker_pid FROM pg_cluster.status");
my $ps = `ps -o args= -p $pid`;
like($ps, qr/pg_cluster worker/, 'ps shows the worker as pg_cluster');

# the postmaster restarts a worker that died
sql($n2, "SELECT pg_terminate_backend($pid)");
wait_for($n2,
	"SELECT worker_pid IS NOT NULL AND worker_pid <> $pid FROM pg_cluster.status");
wait_for($n2, "SELECT count(*) = 3 FROM pg_cluster.nodes WHERE reachable");
pass('worker restarted by the postmaster and back in touch with its peers');
is(sql($n2, "SELECT count(*) >= 2 FROM pg_cluster.events WHERE kind = 'worker_started'"),
	't', 'the restart is an event');

# heartbeats flow both ways
foreach my $node (@nodes)
{
	wait_for($node,
		"SELECT bool_and(heartbeats_answered > 0 AND heartbeats_received > 0) FROM pg_cluster.nodes WHERE NOT is_self"
	);
	pass($node->name . ' sends and receives heartbeats');
}

# A follower heartbeats the leader that heartbeats it only every 10th
# interval (docs/protocol.md §3.1): over a window, the follower n2 sends n1
# far fewer heartbeats than it receives from n1, and n1 stays reachable.
my ($leader, $follower) = ($n1, $n2);
my $counters =
  "SELECT heartbeats_sent || '|' || heartbeats_received FROM pg_cluster.nodes WHERE node_name = '"
  . $leader->name . "'";
my ($sent0, $received0) = split /\|/, sql($follower, $counters);
# a bounded measurement window, not a wait for a condition
sql($follower, "SELECT pg_sleep(2)");
my ($sent1, $received1) = split /\|/, sql($follower, $counters);
note sprintf("in 2 s %s sent %d heartbeats to the leader %s and received %d from it",
	$follower->name, $sent1 - $sent0, $leader->name, $received1 - $received0);
cmp_ok(2 * ($sent1 - $sent0), '<', $received1 - $received0,
	'a follower heartbeats its leader less often than the leader heartbeats it');
cmp_ok($sent1 - $sent0, '>', 0, 'but still heartbeats it');
is(sql($follower, "SELECT reachable FROM pg_cluster.nodes WHERE node_name = '" . $leader->name . "'"),
	't', 'the leader stays reachable from the follower');

# the connection URI lists the data nodes
my $uri = sql($n3, "SELECT pg_cluster.connection_uri()");
my $ports = join(',', map { '127.0.0.1:' . $_->port } @nodes);
is($uri, "postgresql://$ports/postgres?target_session_attrs=read-write&connect_timeout=2",
	'connection_uri');
my ($out, $err);
IPC::Run::run([ 'psql', '-XAt', '-d', $uri, '-c', 'SELECT pg_is_in_recovery()' ],
	'>', \$out, '2>', \$err);
is($out, "f\n", 'the read-write URI reaches the primary');

note sprintf("test took %.1f s", time - $t_start);
done_testing();
