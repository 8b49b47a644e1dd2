# Durable state: the term survives restarts; a damaged state file is
# detected and reported, never silently reset.  Configuration: a bad value
# at reload keeps the old configuration; a good one applies; parallel
# workers accept the node's settings.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgClusterTest;

my @nodes = create_cluster(data => 2);
my ($n1, $n2) = @nodes;
wait_for($_, "SELECT count(*) = 2 FROM pg_cluster.nodes WHERE reachable") for @nodes;

my $sysid = sql($n1, "SELECT system_identifier FROM pg_cluster.status");
my $state_file = $n1->data_dir . '/pg_cluster.state';
ok(-f $state_file, 'the state file exists');

# a higher term seen in a heartbeat is made durable; the leader steps down
# and is elected again in a later term
sql($n1,
	"SELECT pg_cluster.heartbeat('n2', '$sysid', 'standby', 5, NULL, 1, '0/0', now(), 3, false, 0, false, 0, false, '', 0, 0, '0/0')");
is(sql($n1, "SELECT term FROM pg_cluster.status"), '5', 'term 5 adopted before the answer');
ok($n1->log_contains('adopted term 5 from node "n2"; stepped down as leader'),
	'the leader stepped down');
wait_for($n1, "SELECT term > 5 AND state = 'leader' FROM pg_cluster.status");
wait_for($n2, "SELECT term > 5 AND leader = 'n1' FROM pg_cluster.status");
pass('n1 re-elected in a later term, n2 follows');
my $term = sql($n1, "SELECT term FROM pg_cluster.status");
$n1->restart;
is(sql($n1, "SELECT term FROM pg_cluster.status"), $term, 'the term survives a restart');
wait_for($n1, "SELECT state = 'leader' FROM pg_cluster.status");
ok($n1->log_contains('restarted as leader of term'), 'and the restarted leader resumes its term');

# a damaged file: one flipped byte
$n1->stop;
my $orig = slurp_file($state_file);
my $bad = $orig;
substr($bad, 8, 1) = chr(ord(substr($bad, 8, 1)) ^ 0x01);
open my $fh, '>', $state_file or die;
binmode $fh;
print $fh $bad;
close $fh;
$n1->start;
wait_for($n1, "SELECT state = 'state_file_corrupt' FROM pg_cluster.status");
pass('a flipped byte is detected');
ok($n1->log_contains('durable state is unusable: "pg_cluster.state" fails its checksum'),
	'and reported in the log');
is(sql($n1, "SELECT count(*) FROM pg_cluster.events WHERE kind = 'state_file_corrupt'"),
	'1', 'and as an event');
is(slurp_file($state_file), $bad, 'the damaged file is left alone for the operator');
wait_for($n2, "SELECT NOT reachable FROM pg_cluster.nodes WHERE node_name = 'n1'");
pass('a node with unusable state stays out of the cluster');

# a torn (short) file
$n1->stop;
open $fh, '>', $state_file or die;
binmode $fh;
print $fh substr($orig, 0, 20);
close $fh;
$n1->start;
wait_for($n1, "SELECT state = 'state_file_corrupt' FROM pg_cluster.status");
ok($n1->log_contains('has 20 bytes, expected'), 'a torn file is detected');

# the operator restores the file; a reload picks it up
open $fh, '>', $state_file or die;
binmode $fh;
print $fh $orig;
close $fh;
$n1->reload;
wait_for($n1, "SELECT state = 'leader' AND term = $term FROM pg_cluster.status");
pass('after repair and reload the node is back as leader of its term');
wait_for($n2, "SELECT reachable FROM pg_cluster.nodes WHERE node_name = 'n1'");
pass('and back in the cluster');

# bad values in a reload keep the old configuration
my $pid = sql($n1, "SELECT worker_pid FROM pg_cluster.status");
my $peers = sql($n1, "SHOW pg_cluster.peers");
my $log_offset = -s $n1->logfile;
$n1->append_conf('postgresql.conf', <<'EOC');
pg_cluster.peers = 'n1=127.0.0.1:1,n1=127.0.0.1:2'
pg_cluster.heartbeat_interval = '5ms'
pg_cluster.failover_timeout = '200ms'
pg_cluster.peer_conninfo = 'port=1'
EOC
$n1->reload;
$n1->wait_for_log(qr/invalid value for parameter "pg_cluster.peer_conninfo"/, $log_offset);
is(sql($n1, "SHOW pg_cluster.peers"), $peers, 'bad peers list rejected, old one kept');
is(sql($n1, "SHOW pg_cluster.heartbeat_interval"), '100ms', 'bad interval rejected');
is(sql($n1, "SHOW pg_cluster.failover_timeout"), '1s', 'too short timeout rejected');
is(sql($n1, "SHOW pg_cluster.peer_conninfo"), 'dbname=postgres', 'bad conninfo rejected');
ok($n1->log_contains('Node name "n1" appears more than once', $log_offset),
	'the log says why the peer list was rejected');
is(sql($n1, "SELECT worker_pid FROM pg_cluster.status"), $pid, 'the worker survived');
wait_for($n2, "SELECT reachable FROM pg_cluster.nodes WHERE node_name = 'n1'");
wait_for($n1, "SELECT reachable FROM pg_cluster.nodes WHERE node_name = 'n2'");
pass('heartbeats continue with the old configuration');

# a good change applies without restart
$n1->append_conf('postgresql.conf', <<'EOC');
pg_cluster.peers = ''
pg_cluster.heartbeat_interval = '200ms'
pg_cluster.failover_timeout = '2s'
pg_cluster.peer_conninfo = 'dbname=postgres application_name=x'
EOC
# drop the bad lines by re-appending the good peers last
$n1->append_conf('postgresql.conf', "pg_cluster.peers = '$peers'\n");
$n1->reload;
wait_for($n1, "SELECT heartbeat_interval_ms = 200 AND failover_timeout_ms = 2000 FROM pg_cluster.status");
pass('a valid reload applies');
wait_for($n1,
	"SELECT count(*) > 0 FROM pg_cluster.events WHERE kind = 'config_reload' AND detail LIKE '%heartbeat 200 ms%'"
);
pass('and is recorded as an event');
wait_for($n1, "SELECT reachable FROM pg_cluster.nodes WHERE node_name = 'n2'");
pass('peers reconnect with the new connection options');

# A slower heartbeat, the way the hint says (the timeout first): parallel
# workers take both settings from their leader, although the default
# failover timeout (1 s) would not allow a 500 ms heartbeat on its own.
$n1->append_conf('postgresql.conf', "pg_cluster.failover_timeout = '5s'\n");
$n1->reload;
wait_for($n1, "SELECT failover_timeout_ms = 5000 FROM pg_cluster.status");
$n1->append_conf('postgresql.conf', "pg_cluster.heartbeat_interval = '500ms'\n");
$n1->reload;
wait_for($n1, "SELECT heartbeat_interval_ms = 500 FROM pg_cluster.status");
my $plan = sql($n1, <<'EOQ');
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET enable_indexscan = off;
SET enable_indexonlyscan = off;
SET enable_bitmapscan = off;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT count(*) FROM pg_class;
EOQ
like($plan, qr/Workers Launched: [1-9]/,
	'a parallel query runs with heartbeat_interval = 500ms');

done_testing();
