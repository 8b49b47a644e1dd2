# Synchronous mode with 2 data nodes and a witness: when the standby is
# lost, quorum mode records the primary as the only eligible node (with a
# majority) before it stops waiting for the standby, grows back when the
# standby returns; a stale standby is never promoted; strict mode waits.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgClusterTest;

my @nodes = create_cluster(data => 2, witnesses => 1,
	settings => { 'pg_cluster.synchronous_mode' => 'quorum' });
my ($n1, $n2, $w1) = @nodes;

wait_for($n1, "SELECT synchronous_standby_names = 'ANY 1 (\"n2\")' AND sync_state LIKE 'commits wait%' FROM pg_cluster.status");
pass('2 data nodes + witness: every commit waits for n2');
sql($n1, "CREATE TABLE ledger (id int PRIMARY KEY)");
sql($n1, "INSERT INTO ledger SELECT generate_series(1, 100)");

# the standby is lost: the record shrinks first (n1 and the witness store
# it), then the names; writes go on
$n2->stop('immediate');
wait_for($n1, "SELECT sync_record LIKE '%: n1' AND synchronous_standby_names IS NULL FROM pg_cluster.status");
pass('n2 lost: only n1 may be promoted, commits no longer wait for n2');
like(sql($w1, "SELECT sync_record FROM pg_cluster.status"), qr/: n1$/, 'the witness stored the record');
sql($n1, "INSERT INTO ledger SELECT generate_series(101, 200)");
pass('writes continue in quorum mode');
ok(sql($n1, "SELECT max(seq) FILTER (WHERE kind = 'sync_change' AND detail LIKE 'only n1 %') < max(seq) FILTER (WHERE kind = 'sync_standby_names' AND detail = 'synchronous_standby_names = ' || repeat(chr(39), 2)) FROM pg_cluster.events") eq 't',
	'the record changed before the names');

# n2 returns: commits wait for it again, and once it caught up it is
# eligible again
$n2->start;
wait_for($n1, "SELECT sync_record LIKE '%: every data node' AND synchronous_standby_names = 'ANY 1 (\"n2\")' FROM pg_cluster.status");
pass('n2 back and caught up: every data node eligible again, commits wait for n2');
is(sql($n1, "SELECT count(*) FROM ledger"), '200', 'nothing lost');

# the standby dies, the primary writes on, then the primary dies: the stale
# standby must not be promoted
$n2->stop('immediate');
wait_for($n1, "SELECT sync_record LIKE '%: n1' FROM pg_cluster.status");
sql($n1, "INSERT INTO ledger SELECT generate_series(201, 300)");
crash_instance($n1);
$n2->start;
wait_for($n2, "SELECT sync_record LIKE '%: n1' FROM pg_cluster.status");
is(sql($n2, "SELECT why_not_eligible FROM pg_cluster.nodes WHERE node_name = 'n2'"),
	'it may lack acknowledged commits: the synchronous record does not list it',
	'n2 knows it may lack commits');
# three failover timeouts without the leader: a healthy cluster would have
# elected by now
wait_for($n2, "SELECT clock_timestamp() - last_leader_contact > interval '3 s' FROM pg_cluster.status");
is(sql($n2, "SELECT pg_is_in_recovery()"), 't', 'the stale standby n2 was not promoted');
is(sql($w1, "SELECT count(*) FROM pg_cluster.events WHERE kind = 'voted' AND node_name = 'n2'"), '0',
	'the witness voted for nobody');

# n1 comes back and leads again, with every acknowledged row
$n1->start;
wait_for($n1, "SELECT state = 'leader' FROM pg_cluster.status");
is(sql($n1, "SELECT count(*) FROM ledger"), '300', 'n1 leads again with all 300 rows');
wait_for($n1, "SELECT sync_record LIKE '%: every data node' FROM pg_cluster.status");
pass('n2 eligible again once it caught up');

# strict: with the standby gone, commits wait instead
$_->append_conf('postgresql.conf', "pg_cluster.synchronous_mode = strict\n") for @nodes;
$_->reload for @nodes;
wait_for($n1, "SELECT synchronous_mode = 'strict' FROM pg_cluster.status");
$n2->stop('immediate');
my $h = IPC::Run::start(
	[ 'psql', '-XAtq', '-d', $n1->connstr('postgres'), '-c', "INSERT INTO ledger VALUES (301)" ],
	'>', \my $h_out, '2>', \my $h_err);
wait_for($n1, "SELECT count(*) = 1 FROM pg_stat_activity WHERE wait_event = 'SyncRep'");
pass('strict: with the standby gone, a commit waits for it');
like(sql($n1, "SELECT sync_record FROM pg_cluster.status"), qr/every data node/,
	'strict never restricts the record');
$n2->start;
ok($h->finish, 'and completes once the standby is back') or diag("psql: $h_err");
is(sql($n2, "SELECT count(*) FROM ledger WHERE id = 301"), '1', 'the standby has it');
done_testing();
