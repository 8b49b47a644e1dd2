/*-------------------------------------------------------------------------
 *
 * pg_cluster_ctl.c
 *		Supervisor of one node of a pg_cluster cluster: runs postgres in the
 *		foreground and, when the extension demotes the node, rewinds the
 *		data directory if needed and starts postgres again as a standby.
 *
 * A running primary cannot turn itself into a standby: that takes a
 * shutdown, maybe pg_rewind on the stopped data directory, and a start in
 * recovery.  Nothing inside the server can do the last two, so the
 * extension writes a marker file (rejoin_files.c) and asks its postmaster
 * to shut down, and this program, the postmaster's parent, does the rest.
 * Without a marker, pg_cluster_ctl does not restart postgres: a server that
 * stopped or crashed on its own is the service manager's business, and
 * pg_cluster_ctl exits with a status that tells it what happened.
 *
 * Signal handling: every signal we handle is blocked except while we wait
 * in pselect(), which unblocks them atomically.  The handlers only set
 * flags, and the loops that wait act on the flags after pselect() returns,
 * so no signal can slip in between checking a flag and going to sleep.
 *
 * Children (postgres, pg_rewind) run in process groups of their own, so a
 * terminal's ^C reaches only pg_cluster_ctl, which decides what each child
 * gets; pg_rewind is signalled as a group because it may itself run
 * "postgres --single" for crash recovery.
 *
 * See docs/pg_cluster_ctl.md for the user's view.
 *
 * Copyright (c) 2026, pg_cluster developers
 *
 * IDENTIFICATION
 *		ctl/pg_cluster_ctl.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres_fe.h"

#include <ctype.h>
#include <signal.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/file_perm.h"
#include "common/logging.h"
#include "common/string.h"
#include "getopt_long.h"
#include "portability/instr_time.h"

#include "pg_cluster_ctl.h"

#define PG_CLUSTER_CTL_VERSION "1.0"

/* Delays between pg_rewind attempts: 1 s, doubling, at most 30 s. */
#define REWIND_RETRY_FIRST_MS	1000
#define REWIND_RETRY_MAX_MS		30000

typedef enum StopRequest
{
	STOP_NONE = 0,
	STOP_FAST,					/* SIGTERM or SIGINT: fast shutdown */
	STOP_IMMEDIATE				/* SIGQUIT: immediate shutdown */
} StopRequest;

typedef enum RejoinResult
{
	REJOIN_DONE,				/* start postgres as a standby */
	REJOIN_STOPPED				/* a stop request came first: exit */
} RejoinResult;

/* Set by the signal handler, read by the waiting loops. */
static volatile sig_atomic_t stop_request = STOP_NONE;
static volatile sig_atomic_t stop_signal = 0;
static volatile sig_atomic_t reload_request = false;

static const int handled_signals[] = {SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGCHLD};

#define NUM_HANDLED_SIGNALS ((int) lengthof(handled_signals))

/* The signal mask while waiting: everything we handle unblocked. */
static sigset_t wait_mask;

static const char *progname;
static char *pg_data;
static char postgres_path[MAXPGPATH];
static char rewind_path[MAXPGPATH];
static char **postgres_options;
static int	num_postgres_options;


/*
 * Every line we log starts with a timestamp like the server's own
 * log_line_prefix %m, so our lines sort in among postgres's on a shared
 * stderr.  Called by common/logging.c before the "pg_cluster_ctl: " prefix.
 */
static void
log_timestamp(void)
{
	struct timeval tv;
	struct tm	tm;
	char		stamp[64];
	char		zone[32];

	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
	strftime(zone, sizeof(zone), "%Z", &tm);
	fprintf(stderr, "%s.%03d %s ", stamp, (int) (tv.tv_usec / 1000), zone);
}

static void
usage(void)
{
	printf(_("%s runs a PostgreSQL server of a pg_cluster cluster in the foreground\n"
			 "and, when the extension demotes it, rewinds it if needed and starts it\n"
			 "again as a standby of the new leader.\n\n"), progname);
	printf(_("Usage:\n"));
	printf(_("  %s run [-D DATADIR] [-- POSTGRES-OPTION...]\n"), progname);
	printf(_("  %s --help | --version\n"), progname);
	printf(_("\nOptions:\n"));
	printf(_("  -D, --pgdata=DATADIR   data directory (default: environment variable PGDATA)\n"));
	printf(_("  -V, --version          output version information, then exit\n"));
	printf(_("  -?, --help             show this help, then exit\n"));
	printf(_("\nOptions after \"--\" are passed to postgres, e.g. -- -c config_file=FILE.\n"
			 "postgres and pg_rewind are run from the directory of %s.\n"), progname);
	printf(_("\nSignals: SIGTERM or SIGINT: fast shutdown; SIGQUIT: immediate shutdown;\n"
			 "SIGHUP: reload.  %s exits once postgres has stopped.\n"), progname);
	printf(_("\nExit status:\n"
			 "  0  postgres stopped on request (SIGTERM, SIGINT, SIGQUIT), or exited\n"
			 "     with status 0 on its own\n"
			 "  1  postgres failed or was killed; or a rejoin could not be carried out\n"
			 "     (malformed marker, file error); postgres is not restarted\n"
			 "  2  bad usage, or nothing was started: run as root, no data directory,\n"
			 "     postgres or pg_rewind missing\n"));
	printf(_("\nSee docs/pg_cluster_ctl.md in pg_cluster for the rejoin protocol.\n"));
}

static const char *
signal_name(int signo)
{
	switch (signo)
	{
		case SIGTERM:
			return "SIGTERM";
		case SIGINT:
			return "SIGINT";
		case SIGQUIT:
			return "SIGQUIT";
		case SIGHUP:
			return "SIGHUP";
		case SIGKILL:
			return "SIGKILL";
		default:
			return "signal";
	}
}

/* Describes a wait() status; returns a malloc'd string. */
static char *
describe_exit(int status)
{
	if (WIFEXITED(status))
		return psprintf("exited with status %d", WEXITSTATUS(status));
	if (WIFSIGNALED(status))
		return psprintf("was terminated by signal %d (%s)",
						WTERMSIG(status), pg_strsignal(WTERMSIG(status)));
	return psprintf("exited with unrecognized status %d", status);
}

static int64
elapsed_ms(instr_time start)
{
	instr_time	now;

	INSTR_TIME_SET_CURRENT(now);
	INSTR_TIME_SUBTRACT(now, start);
	return (int64) INSTR_TIME_GET_MILLISEC(now);
}


/*
 * Signal handler: records the request, nothing else.  Safe because the
 * signals are only ever delivered inside pselect() (see wait_for_signal).
 */
static void
handle_signal(int signo)
{
	switch (signo)
	{
		case SIGTERM:
		case SIGINT:
			if (stop_request < STOP_FAST)
			{
				stop_request = STOP_FAST;
				stop_signal = signo;
			}
			break;
		case SIGQUIT:
			stop_request = STOP_IMMEDIATE;
			stop_signal = signo;
			break;
		case SIGHUP:
			reload_request = true;
			break;
		default:
			/* SIGCHLD: being delivered is all it has to do */
			break;
	}
}

static void
setup_signals(void)
{
	struct sigaction sa;
	sigset_t	blocked;
	sigset_t	original;
	int			i;

	sigemptyset(&blocked);
	for (i = 0; i < NUM_HANDLED_SIGNALS; i++)
		sigaddset(&blocked, handled_signals[i]);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = handle_signal;
	sa.sa_mask = blocked;
	for (i = 0; i < NUM_HANDLED_SIGNALS; i++)
	{
		if (sigaction(handled_signals[i], &sa, NULL) != 0)
			pg_fatal("could not set signal handler: %m");
	}

	/* A vanished reader of stderr must not kill the supervisor. */
	pqsignal(SIGPIPE, SIG_IGN);

	if (sigprocmask(SIG_BLOCK, &blocked, &original) != 0)
		pg_fatal("could not block signals: %m");
	wait_mask = original;
	for (i = 0; i < NUM_HANDLED_SIGNALS; i++)
		sigdelset(&wait_mask, handled_signals[i]);
}

/*
 * Sleeps until a signal arrives or timeout_ms passes (-1: no timeout).  A
 * signal that arrived while blocked is delivered at once, so nothing is
 * missed; timeout 0 just collects the pending ones.
 */
static void
wait_for_signal(int timeout_ms)
{
	struct timespec ts;
	struct timespec *tsp = NULL;

	if (timeout_ms >= 0)
	{
		ts.tv_sec = timeout_ms / 1000;
		ts.tv_nsec = (long) (timeout_ms % 1000) * 1000000L;
		tsp = &ts;
	}
	if (pselect(0, NULL, NULL, NULL, tsp, &wait_mask) < 0 && errno != EINTR)
		pg_fatal("pselect() failed: %m");
}

/*
 * Reaps every child that has exited.  Returns true, with its status, if
 * "pid" was among them.  Other children are orphans re-parented to us
 * (we may be PID 1 in a container): reaping them is all we owe them.
 */
static bool
reap_children(pid_t pid, int *status)
{
	bool		found = false;

	for (;;)
	{
		int			st;
		pid_t		r = waitpid(-1, &st, WNOHANG);

		if (r == 0)
			break;
		if (r < 0)
		{
			if (errno == EINTR)
				continue;
			if (errno == ECHILD)
				break;
			pg_fatal("waitpid() failed: %m");
		}
		if (r == pid)
		{
			*status = st;
			found = true;
		}
	}
	return found;
}

/*
 * Starts a child running argv.  The child gets default signal handling
 * and an empty signal mask, and a process group of its own.
 */
static pid_t
start_child(char *const argv[], bool is_postgres)
{
	pid_t		pid;

	/* stdio buffers must not be flushed twice, once by the child */
	fflush(NULL);

	pid = fork();
	if (pid < 0)
	{
		pg_log_error("could not fork to run \"%s\": %m", argv[0]);
		return -1;
	}

	if (pid == 0)
	{
		sigset_t	none;
		int			i;

		(void) setpgid(0, 0);

		/*
		 * Defaults first, then unblock: a stop signal already sent to this
		 * pid (it happens between fork and exec) then ends the child as it
		 * would have ended the program, instead of being lost in our
		 * handler.
		 */
		for (i = 0; i < NUM_HANDLED_SIGNALS; i++)
			pqsignal(handled_signals[i], SIG_DFL);
		pqsignal(SIGPIPE, SIG_DFL);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);

		if (is_postgres)
		{
			char		supervisor[32];

			/* tells the extension that a demotion will be acted on */
			snprintf(supervisor, sizeof(supervisor), "%d", (int) getppid());
			setenv(SUPERVISOR_ENV_VAR, supervisor, 1);
		}
		else
		{
			/* all of pg_rewind's output goes where ours goes */
			dup2(STDERR_FILENO, STDOUT_FILENO);
		}

		execv(argv[0], argv);
		pg_log_error("could not execute \"%s\": %m", argv[0]);
		_exit(127);
	}

	/* also here, so that kill(-pid) works even before the child ran */
	(void) setpgid(pid, pid);
	return pid;
}

/*
 * Runs postgres until it exits, forwarding stop and reload requests.
 * Returns its wait status.
 */
static int
run_postgres(void)
{
	char	  **argv;
	pid_t		pid;
	int			forwarded = STOP_NONE;
	int			i;

	argv = pg_malloc(sizeof(char *) * (num_postgres_options + 4));
	argv[0] = postgres_path;
	argv[1] = "-D";
	argv[2] = pg_data;
	for (i = 0; i < num_postgres_options; i++)
		argv[3 + i] = postgres_options[i];
	argv[3 + num_postgres_options] = NULL;

	pid = start_child(argv, true);
	pg_free(argv);
	if (pid < 0)
		exit(CTL_EXIT_FAILURE);
	pg_log_info("started postgres (pid %d) on data directory \"%s\"",
				(int) pid, pg_data);

	for (;;)
	{
		int			status;

		if (reap_children(pid, &status))
			return status;

		if (stop_request > forwarded)
		{
			bool		immediate = (stop_request == STOP_IMMEDIATE);

			pg_log_info("received %s: asking postgres for %s shutdown (%s)",
						signal_name(stop_signal),
						immediate ? "an immediate" : "a fast",
						immediate ? "SIGQUIT" : "SIGINT");
			if (kill(pid, immediate ? SIGQUIT : SIGINT) != 0 && errno != ESRCH)
				pg_log_error("could not signal postgres (pid %d): %m", (int) pid);
			forwarded = stop_request;
		}
		if (reload_request)
		{
			reload_request = false;
			pg_log_info("received SIGHUP: forwarding it to postgres");
			if (kill(pid, SIGHUP) != 0 && errno != ESRCH)
				pg_log_error("could not signal postgres (pid %d): %m", (int) pid);
		}

		wait_for_signal(-1);
	}
}

/*
 * Runs pg_rewind once.  Returns its wait status, or -1 if it could not be
 * started; sets *stopped if a stop request ended it.
 */
static int
run_rewind(const RejoinMarker *marker, bool *stopped)
{
	char	   *source = psprintf("--source-server=%s", marker->conninfo);
	char	   *argv[5];
	pid_t		pid;
	int			signalled = STOP_NONE;

	argv[0] = rewind_path;
	argv[1] = "-D";
	argv[2] = pg_data;
	argv[3] = source;
	argv[4] = NULL;

	*stopped = false;
	pid = start_child(argv, false);
	pg_free(source);
	if (pid < 0)
		return -1;

	for (;;)
	{
		int			status;

		if (reap_children(pid, &status))
			return status;

		if (stop_request > signalled)
		{
			int			sig = (stop_request == STOP_IMMEDIATE) ? SIGKILL : SIGTERM;

			pg_log_info("received %s while pg_rewind runs: stopping pg_rewind (%s)",
						signal_name(stop_signal), signal_name(sig));
			/* the group: pg_rewind may be running postgres --single */
			if (kill(-pid, sig) != 0 && kill(pid, sig) != 0 && errno != ESRCH)
				pg_log_error("could not signal pg_rewind (pid %d): %m", (int) pid);
			signalled = stop_request;
			*stopped = true;
		}
		if (reload_request)
		{
			reload_request = false;
			pg_log_info("received SIGHUP while postgres is not running: nothing to reload");
		}

		wait_for_signal(-1);
	}
}

/* Sleeps for ms unless a stop request comes first. */
static void
sleep_unless_stopped(int ms)
{
	instr_time	start;

	INSTR_TIME_SET_CURRENT(start);
	for (;;)
	{
		int64		left;
		int			unused;

		(void) reap_children(0, &unused);
		if (reload_request)
		{
			reload_request = false;
			pg_log_info("received SIGHUP while postgres is not running: nothing to reload");
		}
		left = ms - elapsed_ms(start);
		if (stop_request != STOP_NONE || left <= 0)
			return;
		wait_for_signal((int) left);
	}
}

/*
 * After a stop request interrupted the rejoin before pg_rewind succeeded:
 * the data directory may be half rewound, so the marker stays (written
 * back if pg_rewind removed it) and the next run of pg_cluster_ctl starts
 * by rewinding again instead of starting postgres.
 */
static RejoinResult
rejoin_interrupted(const RejoinMarker *marker)
{
	pg_log_info("received %s during the rejoin: not starting postgres again",
				signal_name(stop_signal));
	if (!write_rejoin_marker(pg_data, marker))
	{
		pg_log_error("could not keep the rejoin marker: do not start postgres on \"%s\" before pg_rewind succeeds",
					 pg_data);
		exit(CTL_EXIT_FAILURE);
	}
	pg_log_warning("stopped before pg_rewind succeeded: the data directory may need the rewind again");
	pg_log_warning_detail("The rejoin marker is kept; the next run of %s rewinds before starting postgres.",
						  progname);
	return REJOIN_STOPPED;
}

/*
 * Runs pg_rewind until it succeeds or a stop request comes, putting the
 * node's own files back after every attempt.  Never lets postgres start
 * on a data directory whose rewind failed.
 */
static RejoinResult
rewind_until_done(const RejoinMarker *marker, int64 *rewind_ms, int *attempts)
{
	NodeFiles	saved;
	int			delay_ms = REWIND_RETRY_FIRST_MS;
	instr_time	first_start;

	if (!save_node_files(pg_data, &saved))
	{
		pg_log_error("could not save the node's configuration files: pg_rewind not run");
		exit(CTL_EXIT_FAILURE);
	}
	pg_log_info("saved the node's own configuration files; they are written back after pg_rewind");

	INSTR_TIME_SET_CURRENT(first_start);
	for (*attempts = 1;; (*attempts)++)
	{
		instr_time	start;
		int			status;
		bool		stopped;
		char	   *how;

		wait_for_signal(0);
		if (stop_request != STOP_NONE)
		{
			(*attempts)--;
			free_node_files(&saved);
			return rejoin_interrupted(marker);
		}

		pg_log_info("running pg_rewind (attempt %d) from the leader %s",
					*attempts, marker->leader);
		INSTR_TIME_SET_CURRENT(start);
		status = run_rewind(marker, &stopped);
		*rewind_ms = elapsed_ms(start);

		/* the marker first: it is what keeps postgres from starting */
		if ((status != 0 || stopped) && !write_rejoin_marker(pg_data, marker))
		{
			pg_log_error("could not write back the rejoin marker: do not start postgres on \"%s\" before pg_rewind succeeds",
						 pg_data);
			exit(CTL_EXIT_FAILURE);
		}
		if (!restore_node_files(pg_data, &saved))
		{
			pg_log_error("could not write back the node's configuration files after pg_rewind");
			exit(CTL_EXIT_FAILURE);
		}
		pg_log_info("wrote back the node's own configuration files");

		if (status == 0 && !stopped)
		{
			if (*attempts == 1)
				pg_log_info("pg_rewind succeeded in " INT64_FORMAT " ms",
							*rewind_ms);
			else
				pg_log_info("pg_rewind succeeded in " INT64_FORMAT " ms at attempt %d, " INT64_FORMAT " ms after the first",
							*rewind_ms, *attempts, elapsed_ms(first_start));
			free_node_files(&saved);
			return REJOIN_DONE;
		}

		how = (status < 0) ? pg_strdup("could not be started") : describe_exit(status);
		if (stopped)
		{
			pg_log_info("pg_rewind %s", how);
			pg_free(how);
			free_node_files(&saved);
			return rejoin_interrupted(marker);
		}
		pg_log_error("pg_rewind %s after " INT64_FORMAT " ms; retrying in %d s (postgres stays down until a rewind succeeds)",
					 how, *rewind_ms, delay_ms / 1000);
		pg_free(how);

		sleep_unless_stopped(delay_ms);
		delay_ms = Min(delay_ms * 2, REWIND_RETRY_MAX_MS);
	}
}

/*
 * Carries out the rejoin the marker asks for: pg_rewind if needed, then
 * standby.signal, marker removed, .done written.  Exits on a malformed
 * marker or a file error, leaving the data directory as it is.
 */
static RejoinResult
rejoin(void)
{
	RejoinMarker marker;
	instr_time	start;
	int64		rewind_ms = 0;
	int			attempts = 0;
	bool		created;

	INSTR_TIME_SET_CURRENT(start);
	if (!read_rejoin_marker(pg_data, &marker))
	{
		pg_log_error("not starting postgres: the data directory is left as it is");
		pg_log_error_hint("Fix or remove \"%s/%s\", then start %s again.",
						  pg_data, REJOIN_MARKER_FILE, progname);
		exit(CTL_EXIT_FAILURE);
	}
	pg_log_info("postgres stopped to rejoin as a standby of %s (%s)",
				marker.leader, marker.reason ? marker.reason : "no reason given");

	if (marker.rewind)
	{
		if (rewind_until_done(&marker, &rewind_ms, &attempts) == REJOIN_STOPPED)
		{
			free_rejoin_marker(&marker);
			return REJOIN_STOPPED;
		}
	}
	else
		pg_log_info("the marker says rewind=no: restarting as a standby without pg_rewind");

	if (!ensure_standby_signal(pg_data, &created))
		exit(CTL_EXIT_FAILURE);
	if (created)
		pg_log_info("created \"%s/%s\"", pg_data, STANDBY_SIGNAL_FILE);
	if (!remove_rejoin_marker(pg_data))
		exit(CTL_EXIT_FAILURE);
	if (!write_rejoin_done(pg_data, marker.leader, marker.rewind, rewind_ms,
						   attempts))
		exit(CTL_EXIT_FAILURE);
	pg_log_info("rejoin done in " INT64_FORMAT " ms: starting postgres as a standby of %s",
				elapsed_ms(start), marker.leader);
	free_rejoin_marker(&marker);
	return REJOIN_DONE;
}

/*
 * Finds a program of the same PostgreSQL major version in our own
 * directory.  Only the major version must match: a minor update of the
 * server packages must not stop the supervisor of an HA node.
 */
static void
find_sibling(const char *argv0, const char *target, char *path)
{
	char		cmd[MAXPGPATH + 8];
	char		line[MAXPGPATH];
	char	   *expected;
	size_t		len;

	if (find_my_exec(argv0, path) < 0)
	{
		pg_log_error("could not find the full path of %s itself", progname);
		exit(CTL_EXIT_USAGE);
	}
	*last_dir_separator(path) = '\0';
	canonicalize_path(path);
	join_path_components(path, path, target);

	if (validate_exec(path) != 0)
	{
		pg_log_error("program \"%s\" not found or not executable: %s needs it in its own directory",
					 path, progname);
		exit(CTL_EXIT_USAGE);
	}

	snprintf(cmd, sizeof(cmd), "\"%s\" -V", path);
	if (pipe_read_line(cmd, line, sizeof(line)) == NULL)
	{
		pg_log_error("could not get the version of \"%s\"", path);
		exit(CTL_EXIT_USAGE);
	}
	expected = psprintf("%s (PostgreSQL) %s", target, PG_MAJORVERSION);
	len = strlen(expected);
	if (strncmp(line, expected, len) != 0 || isdigit((unsigned char) line[len]))
	{
		(void) pg_strip_crlf(line);
		pg_log_error("\"%s\" is \"%s\", but %s was built for PostgreSQL %s",
					 path, line, progname, PG_MAJORVERSION);
		exit(CTL_EXIT_USAGE);
	}
	pg_free(expected);
}

static void
parse_arguments(int argc, char *argv[])
{
	static struct option long_options[] = {
		{"pgdata", required_argument, NULL, 'D'},
		{"help", no_argument, NULL, 1},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0}
	};
	char	  **args;
	int			nargs;
	const char *data_arg = NULL;
	int			c;

	if (argc > 1)
	{
		if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-?") == 0)
		{
			usage();
			exit(CTL_EXIT_OK);
		}
		if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0)
		{
			puts("pg_cluster_ctl (pg_cluster) " PG_CLUSTER_CTL_VERSION);
			exit(CTL_EXIT_OK);
		}
	}
	if (argc < 2)
	{
		pg_log_error("no command specified");
		pg_log_error_hint("Try \"%s --help\" for more information.", progname);
		exit(CTL_EXIT_USAGE);
	}
	if (strcmp(argv[1], "run") != 0)
	{
		pg_log_error("unrecognized command \"%s\"", argv[1]);
		pg_log_error_hint("Try \"%s --help\" for more information.", progname);
		exit(CTL_EXIT_USAGE);
	}

	/*
	 * Options follow the command.  "+" stops at the first non-option, so
	 * that everything after "--" is left for postgres; we report errors
	 * ourselves because getopt would name the command, not the program.
	 */
	args = argv + 1;
	nargs = argc - 1;
	opterr = 0;
	while ((c = getopt_long(nargs, args, "+:D:V", long_options, NULL)) != -1)
	{
		switch (c)
		{
			case 'D':
				data_arg = optarg;
				break;
			case 'V':
				puts("pg_cluster_ctl (pg_cluster) " PG_CLUSTER_CTL_VERSION);
				exit(CTL_EXIT_OK);
			case 1:
				usage();
				exit(CTL_EXIT_OK);
			case ':':
				pg_log_error("option \"%s\" requires an argument", args[optind - 1]);
				pg_log_error_hint("Try \"%s --help\" for more information.", progname);
				exit(CTL_EXIT_USAGE);
			case '?':
				if (optopt != 0)
					pg_log_error("invalid option -- '%c'", optopt);
				else
					pg_log_error("unrecognized option \"%s\"", args[optind - 1]);
				pg_log_error_hint("Try \"%s --help\" for more information.", progname);
				exit(CTL_EXIT_USAGE);
			default:
				pg_log_error("unexpected getopt result %d", c);
				exit(CTL_EXIT_USAGE);
		}
	}

	/* what is left must come after a "--" that ended the options */
	if (optind < nargs)
	{
		if (optind < 2 || strcmp(args[optind - 1], "--") != 0 ||
			args[optind - 1] == data_arg)
		{
			pg_log_error("too many command-line arguments (first is \"%s\")",
						 args[optind]);
			pg_log_error_hint("Options for postgres go after \"--\".");
			exit(CTL_EXIT_USAGE);
		}
		postgres_options = args + optind;
		num_postgres_options = nargs - optind;
	}

	if (data_arg == NULL)
		data_arg = getenv("PGDATA");
	if (data_arg == NULL || data_arg[0] == '\0')
	{
		pg_log_error("no data directory specified");
		pg_log_error_hint("Use -D DATADIR or set the environment variable PGDATA.");
		exit(CTL_EXIT_USAGE);
	}
	pg_data = pg_strdup(data_arg);
	canonicalize_path(pg_data);
}

/* Refuses what can only fail later, before anything is started. */
static void
check_environment(const char *argv0)
{
	struct stat st;

	if (geteuid() == 0)
	{
		pg_log_error("cannot be run as root");
		pg_log_error_hint("Run %s as the unprivileged user that owns the data directory; PostgreSQL refuses to run as root.",
						  progname);
		exit(CTL_EXIT_USAGE);
	}
	if (stat(pg_data, &st) != 0)
	{
		if (errno == ENOENT)
			pg_log_error("data directory \"%s\" does not exist", pg_data);
		else
			pg_log_error("could not access data directory \"%s\": %m", pg_data);
		exit(CTL_EXIT_USAGE);
	}
	if (!S_ISDIR(st.st_mode))
	{
		pg_log_error("\"%s\" is not a directory", pg_data);
		exit(CTL_EXIT_USAGE);
	}

	find_sibling(argv0, "postgres", postgres_path);
	find_sibling(argv0, "pg_rewind", rewind_path);

	/* files we create get the data directory's mode, as pg_rewind does */
	if (!GetDataDirectoryCreatePerm(pg_data))
	{
		pg_log_error("could not read permissions of directory \"%s\": %m", pg_data);
		exit(CTL_EXIT_USAGE);
	}
	umask(pg_mode_mask);
}

int
main(int argc, char *argv[])
{
	pg_logging_init(argv[0]);
	progname = get_progname(argv[0]);

	/*
	 * One write per line, so that our lines never interleave with the
	 * server's on the stderr we share with it.
	 */
	setvbuf(stderr, NULL, _IOLBF, 0);
	pg_logging_set_pre_callback(log_timestamp);

	parse_arguments(argc, argv);
	check_environment(argv[0]);
	setup_signals();

	pg_log_info("pg_cluster_ctl %s (pid %d) supervising \"%s\"",
				PG_CLUSTER_CTL_VERSION, (int) getpid(), pg_data);

	/*
	 * A marker left by an earlier run means a rejoin was interrupted, maybe
	 * in the middle of pg_rewind: finish it before postgres may start.
	 */
	if (rejoin_marker_exists(pg_data))
	{
		pg_log_info("found \"%s/%s\" from an unfinished rejoin: finishing it first",
					pg_data, REJOIN_MARKER_FILE);
		if (rejoin() == REJOIN_STOPPED)
			exit(CTL_EXIT_OK);
	}

	for (;;)
	{
		int			status;
		char	   *how;

		/* collect a stop request that came while we were busy */
		wait_for_signal(0);
		if (stop_request != STOP_NONE)
		{
			pg_log_info("received %s: not starting postgres again", signal_name(stop_signal));
			exit(CTL_EXIT_OK);
		}

		status = run_postgres();
		how = describe_exit(status);

		if (stop_request != STOP_NONE)
		{
			pg_log_info("postgres %s after the shutdown request; exiting", how);
			if (rejoin_marker_exists(pg_data))
				pg_log_info("\"%s/%s\" is kept: the next run of %s carries out the rejoin",
							pg_data, REJOIN_MARKER_FILE, progname);
			exit(CTL_EXIT_OK);
		}

		if (!rejoin_marker_exists(pg_data))
		{
			bool		ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;

			if (ok)
				pg_log_info("postgres %s on its own, without a rejoin marker: not restarting it", how);
			else
				pg_log_error("postgres %s, without a rejoin marker: not restarting it", how);
			exit(ok ? CTL_EXIT_OK : CTL_EXIT_FAILURE);
		}

		pg_log_info("postgres %s", how);
		pg_free(how);
		if (rejoin() == REJOIN_STOPPED)
			exit(CTL_EXIT_OK);
	}
}
