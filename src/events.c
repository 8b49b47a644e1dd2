/*-------------------------------------------------------------------------
 *
 * events.c
 *		The ring of recent cluster events in shared memory, shown by the view
 *		pg_cluster.events.
 *
 * The ring keeps the last PGC_EVENT_RING_SIZE events; older ones are
 * overwritten.  Every event is also written to the server log, which is
 * where the full history lives.
 *
 * Copyright (c) 2026, pg_cluster developers
 *
 * IDENTIFICATION
 *		src/events.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/timestamp.h"

#include "pg_cluster.h"

/*
 * PgClusterRecordEvent stores an event of the given kind about "node" (NULL
 * for this node) in the ring and logs it.  The caller must not hold the
 * shared-state lock.
 */
void
PgClusterRecordEvent(const char *kind, const char *node, const char *fmt,...)
{
	char		detail[PGC_EVENT_DETAIL_LEN];
	va_list		args;
	PgClusterEvent *event;
	uint64		term;

	va_start(args, fmt);
	vsnprintf(detail, sizeof(detail), fmt, args);
	va_end(args);

	if (node == NULL)
		node = PgClusterNodeName ? PgClusterNodeName : "";

	/* an unlocked read of the term: events only display it */
	term = PgClusterShmem->durable.term;
	LWLockAcquire(PgClusterShmem->lock, LW_EXCLUSIVE);
	event = &PgClusterShmem->events[PgClusterShmem->next_event_seq %
									PGC_EVENT_RING_SIZE];
	event->seq = PgClusterShmem->next_event_seq++;
	event->at = GetCurrentTimestamp();
	event->term = term;
	strlcpy(event->node, node, PGC_NAME_LEN);
	strlcpy(event->kind, kind, PGC_EVENT_KIND_LEN);
	strlcpy(event->detail, detail, PGC_EVENT_DETAIL_LEN);
	LWLockRelease(PgClusterShmem->lock);

	ereport(LOG,
			(errmsg("pg_cluster: %s: %s", kind, detail),
			 errdetail("Node \"%s\", term " UINT64_FORMAT ".", node, term)));
}
