# Who may join: a node from another cluster (its own initdb) listed as a
# peer is refused on both sides and reported; a witness (its own initdb
# too, by design) learns the cluster's identifier and then refuses others;
# the library refuses to work unless preloaded.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgClusterTest;

my @nodes = create_cluster(data => 2, witnesses => 1);
my ($n1, $n2, $w1) = @nodes;
wait_for($_, "SELECT count(*) = 3 FROM pg_cluster.nodes WHERE reachable") for @nodes;
pass('two data nodes and a witness see each other');

my $sysid = sql($n1, "SELECT system_identifier FROM pg_cluster.status");
is(sql($w1, "SELECT system_identifier FROM pg_cluster.status"), $sysid,
	'the witness learned the cluster system identifier');
is(sql($w1, "SELECT role || '/' || state FROM pg_cluster.status"), 'witness/witness',
	'the witness says what it is');
is(sql($n1, "SELECT role FROM pg_cluster.nodes WHERE node_name = 'w1'"), 'witness',
	'data nodes see the witness as a witness');
unlike(sql($n2, "SELECT pg_cluster.connection_uri()"), qr/:${\ $w1->port }/,
	'the witness is not in the connection URI');

# the witness remembers the identifier across a restart
$w1->restart;
is(sql($w1, "SELECT system_identifier FROM pg_cluster.status"), $sysid,
	'the witness keeps the identifier in its durable state');

# a stranger: own initdb, same peer list, listed by the others as "x"
my $x = PostgreSQL::Test::Cluster->new('x');
my $peers = sql($n1, "SHOW pg_cluster.peers") . ',x=127.0.0.1:' . $x->port;
$x->init;
$x->append_conf('postgresql.conf', cluster_conf($x, $peers));
$x->start;
$x->safe_psql('postgres', 'CREATE EXTENSION pg_cluster');
add_wait_function($x);
foreach my $node ($n1, $n2, $w1)
{
	$node->append_conf('postgresql.conf', "pg_cluster.peers = '$peers'");
	$node->reload;
}

foreach my $node ($n1, $w1)
{
	wait_for($node, "SELECT refused FROM pg_cluster.nodes WHERE node_name = 'x'");
	is(sql($node, "SELECT reachable FROM pg_cluster.nodes WHERE node_name = 'x'"), 'f',
		$node->name . ': the stranger is not reachable');
	like(sql($node, "SELECT last_error FROM pg_cluster.nodes WHERE node_name = 'x'"),
		qr/another cluster/, $node->name . ': the reason names the other cluster');
	wait_for($node,
		"SELECT count(*) > 0 FROM pg_cluster.events WHERE kind = 'peer_refused' AND node_name = 'x'");
	pass($node->name . ': refusal recorded as an event');
}
wait_for($x, "SELECT count(*) = 3 FROM pg_cluster.nodes WHERE refused");
pass('the stranger refuses all three members');
wait_for($x, "SELECT count(*) >= 1 FROM pg_cluster.events WHERE kind = 'peer_refused'");
ok($n1->log_contains('refused a request from "x"'), 'the refusal is in the server log');
is(sql($n1, "SELECT count(*) FROM pg_cluster.nodes WHERE reachable"), '3',
	'members still reach each other');

# a peer where the extension is not created (yet): the heartbeat cannot be
# prepared there; the reason is shown, and heartbeats resume once it is
$w1->safe_psql('postgres', 'DROP EXTENSION pg_cluster CASCADE');
wait_for($n1, "SELECT NOT reachable FROM pg_cluster.nodes WHERE node_name = 'w1'");
like(sql($n1, "SELECT last_error FROM pg_cluster.nodes WHERE node_name = 'w1'"),
	qr/extension pg_cluster is not installed on the peer/,
	'a peer without the extension: the reason says so');
$w1->safe_psql('postgres', 'CREATE EXTENSION pg_cluster');
wait_for($n1, "SELECT reachable FROM pg_cluster.nodes WHERE node_name = 'w1'");
pass('heartbeats resume once the extension is created on the peer');

# without shared_preload_libraries the extension refuses to load
my $plain = PostgreSQL::Test::Cluster->new('plain');
$plain->init;
$plain->start;
my ($ret, $stdout, $stderr) = $plain->psql('postgres', 'CREATE EXTENSION pg_cluster');
isnt($ret, 0, 'CREATE EXTENSION fails without preloading');
like($stderr, qr/pg_cluster must be loaded via shared_preload_libraries/,
	'and says it needs shared_preload_libraries');
like($stderr, qr/HINT:  Add pg_cluster to shared_preload_libraries/, 'with a hint');

done_testing();
