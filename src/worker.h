/*-------------------------------------------------------------------------
 *
 * worker.h
 *		Interfaces between the pg_cluster worker loop (worker.c) and the
 *		peer connections it drives (peer.c).  Only the worker process uses
 *		them.
 *
 * Copyright (c) 2026, pg_cluster developers
 *
 * IDENTIFICATION
 *		src/worker.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_CLUSTER_WORKER_H
#define PG_CLUSTER_WORKER_H

#include "storage/latch.h"

#include "pg_cluster.h"

/* peer.c */
extern void PeerConnectionsConfigure(const PgClusterPeerList *peers);
extern void PeerConnectionsCloseAll(void);
extern void PeerConnectionsTick(TimestampTz now);
extern void PeerConnectionsCheckDeadlines(TimestampTz now);
extern void PeerConnectionsUpdateReachability(TimestampTz now);
extern TimestampTz PeerConnectionsNextDeadline(TimestampTz now);
extern int	PeerConnectionsAddWaitEvents(WaitEventSet *set);
extern void PeerConnectionHandleSocket(void *peer, uint32 events, TimestampTz now);
extern int	PeerConnectionsCount(void);

/* worker.c, called from peer.c with what a peer told us */
extern void WorkerObserveTerm(uint64 term, const char *source);
extern bool WorkerAcceptClusterIdentifier(uint64 peer_sysid, PgClusterRole peer_role,
										  char *errbuf, size_t errlen);

#endif							/* PG_CLUSTER_WORKER_H */
