# Candidates are compared by the term of their WAL, not by their timeline
# (docs/protocol.md §3.3, issue 9 of model/README.md).  2 data nodes and a
# witness, asynchronous:
#  - n2 wins term 2 and is promoted to timeline 2 while nobody hears from
#    it any more (all its processes but the startup process are frozen),
#    then dies;
#  - n1, the old primary, still on timeline 1, is elected again in term 3
#    without a promotion and acknowledges a commit;
#  - n1 dies, n2 comes back: its timeline (2) is higher than n1's (1), but
#    its WAL is of an older term than n1's.  The witness must refuse it:
#    ordered by timeline, n2 would win without n1's commit.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgClusterTest;

my @nodes = create_cluster(data => 2, witnesses => 1);
my ($n1, $n2, $w1) = @nodes;
sql($n1, "CREATE TABLE ledger (id int PRIMARY KEY)");
sql($n1, "INSERT INTO ledger VALUES (1)");
$n1->wait_for_catchup($n2);
is(sql($n1, "SELECT wal_term FROM pg_cluster.status"), '1', 'the bootstrap leader marked term 1');
wait_for($n2, "SELECT wal_term = 1 FROM pg_cluster.status");

# n2's promotion waits (its startup process is frozen) while it wins term 2
my $startup = sql($n2, "SELECT pid FROM pg_stat_activity WHERE backend_type = 'startup'");
kill 'STOP', $startup;
stop_process_group($n1);
wait_for($n2, "SELECT term = 2 AND state = 'promoting' FROM pg_cluster.status");
wait_for($w1, "SELECT term = 2 AND leader = 'n2' FROM pg_cluster.status");
pass('n2 won term 2 with the witness\'s vote; its promotion waits');

# all of n2 but its startup process freezes: nobody hears from n2 any
# more, not even through its backends; then the promotion completes
# (timeline 2, no term marker: its worker is frozen) and n2 dies
# (nor its WAL receiver, which the end of recovery waits for; it talks to
# the frozen n1 only)
my $walrcv = sql($n2, "SELECT coalesce(max(pid), 0) FROM pg_stat_activity WHERE backend_type = 'walreceiver'");
my @n2_pids = grep { $_ != $startup && $_ != $walrcv } PgClusterTest::instance_pids($n2);
kill 'STOP', @n2_pids;
kill 'CONT', $startup;
my $history = $n2->data_dir . '/pg_wal/00000002.history';
# the startup process has ended (a zombie: its parent is frozen)
sub ended
{
	my ($pid) = @_;
	open(my $fh, '<', "/proc/$pid/stat") or return 1;
	my $stat = <$fh>;
	close $fh;
	return $stat =~ /^\d+ \(.*\) Z /;
}
for (my $i = 0; !(-f $history && ended($startup)); $i++)
{
	die "n2's promotion did not complete" if $i > 18000;
	select(undef, undef, undef, 0.01);
}
pass('n2 is promoted to timeline 2, unheard by anyone');
crash_instance($n2);

# n1, still on timeline 1, takes office again in term 3 without a promotion
continue_process_group($n1);
wait_for($n1, "SELECT term >= 3 AND state = 'leader' FROM pg_cluster.status");
my $term = sql($n1, "SELECT term FROM pg_cluster.status");
is(sql($n1, "SELECT timeline || ' ' || wal_term FROM pg_cluster.status"), "1 $term",
	"n1 leads term $term on timeline 1, its WAL marked with term $term");
sql($n1, "INSERT INTO ledger VALUES (2)");
my $lsn = sql($n1, "SELECT pg_current_wal_flush_lsn()");
wait_for($w1, "SELECT lsn >= '$lsn' FROM pg_cluster.nodes WHERE node_name = 'n1'");
pass("row 2 acknowledged on n1 in term $term; the witness heard how far n1 got");

# n1 dies; n2 comes back with a higher timeline and WAL of an older term
crash_instance($n1);
$n2->start;
wait_for($n2, "SELECT count(*) > 0 FROM pg_cluster.events WHERE kind = 'vote_refused'"
	  . " AND detail LIKE '%from \"w1\"%candidate WAL (term _, %) is more than max_lag_on_failover behind the leader''s last (term $term,%'");
pass('the witness refuses n2: its WAL is of an older term than the last leader\'s, ' . $term);
is(sql($n2, "SELECT state <> 'leader' FROM pg_cluster.status"), 't', 'n2 does not lead');
is(sql($n2, "SELECT timeline FROM pg_cluster.status"), '2', 'on timeline 2');
is(sql($w1, "SELECT count(*) FROM pg_cluster.events WHERE kind = 'voted' AND term > $term"), '0',
	'the witness voted for nobody after term ' . $term);

# n1 returns and leads again with every acknowledged row
$n1->start;
wait_for($n1, "SELECT state = 'leader' FROM pg_cluster.status");
is(sql($n1, "SELECT count(*) FROM ledger"), '2', 'n1 leads with both rows');
done_testing();
