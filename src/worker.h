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
extern void PeerConnectionsRequestVotes(const PgClusterVoteRequest *req);

/* election.c, candidate and leader side */
extern void ElectionTick(TimestampTz now);
extern void ElectionHandleVoteReply(int node_index, const char *peer, uint64 term,
									bool pre_vote, bool granted, uint64 voter_term,
									const char *reason);
extern bool ElectionInProgress(void);
extern const char *ElectionPhaseName(void);
extern const char *ElectionWhyNotCandidate(TimestampTz now);
extern void LeaseUpdate(TimestampTz now);

/* follow.c */
extern void FollowLeader(void);
extern bool StandbyNeedsRewind(void);
extern void RoleChangeHookStart(const char *role, uint64 term);
extern void RoleChangeHookPoll(TimestampTz now);

/* worker.c, called from peer.c with what a peer told us */
extern bool WorkerAcceptClusterIdentifier(uint64 peer_sysid, PgClusterRole peer_role,
										  char *errbuf, size_t errlen);

#endif							/* PG_CLUSTER_WORKER_H */
