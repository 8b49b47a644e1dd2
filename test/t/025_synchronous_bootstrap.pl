# Synchronous mode right after the bootstrap (docs/protocol.md §5, §9):
# commits the bootstrap primary acknowledged in term 0, before any standby
# was waited for, survive the loss of that primary right after it won the
# first election, before its synchronous standby caught up.  The bootstrap
# primary records "only I may be promoted" before it acknowledges anything,
# and the majority that elects it stores that record, so the standby that
# lacks the commits is never promoted.  In strict mode the first leader
# widens that record only once its standby streams; commits wait meanwhile.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgClusterTest;

my %settings = ('pg_cluster.synchronous_mode' => 'quorum');
my $n1 = PostgreSQL::Test::Cluster->new('n1');
my $n2 = PostgreSQL::Test::Cluster->new('n2');
my $w1 = PostgreSQL::Test::Cluster->new('w1');
my $peers = join(',', map { $_->name . '=127.0.0.1:' . $_->port } ($n1, $n2, $w1));

# n1 alone: bootstrapping (term 0); its first commit waits for the record
$n1->init(allows_streaming => 1);
$n1->append_conf('postgresql.conf', cluster_conf($n1, $peers, %settings));
$n1->start;
$n1->safe_psql('postgres', 'CREATE EXTENSION pg_cluster');
add_wait_function($n1);
is(sql($n1, "SELECT state || ' ' || term || ' ' || sync_record FROM pg_cluster.status"),
	'bootstrapping 0 version 0.1: n1',
	'the bootstrap primary recorded itself as the only eligible node before its first commit');
like(sql($n1, "SELECT detail FROM pg_cluster.events WHERE kind = 'sync_change'"),
	qr/only this node may be promoted/, 'and said so in the events');

# no election until everyone is there and the standby's WAL receiver is
# frozen: the commits below reach no standby
sql($n1, "SELECT pg_cluster.pause()");
$n1->backup('base');
$n2->init_from_backup($n1, 'base', has_streaming => 1);
$n2->append_conf('postgresql.conf',
	"port = " . $n2->port . "\npg_cluster.node_name = 'n2'\ncluster_name = 'n2'\n");
$n2->start;
start_witness($w1, $peers, %settings);
wait_for($_, "SELECT paused AND (SELECT count(*) = 3 FROM pg_cluster.nodes WHERE reachable) FROM pg_cluster.status")
  for ($n1, $n2, $w1);
wait_for($n1, "SELECT count(*) = 1 FROM pg_stat_replication WHERE state = 'streaming'");
my $walrcv = sql($n2, "SELECT pid FROM pg_stat_wal_receiver");
kill 'STOP', $walrcv;

sql($n1, "CREATE TABLE ledger (id int PRIMARY KEY)");
sql($n1, "INSERT INTO ledger SELECT generate_series(1, 100)");
is(sql($n1, "SELECT term FROM pg_cluster.status"), '0', '100 rows acknowledged in term 0, on n1 only');
wait_for($_, "SELECT sync_record = 'version 0.1: n1' FROM pg_cluster.status") for ($n2, $w1);
pass('the peers hold the bootstrap record');

# the first election: n1 wins term 1; its synchronous standby n2 cannot
# catch up (frozen), so n1 is not ready and only n1 may be promoted
sql($n1, "SELECT pg_cluster.resume()");
wait_for($n1, "SELECT term = 1 AND state = 'leader' FROM pg_cluster.status");
wait_for($w1, "SELECT leader = 'n1' FROM pg_cluster.status");
is(sql($n1, "SELECT sync_record FROM pg_cluster.status"), 'version 0.1: n1',
	'n1 leads term 1; its standby not caught up, the bootstrap record stands');

# n1 is lost right after the election; n2 streams again, with nothing to get
crash_instance($n1);
kill 'CONT', $walrcv;
wait_for($n2, "SELECT clock_timestamp() - last_leader_contact > interval '3 s' FROM pg_cluster.status");
is(sql($n2, "SELECT pg_is_in_recovery()"), 't', 'n2, which lacks the bootstrap commits, was not promoted');
is(sql($n2, "SELECT why_not_eligible FROM pg_cluster.nodes WHERE node_name = 'n2'"),
	'it may lack acknowledged commits: the synchronous record does not list it',
	'n2 knows why');
is(sql($w1, "SELECT count(*) FROM pg_cluster.events WHERE kind = 'voted' AND node_name = 'n2'"), '0',
	'the witness voted for nobody');

# n1 returns, leads term 1 again; n2 catches up and becomes eligible
$n1->start;
wait_for($n1, "SELECT state = 'leader' FROM pg_cluster.status");
wait_for($n1, "SELECT sync_record LIKE 'version 1.%: every data node' FROM pg_cluster.status");
pass('n2 caught up: every data node eligible, in a record of term ' . sql($n1, "SELECT term FROM pg_cluster.status"));
$n1->wait_for_catchup($n2);
is(sql($n2, "SELECT count(*) FROM ledger"), '100', 'n2 holds the 100 bootstrap rows');

# strict mode: the first leader widens the bootstrap record only once its
# standby streams and holds everything; meanwhile commits wait
$_->stop('immediate') for ($n1, $n2, $w1);
%settings = ('pg_cluster.synchronous_mode' => 'strict');
my $s1 = PostgreSQL::Test::Cluster->new('s1');
my $s2 = PostgreSQL::Test::Cluster->new('s2');
my $sw = PostgreSQL::Test::Cluster->new('sw');
$peers = join(',', map { $_->name . '=127.0.0.1:' . $_->port } ($s1, $s2, $sw));
$s1->init(allows_streaming => 1);
$s1->append_conf('postgresql.conf', cluster_conf($s1, $peers, %settings));
$s1->start;
$s1->safe_psql('postgres', 'CREATE EXTENSION pg_cluster');
add_wait_function($s1);
sql($s1, "CREATE TABLE ledger (id int PRIMARY KEY)");
sql($s1, "INSERT INTO ledger SELECT generate_series(1, 100)");
$s1->backup('base');
$s2->init_from_backup($s1, 'base', has_streaming => 1);
$s2->append_conf('postgresql.conf',
	"port = " . $s2->port . "\npg_cluster.node_name = 's2'\ncluster_name = 's2'\n");
sql($s1, "INSERT INTO ledger SELECT generate_series(101, 200)");
start_witness($sw, $peers, %settings);
wait_for($s1, "SELECT term = 1 AND state = 'leader' FROM pg_cluster.status");
wait_for($s1, "SELECT sync_state LIKE 'strict: waiting for 1 standbys%' FROM pg_cluster.status");
is(sql($s1, "SELECT sync_record FROM pg_cluster.status"), 'version 0.1: s1',
	'strict, no standby streaming: the first leader keeps the bootstrap record');
my $h = IPC::Run::start(
	[ 'psql', '-XAtq', '-d', $s1->connstr('postgres'), '-c', "INSERT INTO ledger VALUES (201)" ],
	'>', \my $h_out, '2>', \my $h_err);
wait_for($s1, "SELECT count(*) = 1 FROM pg_stat_activity WHERE query LIKE 'INSERT INTO ledger VALUES (201)%' AND wait_event_type = 'Extension'");
pass('and a commit waits');
$s2->start;
ok($h->finish, 'the commit completes once the standby streams') or diag("psql: $h_err");
wait_for($s1, "SELECT sync_record LIKE 'version 1.%: every data node' FROM pg_cluster.status");
$s1->wait_for_catchup($s2);
is(sql($s2, "SELECT count(*) FROM ledger"), '201', 'the standby holds every acknowledged row');
done_testing();
