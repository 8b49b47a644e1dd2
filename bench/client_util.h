/*-------------------------------------------------------------------------
 *
 * client_util.h
 *		Helpers shared by the small C clients of the benchmarks and the
 *		fault suite (bench/writer.c, test/faults/client.c,
 *		test/faults/netdelay.c): clocks, one-line error messages and, for
 *		the libpq clients, a logged connection attempt.
 *
 * Wall-clock times go into the clients' logs, where they are compared
 * with the servers' event times (one machine, one clock); monotonic times
 * pace the clients and bound their waits.
 *
 * Copyright (c) 2026, pg_cluster developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_CLUSTER_CLIENT_UTIL_H
#define PG_CLUSTER_CLIENT_UTIL_H

#include <stddef.h>
#include <stdio.h>
#include <time.h>

/* wall_now: CLOCK_REALTIME, seconds since the epoch */
static inline double
wall_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* mono_now: CLOCK_MONOTONIC, seconds */
static inline double
mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * one_line: the message on one line, for a log of one line per attempt
 * (runs of newlines, tabs and spaces become one space; trailing ones go).
 * Returns a static buffer.
 */
static inline const char *
one_line(const char *msg)
{
	static char buf[1024];
	size_t		j = 0;
	int			space = 0;

	for (size_t i = 0; msg != NULL && msg[i] != '\0' && j < sizeof(buf) - 1; i++)
	{
		char		c = msg[i];

		if (c == '\n' || c == '\t' || c == '\r' || c == ' ')
		{
			if (!space && j > 0)
				buf[j++] = ' ';
			space = 1;
			continue;
		}
		buf[j++] = c;
		space = 0;
	}
	while (j > 0 && buf[j - 1] == ' ')
		j--;
	buf[j] = '\0';
	return j > 0 ? buf : "(no message)";
}

#ifdef LIBPQ_FE_H

/*
 * connect_or_log connects to uri (with a multi-host URI and
 * target_session_attrs=read-write libpq finds the writable node); a
 * failure is logged as "fail 0 SENT DONE - MESSAGE" and gives NULL.
 */
static inline PGconn *
connect_or_log(const char *uri, double sent, FILE *log)
{
	PGconn	   *conn = PQconnectdb(uri);

	if (PQstatus(conn) == CONNECTION_OK)
		return conn;
	fprintf(log, "fail 0 %.6f %.6f - %s\n", sent, wall_now(),
			one_line(PQerrorMessage(conn)));
	fflush(log);
	PQfinish(conn);
	return NULL;
}

#endif							/* LIBPQ_FE_H */

#endif							/* PG_CLUSTER_CLIENT_UTIL_H */
