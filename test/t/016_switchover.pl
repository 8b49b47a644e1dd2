# Planned switchover under a continuous write load: one SQL call hands the
# primary role to a standby; no acknowledged write is lost, writes resume
# on the target, and the old primary comes back as a standby of the target
# without pg_rewind.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use PgClusterTest;

my @nodes = create_cluster(data => 3);
my ($n1, $n2, $n3) = @nodes;
sql($n1, "CREATE TABLE ledger (id bigint PRIMARY KEY, at timestamptz)");
$n1->wait_for_catchup($_) for ($n2, $n3);

my $writer = start_writer(cluster_uri(@nodes), 120, 20);
wait_for($n1, "SELECT count(*) >= 20 FROM ledger");

# called on n3, a third node: forwarded to the leader n1
my $t0 = time;
my $new = sql($n3, "SELECT pg_cluster.switchover('n2')");
my $took = time - $t0;
is($new, 'n2', 'switchover returns the new primary');
note sprintf("switchover command took %.3f s", $took);
is(sql($n2, "SELECT pg_is_in_recovery()"), 'f', 'n2 is a primary');
is(sql($n2, "SELECT state FROM pg_cluster.status"), 'leader', 'and the leader, with its lease');
my $rows = sql($n2, "SELECT count(*) FROM ledger");
wait_for($n2, "SELECT count(*) >= $rows + 10 FROM ledger");
pass('writes resume on n2');

# the old primary shut down cleanly, ready to restart as a standby of n2
ok(-f $n1->data_dir . '/standby.signal', 'n1 has standby.signal');
like(slurp_file($n1->data_dir . '/pg_cluster.rejoin'), qr/leader=n2\nconninfo=.*\nrewind=no\n/,
	'n1 left the rejoin marker: follow n2, no rewind');
$n1->{_pid} = undef;
$n1->start;
wait_for($n1, "SELECT status = 'streaming' AND sender_port = " . $n2->port
	  . " FROM pg_stat_wal_receiver");
pass('the restarted n1 streams from n2');
wait_for($n3, "SELECT sender_port = " . $n2->port . " FROM pg_stat_wal_receiver");
pass('n3 streams from n2');
wait_for($n1, "SELECT state = 'streaming' FROM pg_cluster.status");
pass('n1 is in state streaming (no rewind needed)');

stop_writer($writer);
my ($acked, $lines) = writer_log($writer);
my $acked_list = join(',', @$acked);
$n2->wait_for_catchup($n1);
is(sql($n2, "SELECT count(*) FROM ledger WHERE id = ANY('{$acked_list}'::bigint[])"),
	scalar(@$acked), scalar(@$acked) . ' acknowledged writes, all on the new primary');
is(sql($n1, "SELECT count(*) FROM ledger WHERE id = ANY('{$acked_list}'::bigint[])"),
	scalar(@$acked), 'and on the old primary, now its standby');

# the write gap: last acknowledged write before, first after
my ($gap, $prev) = (0, undef);
foreach my $l (grep { $_->{status} eq 'ok' } @$lines)
{
	$gap = $l->{done} - $prev if defined $prev && $l->{done} - $prev > $gap;
	$prev = $l->{done};
}
note sprintf("longest gap between acknowledged writes: %.3f s", $gap);

# every step is an event: on the target in its view, on the old primary in
# its log (its events went with the restart)
is(sql($n2, "SELECT string_agg(kind, ',' ORDER BY seq) FROM pg_cluster.events WHERE kind IN ('handover_accepted', 'election_started', 'elected', 'promotion', 'handover_done')"),
	'handover_accepted,election_started,elected,promotion,handover_done',
	'n2: handover accepted, elected, promoted');
my $n1_log = slurp_file($n1->logfile);
like($n1_log, qr/switchover_started.*switchover_handover.*switchover_accepted.*demoting.*shutdown/s,
	'n1 logged each step of its demotion');
done_testing();
