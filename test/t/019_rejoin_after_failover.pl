# Rejoin without human action, with every node run by pg_cluster_ctl:
#  1. after a failover (kill -9 of the primary), the old primary restarted
#     under pg_cluster_ctl is rewound by pg_rewind and streams from the new
#     primary, keeping its own configuration;
#  2. a crash in the middle of a switchover (the target dies while it waits
#     for the old primary's last WAL) leaves a working primary and loses no
#     acknowledged write.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use PgClusterTest;

my @nodes = create_cluster(data => 3, supervised => 1);
my ($n1, $n2, $n3) = @nodes;
sql($n1, "CREATE TABLE ledger (id bigint PRIMARY KEY, at timestamptz)");
sql($n1, "INSERT INTO ledger SELECT g, now() FROM generate_series(1000001, 1001000) g");
$n1->wait_for_catchup($_) for ($n2, $n3);

# 1. failover, then the old primary comes back by itself
crash_instance($n1);
my ($leader) = wait_for_any_leader($n2, $n3);
my ($other) = grep { $_ != $leader } ($n2, $n3);
note "new leader: " . $leader->name;
my ($exited, $status);
for (1 .. 1000)
{
	($exited, $status) = supervisor_exited($n1);
	last if $exited;
	select(undef, undef, undef, 0.01);
}
is($status, 1, 'pg_cluster_ctl of the crashed primary exits with status 1');
sql($leader, "INSERT INTO ledger SELECT g, now() FROM generate_series(1001001, 1002000) g");

my $t0 = time;
start_supervised($n1);
my $at = wait_for($n1, "SELECT state = 'streaming' FROM pg_cluster.status");
note sprintf("old primary streaming %.3f s after its restart under pg_cluster_ctl", $at - $t0);
like(sql($n1, "SELECT detail FROM pg_cluster.events WHERE kind = 'rejoined'"),
	qr/leader=${\ $leader->name }.*rewind=yes/, 'n1 rejoined after pg_rewind');
is(sql($n1, "SELECT sender_port FROM pg_stat_wal_receiver"), $leader->port,
	'n1 streams from the new leader');
is(sql($n1, "SELECT timeline FROM pg_cluster.status"), '2', 'on timeline 2');
is(sql($n1, "SHOW pg_cluster.node_name") . ' ' . sql($n1, "SHOW port"),
	'n1 ' . $n1->port, 'with its own configuration');
wait_for($n1, "SELECT count(*) = 2000 FROM ledger");
pass('n1 has the rows written on the new leader');
my $log = slurp_file($n1->logfile);
like($log, qr/pg_cluster: demoting: old primary of timeline 1/, 'n1 logged why it demoted itself');
like($log, qr/pg_rewind/, 'pg_cluster_ctl logged the rewind');

# 2. the target of a switchover dies while it waits for the old primary's
# last WAL (its startup process is frozen, so it cannot replay it)
my $writer = start_writer(cluster_uri(@nodes), 120, 20);
my $rows = sql($leader, "SELECT count(*) FROM ledger");
wait_for($leader, "SELECT count(*) >= $rows + 10 FROM ledger");
my $startup = sql($n1, "SELECT pid FROM pg_stat_activity WHERE backend_type = 'startup'");
kill 'STOP', $startup;
my $call = IPC::Run::start(
	[ 'psql', '-XAtq', '-d', $other->connstr('postgres'),
	  '-c', "SELECT pg_cluster.switchover('n1', '20s')" ],
	'>', \my $call_out, '2>', \my $call_err);
wait_for($n1, "SELECT state = 'catching_up' FROM pg_cluster.status");
pass('the target waits for the old primary\'s last WAL');
crash_instance($n1);
pass('and is killed');

my $survivor = wait_for_any_leader($leader, $other);
note "leader after the crash: " . $survivor->name;
$rows = sql($survivor, "SELECT count(*) FROM ledger");
wait_for($survivor, "SELECT count(*) >= $rows + 10 FROM ledger");
pass('writes resume on ' . $survivor->name);
$call->finish;
isnt($call_out, 'n1', 'the switchover call did not report success');
note "switchover call: $call_err";

stop_writer($writer);
my ($acked) = writer_log($writer);
my $acked_list = join(',', @$acked);
is(sql($survivor, "SELECT count(*) FROM ledger WHERE id >= 0 AND id < 1000000 AND id = ANY('{$acked_list}'::bigint[])"),
	scalar(@$acked), scalar(@$acked) . ' acknowledged writes, all on ' . $survivor->name);

# the dead target comes back and follows
start_supervised($n1);
wait_for($n1, "SELECT state = 'streaming' AND leader = '" . $survivor->name . "' FROM pg_cluster.status");
pass('the old target rejoins and streams');
foreach my $node (grep { $_ != $survivor } @nodes)
{
	wait_for($node, "SELECT state = 'streaming' FROM pg_cluster.status");
}
pass('every standby streams');
done_testing();
