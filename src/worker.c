/*-------------------------------------------------------------------------
 *
 * worker.c
 *		The pg_cluster background worker: its main loop, its durable state
 *		and the state it publishes about this node.
 *
 * One worker runs in every instance, primary, standby or witness.  Its loop
 * never sleeps: it waits in one WaitEventSet for its latch, postmaster death
 * and the sockets of all peers, with a timeout to the next heartbeat tick
 * or peer deadline.  At each tick it sends a heartbeat to every peer
 * (peer.c) and recomputes what it publishes in shared memory.
 *
 * The worker is the only writer of the durable state file: a higher term
 * learned from any peer, or from a heartbeat a backend received, is made
 * durable here before it is published.
 *
 * Copyright (c) 2026, pg_cluster developers
 *
 * IDENTIFICATION
 *		src/worker.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

/* These are always necessary for a bgworker */
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"

/* these headers are used by this particular worker's code */
#include "access/xlog.h"
#include "pgstat.h"
#include "postmaster/bgwriter.h"
#include "replication/walreceiver.h"
#include "tcop/tcopprot.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "pg_cluster.h"
#include "worker.h"

/* Fixed slots of the wait event set before the peer sockets. */
#define WORKER_FIXED_WAIT_EVENTS 2

static bool durable_state_usable = false;

/* set at each tick by StandbyNeedsRewind() (a file read only when relevant) */
static bool needs_rewind = false;

/* set when a heartbeat round should go out now, not at the next tick */
static bool immediate_tick = false;

/* How soon the loop looks again while a promotion or handover runs. */
#define FAST_POLL_MS 2

/* what PublishLocalState last published, to log and hook on changes */
static char published_leader[PGC_NAME_LEN] = "";
static uint64 primary_hook_term = 0;
static uint64 demoted_hook_term = 0;

/*
 * How the published state follows from what the worker observes.  The
 * first row whose condition holds wins.
 */
typedef struct WorkerStateRule
{
	bool		(*condition) (void);
	PgClusterWorkerState state;
	const char *why;
} WorkerStateRule;

static bool
StateFileUnusable(void)
{
	return !durable_state_usable;
}

static bool
NotConfigured(void)
{
	return !PgClusterIsConfigured();
}

static bool
IsWitness(void)
{
	return PgClusterNodeKindSetting == PGC_NODE_WITNESS;
}

static bool
IsCandidate(void)
{
	return ElectionInProgress();
}

static bool
IsLeader(void)
{
	bool		is_leader;

	LWLockAcquire(PgClusterShmem->lock, LW_SHARED);
	is_leader = PgClusterShmem->is_leader;
	LWLockRelease(PgClusterShmem->lock);
	return is_leader;
}

static bool
IsDemoting(void)
{
	return RejoinRequested() || SwitchoverInProgress();
}

static bool
IsCatchingUp(void)
{
	return HandoverCatchingUp();
}

static bool
IsPromoting(void)
{
	return RecoveryInProgress() && IsLeader();
}

static bool
IsBootstrapping(void)
{
	PgClusterDurableState durable;

	PgClusterDurableSnapshot(&durable);
	return !RecoveryInProgress() && durable.term == 0;
}

static bool
IsLeaseHolder(void)
{
	return !RecoveryInProgress() && IsLeader() &&
		PgClusterCommitsAllowed(GetCurrentTimestamp());
}

static bool
IsPrimary(void)
{
	return !RecoveryInProgress();
}

static bool
NeedsRewind(void)
{
	return needs_rewind;
}

static bool
IsStreaming(void)
{
	return WalRcvStreaming();
}

static bool
Always(void)
{
	return true;
}

static const WorkerStateRule worker_state_rules[] = {
	{StateFileUnusable, PGC_STATE_STATE_FILE_CORRUPT, "the durable state file is unreadable"},
	{NotConfigured, PGC_STATE_UNCONFIGURED, "pg_cluster.node_name or pg_cluster.peers is not set"},
	{IsWitness, PGC_STATE_WITNESS, "pg_cluster.node_role is witness"},
	{IsDemoting, PGC_STATE_DEMOTING, "this node hands over, or shuts down to restart as a standby"},
	{IsCandidate, PGC_STATE_CANDIDATE, "an election this node started is running"},
	{IsCatchingUp, PGC_STATE_CATCHING_UP, "this node leads after a handover and waits for the old primary's last WAL"},
	{IsPromoting, PGC_STATE_PROMOTING, "this node won and its recovery is ending"},
	{IsBootstrapping, PGC_STATE_BOOTSTRAPPING, "primary of a cluster that has had no leader yet"},
	{IsLeaseHolder, PGC_STATE_LEADER, "leader holding a lease acknowledged by a majority"},
	{IsPrimary, PGC_STATE_FENCED, "primary without a valid lease: commits are refused"},
	{NeedsRewind, PGC_STATE_NEEDS_REWIND, "this standby's WAL goes past the fork point of the leader's timeline: it needs pg_rewind"},
	{IsStreaming, PGC_STATE_STREAMING, "the WAL receiver is streaming"},
	{Always, PGC_STATE_NOT_STREAMING, "the node is in recovery without a streaming WAL receiver"},
};

static const WorkerStateRule *
CurrentStateRule(void)
{
	for (int i = 0; i < (int) lengthof(worker_state_rules); i++)
	{
		if (worker_state_rules[i].condition())
			return &worker_state_rules[i];
	}
	pg_unreachable();
}

/*
 * LoadDurableState reads the state file at startup (and again at a reload
 * while it is unusable).  A missing file starts a new one at term 0; a
 * damaged one is reported and leaves the node out of the protocol.
 */
static void
LoadDurableState(void)
{
	static bool corrupt_reported = false;
	char		errbuf[512];
	PgClusterStateFileResult result;

	LWLockAcquire(PgClusterShmem->durable_lock, LW_EXCLUSIVE);
	result = PgClusterLoadDurableLocked(errbuf, sizeof(errbuf));
	LWLockRelease(PgClusterShmem->durable_lock);

	durable_state_usable = (result != PGC_STATE_FILE_CORRUPT);
	if (result != PGC_STATE_FILE_CORRUPT)
		corrupt_reported = false;
	else if (!corrupt_reported)
	{
		corrupt_reported = true;
		ereport(WARNING,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("pg_cluster: durable state is unusable: %s", errbuf),
				 errdetail("This node takes no part in the cluster until the file is repaired: forgetting a vote could elect two leaders in one term."),
				 errhint("Restore pg_cluster.state from a copy.  Only on a node that restarts as a standby (standby.signal) may it be removed instead: the node restarts at term 0 and learns the term from its peers; a primary at term 0 would accept writes without a lease (bootstrapping).")));
		PgClusterRecordEvent("state_file_corrupt", NULL, "%s", errbuf);
	}
}

/*
 * WorkerAcceptClusterIdentifier decides whether a peer with this system
 * identifier belongs to our cluster.  Data nodes share the identifier of
 * the initdb they were cloned from.  A witness has its own initdb: it
 * learns the cluster's identifier from the first data node it reaches,
 * keeps it in its durable state, and from then on refuses any other.
 */
bool
WorkerAcceptClusterIdentifier(uint64 peer_sysid, PgClusterRole peer_role,
							  char *errbuf, size_t errlen)
{
	uint64		ours = PgClusterLocalSystemIdentifier();

	if (peer_role == PGC_ROLE_WITNESS && peer_sysid == 0)
		return true;			/* a witness that has not learned it yet */

	if (ours == 0 && durable_state_usable && peer_role != PGC_ROLE_WITNESS)
	{
		PgClusterDurableState next;

		LWLockAcquire(PgClusterShmem->durable_lock, LW_EXCLUSIVE);
		next = PgClusterShmem->durable;
		next.cluster_system_identifier = peer_sysid;
		PgClusterPersistLocked(&next);
		LWLockRelease(PgClusterShmem->durable_lock);
		PgClusterRecordEvent("cluster_identified", NULL,
							 "witness joined the cluster with system identifier " UINT64_FORMAT,
							 peer_sysid);
		return true;
	}

	if (peer_sysid != ours)
	{
		snprintf(errbuf, errlen,
				 "peer belongs to another cluster: its system identifier is " UINT64_FORMAT ", ours is " UINT64_FORMAT,
				 peer_sysid, ours);
		return false;
	}
	return true;
}

/*
 * PublishLocalState recomputes this node's state, and runs the role-change
 * hook when this node became leader or stopped being it.
 */
static void
PublishLocalState(void)
{
	const WorkerStateRule *rule = CurrentStateRule();
	PgClusterWorkerState old_state;
	char		old_leader[PGC_NAME_LEN];
	char		leader[PGC_NAME_LEN];
	bool		is_leader;
	PgClusterDurableState durable;

	PgClusterDurableSnapshot(&durable);
	LWLockAcquire(PgClusterShmem->lock, LW_EXCLUSIVE);
	old_state = PgClusterShmem->state;
	PgClusterShmem->state = rule->state;
	strlcpy(leader, PgClusterShmem->leader, PGC_NAME_LEN);
	is_leader = PgClusterShmem->is_leader;
	LWLockRelease(PgClusterShmem->lock);

	if (old_state != rule->state)
		PgClusterRecordEvent("state_changed", NULL, "state %s -> %s: %s",
							 PgClusterStateName(old_state),
							 PgClusterStateName(rule->state), rule->why);

	strlcpy(old_leader, published_leader, PGC_NAME_LEN);
	if (strcmp(old_leader, leader) != 0)
	{
		if (leader[0] != '\0')
			PgClusterRecordEvent("leader_changed", leader,
								 "leader of term " UINT64_FORMAT " is \"%s\" (was \"%s\")",
								 durable.term, leader, old_leader);
		strlcpy(published_leader, leader, PGC_NAME_LEN);
	}

	/*
	 * The hook: once when this node took office in a term, and once when a
	 * primary learns that another node leads (after a partition or a
	 * restart), so the floating address or the like follows the leader.
	 */
	if (is_leader && rule->state == PGC_STATE_LEADER && primary_hook_term != durable.term)
	{
		primary_hook_term = durable.term;
		RoleChangeHookStart("primary", durable.term);
	}
	else if (!is_leader && !RecoveryInProgress() && leader[0] != '\0' &&
			 strcmp(leader, PgClusterNodeName) != 0 &&
			 PgClusterNodeKindSetting == PGC_NODE_DATA &&
			 demoted_hook_term != durable.term)
	{
		demoted_hook_term = durable.term;
		RoleChangeHookStart("demoted", durable.term);
	}
}

static void ResumeLeadership(void);

/*
 * NoticeStall treats a worker that did not run for half a failover timeout
 * (the process was stopped, the machine froze) like a restarted one: what
 * it knew about the leader is stale, so it waits a full failover timeout
 * of fresh heartbeats before it stands or votes.  Without this, a standby
 * that wakes up would find its election timer long expired and could
 * start an election before the first heartbeat of a healthy leader.
 */
static void
NoticeStall(TimestampTz now, TimestampTz last_loop_at)
{
	int64		gap_ms = (now - last_loop_at) / 1000;

	if (last_loop_at == 0 || gap_ms < PgClusterFailoverTimeoutMs / 2)
		return;
	LWLockAcquire(PgClusterShmem->lock, LW_EXCLUSIVE);
	PgClusterShmem->last_leader_contact = Max(PgClusterShmem->last_leader_contact, now);
	LWLockRelease(PgClusterShmem->lock);
	PgClusterRecordEvent("stall", NULL,
						 "the worker did not run for %ld ms; restarting its election timer",
						 (long) gap_ms);
}

/*
 * ApplyConfiguration brings the node table and the peer connections in
 * line with the current parameters.
 */
static void
ApplyConfiguration(void)
{
	static PgClusterPeerList empty_list = {0, -1};
	const PgClusterPeerList *list = PgClusterIsConfigured() ? PgClusterPeers : &empty_list;

	PgClusterSyncNodeTable(PgClusterPeers ? PgClusterPeers : &empty_list);
	PeerConnectionsConfigure(list);
}

/*
 * ReloadConfiguration re-reads the configuration files.  Parameters whose
 * new value a check hook rejected keep their old value (the GUC machinery
 * logs why); connections are reopened when their options changed.
 */
static void
ReloadConfiguration(void)
{
	char	   *old_peers = pstrdup(PgClusterPeersString ? PgClusterPeersString : "");
	char	   *old_conninfo = pstrdup(PgClusterPeerConninfo ? PgClusterPeerConninfo : "");
	int			old_connect_timeout = PgClusterConnectTimeoutMs;
	bool		peers_changed;
	bool		options_changed;

	ConfigReloadPending = false;
	ProcessConfigFile(PGC_SIGHUP);

	peers_changed = strcmp(old_peers, PgClusterPeersString ? PgClusterPeersString : "") != 0;
	options_changed = strcmp(old_conninfo, PgClusterPeerConninfo ? PgClusterPeerConninfo : "") != 0 ||
		old_connect_timeout != PgClusterConnectTimeoutMs;

	if (options_changed)
		PeerConnectionsCloseAll();
	if (peers_changed || options_changed)
		ApplyConfiguration();
	if (!durable_state_usable)
	{
		LoadDurableState();
		ResumeLeadership();
	}

	PgClusterRecordEvent("config_reload", NULL,
						 "configuration reloaded: %d peers, heartbeat %d ms, failover timeout %d ms%s%s",
						 PeerConnectionsCount(), PgClusterHeartbeatIntervalMs,
						 PgClusterFailoverTimeoutMs,
						 peers_changed ? ", peer list changed" : "",
						 options_changed ? ", connection options changed" : "");
	pfree(old_peers);
	pfree(old_conninfo);
}

static void
WorkerShutdown(int code, Datum arg)
{
	PeerConnectionsCloseAll();
	LWLockAcquire(PgClusterShmem->lock, LW_EXCLUSIVE);
	PgClusterShmem->worker_pid = 0;
	PgClusterShmem->worker_latch = NULL;
	LWLockRelease(PgClusterShmem->lock);
}

/* WaitTimeoutMs converts a deadline into a WaitEventSetWait timeout. */
static long
WaitTimeoutMs(TimestampTz now, TimestampTz deadline)
{
	if (deadline == DT_NOEND)
		return -1;
	if (deadline <= now)
		return 0;
	/* round up, so we never wake just before the deadline and spin */
	return (long) Min((deadline - now + 999) / 1000, (int64) INT_MAX);
}

/*
 * WorkerWaitSet returns the set the worker waits in: the latch, postmaster
 * death and every peer's socket.  It is kept from one wait to the next (a
 * new one costs an epoll instance and a system call per socket, ten times
 * a second per peer) and rebuilt only when a peer's socket may have
 * changed.
 */
static WaitEventSet *
WorkerWaitSet(void)
{
	static WaitEventSet *set = NULL;
	static uint64 set_generation = 0;
	uint64		generation = PeerConnectionsSocketsGeneration();

	if (set != NULL && generation == set_generation)
	{
		PeerConnectionsUpdateWaitEvents(set);
		return set;
	}
	if (set != NULL)
	{
		FreeWaitEventSet(set);
		set = NULL;
	}
	set = CreateWaitEventSet(TopMemoryContext,
							 PeerConnectionsCount() + WORKER_FIXED_WAIT_EVENTS);
	AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	(void) PeerConnectionsAddWaitEvents(set);
	set_generation = generation;
	return set;
}

/*
 * WaitForWork waits until the latch is set, a peer socket is ready or the
 * deadline passes, and hands ready sockets to their peers.
 */
static void
WaitForWork(TimestampTz deadline)
{
	WaitEvent	occurred[PGC_MAX_NODES + WORKER_FIXED_WAIT_EVENTS];
	int			nevents;
	TimestampTz now;

	nevents = WaitEventSetWait(WorkerWaitSet(), WaitTimeoutMs(GetCurrentTimestamp(), deadline),
							   occurred, lengthof(occurred), PG_WAIT_EXTENSION);
	now = GetCurrentTimestamp();

	/*
	 * A peer's handler may change another peer's state (a vote request sent
	 * to it, or one that failed and closed its connection); that peer's
	 * event is then handled by its new state: a reply is read if there is
	 * one, and a closed connection has no socket action.
	 */
	for (int i = 0; i < nevents; i++)
	{
		if (occurred[i].events & WL_LATCH_SET)
		{
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
		else if (occurred[i].user_data != NULL)
			PeerConnectionHandleSocket(occurred[i].user_data,
									   occurred[i].events, now);
	}
}

/*
 * ResumeLeadership lets a primary that won the current term before a
 * restart claim it again; it gets no lease until a majority acknowledges.
 * A term it was handing over is not resumed: the target may lead it.
 * A clone made by pg_basebackup carries the file but not the name.
 */
static void
ResumeLeadership(void)
{
	uint64		term;
	bool		handed_over;

	if (!durable_state_usable || RecoveryInProgress() ||
		PgClusterNodeKindSetting != PGC_NODE_DATA || !PgClusterIsConfigured())
		return;

	/*
	 * Check and claim under durable_lock: backends answering peers adopt
	 * higher terms (and grant votes) meanwhile, and a claim set after such
	 * a change would be a second leader of the new term.
	 */
	LWLockAcquire(PgClusterShmem->durable_lock, LW_SHARED);
	term = PgClusterShmem->durable.term;
	if (term == 0 || PgClusterShmem->durable.leader_term != term ||
		strcmp(PgClusterShmem->durable.leader_name, PgClusterNodeName) != 0)
	{
		LWLockRelease(PgClusterShmem->durable_lock);
		return;
	}
	handed_over = PgClusterShmem->durable.handed_over_term == term;
	if (!handed_over)
	{
		LWLockAcquire(PgClusterShmem->lock, LW_EXCLUSIVE);
		PgClusterShmem->is_leader = true;
		strlcpy(PgClusterShmem->leader, PgClusterNodeName, PGC_NAME_LEN);
		PgClusterShmem->last_leader_contact = GetCurrentTimestamp();
		LWLockRelease(PgClusterShmem->lock);
	}
	LWLockRelease(PgClusterShmem->durable_lock);

	if (handed_over)
		PgClusterRecordEvent("leadership_not_resumed", NULL,
							 "term " UINT64_FORMAT " was being handed over when this server stopped; an election decides",
							 term);
	else
		PgClusterRecordEvent("leadership_resumed", NULL,
							 "restarted as leader of term " UINT64_FORMAT "; waiting for a majority to acknowledge",
							 term);
}

/*
 * WorkerRequestImmediateTick makes the loop send its next heartbeats now:
 * a new leader wants the acknowledgements that make its lease at once.
 */
void
WorkerRequestImmediateTick(void)
{
	immediate_tick = true;
}

/*
 * NeedsFastPoll says whether the loop must look again within milliseconds:
 * nothing wakes it when recovery ends or a session got its answer.
 */
static bool
NeedsFastPoll(void)
{
	return (RecoveryInProgress() && IsLeader()) || SwitchoverNeedsFastPoll() ||
		(IsLeader() && !PgClusterSyncReady());
}

/*
 * NoticePromotionEnd asks for an immediate checkpoint once this node's
 * promotion is over.  The server asks for one itself, but spread over
 * minutes, and until it is done the control file still names the old
 * timeline: pg_rewind, run against this node by a rejoining old primary,
 * would wrongly find nothing to rewind.
 */
static void
NoticePromotionEnd(void)
{
	static int	was_in_recovery = -1;	/* unknown before the first look */
	bool		in_recovery = RecoveryInProgress();

	if (was_in_recovery == 1 && !in_recovery && PgClusterNodeKindSetting == PGC_NODE_DATA)
	{
		TimeLineID	tli;

		(void) GetFlushRecPtr(&tli);
		RequestCheckpoint(CHECKPOINT_IMMEDIATE | CHECKPOINT_FORCE);
		PgClusterRecordEvent("promoted", NULL,
							 "recovery ended on timeline %u; checkpoint requested", tli);
	}
	was_in_recovery = in_recovery ? 1 : 0;
}

/*
 * PgClusterWorkerMain is the entry point of the worker.
 */
void
PgClusterWorkerMain(Datum main_arg)
{
	MemoryContext loop_context;
	TimestampTz next_tick = 0;
	TimestampTz last_loop_at = 0;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);

	LWLockAcquire(PgClusterShmem->lock, LW_EXCLUSIVE);
	PgClusterShmem->worker_pid = MyProcPid;
	PgClusterShmem->worker_latch = MyLatch;
	PgClusterShmem->worker_started_at = GetCurrentTimestamp();
	PgClusterShmem->state = PGC_STATE_STARTING;

	/*
	 * Votes are refused for a failover timeout after a (re)start, as if the
	 * leader had just been heard: the lease a crashed voter acknowledged
	 * must run out before it votes again (protocol.md §6).
	 */
	PgClusterShmem->last_leader_contact = PgClusterShmem->worker_started_at;
	LWLockRelease(PgClusterShmem->lock);
	before_shmem_exit(WorkerShutdown, (Datum) 0);

	LoadDurableState();
	ApplyConfiguration();
	ResumeLeadership();
	SwitchoverWorkerStart();
	RejoinWorkerStart();
	PgClusterRecordEvent("worker_started", NULL,
						 "worker started as %s node with %d peers, heartbeat %d ms",
						 PgClusterNodeKindSetting == PGC_NODE_WITNESS ? "witness" : "data",
						 PeerConnectionsCount(), PgClusterHeartbeatIntervalMs);
	if (!PgClusterIsConfigured())
		ereport(LOG,
				(errmsg("pg_cluster: this node is not configured and stays idle"),
				 errhint("Set pg_cluster.node_name and pg_cluster.peers (which must list this node).")));

	loop_context = AllocSetContextCreate(TopMemoryContext, "pg_cluster worker loop",
										 ALLOCSET_DEFAULT_SIZES);

	for (;;)
	{
		MemoryContext oldcontext = MemoryContextSwitchTo(loop_context);
		TimestampTz now;
		TimestampTz deadline = DT_NOEND;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
			ReloadConfiguration();

		now = GetCurrentTimestamp();
		if (durable_state_usable && PgClusterIsConfigured())
		{
			NoticeStall(now, last_loop_at);
			last_loop_at = now;
			PeerConnectionsCheckDeadlines(now);
			if (immediate_tick)
			{
				immediate_tick = false;
				next_tick = now;
			}
			if (now >= next_tick)
			{
				PeerConnectionsTick(now);
				next_tick = TimestampTzPlusMilliseconds(next_tick, PgClusterHeartbeatIntervalMs);
				/* after a stall, skip the missed ticks instead of bursting */
				if (next_tick <= now)
					next_tick = TimestampTzPlusMilliseconds(now, PgClusterHeartbeatIntervalMs);
			}
			PeerConnectionsUpdateReachability(now);
			WalTermTick();
			LeaseUpdate(now);
			ElectionTick(now);
			HandoverTick(now);
			WalTermTick();		/* a new leader marks its term first */
			LeaseUpdate(now);
			SyncRepTick(now);
			SwitchoverTick(now);
			FollowLeader();
			needs_rewind = StandbyNeedsRewind();
			RejoinTick(needs_rewind);
			NoticePromotionEnd();
			deadline = Min(next_tick, PeerConnectionsNextDeadline(now));
			if (immediate_tick)
				deadline = now;
			else if (NeedsFastPoll())
				deadline = Min(deadline, TimestampTzPlusMilliseconds(now, FAST_POLL_MS));
		}
		RoleChangeHookPoll(now);
		PublishLocalState();

		WaitForWork(deadline);

		MemoryContextSwitchTo(oldcontext);
		MemoryContextReset(loop_context);
	}
}
