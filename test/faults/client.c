/*-------------------------------------------------------------------------
 *
 * client.c
 *		A client of the fault suite: writes unique ids through its own
 *		connection string and logs every attempt, so that the checker can
 *		tell which commits were acknowledged, by which node, in which term.
 *
 * Usage: client CLIENT_NO URI INTERVAL_MS LOG
 *
 * Every INTERVAL_MS it makes sure it has a connection (PQconnectdb: with a
 * multi-host URI and target_session_attrs=read-write libpq finds the
 * writable node; connect_timeout bounds each host), then runs
 *
 *	INSERT INTO ledger (id, client, node, term)
 *		SELECT $1, $2, current_setting('cluster_name'), term FROM pg_cluster.status
 *		RETURNING node, term
 *
 * with ids CLIENT_NO * 10^9 + 1, + 2, ...  The answer is awaited at most
 * ANSWER_TIMEOUT_S (a partitioned or frozen server never answers); then
 * the outcome is unknown and the connection is dropped.  One line per
 * attempt, flushed at once (times: CLOCK_REALTIME seconds, shared by every
 * namespace of the machine):
 *
 *	ok      ID SENT ACKED NODE TERM
 *	fail    ID SENT DONE SQLSTATE MESSAGE     (ID 0: no connection)
 *	unknown ID SENT DONE
 *
 * Ends on SIGTERM.
 *
 * Copyright (c) 2026, pg_cluster developers
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "libpq-fe.h"

#include "../../bench/client_util.h"

#define ANSWER_TIMEOUT_S 3.0

static volatile sig_atomic_t stop_requested = 0;

static void
handle_stop(int sig)
{
	stop_requested = 1;
}

/* What became of one INSERT, as far as this client can tell. */
typedef enum Outcome
{
	OUTCOME_ACKNOWLEDGED,		/* rows, then ReadyForQuery, no error */
	OUTCOME_FAILED,				/* the server reported an error, connection up */
	OUTCOME_UNKNOWN				/* no complete answer: timeout or connection lost */
} Outcome;

/*
 * AwaitOutcome waits until the server has answered the whole query
 * (PQgetResult returns NULL once ReadyForQuery arrived) or the deadline
 * passes.  PQsendQueryParams uses the extended protocol, where the commit
 * of the implicit transaction happens at Sync, after the rows and
 * CommandComplete were sent: a commit that the fence refuses, or a session
 * that the server ends instead of acknowledging, comes after a successful
 * result.  So only a query whose every result succeeded and whose answer
 * ended with ReadyForQuery counts as acknowledged.  *rows gets the result
 * with the rows (acknowledged) or the first error (failed), else NULL.
 */
static Outcome
AwaitOutcome(PGconn *conn, double deadline, PGresult **rows)
{
	PGresult   *error = NULL;
	PGresult   *res;

	*rows = NULL;
	for (;;)
	{
		while (!PQisBusy(conn) && (res = PQgetResult(conn)) != NULL)
		{
			if (PQresultStatus(res) == PGRES_TUPLES_OK && *rows == NULL)
				*rows = res;
			else if (PQresultStatus(res) != PGRES_TUPLES_OK && error == NULL)
				error = res;
			else
				PQclear(res);
		}
		if (PQstatus(conn) != CONNECTION_OK)
			break;
		if (!PQisBusy(conn))
		{
			/* ReadyForQuery arrived */
			if (error != NULL)
			{
				PQclear(*rows);
				*rows = error;
				return OUTCOME_FAILED;
			}
			return *rows != NULL ? OUTCOME_ACKNOWLEDGED : OUTCOME_UNKNOWN;
		}
		{
			double		left = deadline - mono_now();
			struct pollfd pfd = {.fd = PQsocket(conn),.events = POLLIN};
			int			rc;

			if (left <= 0 || stop_requested)
				break;
			rc = poll(&pfd, 1, (int) (left * 1000) + 1);
			if (rc < 0 && errno != EINTR)
				break;
			if (rc > 0 && !PQconsumeInput(conn))
				break;
		}
	}

	/*
	 * No ReadyForQuery: the commit may or may not have happened (a lost
	 * connection is what the fence gives instead of an acknowledgement).
	 */
	PQclear(*rows);
	PQclear(error);
	*rows = NULL;
	return OUTCOME_UNKNOWN;
}

int
main(int argc, char **argv)
{
	long		client_no;
	const char *uri;
	double		interval;
	FILE	   *log;
	PGconn	   *conn = NULL;
	long		seq = 0;
	double		next;

	if (argc != 5)
	{
		fprintf(stderr, "usage: %s CLIENT_NO URI INTERVAL_MS LOG\n", argv[0]);
		return 2;
	}
	client_no = atol(argv[1]);
	uri = argv[2];
	interval = atof(argv[3]) / 1000.0;
	log = fopen(argv[4], "a");
	if (client_no <= 0 || interval <= 0 || log == NULL)
	{
		fprintf(stderr, "%s: bad arguments or cannot open %s\n", argv[0], argv[4]);
		return 2;
	}
	signal(SIGTERM, handle_stop);
	signal(SIGINT, handle_stop);
	signal(SIGPIPE, SIG_IGN);

	next = mono_now();
	while (!stop_requested)
	{
		double		sent = wall_now();

		if (conn == NULL)
			conn = connect_or_log(uri, sent, log);
		if (conn != NULL && !stop_requested)
		{
			char		idbuf[32];
			char		clientbuf[32];
			const char *params[2] = {idbuf, clientbuf};
			long		id = client_no * 1000000000L + (++seq);
			PGresult   *res = NULL;
			Outcome		outcome = OUTCOME_UNKNOWN;

			snprintf(idbuf, sizeof(idbuf), "%ld", id);
			snprintf(clientbuf, sizeof(clientbuf), "%ld", client_no);
			sent = wall_now();
			if (PQsendQueryParams(conn,
								  "INSERT INTO ledger (id, client, node, term) "
								  "SELECT $1, $2, current_setting('cluster_name'), term "
								  "FROM pg_cluster.status RETURNING node, term",
								  2, NULL, params, NULL, NULL, 0))
				outcome = AwaitOutcome(conn, mono_now() + ANSWER_TIMEOUT_S, &res);
			if (outcome == OUTCOME_ACKNOWLEDGED && PQntuples(res) == 1)
				fprintf(log, "ok %ld %.6f %.6f %s %s\n", id, sent, wall_now(),
						PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
			else if (outcome == OUTCOME_FAILED)
			{
				const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

				fprintf(log, "fail %ld %.6f %.6f %s %s\n", id, sent, wall_now(),
						state ? state : "-", one_line(PQresultErrorMessage(res)));
			}
			else
				fprintf(log, "unknown %ld %.6f %.6f\n", id, sent, wall_now());
			fflush(log);
			if (outcome != OUTCOME_ACKNOWLEDGED)
			{
				PQfinish(conn);
				conn = NULL;
			}
			PQclear(res);
		}

		/* the next tick; ticks missed while waiting are skipped */
		next += interval;
		if (next < mono_now())
			next = mono_now();
		if (!stop_requested && mono_now() < next)
		{
			double		wait = next - mono_now();
			struct timespec ts;

			ts.tv_sec = (time_t) wait;
			ts.tv_nsec = (long) ((wait - ts.tv_sec) * 1e9);
			nanosleep(&ts, NULL);	/* a signal ends it early: fine */
		}
	}
	if (conn != NULL)
		PQfinish(conn);
	fclose(log);
	return 0;
}
