# PgClusterTest.pm
#    Helpers for the pg_cluster TAP tests: build clusters of real
#    PostgreSQL instances on loopback with PostgreSQL::Test::Cluster, and
#    wait for conditions with deadlines.
package PgClusterTest;

use strict;
use warnings;
use feature 'state';
use POSIX ();

use Exporter 'import';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

our @EXPORT = qw(create_cluster cluster_conf add_wait_function wait_for
  wait_for_leader sql postmaster_pid stop_process_group continue_process_group
  crash_instance wait_for_any_leader start_writer stop_writer writer_log
  cluster_uri start_supervised stop_supervised supervisor_exited wait_followed
  start_witness);

# Timings used by the tests unless a test says otherwise.
our %DEFAULT_SETTINGS = (
	'pg_cluster.heartbeat_interval' => '100ms',
	'pg_cluster.failover_timeout' => '1s',
	'pg_cluster.connect_timeout' => '500ms',);

# cluster_conf returns the postgresql.conf lines that make $node a member
# of the cluster described by $peers.
sub cluster_conf
{
	my ($node, $peers, %settings) = @_;
	my %all = (%DEFAULT_SETTINGS, %settings);
	my $conf = <<"EOC";
listen_addresses = '127.0.0.1'
max_connections = 40
shared_preload_libraries = 'pg_cluster'
wal_log_hints = on
wal_keep_size = '128MB'
log_min_messages = info
pg_cluster.node_name = '@{[ $node->name ]}'
pg_cluster.peers = '$peers'
pg_cluster.peer_conninfo = 'dbname=postgres'
EOC
	$conf .= "$_ = '$all{$_}'\n" for sort keys %all;
	return $conf;
}

# add_wait_function creates pgc_wait_for(condition, timeout_seconds): it
# polls the condition every 10 ms inside the server and returns the epoch
# time at which it first held, or fails at the deadline.  Polling inside
# the server measures to the millisecond without a psql start per try.
sub add_wait_function
{
	my ($node) = @_;
	$node->safe_psql('postgres', <<'EOSQL');
CREATE FUNCTION public.pgc_wait_for(condition text, timeout_s float8)
RETURNS float8 LANGUAGE plpgsql AS $fn$
DECLARE
	deadline timestamptz := clock_timestamp() + timeout_s * interval '1 second';
	ok boolean;
BEGIN
	LOOP
		EXECUTE condition INTO ok;
		IF ok THEN
			RETURN extract(epoch FROM clock_timestamp());
		END IF;
		IF clock_timestamp() > deadline THEN
			RAISE EXCEPTION 'condition not met within % s: %', timeout_s, condition;
		END IF;
		PERFORM pg_sleep(0.01);
	END LOOP;
END
$fn$;
EOSQL
}

# start_witness makes $node (a new PostgreSQL::Test::Cluster) a witness of
# the cluster described by $peers: its own initdb, started, with the
# extension and pgc_wait_for.
sub start_witness
{
	my ($node, $peers, %settings) = @_;
	$node->init;
	$node->append_conf('postgresql.conf',
		cluster_conf($node, $peers, %settings, 'pg_cluster.node_role' => 'witness'));
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION pg_cluster');
	add_wait_function($node);
}

# create_cluster builds a cluster: "data" data nodes (n1 the primary, the
# others streaming standbys cloned with pg_basebackup) and "witnesses"
# witness nodes (w1, ..., each its own initdb).  Returns the nodes, started
# and with the extension installed.
sub create_cluster
{
	my (%args) = @_;
	my $data = $args{data} // 3;
	my $witnesses = $args{witnesses} // 0;
	my %settings = %{ $args{settings} // {} };

	my @nodes = map { PostgreSQL::Test::Cluster->new("n$_") } 1 .. $data;
	push @nodes, map { PostgreSQL::Test::Cluster->new("w$_") } 1 .. $witnesses;
	my $peers = join(',', map { $_->name . '=127.0.0.1:' . $_->port } @nodes);

	my $start = $args{supervised} ? \&start_supervised : sub { $_[0]->start };
	my $primary = $nodes[0];
	$primary->init(allows_streaming => 1);
	$primary->append_conf('postgresql.conf', cluster_conf($primary, $peers, %settings));
	$start->($primary);
	$primary->safe_psql('postgres', 'CREATE EXTENSION pg_cluster');
	add_wait_function($primary);
	$primary->backup('base');

	foreach my $node (@nodes[ 1 .. $data - 1 ])
	{
		$node->init_from_backup($primary, 'base', has_streaming => 1);
		$node->append_conf('postgresql.conf',
			"port = " . $node->port . "\npg_cluster.node_name = '" . $node->name . "'\n"
			  . "cluster_name = '" . $node->name . "'\n");
		$start->($node);
	}
	start_witness($_, $peers, %settings) foreach @nodes[ $data .. $#nodes ];
	wait_for_leader('n1', @nodes) unless $args{no_wait};
	return @nodes;
}

# wait_for_leader waits until every node names $leader as leader and sees
# every node reachable, and the leader holds its lease.  Returns the time
# the leader's state became "leader".
sub wait_for_leader
{
	my ($leader, @nodes) = @_;
	my $count = scalar @nodes;
	my ($leader_node) = grep { $_->name eq $leader } @nodes;
	my $at = wait_for($leader_node,
		"SELECT state = 'leader' AND leader = '$leader' FROM pg_cluster.status");
	foreach my $node (@nodes)
	{
		wait_for($node,
			"SELECT leader = '$leader' FROM pg_cluster.status");
	}
	return $at;
}

# wait_followed waits until the worker of $node has taken $leader as its
# leader (event "leader_changed", recorded after the worker's follow step
# of the same loop, which re-points primary_conninfo if needed).  The
# heartbeat that makes pg_cluster.status name the leader comes before
# that: a test that changes primary_conninfo itself waits for this, or the
# worker's follow may overwrite it.
sub wait_followed
{
	my ($node, $leader) = @_;
	return wait_for($node,
		"SELECT count(*) > 0 FROM pg_cluster.events WHERE kind = 'leader_changed' AND node_name = '$leader'");
}

# wait_for waits until $condition (a boolean SQL expression or query) holds
# on $node and returns the time it first held.  Dies at the deadline.  A
# node that is down or restarting (pg_cluster_ctl restarts demoted nodes)
# is waited for too, and so is a standby that cancels the wait because of
# a conflict with recovery (a writer runs on the primary).
sub wait_for
{
	my ($node, $condition, $timeout) = @_;
	$timeout //= $PostgreSQL::Test::Utils::timeout_default;
	my $deadline = time + $timeout;
	$condition =~ s/'/''/g;
	for (;;)
	{
		# psql may be gone before it read its input (EPIPE): retried too
		my ($ret, $out, $err) = (1, '', '');
		eval {
			($ret, $out, $err) = $node->psql('postgres',
				"SELECT public.pgc_wait_for('SELECT ($condition)', $timeout)");
		};
		$err = $@ if $@;
		return $out if $ret == 0;
		die "wait_for on " . $node->name . " failed: $err"
		  if time > $deadline
		  || $err !~ /connection to server|could not connect|No such file|Connection refused|reset by peer|shutting down|starting up|terminating connection|server closed the connection|not yet accepting|Broken pipe|conflict with recovery/;
		select(undef, undef, undef, 0.05);
	}
}

# wait_for_any_leader waits until one of @nodes is the leader, holding its
# lease, and returns that node.
sub wait_for_any_leader
{
	my (@nodes) = @_;
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	while (time < $deadline)
	{
		foreach my $node (@nodes)
		{
			my ($ret, $out) = $node->psql('postgres',
				"SELECT state = 'leader' FROM pg_cluster.status");
			return $node if $ret == 0 && $out eq 't';
		}
		select(undef, undef, undef, 0.05);
	}
	die "no leader among " . join(',', map { $_->name } @nodes);
}

# sql runs a query on $node and returns its output.
sub sql
{
	my ($node, $query) = @_;
	return $node->safe_psql('postgres', $query);
}

sub postmaster_pid
{
	my ($node) = @_;
	open my $fh, '<', $node->data_dir . '/postmaster.pid' or die "no postmaster.pid: $!";
	my $pid = <$fh>;
	close $fh;
	chomp $pid;
	return $pid;
}

# instance_pids returns the postmaster and all its children.  Every child
# of the postmaster calls setsid(), so a process-group signal would reach
# the postmaster alone.
sub instance_pids
{
	my ($node) = @_;
	my $pm = postmaster_pid($node);
	my @children = split ' ', `ps -o pid= --ppid $pm`;
	return ($pm, @children);
}

# stop_process_group freezes the whole instance (postmaster, backends, the
# pg_cluster worker) with SIGSTOP: a hung host, as its peers see it.
my %stopped_pids;

sub stop_process_group
{
	my ($node) = @_;
	my @pids = instance_pids($node);
	kill 'STOP', @pids or die "could not stop: $!";
	$stopped_pids{ $node->name } = \@pids;
}

# start_supervised runs $node under pg_cluster_ctl (which restarts it as a
# standby when the extension demotes it) and waits until it accepts
# connections.  Its output goes to the node's log file.
my %supervisors;

sub start_supervised
{
	my ($node) = @_;
	my $log = $node->logfile;
	my $pid = fork();
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		open STDIN, '<', '/dev/null';
		open STDOUT, '>>', $log or die "$log: $!";
		open STDERR, '>&', \*STDOUT;
		# the harness's PGAPPNAME would name every WAL receiver after the test
		delete $ENV{PGAPPNAME};
		exec 'pg_cluster_ctl', 'run', '-D', $node->data_dir or die "exec: $!";
	}
	$supervisors{ $node->name } = $pid;
	# the supervisor, not PostgreSQL::Test::Cluster, stops this node
	$node->{_pid} = undef;
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	until (system('pg_isready', '-q', '-h', $node->host, '-p', $node->port) == 0)
	{
		die "node " . $node->name . " did not start under pg_cluster_ctl" if time > $deadline;
		select(undef, undef, undef, 0.05);
	}
	return $pid;
}

# stop_supervised stops pg_cluster_ctl (fast shutdown of its server) and
# returns its exit status.
sub stop_supervised
{
	my ($node) = @_;
	my $pid = delete $supervisors{ $node->name } or return undef;
	kill 'TERM', $pid;
	waitpid($pid, 0);
	return $? >> 8;
}

# supervisor_exited says whether $node's pg_cluster_ctl ended (and then
# returns 1 and its exit status).
sub supervisor_exited
{
	my ($node) = @_;
	my $pid = $supervisors{ $node->name } or return (1, undef);
	return (0, undef) if waitpid($pid, POSIX::WNOHANG()) == 0;
	delete $supervisors{ $node->name };
	return (1, $? >> 8);
}

# a failed test must not leave stopped servers that cannot shut down; this
# runs before PostgreSQL::Test::Cluster's END block stops the nodes
END
{
	local $?;    # waitpid must not change the test's exit status
	kill 'CONT', @$_ for values %stopped_pids;
	foreach my $pid (values %supervisors)
	{
		kill 'TERM', $pid;
		waitpid($pid, 0);
	}
}

# crash_instance kills the postmaster and all its children with SIGKILL,
# as a host crash would, and waits until they are gone (so the node can be
# restarted).
sub crash_instance
{
	my ($node) = @_;
	my @pids = instance_pids($node);
	kill 'KILL', @pids;
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	while (grep { kill 0, $_ } @pids)
	{
		die "processes of " . $node->name . " survive SIGKILL" if time > $deadline;
		select(undef, undef, undef, 0.01);
	}
	$node->{_pid} = undef;    # as kill9 does: the node is known stopped
}

# cluster_uri returns a multi-host read-write URI for @nodes.
sub cluster_uri
{
	my (@nodes) = @_;
	return 'postgresql://'
	  . join(',', map { '127.0.0.1:' . $_->port } @nodes)
	  . '/postgres?target_session_attrs=read-write&connect_timeout=2';
}

# start_writer builds bench/writer.c (once) and starts it in the
# background: an INSERT into "ledger" every $interval_ms through $uri for at
# most $duration_s seconds.  Returns a handle for stop_writer/writer_log.
my $writer_bin;

sub start_writer
{
	my ($uri, $duration_s, $interval_ms) = @_;
	if (!defined $writer_bin)
	{
		$writer_bin = "$PostgreSQL::Test::Utils::tmp_check/writer";
		my $inc = `pg_config --includedir`;
		chomp $inc;
		my $src = "$ENV{TESTDIR}/bench/writer.c";
		$src = 'bench/writer.c' unless -f $src;
		system('cc', '-O2', '-o', $writer_bin, $src, "-I$inc", '-lpq') == 0
		  or die "could not build the writer";
	}
	state $count = 0;
	my $log = "$PostgreSQL::Test::Utils::tmp_check/writer-" . $count++ . ".log";
	my $h = IPC::Run::start([ $writer_bin, $uri, $duration_s, $interval_ms, $log ]);
	return { handle => $h, log => $log };
}

sub stop_writer
{
	my ($w) = @_;
	$w->{handle}->signal('TERM');
	$w->{handle}->finish;
}

# writer_log parses a writer log: returns (\@acknowledged_ids, \@lines),
# each line a hash (status, id, sent, done, port).
sub writer_log
{
	my ($w) = @_;
	my (@acked, @lines);
	open my $fh, '<', $w->{log} or die "no writer log: $!";
	while (my $l = <$fh>)
	{
		my ($status, $id, $sent, $done, $port) = split ' ', $l;
		next unless defined $done;
		push @lines, { status => $status, id => $id, sent => $sent, done => $done, port => $port };
		push @acked, $id if $status eq 'ok';
	}
	close $fh;
	return (\@acked, \@lines);
}

sub continue_process_group
{
	my ($node) = @_;
	my @pids = @{ delete $stopped_pids{ $node->name } // [ instance_pids($node) ] };
	kill 'CONT', @pids or die "could not continue: $!";
}

1;
