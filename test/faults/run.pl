#!/usr/bin/perl
#
# test/faults/run.pl -- the fault-injection suite: real network partitions,
# hangs and crashes against a pg_cluster of real servers, each in its own
# network namespace, with clients writing throughout and a checker of the
# invariants of ../shared/design.md (I1, I2, I4, I5) at the end.
#
# Usage (as root; the pg_cluster extension and pg_cluster_ctl installed):
#
#	perl test/faults/run.pl [--seed N] [--duration SECONDS] [--keep]
#	make faults DURATION=3600 [SEED=N]
#
# The topology: a namespace per node (data nodes n1-n3, witnesses w1-w2:
# five voters), two client namespaces (c1, c2), all joined by a bridge in
# a namespace of its own, on 10.66.0.0/24, an address range that exists
# only inside these namespaces.  Every server runs under pg_cluster_ctl,
# as in production; synchronous_mode = quorum, so that I2 is checkable.
#
# The schedule (seeded, printed, replayable): every fault type once, in a
# random order, then random faults until DURATION seconds have passed.
# Each fault is injected, held for a random time, healed; then the cluster
# must converge (I5).  Faults that touch only standbys or witnesses must
# not change the leader (I4).  At the end the client logs are checked for
# I1 (one node per term, no interleaving of terms) and I2 (every
# acknowledged id on the final primary).  A failing run keeps its
# directory (logs of servers, clients and harness) and prints a one-line
# reason.  Not root: the suite says so and skips.
#
# Copyright (c) 2026, pg_cluster developers

use strict;
use warnings;
use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Spec;
use File::Path qw(make_path remove_tree);
use Getopt::Long;
use POSIX qw(WNOHANG);
use Time::HiRes qw(time);

my %opt = (duration => 240, keep => 0, dir => '/tmp/pg_cluster-faults');
GetOptions('seed=i' => \$opt{seed}, 'duration=i' => \$opt{duration},
	'keep' => \$opt{keep}, 'dir=s' => \$opt{dir})
  or die "usage: $0 [--seed N] [--duration SECONDS] [--keep] [--dir DIR]\n";
$opt{seed} //= int(time * 1000) % 1000000;

if ($> != 0)
{
	print "faults: SKIPPED: network namespaces and iptables need root\n";
	exit 0;
}

my $here = abs_path(dirname(__FILE__));
my $pg_config = $ENV{PG_CONFIG} // '/usr/lib/postgresql/15/bin/pg_config';
chomp(my $bindir = `$pg_config --bindir`);
chomp(my $includedir = `$pg_config --includedir`);
my $run_user = $ENV{PGC_RUN_USER} // 'postgres';
my $dir = File::Spec->rel2abs($opt{dir});

# The servers and clients run as $run_user, who may not be allowed into the
# directory this was started from (a checkout under a private directory):
# pg_cluster_ctl, like every PostgreSQL program, returns to its working
# directory after it looked up its own path, and fails if it cannot.
chdir('/') or die "chdir /: $!\n";

# The cluster: failover settings are the defaults (protocol.md §10).
my @data = qw(n1 n2 n3);
my @witnesses = qw(w1 w2);
my @servers = (@data, @witnesses);
my @clients = qw(c1 c2);
my %ip = (n1 => '10.66.0.11', n2 => '10.66.0.12', n3 => '10.66.0.13',
	w1 => '10.66.0.21', w2 => '10.66.0.22', c1 => '10.66.0.31', c2 => '10.66.0.32');
my $failover_timeout_ms = 1000;
my $converge_bound_s = 120;
my $peers = join(',', map { "$_=$ip{$_}:5432" } @servers);

srand($opt{seed});
my $started_at = time;
my $failure;    # the first invariant violation: a one-line reason

# ----------------------------------------------------------------------
# logging and commands
# ----------------------------------------------------------------------
my $harness_log;

sub say_log
{
	my ($msg) = @_;
	my $line = sprintf("[%8.3f] %s\n", time - $started_at, $msg);
	print $line;
	print $harness_log $line if $harness_log;
}

# run: a command that must succeed
sub run
{
	my (@cmd) = @_;
	system(@cmd) == 0 or die "command failed: @cmd\n";
}

# quiet: a command that may fail (cleanup, probes)
sub quiet
{
	my (@cmd) = @_;
	system(join(' ', map { "'$_'" } @cmd) . ' >/dev/null 2>&1');
	return $? == 0;
}

sub ns { return "pgcf-$_[0]"; }
sub in_ns { my ($host, @cmd) = @_; return ('ip', 'netns', 'exec', ns($host), @cmd); }
sub sockdir { return "$dir/$_[0]"; }
sub datadir { return "$dir/$_[0]/data"; }

# sql: runs a query on a server through its Unix socket (which no network
# fault touches); returns (ok, output)
sub sql
{
	my ($host, $query) = @_;
	local $ENV{PGCONNECT_TIMEOUT} = '2';
	local $ENV{PGOPTIONS} = '-c statement_timeout=5000';
	my $pid = open(my $ph, '-|') // return (0, '');
	if ($pid == 0)
	{
		open STDERR, '>', '/dev/null';
		exec("$bindir/psql", '-XAtq', '-h', sockdir($host), '-p', '5432',
			'-U', 'postgres', '-d', 'postgres', '-c', $query) or exit 2;
	}
	local $/;
	my $out = <$ph> // '';
	close $ph;
	$out =~ s/\n+\z//;
	return ($? == 0, $out);
}

sub sql_ok
{
	my ($host, $query) = @_;
	my ($ok, $out) = sql($host, $query);
	die "query on $host failed: $query\n" unless $ok;
	return $out;
}

# ----------------------------------------------------------------------
# network: namespaces, bridge, filters
# ----------------------------------------------------------------------
sub teardown_network
{
	foreach my $h (@servers, @clients, 'sw')
	{
		quiet('ip', 'netns', 'del', ns($h));
	}
}

sub setup_network
{
	teardown_network();
	run('ip', 'netns', 'add', ns('sw'));
	run('ip', '-n', ns('sw'), 'link', 'add', 'br0', 'type', 'bridge');
	run('ip', '-n', ns('sw'), 'link', 'set', 'br0', 'up');
	foreach my $h (@servers, @clients)
	{
		run('ip', 'netns', 'add', ns($h));
		run('ip', 'link', 'add', 'eth0', 'netns', ns($h), 'type', 'veth',
			'peer', 'name', "v-$h", 'netns', ns('sw'));
		run('ip', '-n', ns($h), 'addr', 'add', "$ip{$h}/24", 'dev', 'eth0');
		run('ip', '-n', ns($h), 'link', 'set', 'lo', 'up');
		run('ip', '-n', ns($h), 'link', 'set', 'eth0', 'up');
		run('ip', '-n', ns('sw'), 'link', 'set', "v-$h", 'master', 'br0');
		run('ip', '-n', ns('sw'), 'link', 'set', "v-$h", 'up');
	}
}

my %delayers;    # host => pid of its netdelay

sub iptables
{
	my ($host, @rule) = @_;
	run(in_ns($host, 'iptables', '-w', @rule));
}

# heal_network removes every filter and every delay
sub heal_network
{
	foreach my $h (@servers, @clients)
	{
		quiet(in_ns($h, 'iptables', '-w', '-F'));
	}
	foreach my $pid (values %delayers)
	{
		kill 'TERM', $pid;
		waitpid($pid, 0);
	}
	%delayers = ();
}

# partition: hosts of different groups cannot reach each other
sub partition
{
	my (@groups) = @_;
	my %group_of;
	foreach my $g (0 .. $#groups)
	{
		$group_of{$_} = $g for @{ $groups[$g] };
	}
	foreach my $h (keys %group_of)
	{
		foreach my $o (keys %group_of)
		{
			next if $group_of{$o} == $group_of{$h};
			iptables($h, '-A', 'INPUT', '-s', $ip{$o}, '-j', 'DROP');
			iptables($h, '-A', 'OUTPUT', '-d', $ip{$o}, '-j', 'DROP');
		}
	}
}

# delay_link: every packet $host sends waits $ms (netdelay, NFQUEUE)
sub delay_link
{
	my ($host, $ms, $loss_pct) = @_;
	my $pid = fork() // die "fork: $!";
	if ($pid == 0)
	{
		open STDOUT, '>>', "$dir/harness-netdelay.log";
		open STDERR, '>&', \*STDOUT;
		exec(in_ns($host, "$dir/bin/netdelay", '1', $ms, $loss_pct, int(rand(1e6))))
		  or die "exec: $!";
	}
	$delayers{$host} = $pid;
	iptables($host, '-A', 'OUTPUT', '-o', 'eth0', '-j', 'NFQUEUE', '--queue-num', '1',
		'--queue-bypass');
}

# ----------------------------------------------------------------------
# servers
# ----------------------------------------------------------------------
my %supervisor;    # host => pid of pg_cluster_ctl (via ip netns exec)

sub as_user
{
	my (@cmd) = @_;
	system(join(' ', 'runuser', '-u', $run_user, '--', map { "'$_'" } @cmd)
		  . " >>'$dir/setup.log' 2>&1") == 0
	  or die "command failed (see $dir/setup.log): @cmd\n";
}

sub server_conf
{
	my ($h) = @_;
	my $role = (grep { $_ eq $h } @witnesses) ? 'witness' : 'data';
	return <<"EOC";
listen_addresses = '$ip{$h}'
port = 5432
unix_socket_directories = '@{[ sockdir($h) ]}'
max_connections = 40
shared_preload_libraries = 'pg_cluster'
wal_log_hints = on
wal_keep_size = '256MB'
cluster_name = '$h'
log_line_prefix = '%m [%p] %q%a '
pg_cluster.node_name = '$h'
pg_cluster.node_role = '$role'
pg_cluster.peers = '$peers'
pg_cluster.peer_conninfo = 'dbname=postgres user=postgres'
pg_cluster.synchronous_mode = 'quorum'
pg_cluster.failover_timeout = '${failover_timeout_ms}ms'
EOC
}

sub append_file
{
	my ($file, $text) = @_;
	open(my $fh, '>>', $file) or die "$file: $!";
	print $fh $text;
	close $fh;
}

sub start_server
{
	my ($h) = @_;
	my $pid = fork() // die "fork: $!";
	if ($pid == 0)
	{
		open STDIN, '<', '/dev/null';
		open STDOUT, '>>', "$dir/$h/server.log";
		open STDERR, '>&', \*STDOUT;
		exec(in_ns($h, 'runuser', '-u', $run_user, '--', "$bindir/pg_cluster_ctl",
			'run', '-D', datadir($h)))
		  or die "exec: $!";
	}
	$supervisor{$h} = $pid;
}

# reap: notes supervisors that ended; returns the hosts whose ended
sub reap
{
	my @ended;
	foreach my $h (sort keys %supervisor)
	{
		next unless defined $supervisor{$h};
		if (waitpid($supervisor{$h}, WNOHANG) > 0)
		{
			say_log("pg_cluster_ctl of $h exited with status " . ($? >> 8));
			delete $supervisor{$h};
			push @ended, $h;
		}
	}
	return @ended;
}

sub postmaster_pid
{
	my ($h) = @_;
	open(my $fh, '<', datadir($h) . '/postmaster.pid') or return undef;
	my $pid = <$fh>;
	close $fh;
	chomp $pid if defined $pid;
	return ($pid && kill(0, $pid)) ? $pid : undef;
}

# server_pids: the postmaster and its children
sub server_pids
{
	my ($h) = @_;
	my $pm = postmaster_pid($h) or return ();
	my @children = split ' ', `pgrep -P $pm`;
	return ($pm, @children);
}

sub init_cluster
{
	my $hba = "host all all 10.66.0.0/24 trust\nhost replication all 10.66.0.0/24 trust\n";

	make_path("$dir/bin", map { "$dir/$_" } @servers, @clients);
	run('cc', '-O2', '-o', "$dir/bin/client", "$here/client.c", "-I$includedir", '-lpq');
	run('cc', '-O2', '-o', "$dir/bin/netdelay", "$here/netdelay.c", '-lnetfilter_queue');
	run('chown', '-R', $run_user, $dir);

	as_user("$bindir/initdb", '-D', datadir('n1'), '-A', 'trust', '-U', 'postgres',
		'--no-sync');
	append_file(datadir('n1') . '/postgresql.conf', server_conf('n1'));
	append_file(datadir('n1') . '/pg_hba.conf', $hba);
	start_server('n1');
	wait_until(60, 'n1 accepts connections', sub { (sql('n1', 'SELECT 1'))[0] });
	sql_ok('n1', 'CREATE EXTENSION pg_cluster');
	foreach my $h (@data[1 .. $#data])
	{
		as_user("$bindir/pg_basebackup", '-h', sockdir('n1'), '-p', '5432', '-U', 'postgres',
			'-D', datadir($h), '--checkpoint=fast', '--no-sync');
		append_file(datadir($h) . '/postgresql.conf', server_conf($h)
			  . "primary_conninfo = 'host=$ip{n1} port=5432 user=postgres application_name=$h'\n");
		as_user('touch', datadir($h) . '/standby.signal');
		start_server($h);
	}
	foreach my $h (@witnesses)
	{
		as_user("$bindir/initdb", '-D', datadir($h), '-A', 'trust', '-U', 'postgres', '--no-sync');
		append_file(datadir($h) . '/postgresql.conf', server_conf($h));
		append_file(datadir($h) . '/pg_hba.conf', $hba);
		start_server($h);
		wait_until(60, "$h accepts connections", sub { (sql($h, 'SELECT 1'))[0] });
		sql_ok($h, 'CREATE EXTENSION pg_cluster');
	}
	my ($leader) = converge('initial') or die "$failure\n";
	sql_ok($leader, 'CREATE TABLE ledger (id bigint PRIMARY KEY, client int, node text, term bigint,'
		  . ' at timestamptz DEFAULT clock_timestamp())');
	return $leader;
}

# ----------------------------------------------------------------------
# waiting and convergence
# ----------------------------------------------------------------------

# wait_until: polls $cond (every 50 ms) until it holds or $timeout_s pass
sub wait_until
{
	my ($timeout_s, $what, $cond) = @_;
	my $deadline = time + $timeout_s;
	until ($cond->())
	{
		die "timed out after $timeout_s s waiting for: $what\n" if time > $deadline;
		select(undef, undef, undef, 0.05);
	}
}

# cluster_view: (leader, term) if the cluster converged (I5): one data node
# is the leader and a primary, every other data node streams from it,
# every witness names it; else ()
sub cluster_view
{
	my %st;
	foreach my $h (@servers)
	{
		my ($ok, $out) = sql($h, "SELECT state, coalesce(leader, ''), term, pg_is_in_recovery()"
			  . " FROM pg_cluster.status");
		return () unless $ok;
		my @f = split /\|/, $out;
		$st{$h} = { state => $f[0], leader => $f[1], term => $f[2], recovery => $f[3] };
	}
	my @leaders = grep { $st{$_}{state} eq 'leader' && $st{$_}{recovery} eq 'f' } @data;
	return () unless @leaders == 1;
	my $l = $leaders[0];
	foreach my $h (@data)
	{
		next if $h eq $l;
		return () unless $st{$h}{state} eq 'streaming' && $st{$h}{leader} eq $l;
	}
	foreach my $h (@witnesses)
	{
		return () unless $st{$h}{leader} eq $l && $st{$h}{term} eq $st{$l}{term};
	}
	return ($l, $st{$l}{term});
}

# converge: restarts supervisors that ended (as systemd would) and waits
# until the cluster converged; records an I5 violation otherwise
sub converge
{
	my ($label) = @_;
	my $t0 = time;
	my $deadline = $t0 + $converge_bound_s;
	my %restarts;
	for (;;)
	{
		foreach my $h (reap(), grep { !defined $supervisor{$_} } @servers)
		{
			next if defined $supervisor{$h};
			if (++$restarts{$h} > 5)
			{
				$failure //= "I5: pg_cluster_ctl of $h keeps exiting after $label";
				return ();
			}
			say_log("restarting $h under pg_cluster_ctl");
			start_server($h);
		}
		my ($leader, $term) = cluster_view();
		if ($leader)
		{
			say_log(sprintf("converged after %s in %.1f s: leader %s, term %s",
				$label, time - $t0, $leader, $term));
			return ($leader, $term, time - $t0);
		}
		if (time > $deadline)
		{
			$failure //= "I5: the cluster did not converge within $converge_bound_s s after $label";
			return ();
		}
		select(undef, undef, undef, 0.1);
	}
}

# ----------------------------------------------------------------------
# clients
# ----------------------------------------------------------------------
my %client_pid;

sub start_clients
{
	my $uri = 'postgresql://' . join(',', map { "$ip{$_}:5432" } @data)
	  . '/postgres?user=postgres&target_session_attrs=read-write&connect_timeout=2'
	  . '&keepalives_idle=1&keepalives_interval=1&keepalives_count=2';
	foreach my $i (0 .. $#clients)
	{
		my $c = $clients[$i];
		my $pid = fork() // die "fork: $!";
		if ($pid == 0)
		{
			open STDIN, '<', '/dev/null';
			open STDOUT, '>>', "$dir/$c/client.err";
			open STDERR, '>&', \*STDOUT;
			exec(in_ns($c, 'runuser', '-u', $run_user, '--', "$dir/bin/client", $i + 1, $uri,
				'20', "$dir/$c/client.log"))
			  or die "exec: $!";
		}
		$client_pid{$c} = $pid;
	}
}

sub stop_clients
{
	foreach my $c (@clients)
	{
		next unless $client_pid{$c};
		kill 'TERM', $client_pid{$c};
		waitpid($client_pid{$c}, 0);
	}
	# in case runuser did not pass SIGTERM on
	quiet('pkill', '-TERM', '-f', "$dir/bin/client");
}

# ----------------------------------------------------------------------
# the nemesis: every fault type, its injection and its heal
# ----------------------------------------------------------------------
my $current_leader;
my %injected;       # fault type => count
my %converge_s;     # fault type => [seconds to converge after the heal]

sub pick { return $_[ int(rand(scalar @_)) ]; }
sub standbys { return grep { $_ ne $current_leader } @data; }

sub hold
{
	my ($seconds) = @_;
	my $until = time + $seconds;
	select(undef, undef, undef, 0.05) while time < $until;
}

sub kill_servers
{
	my (@hosts) = @_;
	my @pids = map { server_pids($_) } @hosts;
	kill 'KILL', @pids if @pids;
	wait_until(30, "killed servers of @hosts are gone", sub { !grep { kill 0, $_ } @pids });
}

sub signal_servers
{
	my ($signal, @hosts) = @_;
	my @pids = map { server_pids($_) } @hosts;
	kill $signal, @pids if @pids;
	return @pids;
}

# Each fault: (description, inject+hold+heal sub, whether it leaves the
# leader alone, i.e. the leader must not change: I4).  A sub returns a
# description of what it did.
my %faults = (
	kill_node => sub {
		my $h = rand() < 0.5 ? $current_leader : pick(@servers);
		kill_servers($h);
		hold(1 + rand(3));
		return ("kill -9 of $h", $h ne $current_leader);
	},
	hang_long => sub {
		my $h = rand() < 0.6 ? $current_leader : pick(@servers);
		my $s = (2 + rand(2)) * $failover_timeout_ms / 1000;
		my @pids = signal_servers('STOP', $h);
		hold($s);
		kill 'CONT', @pids;
		return (sprintf("SIGSTOP of %s for %.1f s (> failover_timeout)", $h, $s), $h ne $current_leader);
	},
	hang_short => sub {
		my $h = pick(@servers);
		my $s = (0.2 + rand(0.3)) * $failover_timeout_ms / 1000;
		my @pids = signal_servers('STOP', $h);
		hold($s);
		kill 'CONT', @pids;
		return (sprintf("SIGSTOP of %s for %.2f s (< failover_timeout)", $h, $s), $h ne $current_leader);
	},
	partition_primary => sub {
		my @rest = grep { $_ ne $current_leader } @servers;
		my $w = pick(@witnesses);
		my @minority = ($current_leader, $w, 'c1');
		my @majority = ((grep { $_ ne $w } @rest), 'c2');
		partition(\@minority, \@majority);
		hold(2 + rand(4));
		heal_network();
		return ("partition {$current_leader, $w, c1} | {" . join(', ', grep { $_ ne $w } @rest) . ", c2}", 0);
	},
	partition_standby => sub {
		my $h = pick(standbys());
		partition([$h], [ (grep { $_ ne $h } @servers), @clients ]);
		hold(2 + rand(4));
		heal_network();
		return ("partition isolating standby $h", 1);
	},
	asymmetric => sub {
		my $a = rand() < 0.5 ? $current_leader : pick(standbys());
		my $b = pick(grep { $_ ne $a } @servers);
		# b does not hear a; a hears b
		iptables($b, '-A', 'INPUT', '-s', $ip{$a}, '-j', 'DROP');
		hold(2 + rand(4));
		heal_network();
		return ("asymmetric: $b does not hear $a", 1);
	},
	flapping_link => sub {
		my $h = rand() < 0.5 ? $current_leader : pick(@servers);
		my $until = time + 3 + rand(4);
		my $down = 0;
		while (time < $until)
		{
			quiet(in_ns($h, 'iptables', '-w', '-F'));
			$down = !$down;
			if ($down)
			{
				iptables($h, '-A', 'INPUT', '-i', 'eth0', '-j', 'DROP');
				iptables($h, '-A', 'OUTPUT', '-o', 'eth0', '-j', 'DROP');
			}
			else
			{
				iptables($h, '-A', 'INPUT', '-i', 'eth0', '-m', 'statistic', '--mode', 'random',
					'--probability', '0.2', '-j', 'DROP');
			}
			hold(0.1 + rand(0.5));
		}
		heal_network();
		return ("flapping link of $h (down / 20 % loss)", 0);
	},
	delay => sub {
		my $h = rand() < 0.5 ? $current_leader : pick(@servers);
		my $ms = int($failover_timeout_ms * (0.6 + rand(0.35)));
		delay_link($h, $ms, 0);
		hold(3 + rand(3));
		heal_network();
		return ("every packet of $h delayed $ms ms", 0);
	},
	restart_all => sub {
		kill_servers(@servers);
		hold(0.5 + rand(1));
		return ("kill -9 of every node at once, then restart", 0);
	},
	witness_and_data => sub {
		my $w = pick(@witnesses);
		my $h = rand() < 0.5 ? $current_leader : pick(standbys());
		kill_servers($w, $h);
		hold(1 + rand(3));
		return ("kill -9 of witness $w and data node $h", $h ne $current_leader);
	},
);
my @fault_types = sort keys %faults;

# ----------------------------------------------------------------------
# the checker
# ----------------------------------------------------------------------
my %outcomes;    # attempts by outcome: ok, fail, unknown, no_connection

sub read_client_logs
{
	my (@acked, $attempts);
	foreach my $c (@clients)
	{
		open(my $fh, '<', "$dir/$c/client.log") or next;
		while (my $l = <$fh>)
		{
			my @f = split ' ', $l;
			$attempts++;
			$outcomes{ $f[1] eq '0' ? 'no_connection' : $f[0] }++;
			next unless $f[0] eq 'ok' && @f >= 6;
			push @acked, { id => $f[1], sent => $f[2], acked => $f[3], node => $f[4], term => $f[5] };
		}
		close $fh;
	}
	return (\@acked, $attempts // 0);
}

# I1: one node acknowledges commits per term, and no commit of an older term
# began after a commit of a newer term was acknowledged (which would mean
# the two nodes accepted writes at overlapping times)
sub check_i1
{
	my ($acked) = @_;
	my (%node_of_term, %first_ack);
	foreach my $w (@$acked)
	{
		my $n = $node_of_term{ $w->{term} } //= $w->{node};
		return "I1: term $w->{term} has acknowledged commits of $n and $w->{node}"
		  if $n ne $w->{node};
		$first_ack{ $w->{term} } = $w->{acked}
		  if !defined $first_ack{ $w->{term} } || $w->{acked} < $first_ack{ $w->{term} };
	}
	# for each term, the earliest acknowledgement of any newer term
	my @terms = sort { $a <=> $b } keys %first_ack;
	my %newer_first;
	my $min;
	foreach my $t (reverse @terms)
	{
		$newer_first{$t} = $min;
		$min = $first_ack{$t} if !defined $min || $first_ack{$t} < $min;
	}
	foreach my $w (@$acked)
	{
		my $n = $newer_first{ $w->{term} };
		return sprintf("I1: id %s (node %s, term %s) began at %.6f, after a newer term's commit was acknowledged at %.6f",
			$w->{id}, $w->{node}, $w->{term}, $w->{sent}, $n)
		  if defined $n && $w->{sent} > $n;
	}
	return undef;
}

# I2: every acknowledged id is on the primary
sub check_i2
{
	my ($acked, $leader) = @_;
	my $file = "$dir/acked-ids.txt";
	open(my $fh, '>', $file) or die "$file: $!";
	print $fh "$_->{id}\n" for @$acked;
	close $fh;
	chmod 0644, $file;
	my ($ok, $out) = sql($leader,
		"CREATE TEMP TABLE acked (id bigint); COPY acked FROM '$file';"
		  . " SELECT count(*) FROM acked LEFT JOIN ledger USING (id) WHERE ledger.id IS NULL");
	return "I2: could not read the ledger on $leader" unless $ok;
	my $missing = (split /\n/, $out)[-1];
	return "I2: $missing of " . scalar(@$acked) . " acknowledged ids missing on the primary $leader"
	  if $missing ne '0';
	return undef;
}

# ----------------------------------------------------------------------
# main
# ----------------------------------------------------------------------
sub cleanup
{
	stop_clients();
	foreach my $h (keys %supervisor)
	{
		kill 'CONT', server_pids($h);
		kill 'TERM', $supervisor{$h};
	}
	foreach my $h (keys %supervisor)
	{
		waitpid($supervisor{$h}, 0);
	}
	# servers whose supervisor is gone
	foreach my $h (@servers)
	{
		my @pids = server_pids($h);
		kill 'QUIT', @pids if @pids;
	}
	heal_network();
	teardown_network();
}

$SIG{INT} = $SIG{TERM} = sub { $failure //= 'interrupted'; die "interrupted\n"; };

my $exit = 1;
eval {
	remove_tree($dir);
	make_path($dir);
	open($harness_log, '>', "$dir/harness.log") or die "harness log: $!";
	$harness_log->autoflush(1);
	say_log("faults: seed $opt{seed}, duration $opt{duration} s, replay with --seed $opt{seed}");
	setup_network();
	($current_leader) = init_cluster();
	say_log("cluster up: leader $current_leader; clients c1, c2 write every 20 ms");
	start_clients();
	hold(2);

	my @schedule = map { $_->[1] } sort { $a->[0] <=> $b->[0] } map { [ rand(), $_ ] } @fault_types;
	my $n = 0;
	while (!$failure)
	{
		my $type = @schedule ? shift @schedule : undef;
		if (!defined $type)
		{
			last if time - $started_at >= $opt{duration};
			$type = pick(@fault_types);
		}
		$n++;
		my ($leader_before, $term_before) = ($current_leader, cluster_term($current_leader));
		my ($what, $leader_must_stay) = $faults{$type}->();
		$injected{$type}++;
		say_log("fault $n ($type): $what; healed");
		my ($leader, $term, $took) = converge("fault $n ($type)");
		last unless $leader;
		push @{ $converge_s{$type} }, $took;
		if ($leader_must_stay && defined $term_before && ($leader ne $leader_before || $term ne $term_before))
		{
			$failure //= "I4: fault $n ($what) touched no leader, yet the leader changed from"
			  . " $leader_before (term $term_before) to $leader (term $term)";
		}
		$current_leader = $leader;
		hold(1);
	}

	stop_clients();
	%client_pid = ();
	my ($acked, $attempts) = read_client_logs();
	say_log(sprintf("clients: %d attempts, %d acknowledged", $attempts, scalar @$acked));
	say_log("outcomes: " . join(', ', map { "$_ " . ($outcomes{$_} // 0) } qw(ok fail unknown no_connection))
		  . " (fail: refused with an error; unknown: no complete answer)");
	$failure //= "no acknowledged write at all" unless @$acked;
	$failure //= check_i1($acked);
	$failure //= check_i2($acked, $current_leader) unless $failure;
	my %terms = map { $_->{term} => 1 } @$acked;
	say_log(sprintf("checked: I1 over %d acknowledged commits in %d terms, I2 over %d ids on the final primary %s%s",
		scalar @$acked, scalar keys %terms, scalar @$acked, $current_leader // '?',
		$failure ? " (violation: see FAIL)" : ", no violation"));
	say_log("faults injected: " . join(', ', map { "$_ $injected{$_}" } sort keys %injected)
		  . sprintf(" (%d in all, seed %d, %.0f s)", $n, $opt{seed}, time - $started_at));
	foreach my $type (sort keys %converge_s)
	{
		my @t = sort { $a <=> $b } @{ $converge_s{$type} };
		say_log(sprintf("converged after %-18s n=%-3d median %.1f s, max %.1f s",
			$type, scalar @t, $t[$#t / 2], $t[-1]));
	}
	$exit = $failure ? 1 : 0;
	1;
} or do {
	$failure //= "harness error: $@";
	chomp $failure;
};

sub cluster_term
{
	my ($h) = @_;
	my ($ok, $out) = sql($h, "SELECT term FROM pg_cluster.status");
	return $ok ? $out : undef;
}

cleanup();
if ($failure)
{
	say_log("FAIL (seed $opt{seed}): $failure");
	print "faults: FAILED: $failure; logs kept in $dir (replay: --seed $opt{seed})\n";
	exit 1;
}
say_log("PASS: I1, I2, I4, I5 hold (seed $opt{seed})");
remove_tree($dir) unless $opt{keep};
print "faults: passed (seed $opt{seed})\n";
exit $exit;
