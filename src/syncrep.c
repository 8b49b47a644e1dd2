/*-------------------------------------------------------------------------
 *
 * syncrep.c
 *		Synchronous mode (docs/protocol.md §9): the leader manages
 *		synchronous_standby_names and the synchronous record, so that no
 *		acknowledged commit is lost by a failover or a switchover.
 *
 * The synchronous record (durable on every node, carried by heartbeats)
 * says which data nodes may be promoted: all of them ("not restricted":
 * every acknowledged commit is on a majority of the voters, so the winner
 * of any election, being at least as far as each of its voters (V4), has
 * it), or only the named ones (each of them has every acknowledged
 * commit).  Voters refuse a candidate that is not eligible, or that knows
 * an older record than they do (V9).
 *
 * The leader moves between configurations in an order that keeps the
 * record true at every instant:
 *
 *	- it makes a node ineligible (a new record, durable on a majority)
 *	  before it stops waiting for that node's acknowledgement;
 *	- it makes a node eligible only after it required that node's
 *	  acknowledgement (synchronous_standby_names in force in every WAL
 *	  sender) and the node flushed everything written before.
 *
 * In "quorum" mode a commit waits for ANY k of the data standbys, k = a
 * majority of the voters minus the leader; when fewer than k are healthy,
 * the leader records the healthy ones as the only eligible nodes and waits
 * for all of them (none left: commits are local, and only the leader is
 * eligible).  In "strict" mode it never lowers k: commits wait.  A new
 * leader acknowledges nothing until its configuration is in force and its
 * WAL is where the record says (fence.c waits for PgClusterSyncReady()).
 *
 * Copyright (c) 2026, pg_cluster developers
 *
 * IDENTIFICATION
 *		src/syncrep.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlog.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "replication/syncrep.h"
#include "replication/walsender.h"
#include "replication/walsender_private.h"
#include "storage/spin.h"
#include "utils/backend_status.h"
#include "utils/timestamp.h"

#include "pg_cluster.h"
#include "worker.h"

/* A WAL sender streaming to one of the configured nodes. */
typedef struct SenderInfo
{
	char		name[PGC_NAME_LEN];
	bool		streaming;
	XLogRecPtr	flush;
	int			priority;
} SenderInfo;

/* The configuration the leader aims at. */
typedef struct SyncTarget
{
	bool		restricted;
	char		eligible[PGC_NAME_LIST_LEN];	/* when restricted */
	char		names[PGC_NAME_LIST_LEN + 32];	/* synchronous_standby_names */
	int			num_required;	/* standbys each commit waits for */
	char		required[PGC_NAME_LIST_LEN];	/* among these */
} SyncTarget;

/* what the manager set and saw, kept across ticks */
static char names_set[PGC_NAME_LIST_LEN + 32] = "";
static bool names_known = false;
static TimestampTz names_set_at = 0;
static XLogRecPtr names_in_force_lsn = InvalidXLogRecPtr;
static int	last_mode = -1;
static uint64 managed_term = 0;

/* How long the WAL senders get to re-read the configuration. */
#define CONFIG_SETTLE_MS 100

const char *
PgClusterSyncModeName(int mode)
{
	switch (mode)
	{
		case PGC_SYNC_QUORUM:
			return "quorum";
		case PGC_SYNC_STRICT:
			return "strict";
		default:
			return "off";
	}
}

/*
 * PgClusterWhyNotEligible returns NULL if the synchronous record lets
 * "name" be promoted, or why not (V9).
 */
const char *
PgClusterWhyNotEligible(const char *name, const PgClusterDurableState *durable)
{
	if (!durable->sync.restricted || PgClusterNameInList(durable->sync.eligible, name))
		return NULL;
	return "it may lack acknowledged commits: the synchronous record does not list it";
}

/*
 * PgClusterSyncStandbysDefined reads the shared "synchronous standbys are
 * defined" flag (a bit of a status byte since 15.14, a bool before).
 * The caller holds SyncRepLock.
 */
bool
PgClusterSyncStandbysDefined(void)
{
#ifdef SYNC_STANDBY_DEFINED
	return (WalSndCtl->sync_standbys_status & SYNC_STANDBY_DEFINED) != 0;
#else
	return WalSndCtl->sync_standbys_defined;
#endif
}

/*
 * HoldsBootstrapRecord: is the record "only this node may be promoted"?
 * What a bootstrap primary in synchronous mode holds before it
 * acknowledges anything (protocol.md §5, §9).
 */
static bool
HoldsBootstrapRecord(const PgClusterDurableState *durable)
{
	return durable->sync.restricted &&
		strcmp(durable->sync.eligible, PgClusterNodeName) == 0;
}

/* PgClusterSyncReady: may the leader acknowledge commits now (fence.c)? */
bool
PgClusterSyncReady(void)
{
	uint64		term;
	bool		ready;

	if (PgClusterSynchronousMode == PGC_SYNC_OFF)
		return true;

	/*
	 * Read without durable_lock: this runs at every commit.  A term that
	 * changes meanwhile also withdraws the lease, which the caller checks.
	 */
	term = *((volatile uint64 *) &PgClusterShmem->durable.term);
	if (term != 0)
		return pg_atomic_read_u64(&PgClusterShmem->sync_ready_term) == term;

	/* bootstrapping: once the record names this node alone */
	LWLockAcquire(PgClusterShmem->durable_lock, LW_SHARED);
	ready = HoldsBootstrapRecord(&PgClusterShmem->durable);
	LWLockRelease(PgClusterShmem->durable_lock);
	return ready;
}

/*
 * CollectSenders lists the WAL senders of this server with the application
 * name of their standby (pg_cluster names it after the node).
 */
static int
CollectSenders(SenderInfo *out, int max)
{
	int			n = 0;
	int			nbackends;

	pgstat_clear_backend_activity_snapshot();
	nbackends = pgstat_fetch_stat_numbackends();
	for (int i = 0; i < max_wal_senders && n < max; i++)
	{
		WalSnd	   *sender = &WalSndCtl->walsnds[i];
		pid_t		pid;
		WalSndState state;
		XLogRecPtr	flush;
		int			priority;

		SpinLockAcquire(&sender->mutex);
		pid = sender->pid;
		state = sender->state;
		flush = sender->flush;
		priority = sender->sync_standby_priority;
		SpinLockRelease(&sender->mutex);
		if (pid == 0)
			continue;

		for (int b = 1; b <= nbackends; b++)
		{
			LocalPgBackendStatus *local = pgstat_fetch_stat_local_beentry(b);

			if (local != NULL && local->backendStatus.st_procpid == pid)
			{
				strlcpy(out[n].name, local->backendStatus.st_appname, PGC_NAME_LEN);
				out[n].streaming = (state == WALSNDSTATE_STREAMING);
				out[n].flush = flush;
				out[n].priority = priority;
				n++;
				break;
			}
		}
	}
	pgstat_clear_backend_activity_snapshot();
	return n;
}

static const SenderInfo *
FindSender(const SenderInfo *senders, int n, const char *name)
{
	for (int i = 0; i < n; i++)
	{
		if (strcmp(senders[i].name, name) == 0)
			return &senders[i];
	}
	return NULL;
}

static void
AppendName(char *list, size_t len, const char *name)
{
	if (list[0] != '\0')
		strlcat(list, ",", len);
	strlcat(list, name, len);
}

/* QuorumNames builds 'ANY k ("a", "b")' (or '' for k = 0). */
static void
QuorumNames(char *out, size_t len, int k, const char *list)
{
	StringInfoData buf;

	if (k <= 0 || list[0] == '\0')
	{
		out[0] = '\0';
		return;
	}
	initStringInfo(&buf);
	appendStringInfo(&buf, "ANY %d (", k);
	for (const char *p = list; *p;)
	{
		const char *end = strchr(p, ',');
		int			n = end ? (int) (end - p) : (int) strlen(p);

		appendStringInfo(&buf, "%s\"%.*s\"", p == list ? "" : ", ", n, p);
		if (end == NULL)
			break;
		p = end + 1;
	}
	appendStringInfoChar(&buf, ')');
	strlcpy(out, buf.data, len);
	pfree(buf.data);
}

static int
CountNames(const char *list)
{
	int			n = list[0] ? 1 : 0;

	for (const char *p = list; *p; p++)
		n += (*p == ',');
	return n;
}

/*
 * ComputeTarget decides the configuration for the data standbys and their
 * WAL senders as seen now.  *healthy receives the streaming ones.
 */
static void
ComputeTarget(const SenderInfo *senders, int nsenders, SyncTarget *t,
			  char *all, char *healthy)
{
	int			need = PgClusterMajoritySize() - 1;
	int			nhealthy;

	all[0] = healthy[0] = '\0';
	LWLockAcquire(PgClusterShmem->lock, LW_SHARED);
	for (int i = 0; i < PgClusterShmem->node_count; i++)
	{
		const PgClusterNodeEntry *e = &PgClusterShmem->nodes[i];
		const SenderInfo *s;

		/* only nodes known to be data nodes (a witness has no WAL sender) */
		if (e->is_self || !e->view_valid || e->view.role == PGC_ROLE_WITNESS ||
			e->view.role == PGC_ROLE_UNKNOWN)
			continue;
		AppendName(all, PGC_NAME_LIST_LEN, e->name);
		s = FindSender(senders, nsenders, e->name);
		if (s != NULL && s->streaming)
			AppendName(healthy, PGC_NAME_LIST_LEN, e->name);
	}
	LWLockRelease(PgClusterShmem->lock);
	nhealthy = CountNames(healthy);

	memset(t, 0, sizeof(*t));
	if (PgClusterSynchronousMode == PGC_SYNC_STRICT || nhealthy >= need)
	{
		t->restricted = false;
		t->num_required = need;
		strlcpy(t->required, all, sizeof(t->required));
	}
	else
	{
		t->restricted = true;
		strlcpy(t->eligible, PgClusterNodeName, sizeof(t->eligible));
		if (healthy[0])
			AppendName(t->eligible, sizeof(t->eligible), healthy);
		t->num_required = nhealthy;
		strlcpy(t->required, healthy, sizeof(t->required));
	}
	QuorumNames(t->names, sizeof(t->names), t->num_required, t->required);
}

/* Is every name of "sub" in "super"?  (Restricted lists only.) */
static bool
ListContains(const char *super, const char *sub)
{
	char		copy[PGC_NAME_LIST_LEN];
	char	   *save;

	strlcpy(copy, sub, sizeof(copy));
	for (char *name = strtok_r(copy, ",", &save); name; name = strtok_r(NULL, ",", &save))
	{
		if (!PgClusterNameInList(super, name))
			return false;
	}
	return true;
}

/* The record made of current ∩ target (what stays eligible in both). */
static void
Intersect(const PgClusterDurableState *cur, const SyncTarget *t, bool *restricted, char *out)
{
	char		copy[PGC_NAME_LIST_LEN];
	char	   *save;

	out[0] = '\0';
	if (!cur->sync.restricted)
	{
		*restricted = t->restricted;
		strlcpy(out, t->eligible, PGC_NAME_LIST_LEN);
		return;
	}
	*restricted = true;
	strlcpy(copy, cur->sync.eligible, sizeof(copy));
	for (char *name = strtok_r(copy, ",", &save); name; name = strtok_r(NULL, ",", &save))
	{
		if (!t->restricted || PgClusterNameInList(t->eligible, name))
			AppendName(out, PGC_NAME_LIST_LEN, name);
	}
}

/*
 * Publish a new version of the record (durable here; heartbeats spread it),
 * numbered (our term, version + 1): it supersedes every record of an
 * earlier term, including one of the same version that another leader
 * made (protocol.md §9).
 */
static void
PublishRecord(const PgClusterDurableState *cur, bool restricted, const char *eligible,
			  const char *why)
{
	PgClusterSyncRecord record;

	memset(&record, 0, sizeof(record));
	record.term = cur->term;
	record.version = cur->sync.version + 1;
	record.restricted = restricted;
	strlcpy(record.eligible, eligible, sizeof(record.eligible));
	if (!PgClusterAdoptSyncRecord(&record, PgClusterNodeName))
		return;					/* a newer record arrived meanwhile */
	PgClusterRecordEvent("sync_change", NULL, "%s", why);
	WorkerRequestImmediateTick();
}

/*
 * Has a majority of the voters (us included) made our record durable?  A
 * peer counts when its acknowledgement of our term reports our record or
 * a newer one in (term, version) order.
 */
static bool
RecordOnMajority(const PgClusterDurableState *cur)
{
	int			count = 1;

	LWLockAcquire(PgClusterShmem->lock, LW_SHARED);
	for (int i = 0; i < PgClusterShmem->node_count; i++)
	{
		const PgClusterNodeEntry *e = &PgClusterShmem->nodes[i];

		if (!e->is_self && e->acked_term == cur->term &&
			PgClusterCompareSyncOrder(e->acked_sync_term, e->acked_sync_version,
									  cur->sync.term, cur->sync.version) >= 0)
			count++;
	}
	LWLockRelease(PgClusterShmem->lock);
	return count >= PgClusterMajoritySize();
}

/* SetNames writes synchronous_standby_names and reloads. */
static void
SetNames(const char *names, TimestampTz now)
{
	AlterSystemSet("synchronous_standby_names", names);
	strlcpy(names_set, names, sizeof(names_set));
	names_known = true;
	names_set_at = now;
	names_in_force_lsn = InvalidXLogRecPtr;
	LWLockAcquire(PgClusterShmem->lock, LW_EXCLUSIVE);
	strlcpy(PgClusterShmem->sync_standby_names, names, sizeof(PgClusterShmem->sync_standby_names));
	LWLockRelease(PgClusterShmem->lock);
	PgClusterRecordEvent("sync_standby_names", NULL, "synchronous_standby_names = '%s'", names);
}

/*
 * NamesInForce: this process re-read the file, the shared "defined" flag
 * follows, and every WAL sender shows the priority the names give it.
 */
static bool
NamesInForce(const SyncTarget *t, const SenderInfo *senders, int n, TimestampTz now)
{
	bool		defined;

	if (strcmp(SyncRepStandbyNames ? SyncRepStandbyNames : "", names_set) != 0)
		return false;
	if (now - names_set_at < (int64) CONFIG_SETTLE_MS * 1000)
		return false;
	LWLockAcquire(SyncRepLock, LW_SHARED);
	defined = PgClusterSyncStandbysDefined();
	LWLockRelease(SyncRepLock);
	if (defined != (names_set[0] != '\0'))
		return false;
	for (int i = 0; i < n; i++)
	{
		bool		listed = t->num_required > 0 && PgClusterNameInList(t->required, senders[i].name);

		if (senders[i].streaming && (senders[i].priority > 0) != listed)
			return false;
	}
	return true;
}

/* Have "k" of the nodes in "list" flushed up to "lsn"? */
static bool
FlushedBy(const SenderInfo *senders, int n, const char *list, int k, XLogRecPtr lsn)
{
	int			count = 0;

	for (int i = 0; i < n; i++)
	{
		if (senders[i].streaming && senders[i].flush >= lsn &&
			PgClusterNameInList(list, senders[i].name))
			count++;
	}
	return count >= k;
}

static void
SetStatus(const char *status)
{
	LWLockAcquire(PgClusterShmem->lock, LW_EXCLUSIVE);
	strlcpy(PgClusterShmem->sync_status, status, PGC_ERROR_LEN);
	LWLockRelease(PgClusterShmem->lock);
}

static void
SetReady(uint64 term)
{
	if (pg_atomic_read_u64(&PgClusterShmem->sync_ready_term) == term)
		return;
	pg_atomic_write_u64(&PgClusterShmem->sync_ready_term, term);
	ConditionVariableBroadcast(&PgClusterShmem->hold_cv);
	PgClusterRecordEvent("sync_ready", NULL,
						 "synchronous mode %s in force for term " UINT64_FORMAT ": '%s'",
						 PgClusterSyncModeName(PgClusterSynchronousMode), term, names_set);
}

/*
 * BootstrapTick: before the first election (term 0) the primary accepts
 * writes without a lease and no standby is waited for.  In synchronous
 * mode it first records durably that it alone may be promoted, and its
 * commits wait for that (PgClusterSyncReady).  Its vote requests carry the
 * record, so the majority that elects it in term 1 stores it: no other
 * node can win until the first leader, ready, publishes a record that
 * holds for the bootstrap commits too (protocol.md §5, §9).
 */
static void
BootstrapTick(const PgClusterDurableState *cur, int mode)
{
	names_known = false;
	if (mode == PGC_SYNC_OFF || RecoveryInProgress() ||
		PgClusterNodeKindSetting != PGC_NODE_DATA || HoldsBootstrapRecord(cur))
		return;
	PublishRecord(cur, true, PgClusterNodeName,
				  "bootstrapping in synchronous mode: only this node may be promoted until the first leader's synchronous standbys hold its commits");
	ConditionVariableBroadcast(&PgClusterShmem->hold_cv);
	SetStatus("bootstrapping: commits are local; only this node may be promoted");
}

/*
 * SyncRepTick runs the leader's synchronous-mode manager once per loop.
 */
void
SyncRepTick(TimestampTz now)
{
	SenderInfo	senders[PGC_MAX_NODES];
	int			nsenders;
	SyncTarget	t;
	PgClusterDurableState cur;
	char		all[PGC_NAME_LIST_LEN];
	char		healthy[PGC_NAME_LIST_LEN];
	bool		is_leader;
	int			mode = PgClusterSynchronousMode;

	LWLockAcquire(PgClusterShmem->lock, LW_SHARED);
	is_leader = PgClusterShmem->is_leader;
	LWLockRelease(PgClusterShmem->lock);
	PgClusterDurableSnapshot(&cur);

	if (cur.term == 0)
	{
		BootstrapTick(&cur, mode);
		return;
	}
	if (!is_leader || RecoveryInProgress() || PgClusterNodeKindSetting != PGC_NODE_DATA ||
		!PgClusterCommitsAllowed(now))
	{
		names_known = false;	/* a new term starts from what the file says */
		return;
	}
	if (cur.term != managed_term)
	{
		managed_term = cur.term;
		names_known = false;
	}
	if (!names_known)
	{
		strlcpy(names_set, SyncRepStandbyNames ? SyncRepStandbyNames : "", sizeof(names_set));
		names_known = true;
		names_set_at = 0;
		names_in_force_lsn = InvalidXLogRecPtr;
	}

	if (mode == PGC_SYNC_OFF)
	{
		/*
		 * Asynchronous: every node eligible (also after a bootstrap in
		 * synchronous mode, whose record named the bootstrap primary
		 * alone), no waits of ours.
		 */
		if (cur.sync.restricted)
			PublishRecord(&cur, false, "", "synchronous_mode is off: every data node may be promoted");
		if (last_mode > PGC_SYNC_OFF)
			SetNames("", now);
		last_mode = mode;
		SetStatus("synchronous_mode is off");
		return;
	}
	if (last_mode != mode)
	{
		pg_atomic_write_u64(&PgClusterShmem->sync_ready_term, 0);
		last_mode = mode;
	}

	nsenders = CollectSenders(senders, lengthof(senders));
	ComputeTarget(senders, nsenders, &t, all, healthy);

	/* a record of ours on its way to a majority: wait for it */
	if (!RecordOnMajority(&cur))
	{
		SetStatus("waiting for a majority to store the synchronous record");
		return;
	}

	/* 1. nodes that lose eligibility lose it first */
	if (t.restricted &&
		(!cur.sync.restricted || !ListContains(t.eligible, cur.sync.eligible)))
	{
		bool		restricted;
		char		eligible[PGC_NAME_LIST_LEN];
		char		why[PGC_EVENT_DETAIL_LEN];

		Intersect(&cur, &t, &restricted, eligible);
		if (restricted != cur.sync.restricted || strcmp(eligible, cur.sync.eligible) != 0)
		{
			snprintf(why, sizeof(why),
					 "only %s may be promoted from now on: fewer standbys than a majority stream (healthy: %s)",
					 eligible, healthy[0] ? healthy : "none");
			PublishRecord(&cur, restricted, eligible, why);
			SetStatus("waiting for a majority to store the synchronous record");
			return;
		}
	}

	/*
	 * 2. the names: while nodes are to become eligible, every healthy
	 * standby must acknowledge (stricter than before and after).
	 */
	{
		bool		growing = cur.sync.restricted &&
			(!t.restricted || !ListContains(cur.sync.eligible, t.eligible));
		char		names[PGC_NAME_LIST_LEN + 32];
		const char *required = growing ? healthy : t.required;
		int			k = growing ? CountNames(healthy) : t.num_required;

		/*
		 * strict never restricts, but it widens a restricted record (the
		 * bootstrap's, or quorum's before a switch) only once a majority
		 * holds every commit: until enough standbys stream, it waits.
		 */
		if (growing && !t.restricted && CountNames(healthy) < t.num_required)
		{
			char		status[PGC_ERROR_LEN];

			snprintf(status, sizeof(status),
					 "strict: waiting for %d standbys to stream (streaming: %s); only %s may be promoted",
					 t.num_required, healthy[0] ? healthy : "none", cur.sync.eligible);
			SetStatus(status);
			return;
		}
		if (growing)
			QuorumNames(names, sizeof(names), k, healthy);
		else
			strlcpy(names, t.names, sizeof(names));
		if (strcmp(names, names_set) != 0)
		{
			SetNames(names, now);
			SetStatus("waiting for the WAL senders to take the new synchronous_standby_names");
			return;
		}
		{
			SyncTarget	in_force = t;

			strlcpy(in_force.required, required, sizeof(in_force.required));
			in_force.num_required = k;
			if (!NamesInForce(&in_force, senders, nsenders, now))
			{
				SetStatus("waiting for the WAL senders to take the new synchronous_standby_names");
				return;
			}
		}
		if (names_in_force_lsn == InvalidXLogRecPtr)
		{
			names_in_force_lsn = GetXLogInsertRecPtr();
			XLogFlush(names_in_force_lsn);
		}
		if (!FlushedBy(senders, nsenders, required, k, names_in_force_lsn))
		{
			char		status[PGC_ERROR_LEN];

			snprintf(status, sizeof(status),
					 "waiting for %d of %s to flush up to %X/%X",
					 k, required[0] ? required : "(none)", LSN_FORMAT_ARGS(names_in_force_lsn));
			SetStatus(status);
			return;
		}

		/* 3. caught up under the stricter names: they become eligible */
		if (growing)
		{
			char		why[PGC_EVENT_DETAIL_LEN];

			snprintf(why, sizeof(why), "%s: they hold every acknowledged commit",
					 t.restricted ? t.eligible : "every data node may be promoted again");
			PublishRecord(&cur, t.restricted, t.eligible, why);
			SetStatus("waiting for a majority to store the synchronous record");
			return;
		}
	}

	SetStatus(t.restricted ? "degraded: fewer standbys than a majority stream; only the eligible nodes may be promoted" :
			  "commits wait for a majority of the voters");
	SetReady(cur.term);
}
