# Every refusal of pg_cluster.switchover() says why and changes nothing:
# unknown target, a witness, an unreachable, a non-streaming, a lagging or
# a priority-0 standby, no quorum, a paused cluster, a second switchover
# while one runs, and a caller without the privilege.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgClusterTest;

my @nodes = create_cluster(data => 3, witnesses => 1);
my ($n1, $n2, $n3, $w1) = @nodes;
sql($n1, "CREATE TABLE ledger (id bigint PRIMARY KEY, at timestamptz)");
my $next_id = 1;

# refused: the call fails with this message, and the cluster is unchanged
# (n1 leads term 1 and takes writes, nobody recorded a switchover step)
sub refused
{
	my ($node, $call, $message, $name) = @_;
	my ($ret, $out, $err) = $node->psql('postgres', "SELECT $call");
	isnt($ret, 0, "$name: refused");
	like($err, $message, "$name: says why");
	like($err, qr/HINT:/, "$name: with a hint");
	wait_for($n1, "SELECT state = 'leader' AND term = 1 FROM pg_cluster.status");
	my $id = $next_id++;
	sql($n1, "INSERT INTO ledger VALUES ($id, now())");
	is(sql($n1, "SELECT count(*) FROM pg_cluster.events WHERE kind IN ('switchover_handover', 'switchover_accepted', 'demoting')"),
		'0', "$name: nothing changed");
}

refused($n2, "pg_cluster.switchover('n9')", qr/"n9" is not a node of this cluster/, 'unknown target');
refused($n2, "pg_cluster.switchover('w1')", qr/cannot switch over to "w1": it is a witness/, 'witness');
refused($n1, "pg_cluster.switchover('n1')", qr/it is the current primary/, 'the primary itself');

# a caller without pgcluster_admin; the grant makes the difference
sql($n1, "CREATE ROLE operator LOGIN; GRANT USAGE ON SCHEMA pg_cluster TO operator");
my ($ret, $out, $err) = $n2->psql('postgres', "SELECT pg_cluster.switchover('n3')",
	extra_params => [ '-U', 'operator' ]);
like($err, qr/permission denied for function switchover/, 'a caller outside pgcluster_admin is refused');

# priority 0
$n3->append_conf('postgresql.conf', "pg_cluster.priority = 0\n");
$n3->reload;
wait_for($n1, "SELECT priority = 0 FROM pg_cluster.nodes WHERE node_name = 'n3'");
refused($n2, "pg_cluster.switchover('n3')", qr/priority is 0/, 'priority 0');
$n3->append_conf('postgresql.conf', "pg_cluster.priority = 100\n");
$n3->reload;
wait_for($n1, "SELECT priority = 100 FROM pg_cluster.nodes WHERE node_name = 'n3'");

# paused
sql($n1, "SELECT pg_cluster.pause()");
wait_for($n2, "SELECT paused FROM pg_cluster.status");
refused($n2, "pg_cluster.switchover('n3')", qr/the cluster is paused/, 'paused');
sql($n1, "SELECT pg_cluster.resume()");
wait_for($n2, "SELECT NOT paused FROM pg_cluster.status");

# not streaming: n2 stops its WAL receiver
sql($n2, "ALTER SYSTEM SET primary_conninfo = ''");
sql($n2, "SELECT pg_reload_conf()");
wait_for($n1, "SELECT state = 'not_streaming' FROM pg_cluster.nodes WHERE node_name = 'n2'");
refused($n3, "pg_cluster.switchover('n2')", qr/it is not streaming \(state not_streaming\)/,
	'not streaming');
sql($n2, "ALTER SYSTEM RESET primary_conninfo");
sql($n2, "SELECT pg_reload_conf()");
wait_for($n1, "SELECT state = 'streaming' FROM pg_cluster.nodes WHERE node_name = 'n2'");

# lagging: n2's WAL receiver is frozen while n1 writes 1 MB, with a 64 kB limit
$n1->append_conf('postgresql.conf', "pg_cluster.max_lag_on_failover = '64kB'\n");
$n1->reload;
my $walrcv = sql($n2, "SELECT pid FROM pg_stat_wal_receiver");
kill 'STOP', $walrcv;
sql($n1, "INSERT INTO ledger SELECT g, now() FROM generate_series(100000, 120000) g");
wait_for($n1, "SELECT lag_bytes > 65536 FROM pg_cluster.nodes WHERE node_name = 'n2'");
refused($n3, "pg_cluster.switchover('n2')", qr/it lags \d+ bytes behind, more than pg_cluster.max_lag_on_failover/,
	'lagging');
# with no target named, the best eligible standby is chosen among the others
kill 'CONT', $walrcv;
$n1->append_conf('postgresql.conf', "pg_cluster.max_lag_on_failover = '16MB'\n");
$n1->reload;
$n1->wait_for_catchup($n2);

# unreachable: n3 hangs
stop_process_group($n3);
wait_for($n1, "SELECT NOT reachable FROM pg_cluster.nodes WHERE node_name = 'n3'");
refused($n2, "pg_cluster.switchover('n3')", qr/it is unreachable/, 'unreachable');

# no quorum: n3 and the witness are gone, 2 of 4 voters are left
stop_process_group($w1);
wait_for($n1, "SELECT state = 'fenced' FROM pg_cluster.status");
($ret, $out, $err) = $n1->psql('postgres', "SELECT pg_cluster.switchover('n2')");
like($err, qr/the leader holds no lease/, 'no quorum: refused');
continue_process_group($w1);
continue_process_group($n3);
wait_for_leader('n1', @nodes);
is(sql($n1, "SELECT term FROM pg_cluster.status"), '1', 'no quorum: still term 1');

# one at a time: a commit stuck in synchronous replication keeps the first
# switchover in its commit hold for 5 s; a second call meanwhile is refused
sql($n1, "ALTER SYSTEM SET synchronous_standby_names = 'nobody'");
sql($n1, "SELECT pg_reload_conf()");
my $stuck = IPC::Run::start(
	[ 'psql', '-XAtq', '-d', $n1->connstr('postgres'), '-c', "INSERT INTO ledger VALUES (999999, now())" ],
	'>', \my $stuck_out, '2>', \my $stuck_err);
wait_for($n1, "SELECT count(*) = 1 FROM pg_stat_activity WHERE wait_event = 'SyncRep'");
my $first = IPC::Run::start(
	[ 'psql', '-XAtq', '-d', $n2->connstr('postgres'), '-c', "SELECT pg_cluster.switchover('n3')" ],
	'>', \my $first_out, '2>', \my $first_err);
wait_for($n1, "SELECT state = 'demoting' FROM pg_cluster.status");
($ret, $out, $err) = $n3->psql('postgres', "SELECT pg_cluster.switchover('n2')");
like($err, qr/a switchover to "n3" is already in progress/, 'a second switchover is refused');
$first->finish;
like($first_err, qr/commits in progress did not finish within \d+ ms/,
	'the first fails when commits in progress do not finish');
sql($n1, "ALTER SYSTEM RESET synchronous_standby_names");
sql($n1, "SELECT pg_reload_conf()");
$stuck->finish;
wait_for($n1, "SELECT state = 'leader' AND term = 1 FROM pg_cluster.status");
sql($n1, "INSERT INTO ledger VALUES (" . $next_id++ . ", now())");
pass('commits resume on n1 in term 1');
is(sql($n1, "SELECT count(*) FROM pg_cluster.events WHERE kind = 'switchover_failed'"), '1',
	'the failed attempt is an event');

# and a switchover that may go ahead, with no target named: the best standby
my $new = sql($n2, "SELECT pg_cluster.switchover()");
like($new, qr/^n[23]$/, "with no target, the best standby is chosen ($new)");
$n1->{_pid} = undef;
$n1->start;
wait_for($n1, "SELECT state = 'streaming' FROM pg_cluster.status");
pass('and n1 rejoins as its standby');
done_testing();
