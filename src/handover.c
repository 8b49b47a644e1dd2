/*-------------------------------------------------------------------------
 *
 * handover.c
 *		The target's side of a planned switchover (docs/protocol.md §8):
 *		accepting the leader's handover, and promoting only once the old
 *		leader's last WAL is here.
 *
 * The leader calls pg_cluster.handover() on the target after it stopped
 * acknowledging commits.  The backend answering it records the handover in
 * shared memory; the worker then stands for the next term at once (the
 * voters accept it under rule V8), and once elected waits, in state
 * catching_up, until the old leader's shutdown checkpoint has been
 * replayed here.  Promoting after that record means the old leader's WAL
 * is a prefix of ours: it can follow the new timeline without pg_rewind.
 * If the checkpoint never comes (the old leader died), the target promotes
 * at the deadline provided it holds the handover LSN, below which every
 * acknowledged commit lies; otherwise it gives up and a normal election
 * follows.
 *
 * Copyright (c) 2026, pg_cluster developers
 *
 * IDENTIFICATION
 *		src/handover.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/rmgr.h"
#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "access/xlogreader.h"
#include "access/xlogrecovery.h"
#include "access/xlogutils.h"
#include "catalog/pg_control.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "replication/walreceiver.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/pg_lsn.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "pg_cluster.h"
#include "worker.h"

PG_FUNCTION_INFO_V1(pg_cluster_handover);

/* Argument positions of pg_cluster.handover() */
enum HandoverArg
{
	HO_ARG_LEADER = 0,
	HO_ARG_SYSTEM_IDENTIFIER,
	HO_ARG_TERM,
	HO_ARG_LSN,
	HO_ARG_TIMEOUT_MS,
	HO_ARG_PROTOCOL_VERSION,
	HO_NARGS
};

/* the term for which this worker asked for promotion, to ask only once */
static uint64 promotion_requested_term = 0;

/*
 * WhyRefuseHandover returns NULL if this node can take over from "leader"
 * in "term", or why not.
 */
static const char *
WhyRefuseHandover(const char *leader, uint64 term, char *buf, size_t len)
{
	PgClusterDurableState durable;
	char		known_leader[PGC_NAME_LEN];

	if (PgClusterNodeKindSetting != PGC_NODE_DATA)
		return "this node is a witness";
	if (!RecoveryInProgress())
		return "this node is not a standby";
	if (PgClusterPriority <= 0)
		return "pg_cluster.priority is 0 on this node";

	PgClusterDurableSnapshot(&durable);
	if (durable.paused)
		return "the cluster is paused";
	LWLockAcquire(PgClusterShmem->lock, LW_SHARED);
	strlcpy(known_leader, PgClusterShmem->leader, PGC_NAME_LEN);
	LWLockRelease(PgClusterShmem->lock);
	if (durable.term != term || strcmp(known_leader, leader) != 0)
	{
		snprintf(buf, len, "this node is in term " UINT64_FORMAT " with leader \"%s\", not term " UINT64_FORMAT " with \"%s\"",
				 durable.term, known_leader, term, leader);
		return buf;
	}
	if (!WalRcvStreaming())
		return "this node's WAL receiver is not streaming";
	return NULL;
}

/*
 * InjectHandoverFault spoils this node's part of a handover as
 * pg_cluster.debug_handover_fault says, for the tests of protocol.md §8:
 * "delay" answers late, before deciding anything (until the statement is
 * cancelled: the leader's connection has statement_timeout =
 * pg_cluster.connect_timeout), so that the leader can be crashed while it
 * waits; "error" answers with an error after the handover was accepted,
 * an outcome the leader must treat as unclear.  "accepted" says which of
 * the two points this call is at.
 */
static void
InjectHandoverFault(bool accepted)
{
	TimestampTz until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), 60 * 1000);

	switch ((PgClusterHandoverFault) PgClusterDebugHandoverFault)
	{
		case PGC_HANDOVER_FAULT_NONE:
			return;
		case PGC_HANDOVER_FAULT_DELAY:
			if (accepted)
				return;
			PgClusterRecordEvent("handover_fault", NULL,
								 "pg_cluster.debug_handover_fault = delay: answering late");
			while (GetCurrentTimestamp() < until)
			{
				(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
								 100, PG_WAIT_EXTENSION);
				ResetLatch(MyLatch);
				CHECK_FOR_INTERRUPTS();
			}
			return;
		case PGC_HANDOVER_FAULT_ERROR:
			if (!accepted)
				return;
			PgClusterRecordEvent("handover_fault", NULL,
								 "pg_cluster.debug_handover_fault = error: answering with an error");
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("handover accepted, then failed by pg_cluster.debug_handover_fault"),
					 errhint("Set pg_cluster.debug_handover_fault = none outside tests.")));
	}
}

/*
 * pg_cluster_handover: the leader asks this standby to take over.  The
 * answer is (accepted, reason); the election and promotion follow in the
 * worker.
 */
Datum
pg_cluster_handover(PG_FUNCTION_ARGS)
{
	char		leader[PGC_NAME_LEN];
	uint64		term;
	XLogRecPtr	lsn;
	int			timeout_ms;
	TupleDesc	tupdesc;
	Datum		values[2];
	bool		nulls[2] = {false, false};
	char		buf[PGC_ERROR_LEN];
	const char *why_not;
	TimestampTz now = GetCurrentTimestamp();

	for (int i = 0; i < HO_NARGS; i++)
	{
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("arguments of pg_cluster.handover must not be null")));
	}
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	text_to_cstring_buffer(PG_GETARG_TEXT_PP(HO_ARG_LEADER), leader, PGC_NAME_LEN);
	term = (uint64) PG_GETARG_INT64(HO_ARG_TERM);
	lsn = PG_GETARG_LSN(HO_ARG_LSN);
	timeout_ms = PG_GETARG_INT32(HO_ARG_TIMEOUT_MS);
	(void) PgClusterAdmitCaller(leader,
								PgClusterArgSystemIdentifier(fcinfo, HO_ARG_SYSTEM_IDENTIFIER),
								PGC_ROLE_PRIMARY, PG_GETARG_INT32(HO_ARG_PROTOCOL_VERSION));

	InjectHandoverFault(false);
	why_not = WhyRefuseHandover(leader, term, buf, sizeof(buf));
	if (why_not == NULL)
	{
		LWLockAcquire(PgClusterShmem->lock, LW_EXCLUSIVE);
		PgClusterShmem->handover.active = true;
		strlcpy(PgClusterShmem->handover.from, leader, PGC_NAME_LEN);
		PgClusterShmem->handover.term = term;
		PgClusterShmem->handover.lsn = lsn;
		PgClusterShmem->handover.received_at = now;
		PgClusterShmem->handover.deadline =
			TimestampTzPlusMilliseconds(now, Max(timeout_ms, PgClusterFailoverTimeoutMs));
		if (PgClusterShmem->worker_latch)
			SetLatch(PgClusterShmem->worker_latch);
		LWLockRelease(PgClusterShmem->lock);
		PgClusterRecordEvent("handover_accepted", leader,
							 "\"%s\" hands term " UINT64_FORMAT " over to this node; every acknowledged commit is below %X/%X",
							 leader, term, LSN_FORMAT_ARGS(lsn));
		InjectHandoverFault(true);
	}
	else
		PgClusterRecordEvent("handover_refused", leader,
							 "refused the handover of \"%s\": %s", leader, why_not);

	values[0] = BoolGetDatum(why_not == NULL);
	values[1] = CStringGetTextDatum(why_not ? why_not : "accepted");
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/* ----------------------------------------------------------------------
 * The worker
 * ----------------------------------------------------------------------
 */

static void
HandoverSnapshot(PgClusterHandover *h)
{
	LWLockAcquire(PgClusterShmem->lock, LW_SHARED);
	*h = PgClusterShmem->handover;
	LWLockRelease(PgClusterShmem->lock);
}

static void
HandoverEnd(const char *kind, const char *fmt, const char *detail)
{
	LWLockAcquire(PgClusterShmem->lock, LW_EXCLUSIVE);
	PgClusterShmem->handover.active = false;
	LWLockRelease(PgClusterShmem->lock);
	PgClusterRecordEvent(kind, NULL, fmt, detail);
}

/*
 * HandoverPending says whether a handover waits for its election: the
 * leader handed over "term", which is still ours.  *from receives the
 * leader's name.
 */
bool
HandoverPending(uint64 term, char *from)
{
	PgClusterHandover h;

	HandoverSnapshot(&h);
	if (!h.active || h.term != term || GetCurrentTimestamp() >= h.deadline)
		return false;
	strlcpy(from, h.from, PGC_NAME_LEN);
	return true;
}

/* HandoverCatchingUp: elected on a handover, not promoted yet. */
bool
HandoverCatchingUp(void)
{
	bool		catching_up;

	LWLockAcquire(PgClusterShmem->lock, LW_SHARED);
	catching_up = PgClusterShmem->handover.active && PgClusterShmem->is_leader;
	LWLockRelease(PgClusterShmem->lock);
	return catching_up && RecoveryInProgress();
}

/*
 * OldLeaderWalComplete says whether the WAL replayed here ends with a
 * shutdown checkpoint past "handover_lsn": the old leader's last record
 * (it writes nothing after it).  *end receives where that WAL ends.
 */
static bool
OldLeaderWalComplete(XLogRecPtr handover_lsn, XLogRecPtr *end)
{
	TimeLineID	tli;
	XLogRecPtr	replay_end = GetXLogReplayRecPtr(&tli);
	ReadLocalXLogPageNoWaitPrivate private_data = {false};
	XLogReaderState *reader;
	volatile bool complete = false;
	MemoryContext oldcontext = CurrentMemoryContext;

	*end = replay_end;
	if (replay_end <= handover_lsn)
		return false;

	reader = XLogReaderAllocate(wal_segment_size, NULL,
								XL_ROUTINE(.page_read = read_local_xlog_page_no_wait,
										   .segment_open = wal_segment_open,
										   .segment_close = wal_segment_close),
								&private_data);
	if (reader == NULL)
		return false;

	/* reading WAL can fail (a segment recycled): that just means "not yet" */
	PG_TRY();
	{
		XLogRecPtr	first = XLogFindNextRecord(reader, handover_lsn);
		uint8		last_rmid = 0;
		uint8		last_info = 0;
		XLogRecPtr	last_end = InvalidXLogRecPtr;
		char	   *errormsg;

		if (!XLogRecPtrIsInvalid(first))
		{
			while (XLogReadRecord(reader, &errormsg) != NULL)
			{
				last_rmid = XLogRecGetRmid(reader);
				last_info = XLogRecGetInfo(reader) & ~XLR_INFO_MASK;
				last_end = reader->EndRecPtr;
			}
		}
		complete = last_rmid == RM_XLOG_ID && last_info == XLOG_CHECKPOINT_SHUTDOWN &&
			last_end >= replay_end;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcontext);
		FlushErrorState();
		complete = false;
	}
	PG_END_TRY();
	XLogReaderFree(reader);
	return complete;
}

/*
 * HandoverTick runs the target's side once per worker loop: promote when
 * the old leader's WAL is complete, or decide at the deadline.
 */
void
HandoverTick(TimestampTz now)
{
	PgClusterHandover h;
	PgClusterDurableState durable;
	bool		is_leader;
	XLogRecPtr	end;
	char		detail[PGC_EVENT_DETAIL_LEN];

	HandoverSnapshot(&h);
	if (!h.active)
		return;
	PgClusterDurableSnapshot(&durable);
	LWLockAcquire(PgClusterShmem->lock, LW_SHARED);
	is_leader = PgClusterShmem->is_leader;
	LWLockRelease(PgClusterShmem->lock);

	if (!RecoveryInProgress())
	{
		snprintf(detail, sizeof(detail), "%ld", (long) ((now - h.received_at) / 1000));
		HandoverEnd("handover_done", "promoted %s ms after the handover was accepted", detail);
		return;
	}

	if (is_leader && durable.term == h.term + 1)
	{
		TimeLineID	tli;

		if (promotion_requested_term == durable.term)
			return;
		if (OldLeaderWalComplete(h.lsn, &end))
		{
			char		why[128];

			snprintf(why, sizeof(why), " after the shutdown checkpoint of \"%s\", WAL complete to %X/%X",
					 h.from, LSN_FORMAT_ARGS(end));
			promotion_requested_term = durable.term;
			PromoteStandby(durable.term, why);
			return;
		}
		if (now < h.deadline)
			return;
		if (PgClusterLocalLsn(&tli) >= h.lsn)
		{
			promotion_requested_term = durable.term;
			PromoteStandby(durable.term,
						   " at the handover deadline, without the old leader's shutdown checkpoint: it will need pg_rewind");
			return;
		}

		/* without the handover LSN we could lose acknowledged commits */
		PgClusterStepDown();
		snprintf(detail, sizeof(detail), "%X/%X", LSN_FORMAT_ARGS(h.lsn));
		HandoverEnd("handover_abandoned",
					"the handover LSN %s did not arrive in time; stepped down, a normal election follows",
					detail);
		return;
	}

	if (durable.term > h.term + 1 ||
		(durable.term == h.term + 1 && !is_leader && !ElectionInProgress()) ||
		(durable.term == h.term && now >= h.deadline))
		HandoverEnd("handover_abandoned",
					"the election on the handover of \"%s\" did not succeed; normal elections follow",
					h.from);
}
