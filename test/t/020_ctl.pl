# pg_cluster_ctl, the supervisor, on plain PostgreSQL nodes: the extension
# is not loaded.  The tests do what the extension would do (write the
# rejoin marker, set primary_conninfo, ask the postmaster to shut down) and
# check what pg_cluster_ctl does about it: signals, rejoin with and without
# pg_rewind, the node's own files kept, failures that must not restart
# postgres.  Every wait has a deadline; nothing waits a fixed time.
use strict;
use warnings;

use IO::Select;
use IO::Socket::INET;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

my $timeout = $PostgreSQL::Test::Utils::timeout_default;

# every pg_cluster_ctl started and not yet seen exiting, and every node
# that ran under one: the END block stops them whatever happened
my @running;
my %ctl_nodes;
my $log_seq = 0;

# start_ctl runs "pg_cluster_ctl run" on $node's data directory (from the
# PATH: the installed one).  Its output and the server's go to a log file.
sub start_ctl
{
	my ($node, @postgres_options) = @_;
	my $log = sprintf('%s/020_ctl_%s_%d.log',
		$PostgreSQL::Test::Utils::log_path, $node->name, ++$log_seq);
	my @cmd = ('pg_cluster_ctl', 'run', '-D', $node->data_dir);
	push @cmd, '--', @postgres_options if @postgres_options;
	note "running: @cmd (log $log)";
	my $h = IPC::Run::start(\@cmd, '<', '/dev/null', '&>', $log);
	my $ctl = { h => $h, log => $log, node => $node };
	push @running, $ctl;
	$ctl_nodes{ $node->name } = $node;
	return $ctl;
}

sub ctl_log
{
	my ($ctl) = @_;
	return -e $ctl->{log} ? slurp_file($ctl->{log}) : '';
}

sub ctl_pid
{
	my ($ctl) = @_;
	return $ctl->{h}{KIDS}[0]{PID};
}

sub ctl_running
{
	my ($ctl) = @_;
	return $ctl->{h}->pumpable ? 1 : 0;
}

# wait_ctl_exit waits for pg_cluster_ctl to exit and returns its wait
# status ($?: exit code << 8, or the signal).
sub wait_ctl_exit
{
	my ($ctl) = @_;
	my $deadline = time + $timeout;
	while ($ctl->{h}->pumpable)
	{
		die "pg_cluster_ctl did not exit within $timeout s" if time > $deadline;
		usleep(20_000);
	}
	$ctl->{h}->finish;
	@running = grep { $_ != $ctl } @running;
	return $ctl->{h}->full_result(0);
}

# wait_for_log waits until pg_cluster_ctl's log matches $re at least
# $count times.
sub wait_for_log
{
	my ($ctl, $re, $count) = @_;
	$count //= 1;
	my $deadline = time + $timeout;
	while (1)
	{
		my @matches = (ctl_log($ctl) =~ /$re/g);
		return 1 if @matches >= $count;
		die "pg_cluster_ctl's log did not show $re ($count times) within $timeout s:\n"
		  . ctl_log($ctl)
		  if time > $deadline;
		die "pg_cluster_ctl exited before its log showed $re:\n" . ctl_log($ctl)
		  unless ctl_running($ctl);
		usleep(20_000);
	}
}

sub count_matches
{
	my ($text, $re) = @_;
	my @matches = ($text =~ /$re/g);
	return scalar @matches;
}

sub postmaster_pid
{
	my ($node) = @_;
	my $pidfile = $node->data_dir . '/postmaster.pid';
	open my $fh, '<', $pidfile or die "could not open $pidfile: $!";
	my $pid = <$fh>;
	close $fh;
	chomp $pid;
	return $pid;
}

sub server_accepts_connections
{
	my ($node) = @_;
	return system('pg_isready', '-q', '-h', $node->host, '-p', $node->port) == 0;
}

# wait_until_ready waits until the node accepts connections.
sub wait_until_ready
{
	my ($node) = @_;
	$node->poll_query_until('postgres', 'SELECT true')
	  or die "node " . $node->name . " did not accept connections";
}

sub file_contents
{
	my ($node, $name) = @_;
	my $path = $node->data_dir . "/$name";
	return -e $path ? slurp_file($path) : undef;
}

sub write_marker
{
	my ($node, $text) = @_;
	my $path = $node->data_dir . '/pg_cluster.rejoin';
	open my $fh, '>', $path or die "could not write $path: $!";
	print $fh $text;
	close $fh;
	chmod 0600, $path;
}

# a connection string that is refused at once: a socket directory where
# nothing listens
sub dead_conninfo
{
	my $port = PostgreSQL::Test::Cluster::get_free_port();
	return "host=" . PostgreSQL::Test::Utils::tempdir_short() . " port=$port dbname=postgres";
}

# command line checks
program_help_ok('pg_cluster_ctl');
program_version_ok('pg_cluster_ctl');
program_options_handling_ok('pg_cluster_ctl');
# (PostgreSQL::Test::Utils removes PGDATA from the environment)
command_exit_is([ 'pg_cluster_ctl', 'run' ], 2, 'run without a data directory: exit 2');
command_exit_is([ 'pg_cluster_ctl', 'run', '-D', '/nonexistent/pgdata' ],
	2, 'missing data directory: exit 2');
command_fails_like(
	[ 'pg_cluster_ctl', 'run', '-D', '/nonexistent/pgdata' ],
	qr/data directory "\/nonexistent\/pgdata" does not exist/,
	'missing data directory: says so');
command_fails_like(
	[ 'pg_cluster_ctl', 'run', '-D', '/tmp', '-c', 'port=1' ],
	qr/invalid option/,
	'postgres options before "--" are refused');

##########################################################################
# (a) a node under pg_cluster_ctl: SIGTERM stops it; SIGHUP reloads it; a
# postgres stopped by someone else without a marker is not restarted
##########################################################################
my $n_a = PostgreSQL::Test::Cluster->new('A');
$n_a->init(allows_streaming => 1);

my $ctl = start_ctl($n_a);
wait_until_ready($n_a);
pass('node A accepts connections under pg_cluster_ctl');

my $pm = postmaster_pid($n_a);
SKIP:
{
	skip 'no /proc', 1 unless -r "/proc/$pm/environ";
	my $env = slurp_file("/proc/$pm/environ");
	my %env = map { split /=/, $_, 2 } grep { /=/ } split /\0/, $env;
	is($env{PG_CLUSTER_SUPERVISOR}, ctl_pid($ctl),
		'postgres has PG_CLUSTER_SUPERVISOR set to the pid of pg_cluster_ctl');
}

$ctl->{h}->signal('TERM');
my $status = wait_ctl_exit($ctl);
is($status, 0, 'SIGTERM: pg_cluster_ctl exits 0');
ok(!-e $n_a->data_dir . '/postmaster.pid' && !server_accepts_connections($n_a),
	'SIGTERM: the server is down');
like(ctl_log($ctl), qr/pg_cluster_ctl: received SIGTERM: asking postgres for a fast shutdown/,
	'SIGTERM: logged, as a fast shutdown');

# SIGHUP is forwarded; a postmaster stopped directly, without a marker,
# is not restarted, and a clean exit is exit status 0
$ctl = start_ctl($n_a, '-c', 'work_mem=1MB');
wait_until_ready($n_a);
is($n_a->safe_psql('postgres', 'SHOW work_mem'), '1MB', 'postgres options after -- reach postgres');
$n_a->append_conf('postgresql.conf', "statement_timeout = '42s'\n");
$ctl->{h}->signal('HUP');
ok($n_a->poll_query_until('postgres', 'SHOW statement_timeout', '42s'),
	'SIGHUP to pg_cluster_ctl reloads the configuration');
kill 'INT', postmaster_pid($n_a);
$status = wait_ctl_exit($ctl);
is($status, 0, 'postgres stopped by someone else with status 0, no marker: exit 0');
is(count_matches(ctl_log($ctl), qr/started postgres/), 1, 'and postgres was not restarted');
like(ctl_log($ctl), qr/without a rejoin marker: not restarting it/, 'and the log says why');

##########################################################################
# (b) rejoin with pg_rewind: S, cloned from P and promoted, diverged; the
# marker asks it to follow P again
##########################################################################
my $p = PostgreSQL::Test::Cluster->new('P');
$p->init(allows_streaming => 1);
# pg_rewind needs wal_log_hints, and the target's WAL back to the last
# common checkpoint: S's checkpoints must not recycle it
$p->append_conf('postgresql.conf', "wal_log_hints = on\nwal_keep_size = 128MB\n");
$p->start;
$p->safe_psql('postgres', 'CREATE TABLE t (id int, origin text)');
$p->safe_psql('postgres', "INSERT INTO t VALUES (0, 'before the fork')");
$p->backup('base');

my $s = PostgreSQL::Test::Cluster->new('S');
$s->init_from_backup($p, 'base', has_streaming => 1);
$s->append_conf('postgresql.conf', "cluster_name = 'node_s'\n");
$s->start;
ok($s->poll_query_until('postgres', 'SELECT count(*) FROM t', '1'), 'S streams from P');
$s->promote;
ok($s->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()'), 'S promoted');
$s->safe_psql('postgres', "INSERT INTO t VALUES (1, 'S after the fork')");
$p->safe_psql('postgres', "INSERT INTO t VALUES (2, 'P after the fork')");
$s->stop;

# the node's own files, which pg_rewind would replace by P's
append_to_file($s->data_dir . '/pg_hba.conf', "# S's own pg_hba.conf\n");
append_to_file($s->data_dir . '/pg_cluster.state', "S's own state\n");
append_to_file($p->data_dir . '/pg_cluster.state', "P's state\n");

$ctl = start_ctl($s);
wait_until_ready($s);
pass('S runs under pg_cluster_ctl as a primary');

# what the extension does before it asks for the shutdown
my $p_conninfo = 'host=' . $p->host . ' port=' . $p->port;
$s->safe_psql('postgres',
	"ALTER SYSTEM SET primary_conninfo = '$p_conninfo application_name=S'");
my %own = map { $_ => file_contents($s, $_) }
  qw(postgresql.conf postgresql.auto.conf pg_hba.conf pg_ident.conf pg_cluster.state);
like($own{'postgresql.auto.conf'}, qr/primary_conninfo/, 'S has its primary_conninfo');
isnt($own{'postgresql.conf'}, file_contents($p, 'postgresql.conf'),
	'S and P have different postgresql.conf files');
write_marker($s,
	    "leader=P\n"
	  . "conninfo=" . $p->connstr('postgres') . "\n"
	  . "rewind=yes\n"
	  . "reason=test: S diverged from P\n"
	  . "term=3\n"
	  . "some_future_key=ignored\n");
my $old_pm = postmaster_pid($s);
kill 'INT', $old_pm;

wait_for_log($ctl, qr/started postgres/, 2);
wait_until_ready($s);
my $log = ctl_log($ctl);
like($log, qr/postgres stopped to rejoin as a standby of P \(test: S diverged from P\)/,
	'rewind=yes: the rejoin is logged with the leader and the reason');
like($log, qr/running pg_rewind \(attempt 1\)/, 'pg_rewind was run');
like($log, qr/pg_rewind: servers diverged at WAL location/, "pg_rewind's own output is in the log");
like($log, qr/pg_rewind succeeded in \d+ ms/, 'its duration is logged');
ok($s->poll_query_until('postgres', 'SELECT pg_is_in_recovery()'), 'S is back, in recovery');
ok($s->poll_query_until('postgres',
		"SELECT status = 'streaming' FROM pg_stat_wal_receiver"),
	'S streams from P');
is($s->safe_psql('postgres', 'SHOW port'), $s->port, "S runs on its own port");
is($s->safe_psql('postgres', 'SHOW cluster_name'), 'node_s', "S's postgresql.conf setting survived");
foreach my $name (sort keys %own)
{
	is(file_contents($s, $name), $own{$name}, "S's own $name is kept across pg_rewind");
}
ok(-e $s->data_dir . '/standby.signal', 'standby.signal exists');
ok(!-e $s->data_dir . '/pg_cluster.rejoin', 'the marker is removed');
my $done = file_contents($s, 'pg_cluster.rejoin.done') // '';
like($done, qr/^leader=P$/m, '.done: leader');
like($done, qr/^rewind=yes$/m, '.done: rewind=yes');
like($done, qr/^rewind_ms=\d+$/m, '.done: rewind_ms');
like($done, qr/^attempts=1$/m, '.done: attempts=1');
like($done, qr/^finished_at=\d+\.\d+$/m, '.done: finished_at');
like($done, qr/^result=ok$/m, '.done: result=ok');
is($s->safe_psql('postgres', 'SELECT string_agg(origin, \',\' ORDER BY id) FROM t'),
	'before the fork,P after the fork', "S's diverged row is gone, P's row is there");
$p->safe_psql('postgres', "INSERT INTO t VALUES (3, 'P after the rejoin')");
ok($s->poll_query_until('postgres', 'SELECT count(*) FROM t WHERE id = 3', '1'),
	'a row written on P afterwards reaches S');

$ctl->{h}->signal('TERM');
is(wait_ctl_exit($ctl), 0, 'S: SIGTERM, exit 0');

##########################################################################
# (c) rejoin without pg_rewind: a clean standby R; its standby.signal is
# gone (pg_cluster_ctl must make sure it exists)
##########################################################################
my $r = PostgreSQL::Test::Cluster->new('R');
$r->init_from_backup($p, 'base', has_streaming => 1);
$ctl = start_ctl($r);
wait_until_ready($r);
ok($r->poll_query_until('postgres', 'SELECT count(*) FROM t WHERE id = 3', '1'),
	'R streams from P under pg_cluster_ctl');
unlink($r->data_dir . '/standby.signal') or die "unlink: $!";
write_marker($r, "leader=P\nrewind=no\nreason=test: clean standby\n");
kill 'INT', postmaster_pid($r);

wait_for_log($ctl, qr/started postgres/, 2);
wait_until_ready($r);
$log = ctl_log($ctl);
like($log, qr/the marker says rewind=no: restarting as a standby without pg_rewind/,
	'rewind=no: the log says pg_rewind is not run');
unlike($log, qr/running pg_rewind/, 'and it was not');
like($log, qr/created ".*standby\.signal"/, 'standby.signal was created');
ok($r->poll_query_until('postgres', 'SELECT pg_is_in_recovery()'), 'R is back, in recovery');
$p->safe_psql('postgres', "INSERT INTO t VALUES (4, 'P after R rejoined')");
ok($r->poll_query_until('postgres', 'SELECT count(*) FROM t WHERE id = 4', '1'),
	'R streams from P again');
$done = file_contents($r, 'pg_cluster.rejoin.done') // '';
like($done, qr/^rewind=no$/m, '.done: rewind=no');
like($done, qr/^attempts=0$/m, '.done: attempts=0');
like($done, qr/^rewind_ms=0$/m, '.done: rewind_ms=0');
ok(!-e $r->data_dir . '/pg_cluster.rejoin', 'the marker is removed');

$ctl->{h}->signal('QUIT');
is(wait_ctl_exit($ctl), 0, 'R: SIGQUIT, exit 0');
like(ctl_log($ctl), qr/asking postgres for an immediate shutdown \(SIGQUIT\)/,
	'SIGQUIT is forwarded as an immediate shutdown');
ok(!server_accepts_connections($r), 'R is down');

##########################################################################
# (e) pg_rewind fails: retried with a growing delay, postgres not started;
# a stop request during the retries leaves the marker for the next run
##########################################################################
$ctl = start_ctl($n_a);
wait_until_ready($n_a);
my $a_conf = file_contents($n_a, 'postgresql.conf');
write_marker($n_a,
	"leader=P\nconninfo=" . dead_conninfo() . "\nrewind=yes\nreason=test: unreachable leader\n");
kill 'INT', postmaster_pid($n_a);
wait_for_log($ctl, qr/pg_rewind exited with status 1 after \d+ ms; retrying in 1 s/);
wait_for_log($ctl, qr/retrying in 2 s/);
pass('a failed pg_rewind is retried after 1 s, then 2 s');
ok(!server_accepts_connections($n_a), 'postgres is not started while the rewind fails');
$ctl->{h}->signal('TERM');
is(wait_ctl_exit($ctl), 0, 'SIGTERM during the retries: exit 0');
$log = ctl_log($ctl);
like($log, qr/the data directory may need the rewind again/, 'the log says the rewind is still needed');
is(count_matches($log, qr/started postgres/), 1, 'postgres was not started again');
ok(-e $n_a->data_dir . '/pg_cluster.rejoin', 'the marker is kept');
is(file_contents($n_a, 'postgresql.conf'), $a_conf, "A's postgresql.conf is intact");
ok(!server_accepts_connections($n_a), 'A is down');

# a stop request while pg_rewind runs: pg_rewind is stopped, the marker
# kept.  The leader here accepts connections and never answers, so
# pg_rewind is surely running when the request comes.
my $hung_leader = IO::Socket::INET->new(
	LocalAddr => '127.0.0.1',
	LocalPort => 0,
	Listen => 1,
	ReuseAddr => 1) or die "could not listen: $!";
write_marker($n_a,
	    "leader=P\nconninfo=host=127.0.0.1 port="
	  . $hung_leader->sockport
	  . " dbname=postgres sslmode=disable\nrewind=yes\n");
$ctl = start_ctl($n_a);
ok(IO::Select->new($hung_leader)->can_read($timeout),
	'marker found at start: pg_rewind runs before postgres starts');
my $hung_conn = $hung_leader->accept;
$ctl->{h}->signal('TERM');
is(wait_ctl_exit($ctl), 0, 'SIGTERM while pg_rewind runs: exit 0');
$log = ctl_log($ctl);
like($log, qr/received SIGTERM while pg_rewind runs: stopping pg_rewind/, 'pg_rewind is stopped');
like($log, qr/pg_rewind was terminated by signal 15/, 'and it ended by that signal');
like($log, qr/the data directory may need the rewind again/, 'the log says the rewind is still needed');
unlike($log, qr/started postgres/, 'postgres was not started');
ok(-e $n_a->data_dir . '/pg_cluster.rejoin', 'the marker is kept');
is(file_contents($n_a, 'postgresql.conf'), $a_conf, "A's postgresql.conf is intact");
close $hung_conn;
close $hung_leader;

# a malformed marker found at start: nothing is started, exit 1
write_marker($n_a, "leader=P\nrewind=maybe\n");
$ctl = start_ctl($n_a);
is(wait_ctl_exit($ctl) >> 8, 1, 'malformed marker: exit 1');
$log = ctl_log($ctl);
like($log, qr/malformed rejoin marker ".*", line 2: rewind must be "yes" or "no"/,
	'the log says what is wrong with the marker');
unlike($log, qr/started postgres/, 'postgres was not started');
ok(-e $n_a->data_dir . '/pg_cluster.rejoin', 'the marker is left in place');

# a valid marker found at start: the unfinished rejoin is done first
write_marker($n_a, "leader=nobody\nrewind=no\n");
$ctl = start_ctl($n_a);
wait_until_ready($n_a);
ok($n_a->poll_query_until('postgres', 'SELECT pg_is_in_recovery()'),
	'a marker found at start: the rejoin is done before postgres starts');
like(ctl_log($ctl), qr/from an unfinished rejoin: finishing it first/, 'and the log says so');

##########################################################################
# (d) postgres dies without a marker: exit 1, no restart
##########################################################################
$pm = postmaster_pid($n_a);
kill 'KILL', $pm;
$status = wait_ctl_exit($ctl);
is($status >> 8, 1, 'postmaster killed, no marker: exit 1');
$log = ctl_log($ctl);
like($log, qr/postgres was terminated by signal 9.*not restarting it/, 'the log says so');
is(count_matches($log, qr/started postgres/), 1, 'postgres was not restarted');
ok(!kill(0, $pm) && !server_accepts_connections($n_a), 'A is down');

done_testing();

END
{
	# keep the test's exit status through the commands below
	local $?;
	foreach my $ctl (@running)
	{
		eval {
			$ctl->{h}->signal('QUIT');
			my $deadline = time + 30;
			usleep(20_000) while $ctl->{h}->pumpable && time < $deadline;
			$ctl->{h}->kill_kill(grace => 5) if $ctl->{h}->pumpable;
			$ctl->{h}->finish;
		};
	}
	# a postgres orphaned by a killed pg_cluster_ctl
	foreach my $node (values %ctl_nodes)
	{
		next unless -e $node->data_dir . '/postmaster.pid';
		system('pg_ctl', '-D', $node->data_dir, '-m', 'immediate', 'stop');
	}
}
