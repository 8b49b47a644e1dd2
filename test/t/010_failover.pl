# Automatic failover: the primary crashes (SIGKILL of the whole instance); the
# most advanced standby
# is elected by a majority and promotes itself from inside the server, the
# other standby follows it, and the old primary, restarted as a primary,
# refuses writes (it holds no lease) and steps down.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use PgClusterTest;

my @nodes = create_cluster(data => 3);
my ($n1, $n2, $n3) = @nodes;

sql($n1, "CREATE TABLE ledger (id int PRIMARY KEY, at timestamptz DEFAULT now())");
sql($n1, "INSERT INTO ledger SELECT g FROM generate_series(1, 100) g");
$n1->wait_for_catchup($_) for ($n2, $n3);

# make n2 fall behind: it stops receiving WAL (its sender address is
# emptied), so n3 is the most advanced standby when n1 dies
wait_followed($n2, 'n1');
sql($n2, "ALTER SYSTEM SET primary_conninfo = ''");
sql($n2, "SELECT pg_reload_conf()");
wait_for($n2, "SELECT NOT EXISTS (SELECT 1 FROM pg_stat_wal_receiver)");
sql($n1, "INSERT INTO ledger SELECT g FROM generate_series(101, 200) g");
$n1->wait_for_catchup($n3);
my $n2_lsn = sql($n2, "SELECT pg_last_wal_receive_lsn()");
my $n3_lsn = sql($n3, "SELECT pg_last_wal_receive_lsn()");
ok(sql($n3, "SELECT '$n3_lsn'::pg_lsn > '$n2_lsn'::pg_lsn") eq 't',
	"n3 ($n3_lsn) is ahead of n2 ($n2_lsn)");

my $t_kill = time;
crash_instance($n1);
my $at = wait_for($n3, "SELECT NOT pg_is_in_recovery()");
note sprintf("n3 promoted %.3f s after kill -9 of the primary", $at - $t_kill);
wait_for($n3, "SELECT state = 'leader' FROM pg_cluster.status");
pass('the most advanced standby, n3, became the leader');
is(sql($n3, "SELECT count(*) FROM ledger"), '200', 'with every row n1 had sent it');
is(sql($n3, "SELECT term FROM pg_cluster.status"), '2', 'in term 2');
is(sql($n2, "SELECT pg_is_in_recovery()"), 't', 'n2 stayed a standby');
is(sql($n3,
		"SELECT string_agg(kind, ',' ORDER BY seq) FROM pg_cluster.events WHERE kind IN ('election_started', 'elected', 'promotion')"
	),
	'election_started,elected,promotion',
	'election and promotion are events on the winner');

# the new primary takes writes, and n2 follows it on the new timeline
sql($n3, "INSERT INTO ledger SELECT g FROM generate_series(201, 300) g");
wait_for($n2, "SELECT leader = 'n3' FROM pg_cluster.status");
wait_for($n2,
	"SELECT sender_port = " . $n3->port . " AND status = 'streaming' FROM pg_stat_wal_receiver");
pass('n2 streams from n3');
wait_for($n2, "SELECT count(*) = 300 FROM ledger");
pass('n2 has the rows written on n3');
like(sql($n2, "SHOW primary_conninfo"), qr/port=${\ $n3->port } application_name=n2/,
	'primary_conninfo names n3 and application_name n2');
is(sql($n2, "SELECT timeline FROM pg_cluster.status"), '2', 'on timeline 2');

# the new leader marked its term in the WAL before its first commit; the
# standby that streams from it holds that marker (protocol.md §3.2, V4)
is(sql($n3, "SELECT wal_term FROM pg_cluster.status"), '2', 'the WAL of n3 is of term 2');
wait_for($n2, "SELECT wal_term = 2 FROM pg_cluster.status");
pass('so is the WAL n2 received from it');
like(sql($n3, "SELECT detail FROM pg_cluster.events WHERE kind = 'promotion'"), qr/term 2/, 'the promotion');
foreach my $node ($n2, $n3)
{
	is(sql($node, "SELECT string_agg(node_name || ':' || role || ':' || is_leader, ',' ORDER BY node_name) FROM pg_cluster.nodes WHERE node_name <> 'n1'"),
		'n2:standby:false,n3:primary:true', $node->name . ' sees the new roles');
}

# the old primary restarts as a primary: it must not take writes
$n1->start;
my ($ret, $out, $err) = $n1->psql('postgres', "INSERT INTO ledger VALUES (9999)");
isnt($ret, 0, 'the restarted old primary refuses a write');
# fenced (no lease), or already read-only once it learned of the new leader
like($err, qr/fenced|read-only transaction/, 'with a fencing or read-only error');
wait_for($n1, "SELECT term >= 2 AND leader = 'n3' AND fenced FROM pg_cluster.status");
pass('it learns the new term and leader and stays fenced');
is(sql($n1, "SELECT count(*) FROM ledger"), '200', 'reads still work on it');
# new sessions on it are read-only by default, so read-write clients skip it
is(sql($n1, "SHOW default_transaction_read_only"), 'on',
	'new sessions on the demoted primary default to read-only');
my $uri = sql($n3, "SELECT pg_cluster.connection_uri()");
my ($port_out, $port_err);
IPC::Run::run([ 'psql', '-XAt', '-d', $uri, '-c', 'SHOW port' ],
	'>', \$port_out, '2>', \$port_err);
is($port_out, $n3->port . "\n", 'the read-write URI skips the demoted n1 and lands on n3');
# a session that insists on writing hits the fence
($ret, $out, $err) = $n1->psql('postgres',
	"BEGIN READ WRITE; INSERT INTO ledger VALUES (9999); COMMIT;");
like($err, qr/fenced: the leader is "n3"/, 'the error names the new leader');
like($err, qr/ERROR:  pg_cluster/, 'as an ERROR');
is(sql($n3, "SELECT count(*) FROM ledger WHERE id = 9999"), '0', 'nothing of it reached the cluster');
is(sql($n3, "SELECT state FROM pg_cluster.status"), 'leader', 'n3 is still the leader');

done_testing();
