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
extern uint64 PeerConnectionsSocketsGeneration(void);
extern int	PeerConnectionsAddWaitEvents(WaitEventSet *set);
extern void PeerConnectionsUpdateWaitEvents(WaitEventSet *set);
extern void PeerConnectionHandleSocket(void *peer, uint32 events, TimestampTz now);
extern int	PeerConnectionsCount(void);
extern void PeerConnectionsRequestVotes(const PgClusterVoteRequest *req);

/* A leader's request that the target of a switchover take over. */
typedef struct PgClusterHandoverRequest
{
	uint64		term;			/* the term the leader leads */
	XLogRecPtr	lsn;			/* its handover LSN */
	int			timeout_ms;		/* what is left of the switchover's time */
} PgClusterHandoverRequest;

extern bool PeerConnectionsRequestHandover(const char *name,
										   const PgClusterHandoverRequest *req);

/* election.c, candidate and leader side */
extern void ElectionTick(TimestampTz now);
extern void ElectionHandleVoteReply(int node_index, const char *peer, uint64 term,
									bool pre_vote, bool granted, uint64 voter_term,
									const char *reason);
extern bool ElectionInProgress(void);
extern const char *ElectionPhaseName(void);
extern const char *ElectionWhyNotCandidate(TimestampTz now);
extern void LeaseUpdate(TimestampTz now);

extern void PromoteStandby(uint64 term, const char *why);

/* handover.c, the target's side of a switchover */
extern bool HandoverPending(uint64 term, char *from);
extern bool HandoverCatchingUp(void);
extern void HandoverTick(TimestampTz now);

/* switchover.c, the leader's side */
extern void SwitchoverHandleHandoverReply(const char *peer, bool accepted,
										  bool unclear, const char *reason);
extern void SwitchoverTick(TimestampTz now);
extern bool SwitchoverNeedsFastPoll(void);
extern void SwitchoverWorkerStart(void);
extern bool SwitchoverInProgress(void);

/* rejoin.c */
extern void RejoinPrepare(const char *leader, bool rewind, bool shutting_down,
						  const char *reason);
extern void RejoinShutdown(const char *why);
extern bool RejoinRequested(void);
extern void RejoinTick(bool standby_needs_rewind);
extern void RejoinWorkerStart(void);

/* follow.c */
extern void FollowLeader(void);
extern void SetPrimaryConninfo(const char *conninfo);
extern void AlterSystemSet(const char *name, const char *value);

/* syncrep.c, the leader's management of synchronous replication */
extern void SyncRepTick(TimestampTz now);

/* walterm.c */
extern void WalTermTick(void);
extern void WalTermLearnFromLeader(uint64 term, XLogRecPtr marker_end, TimeLineID timeline);
extern bool StandbyNeedsRewind(void);
extern void RoleChangeHookStart(const char *role, uint64 term);
extern void RoleChangeHookPoll(TimestampTz now);

/* worker.c */
extern void WorkerRequestImmediateTick(void);

/* worker.c, called from peer.c with what a peer told us */
extern bool WorkerAcceptClusterIdentifier(uint64 peer_sysid, PgClusterRole peer_role,
										  char *errbuf, size_t errlen);

#endif							/* PG_CLUSTER_WORKER_H */
