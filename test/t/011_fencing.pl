# Lease fencing (I1): a primary that loses its majority stops acknowledging
# commits; a primary that hangs longer than failover_timeout and wakes up
# after a new leader exists cannot commit what it had in flight; a node that
# was cut off and comes back does not depose the healthy leader (I4).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use PgClusterTest;

my @nodes = create_cluster(data => 3);
my ($n1, $n2, $n3) = @nodes;
sql($n1, "CREATE TABLE t (id int)");

# 1. the primary loses the majority (both standbys hang)
my $t_stop = time;
stop_process_group($_) for ($n2, $n3);
my $at = wait_for($n1, "SELECT fenced FROM pg_cluster.status");
note sprintf("n1 fenced %.3f s after losing its majority (lease %d ms)", $at - $t_stop, 800);
my ($ret, $out, $err) = $n1->psql('postgres', "INSERT INTO t VALUES (1)");
isnt($ret, 0, 'a primary without a majority refuses commits');
like($err, qr/holds no leader lease/, 'and says why');
like($err, qr/HINT/, 'with a hint');
is(sql($n1, "SELECT count(*) FROM t"), '0', 'reads keep working');
continue_process_group($_) for ($n2, $n3);
wait_for($n1, "SELECT NOT fenced FROM pg_cluster.status");
sql($n1, "INSERT INTO t VALUES (2)");
pass('with the majority back, writes resume');
is(sql($n1, "SELECT term FROM pg_cluster.status"), '1',
	'no election happened: the standbys that woke up did not depose the leader');
is(sql($n2, "SELECT leader FROM pg_cluster.status"), 'n1', 'n2 follows n1');

# 2. a node cut off longer than failover_timeout comes back: no disruption
stop_process_group($n3);
wait_for($n1, "SELECT NOT reachable FROM pg_cluster.nodes WHERE node_name = 'n3'");
wait_for($n1, "SELECT clock_timestamp() - last_seen > interval '2.5 s' FROM pg_cluster.nodes WHERE node_name = 'n3'");
continue_process_group($n3);
wait_for($n3, "SELECT leader = 'n1' AND term = 1 FROM pg_cluster.status");
pass('the returning n3 follows the healthy leader');
is(sql($n1, "SELECT term || '/' || state FROM pg_cluster.status"), '1/leader',
	'the leader was not deposed');

# 3. the primary hangs (SIGSTOP) with a write transaction open; a new
#    leader is elected; when it wakes, its commit is refused
my $session = $n1->background_psql('postgres');
$session->query_safe("BEGIN");
$session->query_safe("INSERT INTO t VALUES (3)");
$t_stop = time;
stop_process_group($n1);
my $winner = wait_for_any_leader($n2, $n3);
wait_for($winner, "SELECT state = 'leader' FROM pg_cluster.status");
note sprintf("new leader %s %.3f s after n1 hung", $winner->name, time - $t_stop);
sql($winner, "INSERT INTO t VALUES (4)");
my $log_offset = -s $n1->logfile;
continue_process_group($n1);
# psql runs with ON_ERROR_STOP: a refused COMMIT ends it
my $committed = eval { $session->query_safe("COMMIT"); 1 };
ok(!$committed, 'the woken primary does not acknowledge its open transaction');
$n1->wait_for_log(qr/is fenced|closing the connection instead of acknowledging/, $log_offset);
pass('the fence refused it');
eval { $session->quit };
is(sql($winner, "SELECT count(*) FROM t WHERE id = 3"), '0',
	'the refused row is nowhere in the cluster');
wait_for($n1, "SELECT fenced AND leader = '" . $winner->name . "' FROM pg_cluster.status");
pass('the old primary knows the new leader and stays fenced');
ok(sql($n1, "SELECT count(*) > 0 FROM pg_cluster.events WHERE kind = 'stall'") eq 't',
	'its worker noticed the stall');

done_testing();
