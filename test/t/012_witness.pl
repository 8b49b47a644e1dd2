# Two data nodes and a witness: the witness votes a standby into office when
# the primary dies, and refuses a stale standby (it remembers how far the
# leader's WAL went, also across its own restart).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use File::Path ();
use PgClusterTest;

my @nodes = create_cluster(data => 2, witnesses => 1,
	settings => { 'pg_cluster.max_lag_on_failover' => '64kB' });
my ($n1, $n2, $w1) = @nodes;

is(sql($w1, "SELECT role || '/' || state FROM pg_cluster.status"), 'witness/witness',
	'w1 is a witness');
sql($n1, "CREATE TABLE t (id int)");
sql($n1, "INSERT INTO t SELECT generate_series(1, 1000)");
$n1->wait_for_catchup($n2);

# the primary dies: n2 needs the witness's vote to win
my $t_kill = time;
crash_instance($n1);
my $at = wait_for($n2, "SELECT state = 'leader' FROM pg_cluster.status");
note sprintf("n2 leader %.3f s after the crash of n1", $at - $t_kill);
pass('with the witness the standby became leader');
like(sql($w1, "SELECT string_agg(detail, ' ') FROM pg_cluster.events WHERE kind = 'voted'"),
	qr/vote for "n2" in term 2/, 'the witness voted for n2');
is(sql($n2, "SELECT count(*) FROM t"), '1000', 'n2 has the data');
is(sql($w1, "SELECT leader FROM pg_cluster.status"), 'n2', 'the witness follows n2');
is(sql($w1, "SELECT count(*) FROM pg_cluster.events WHERE kind IN ('elected', 'promotion')"),
	'0', 'the witness never stands');

# n1 comes back: fenced, it cannot win against the new timeline
$n1->start;
wait_for($n1, "SELECT leader = 'n2' AND fenced FROM pg_cluster.status");
pass('the old primary rejoins fenced');

# now a stale standby: rebuild n1 as a standby of n2, stop it, let n2 write
# more than max_lag_on_failover, then n2 dies and n1 comes back: the
# witness must not vote for it
$n1->stop('immediate');
$n2->backup('b2');
File::Path::rmtree($n1->data_dir);
$n1->init_from_backup($n2, 'b2', has_streaming => 1);
$n1->append_conf('postgresql.conf', "pg_cluster.node_name = 'n1'\n");
my $n1b = $n1;
$n1b->start;
wait_for($n1b, "SELECT state = 'streaming' AND leader = 'n2' FROM pg_cluster.status");
pass('n1 rebuilt as a standby of n2');

$n1b->stop('fast');
sql($n2, "INSERT INTO t SELECT generate_series(1, 100000)");
my $n2_lsn = sql($n2, "SELECT pg_current_wal_flush_lsn()");
wait_for($w1, "SELECT lsn >= '$n2_lsn' FROM pg_cluster.nodes WHERE node_name = 'n2'");
crash_instance($n2);
$n1b->start;
wait_for($n1b, "SELECT count(*) > 0 FROM pg_cluster.events WHERE kind = 'election_failed'");
like(sql($n1b, "SELECT string_agg(detail, ' ') FROM pg_cluster.events WHERE kind = 'vote_refused'"),
	qr/behind the leader's last/, 'the witness refuses the stale standby');
is(sql($n1b, "SELECT pg_is_in_recovery()"), 't', 'the stale standby is not promoted');

# the witness restarts: it must not forget how far the leader got (kept in
# its pg_cluster.state), so it still refuses
# (n1b stands only within 3 failover timeouts of its last streaming, §4,
# and the restarted witness refuses every vote for one failover timeout,
# §6: n1b restarts once the witness accepts votes again)
$w1->restart;
wait_for($w1, "SELECT clock_timestamp() - worker_started_at > interval '1.5 s' FROM pg_cluster.status");
my $since = sql($n1b, "SELECT now()");
$n1b->restart;
wait_for($n1b, "SELECT count(*) > 0 FROM pg_cluster.events WHERE kind = 'vote_refused'"
	  . " AND detail LIKE '%from \"w1\"%behind the leader''s last%' AND event_time > '$since'");
pass('after its restart the witness still refuses the stale standby');
is(sql($n1b, "SELECT pg_is_in_recovery()"), 't', 'which is still not promoted');

done_testing();
