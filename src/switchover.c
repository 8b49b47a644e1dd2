/*-------------------------------------------------------------------------
 *
 * switchover.c
 *		The planned switchover (docs/protocol.md §8): the SQL function
 *		pg_cluster.switchover(), the leader's part run by the calling
 *		backend, and the leader's part run by the worker.
 *
 * The leader runs it; on any other node the function forwards the request
 * to the leader over libpq and then waits until the target leads.  On the
 * leader:
 *
 *	PREPARING	 checks passed; a checkpoint makes the final shutdown quick
 *	HOLDING		 new commits wait (fence.c); commits past the fence finish;
 *				 the insert position is then the handover LSN, above every
 *				 acknowledged commit
 *	HANDING_OVER the worker asks the target to take over (handover.c);
 *				 an unclear answer makes the leader step down
 *	DEMOTING	 the target accepted: the leader prepares to restart as its
 *				 standby (rejoin.c) and shuts down cleanly, so that its
 *				 shutdown checkpoint, its last WAL, reaches the target
 *
 * A session on the leader cannot outlive the leader's shutdown, so there
 * the function returns when the target accepted; the worker shuts the
 * server down once that answer has been sent.
 *
 * Copyright (c) 2026, pg_cluster developers
 *
 * IDENTIFICATION
 *		src/switchover.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/htup_details.h"
#include "access/xlog.h"
#include "funcapi.h"
#include "libpq-fe.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgwriter.h"
#include "postmaster/postmaster.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "pg_cluster.h"
#include "worker.h"

PG_FUNCTION_INFO_V1(pg_cluster_switchover);
PG_FUNCTION_INFO_V1(pg_cluster_request_switchover);

/* How long commits already past the fence may take to finish. */
#define SWITCHOVER_DRAIN_TIMEOUT_MS 5000

/* How long the worker waits for the requester to receive its answer. */
#define REQUESTER_ANSWER_TIMEOUT_MS 1000

/* The longest timeout a caller may ask for. */
#define SWITCHOVER_MAX_TIMEOUT_MS	(3600 * 1000)

/* ----------------------------------------------------------------------
 * Checks
 * ----------------------------------------------------------------------
 */

/*
 * WhyNotTarget returns NULL if the node can be switched over to, or why
 * not.  "leader_lsn" is how far the leader's WAL goes.
 */
static const char *
WhyNotTarget(const PgClusterNodeEntry *e, XLogRecPtr leader_lsn, char *buf, size_t len)
{
	if (e->is_self)
		return "it is the current primary";
	if (e->view_valid && e->view.role == PGC_ROLE_WITNESS)
		return "it is a witness: a witness has no data and is never promoted";
	if (!e->reachable || e->last_reply_at == 0)
		return "it is unreachable";
	if (e->view.state != PGC_STATE_STREAMING)
	{
		snprintf(buf, len, "it is not streaming (state %s)", PgClusterStateName(e->view.state));
		return buf;
	}
	if (e->view.priority <= 0)
		return "its pg_cluster.priority is 0: it is never promoted";
	{
		PgClusterDurableState durable;
		const char *why;

		PgClusterDurableSnapshot(&durable);
		why = PgClusterWhyNotEligible(e->name, &durable);
		if (why != NULL)
			return why;
	}
	if (leader_lsn > e->view.lsn &&
		leader_lsn - e->view.lsn > (XLogRecPtr) PgClusterMaxLagOnFailover)
	{
		snprintf(buf, len, "it lags " UINT64_FORMAT " bytes behind, more than pg_cluster.max_lag_on_failover (%d)",
				 (uint64) (leader_lsn - e->view.lsn), PgClusterMaxLagOnFailover);
		return buf;
	}
	return NULL;
}

/*
 * ChooseTarget checks the requested target, or picks the best standby when
 * none is named (highest priority, then most WAL), and raises the refusal
 * otherwise.  The chosen name goes to "target".
 */
static void
ChooseTarget(const char *requested, char *target)
{
	XLogRecPtr	leader_lsn = GetFlushRecPtr(NULL);
	StringInfoData why_none;
	int			best = -1;
	char		buf[PGC_ERROR_LEN];
	const char *why_not = NULL;

	initStringInfo(&why_none);
	LWLockAcquire(PgClusterShmem->lock, LW_SHARED);
	if (requested != NULL)
	{
		int			i = PgClusterFindNode(requested);

		if (i < 0)
		{
			LWLockRelease(PgClusterShmem->lock);
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("switchover target \"%s\" is not a node of this cluster", requested),
					 errhint("The nodes are listed in pg_cluster.nodes.")));
		}
		why_not = WhyNotTarget(&PgClusterShmem->nodes[i], leader_lsn, buf, sizeof(buf));
		strlcpy(target, requested, PGC_NAME_LEN);
	}
	else
	{
		for (int i = 0; i < PgClusterShmem->node_count; i++)
		{
			const PgClusterNodeEntry *e = &PgClusterShmem->nodes[i];
			const PgClusterNodeEntry *b = best >= 0 ? &PgClusterShmem->nodes[best] : NULL;
			const char *why = WhyNotTarget(e, leader_lsn, buf, sizeof(buf));

			if (why != NULL)
			{
				if (!e->is_self)
					appendStringInfo(&why_none, "%s\"%s\": %s", why_none.len ? "; " : "",
									 e->name, why);
				continue;
			}
			if (b == NULL || e->view.priority > b->view.priority ||
				(e->view.priority == b->view.priority && e->view.lsn > b->view.lsn))
				best = i;
		}
		if (best >= 0)
			strlcpy(target, PgClusterShmem->nodes[best].name, PGC_NAME_LEN);
	}
	LWLockRelease(PgClusterShmem->lock);

	if (requested == NULL && best < 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("no standby can take over"),
				 errdetail("%s.", why_none.len ? why_none.data : "This cluster has no other data node"),
				 errhint("A target must be a reachable, streaming data node with priority above 0 and little lag.")));
	if (why_not != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot switch over to \"%s\": %s", requested, why_not),
				 errdetail("Nothing was changed."),
				 errhint("See pg_cluster.nodes; call pg_cluster.switchover() without a target to pick the best standby.")));
}

/* CheckLeaderCanHandOver raises the refusal if this leader cannot start one. */
static void
CheckLeaderCanHandOver(void)
{
	PgClusterDurableState durable;
	bool		is_leader;

	PgClusterDurableSnapshot(&durable);
	LWLockAcquire(PgClusterShmem->lock, LW_SHARED);
	is_leader = PgClusterShmem->is_leader;
	LWLockRelease(PgClusterShmem->lock);

	if (!is_leader || RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("node \"%s\" is not the leader", PgClusterNodeName),
				 errhint("Call pg_cluster.switchover() again; it finds the current leader.")));
	if (durable.paused)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot switch over: the cluster is paused"),
				 errdetail("Nothing was changed."),
				 errhint("Call pg_cluster.resume() first.")));
	if (!PgClusterCommitsAllowed(GetCurrentTimestamp()) || durable.term == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot switch over: the leader holds no lease"),
				 errdetail("A majority of the voters has not acknowledged leader \"%s\" recently, so no new term could be elected.",
						   PgClusterNodeName),
				 errhint("See pg_cluster.nodes: a majority of the nodes must be reachable.")));
}

/* ----------------------------------------------------------------------
 * The leader's backend
 * ----------------------------------------------------------------------
 */

/*
 * SwitchoverBackendCleanup undoes a switchover whose requester failed
 * before the worker took it over (after that the worker owns it).
 */
static void
SwitchoverBackendCleanup(int code, Datum arg)
{
	uint64		id = DatumGetUInt64(arg);
	bool		undone = false;

	LWLockAcquire(PgClusterShmem->lock, LW_EXCLUSIVE);
	if (PgClusterShmem->switchover.id == id &&
		(PgClusterShmem->switchover.phase == PGC_SWITCHOVER_PREPARING ||
		 PgClusterShmem->switchover.phase == PGC_SWITCHOVER_HOLDING))
	{
		PgClusterShmem->switchover.phase = PGC_SWITCHOVER_NONE;
		PgClusterShmem->switchover.failed = true;
		strlcpy(PgClusterShmem->switchover.error, "the requesting session failed",
				PGC_ERROR_LEN);
		undone = true;
	}
	LWLockRelease(PgClusterShmem->lock);
	if (undone)
	{
		PgClusterReleaseCommits();
		ConditionVariableBroadcast(&PgClusterShmem->switchover_cv);
		PgClusterRecordEvent("switchover_failed", NULL,
							 "switchover " UINT64_FORMAT " abandoned before the handover; commits resume",
							 id);
	}
}

/* RegisterSwitchover claims the one switchover slot; returns its id. */
static uint64
RegisterSwitchover(const char *target, int timeout_ms)
{
	PgClusterSwitchover *sw = &PgClusterShmem->switchover;
	TimestampTz now = GetCurrentTimestamp();
	uint64		id;

	LWLockAcquire(PgClusterShmem->lock, LW_EXCLUSIVE);
	if (sw->phase != PGC_SWITCHOVER_NONE)
	{
		char		other[PGC_NAME_LEN];
		TimestampTz started = sw->started_at;

		strlcpy(other, sw->target, PGC_NAME_LEN);
		LWLockRelease(PgClusterShmem->lock);
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot switch over: a switchover to \"%s\" is already in progress", other),
				 errdetail("It started at %s; one switchover runs at a time.",
						   timestamptz_to_str(started)),
				 errhint("Wait for it to finish; see pg_cluster.status and pg_cluster.events.")));
	}
	id = ++sw->id;
	sw->phase = PGC_SWITCHOVER_PREPARING;
	strlcpy(sw->target, target, PGC_NAME_LEN);
	sw->term = PgClusterShmem->durable.term;
	sw->handover_lsn = InvalidXLogRecPtr;
	sw->started_at = now;
	sw->deadline = TimestampTzPlusMilliseconds(now, timeout_ms);
	sw->requester_pid = MyProcPid;
	sw->failed = false;
	sw->error[0] = '\0';
	LWLockRelease(PgClusterShmem->lock);
	return id;
}

static void
SetPhase(uint64 id, PgClusterSwitchoverPhase phase, XLogRecPtr handover_lsn)
{
	LWLockAcquire(PgClusterShmem->lock, LW_EXCLUSIVE);
	if (PgClusterShmem->switchover.id == id)
	{
		PgClusterShmem->switchover.phase = phase;
		if (handover_lsn != InvalidXLogRecPtr)
			PgClusterShmem->switchover.handover_lsn = handover_lsn;
		if (PgClusterShmem->worker_latch)
			SetLatch(PgClusterShmem->worker_latch);
	}
	LWLockRelease(PgClusterShmem->lock);
	ConditionVariableBroadcast(&PgClusterShmem->switchover_cv);
}

/*
 * WaitForHandover waits until the worker reports the target's answer to
 * switchover "id"; raises the failure if it failed.
 */
static void
WaitForHandover(uint64 id, TimestampTz deadline)
{
	ConditionVariablePrepareToSleep(&PgClusterShmem->switchover_cv);
	for (;;)
	{
		PgClusterSwitchover sw;

		LWLockAcquire(PgClusterShmem->lock, LW_SHARED);
		sw = PgClusterShmem->switchover;
		LWLockRelease(PgClusterShmem->lock);
		if (sw.id != id || sw.phase == PGC_SWITCHOVER_DEMOTING)
			break;
		if (sw.phase == PGC_SWITCHOVER_NONE)
		{
			ConditionVariableCancelSleep();
			ereport(ERROR,
					(errcode(ERRCODE_PGC_SWITCHOVER_FAILED),
					 errmsg("switchover to \"%s\" failed: %s", sw.target,
							sw.failed ? sw.error : "it was abandoned"),
					 errhint("See pg_cluster.events on this node and on \"%s\".", sw.target)));
		}
		/* the worker decides at the deadline; this is a safety margin */
		if (GetCurrentTimestamp() > TimestampTzPlusMilliseconds(deadline, 5000))
		{
			ConditionVariableCancelSleep();
			ereport(ERROR,
					(errcode(ERRCODE_PGC_SWITCHOVER_FAILED),
					 errmsg("switchover to \"%s\" has no outcome yet", sw.target),
					 errhint("See pg_cluster.status and pg_cluster.events.")));
		}
		(void) ConditionVariableTimedSleep(&PgClusterShmem->switchover_cv, 100,
										   PG_WAIT_EXTENSION);
	}
	ConditionVariableCancelSleep();
}

/*
 * LeaderSwitchover runs the leader's part in the calling backend and
 * returns once the target has accepted (this server then shuts down).
 * "target" receives the target's name; *term the term this node led.
 */
static void
LeaderSwitchover(const char *requested, int timeout_ms, char *target, uint64 *term)
{
	uint64		id;
	XLogRecPtr	handover_lsn = InvalidXLogRecPtr;
	TimestampTz deadline;

	CheckLeaderCanHandOver();
	ChooseTarget(requested, target);
	id = RegisterSwitchover(target, timeout_ms);
	LWLockAcquire(PgClusterShmem->lock, LW_SHARED);
	deadline = PgClusterShmem->switchover.deadline;
	*term = PgClusterShmem->switchover.term;
	LWLockRelease(PgClusterShmem->lock);

	PG_ENSURE_ERROR_CLEANUP(SwitchoverBackendCleanup, UInt64GetDatum(id));
	{
		int64		drain_ms;

		PgClusterRecordEvent("switchover_started", target,
							 "switchover " UINT64_FORMAT " to \"%s\": checkpoint first, so the shutdown is short",
							 id, target);
		RequestCheckpoint(CHECKPOINT_IMMEDIATE | CHECKPOINT_WAIT);

		/* the checkpoint took time: look again before holding commits */
		CheckLeaderCanHandOver();
		ChooseTarget(target, target);

		SetPhase(id, PGC_SWITCHOVER_HOLDING, InvalidXLogRecPtr);
		drain_ms = Min((int64) SWITCHOVER_DRAIN_TIMEOUT_MS,
					   (deadline - GetCurrentTimestamp()) / 1000);
		if (!PgClusterHoldCommits(Max(drain_ms, 1)))
			ereport(ERROR,
					(errcode(ERRCODE_PGC_SWITCHOVER_FAILED),
					 errmsg("switchover to \"%s\" failed: commits in progress did not finish within %ld ms",
							target, (long) drain_ms),
					 errdetail("Nothing was changed; commits resume."),
					 errhint("Retry when fewer long commits run (synchronous replication waits count too).")));

		/*
		 * Every commit acknowledged so far has its record below the insert
		 * position now, and no new one can be acknowledged: that position
		 * is the handover LSN.
		 */
		handover_lsn = GetXLogInsertRecPtr();
		XLogFlush(handover_lsn);
		/*
		 * On disk before the request can go out: should this server restart
		 * now, it must not resume the term the target may already lead.
		 */
		PgClusterSetHandedOverTerm(*term);
		/* recorded first: the worker's events about the answer follow it */
		PgClusterRecordEvent("switchover_handover", target,
							 "commits held; every acknowledged commit is below %X/%X; asking \"%s\" to take over",
							 LSN_FORMAT_ARGS(handover_lsn), target);
		SetPhase(id, PGC_SWITCHOVER_HANDING_OVER, handover_lsn);
	}
	PG_END_ENSURE_ERROR_CLEANUP(SwitchoverBackendCleanup, UInt64GetDatum(id));

	WaitForHandover(id, deadline);
}

/* ----------------------------------------------------------------------
 * Forwarding from another node (libpq in a backend, interruptible)
 * ----------------------------------------------------------------------
 */

/* WaitOnSocket waits for "io" on the connection's socket, or the deadline. */
static void
WaitOnSocket(PGconn *conn, int io, TimestampTz deadline, const char *node)
{
	long		timeout_ms = (long) ((deadline - GetCurrentTimestamp()) / 1000);
	int			rc;

	if (timeout_ms <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("timed out waiting for node \"%s\"", node)));
	rc = WaitLatchOrSocket(MyLatch,
						   WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH | io,
						   PQsocket(conn), timeout_ms, PG_WAIT_EXTENSION);
	if (rc & WL_LATCH_SET)
	{
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/* ConnectToNode opens a connection to a peer by name. */
static PGconn *
ConnectToNode(const char *node, TimestampTz deadline)
{
	char		host[PGC_HOST_LEN];
	int			port;
	char	   *conninfo;
	PGconn	   *conn;
	volatile PostgresPollingStatusType status = PGRES_POLLING_WRITING;

	if (!PgClusterNodeAddress(node, host, &port))
		elog(ERROR, "node \"%s\" is not configured", node);
	conninfo = PgClusterPeerConninfoFor(host, port, "switchover", 0);
	conn = PQconnectStart(conninfo);
	pfree(conninfo);
	if (conn == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));

	PG_TRY();
	{
		while (PQstatus(conn) != CONNECTION_BAD &&
			   status != PGRES_POLLING_OK && status != PGRES_POLLING_FAILED)
		{
			WaitOnSocket(conn, status == PGRES_POLLING_READING ?
						 WL_SOCKET_READABLE : WL_SOCKET_WRITEABLE, deadline, node);
			status = PQconnectPoll(conn);
		}
		if (PQstatus(conn) != CONNECTION_OK)
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("could not connect to node \"%s\": %s", node,
							pchomp(PQerrorMessage(conn)))));
	}
	PG_CATCH();
	{
		PQfinish(conn);
		PG_RE_THROW();
	}
	PG_END_TRY();
	return conn;
}

/*
 * RemoteQuery runs a query on a peer and returns its one-row result; an
 * error of the peer is raised here with its SQLSTATE, message, detail and
 * hint.  The caller finishes the connection (also on error).
 */
static PGresult *
RemoteQuery(PGconn *conn, const char *node, const char *query, int nparams,
			const char *const *params, TimestampTz deadline)
{
	PGresult   *last = NULL;
	PGresult   *res;

	if (!PQsendQueryParams(conn, query, nparams, NULL, params, NULL, NULL, 0))
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("could not send a request to node \"%s\": %s", node,
						pchomp(PQerrorMessage(conn)))));
	for (;;)
	{
		while (PQisBusy(conn))
		{
			WaitOnSocket(conn, WL_SOCKET_READABLE, deadline, node);
			if (!PQconsumeInput(conn))
				ereport(ERROR,
						(errcode(ERRCODE_CONNECTION_FAILURE),
						 errmsg("lost the connection to node \"%s\": %s", node,
								pchomp(PQerrorMessage(conn)))));
		}
		res = PQgetResult(conn);
		if (res == NULL)
			break;
		if (last)
			PQclear(last);
		last = res;
	}
	if (last == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("node \"%s\" sent no result", node)));
	if (PQresultStatus(last) != PGRES_TUPLES_OK)
	{
		const char *sqlstate = PQresultErrorField(last, PG_DIAG_SQLSTATE);
		const char *message = PQresultErrorField(last, PG_DIAG_MESSAGE_PRIMARY);
		const char *detail = PQresultErrorField(last, PG_DIAG_MESSAGE_DETAIL);
		const char *hint = PQresultErrorField(last, PG_DIAG_MESSAGE_HINT);
		int			code = ERRCODE_CONNECTION_FAILURE;
		char	   *m = pstrdup(message ? message : pchomp(PQresultErrorMessage(last)));
		char	   *d = detail ? pstrdup(detail) : NULL;
		char	   *h = hint ? pstrdup(hint) : NULL;

		if (sqlstate != NULL && strlen(sqlstate) == 5)
			code = MAKE_SQLSTATE(sqlstate[0], sqlstate[1], sqlstate[2], sqlstate[3], sqlstate[4]);
		PQclear(last);
		ereport(ERROR,
				(errcode(code),
				 errmsg_internal("%s", m),
				 d ? errdetail_internal("%s", d) : 0,
				 h ? errhint("%s", h) : 0,
				 errcontext("on node \"%s\"", node)));
	}
	return last;
}

/*
 * ForwardToLeader asks the leader to run the switchover; returns once the
 * target accepted, with the target's name and the term the leader led.
 */
static void
ForwardToLeader(const char *leader, const char *requested, int timeout_ms,
				TimestampTz deadline, char *target, uint64 *term)
{
	PGconn	   *conn = ConnectToNode(leader, deadline);

	PG_TRY();
	{
		char		timeout[16];
		char		sysid[32];
		char		version[16];
		const char *params[5];
		PGresult   *res;

		snprintf(timeout, sizeof(timeout), "%d", timeout_ms);
		snprintf(sysid, sizeof(sysid), UINT64_FORMAT, PgClusterLocalSystemIdentifier());
		snprintf(version, sizeof(version), "%d", PGC_PROTOCOL_VERSION);
		params[0] = requested;
		params[1] = timeout;
		params[2] = PgClusterNodeName;
		params[3] = sysid;
		params[4] = version;
		res = RemoteQuery(conn, leader,
						  "SELECT target, term FROM pg_cluster.request_switchover($1, $2, $3, $4, $5)",
						  lengthof(params), params, deadline);
		strlcpy(target, PQgetvalue(res, 0, 0), PGC_NAME_LEN);
		*term = strtou64(PQgetvalue(res, 0, 1), NULL, 10);
		PQclear(res);
	}
	PG_FINALLY();
	{
		PQfinish(conn);
	}
	PG_END_TRY();
}

/*
 * WaitForNewLeader waits until "target" leads a term after "old_term" and
 * holds its lease (its state is "leader"), as this node sees it.
 */
static void
WaitForNewLeader(const char *target, uint64 old_term, TimestampTz deadline)
{
	for (;;)
	{
		PgClusterWorkerState state = PGC_STATE_STARTING;
		uint64		term = 0;
		int			i;

		LWLockAcquire(PgClusterShmem->lock, LW_SHARED);
		i = PgClusterFindNode(target);
		if (i >= 0 && PgClusterShmem->nodes[i].is_self)
		{
			state = PgClusterShmem->state;
			term = PgClusterShmem->durable.term;
		}
		else if (i >= 0)
		{
			state = PgClusterShmem->nodes[i].view.state;
			term = PgClusterShmem->nodes[i].view.term;
		}
		LWLockRelease(PgClusterShmem->lock);

		if (state == PGC_STATE_LEADER && term > old_term)
			return;
		if (GetCurrentTimestamp() >= deadline)
			ereport(ERROR,
					(errcode(ERRCODE_PGC_SWITCHOVER_FAILED),
					 errmsg("switchover to \"%s\" did not complete in time", target),
					 errdetail("\"%s\" accepted the handover but is in state %s, term " UINT64_FORMAT ".",
							   target, PgClusterStateName(state), term),
					 errhint("See pg_cluster.events on \"%s\"; the cluster elects a new leader if it fails.",
							 target)));
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 10, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/* ----------------------------------------------------------------------
 * The SQL functions
 * ----------------------------------------------------------------------
 */

/*
 * pg_cluster.switchover(target text, timeout interval) returns the name of
 * the new primary.
 */
Datum
pg_cluster_switchover(PG_FUNCTION_ARGS)
{
	char	   *requested = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));
	Interval   *timeout;
	int64		timeout_ms;
	TimestampTz deadline;
	char		leader[PGC_NAME_LEN];
	bool		is_leader;
	char		target[PGC_NAME_LEN];
	uint64		term;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the timeout of pg_cluster.switchover must not be null")));
	timeout = PG_GETARG_INTERVAL_P(1);
	timeout_ms = (timeout->time + (timeout->day * (int64) USECS_PER_DAY) +
				  (int64) timeout->month * DAYS_PER_MONTH * USECS_PER_DAY) / 1000;
	if (timeout_ms < 1000 || timeout_ms > SWITCHOVER_MAX_TIMEOUT_MS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("switchover timeout must be between 1 second and 1 hour"),
				 errhint("The default, 60 seconds, suits most clusters.")));
	PgClusterRequireUsable();
	if (requested != NULL && requested[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("switchover target must not be empty"),
				 errhint("Pass NULL to pick the best standby.")));
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);

	LWLockAcquire(PgClusterShmem->lock, LW_SHARED);
	strlcpy(leader, PgClusterShmem->leader, PGC_NAME_LEN);
	is_leader = PgClusterShmem->is_leader;
	LWLockRelease(PgClusterShmem->lock);

	if (is_leader && !RecoveryInProgress())
	{
		LeaderSwitchover(requested, (int) timeout_ms, target, &term);
		ereport(NOTICE,
				(errmsg("\"%s\" accepted the handover; this server now shuts down to restart as its standby",
						target),
				 errdetail("This session ends with the server."),
				 errhint("Reconnect through pg_cluster.connection_uri() to reach the new primary.")));
		PG_RETURN_TEXT_P(cstring_to_text(target));
	}
	if (leader[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot switch over: node \"%s\" knows no leader", PgClusterNodeName),
				 errdetail("There is no leader with a majority right now (an election may be running)."),
				 errhint("See pg_cluster.status and pg_cluster.nodes.")));

	ForwardToLeader(leader, requested, (int) timeout_ms, deadline, target, &term);
	WaitForNewLeader(target, term, deadline);
	PG_RETURN_TEXT_P(cstring_to_text(target));
}

/*
 * pg_cluster.request_switchover(): internal, called by another node's
 * pg_cluster.switchover() on the leader.  Returns (target, term).
 */
Datum
pg_cluster_request_switchover(PG_FUNCTION_ARGS)
{
	char	   *requested = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));
	int			timeout_ms;
	char	   *caller;
	char		target[PGC_NAME_LEN];
	uint64		term;
	TupleDesc	tupdesc;
	Datum		values[2];
	bool		nulls[2] = {false, false};

	for (int i = 1; i < 5; i++)
	{
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("only the target of pg_cluster.request_switchover may be null")));
	}
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	timeout_ms = PG_GETARG_INT32(1);
	caller = text_to_cstring(PG_GETARG_TEXT_PP(2));
	(void) PgClusterAdmitCaller(caller, PgClusterArgSystemIdentifier(fcinfo, 3),
								PGC_ROLE_STANDBY, PG_GETARG_INT32(4));
	if (timeout_ms < 1000 || timeout_ms > SWITCHOVER_MAX_TIMEOUT_MS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("switchover timeout must be between 1 second and 1 hour")));
	PgClusterRequireUsable();

	LeaderSwitchover(requested, timeout_ms, target, &term);
	values[0] = CStringGetTextDatum(target);
	values[1] = Int64GetDatum((int64) term);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/* ----------------------------------------------------------------------
 * The leader's worker
 * ----------------------------------------------------------------------
 */

static uint64 handover_sent_id = 0;
static uint64 demote_prepared_id = 0;
static uint64 shutdown_sent_id = 0;
static TimestampTz demoting_since = 0;

/*
 * FinishFailed ends switchover "id" with "error".  A leader that stepped
 * down keeps its term marked as handed over; otherwise the target refused
 * or was never asked, and the term is ours again: unmarked on disk before
 * the held commits go on.
 */
static void
FinishFailed(uint64 id, const char *error, bool stepped_down)
{
	if (!stepped_down)
		PgClusterSetHandedOverTerm(0);
	LWLockAcquire(PgClusterShmem->lock, LW_EXCLUSIVE);
	if (PgClusterShmem->switchover.id == id)
	{
		PgClusterShmem->switchover.phase = PGC_SWITCHOVER_NONE;
		PgClusterShmem->switchover.failed = true;
		strlcpy(PgClusterShmem->switchover.error, error, PGC_ERROR_LEN);
	}
	LWLockRelease(PgClusterShmem->lock);
	PgClusterReleaseCommits();
	ConditionVariableBroadcast(&PgClusterShmem->switchover_cv);
	PgClusterRecordEvent("switchover_failed", NULL, "switchover " UINT64_FORMAT " failed: %s",
						 id, error);
}

/*
 * SwitchoverHandleHandoverReply takes the target's answer (from peer.c).
 * "unclear": the request went out but no row answered it (lost, or an
 * error): the target may have accepted.
 */
void
SwitchoverHandleHandoverReply(const char *peer, bool accepted, bool unclear,
							  const char *reason)
{
	PgClusterSwitchover sw;
	char		error[PGC_ERROR_LEN];

	LWLockAcquire(PgClusterShmem->lock, LW_SHARED);
	sw = PgClusterShmem->switchover;
	LWLockRelease(PgClusterShmem->lock);
	if (sw.phase != PGC_SWITCHOVER_HANDING_OVER || strcmp(sw.target, peer) != 0)
		return;

	if (accepted)
	{
		demoting_since = GetCurrentTimestamp();
		PgClusterRecordEvent("switchover_accepted", peer,
							 "\"%s\" accepted the handover; shutting down to rejoin as its standby",
							 peer);
		SetPhase(sw.id, PGC_SWITCHOVER_DEMOTING, InvalidXLogRecPtr);
		return;
	}
	if (unclear)
	{
		PgClusterStepDown();
		snprintf(error, sizeof(error),
				 "no clear answer from \"%s\" (%s); this node stepped down and an election follows",
				 peer, reason);
	}
	else
		snprintf(error, sizeof(error), "\"%s\" refused: %s", peer, reason);
	FinishFailed(sw.id, error, unclear);
}

/* RequesterHasAnswer: the waiting session got its answer, or is gone. */
static bool
RequesterHasAnswer(int pid)
{
	PGPROC	   *proc = BackendPidGetProc(pid);

	return proc == NULL || proc->wait_event_info == WAIT_EVENT_CLIENT_READ;
}

/*
 * SwitchoverTick runs the worker's part on the leader: send the handover
 * request, and once accepted prepare the rejoin and shut down.
 */
void
SwitchoverTick(TimestampTz now)
{
	PgClusterSwitchover sw;

	LWLockAcquire(PgClusterShmem->lock, LW_SHARED);
	sw = PgClusterShmem->switchover;
	LWLockRelease(PgClusterShmem->lock);

	if (sw.phase == PGC_SWITCHOVER_HANDING_OVER)
	{
		if (handover_sent_id != sw.id)
		{
			PgClusterHandoverRequest req;

			req.term = sw.term;
			req.lsn = sw.handover_lsn;
			req.timeout_ms = (int) Max((sw.deadline - now) / 1000, 1);
			handover_sent_id = sw.id;
			if (!PeerConnectionsRequestHandover(sw.target, &req))
				FinishFailed(sw.id, "no connection to the target", false);
		}
		else if (now >= sw.deadline)
		{
			PgClusterStepDown();
			FinishFailed(sw.id, "the target did not answer before the deadline; this node stepped down",
						 true);
		}
		return;
	}
	if (sw.phase != PGC_SWITCHOVER_DEMOTING)
		return;

	if (demote_prepared_id != sw.id)
	{
		char		reason[PGC_NAME_LEN + 32];

		demote_prepared_id = sw.id;
		if (demoting_since == 0)
			demoting_since = now;
		snprintf(reason, sizeof(reason), "switchover to %s", sw.target);
		RejoinPrepare(sw.target, false, true, reason);
	}
	if (shutdown_sent_id == sw.id)
		return;
	if (!RequesterHasAnswer(sw.requester_pid) &&
		now - demoting_since < (int64) REQUESTER_ANSWER_TIMEOUT_MS * 1000)
		return;
	shutdown_sent_id = sw.id;
	RejoinShutdown("switchover");
}

/* SwitchoverNeedsFastPoll: the worker must look again within milliseconds. */
bool
SwitchoverNeedsFastPoll(void)
{
	bool		fast;

	LWLockAcquire(PgClusterShmem->lock, LW_SHARED);
	fast = PgClusterShmem->switchover.phase == PGC_SWITCHOVER_DEMOTING &&
		shutdown_sent_id != PgClusterShmem->switchover.id;
	LWLockRelease(PgClusterShmem->lock);
	return fast;
}

/*
 * SwitchoverWorkerStart settles a switchover that a previous worker left:
 * one waiting for its answer has an unclear outcome.
 */
void
SwitchoverWorkerStart(void)
{
	PgClusterSwitchover sw;

	LWLockAcquire(PgClusterShmem->lock, LW_SHARED);
	sw = PgClusterShmem->switchover;
	LWLockRelease(PgClusterShmem->lock);
	if (sw.phase == PGC_SWITCHOVER_HANDING_OVER)
	{
		PgClusterStepDown();
		FinishFailed(sw.id, "the worker restarted during the handover; this node stepped down",
					 true);
	}
	else if (sw.phase == PGC_SWITCHOVER_DEMOTING)
		demoting_since = GetCurrentTimestamp();
}

/* SwitchoverInProgress: a switchover holds or hands over (for the state). */
bool
SwitchoverInProgress(void)
{
	PgClusterSwitchoverPhase phase;

	LWLockAcquire(PgClusterShmem->lock, LW_SHARED);
	phase = PgClusterShmem->switchover.phase;
	LWLockRelease(PgClusterShmem->lock);
	return phase >= PGC_SWITCHOVER_HOLDING;
}
