/*
 * writer.c: the client of bench/failover.sh.
 *
 * Usage: writer URI DURATION_S INTERVAL_MS LOG
 *
 * Every INTERVAL_MS milliseconds, for DURATION_S seconds, makes sure it has
 * a connection (PQconnectdb(URI): with a multi-host URI and
 * target_session_attrs=read-write, libpq picks the writable node), then runs
 *
 *     INSERT INTO ledger (id, at) VALUES ($1, clock_timestamp()) RETURNING id
 *
 * with a new id each time (1, 2, ...; an id whose INSERT failed is not used
 * again, so a failed write that committed anyway shows up as such).  On any
 * failure it records the error and drops the connection; the next tick
 * connects again.  One line per attempt goes to LOG, flushed at once:
 *
 *     ok   ID SENT ACKED PORT
 *     fail ID SENT DONE SQLSTATE MESSAGE      (ID 0: no connection)
 *
 * SENT, ACKED, DONE: client wall-clock time (CLOCK_REALTIME, seconds since
 * the epoch with microseconds), when the attempt began and when its answer
 * (or failure) arrived.  PORT: the server's port.  SQLSTATE is "-" when the
 * server sent none (connection failures).  Ticks that come while an attempt
 * is still running are skipped, not queued.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "libpq-fe.h"

#include "client_util.h"

int
main(int argc, char **argv)
{
	const char *uri;
	double		duration,
				interval,
				start,
				end,
				next;
	FILE	   *log;
	PGconn	   *conn = NULL;
	long		id = 0;

	if (argc != 5)
	{
		fprintf(stderr, "usage: %s URI DURATION_S INTERVAL_MS LOG\n", argv[0]);
		return 2;
	}
	uri = argv[1];
	duration = atof(argv[2]);
	interval = atof(argv[3]) / 1000.0;
	if (duration <= 0 || interval <= 0)
	{
		fprintf(stderr, "%s: bad duration or interval\n", argv[0]);
		return 2;
	}
	log = fopen(argv[4], "w");
	if (log == NULL)
	{
		fprintf(stderr, "%s: cannot open %s: %s\n", argv[0], argv[4], strerror(errno));
		return 1;
	}

	start = mono_now();
	end = start + duration;
	next = start;
	while (mono_now() < end)
	{
		double		sent = wall_now();

		if (conn == NULL)
			conn = connect_or_log(uri, sent, log);
		if (conn != NULL)
		{
			char		idbuf[32];
			const char *params[1] = {idbuf};
			PGresult   *res;

			snprintf(idbuf, sizeof(idbuf), "%ld", ++id);
			sent = wall_now();
			res = PQexecParams(conn,
							   "INSERT INTO ledger (id, at) VALUES ($1, clock_timestamp()) RETURNING id",
							   1, NULL, params, NULL, NULL, 0);
			if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
				fprintf(log, "ok %ld %.6f %.6f %s\n", id, sent, wall_now(), PQport(conn));
			else
			{
				const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

				fprintf(log, "fail %ld %.6f %.6f %s %s\n", id, sent, wall_now(),
						state ? state : "-", one_line(PQerrorMessage(conn)));
				PQfinish(conn);
				conn = NULL;
			}
			fflush(log);
			PQclear(res);
		}

		/* the next tick that is still ahead */
		next += interval;
		{
			double		now = mono_now();

			while (next <= now)
				next += interval;
			if (next >= end)
				break;
			{
				struct timespec ts;

				ts.tv_sec = (time_t) next;
				ts.tv_nsec = (long) ((next - (double) ts.tv_sec) * 1e9);
				while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
					;
			}
		}
	}
	if (conn != NULL)
		PQfinish(conn);
	fclose(log);
	return 0;
}
