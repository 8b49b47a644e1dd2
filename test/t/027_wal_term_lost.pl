# Every node loses track of the term of its WAL (docs/protocol.md §3.3):
# the cluster runs for a while without pg_cluster loaded, long enough for
# the WAL segments after the last term marker each node knows of to be
# removed.  Once pg_cluster is loaded again:
#  - the primary, which resumes its term, cannot read its WAL from where it
#    knew the term; it marks its term anyway (it is its WAL's only writer)
#    and gets its lease: writes go on;
#  - the standbys cannot either; they learn the term from the leader's
#    heartbeats once they stream past its marker;
#  - so a failover works afterwards: the primary dies, a standby is elected
#    and has every acknowledged row.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgClusterTest;

my @nodes = create_cluster(data => 3);
my ($n1, $n2, $n3) = @nodes;
sql($n1, "CREATE TABLE ledger (id int PRIMARY KEY)");
sql($n1, "INSERT INTO ledger VALUES (1)");
$n1->wait_for_catchup($_) for ($n2, $n3);
my $term = sql($n1, "SELECT term FROM pg_cluster.status");
is(sql($n1, "SELECT wal_term FROM pg_cluster.status"), $term, "n1 marked its WAL with term $term");
wait_for($_, "SELECT wal_term = $term FROM pg_cluster.status") for ($n2, $n3);
my $known_segment = sql($n1, "SELECT pg_walfile_name(pg_current_wal_lsn())");

# set_library restarts every node, standbys last, with or without pg_cluster
sub set_library
{
	my ($library) = @_;
	$_->stop for ($n2, $n3, $n1);
	$_->append_conf('postgresql.conf', "shared_preload_libraries = '$library'")
	  for @nodes;
	$_->start for ($n1, $n2, $n3);
}

set_library('');
is(sql($n1, "SHOW shared_preload_libraries"), '', 'the cluster runs without pg_cluster');

# more WAL than wal_keep_size (128MB, 8 segments), checkpoints on the
# primary and restartpoints on the standbys: the segments go
foreach my $round (1 .. 2)
{
	foreach my $i (1 .. 10)
	{
		sql($n1, "INSERT INTO ledger VALUES (" . (100 * $round + $i) . ")");
		sql($n1, "SELECT pg_switch_wal()");
	}
	sql($n1, "CHECKPOINT");
	$n1->wait_for_catchup($_) for ($n2, $n3);
	sql($_, "CHECKPOINT") for ($n2, $n3);
}
foreach my $node (@nodes)
{
	is(sql($node, "SELECT count(*) FROM pg_ls_waldir() WHERE name = '$known_segment'"), '0',
		$node->name . ": the segment where the term was last known ($known_segment) is gone");
}

set_library('pg_cluster');
wait_for($n1,
	"SELECT count(*) > 0 FROM pg_cluster.events WHERE kind = 'wal_term_unknown'");
pass('n1 reports that it cannot read its WAL from where it knew the term');
wait_for_leader('n1', @nodes);
is(sql($n1, "SELECT term = $term AND wal_term = term FROM pg_cluster.status"), 't',
	"n1 leads term $term again and marked its WAL with it");
sql($n1, "INSERT INTO ledger VALUES (1000)");
pass('n1 accepts writes');

foreach my $node ($n2, $n3)
{
	wait_for($node,
		"SELECT count(*) > 0 FROM pg_cluster.events WHERE kind = 'wal_term_known'"
		  . " AND detail LIKE '%told by the leader%'");
	is(sql($node, "SELECT wal_term FROM pg_cluster.status"), $term,
		$node->name . ": learned the term of its WAL from the leader");
}

# a failover now elects a standby, which has every row
my $lsn = sql($n1, "SELECT pg_current_wal_flush_lsn()");
$n1->wait_for_catchup($_) for ($n2, $n3);
crash_instance($n1);
my $new_leader = wait_for_any_leader($n2, $n3);
ok(defined $new_leader, 'a standby is elected after the primary died');
is(sql($new_leader, "SELECT count(*) FROM ledger WHERE id IN (1, 1000)"), '2',
	$new_leader->name . ' has the rows acknowledged before and after the term was relearned');
sql($new_leader, "INSERT INTO ledger VALUES (2000)");
pass($new_leader->name . ' accepts writes');

done_testing();
