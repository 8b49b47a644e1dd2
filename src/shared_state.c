/*-------------------------------------------------------------------------
 *
 * shared_state.c
 *		The shared-memory state of pg_cluster and what this node knows about
 *		itself (role, timeline, LSN, system identifier).
 *
 * The node table is rebuilt by the worker from pg_cluster.peers at every
 * reload; entries of nodes that stay in the list keep what was learned
 * about them.  Backends only read it, except that an incoming heartbeat
 * writes the sender's entry.
 *
 * Copyright (c) 2026, pg_cluster developers
 *
 * IDENTIFICATION
 *		src/shared_state.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlog.h"
#include "access/xlogrecovery.h"
#include "miscadmin.h"
#include "replication/walreceiver.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"

#include "pg_cluster.h"

PgClusterShared *PgClusterShmem = NULL;

static const char *const role_names[] = {
	[PGC_ROLE_UNKNOWN] = "unknown",
	[PGC_ROLE_PRIMARY] = "primary",
	[PGC_ROLE_STANDBY] = "standby",
	[PGC_ROLE_WITNESS] = "witness",
};

static const char *const state_names[] = {
	[PGC_STATE_STARTING] = "starting",
	[PGC_STATE_UNCONFIGURED] = "unconfigured",
	[PGC_STATE_STATE_FILE_CORRUPT] = "state_file_corrupt",
	[PGC_STATE_BOOTSTRAPPING] = "bootstrapping",
	[PGC_STATE_LEADER] = "leader",
	[PGC_STATE_FENCED] = "fenced",
	[PGC_STATE_CANDIDATE] = "candidate",
	[PGC_STATE_PROMOTING] = "promoting",
	[PGC_STATE_DEMOTING] = "demoting",
	[PGC_STATE_CATCHING_UP] = "catching_up",
	[PGC_STATE_NEEDS_REWIND] = "needs_rewind",
	[PGC_STATE_STREAMING] = "streaming",
	[PGC_STATE_NOT_STREAMING] = "not_streaming",
	[PGC_STATE_WITNESS] = "witness",
};

StaticAssertDecl(lengthof(role_names) == PGC_ROLE_WITNESS + 1,
				 "role_names must name every PgClusterRole");
StaticAssertDecl(lengthof(state_names) == PGC_STATE_LAST + 1,
				 "state_names must name every PgClusterWorkerState");

Size
PgClusterShmemSize(void)
{
	return MAXALIGN(sizeof(PgClusterShared));
}

/*
 * PgClusterShmemInit creates or attaches the shared state.  It runs in the
 * postmaster (and in every backend on EXEC_BACKEND builds).
 */
void
PgClusterShmemInit(void)
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	PgClusterShmem = ShmemInitStruct("pg_cluster", PgClusterShmemSize(), &found);
	if (!found)
	{
		LWLockPadded *locks = GetNamedLWLockTranche("pg_cluster");

		memset(PgClusterShmem, 0, sizeof(PgClusterShared));
		PgClusterShmem->lock = &locks[0].lock;
		PgClusterShmem->durable_lock = &locks[1].lock;
		pg_atomic_init_u64(&PgClusterShmem->commit_allowed_until, 0);
		pg_atomic_init_u32(&PgClusterShmem->commit_hold, 0);
		pg_atomic_init_u32(&PgClusterShmem->commits_in_flight, 0);
		pg_atomic_init_u64(&PgClusterShmem->sync_ready_term, 0);
		ConditionVariableInit(&PgClusterShmem->hold_cv);
		ConditionVariableInit(&PgClusterShmem->switchover_cv);
		PgClusterShmem->state = PGC_STATE_STARTING;
		PgClusterShmem->next_event_seq = 1;

		/*
		 * A node that (re)starts refuses votes for a failover timeout
		 * (rule V3): it may have acknowledged a lease just before it went
		 * down.  Backends answer votes before the worker runs, so the clock
		 * starts here, at postmaster start and at every crash restart.
		 */
		PgClusterShmem->last_leader_contact = GetCurrentTimestamp();
		if (PgClusterPeers != NULL)
			PgClusterSyncNodeTable(PgClusterPeers);
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * PgClusterSyncNodeTable makes the node table follow a (new) peer list.
 * What is known about a node survives when its name and address stay; a
 * node whose address changed starts afresh.  The caller must not hold the
 * lock unless it is the postmaster initialising shared memory.
 */
void
PgClusterSyncNodeTable(const PgClusterPeerList *peers)
{
	PgClusterNodeEntry *old_nodes;
	int			old_count;
	bool		take_lock = IsUnderPostmaster;

	old_nodes = palloc(sizeof(PgClusterNodeEntry) * PGC_MAX_NODES);

	if (take_lock)
		LWLockAcquire(PgClusterShmem->lock, LW_EXCLUSIVE);

	old_count = PgClusterShmem->node_count;
	memcpy(old_nodes, PgClusterShmem->nodes,
		   sizeof(PgClusterNodeEntry) * PGC_MAX_NODES);
	memset(PgClusterShmem->nodes, 0, sizeof(PgClusterShmem->nodes));

	for (int i = 0; i < peers->count; i++)
	{
		PgClusterNodeEntry *entry = &PgClusterShmem->nodes[i];
		const PgClusterPeerAddress *addr = &peers->nodes[i];

		for (int j = 0; j < old_count; j++)
		{
			if (strcmp(old_nodes[j].name, addr->name) == 0 &&
				strcmp(old_nodes[j].host, addr->host) == 0 &&
				old_nodes[j].port == addr->port)
			{
				*entry = old_nodes[j];
				break;
			}
		}
		strlcpy(entry->name, addr->name, PGC_NAME_LEN);
		strlcpy(entry->host, addr->host, PGC_HOST_LEN);
		entry->port = addr->port;
		entry->is_self = (i == peers->self_index);
		if (entry->connection_state == NULL)
			entry->connection_state = entry->is_self ? "self" : "disconnected";
	}
	PgClusterShmem->node_count = peers->count;

	if (take_lock)
		LWLockRelease(PgClusterShmem->lock);

	pfree(old_nodes);
}

/*
 * PgClusterFindNode returns the index of the named node in the node table,
 * or -1.  The caller holds the lock.
 */
int
PgClusterFindNode(const char *name)
{
	for (int i = 0; i < PgClusterShmem->node_count; i++)
	{
		if (strcmp(PgClusterShmem->nodes[i].name, name) == 0)
			return i;
	}
	return -1;
}

const char *
PgClusterRoleName(PgClusterRole role)
{
	if ((int) role < 0 || role > PGC_ROLE_WITNESS)
		return "unknown";
	return role_names[role];
}

PgClusterRole
PgClusterRoleFromName(const char *name)
{
	for (int i = 0; i < (int) lengthof(role_names); i++)
	{
		if (strcmp(role_names[i], name) == 0)
			return (PgClusterRole) i;
	}
	return PGC_ROLE_UNKNOWN;
}

const char *
PgClusterStateName(PgClusterWorkerState state)
{
	if ((int) state < 0 || state > PGC_STATE_LAST)
		return "unknown";
	return state_names[state];
}

PgClusterWorkerState
PgClusterStateFromName(const char *name)
{
	for (int i = 0; i < (int) lengthof(state_names); i++)
	{
		if (strcmp(state_names[i], name) == 0)
			return (PgClusterWorkerState) i;
	}
	return PGC_STATE_STARTING;
}

/* PgClusterLocalRole tells what this node is right now. */
PgClusterRole
PgClusterLocalRole(void)
{
	if (PgClusterNodeKindSetting == PGC_NODE_WITNESS)
		return PGC_ROLE_WITNESS;
	return RecoveryInProgress() ? PGC_ROLE_STANDBY : PGC_ROLE_PRIMARY;
}

/*
 * PgClusterLocalLsn returns how far this node's WAL goes, and on which
 * timeline.  On a primary that is the flushed WAL; on a standby the larger
 * of what it replayed and what its WAL receiver flushed, because a standby
 * that is promoted replays everything it received first.
 */
XLogRecPtr
PgClusterLocalLsn(TimeLineID *timeline)
{
	XLogRecPtr	replay_lsn;
	XLogRecPtr	receive_lsn;
	TimeLineID	replay_tli = 0;
	TimeLineID	receive_tli = 0;

	if (!RecoveryInProgress())
		return GetFlushRecPtr(timeline);

	replay_lsn = GetXLogReplayRecPtr(&replay_tli);
	receive_lsn = GetWalRcvFlushRecPtr(NULL, &receive_tli);
	if (receive_lsn > replay_lsn && receive_tli != 0)
	{
		*timeline = receive_tli;
		return receive_lsn;
	}
	*timeline = replay_tli;
	return replay_lsn;
}

/*
 * PgClusterLocalSystemIdentifier returns the identifier of the cluster this
 * node belongs to: its own for a data node; for a witness, which has its
 * own initdb, the one it learned from the data nodes (0 until then).
 */
uint64
PgClusterLocalSystemIdentifier(void)
{
	uint64		sysid;

	if (PgClusterNodeKindSetting == PGC_NODE_DATA)
		return GetSystemIdentifier();

	LWLockAcquire(PgClusterShmem->durable_lock, LW_SHARED);
	sysid = PgClusterShmem->durable.cluster_system_identifier;
	LWLockRelease(PgClusterShmem->durable_lock);
	return sysid;
}

/* PgClusterLocalView fills "view" with what this node says about itself. */
void
PgClusterLocalView(PgClusterNodeView *view)
{
	memset(view, 0, sizeof(*view));
	view->role = PgClusterLocalRole();
	if (view->role != PGC_ROLE_WITNESS)
		view->lsn = PgClusterLocalLsn(&view->timeline);
	view->wal_term = PgClusterWalTerm(NULL, &view->wal_term_lsn);
	view->system_identifier = PgClusterLocalSystemIdentifier();

	LWLockAcquire(PgClusterShmem->durable_lock, LW_SHARED);
	view->term = PgClusterShmem->durable.term;
	view->pause_version = PgClusterShmem->durable.pause_version;
	view->paused = PgClusterShmem->durable.paused;
	view->sync_term = PgClusterShmem->durable.sync.term;
	view->sync_version = PgClusterShmem->durable.sync.version;
	LWLockRelease(PgClusterShmem->durable_lock);

	LWLockAcquire(PgClusterShmem->lock, LW_SHARED);
	strlcpy(view->leader, PgClusterShmem->leader, PGC_NAME_LEN);
	view->is_leader = PgClusterShmem->is_leader;
	view->state = PgClusterShmem->state;
	LWLockRelease(PgClusterShmem->lock);

	view->priority = PgClusterPriority;
	view->sent_at = GetCurrentTimestamp();
}
