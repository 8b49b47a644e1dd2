/*-------------------------------------------------------------------------
 *
 * durable.c
 *		Changes to the durable protocol state (term, vote, won term, pause,
 *		synchronous record, handed-over term, the leader progress a witness
 *		heard), made by the worker and by the backends that answer peers.
 *
 * Every change follows the same order, under durable_lock held
 * exclusively: compute the next state, write it to disk (state_file.c),
 * then publish it in shared memory.  Nothing that depends on a new term or
 * vote is sent before it is on disk.  Whoever adopts a higher term also
 * withdraws this node's permission to commit, in the same critical
 * section, so a stale lease can never outlive the term it belonged to.
 *
 * Lock order: durable_lock before lock.
 *
 * Copyright (c) 2026, pg_cluster developers
 *
 * IDENTIFICATION
 *		src/durable.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlog.h"

#include "pg_cluster.h"

/*
 * PgClusterLoadDurableLocked (re)reads the state file into shared memory;
 * a missing file starts a new one at term 0.  The caller holds
 * durable_lock exclusively; errbuf receives the reason of a CORRUPT result.
 */
PgClusterStateFileResult
PgClusterLoadDurableLocked(char *errbuf, size_t errlen)
{
	PgClusterDurableState loaded;
	PgClusterStateFileResult result;

	Assert(LWLockHeldByMeInMode(PgClusterShmem->durable_lock, LW_EXCLUSIVE));

	result = PgClusterReadStateFile(&loaded, errbuf, errlen);
	switch (result)
	{
		case PGC_STATE_FILE_OK:
			PgClusterShmem->durable = loaded;
			PgClusterShmem->durable_loaded = true;
			PgClusterShmem->durable_corrupt = false;
			LWLockAcquire(PgClusterShmem->lock, LW_EXCLUSIVE);
			PgClusterRaiseLeaderProgressLocked(loaded.heard_leader_wal_term, 0,
											   loaded.heard_leader_lsn);
			LWLockRelease(PgClusterShmem->lock);
			break;
		case PGC_STATE_FILE_MISSING:
			memset(&loaded, 0, sizeof(loaded));

			/*
			 * A standby without a state file (removed, or a clone made
			 * without it) cannot tell which term wrote its WAL: the markers
			 * may lie before its oldest WAL.  The leader tells it
			 * (walterm.c).  A new primary has no marker to miss.
			 */
			loaded.wal_term_unknown = PgClusterNodeKindSetting == PGC_NODE_DATA &&
				RecoveryInProgress();
			PgClusterPersistLocked(&loaded);
			PgClusterShmem->durable_corrupt = false;
			PgClusterRecordEvent("state_file_created", NULL,
								 "created pg_cluster.state at term 0");
			break;
		case PGC_STATE_FILE_CORRUPT:
			PgClusterShmem->durable_loaded = false;
			PgClusterShmem->durable_corrupt = true;
			break;
	}
	return result;
}

/*
 * PgClusterEnsureDurableLoaded makes sure the shared copy of the durable
 * state is loaded, loading it if no process did yet.  Returns false while
 * the file is damaged.
 */
bool
PgClusterEnsureDurableLoaded(void)
{
	char		errbuf[512];
	bool		usable;

	LWLockAcquire(PgClusterShmem->durable_lock, LW_SHARED);
	usable = PgClusterShmem->durable_loaded;
	LWLockRelease(PgClusterShmem->durable_lock);
	if (usable)
		return true;

	LWLockAcquire(PgClusterShmem->durable_lock, LW_EXCLUSIVE);
	if (!PgClusterShmem->durable_loaded && !PgClusterShmem->durable_corrupt)
		(void) PgClusterLoadDurableLocked(errbuf, sizeof(errbuf));
	usable = PgClusterShmem->durable_loaded;
	LWLockRelease(PgClusterShmem->durable_lock);
	return usable;
}

/*
 * PgClusterPersistLocked writes "next" to disk and publishes it.  The
 * caller holds durable_lock exclusively.
 */
void
PgClusterPersistLocked(const PgClusterDurableState *next)
{
	Assert(LWLockHeldByMeInMode(PgClusterShmem->durable_lock, LW_EXCLUSIVE));

	PgClusterWriteStateFile(next);
	PgClusterShmem->durable = *next;
	PgClusterShmem->durable_loaded = true;
}

/* PgClusterDurableSnapshot copies the durable state. */
void
PgClusterDurableSnapshot(PgClusterDurableState *copy)
{
	LWLockAcquire(PgClusterShmem->durable_lock, LW_SHARED);
	*copy = PgClusterShmem->durable;
	LWLockRelease(PgClusterShmem->durable_lock);
}

/*
 * PgClusterAdoptTerm adopts a term higher than ours, seen from "from".
 * Terms only grow; a new term starts without a vote and without a leader,
 * and this node may not commit in it until it leads it.  Returns whether
 * the term changed.
 */
bool
PgClusterAdoptTerm(uint64 term, const char *from)
{
	PgClusterDurableState next;
	bool		was_leader;

	LWLockAcquire(PgClusterShmem->durable_lock, LW_EXCLUSIVE);
	if (!PgClusterShmem->durable_loaded || term <= PgClusterShmem->durable.term)
	{
		LWLockRelease(PgClusterShmem->durable_lock);
		return false;
	}
	next = PgClusterShmem->durable;
	next.term = term;
	next.voted_for[0] = '\0';

	/* withdraw the permission to commit before anything else can happen */
	pg_atomic_write_u64(&PgClusterShmem->commit_allowed_until, 0);
	PgClusterPersistLocked(&next);

	LWLockAcquire(PgClusterShmem->lock, LW_EXCLUSIVE);
	was_leader = PgClusterShmem->is_leader;
	PgClusterShmem->is_leader = false;
	PgClusterShmem->leader[0] = '\0';
	LWLockRelease(PgClusterShmem->lock);
	LWLockRelease(PgClusterShmem->durable_lock);

	PgClusterRecordEvent("term_changed", NULL,
						 "adopted term " UINT64_FORMAT " from node \"%s\"%s",
						 term, from, was_leader ? "; stepped down as leader" : "");
	return true;
}

/*
 * PgClusterAdoptPause adopts a newer maintenance-mode setting.  Versions
 * order the settings; at an equal version "paused" wins, the safe side.
 */
bool
PgClusterAdoptPause(uint64 version, bool paused, const char *from)
{
	PgClusterDurableState next;
	const PgClusterDurableState *cur;

	LWLockAcquire(PgClusterShmem->durable_lock, LW_EXCLUSIVE);
	cur = &PgClusterShmem->durable;
	if (!PgClusterShmem->durable_loaded ||
		version < cur->pause_version ||
		(version == cur->pause_version && (cur->paused || !paused)))
	{
		LWLockRelease(PgClusterShmem->durable_lock);
		return false;
	}
	next = *cur;
	next.pause_version = version;
	next.paused = paused;
	PgClusterPersistLocked(&next);
	LWLockRelease(PgClusterShmem->durable_lock);

	PgClusterRecordEvent(paused ? "paused" : "resumed", NULL,
						 "automatic failover %s (version " UINT64_FORMAT ", from node \"%s\")",
						 paused ? "paused" : "resumed", version, from);
	return true;
}

/*
 * PgClusterAdoptSyncRecord adopts a newer synchronous record (higher in
 * (term, version) order), durably.  Returns whether it changed.
 */
bool
PgClusterAdoptSyncRecord(const PgClusterSyncRecord *record, const char *from)
{
	PgClusterDurableState next;

	LWLockAcquire(PgClusterShmem->durable_lock, LW_EXCLUSIVE);
	if (!PgClusterShmem->durable_loaded ||
		PgClusterCompareSyncOrder(record->term, record->version,
								  PgClusterShmem->durable.sync.term,
								  PgClusterShmem->durable.sync.version) <= 0)
	{
		LWLockRelease(PgClusterShmem->durable_lock);
		return false;
	}
	next = PgClusterShmem->durable;
	next.sync.term = record->term;
	next.sync.version = record->version;
	next.sync.restricted = record->restricted;
	strlcpy(next.sync.eligible, record->restricted ? record->eligible : "", PGC_NAME_LIST_LEN);
	PgClusterPersistLocked(&next);
	LWLockRelease(PgClusterShmem->durable_lock);

	PgClusterRecordEvent("sync_record", from,
						 "synchronous record " UINT64_FORMAT "." UINT64_FORMAT " from \"%s\": %s%s",
						 record->term, record->version, from,
						 record->restricted ? "only these data nodes may be promoted: " :
						 "every data node may be promoted (commits are on a majority)",
						 record->restricted ? (record->eligible[0] ? record->eligible : "none") : "");
	return true;
}

/*
 * PgClusterSetHandedOverTerm records durably that this leader hands "term"
 * over (0: it does not, the target refused).  The record goes to disk
 * before the handover request is sent, so a restart cannot resume the term
 * (ResumeLeadership), and a refusal clears it before the commits held for
 * the switchover are released.
 */
void
PgClusterSetHandedOverTerm(uint64 term)
{
	PgClusterDurableState next;

	LWLockAcquire(PgClusterShmem->durable_lock, LW_EXCLUSIVE);
	if (PgClusterShmem->durable_loaded && PgClusterShmem->durable.handed_over_term != term)
	{
		next = PgClusterShmem->durable;
		next.handed_over_term = term;
		PgClusterPersistLocked(&next);
	}
	LWLockRelease(PgClusterShmem->durable_lock);
}

/*
 * PgClusterRaiseLeaderProgressLocked remembers the WAL position a leader of
 * our term reported, for rule V5 and the standing lag rule.  It only ever
 * rises: a target elected on a handover reports its own, lower position
 * until it promotes, and must not make a candidate behind the old leader's
 * last commits look current.  The caller holds lock exclusively.
 */
void
PgClusterRaiseLeaderProgressLocked(uint64 wal_term, TimeLineID timeline, XLogRecPtr lsn)
{
	Assert(LWLockHeldByMeInMode(PgClusterShmem->lock, LW_EXCLUSIVE));

	if (timeline > PgClusterShmem->leader_timeline)
		PgClusterShmem->leader_timeline = timeline; /* for follow and rejoin */
	if (lsn == InvalidXLogRecPtr ||
		PgClusterCompareProgress(wal_term, lsn, PgClusterShmem->leader_wal_term,
								 PgClusterShmem->leader_lsn) <= 0)
		return;
	PgClusterShmem->leader_wal_term = wal_term;
	PgClusterShmem->leader_lsn = lsn;
}

/*
 * PgClusterPersistLeaderProgress makes the leader progress heard durable on
 * a witness, before the heartbeat that raised it is acknowledged: a witness
 * that restarts must not forget how far the leader got, or rule V5 would
 * let it vote for a stale standby (protocol.md §3.2).  Data nodes compare
 * candidates with their own WAL (V4) and skip the write.
 */
void
PgClusterPersistLeaderProgress(void)
{
	PgClusterDurableState next;
	uint64		wal_term;
	XLogRecPtr	lsn;

	if (PgClusterNodeKindSetting != PGC_NODE_WITNESS)
		return;

	LWLockAcquire(PgClusterShmem->durable_lock, LW_EXCLUSIVE);
	LWLockAcquire(PgClusterShmem->lock, LW_SHARED);
	wal_term = PgClusterShmem->leader_wal_term;
	lsn = PgClusterShmem->leader_lsn;
	LWLockRelease(PgClusterShmem->lock);
	if (PgClusterShmem->durable_loaded &&
		PgClusterCompareProgress(wal_term, lsn,
								 PgClusterShmem->durable.heard_leader_wal_term,
								 PgClusterShmem->durable.heard_leader_lsn) > 0)
	{
		next = PgClusterShmem->durable;
		next.heard_leader_wal_term = wal_term;
		next.heard_leader_lsn = lsn;
		PgClusterPersistLocked(&next);
	}
	LWLockRelease(PgClusterShmem->durable_lock);
}

/*
 * PgClusterPersistWalTerm records the last term marker of this node's WAL
 * and how far the WAL was read without a later one (walterm.c), so that
 * after a restart the reader starts there.
 */
void
PgClusterPersistWalTerm(uint64 term, XLogRecPtr marker_end, XLogRecPtr read_lsn)
{
	PgClusterDurableState next;

	LWLockAcquire(PgClusterShmem->durable_lock, LW_EXCLUSIVE);
	if (PgClusterShmem->durable_loaded &&
		(PgClusterShmem->durable.wal_term != term ||
		 PgClusterShmem->durable.wal_term_lsn != marker_end ||
		 PgClusterShmem->durable.wal_read_lsn != read_lsn ||
		 PgClusterShmem->durable.wal_term_unknown))
	{
		next = PgClusterShmem->durable;
		next.wal_term = term;
		next.wal_term_lsn = marker_end;
		next.wal_read_lsn = read_lsn;
		next.wal_term_unknown = false;
		PgClusterPersistLocked(&next);
	}
	LWLockRelease(PgClusterShmem->durable_lock);
}

/*
 * PgClusterForgetWalTerm: pg_rewind is about to replace this node's WAL;
 * what the state file says of its markers will not hold for the new WAL.
 */
void
PgClusterForgetWalTerm(void)
{
	PgClusterDurableState next;

	LWLockAcquire(PgClusterShmem->durable_lock, LW_EXCLUSIVE);
	if (PgClusterShmem->durable_loaded && !PgClusterShmem->durable.wal_term_unknown)
	{
		next = PgClusterShmem->durable;
		next.wal_term_unknown = true;
		PgClusterPersistLocked(&next);
	}
	LWLockRelease(PgClusterShmem->durable_lock);
}

/*
 * PgClusterStepDown gives up this node's leadership without a new term:
 * the lease ends now, and the voters elect a leader once they miss this
 * one.  Used when a handover has an unclear outcome (the target may be
 * standing with our blessing) and when a target gives a handover up.
 */
void
PgClusterStepDown(void)
{
	LWLockAcquire(PgClusterShmem->durable_lock, LW_SHARED);
	LWLockAcquire(PgClusterShmem->lock, LW_EXCLUSIVE);
	PgClusterShmem->is_leader = false;
	PgClusterShmem->leader[0] = '\0';
	LWLockRelease(PgClusterShmem->lock);
	pg_atomic_write_u64(&PgClusterShmem->commit_allowed_until, 0);
	LWLockRelease(PgClusterShmem->durable_lock);
}

/* PgClusterNameInList: is "name" an element of the comma-separated list? */
bool
PgClusterNameInList(const char *list, const char *name)
{
	size_t		len = strlen(name);

	for (const char *p = list; *p;)
	{
		const char *end = strchr(p, ',');
		size_t		n = end ? (size_t) (end - p) : strlen(p);

		if (n == len && strncmp(p, name, len) == 0)
			return true;
		if (end == NULL)
			break;
		p = end + 1;
	}
	return false;
}
