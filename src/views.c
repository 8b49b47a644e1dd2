/*-------------------------------------------------------------------------
 *
 * views.c
 *		The SQL functions behind the views pg_cluster.nodes,
 *		pg_cluster.status and pg_cluster.events, and
 *		pg_cluster.connection_uri().
 *
 * Each function copies what it needs out of shared memory under the lock
 * and builds its tuples after releasing it, so a slow client never holds
 * up the worker.
 *
 * Copyright (c) 2026, pg_cluster developers
 *
 * IDENTIFICATION
 *		src/views.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xlog.h"
#include "commands/dbcommands.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "replication/syncrep.h"
#include "utils/builtins.h"
#include "utils/pg_lsn.h"
#include "utils/timestamp.h"

#include "pg_cluster.h"

PG_FUNCTION_INFO_V1(pg_cluster_node_info);
PG_FUNCTION_INFO_V1(pg_cluster_status_info);
PG_FUNCTION_INFO_V1(pg_cluster_event_log);
PG_FUNCTION_INFO_V1(pg_cluster_connection_uri);

#define NODE_INFO_COLUMNS	26
#define STATUS_INFO_COLUMNS	27
#define EVENT_LOG_COLUMNS	6

/* A consistent copy of the shared state, taken under the lock. */
typedef struct SharedSnapshot
{
	PgClusterWorkerState state;
	uint64		term;
	char		voted_for[PGC_NAME_LEN];
	char		leader[PGC_NAME_LEN];
	bool		paused;
	PgClusterDurableState durable;
	char		sync_standby_names[PGC_NAME_LIST_LEN + 32];
	char		sync_status[PGC_ERROR_LEN];
	uint64		commits_not_replicated;
	bool		is_leader;
	TimestampTz last_leader_contact;
	pid_t		worker_pid;
	TimestampTz worker_started_at;
	int			node_count;
	PgClusterNodeEntry nodes[PGC_MAX_NODES];
} SharedSnapshot;

static void
TakeSnapshot(SharedSnapshot *snap)
{
	LWLockAcquire(PgClusterShmem->durable_lock, LW_SHARED);
	snap->term = PgClusterShmem->durable.term;
	strlcpy(snap->voted_for, PgClusterShmem->durable.voted_for, PGC_NAME_LEN);
	snap->paused = PgClusterShmem->durable.paused;
	snap->durable = PgClusterShmem->durable;
	LWLockRelease(PgClusterShmem->durable_lock);

	LWLockAcquire(PgClusterShmem->lock, LW_SHARED);
	snap->state = PgClusterShmem->state;
	strlcpy(snap->sync_standby_names, PgClusterShmem->sync_standby_names,
			sizeof(snap->sync_standby_names));
	strlcpy(snap->sync_status, PgClusterShmem->sync_status, sizeof(snap->sync_status));
	snap->commits_not_replicated = PgClusterShmem->commits_not_replicated;
	snap->is_leader = PgClusterShmem->is_leader;
	snap->last_leader_contact = PgClusterShmem->last_leader_contact;
	strlcpy(snap->leader, PgClusterShmem->leader, PGC_NAME_LEN);
	snap->worker_pid = PgClusterShmem->worker_pid;
	snap->worker_started_at = PgClusterShmem->worker_started_at;
	snap->node_count = PgClusterShmem->node_count;
	memcpy(snap->nodes, PgClusterShmem->nodes,
		   sizeof(PgClusterNodeEntry) * snap->node_count);
	LWLockRelease(PgClusterShmem->lock);
}

static Datum
TextOrNull(const char *s, bool *isnull)
{
	*isnull = (s == NULL || s[0] == '\0');
	return *isnull ? (Datum) 0 : CStringGetTextDatum(s);
}

static Datum
TimestampOrNull(TimestampTz t, bool *isnull)
{
	*isnull = (t == 0);
	return TimestampTzGetDatum(t);
}

/*
 * NodeIsLeader says whether the snapshot names this node as the leader.
 */
static bool
NodeIsLeader(const SharedSnapshot *snap, const PgClusterNodeEntry *node)
{
	return snap->leader[0] != '\0' && strcmp(snap->leader, node->name) == 0;
}

/*
 * NodeWhyNotEligible: NULL if the node could be promoted by an election
 * now, as far as this node knows, or why not.
 */
static const char *
NodeWhyNotEligible(const SharedSnapshot *snap, const PgClusterNodeEntry *node,
				   XLogRecPtr leader_lsn, uint64 leader_wal_term)
{
	const char *why;

	if (!node->view_valid || node->view.role == PGC_ROLE_UNKNOWN)
		return "unknown: no heartbeat from it yet";
	if (node->view.role == PGC_ROLE_WITNESS)
		return "a witness is never promoted";
	if (NodeIsLeader(snap, node))
		return "it is the leader";
	if (!node->is_self && !node->reachable)
		return "unreachable";
	if (node->view.priority <= 0 && (node->is_self || node->last_reply_at != 0))
		return "pg_cluster.priority is 0";
	why = PgClusterWhyNotEligible(node->name, &snap->durable);
	if (why != NULL)
		return why;
	if (leader_lsn != InvalidXLogRecPtr &&
		(node->view.wal_term < leader_wal_term ||
		 (node->view.wal_term == leader_wal_term &&
		  node->view.lsn + (XLogRecPtr) PgClusterMaxLagOnFailover < leader_lsn)))
		return "lagging more than pg_cluster.max_lag_on_failover";
	return NULL;
}

/*
 * pg_cluster_node_info returns one row per configured node, as this node
 * sees it (the view pg_cluster.nodes).  This node's own row is filled from
 * live values.
 */
Datum
pg_cluster_node_info(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	SharedSnapshot *snap = palloc(sizeof(SharedSnapshot));
	PgClusterNodeView self_view;
	XLogRecPtr	leader_lsn = InvalidXLogRecPtr;
	TimeLineID	leader_tli = 0;
	uint64		leader_wal_term = 0;
	TimestampTz now = GetCurrentTimestamp();

	InitMaterializedSRF(fcinfo, 0);
	PgClusterLocalView(&self_view);
	TakeSnapshot(snap);

	/* find where the leader's WAL is, to compute every node's lag */
	for (int i = 0; i < snap->node_count; i++)
	{
		PgClusterNodeEntry *node = &snap->nodes[i];

		if (node->is_self)
		{
			node->view = self_view;
			node->view_valid = true;
			node->reachable = true;
			node->last_reply_at = now;
		}
		if (NodeIsLeader(snap, node) && node->view_valid)
		{
			leader_lsn = node->view.lsn;
			leader_tli = node->view.timeline;
			leader_wal_term = node->view.wal_term;
		}
	}

	for (int i = 0; i < snap->node_count; i++)
	{
		const PgClusterNodeEntry *node = &snap->nodes[i];
		Datum		values[NODE_INFO_COLUMNS];
		bool		nulls[NODE_INFO_COLUMNS];
		bool		has_wal = node->view_valid && node->view.role != PGC_ROLE_WITNESS &&
			node->view.role != PGC_ROLE_UNKNOWN;
		char		sysid[32];
		TimestampTz last_seen = Max(node->last_reply_at, node->last_heard_at);
		int			c = 0;
		char		quoted[PGC_NAME_LEN + 2];

		snprintf(quoted, sizeof(quoted), "\"%s\"", node->name);

		memset(nulls, 0, sizeof(nulls));
		values[c++] = CStringGetTextDatum(node->name);
		values[c++] = CStringGetTextDatum(node->host);
		values[c++] = Int32GetDatum(node->port);
		values[c++] = CStringGetTextDatum(PgClusterRoleName(node->view_valid ?
															node->view.role : PGC_ROLE_UNKNOWN));
		values[c++] = BoolGetDatum(node->reachable);
		values[c++] = BoolGetDatum(NodeIsLeader(snap, node));
		values[c++] = BoolGetDatum(node->is_self);

		nulls[c] = !node->view_valid;
		values[c++] = Int64GetDatum((int64) node->view.term);
		nulls[c] = !has_wal;
		values[c++] = Int32GetDatum((int32) node->view.timeline);
		nulls[c] = !has_wal;
		values[c++] = LSNGetDatum(node->view.lsn);

		/* lag behind the leader, on the leader's timeline only */
		nulls[c] = !(has_wal && leader_tli != 0 && node->view.timeline == leader_tli);
		values[c++] = Int64GetDatum(leader_lsn > node->view.lsn ?
									(int64) (leader_lsn - node->view.lsn) : 0);

		values[c] = TimestampOrNull(last_seen, &nulls[c]);
		c++;
		values[c] = TimestampOrNull(node->is_self ? 0 : node->last_heard_at, &nulls[c]);
		c++;
		nulls[c] = node->is_self || node->heartbeats_answered == 0;
		values[c++] = Float8GetDatum(node->last_rtt_us / 1000.0);
		values[c++] = CStringGetTextDatum(node->connection_state ?
										  node->connection_state : "disconnected");
		values[c++] = BoolGetDatum(node->refused);
		values[c] = TextOrNull(node->last_error, &nulls[c]);
		c++;
		values[c++] = Int64GetDatum((int64) node->heartbeats_sent);
		values[c++] = Int64GetDatum((int64) node->heartbeats_answered);
		values[c++] = Int64GetDatum((int64) node->heartbeats_received);
		snprintf(sysid, sizeof(sysid), UINT64_FORMAT, node->view.system_identifier);
		nulls[c] = !node->view_valid || node->view.system_identifier == 0;
		values[c++] = CStringGetTextDatum(sysid);
		/* state and priority come with the node's replies to our heartbeats */
		nulls[c] = !node->is_self && node->last_reply_at == 0;
		values[c++] = CStringGetTextDatum(PgClusterStateName(node->view.state));
		nulls[c] = !node->is_self && node->last_reply_at == 0;
		values[c++] = Int32GetDatum(node->view.priority);
		/* synchronous: known on the leader, which manages the names */
		nulls[c] = !snap->is_leader || !has_wal;
		values[c++] = BoolGetDatum(PgClusterSynchronousMode != PGC_SYNC_OFF &&
								   strstr(snap->sync_standby_names, quoted) != NULL);
		{
			const char *why = NodeWhyNotEligible(snap, node, leader_lsn, leader_wal_term);

			values[c++] = BoolGetDatum(why == NULL);
			values[c] = TextOrNull(why, &nulls[c]);
			c++;
		}
		Assert(c == NODE_INFO_COLUMNS);

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	pfree(snap);
	return (Datum) 0;
}

/*
 * pg_cluster_status_info returns the one row of pg_cluster.status.
 */
Datum
pg_cluster_status_info(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	SharedSnapshot *snap = palloc(sizeof(SharedSnapshot));
	PgClusterNodeView self_view;
	Datum		values[STATUS_INFO_COLUMNS];
	bool		nulls[STATUS_INFO_COLUMNS];
	int			reachable = 0;
	int			c = 0;
	char		sysid[32];

	InitMaterializedSRF(fcinfo, 0);
	PgClusterLocalView(&self_view);
	TakeSnapshot(snap);

	for (int i = 0; i < snap->node_count; i++)
		if (!snap->nodes[i].is_self && snap->nodes[i].reachable)
			reachable++;

	memset(nulls, 0, sizeof(nulls));
	values[c] = TextOrNull(PgClusterNodeName, &nulls[c]);
	c++;
	values[c++] = CStringGetTextDatum(PgClusterNodeKindSetting == PGC_NODE_WITNESS ?
									  "witness" : "data");
	values[c++] = CStringGetTextDatum(PgClusterRoleName(self_view.role));
	values[c++] = CStringGetTextDatum(PgClusterStateName(snap->state));
	values[c++] = Int64GetDatum((int64) snap->term);
	values[c] = TextOrNull(snap->leader, &nulls[c]);
	c++;
	/* a data primary that may not commit now */
	values[c++] = BoolGetDatum(PgClusterNodeKindSetting == PGC_NODE_DATA &&
							   PgClusterIsConfigured() && !RecoveryInProgress() &&
							   !PgClusterCommitsAllowed(GetCurrentTimestamp()));
	values[c] = TextOrNull(snap->voted_for, &nulls[c]);
	c++;
	nulls[c] = (self_view.role == PGC_ROLE_WITNESS);
	values[c++] = Int32GetDatum((int32) self_view.timeline);
	nulls[c] = (self_view.role == PGC_ROLE_WITNESS);
	values[c++] = LSNGetDatum(self_view.lsn);
	{
		bool		known;
		uint64		wal_term = PgClusterWalTerm(&known, NULL);

		nulls[c] = (self_view.role == PGC_ROLE_WITNESS || !known);
		values[c++] = Int64GetDatum((int64) wal_term);
	}
	snprintf(sysid, sizeof(sysid), UINT64_FORMAT, self_view.system_identifier);
	nulls[c] = (self_view.system_identifier == 0);
	values[c++] = CStringGetTextDatum(sysid);
	values[c++] = Int32GetDatum(snap->node_count);
	values[c++] = Int32GetDatum(reachable);
	/* this node plus the peers it reaches form a majority of all nodes */
	values[c++] = BoolGetDatum(snap->node_count > 0 &&
							   (reachable + 1) * 2 > snap->node_count);
	nulls[c] = (snap->worker_pid == 0);
	values[c++] = Int32GetDatum(snap->worker_pid);
	values[c] = TimestampOrNull(snap->worker_started_at, &nulls[c]);
	c++;
	values[c++] = Int32GetDatum(PgClusterHeartbeatIntervalMs);
	values[c++] = Int32GetDatum(PgClusterFailoverTimeoutMs);
	values[c++] = BoolGetDatum(snap->paused);
	{
		uint64		until = pg_atomic_read_u64(&PgClusterShmem->commit_allowed_until);

		/* the lease end; null when there is none or no end (bootstrap) */
		nulls[c] = (until == 0 || until == (uint64) PG_INT64_MAX);
		values[c++] = TimestampTzGetDatum((TimestampTz) until);
	}
	values[c] = TimestampOrNull(snap->last_leader_contact, &nulls[c]);
	c++;
	values[c++] = CStringGetTextDatum(PgClusterSyncModeName(PgClusterSynchronousMode));
	/* on the leader what it set; elsewhere the local setting */
	values[c] = TextOrNull(snap->is_leader ? snap->sync_standby_names :
						   (SyncRepStandbyNames ? SyncRepStandbyNames : ""), &nulls[c]);
	c++;
	nulls[c] = !(snap->is_leader || snap->state == PGC_STATE_BOOTSTRAPPING) ||
		PgClusterSynchronousMode == PGC_SYNC_OFF;
	values[c++] = CStringGetTextDatum(snap->sync_status);
	{
		char		record[PGC_NAME_LIST_LEN + 64];

		snprintf(record, sizeof(record), "version " UINT64_FORMAT "." UINT64_FORMAT ": %s",
				 snap->durable.sync.term, snap->durable.sync.version,
				 snap->durable.sync.restricted ?
				 (snap->durable.sync.eligible[0] ? snap->durable.sync.eligible : "no node") :
				 "every data node");
		values[c++] = CStringGetTextDatum(record);
	}
	values[c++] = Int64GetDatum((int64) snap->commits_not_replicated);
	Assert(c == STATUS_INFO_COLUMNS);

	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	pfree(snap);
	return (Datum) 0;
}

/*
 * pg_cluster_event_log returns the events still in the ring, oldest first.
 */
Datum
pg_cluster_event_log(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	PgClusterEvent *events = palloc(sizeof(PgClusterEvent) * PGC_EVENT_RING_SIZE);
	uint64		next_seq;

	InitMaterializedSRF(fcinfo, 0);

	LWLockAcquire(PgClusterShmem->lock, LW_SHARED);
	memcpy(events, PgClusterShmem->events, sizeof(PgClusterEvent) * PGC_EVENT_RING_SIZE);
	next_seq = PgClusterShmem->next_event_seq;
	LWLockRelease(PgClusterShmem->lock);

	for (uint64 seq = next_seq > PGC_EVENT_RING_SIZE ? next_seq - PGC_EVENT_RING_SIZE : 1;
		 seq < next_seq; seq++)
	{
		const PgClusterEvent *event = &events[seq % PGC_EVENT_RING_SIZE];
		Datum		values[EVENT_LOG_COLUMNS];
		bool		nulls[EVENT_LOG_COLUMNS];

		if (event->seq != seq)
			continue;
		memset(nulls, 0, sizeof(nulls));
		values[0] = Int64GetDatum((int64) event->seq);
		values[1] = TimestampTzGetDatum(event->at);
		values[2] = Int64GetDatum((int64) event->term);
		values[3] = TextOrNull(event->node, &nulls[3]);
		values[4] = CStringGetTextDatum(event->kind);
		values[5] = CStringGetTextDatum(event->detail);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	pfree(events);
	return (Datum) 0;
}

/* Append "s" to a URI, percent-encoding what is not unreserved. */
static void
AppendUriEncoded(StringInfo buf, const char *s)
{
	for (const unsigned char *p = (const unsigned char *) s; *p; p++)
	{
		if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~')
			appendStringInfoChar(buf, *p);
		else
			appendStringInfo(buf, "%%%02X", *p);
	}
}

/*
 * pg_cluster_connection_uri returns a multi-host libpq URI of the data
 * nodes, for clients that must follow the primary (read_only = false,
 * target_session_attrs=read-write) or prefer a standby (read_only = true).
 * Nodes known to be witnesses are left out.
 */
Datum
pg_cluster_connection_uri(PG_FUNCTION_ARGS)
{
	bool		read_only = PG_ARGISNULL(0) ? false : PG_GETARG_BOOL(0);
	SharedSnapshot *snap = palloc(sizeof(SharedSnapshot));
	StringInfoData uri;
	int			hosts = 0;
	char	   *dbname = get_database_name(MyDatabaseId);

	TakeSnapshot(snap);
	if (snap->node_count == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pg_cluster.peers is empty on this node"),
				 errhint("Set pg_cluster.peers to the list of all nodes of the cluster.")));

	initStringInfo(&uri);
	appendStringInfoString(&uri, "postgresql://");
	for (int i = 0; i < snap->node_count; i++)
	{
		const PgClusterNodeEntry *node = &snap->nodes[i];
		bool		is_witness = node->is_self ?
			PgClusterNodeKindSetting == PGC_NODE_WITNESS :
			(node->view_valid && node->view.role == PGC_ROLE_WITNESS);

		if (is_witness)
			continue;
		if (hosts++ > 0)
			appendStringInfoChar(&uri, ',');
		if (strchr(node->host, ':') != NULL)
			appendStringInfo(&uri, "[%s]:%d", node->host, node->port);
		else
		{
			AppendUriEncoded(&uri, node->host);
			appendStringInfo(&uri, ":%d", node->port);
		}
	}
	if (hosts == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("no data node is known in pg_cluster.peers"),
				 errdetail("Every configured node is a witness.")));

	appendStringInfoChar(&uri, '/');
	if (dbname != NULL)
		AppendUriEncoded(&uri, dbname);
	appendStringInfo(&uri, "?target_session_attrs=%s&connect_timeout=2",
					 read_only ? "prefer-standby" : "read-write");

	pfree(snap);
	PG_RETURN_TEXT_P(cstring_to_text(uri.data));
}
