# A stopped or crashed standby turns unreachable on the others within
# 3 x heartbeat_interval + connect_timeout, and reachable again when it
# comes back.  Both transitions are events.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use PgClusterTest;

my @nodes = create_cluster(data => 3);
my ($n1, $n2, $n3) = @nodes;
wait_for($_, "SELECT count(*) = 3 FROM pg_cluster.nodes WHERE reachable") for @nodes;

my $bound = 3 * 0.100 + 0.500;

foreach my $mode ('fast', 'immediate')
{
	my $t_stop = time;
	$n3->stop($mode);
	foreach my $node ($n1, $n2)
	{
		my $at = wait_for($node,
			"SELECT NOT reachable FROM pg_cluster.nodes WHERE node_name = 'n3'");
		note sprintf("%s: n3 unreachable %.3f s after stop -m %s (bound %.1f s)",
			$node->name, $at - $t_stop, $mode, $bound);
		pass($node->name . " sees n3 unreachable after stop -m $mode");
		is( sql($node,
				"SELECT count(*) = 2 FROM pg_cluster.nodes WHERE reachable AND node_name <> 'n3'"),
			't',
			$node->name . ' still reaches the other nodes');
		is( sql($node,
				"SELECT count(*) > 0 FROM pg_cluster.events WHERE kind = 'peer_unreachable' AND node_name = 'n3'"
			),
			't',
			$node->name . ' recorded the unreachable event');
	}

	my $t_start = time;
	$n3->start;
	my $t_started = time;
	foreach my $node ($n1, $n2)
	{
		my $at = wait_for($node,
			"SELECT reachable FROM pg_cluster.nodes WHERE node_name = 'n3'");
		note sprintf("%s: n3 reachable again %.3f s after pg_ctl start returned (start took %.3f s)",
			$node->name, $at - $t_started, $t_started - $t_start);
		pass($node->name . ' sees n3 reachable again');
	}
	wait_for($n3, "SELECT count(*) = 3 FROM pg_cluster.nodes WHERE reachable");
	pass('n3 sees everybody after its restart');
}

# what the unreachable peer's row says
$n3->stop('fast');
wait_for($n1, "SELECT NOT reachable FROM pg_cluster.nodes WHERE node_name = 'n3'");
like(sql($n1, "SELECT last_error FROM pg_cluster.nodes WHERE node_name = 'n3'"),
	qr/connection|timed out/, 'the reason is shown');
is(sql($n1, "SELECT has_quorum FROM pg_cluster.status"), 't',
	'two of three nodes are a majority');
$n2->stop('fast');
wait_for($n1, "SELECT NOT has_quorum FROM pg_cluster.status");
pass('one of three nodes is not a majority');

done_testing();
