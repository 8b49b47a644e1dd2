/*-------------------------------------------------------------------------
 *
 * rejoin.c
 *		Turning this node into a standby of the leader: the files a
 *		restart as standby needs, the clean shutdown that hands the rest to
 *		pg_cluster_ctl, and what pg_cluster_ctl reports back.
 *
 * A running postmaster cannot become a standby.  When this node must
 * rejoin (the old primary after a switchover or a failover, a standby
 * whose WAL went past the new timeline's fork), the worker
 *
 *	- points primary_conninfo at the leader (ALTER SYSTEM) and creates
 *	  standby.signal, so that any restart comes back as a standby;
 *	- writes $PGDATA/pg_cluster.rejoin, telling pg_cluster_ctl whom to
 *	  follow and whether to run pg_rewind first;
 *	- asks the postmaster for a fast shutdown, which is clean: pg_rewind
 *	  needs that, and a leader's shutdown checkpoint reaches its standbys.
 *
 * After a switchover this always happens.  After a failover it happens
 * only under pg_cluster_ctl (which sets PG_CLUSTER_SUPERVISOR): without a
 * supervisor to restart it, the node stays up, fenced and read-only.
 * pg_cluster_ctl leaves pg_cluster.rejoin.done behind; the worker turns it
 * into an event at its next start.  See docs/pg_cluster_ctl.md.
 *
 * Copyright (c) 2026, pg_cluster developers
 *
 * IDENTIFICATION
 *		src/rejoin.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access/xlog.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "postmaster/postmaster.h"
#include "storage/fd.h"

#include "pg_cluster.h"
#include "worker.h"

#define REJOIN_MARKER		"pg_cluster.rejoin"
#define REJOIN_DONE			"pg_cluster.rejoin.done"
#define STANDBY_SIGNAL		"standby.signal"

/* set once the shutdown was asked for: nothing more to do */
static bool shutdown_requested = false;

/* WriteFileDurably writes "contents" to "name" in the data directory. */
static void
WriteFileDurably(const char *name, const char *contents)
{
	char		tmp[MAXPGPATH];
	int			fd;
	size_t		len = strlen(contents);

	snprintf(tmp, sizeof(tmp), "%s.tmp", name);
	fd = OpenTransientFile(tmp, O_WRONLY | O_CREAT | O_TRUNC | PG_BINARY);
	if (fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create file \"%s\": %m", tmp)));
	if (write(fd, contents, len) != (ssize_t) len || pg_fsync(fd) != 0)
	{
		int			save_errno = errno ? errno : ENOSPC;

		CloseTransientFile(fd);
		errno = save_errno;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not write file \"%s\": %m", tmp)));
	}
	if (CloseTransientFile(fd) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not close file \"%s\": %m", tmp)));
	(void) durable_rename(tmp, name, ERROR);
}

/*
 * RejoinPrepare makes the next start of this server a standby of "leader"
 * and leaves the marker for pg_cluster_ctl.
 */
void
RejoinPrepare(const char *leader, bool rewind, bool shutting_down, const char *reason)
{
	char		host[PGC_HOST_LEN];
	int			port;
	char	   *conninfo;
	StringInfoData marker;
	uint64		term;

	if (!PgClusterNodeAddress(leader, host, &port))
		return;

	if (shutting_down)
	{
		LWLockAcquire(PgClusterShmem->lock, LW_EXCLUSIVE);
		PgClusterShmem->rejoin_requested = true;
		LWLockRelease(PgClusterShmem->lock);
	}

	/* pg_rewind replaces our WAL: what we knew of its term will not hold */
	if (rewind)
		PgClusterForgetWalTerm();
	conninfo = PgClusterReplicationConninfoFor(host, port);
	SetPrimaryConninfo(conninfo);
	pfree(conninfo);
	WriteFileDurably(STANDBY_SIGNAL, "");

	LWLockAcquire(PgClusterShmem->durable_lock, LW_SHARED);
	term = PgClusterShmem->durable.term;
	LWLockRelease(PgClusterShmem->durable_lock);
	initStringInfo(&marker);
	appendStringInfo(&marker, "leader=%s\n", leader);
	appendStringInfo(&marker, "conninfo=%s\n",
					 PgClusterPeerConninfoFor(host, port, "rewind", 0));
	appendStringInfo(&marker, "rewind=%s\n", rewind ? "yes" : "no");
	appendStringInfo(&marker, "reason=%s\n", reason);
	appendStringInfo(&marker, "term=" UINT64_FORMAT "\n", term);
	WriteFileDurably(REJOIN_MARKER, marker.data);
	pfree(marker.data);

	if (shutting_down)
		PgClusterRecordEvent("demoting", leader,
							 "%s: restarting as a standby of \"%s\"%s",
							 reason, leader, rewind ? " after pg_rewind" : ", no pg_rewind needed");
	else
		PgClusterRecordEvent("rejoin_prepared", leader,
							 "%s: pg_cluster_ctl will rewind this node from \"%s\" at its next start",
							 reason, leader);
}

/* RejoinShutdown asks the postmaster for a fast (clean) shutdown. */
void
RejoinShutdown(const char *why)
{
	if (shutdown_requested)
		return;
	shutdown_requested = true;
	PgClusterRecordEvent("shutdown", NULL,
						 "%s: asking the postmaster for a fast shutdown%s", why,
						 getenv("PG_CLUSTER_SUPERVISOR") ?
						 "; pg_cluster_ctl restarts it as a standby" :
						 "; no pg_cluster_ctl: start the server again to rejoin");
	if (kill(PostmasterPid, SIGINT) != 0)
		ereport(WARNING,
				(errmsg("pg_cluster: could not signal the postmaster to shut down: %m")));
}

/* RejoinRequested: this node is on its way to restart as a standby. */
bool
RejoinRequested(void)
{
	bool		requested;

	LWLockAcquire(PgClusterShmem->lock, LW_SHARED);
	requested = PgClusterShmem->rejoin_requested;
	LWLockRelease(PgClusterShmem->lock);
	return requested;
}

/*
 * RejoinTick: under pg_cluster_ctl, an old primary that learned of a
 * leader on a newer timeline, or a standby that went past the new
 * timeline's fork, shuts down to be rewound and restarted as a standby.
 * Without pg_cluster_ctl such a standby only leaves the marker: it may not
 * even start again (its minimum recovery point is not on the new
 * timeline), and a later start under pg_cluster_ctl rewinds it first.
 */
void
RejoinTick(bool standby_needs_rewind)
{
	char		leader[PGC_NAME_LEN];
	TimeLineID	leader_tli;
	bool		is_leader;
	bool		leader_reachable = false;
	TimeLineID	own_tli;
	char		reason[128];

	static char prepared_for[PGC_NAME_LEN] = "";
	bool		supervised = getenv("PG_CLUSTER_SUPERVISOR") != NULL;

	if (shutdown_requested || PgClusterNodeKindSetting != PGC_NODE_DATA ||
		SwitchoverInProgress() || (!supervised && !standby_needs_rewind))
		return;

	LWLockAcquire(PgClusterShmem->lock, LW_SHARED);
	strlcpy(leader, PgClusterShmem->leader, PGC_NAME_LEN);
	leader_tli = PgClusterShmem->leader_timeline;
	is_leader = PgClusterShmem->is_leader;
	if (leader[0] != '\0')
	{
		int			i = PgClusterFindNode(leader);

		leader_reachable = i >= 0 && !PgClusterShmem->nodes[i].is_self &&
			PgClusterShmem->nodes[i].reachable;
	}
	LWLockRelease(PgClusterShmem->lock);
	if (is_leader || !leader_reachable)
		return;

	(void) PgClusterLocalLsn(&own_tli);
	if (RecoveryInProgress())
	{
		if (!standby_needs_rewind)
			return;
		snprintf(reason, sizeof(reason),
				 "this standby's WAL goes past the fork of timeline %u", leader_tli);
	}
	else
	{
		if (leader_tli <= own_tli)
			return;
		snprintf(reason, sizeof(reason),
				 "old primary of timeline %u; the leader is on timeline %u",
				 own_tli, leader_tli);
	}
	if (!supervised)
	{
		if (strcmp(prepared_for, leader) != 0)
		{
			RejoinPrepare(leader, true, false, reason);
			strlcpy(prepared_for, leader, PGC_NAME_LEN);
		}
		return;
	}
	RejoinPrepare(leader, true, true, reason);
	RejoinShutdown("rejoin");
}

/*
 * RejoinWorkerStart records what pg_cluster_ctl did before this start,
 * removes a marker no supervisor consumed, and warns when pg_rewind could
 * not work on this node.
 */
void
RejoinWorkerStart(void)
{
	FILE	   *f;
	struct stat st;

	if (PgClusterNodeKindSetting != PGC_NODE_DATA)
		return;

	if (!wal_log_hints && !DataChecksumsEnabled())
	{
		ereport(WARNING,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pg_cluster: neither wal_log_hints nor data checksums are on: an old primary cannot be rewound"),
				 errdetail("After a failover, this node could rejoin the cluster only by a new base backup."),
				 errhint("Set wal_log_hints = on (needs a restart), or enable data checksums with pg_checksums.")));
		PgClusterRecordEvent("rewind_impossible", NULL,
							 "wal_log_hints is off and data checksums are off: pg_rewind cannot run on this node");
	}

	if (stat(REJOIN_MARKER, &st) == 0)
	{
		(void) unlink(REJOIN_MARKER);
		PgClusterRecordEvent("rejoin_marker_removed", NULL,
							 "removed a pg_cluster.rejoin marker that no pg_cluster_ctl consumed");
	}

	f = AllocateFile(REJOIN_DONE, "r");
	if (f != NULL)
	{
		char		line[1024];
		StringInfoData summary;

		initStringInfo(&summary);
		while (fgets(line, sizeof(line), f) != NULL)
		{
			line[strcspn(line, "\n")] = '\0';
			if (strncmp(line, "leader=", 7) == 0 || strncmp(line, "rewind=", 7) == 0 ||
				strncmp(line, "rewind_ms=", 10) == 0 || strncmp(line, "attempts=", 9) == 0)
				appendStringInfo(&summary, "%s%s", summary.len ? ", " : "", line);
		}
		FreeFile(f);
		(void) unlink(REJOIN_DONE);
		PgClusterRecordEvent("rejoined", NULL,
							 "restarted as a standby by pg_cluster_ctl: %s", summary.data);
	}
}
