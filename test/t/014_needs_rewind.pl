# A node whose WAL goes past the fork point of the new leader's timeline
# cannot follow it: it says so (state needs_rewind, event) instead of
# silently not streaming.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgClusterTest;

my @nodes = create_cluster(data => 3);
my ($n1, $n2, $n3) = @nodes;

# both standbys stop receiving WAL; the primary keeps its lease (the
# heartbeats go on) and writes WAL that no standby has
foreach my $node ($n2, $n3)
{
	wait_followed($node, 'n1');
	sql($node, "ALTER SYSTEM SET primary_conninfo = ''");
	sql($node, "SELECT pg_reload_conf()");
	wait_for($node, "SELECT NOT EXISTS (SELECT 1 FROM pg_stat_wal_receiver)");
}
sql($n1, "CREATE TABLE t AS SELECT generate_series(1, 10000) AS id");
my $n1_lsn = sql($n1, "SELECT pg_current_wal_flush_lsn()");

crash_instance($n1);
my $winner = wait_for_any_leader($n2, $n3);
my $other = $winner == $n2 ? $n3 : $n2;
pass($winner->name . ' took over');
wait_for($other, "SELECT state = 'streaming' FROM pg_cluster.status");
pass($other->name . ' follows it: it was behind the fork point');

# the old primary comes back as a standby: it is ahead of the fork point
$n1->set_standby_mode;
$n1->start;
wait_for($n1, "SELECT state = 'needs_rewind' FROM pg_cluster.status");
pass('the old primary reports needs_rewind');
like(sql($n1, "SELECT detail FROM pg_cluster.events WHERE kind = 'state_changed' ORDER BY seq DESC LIMIT 1"),
	qr/needs pg_rewind/, 'and says why in the events');
is(sql($n1, "SELECT leader FROM pg_cluster.status"), $winner->name, 'it knows the leader');
ok(sql($n1, "SELECT pg_last_wal_receive_lsn() IS NULL OR pg_last_wal_replay_lsn() >= '$n1_lsn'") eq 't',
	'it keeps its own WAL (nothing is thrown away without pg_rewind)');

# it left a rejoin marker: stopped, it could not even start again (its
# minimum recovery point is not on the new timeline), but pg_cluster_ctl
# rewinds it first and starts it as a standby of the leader
wait_for($n1, "SELECT count(*) > 0 FROM pg_cluster.events WHERE kind = 'rejoin_prepared'");
$n1->stop('fast');
start_supervised($n1);
wait_for($n1, "SELECT state = 'streaming' AND leader = '" . $winner->name . "' FROM pg_cluster.status");
pass('under pg_cluster_ctl the standby is rewound and streams');
like(sql($n1, "SELECT detail FROM pg_cluster.events WHERE kind = 'rejoined'"), qr/rewind=yes/,
	'after pg_rewind');
like(slurp_file($n1->logfile), qr/rejoin_prepared: this standby's WAL goes past the fork/,
	'it logged why');

done_testing();
