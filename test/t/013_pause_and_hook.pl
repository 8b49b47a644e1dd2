# Maintenance mode (cluster-wide, durable) stops automatic failover; the
# role-change hook runs after promotion and demotion with its exit status
# in the events.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use PgClusterTest;

my $hook_log = PostgreSQL::Test::Utils::tempdir() . '/hook.log';
my @nodes = create_cluster(data => 3,
	settings => { 'pg_cluster.on_role_change_command' => "echo %n %r %t >> $hook_log" });
my ($n1, $n2, $n3) = @nodes;

# the first leader ran the hook
wait_for($n1, "SELECT count(*) > 0 FROM pg_cluster.events WHERE kind = 'hook_finished'");
like(slurp_file($hook_log), qr/^n1 primary 1$/m, 'the hook ran on the first leader');
like(sql($n1, "SELECT detail FROM pg_cluster.events WHERE kind = 'hook_finished'"),
	qr/exited with status 0/, 'its exit status is an event');

# pause on a standby: it spreads to every node and survives a restart
is(sql($n3, "SELECT pg_cluster.pause()"), 't', 'pause() on a standby');
wait_for($_, "SELECT paused FROM pg_cluster.status") for @nodes;
pass('every node is paused');
$n2->restart;
wait_for($n2, "SELECT paused FROM pg_cluster.status");
pass('the pause survives a restart');

# while paused, the death of the primary does not fail over
crash_instance($n1);
my $t_kill = time;
wait_for($n2, "SELECT NOT reachable FROM pg_cluster.nodes WHERE node_name = 'n1'");
# a bounded observation window of three failover timeouts
wait_for($n2, "SELECT clock_timestamp() > to_timestamp($t_kill) + interval '3 s'");
is(sql($_, "SELECT pg_is_in_recovery()"), 't', $_->name . ' was not promoted while paused')
  for ($n2, $n3);

# resume: the failover happens
sql($n2, "SELECT pg_cluster.resume()");
my $t_resume = time;
wait_for($n3, "SELECT NOT paused FROM pg_cluster.status");
my $winner = wait_for_any_leader($n2, $n3);
note sprintf("%s leader %.3f s after resume()", $winner->name, time - $t_resume);
pass('after resume() a standby took over');
wait_for($winner, "SELECT count(*) > 0 FROM pg_cluster.events WHERE kind = 'hook_finished'");
my $term = sql($winner, "SELECT term FROM pg_cluster.status");
like(slurp_file($hook_log), qr/^${\ $winner->name } primary $term$/m,
	'the hook ran on the new primary with its term');

# the old primary restarts, learns it lost, and runs the hook as demoted
$n1->start;
wait_for($n1, "SELECT count(*) > 0 FROM pg_cluster.events WHERE kind = 'hook_finished' AND detail LIKE '%demoted%'");
like(slurp_file($hook_log), qr/^n1 demoted \d+$/m, 'the hook ran as demoted on the old primary');

# a failing hook reports its status; a hanging one is killed (bounded)
$winner->append_conf('postgresql.conf', "pg_cluster.on_role_change_command = 'exit 3'\n");
$winner->reload;
wait_for($winner, "SELECT current_setting('pg_cluster.on_role_change_command') = 'exit 3'");
sql($winner,
	"SELECT pg_cluster.heartbeat('n1', (SELECT system_identifier FROM pg_cluster.status), 'standby', $term + 5, NULL, 1, '0/0', now(), 3, false, 0, false, 0, false, '', 0, 0, '0/0')");
wait_for($winner, "SELECT count(*) > 0 FROM pg_cluster.events WHERE kind = 'hook_finished' AND detail LIKE '%exited with status 3%'");
pass('a failing hook is reported with its exit status');

done_testing();
