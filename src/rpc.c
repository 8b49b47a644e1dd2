/*-------------------------------------------------------------------------
 *
 * rpc.c
 *		The SQL functions that peers call on this node (heartbeat, vote) and
 *		the maintenance-mode functions pause() and resume().
 *
 * A peer's worker calls these over its connection to us.  The backend
 * serving that connection first checks that the caller belongs to this
 * cluster (listed in pg_cluster.peers, same system identifier, same
 * protocol version) and refuses otherwise with SQLSTATE PC001, which the
 * caller recognises.  See docs/protocol.md §3.
 *
 * The RPCs are internal: the install script revokes them from PUBLIC and
 * grants them to the role pgcluster_peer only.
 *
 * Copyright (c) 2026, pg_cluster developers
 *
 * IDENTIFICATION
 *		src/rpc.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/pg_lsn.h"
#include "utils/timestamp.h"

#include "pg_cluster.h"
#include "worker.h"

PG_FUNCTION_INFO_V1(pg_cluster_heartbeat);
PG_FUNCTION_INFO_V1(pg_cluster_request_vote);
PG_FUNCTION_INFO_V1(pg_cluster_pause);
PG_FUNCTION_INFO_V1(pg_cluster_resume);

/* Argument positions of pg_cluster.heartbeat() */
enum HeartbeatArg
{
	HB_ARG_SENDER = 0,
	HB_ARG_SYSTEM_IDENTIFIER,
	HB_ARG_ROLE,
	HB_ARG_TERM,
	HB_ARG_LEADER,
	HB_ARG_TIMELINE,
	HB_ARG_LSN,
	HB_ARG_SENT_AT,
	HB_ARG_PROTOCOL_VERSION,
	HB_ARG_IS_LEADER,
	HB_ARG_PAUSE_VERSION,
	HB_ARG_PAUSED,
	HB_ARG_SYNC_VERSION,
	HB_ARG_SYNC_RESTRICTED,
	HB_ARG_SYNC_ELIGIBLE,
	HB_ARG_SYNC_TERM,
	HB_ARG_WAL_TERM,
	HB_ARG_WAL_TERM_LSN,
	HB_NARGS
};

static const char *const heartbeat_arg_names[HB_NARGS] = {
	"sender_name", "sender_system_identifier", "sender_role", "sender_term",
	"sender_leader", "sender_timeline", "sender_lsn", "sender_time",
	"sender_protocol_version", "sender_is_leader", "sender_pause_version",
	"sender_paused", "sender_sync_version", "sender_sync_restricted",
	"sender_sync_eligible", "sender_sync_term", "sender_wal_term",
	"sender_wal_term_lsn"
};

/* Argument positions of pg_cluster.request_vote() */
enum VoteArg
{
	VOTE_ARG_CANDIDATE = 0,
	VOTE_ARG_SYSTEM_IDENTIFIER,
	VOTE_ARG_TERM,
	VOTE_ARG_TIMELINE,
	VOTE_ARG_LSN,
	VOTE_ARG_PRE_VOTE,
	VOTE_ARG_PROTOCOL_VERSION,
	VOTE_ARG_TRANSFER_FROM,
	VOTE_ARG_SYNC_VERSION,
	VOTE_ARG_SYNC_TERM,
	VOTE_ARG_SYNC_RESTRICTED,
	VOTE_ARG_SYNC_ELIGIBLE,
	VOTE_ARG_WAL_TERM,
	VOTE_NARGS
};

static const char *const vote_arg_names[VOTE_NARGS] = {
	"candidate_name", "candidate_system_identifier", "candidate_term",
	"candidate_timeline", "candidate_lsn", "pre_vote", "candidate_protocol_version",
	"transfer_from", "candidate_sync_version", "candidate_sync_term",
	"candidate_sync_restricted", "candidate_sync_eligible", "candidate_wal_term"
};

#define HB_RESULT_COLUMNS 17
#define VOTE_RESULT_COLUMNS 3

/*
 * RefuseCaller rejects a call.  The first refusal of a caller (until it is
 * accepted again) is also an event, so a misconfigured peer shows up in
 * pg_cluster.events without flooding it.
 */
static void
RefuseCaller(int node_index, const char *caller, const char *detail)
{
	bool		first = true;

	if (node_index >= 0)
	{
		LWLockAcquire(PgClusterShmem->lock, LW_EXCLUSIVE);
		first = !PgClusterShmem->nodes[node_index].refused;
		PgClusterShmem->nodes[node_index].refused = true;
		strlcpy(PgClusterShmem->nodes[node_index].last_error, detail, PGC_ERROR_LEN);
		LWLockRelease(PgClusterShmem->lock);
	}
	if (first)
		PgClusterRecordEvent("peer_refused", caller,
							 "refused a request from \"%s\": %s", caller, detail);

	ereport(ERROR,
			(errcode(ERRCODE_PGC_PEER_REFUSED),
			 errmsg("node \"%s\" refuses a request from \"%s\"",
					PgClusterNodeName ? PgClusterNodeName : "", caller),
			 errdetail("%s", detail),
			 errhint("Check pg_cluster.peers on both nodes; all nodes of a cluster must be cloned from one initdb (a witness excepted).")));
}

static void
RequireArguments(FunctionCallInfo fcinfo, const char *function,
				 const char *const *names, int nargs, int nullable)
{
	for (int i = 0; i < nargs; i++)
	{
		if (i != nullable && PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("argument \"%s\" of %s must not be null", names[i], function)));
	}
}

/*
 * AdmitCaller checks that a caller belongs to this cluster and that this
 * node can answer; returns the caller's index in the node table.
 */
int
PgClusterAdmitCaller(const char *caller, uint64 caller_sysid, PgClusterRole caller_role,
			int version)
{
	int			node_index;
	char		detail[PGC_ERROR_LEN];
	uint64		ours;

	LWLockAcquire(PgClusterShmem->lock, LW_SHARED);
	node_index = PgClusterFindNode(caller);
	LWLockRelease(PgClusterShmem->lock);

	if (!PgClusterIsConfigured())
		RefuseCaller(-1, caller, "this node is not configured (pg_cluster.node_name, pg_cluster.peers)");
	if (version != PGC_PROTOCOL_VERSION)
	{
		snprintf(detail, sizeof(detail), "sender speaks protocol version %d, this node %d",
				 version, PGC_PROTOCOL_VERSION);
		RefuseCaller(node_index, caller, detail);
	}
	if (node_index < 0)
	{
		snprintf(detail, sizeof(detail), "node \"%s\" is not in pg_cluster.peers of this node",
				 caller);
		RefuseCaller(-1, caller, detail);
	}
	if (strcmp(caller, PgClusterNodeName) == 0)
		RefuseCaller(-1, caller, "the call comes from this node itself: two entries of pg_cluster.peers point here");

	/* without its durable state a node must not answer with a term */
	if (!PgClusterEnsureDurableLoaded())
		ereport(ERROR,
				(errcode(ERRCODE_PGC_NODE_UNAVAILABLE),
				 errmsg("node \"%s\" cannot take part in the cluster now",
						PgClusterNodeName),
				 errdetail("Its durable state (pg_cluster.state) is damaged."),
				 errhint("See pg_cluster.status and the server log of that node.")));

	ours = PgClusterLocalSystemIdentifier();
	if (!(caller_role == PGC_ROLE_WITNESS && caller_sysid == 0) &&
		ours != 0 && caller_sysid != ours)
	{
		snprintf(detail, sizeof(detail),
				 "sender belongs to another cluster: its system identifier is " UINT64_FORMAT ", ours is " UINT64_FORMAT,
				 caller_sysid, ours);
		RefuseCaller(node_index, caller, detail);
	}
	return node_index;
}

uint64
PgClusterArgSystemIdentifier(FunctionCallInfo fcinfo, int argno)
{
	return strtou64(text_to_cstring(PG_GETARG_TEXT_PP(argno)), NULL, 10);
}

/* ArgSyncRecord reads a synchronous record from four arguments. */
static void
ArgSyncRecord(FunctionCallInfo fcinfo, int term_arg, int version_arg,
			  int restricted_arg, int eligible_arg, PgClusterSyncRecord *record)
{
	memset(record, 0, sizeof(*record));
	record->term = (uint64) PG_GETARG_INT64(term_arg);
	record->version = (uint64) PG_GETARG_INT64(version_arg);
	record->restricted = PG_GETARG_BOOL(restricted_arg);
	text_to_cstring_buffer(PG_GETARG_TEXT_PP(eligible_arg), record->eligible,
						   PGC_NAME_LIST_LEN);
}

/*
 * pg_cluster_heartbeat records the sender's view, acknowledges a leader of
 * our (possibly just adopted) term, and returns our view.
 */
Datum
pg_cluster_heartbeat(PG_FUNCTION_ARGS)
{
	char	   *sender;
	PgClusterNodeView theirs;
	PgClusterNodeView ours;
	int			node_index;
	TupleDesc	tupdesc;
	Datum		values[HB_RESULT_COLUMNS];
	bool		nulls[HB_RESULT_COLUMNS];
	char		sysid[32];
	TimestampTz now = GetCurrentTimestamp();
	bool		ack = false;
	uint64		our_term;

	RequireArguments(fcinfo, "pg_cluster.heartbeat", heartbeat_arg_names, HB_NARGS,
					 HB_ARG_LEADER);
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	sender = text_to_cstring(PG_GETARG_TEXT_PP(HB_ARG_SENDER));
	memset(&theirs, 0, sizeof(theirs));
	theirs.system_identifier = PgClusterArgSystemIdentifier(fcinfo, HB_ARG_SYSTEM_IDENTIFIER);
	theirs.role = PgClusterRoleFromName(text_to_cstring(PG_GETARG_TEXT_PP(HB_ARG_ROLE)));
	theirs.term = (uint64) PG_GETARG_INT64(HB_ARG_TERM);
	if (!PG_ARGISNULL(HB_ARG_LEADER))
		text_to_cstring_buffer(PG_GETARG_TEXT_PP(HB_ARG_LEADER), theirs.leader, PGC_NAME_LEN);
	theirs.timeline = (TimeLineID) PG_GETARG_INT32(HB_ARG_TIMELINE);
	theirs.lsn = PG_GETARG_LSN(HB_ARG_LSN);
	theirs.sent_at = PG_GETARG_TIMESTAMPTZ(HB_ARG_SENT_AT);
	theirs.is_leader = PG_GETARG_BOOL(HB_ARG_IS_LEADER);
	theirs.pause_version = (uint64) PG_GETARG_INT64(HB_ARG_PAUSE_VERSION);
	theirs.wal_term = (uint64) PG_GETARG_INT64(HB_ARG_WAL_TERM);
	theirs.wal_term_lsn = PG_GETARG_LSN(HB_ARG_WAL_TERM_LSN);
	theirs.paused = PG_GETARG_BOOL(HB_ARG_PAUSED);

	node_index = PgClusterAdmitCaller(sender, theirs.system_identifier, theirs.role,
							 PG_GETARG_INT32(HB_ARG_PROTOCOL_VERSION));

	/* a higher term is adopted (durably) before anything is answered */
	PgClusterAdoptTerm(theirs.term, sender);
	PgClusterAdoptPause(theirs.pause_version, theirs.paused, sender);
	{
		PgClusterSyncRecord record;

		ArgSyncRecord(fcinfo, HB_ARG_SYNC_TERM, HB_ARG_SYNC_VERSION,
					  HB_ARG_SYNC_RESTRICTED, HB_ARG_SYNC_ELIGIBLE, &record);
		theirs.sync_term = record.term;
		theirs.sync_version = record.version;
		PgClusterAdoptSyncRecord(&record, sender);
	}

	LWLockAcquire(PgClusterShmem->durable_lock, LW_SHARED);
	our_term = PgClusterShmem->durable.term;
	LWLockAcquire(PgClusterShmem->lock, LW_EXCLUSIVE);
	{
		PgClusterNodeEntry *entry = &PgClusterShmem->nodes[node_index];

		/* one leader per term: acknowledge the leader of our term */
		if (theirs.is_leader && theirs.term == our_term && !PgClusterShmem->is_leader)
		{
			ack = true;
			strlcpy(PgClusterShmem->leader, sender, PGC_NAME_LEN);
			PgClusterShmem->last_leader_contact = now;
			PgClusterRaiseLeaderProgressLocked(theirs.wal_term, theirs.timeline, theirs.lsn);
		}
		/* the sender's state and priority come only with its replies */
		theirs.priority = entry->view.priority;
		theirs.state = entry->view.state;
		entry->view = theirs;
		entry->view_valid = true;
		entry->view_received_at = now;
		entry->last_heard_at = now;
		entry->heartbeats_received++;
	}
	LWLockRelease(PgClusterShmem->lock);
	LWLockRelease(PgClusterShmem->durable_lock);
	/* on a witness, on disk before the acknowledgement goes out */
	if (ack)
	{
		PgClusterPersistLeaderProgress();
		/* the leader's marker tells a node that lost track its WAL's term */
		if (theirs.wal_term == theirs.term)
			WalTermLearnFromLeader(theirs.wal_term, theirs.wal_term_lsn, theirs.timeline);
	}

	PgClusterLocalView(&ours);
	memset(nulls, 0, sizeof(nulls));
	snprintf(sysid, sizeof(sysid), UINT64_FORMAT, ours.system_identifier);
	values[0] = CStringGetTextDatum(PgClusterNodeName);
	values[1] = CStringGetTextDatum(sysid);
	values[2] = CStringGetTextDatum(PgClusterRoleName(ours.role));
	values[3] = Int64GetDatum((int64) ours.term);
	if (ours.leader[0] != '\0')
		values[4] = CStringGetTextDatum(ours.leader);
	else
		nulls[4] = true;
	values[5] = Int32GetDatum((int32) ours.timeline);
	values[6] = LSNGetDatum(ours.lsn);
	values[7] = Int32GetDatum(PGC_PROTOCOL_VERSION);
	/*
	 * A reply counts as contact with the leader (the caller defers its
	 * election), but it comes from this backend, which goes on answering
	 * when our worker hangs or cannot reach a majority.  So the reply
	 * claims leadership only while our lease is valid: a leader that cannot
	 * renew its lease must not keep its followers from electing another.
	 */
	values[8] = BoolGetDatum(ours.is_leader && PgClusterCommitsAllowed(now));
	values[9] = BoolGetDatum(ack);
	values[10] = Int64GetDatum((int64) ours.pause_version);
	values[11] = BoolGetDatum(ours.paused);
	values[12] = Int32GetDatum(ours.priority);
	values[13] = CStringGetTextDatum(PgClusterStateName(ours.state));
	values[14] = Int64GetDatum((int64) ours.sync_version);
	values[15] = Int64GetDatum((int64) ours.sync_term);
	values[16] = Int64GetDatum((int64) ours.wal_term);

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/*
 * pg_cluster_request_vote answers a (pre-)vote request with the rules of
 * docs/protocol.md §3.2; a granted vote is on disk before the answer.
 */
Datum
pg_cluster_request_vote(PG_FUNCTION_ARGS)
{
	PgClusterVoteRequest req;
	TupleDesc	tupdesc;
	Datum		values[VOTE_RESULT_COLUMNS];
	bool		nulls[VOTE_RESULT_COLUMNS] = {false, false, false};
	char		reason[PGC_ERROR_LEN];
	uint64		voter_term;
	bool		granted;

	RequireArguments(fcinfo, "pg_cluster.request_vote", vote_arg_names, VOTE_NARGS,
					 VOTE_ARG_TRANSFER_FROM);
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	memset(&req, 0, sizeof(req));
	text_to_cstring_buffer(PG_GETARG_TEXT_PP(VOTE_ARG_CANDIDATE), req.candidate, PGC_NAME_LEN);
	req.term = (uint64) PG_GETARG_INT64(VOTE_ARG_TERM);
	req.timeline = (TimeLineID) PG_GETARG_INT32(VOTE_ARG_TIMELINE);
	req.lsn = PG_GETARG_LSN(VOTE_ARG_LSN);
	req.pre_vote = PG_GETARG_BOOL(VOTE_ARG_PRE_VOTE);
	req.wal_term = (uint64) PG_GETARG_INT64(VOTE_ARG_WAL_TERM);
	ArgSyncRecord(fcinfo, VOTE_ARG_SYNC_TERM, VOTE_ARG_SYNC_VERSION,
				  VOTE_ARG_SYNC_RESTRICTED, VOTE_ARG_SYNC_ELIGIBLE, &req.sync);
	if (!PG_ARGISNULL(VOTE_ARG_TRANSFER_FROM))
		text_to_cstring_buffer(PG_GETARG_TEXT_PP(VOTE_ARG_TRANSFER_FROM),
							   req.transfer_from, PGC_NAME_LEN);

	(void) PgClusterAdmitCaller(req.candidate, PgClusterArgSystemIdentifier(fcinfo, VOTE_ARG_SYSTEM_IDENTIFIER),
					   PGC_ROLE_STANDBY, PG_GETARG_INT32(VOTE_ARG_PROTOCOL_VERSION));

	granted = PgClusterHandleVoteRequest(&req, &voter_term, reason, sizeof(reason));
	if (!req.pre_vote)
		PgClusterRecordEvent(granted ? "voted" : "vote_declined", req.candidate,
							 "vote for \"%s\" in term " UINT64_FORMAT "%s%s%s: %s",
							 req.candidate, req.term,
							 req.transfer_from[0] ? " (handover from \"" : "",
							 req.transfer_from,
							 req.transfer_from[0] ? "\")" : "", reason);

	values[0] = Int64GetDatum((int64) voter_term);
	values[1] = BoolGetDatum(granted);
	values[2] = CStringGetTextDatum(reason);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/*
 * PgClusterRequireUsable raises an error unless this node is configured
 * and its durable state is loaded: what an operator's function needs.
 */
void
PgClusterRequireUsable(void)
{
	if (!PgClusterIsConfigured())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pg_cluster is not configured on this node"),
				 errhint("Set pg_cluster.node_name and pg_cluster.peers.")));
	if (!PgClusterEnsureDurableLoaded())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the durable state of this node is damaged"),
				 errhint("See pg_cluster.status and the server log.")));
}

/*
 * SetPause switches maintenance mode cluster-wide: a new version of the
 * flag, durable here and carried to every node by the heartbeats.
 */
static Datum
SetPause(bool paused)
{
	PgClusterDurableState durable;

	PgClusterRequireUsable();
	PgClusterDurableSnapshot(&durable);
	if (durable.paused == paused)
	{
		ereport(NOTICE,
				(errmsg("the cluster is already %s", paused ? "paused" : "running")));
		PG_RETURN_BOOL(false);
	}
	PgClusterAdoptPause(durable.pause_version + 1, paused, PgClusterNodeName);
	PG_RETURN_BOOL(true);
}

Datum
pg_cluster_pause(PG_FUNCTION_ARGS)
{
	return SetPause(true);
}

Datum
pg_cluster_resume(PG_FUNCTION_ARGS)
{
	return SetPause(false);
}
