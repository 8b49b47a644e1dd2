# The leader's worker hangs (SIGSTOP of the worker alone) while the rest of
# the instance runs: its backends go on answering heartbeats, but the worker
# no longer renews the lease.  The leader fences itself, and the replies of
# its backends must not count as contact with a leader (docs/protocol.md
# §3.1): the standbys elect one of them, which takes the writes.  When the
# worker wakes, it sees the new term and steps down.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use PgClusterTest;

my @nodes = create_cluster(data => 3);
my ($n1, $n2, $n3) = @nodes;
wait_for_leader('n1', @nodes);
sql($n1, "CREATE TABLE t (id int)");
sql($n1, "INSERT INTO t VALUES (1)");
$n1->wait_for_catchup($_) for ($n2, $n3);

my $worker = sql($n1, "SELECT worker_pid FROM pg_cluster.status");
# a test that dies must not leave the worker stopped
END { kill 'CONT', $worker if $worker; }

# A worker stopped while it holds one of pg_cluster's locks would stop the
# backends that answer heartbeats too (a hung instance, TAP 003 and 011):
# if a query that takes those locks does not answer, stop it again.
my $t_stop;
for my $attempt (1 .. 5)
{
	$t_stop = time;
	kill 'STOP', $worker or die "could not stop the worker: $!";
	my $timed_out = 0;
	$n1->psql('postgres', 'SELECT term FROM pg_cluster.status',
		timeout => 5, timed_out => \$timed_out);
	last unless $timed_out;
	note "the worker was stopped holding a lock; attempt $attempt";
	kill 'CONT', $worker;
}

my $at = wait_for($n1, "SELECT fenced FROM pg_cluster.status");
note sprintf("n1 fenced %.3f s after its worker hung", $at - $t_stop);
my ($ret, $out, $err) = $n1->psql('postgres', "INSERT INTO t VALUES (2)");
isnt($ret, 0, 'a leader whose worker hangs refuses commits once its lease ran out');

my $winner = wait_for_any_leader($n2, $n3);
note sprintf("new leader %s %.3f s after n1's worker hung", $winner->name, time - $t_stop);
pass('the standbys elect a new leader although n1 still answers their heartbeats');
sql($winner, "INSERT INTO t VALUES (3)");
is(sql($winner, "SELECT string_agg(id::text, ',' ORDER BY id) FROM t"), '1,3',
	'the new leader has the acknowledged row and takes writes');

kill 'CONT', $worker;
wait_for($n1, "SELECT term > 1 AND leader <> 'n1' FROM pg_cluster.status");
pass('woken, the old leader adopts the new term and names the new leader');
($ret, $out, $err) = $n1->psql('postgres', "INSERT INTO t VALUES (4)");
isnt($ret, 0, 'and refuses commits');

done_testing();
