# Five switchovers back and forth under a write load, with every node run
# by pg_cluster_ctl: each old primary comes back as a standby of the new
# one by itself, without pg_rewind, and the ledger of acknowledged writes
# is complete on the final primary.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use PgClusterTest;

my @nodes = create_cluster(data => 3, supervised => 1);
my ($n1, $n2, $n3) = @nodes;
my %by_name = map { $_->name => $_ } @nodes;
sql($n1, "CREATE TABLE ledger (id bigint PRIMARY KEY, at timestamptz)");
$n1->wait_for_catchup($_) for ($n2, $n3);

my $writer = start_writer(cluster_uri(@nodes), 300, 20);
wait_for($n1, "SELECT count(*) >= 10 FROM ledger");

my @plan = (['n2', $n3], ['n1', $n2], ['n2', $n1], ['n1', $n3], ['n2', $n2]);
my $term = 1;
foreach my $step (@plan)
{
	my ($target, $caller) = @$step;
	my ($old) = grep { sql($_, "SELECT pg_is_in_recovery()") eq 'f' } @nodes;
	my $t0 = time;
	my $new = sql($caller, "SELECT pg_cluster.switchover('$target')");
	my $returned = time;
	is($new, $target, "switchover " . $old->name . " -> $target called on " . $caller->name);
	my $t = $by_name{$target};
	# called on the old primary, the call returns when the target accepted
	# (that session ends with the server); elsewhere when the target leads
	if ($caller == $old)
	{
		wait_for($t, "SELECT state = 'leader' FROM pg_cluster.status");
	}
	is(sql($t, "SELECT state FROM pg_cluster.status"), 'leader',
		"$target leads");
	$term++;
	is(sql($t, "SELECT term FROM pg_cluster.status"), $term, "in term $term");

	# the old primary restarts as a standby of the target, by itself
	my $at = wait_for($old, "SELECT state = 'streaming' FROM pg_cluster.status");
	wait_for($old, "SELECT sender_port = " . $t->port . " FROM pg_stat_wal_receiver");
	note sprintf("%s -> %s: command %.3f s; old primary streaming %.3f s after it returned",
		$old->name, $target, $returned - $t0, $at - $returned);
	like(sql($old, "SELECT detail FROM pg_cluster.events WHERE kind = 'rejoined'"),
		qr/leader=$target.*rewind=no/, $old->name . " rejoined without pg_rewind");
	my $rows = sql($t, "SELECT count(*) FROM ledger");
	wait_for($t, "SELECT count(*) >= $rows + 5 FROM ledger");
}

stop_writer($writer);
my ($acked, $lines) = writer_log($writer);
my $final = $n2;
my $acked_list = join(',', @$acked);
is(sql($final, "SELECT count(*) FROM ledger WHERE id = ANY('{$acked_list}'::bigint[])"),
	scalar(@$acked), scalar(@$acked) . ' acknowledged writes, all on the final primary');
my $failed = grep { $_->{status} eq 'fail' } @$lines;
note "$failed failed attempts (not acknowledged) during the five switchovers";
foreach my $node ($n1, $n3)
{
	$final->wait_for_catchup($node);
	is(sql($node, "SELECT count(*) FROM ledger"), sql($final, "SELECT count(*) FROM ledger"),
		$node->name . ' has every row of the final primary');
}
done_testing();
