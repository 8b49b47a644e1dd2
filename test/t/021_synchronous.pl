# Synchronous mode: the leader manages synchronous_standby_names and the
# synchronous record; a cancelled synchronous wait is not acknowledged.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgClusterTest;

my @nodes = create_cluster(data => 3,
	settings => { 'pg_cluster.synchronous_mode' => 'quorum' });
my ($n1, $n2, $n3) = @nodes;

wait_for($n1, "SELECT synchronous_standby_names = 'ANY 1 (\"n2\", \"n3\")' AND sync_state LIKE 'commits wait%' FROM pg_cluster.status");
pass('quorum with 3 data nodes: every commit waits for ANY 1 of n2, n3');
is(sql($n1, "SHOW synchronous_standby_names"), 'ANY 1 ("n2", "n3")', 'in force on n1');
is(sql($n1, "SELECT string_agg(node_name || ':' || synchronous || ':' || eligible, ',' ORDER BY node_name) FROM pg_cluster.nodes WHERE node_name <> 'n1'"),
	'n2:true:true,n3:true:true', 'the nodes view shows both standbys synchronous and eligible');
sql($n1, "CREATE TABLE ledger (id int PRIMARY KEY)");
sql($n1, "INSERT INTO ledger SELECT generate_series(1, 100)");
is(sql($n1, "SELECT sync_state FROM pg_stat_replication ORDER BY application_name"), "quorum\nquorum",
	'PostgreSQL counts both standbys in the quorum');

# one standby gone: ANY 1 is still met by the other, writes go on
$n3->stop('fast');
sql($n1, "INSERT INTO ledger VALUES (101)");
pass('with n3 down, a commit is acknowledged by n2');
like(sql($n1, "SELECT sync_record FROM pg_cluster.status"), qr/^version 1\.\d+: every data node$/,
	'every data node stays eligible (each commit is on a majority)');

# the cancelled-wait hole: no standby acknowledges (n2's WAL receiver is
# frozen), a waiting commit is cancelled; PostgreSQL would report success
my $walrcv = sql($n2, "SELECT pid FROM pg_stat_wal_receiver");
kill 'STOP', $walrcv;
my $writer = IPC::Run::start(
	[ 'psql', '-XAtq', '-d', $n1->connstr('postgres'), '-c', "INSERT INTO ledger VALUES (102)" ],
	'>', \my $w_out, '2>', \my $w_err);
wait_for($n1, "SELECT count(*) = 1 FROM pg_stat_activity WHERE wait_event = 'SyncRep'");
sql($n1, "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE wait_event = 'SyncRep'");
ok(!$writer->finish, 'the cancelled commit is not reported as a success');
like($w_err, qr/canceling wait for synchronous replication|connection/, 'the client sees the cancellation: ' . ($w_err =~ s/\n/ /gr));
like(sql($n1, "SELECT detail FROM pg_cluster.events WHERE kind = 'commit_not_replicated'"),
	qr/commit ending at [0-9A-F]+\/[0-9A-F]+ not acknowledged/, 'and it is an event with its LSN');
is(sql($n1, "SELECT commits_not_replicated FROM pg_cluster.status"), '1', 'counted in pg_cluster.status');
kill 'CONT', $walrcv;
$n3->start;
wait_for($n1, "SELECT count(*) = 2 FROM pg_stat_replication WHERE state = 'streaming'");

# strict never lowers the requirement; quorum does not need to here
done_testing();
