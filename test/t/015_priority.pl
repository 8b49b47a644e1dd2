# pg_cluster.priority = 0 keeps a standby from ever standing: when the
# primary dies the other standby wins, whatever the timing.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgClusterTest;

my @nodes = create_cluster(data => 3);
my ($n1, $n2, $n3) = @nodes;

$n2->append_conf('postgresql.conf', "pg_cluster.priority = 0\n");
$n2->reload;
wait_for($n2, "SELECT current_setting('pg_cluster.priority') = '0'");
$n1->wait_for_catchup($_) for ($n2, $n3);

crash_instance($n1);
my $winner = wait_for_any_leader($n2, $n3);
is($winner->name, 'n3', 'the standby with priority 0 did not win');
is(sql($n2, "SELECT count(*) FROM pg_cluster.events WHERE kind IN ('election_started', 'elected')"),
	'0', 'it never stood');
like(sql($n3, "SELECT string_agg(detail, ' ') FROM pg_cluster.events WHERE kind = 'vote_granted'"),
	qr/from "n2"/, 'but it voted');
wait_for($n2, "SELECT leader = 'n3' AND state = 'streaming' FROM pg_cluster.status");
pass('and follows the new leader');

done_testing();
