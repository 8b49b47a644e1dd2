/*-------------------------------------------------------------------------
 *
 * fence.c
 *		The commit fence (docs/protocol.md §6): every backend refuses to
 *		commit a transaction that wrote unless this node holds a valid lease.
 *
 * The check runs at XACT_EVENT_PRE_COMMIT, only for transactions that have
 * an XID (read-only transactions are never refused), and costs one atomic
 * read and one clock read.  A second look runs once the commit record is
 * flushed (XACT_EVENT_COMMIT): if the lease ran out in between (a stalled
 * disk, a stopped process), the connection is closed instead of
 * acknowledging (nothing more is sent to the client and the session ends
 * at its next read), so the client sees an ambiguous failure rather than a
 * success that a new leader does not have.
 *
 * During a planned switchover the leader holds commits (protocol.md §8):
 * a transaction reaching its commit waits until the switchover ends, and
 * is refused if the switchover outlives its deadline.  Transactions that
 * passed the fence are counted until their commit is done, so the leader
 * can wait for the last of them before it names its handover LSN.
 *
 * COMMIT PREPARED, which commits from a transaction without an XID, is
 * checked the same way from a ProcessUtility hook.
 *
 * In synchronous mode (syncrep.c) a new leader's commits wait at
 * pre-commit until its synchronous configuration is in force.  After the
 * commit, a transaction whose wait for its synchronous standbys was
 * cancelled (PostgreSQL then reports success although no standby has
 * it) is not acknowledged: the session ends, and the commit's LSN is
 * recorded as an event.
 *
 * Copyright (c) 2026, pg_cluster developers
 *
 * IDENTIFICATION
 *		src/fence.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "replication/syncrep.h"
#include "replication/walsender.h"
#include "replication/walsender_private.h"
#include "libpq/auth.h"
#include "pgstat.h"
#include "utils/guc.h"
#include "miscadmin.h"
#include "tcop/dest.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/timestamp.h"

#include "pg_cluster.h"

/* The lease is this share of the failover timeout (protocol.md §6). */
#define LEASE_SHARE_OF_FAILOVER_TIMEOUT 0.8

/* Set at pre-commit for a transaction that wrote and was allowed. */
static bool checked_write_commit = false;

/* This backend is counted in commits_in_flight. */
static bool counted_in_flight = false;

int
PgClusterLeaseDurationMs(void)
{
	return (int) (PgClusterFailoverTimeoutMs * LEASE_SHARE_OF_FAILOVER_TIMEOUT);
}

/* Does the fence apply to this node at all? */
static bool
FenceApplies(void)
{
	return PgClusterNodeKindSetting == PGC_NODE_DATA && PgClusterIsConfigured() &&
		PgClusterShmem != NULL && !RecoveryInProgress();
}

/*
 * PgClusterCommitsAllowed says whether this node may acknowledge commits
 * now.  The slow path covers a node whose worker has not published yet: a
 * primary that never had a leader (term 0) bootstraps freely; any other
 * primary waits for its lease.
 */
bool
PgClusterCommitsAllowed(TimestampTz now)
{
	uint64		until = pg_atomic_read_u64(&PgClusterShmem->commit_allowed_until);
	bool		bootstrapping;

	if ((int64) until > now)
		return true;
	if (!PgClusterEnsureDurableLoaded())
		return false;
	LWLockAcquire(PgClusterShmem->durable_lock, LW_SHARED);
	bootstrapping = PgClusterShmem->durable.term == 0;
	LWLockRelease(PgClusterShmem->durable_lock);
	return bootstrapping;
}

static void
RefuseCommit(void)
{
	char		leader[PGC_NAME_LEN];
	uint64		term;

	LWLockAcquire(PgClusterShmem->lock, LW_SHARED);
	strlcpy(leader, PgClusterShmem->leader, PGC_NAME_LEN);
	LWLockRelease(PgClusterShmem->lock);
	LWLockAcquire(PgClusterShmem->durable_lock, LW_SHARED);
	term = PgClusterShmem->durable.term;
	LWLockRelease(PgClusterShmem->durable_lock);

	if (leader[0] != '\0' && strcmp(leader, PgClusterNodeName) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("pg_cluster: node \"%s\" is fenced: the leader is \"%s\"",
						PgClusterNodeName, leader),
				 errdetail("This node is not the leader of term " UINT64_FORMAT "; the transaction was rolled back.",
						   term),
				 errhint("Connect to the leader, or use a connection string with target_session_attrs=read-write (see pg_cluster.connection_uri()).")));
	ereport(ERROR,
			(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
			 errmsg("pg_cluster: node \"%s\" is fenced: it holds no leader lease",
					PgClusterNodeName),
			 errdetail("The node cannot confirm with a majority of the cluster that it still leads term " UINT64_FORMAT "; the transaction was rolled back.",
					   term),
			 errhint("See pg_cluster.status and pg_cluster.nodes; writes resume when a majority is reachable or a new leader is elected.")));
}

static void
LeaveInFlight(void)
{
	if (counted_in_flight)
	{
		pg_atomic_fetch_sub_u32(&PgClusterShmem->commits_in_flight, 1);
		counted_in_flight = false;
	}
}

/*
 * EnterInFlight counts this commit as in flight, waiting first while a
 * switchover holds commits.  The count is raised before the hold flag is
 * read, and the leader sets the flag before it reads the count (both are
 * full barriers), so a commit either sees the hold or is seen in flight.
 */
static void
EnterInFlight(void)
{
	TimestampTz deadline;

	for (;;)
	{
		pg_atomic_fetch_add_u32(&PgClusterShmem->commits_in_flight, 1);
		counted_in_flight = true;
		if (pg_atomic_read_u32(&PgClusterShmem->commit_hold) == 0)
			return;
		LeaveInFlight();

		LWLockAcquire(PgClusterShmem->lock, LW_SHARED);
		deadline = PgClusterShmem->switchover.deadline;
		LWLockRelease(PgClusterShmem->lock);

		ConditionVariablePrepareToSleep(&PgClusterShmem->hold_cv);
		while (pg_atomic_read_u32(&PgClusterShmem->commit_hold) != 0 &&
			   GetCurrentTimestamp() < deadline)
			(void) ConditionVariableTimedSleep(&PgClusterShmem->hold_cv, 100,
											   PG_WAIT_EXTENSION);
		ConditionVariableCancelSleep();
		if (pg_atomic_read_u32(&PgClusterShmem->commit_hold) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
					 errmsg("pg_cluster: node \"%s\" is handing over to a new primary",
							PgClusterNodeName),
					 errdetail("A switchover holds new commits; the transaction was rolled back."),
					 errhint("Retry on the new primary (see pg_cluster.connection_uri()).")));
	}
}

/*
 * WaitForSyncReady waits while this leader's synchronous configuration is
 * not in force yet; returns false if the lease went meanwhile.
 */
static bool
WaitForSyncReady(void)
{
	ConditionVariablePrepareToSleep(&PgClusterShmem->hold_cv);
	while (!PgClusterSyncReady())
	{
		if (!PgClusterCommitsAllowed(GetCurrentTimestamp()))
			break;
		(void) ConditionVariableTimedSleep(&PgClusterShmem->hold_cv, 100,
										   PG_WAIT_EXTENSION);
	}
	ConditionVariableCancelSleep();
	return PgClusterCommitsAllowed(GetCurrentTimestamp());
}

/*
 * CommitReplicated says whether a commit that should have waited for its
 * synchronous standbys is confirmed by them: false when its wait was
 * cancelled.
 */
static bool
CommitReplicated(XLogRecPtr commit_end)
{
	int			mode;
	bool		defined;
	XLogRecPtr	released;

	if (PgClusterSynchronousMode == PGC_SYNC_OFF || !SyncRepRequested() ||
		commit_end == InvalidXLogRecPtr)
		return true;
	mode = synchronous_commit == SYNCHRONOUS_COMMIT_REMOTE_WRITE ? SYNC_REP_WAIT_WRITE :
		synchronous_commit == SYNCHRONOUS_COMMIT_REMOTE_APPLY ? SYNC_REP_WAIT_APPLY :
		SYNC_REP_WAIT_FLUSH;

	/*
	 * Fast path, without SyncRepLock (which the WAL senders take
	 * exclusively at every standby reply; a shared acquisition per commit
	 * makes busy backends queue behind them).  A wait released normally
	 * saw its state set to complete after the WAL sender had raised the
	 * released LSN (SyncRepWakeQueue orders the two with a write barrier):
	 * after a read barrier, that LSN is visible here.  The position only
	 * grows, and where 8-byte reads are atomic one cannot see a torn
	 * value (elsewhere the lock is always taken).
	 */
#ifdef PG_HAVE_8BYTE_SINGLE_COPY_ATOMICITY
	pg_read_barrier();
	if (*((volatile XLogRecPtr *) &WalSndCtl->lsn[mode]) >= commit_end)
		return true;
#endif

	/* not released, as far as we can tell: look again under the lock */
	LWLockAcquire(SyncRepLock, LW_SHARED);
	defined = PgClusterSyncStandbysDefined();
	released = WalSndCtl->lsn[mode];
	LWLockRelease(SyncRepLock);
	return !defined || released >= commit_end;
}

/* Do not acknowledge: the client sees the connection drop, as after a crash. */
static void
EndSessionWithoutAck(void)
{
	whereToSendOutput = DestNone;	/* no CommandComplete, no reply */
	ProcDiePending = true;		/* and end the session at the next read */
	InterruptPending = true;
}

/*
 * PgClusterHoldCommits makes new commits wait, then waits up to
 * drain_timeout_ms for the commits already past the fence to finish.
 * Returns false if they did not (the hold stays: the caller releases it).
 */
bool
PgClusterHoldCommits(int64 drain_timeout_ms)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   drain_timeout_ms);

	(void) pg_atomic_exchange_u32(&PgClusterShmem->commit_hold, 1);
	while (pg_atomic_read_u32(&PgClusterShmem->commits_in_flight) != 0)
	{
		if (GetCurrentTimestamp() >= deadline)
			return false;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 1, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	return true;
}

/* PgClusterReleaseCommits ends the hold and wakes the waiting commits. */
void
PgClusterReleaseCommits(void)
{
	(void) pg_atomic_exchange_u32(&PgClusterShmem->commit_hold, 0);
	ConditionVariableBroadcast(&PgClusterShmem->hold_cv);
}

/*
 * CheckCommitAllowed is the pre-commit check: counts this commit as in
 * flight (waiting while a switchover holds commits), waits while a new
 * leader's synchronous configuration is not in force, and refuses the
 * commit (ERROR, rolled back) unless this node holds a valid lease.
 */
static void
CheckCommitAllowed(void)
{
	EnterInFlight();
	if (!PgClusterCommitsAllowed(GetCurrentTimestamp()))
		RefuseCommit();
	if (!PgClusterSyncReady())
	{
		LeaveInFlight();
		if (!WaitForSyncReady())
			RefuseCommit();
		EnterInFlight();
		if (!PgClusterCommitsAllowed(GetCurrentTimestamp()))
			RefuseCommit();
	}
}

/*
 * CheckCommitAcknowledgeable is the second look, once the commit record
 * ending at commit_end is flushed (and, in synchronous mode, the wait for
 * the standbys is over): a commit whose synchronous wait was cancelled, or
 * that outlived the lease, is not acknowledged.
 */
static void
CheckCommitAcknowledgeable(XLogRecPtr commit_end)
{
	if (!CommitReplicated(commit_end))
	{
		LWLockAcquire(PgClusterShmem->lock, LW_EXCLUSIVE);
		PgClusterShmem->commits_not_replicated++;
		LWLockRelease(PgClusterShmem->lock);
		ereport(WARNING,
				(errmsg("pg_cluster: the wait for synchronous replication of the commit ending at %X/%X was cancelled; closing the connection instead of acknowledging",
						LSN_FORMAT_ARGS(commit_end)),
				 errdetail("The commit is in this node's WAL but not confirmed by its synchronous standbys: a failover now could lose it.")));
		PgClusterRecordEvent("commit_not_replicated", NULL,
							 "a session's wait for synchronous replication was cancelled; commit ending at %X/%X not acknowledged (session ended)",
							 LSN_FORMAT_ARGS(commit_end));
		EndSessionWithoutAck();
		return;
	}
	if (PgClusterCommitsAllowed(GetCurrentTimestamp()))
		return;

	/*
	 * Too late to refuse: the commit is on disk.  Do not acknowledge it
	 * either; the client sees the connection drop, as after a crash.
	 */
	ereport(WARNING,
			(errmsg("pg_cluster: lease expired while committing; closing the connection instead of acknowledging"),
			 errdetail("The commit is in this node's WAL, but the node may no longer be the leader.")));
	EndSessionWithoutAck();
}

static void
FenceXactCallback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_PREPARE:
		case XACT_EVENT_PRE_COMMIT:
			checked_write_commit = false;
			if (!TransactionIdIsValid(GetTopTransactionIdIfAny()) || !FenceApplies())
				return;
			CheckCommitAllowed();
			checked_write_commit = (event == XACT_EVENT_PRE_COMMIT);
			break;

		case XACT_EVENT_PREPARE:
			LeaveInFlight();
			break;

		case XACT_EVENT_COMMIT:
			LeaveInFlight();
			if (!checked_write_commit)
				return;
			checked_write_commit = false;
			CheckCommitAcknowledgeable(XactLastCommitEnd);
			break;

		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			LeaveInFlight();
			checked_write_commit = false;
			break;

		default:
			break;
	}
}

/*
 * COMMIT PREPARED writes the commit record of a transaction prepared
 * earlier, from a transaction of its own that has no XID: the commit
 * callback above does not see it as a write.  The fence applies the same
 * two checks around it: before (refused while fenced, held during a
 * switchover, counted in flight until the surrounding transaction ends),
 * and after the record is flushed and replicated (XactLastRecEnd is its
 * end).  ROLLBACK PREPARED commits nothing and is not checked.
 */
static ProcessUtility_hook_type prev_process_utility_hook = NULL;

static void
FenceProcessUtility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
					ProcessUtilityContext context, ParamListInfo params,
					QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;
	bool		commit_prepared = IsA(parsetree, TransactionStmt) &&
		((TransactionStmt *) parsetree)->kind == TRANS_STMT_COMMIT_PREPARED &&
		FenceApplies();

	if (commit_prepared)
		CheckCommitAllowed();
	if (prev_process_utility_hook)
		prev_process_utility_hook(pstmt, queryString, readOnlyTree, context, params,
								  queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
								queryEnv, dest, qc);
	if (commit_prepared)
		CheckCommitAcknowledgeable(XactLastRecEnd);
}

/*
 * A client that connects to a primary that knows another node leads gets
 * default_transaction_read_only = on: libpq's target_session_attrs =
 * read-write then skips this node and moves on to the leader, instead of
 * settling on a node whose every commit fails.  (A leader that only lost
 * its lease for a moment is not marked: the session would stay read-only
 * after the lease came back.)
 */
static ClientAuthentication_hook_type prev_client_auth_hook = NULL;

static void
FenceClientAuthentication(Port *port, int status)
{
	char		leader[PGC_NAME_LEN];

	if (prev_client_auth_hook)
		prev_client_auth_hook(port, status);
	if (status != STATUS_OK || !FenceApplies() ||
		PgClusterCommitsAllowed(GetCurrentTimestamp()))
		return;

	LWLockAcquire(PgClusterShmem->lock, LW_SHARED);
	strlcpy(leader, PgClusterShmem->leader, PGC_NAME_LEN);
	LWLockRelease(PgClusterShmem->lock);
	if (leader[0] == '\0' || strcmp(leader, PgClusterNodeName) == 0)
		return;

	SetConfigOption("default_transaction_read_only", "on", PGC_SUSET, PGC_S_OVERRIDE);
}

/*
 * PgClusterRegisterFence installs the commit callback, the COMMIT PREPARED
 * check and the connection hook (inherited by every backend from the
 * postmaster).
 */
void
PgClusterRegisterFence(void)
{
	RegisterXactCallback(FenceXactCallback, NULL);
	prev_process_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = FenceProcessUtility;
	prev_client_auth_hook = ClientAuthentication_hook;
	ClientAuthentication_hook = FenceClientAuthentication;
}
