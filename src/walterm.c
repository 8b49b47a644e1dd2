/*-------------------------------------------------------------------------
 *
 * walterm.c
 *		The term of each node's WAL (docs/protocol.md §3.2, V4): every
 *		leader writes its term into the WAL before its first commit, and
 *		every node knows the term of the last such marker it holds.
 *
 * Raft elects a candidate whose log is at least as up to date as each
 * voter's: the term of the last entry first, then the index.  PostgreSQL's
 * WAL is the log; a timeline is not a term (a primary elected again keeps
 * its timeline, and two promotions that never heard of each other can make
 * timelines of the same number), so each leader marks where its term's WAL
 * begins with a non-transactional logical message "pg_cluster.term", and
 * nodes compare (term of the last marker, LSN).
 *
 * The worker of every data node reads its own WAL as it grows (a primary
 * up to its flushed WAL, a standby up to what its WAL receiver flushed)
 * and publishes the last marker's term.  A voter uses that term only once
 * the reader got to the end of its WAL (WalTermCurrent); otherwise the
 * term could be older than the WAL it holds, and a stale candidate would
 * look current.  A node that cannot read its WAL from where it last knew
 * the term (the segments were removed meanwhile, or pg_rewind replaced the
 * WAL) does not know its term: it neither votes nor stands until a
 * heartbeat of the current leader tells it, once it streams past that
 * leader's marker (WalTermLearnFromLeader).
 *
 * Copyright (c) 2026, pg_cluster developers
 *
 * IDENTIFICATION
 *		src/walterm.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "access/xlogreader.h"
#include "access/xlogrecovery.h"
#include "access/xlogutils.h"
#include "replication/message.h"
#include "replication/walreceiver.h"
#include "utils/memutils.h"

#include "pg_cluster.h"
#include "worker.h"

#define TERM_MARKER_PREFIX	"pg_cluster.term"

/*
 * The worker reads at most this much WAL per loop (a standby that comes
 * back after a long time has much to read; heartbeats must go on), and
 * records how far it read in the state file every so often.
 */
#define READ_PER_TICK		(64 * 1024 * 1024)
#define PERSIST_READ_EVERY	(256 * 1024 * 1024)

/* The worker's reader, kept across ticks. */
static XLogReaderState *reader = NULL;
static MemoryContext reader_context = NULL;
static bool started = false;

/* a primary that read its WAL to the end since it was a standby */
static bool own_wal_read = false;

/* the term this worker last wrote a marker for */
static uint64 marker_written_for = 0;

/*
 * Where the worker's reader stopped last (the end of a record it read):
 * the next tick goes on from there without searching for a record start.
 */
static XLogRecPtr reader_stopped_at = InvalidXLogRecPtr;

static bool WalTermStart(void);

/*
 * ReadFlushedPage is the reader's page callback: reads only WAL this node
 * has on disk, without waiting (-1: not there yet).
 */
static int
ReadFlushedPage(XLogReaderState *state, XLogRecPtr targetPagePtr, int reqLen,
				XLogRecPtr targetRecPtr, char *cur_page)
{
	TimeLineID	tli;
	XLogRecPtr	end = PgClusterLocalLsn(&tli);	/* flushed or replayed WAL */
	int			count;
	WALReadError errinfo;

	if (tli == 0)
		return -1;
	if (targetPagePtr + XLOG_BLCKSZ <= end)
		count = XLOG_BLCKSZ;
	else if (targetPagePtr + reqLen > end)
		return -1;
	else
		count = end - targetPagePtr;

	XLogReadDetermineTimeline(state, targetPagePtr, count, tli);
	if (!WALRead(state, cur_page, targetPagePtr, XLOG_BLCKSZ, state->currTLI, &errinfo))
		WALReadRaiseError(&errinfo);
	return count;
}

/* Is the record the reader holds a term marker?  Sets *term. */
static bool
IsTermMarker(XLogReaderState *state, uint64 *term)
{
	xl_logical_message *msg;

	if (XLogRecGetRmid(state) != RM_LOGICALMSG_ID ||
		(XLogRecGetInfo(state) & ~XLR_INFO_MASK) != XLOG_LOGICAL_MESSAGE)
		return false;
	msg = (xl_logical_message *) XLogRecGetData(state);
	if (msg->prefix_size != sizeof(TERM_MARKER_PREFIX) ||
		strcmp(msg->message, TERM_MARKER_PREFIX) != 0 ||
		msg->message_size != sizeof(uint64))
		return false;
	memcpy(term, msg->message + msg->prefix_size, sizeof(uint64));
	return true;
}

/* SetSharedLocked: what this node knows of its WAL's term (lock held). */
static void
SetSharedLocked(bool known, uint64 term, XLogRecPtr marker_end, XLogRecPtr read_lsn,
				XLogRecPtr read_end)
{
	PgClusterShmem->wal_term_known = known;
	PgClusterShmem->wal_term = term;
	PgClusterShmem->wal_term_lsn = marker_end;
	PgClusterShmem->wal_read_lsn = read_lsn;
	PgClusterShmem->wal_read_end = read_end;
}

/*
 * Publish what the reader knows; a new marker, and every PERSIST_READ_EVERY
 * bytes read, also go to the state file.
 */
static void
Publish(bool known, uint64 term, XLogRecPtr marker_end, XLogRecPtr read_to, XLogRecPtr end)
{
	static XLogRecPtr persisted_read = InvalidXLogRecPtr;
	bool		persist;

	LWLockAcquire(PgClusterShmem->lock, LW_EXCLUSIVE);
	persist = known && (term != PgClusterShmem->wal_term ||
						marker_end != PgClusterShmem->wal_term_lsn ||
						read_to >= persisted_read + PERSIST_READ_EVERY);
	SetSharedLocked(known, term, marker_end, read_to, end);
	LWLockRelease(PgClusterShmem->lock);

	if (persist)
	{
		PgClusterPersistWalTerm(term, marker_end, read_to);
		persisted_read = read_to;
	}
}

/* A WAL reader over this node's flushed WAL, in the current context. */
static XLogReaderState *
AllocateReader(void)
{
	return XLogReaderAllocate(wal_segment_size, NULL,
							  XL_ROUTINE(.page_read = ReadFlushedPage,
										 .segment_open = wal_segment_open,
										 .segment_close = wal_segment_close),
							  NULL);
}

/*
 * ReadMarkers reads this node's WAL from "start" to its current end, or
 * "max_bytes" of it (0: no limit), and updates *term and *marker_end with
 * the last term marker found; *read_to receives the end of the last
 * complete record, *complete whether that is the end of the WAL.  "start"
 * is searched for the next record start unless "at_record" says a record
 * begins there (the reader stopped there itself).  Returns false (with
 * *error set, palloc'd) if the WAL could not be read.
 */
static bool
ReadMarkers(XLogReaderState *state, XLogRecPtr start, bool at_record, uint64 max_bytes,
			uint64 *term, XLogRecPtr *marker_end, XLogRecPtr *read_to, bool *complete,
			char **error)
{
	MemoryContext oldcontext = CurrentMemoryContext;
	volatile bool ok = true;

	*read_to = start;
	*complete = true;
	PG_TRY();
	{
		XLogRecPtr	first = start;
		char	   *errormsg;

		/*
		 * Searching decodes the page's records up to "start" again; the
		 * worker, which reads on where it stopped many times a second,
		 * skips that.
		 */
		if (at_record)
			XLogBeginRead(state, start);
		else
			first = XLogFindNextRecord(state, start);

		if (!XLogRecPtrIsInvalid(first))
		{
			while (XLogReadRecord(state, &errormsg) != NULL)
			{
				uint64		marker_term;

				if (IsTermMarker(state, &marker_term))
				{
					*term = marker_term;
					*marker_end = state->EndRecPtr;
				}
				*read_to = state->EndRecPtr;
				if (max_bytes > 0 && *read_to - start >= max_bytes)
				{
					*complete = false;
					break;
				}
			}
		}
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcontext);
		edata = CopyErrorData();
		FlushErrorState();
		*error = pstrdup(edata->message);
		FreeErrorData(edata);
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

/*
 * WalTermTick runs once per worker loop on a data node: a leader that has
 * not marked its term in the WAL yet does (its lease waits for it, see
 * LeaseUpdate); then the reader goes through the WAL added since the last
 * tick.
 */
void
WalTermTick(void)
{
	uint64		term;
	bool		known;
	XLogRecPtr	marker_end;
	XLogRecPtr	start;
	XLogRecPtr	end;
	XLogRecPtr	read_to;
	TimeLineID	tli;
	bool		is_leader;
	uint64		durable_term;
	char	   *error = NULL;
	MemoryContext prev;
	bool		ok;
	bool		complete;
	bool		in_recovery;

	if (PgClusterNodeKindSetting != PGC_NODE_DATA || !PgClusterEnsureDurableLoaded())
		return;
	if (!started)
	{
		if (!WalTermStart())
			return;
		started = true;
	}

	LWLockAcquire(PgClusterShmem->durable_lock, LW_SHARED);
	durable_term = PgClusterShmem->durable.term;
	LWLockAcquire(PgClusterShmem->lock, LW_SHARED);
	is_leader = PgClusterShmem->is_leader;
	known = PgClusterShmem->wal_term_known;
	term = PgClusterShmem->wal_term;
	marker_end = PgClusterShmem->wal_term_lsn;
	start = PgClusterShmem->wal_read_lsn;
	LWLockRelease(PgClusterShmem->lock);
	LWLockRelease(PgClusterShmem->durable_lock);

	in_recovery = RecoveryInProgress();
	if (in_recovery)
		own_wal_read = false;

	/*
	 * The leader marks its term before it lets any commit of it through.
	 * A leader that lost track of its WAL's term (its segments went while
	 * the worker did not run) marks it too: from the marker on, its WAL is
	 * of its term, and it is the only writer of its WAL.
	 */
	if (is_leader && durable_term > 0 && !in_recovery && (!known || term != durable_term) &&
		marker_written_for != durable_term)
	{
		XLogRecPtr	at;

		marker_written_for = durable_term;	/* once, even if the reader lags */

		at = LogLogicalMessage(TERM_MARKER_PREFIX, (const char *) &durable_term,
							   sizeof(durable_term), false);
		XLogFlush(at);
		if (own_wal_read || !known)
		{
			term = durable_term;
			marker_end = at;
			if (!known)
			{
				known = true;
				own_wal_read = true;
				Publish(true, term, marker_end, at, at);
				return;
			}
		}
	}

	if (!known || start == InvalidXLogRecPtr)
	{
		/* nothing known to start from; whoever learns the term sets it */
		reader_stopped_at = InvalidXLogRecPtr;
		return;
	}

	end = PgClusterLocalLsn(&tli);

	/*
	 * A primary that read its WAL to the end once since it stopped being a
	 * standby is the only writer of what follows, and writes no marker but
	 * its own (above): it need not read its WAL again.
	 */
	if (own_wal_read)
	{
		Publish(true, term, marker_end, end, end);
		return;
	}

	/*
	 * The reader lives across ticks, and so must what it allocates while
	 * it reads (its decode buffer): the worker resets its loop's memory
	 * context after every loop.
	 */
	if (reader_context == NULL)
		reader_context = AllocSetContextCreate(TopMemoryContext, "pg_cluster WAL term reader",
											   ALLOCSET_DEFAULT_SIZES);
	prev = MemoryContextSwitchTo(reader_context);
	if (reader == NULL)
		reader = AllocateReader();
	if (reader != NULL && start < end)
	{
		ok = ReadMarkers(reader, start, start == reader_stopped_at, READ_PER_TICK,
						 &term, &marker_end, &read_to, &complete, &error);
		/* only where the reader itself stopped is known to begin a record */
		if (ok)
			reader_stopped_at = read_to;
	}
	else
	{
		/* no WAL since the last tick (or no reader) */
		ok = true;
		read_to = start;
		complete = true;
	}
	MemoryContextSwitchTo(prev);
	if (reader == NULL)
		return;
	if (ok)
	{
		Publish(true, term, marker_end, read_to, complete ? end : InvalidXLogRecPtr);
		own_wal_read = complete && !in_recovery;
		return;
	}

	/*
	 * The WAL from where we knew the term is gone (or unreadable): we no
	 * longer know which term wrote our WAL.  The leader's heartbeats tell
	 * us again.
	 */
	PgClusterRecordEvent("wal_term_unknown", NULL,
						 "could not read this node's WAL from %X/%X: %s; waiting for the leader to tell the term of its WAL",
						 LSN_FORMAT_ARGS(start), error);
	Publish(false, term, marker_end, InvalidXLogRecPtr, InvalidXLogRecPtr);
	PgClusterForgetWalTerm();
	XLogReaderFree(reader);
	reader = NULL;
	reader_stopped_at = InvalidXLogRecPtr;
	MemoryContextReset(reader_context);
}

/*
 * WalTermStart sets where the reader starts after this server started:
 * after the last marker the state file knows of, or, with none known,
 * at the redo point of the last checkpoint (a new cluster, or a clone of
 * a primary that knew of none: its WAL before that point was the
 * primary's, whose own markers the state file it copied lists).  Returns
 * false while the redo point is not known yet (recovery starting).
 */
static bool
WalTermStart(void)
{
	PgClusterDurableState durable;
	XLogRecPtr	start;
	bool		known;

	PgClusterDurableSnapshot(&durable);
	known = !durable.wal_term_unknown;
	start = Max(durable.wal_term_lsn, durable.wal_read_lsn);
	if (start == InvalidXLogRecPtr)
		start = GetRedoRecPtr();
	if (known && start == InvalidXLogRecPtr)
		return false;
	LWLockAcquire(PgClusterShmem->lock, LW_EXCLUSIVE);
	SetSharedLocked(known, durable.wal_term, durable.wal_term_lsn,
					known ? start : InvalidXLogRecPtr, InvalidXLogRecPtr);
	LWLockRelease(PgClusterShmem->lock);
	if (!known)
		PgClusterRecordEvent("wal_term_unknown", NULL,
							 "the term of this node's WAL is not known (its WAL was rewound or replaced); waiting for the leader to tell it");
	return true;
}

/*
 * WalTermLearnFromLeader: a heartbeat of the leader of our term reports
 * the marker of its term ("term" ending at "marker_end" on "timeline").  A
 * node that holds WAL past that marker on the leader's timeline holds the
 * leader's WAL there, and no later marker exists (this is the current
 * term): the term of its WAL is the leader's.  Only an unknown term is set
 * this way (the reader is exact otherwise).  The caller holds no lock.
 */
void
WalTermLearnFromLeader(uint64 term, XLogRecPtr marker_end, TimeLineID timeline)
{
	TimeLineID	own_tli;
	XLogRecPtr	own_lsn;
	bool		known;

	if (PgClusterNodeKindSetting != PGC_NODE_DATA || term == 0 ||
		marker_end == InvalidXLogRecPtr)
		return;
	LWLockAcquire(PgClusterShmem->lock, LW_SHARED);
	known = PgClusterShmem->wal_term_known;
	LWLockRelease(PgClusterShmem->lock);
	if (known)
		return;
	own_lsn = PgClusterLocalLsn(&own_tli);
	if (own_tli != timeline || own_lsn < marker_end)
		return;

	/* no later marker exists in the current term: read on from here */
	LWLockAcquire(PgClusterShmem->lock, LW_EXCLUSIVE);
	SetSharedLocked(true, term, marker_end, own_lsn, InvalidXLogRecPtr);
	LWLockRelease(PgClusterShmem->lock);
	PgClusterPersistWalTerm(term, marker_end, own_lsn);
	PgClusterRecordEvent("wal_term_known", NULL,
						 "the WAL of this node is of term " UINT64_FORMAT " (marker ending at %X/%X, told by the leader)",
						 term, LSN_FORMAT_ARGS(marker_end));
}

/*
 * PgClusterWalTerm returns the term of the last marker this node is known
 * to hold (0: none), with *known false when the node does not know it.
 * For heartbeats and the views; rule V4 uses WalTermCurrent.
 */
uint64
PgClusterWalTerm(bool *known, XLogRecPtr *marker_end)
{
	uint64		term;

	LWLockAcquire(PgClusterShmem->lock, LW_SHARED);
	term = PgClusterShmem->wal_term;
	if (known)
		*known = PgClusterShmem->wal_term_known;
	if (marker_end)
		*marker_end = PgClusterShmem->wal_term_lsn;
	LWLockRelease(PgClusterShmem->lock);
	return term;
}

/*
 * PgClusterWalTermCurrent: the term of this node's WAL up to (at least)
 * "lsn".  Normally the worker's last tick read that far; if WAL was added
 * since, the rest is read here and now when "read_rest" (a voter's
 * backend; the worker must not block, it waits for its next tick).  False if the term is unknown or
 * the WAL could not be read.  A witness has no WAL: term 0, current.
 */
bool
PgClusterWalTermCurrent(XLogRecPtr lsn, uint64 *term, bool read_rest)
{
	bool		known;
	XLogRecPtr	read_lsn;
	XLogRecPtr	read_end;
	XLogRecPtr	marker_end;
	XLogRecPtr	read_to;
	XLogReaderState *state;
	char	   *error = NULL;
	bool		ok;
	bool		complete;

	if (PgClusterNodeKindSetting != PGC_NODE_DATA)
	{
		*term = 0;
		return true;
	}
	LWLockAcquire(PgClusterShmem->lock, LW_SHARED);
	*term = PgClusterShmem->wal_term;
	known = PgClusterShmem->wal_term_known;
	marker_end = PgClusterShmem->wal_term_lsn;
	read_lsn = PgClusterShmem->wal_read_lsn;
	read_end = PgClusterShmem->wal_read_end;
	LWLockRelease(PgClusterShmem->lock);

	if (!known || read_lsn == InvalidXLogRecPtr)
		return false;
	if (read_end != InvalidXLogRecPtr && lsn <= read_end)
		return true;
	if (!read_rest)
		return false;

	/* WAL came since the worker's last look: read the rest ourselves */
	state = AllocateReader();
	if (state == NULL)
		return false;
	ok = ReadMarkers(state, read_lsn, false, 0, term, &marker_end, &read_to, &complete,
					 &error);
	XLogReaderFree(state);
	return ok && complete;
}
