/*-------------------------------------------------------------------------
 *
 * rpc.c
 *		The SQL functions that peers call on this node: the heartbeat.
 *
 * A peer's worker calls pg_cluster.heartbeat() over its connection to us.
 * The backend serving that connection checks that the sender belongs to
 * this cluster (listed in pg_cluster.peers, same system identifier, same
 * protocol version), records what the sender says about itself in shared
 * memory, and answers with this node's own view.  A refusal is an ERROR
 * with SQLSTATE PC001, which the sender recognises.
 *
 * These functions are internal: the install script revokes them from
 * PUBLIC and grants them to the role pgcluster_peer only.
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
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/pg_lsn.h"
#include "utils/timestamp.h"

#include "pg_cluster.h"

PG_FUNCTION_INFO_V1(pg_cluster_heartbeat);

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
	HB_NARGS
};

/* Result columns of pg_cluster.heartbeat() */
#define HB_RESULT_COLUMNS 8

/*
 * RefuseHeartbeat rejects a heartbeat.  The first refusal of a sender (until
 * it is accepted again) is also an event, so a misconfigured peer shows up
 * in pg_cluster.events without flooding it.
 */
static void
RefuseHeartbeat(int node_index, const char *sender, const char *detail)
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
		PgClusterRecordEvent("peer_refused", sender,
							 "refused heartbeat from \"%s\": %s", sender, detail);

	ereport(ERROR,
			(errcode(ERRCODE_PGC_PEER_REFUSED),
			 errmsg("node \"%s\" refuses the heartbeat of \"%s\"",
					PgClusterNodeName ? PgClusterNodeName : "", sender),
			 errdetail("%s", detail),
			 errhint("Check pg_cluster.peers on both nodes; all nodes of a cluster must be cloned from one initdb (a witness excepted).")));
}

static void
RequireArgument(FunctionCallInfo fcinfo, int argno, const char *name)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("argument \"%s\" of pg_cluster.heartbeat must not be null", name)));
}

/*
 * pg_cluster_heartbeat records the sender's view and returns ours.
 */
Datum
pg_cluster_heartbeat(PG_FUNCTION_ARGS)
{
	static const char *const arg_names[HB_NARGS] = {
		"sender_name", "sender_system_identifier", "sender_role", "sender_term",
		"sender_leader", "sender_timeline", "sender_lsn", "sender_time",
		"sender_protocol_version"
	};
	char	   *sender;
	PgClusterNodeView theirs;
	PgClusterNodeView ours;
	int			version;
	int			node_index;
	char		detail[PGC_ERROR_LEN];
	TupleDesc	tupdesc;
	Datum		values[HB_RESULT_COLUMNS];
	bool		nulls[HB_RESULT_COLUMNS];
	char		sysid[32];
	TimestampTz now = GetCurrentTimestamp();
	Latch	   *worker_latch = NULL;
	bool		unavailable;

	for (int i = 0; i < HB_NARGS; i++)
		if (i != HB_ARG_LEADER)
			RequireArgument(fcinfo, i, arg_names[i]);

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	sender = text_to_cstring(PG_GETARG_TEXT_PP(HB_ARG_SENDER));
	version = PG_GETARG_INT32(HB_ARG_PROTOCOL_VERSION);

	memset(&theirs, 0, sizeof(theirs));
	theirs.system_identifier =
		strtou64(text_to_cstring(PG_GETARG_TEXT_PP(HB_ARG_SYSTEM_IDENTIFIER)), NULL, 10);
	theirs.role = PgClusterRoleFromName(text_to_cstring(PG_GETARG_TEXT_PP(HB_ARG_ROLE)));
	theirs.term = (uint64) PG_GETARG_INT64(HB_ARG_TERM);
	if (!PG_ARGISNULL(HB_ARG_LEADER))
		text_to_cstring_buffer(PG_GETARG_TEXT_PP(HB_ARG_LEADER), theirs.leader, PGC_NAME_LEN);
	theirs.timeline = (TimeLineID) PG_GETARG_INT32(HB_ARG_TIMELINE);
	theirs.lsn = PG_GETARG_LSN(HB_ARG_LSN);
	theirs.sent_at = PG_GETARG_TIMESTAMPTZ(HB_ARG_SENT_AT);

	LWLockAcquire(PgClusterShmem->lock, LW_SHARED);
	node_index = PgClusterFindNode(sender);
	LWLockRelease(PgClusterShmem->lock);

	if (!PgClusterIsConfigured())
		RefuseHeartbeat(-1, sender, "this node is not configured (pg_cluster.node_name, pg_cluster.peers)");
	if (version != PGC_PROTOCOL_VERSION)
	{
		snprintf(detail, sizeof(detail), "sender speaks protocol version %d, this node %d",
				 version, PGC_PROTOCOL_VERSION);
		RefuseHeartbeat(node_index, sender, detail);
	}
	if (node_index < 0)
	{
		snprintf(detail, sizeof(detail), "node \"%s\" is not in pg_cluster.peers of this node",
				 sender);
		RefuseHeartbeat(-1, sender, detail);
	}
	if (strcmp(sender, PgClusterNodeName) == 0)
		RefuseHeartbeat(-1, sender, "the heartbeat comes from this node itself: two entries of pg_cluster.peers point here");

	/* without its durable state a node must not answer with a term */
	LWLockAcquire(PgClusterShmem->lock, LW_SHARED);
	unavailable = !PgClusterShmem->durable_loaded ||
		PgClusterShmem->state == PGC_STATE_STATE_FILE_CORRUPT;
	LWLockRelease(PgClusterShmem->lock);
	if (unavailable)
		ereport(ERROR,
				(errcode(ERRCODE_PGC_NODE_UNAVAILABLE),
				 errmsg("node \"%s\" cannot take part in the cluster now",
						PgClusterNodeName),
				 errdetail("Its durable state (pg_cluster.state) is not loaded or is damaged."),
				 errhint("See pg_cluster.status and the server log of that node.")));

	PgClusterLocalView(&ours);
	if (!(theirs.role == PGC_ROLE_WITNESS && theirs.system_identifier == 0) &&
		ours.system_identifier != 0 &&
		theirs.system_identifier != ours.system_identifier)
	{
		snprintf(detail, sizeof(detail),
				 "sender belongs to another cluster: its system identifier is " UINT64_FORMAT ", ours is " UINT64_FORMAT,
				 theirs.system_identifier, ours.system_identifier);
		RefuseHeartbeat(node_index, sender, detail);
	}

	LWLockAcquire(PgClusterShmem->lock, LW_EXCLUSIVE);
	{
		PgClusterNodeEntry *entry = &PgClusterShmem->nodes[node_index];

		entry->view = theirs;
		entry->view_valid = true;
		entry->view_received_at = now;
		entry->last_heard_at = now;
		entry->heartbeats_received++;
		if (theirs.term > PgClusterShmem->highest_term_seen)
		{
			PgClusterShmem->highest_term_seen = theirs.term;
			strlcpy(PgClusterShmem->highest_term_from, sender, PGC_NAME_LEN);
		}
		if (theirs.term > PgClusterShmem->term)
			worker_latch = PgClusterShmem->worker_latch;
	}
	LWLockRelease(PgClusterShmem->lock);

	/* a higher term must be made durable by the worker: wake it */
	if (worker_latch != NULL)
		SetLatch(worker_latch);

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

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
