/*-------------------------------------------------------------------------
 *
 * election.c
 *		Leader election (docs/protocol.md §3.2, §4, §6): the voter's rules,
 *		run by the backend that answers pg_cluster.request_vote(); the
 *		candidate's rounds and the leader's lease, run by the worker.
 *
 * The candidate side is a small state machine (the table election_phases):
 * IDLE -> PRE_VOTE -> VOTE -> (won) IDLE as leader.  A round that gets no
 * majority within half a failover timeout goes back to IDLE with a new
 * random delay.
 *
 * Copyright (c) 2026, pg_cluster developers
 *
 * IDENTIFICATION
 *		src/election.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlog.h"
#include "common/pg_prng.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "replication/walreceiver.h"
#include "utils/fmgrprotos.h"
#include "utils/timestamp.h"

#include "pg_cluster.h"
#include "worker.h"

/* LastLeaderContact reads when a live leader was last heard (rule V3). */
static TimestampTz
LastLeaderContact(void)
{
	TimestampTz last_contact;

	LWLockAcquire(PgClusterShmem->lock, LW_SHARED);
	last_contact = PgClusterShmem->last_leader_contact;
	LWLockRelease(PgClusterShmem->lock);
	return last_contact;
}

/* Number of voters that make a majority. */
int
PgClusterMajoritySize(void)
{
	int			voters = PgClusterPeers ? PgClusterPeers->count : 1;

	return voters / 2 + 1;
}

/*
 * PgClusterHandleVoteRequest applies the voter's rules V1-V8 to a request
 * and, for a granted real vote, records the vote on disk before returning.
 * *voter_term is set to this node's term after the request.
 */
bool
PgClusterHandleVoteRequest(const PgClusterVoteRequest *req, uint64 *voter_term,
						   char *reason, size_t reasonlen)
{
	TimestampTz now = GetCurrentTimestamp();
	PgClusterDurableState next;
	TimestampTz last_contact;
	uint64		leader_wal_term;
	XLogRecPtr	leader_lsn;
	char		leader[PGC_NAME_LEN];
	int			candidate_index;
	bool		candidate_is_witness = false;
	bool		handing_over_to_candidate;
	bool		transfer = false;

	if (!PgClusterEnsureDurableLoaded())
	{
		snprintf(reason, reasonlen, "voter's durable state is unusable");
		*voter_term = 0;
		return false;
	}

	/*
	 * A real vote request carries the candidate's synchronous record; a
	 * newer one is adopted (durably) whatever the answer, as from a
	 * heartbeat.  This is how the majority that elects the bootstrap
	 * primary stores its record "only the bootstrap primary" (§5, §9):
	 * commits it acknowledged before any standby streamed are then safe.
	 */
	if (!req->pre_vote)
		PgClusterAdoptSyncRecord(&req->sync, req->candidate);

	LWLockAcquire(PgClusterShmem->durable_lock, LW_EXCLUSIVE);
	next = PgClusterShmem->durable;
	*voter_term = next.term;

	LWLockAcquire(PgClusterShmem->lock, LW_SHARED);
	last_contact = PgClusterShmem->last_leader_contact;
	leader_wal_term = PgClusterShmem->leader_wal_term;
	leader_lsn = PgClusterShmem->leader_lsn;
	strlcpy(leader, PgClusterShmem->leader, PGC_NAME_LEN);
	candidate_index = PgClusterFindNode(req->candidate);
	if (candidate_index >= 0)
	{
		PgClusterNodeEntry *entry = &PgClusterShmem->nodes[candidate_index];

		candidate_is_witness = entry->view_valid && entry->view.role == PGC_ROLE_WITNESS;
	}
	handing_over_to_candidate =
		PgClusterShmem->switchover.phase >= PGC_SWITCHOVER_HANDING_OVER &&
		strcmp(PgClusterShmem->switchover.target, req->candidate) == 0;
	LWLockRelease(PgClusterShmem->lock);

#define REFUSE(...) \
	do { \
		snprintf(reason, reasonlen, __VA_ARGS__); \
		LWLockRelease(PgClusterShmem->durable_lock); \
		return false; \
	} while (0)

	/* V1: a candidate from an older term is out of date */
	if (req->term < next.term)
		REFUSE("candidate term " UINT64_FORMAT " is older than ours, " UINT64_FORMAT,
			   req->term, next.term);

	/*
	 * V9, synchronous mode (§9): the candidate knows the latest synchronous
	 * record we know, and that record lets it be promoted.
	 */
	if (PgClusterCompareSyncOrder(req->sync.term, req->sync.version,
								  next.sync.term, next.sync.version) < 0)
		REFUSE("candidate's synchronous record " UINT64_FORMAT "." UINT64_FORMAT " is older than ours, " UINT64_FORMAT "." UINT64_FORMAT,
			   req->sync.term, req->sync.version, next.sync.term, next.sync.version);
	{
		const char *why = PgClusterWhyNotEligible(req->candidate, &next);

		if (why != NULL)
			REFUSE("candidate is not eligible: %s", why);
	}

	/*
	 * V8, a handover (§8): the leader named in the request gave its term to
	 * the candidate after it stopped acknowledging commits, so there is no
	 * lease to wait out (V3), and the candidate promotes only once it holds
	 * the leader's handover LSN, which replaces V4 and V5.  A voter accepts
	 * this only for the term right after the one in which it knows that
	 * leader; the leader itself only for the target it chose.
	 */
	if (req->transfer_from[0] != '\0' && !req->pre_vote)
	{
		if (req->term != next.term + 1 || strcmp(leader, req->transfer_from) != 0)
			REFUSE("handover from \"%s\" for term " UINT64_FORMAT " not recognised: this voter knows leader \"%s\" in term " UINT64_FORMAT,
				   req->transfer_from, req->term, leader, next.term);
		if (strcmp(req->transfer_from, PgClusterNodeName) == 0 && !handing_over_to_candidate)
			REFUSE("this node did not hand over to \"%s\"", req->candidate);
		transfer = true;
	}

	/*
	 * V6 and V3 are checked before a higher term is adopted: a voter that
	 * is paused, or still hears its leader, ignores the request entirely,
	 * so a returning node cannot push the term up and depose a healthy
	 * leader.
	 */
	if (next.paused)
		REFUSE("the cluster is paused");
	if (!transfer && last_contact != 0 &&
		now - last_contact < (int64) PgClusterFailoverTimeoutMs * 1000)
	{
		if (leader[0] != '\0')
			REFUSE("heard leader \"%s\" %ld ms ago", leader,
				   (long) ((now - last_contact) / 1000));
		REFUSE("voted, led or started %ld ms ago, less than failover_timeout",
			   (long) ((now - last_contact) / 1000));
	}

	/* V7 */
	if (candidate_index < 0 || candidate_is_witness)
		REFUSE("\"%s\" is not a data node of this cluster", req->candidate);


	/*
	 * V4: the candidate's WAL must be at least as up to date as ours, in
	 * Raft's order: the term of the last term marker, then the LSN
	 * (walterm.c).  "Behind" holds even if our reader is late (our term
	 * can only be higher); a grant needs our term read to our WAL's end.
	 */
	if (PgClusterNodeKindSetting == PGC_NODE_DATA && !transfer)
	{
		TimeLineID	own_tli;
		XLogRecPtr	own_lsn = PgClusterLocalLsn(&own_tli);
		uint64		own_term;
		bool		current = PgClusterWalTermCurrent(own_lsn, &own_term, true);

		if (PgClusterCompareProgress(req->wal_term, req->lsn, own_term, own_lsn) < 0)
			REFUSE("candidate WAL (term " UINT64_FORMAT ", %X/%X on timeline %u) is behind ours (term " UINT64_FORMAT ", %X/%X on timeline %u)",
				   req->wal_term, LSN_FORMAT_ARGS(req->lsn), req->timeline,
				   own_term, LSN_FORMAT_ARGS(own_lsn), own_tli);
		if (!current)
			REFUSE("this voter has not read its own WAL to its end yet, or does not know the term of its WAL");
	}

	/* V5: not too far behind what the last leader reported */
	if (leader_lsn != InvalidXLogRecPtr && !transfer)
	{
		if (req->wal_term < leader_wal_term ||
			(req->wal_term == leader_wal_term &&
			 req->lsn + (XLogRecPtr) PgClusterMaxLagOnFailover < leader_lsn))
			REFUSE("candidate WAL (term " UINT64_FORMAT ", %X/%X) is more than max_lag_on_failover behind the leader's last (term " UINT64_FORMAT ", %X/%X)",
				   req->wal_term, LSN_FORMAT_ARGS(req->lsn),
				   leader_wal_term, LSN_FORMAT_ARGS(leader_lsn));
	}

	if (req->pre_vote)
	{
		LWLockRelease(PgClusterShmem->durable_lock);
		snprintf(reason, reasonlen, "pre-vote granted");
		return true;
	}

	/* a real vote: adopt the candidate's term, then V2 */
	if (req->term > next.term)
	{
		next.term = req->term;
		next.voted_for[0] = '\0';
		pg_atomic_write_u64(&PgClusterShmem->commit_allowed_until, 0);
		LWLockAcquire(PgClusterShmem->lock, LW_EXCLUSIVE);
		PgClusterShmem->is_leader = false;
		PgClusterShmem->leader[0] = '\0';
		LWLockRelease(PgClusterShmem->lock);
	}
	if (next.voted_for[0] != '\0' && strcmp(next.voted_for, req->candidate) != 0)
	{
		char		voted[PGC_NAME_LEN];

		strlcpy(voted, next.voted_for, PGC_NAME_LEN);
		if (next.term != PgClusterShmem->durable.term)
			PgClusterPersistLocked(&next);
		*voter_term = next.term;
		REFUSE("already voted for \"%s\" in term " UINT64_FORMAT, voted, next.term);
	}
	strlcpy(next.voted_for, req->candidate, PGC_NAME_LEN);
	PgClusterPersistLocked(&next);
	*voter_term = next.term;

	/*
	 * Like a Raft follower, a voter restarts its election timer when it
	 * grants a vote: the candidate it chose gets a failover timeout to
	 * take office before this node stands or votes for another.
	 */
	LWLockAcquire(PgClusterShmem->lock, LW_EXCLUSIVE);
	PgClusterShmem->last_leader_contact = now;
	LWLockRelease(PgClusterShmem->lock);
	LWLockRelease(PgClusterShmem->durable_lock);
#undef REFUSE

	snprintf(reason, reasonlen, "vote granted");
	return true;
}

/* ----------------------------------------------------------------------
 * The candidate (worker only)
 * ----------------------------------------------------------------------
 */

typedef enum ElectionPhase
{
	ELECTION_IDLE = 0,
	ELECTION_PRE_VOTE,
	ELECTION_VOTE
} ElectionPhase;

static const char *const election_phase_names[] = {
	[ELECTION_IDLE] = "idle",
	[ELECTION_PRE_VOTE] = "pre-vote",
	[ELECTION_VOTE] = "vote",
};

typedef struct Election
{
	ElectionPhase phase;
	uint64		term;			/* the term asked for */
	TimestampTz round_started_at;
	int			grants;
	bool		granted_by[PGC_MAX_NODES];	/* by index in the node table */
	TimestampTz not_before;		/* randomized start of the next round */
	TimestampTz contact_seen;	/* last_leader_contact when not_before was set */
	TimestampTz last_streaming_at;
	bool		was_paused;
	char		transfer_from[PGC_NAME_LEN];	/* "" unless a handover round */
} Election;

static Election election;

/* ElectionPhaseName names the current phase for the views. */
const char *
ElectionPhaseName(void)
{
	return election_phase_names[election.phase];
}

bool
ElectionInProgress(void)
{
	return election.phase != ELECTION_IDLE;
}

/*
 * BetterCandidateVisible says whether a reachable peer should go first: a
 * standby with more WAL than ours, or a primary with at least as much (it
 * can take office again without a promotion, e.g. after stepping down).
 */
static bool
BetterCandidateVisible(uint64 wal_term, XLogRecPtr lsn)
{
	bool		better = false;

	LWLockAcquire(PgClusterShmem->lock, LW_SHARED);
	for (int i = 0; i < PgClusterShmem->node_count; i++)
	{
		PgClusterNodeEntry *e = &PgClusterShmem->nodes[i];

		int			cmp;

		if (e->is_self || !e->reachable || !e->view_valid)
			continue;
		cmp = PgClusterCompareProgress(e->view.wal_term, e->view.lsn, wal_term, lsn);
		if ((e->view.role == PGC_ROLE_STANDBY && cmp > 0) ||
			(e->view.role == PGC_ROLE_PRIMARY && cmp >= 0))
			better = true;
	}
	LWLockRelease(PgClusterShmem->lock);
	return better;
}

static int	RandomDelayMs(void);

/*
 * WhyNotStand returns NULL when this node may stand for election now, or
 * the reason it may not.
 */
static const char *
WhyNotStand(TimestampTz now, const PgClusterDurableState *durable)
{
	TimestampTz last_contact;
	uint64		leader_wal_term;
	XLogRecPtr	leader_lsn;
	bool		is_leader;
	bool		in_recovery = RecoveryInProgress();
	TimeLineID	tli;
	XLogRecPtr	lsn;
	uint64		wal_term;

	if (PgClusterNodeKindSetting != PGC_NODE_DATA)
		return "witness";
	if (durable->paused)
	{
		election.was_paused = true;
		return "paused";
	}

	LWLockAcquire(PgClusterShmem->lock, LW_SHARED);
	last_contact = PgClusterShmem->last_leader_contact;
	leader_wal_term = PgClusterShmem->leader_wal_term;
	leader_lsn = PgClusterShmem->leader_lsn;
	is_leader = PgClusterShmem->is_leader;
	LWLockRelease(PgClusterShmem->lock);

	if (is_leader)
		return "leader";
	if (now - last_contact < (int64) PgClusterFailoverTimeoutMs * 1000)
		return "leader alive";

	/*
	 * Our own vote obeys V9 like everyone's, whatever our role: a primary
	 * that does not lead (it stepped down, or was not rewound yet) may lack
	 * commits its successor acknowledged, and the record's majority may be
	 * just that successor and us.
	 */
	if (PgClusterWhyNotEligible(PgClusterNodeName, durable) != NULL)
		return "not eligible: the synchronous record does not list it";

	/* the term of our WAL is what V4 compares: it must be up to date */
	lsn = PgClusterLocalLsn(&tli);
	if (!PgClusterWalTermCurrent(lsn, &wal_term, false))
		return "the term of its WAL is not read to the end yet, or unknown";

	if (in_recovery)
	{
		if (PgClusterPriority <= 0)
			return "priority 0";
		if (durable->term == 0)
			return "no leader yet: standbys do not start a cluster";
		/*
		 * A standby must have streamed recently, unless it knows how far the
		 * lost leader got and is within max_lag_on_failover of it (then the
		 * lag rule below decides; a long pause must not stop failover).
		 */
		/*
		 * (A node that led the term before this one is exempt: its WAL ends
		 * where its own reign did, and V4 tells the voters whether anyone
		 * got further since; a switched-over leader that restarted as a
		 * standby of a target that died must be able to stand.)
		 */
		if (leader_lsn == InvalidXLogRecPtr &&
			now - election.last_streaming_at > 3 * (int64) PgClusterFailoverTimeoutMs * 1000 &&
			!(strcmp(durable->leader_name, PgClusterNodeName) == 0 &&
			  durable->leader_term + 1 >= durable->term))
			return "not streaming";
		if (leader_lsn != InvalidXLogRecPtr &&
			(wal_term < leader_wal_term ||
			 (wal_term == leader_wal_term &&
			  lsn + (XLogRecPtr) PgClusterMaxLagOnFailover < leader_lsn)))
			return "lagging beyond max_lag_on_failover";
	}

	/* the randomized delay, drawn anew whenever the leader was heard again */
	if (election.contact_seen != last_contact || election.not_before == 0)
	{
		int			delay_ms = PgClusterFailoverTimeoutMs + RandomDelayMs();

		if (in_recovery && BetterCandidateVisible(wal_term, lsn))
			delay_ms += PgClusterFailoverTimeoutMs / 2;
		election.contact_seen = last_contact;
		election.not_before = TimestampTzPlusMilliseconds(last_contact, delay_ms);
	}
	/*
	 * Every timer expired during a pause: without a fresh random delay all
	 * standbys would stand at the same instant after resume() and split
	 * the votes.
	 */
	if (election.was_paused)
	{
		int			delay_ms = RandomDelayMs();

		if (in_recovery && BetterCandidateVisible(wal_term, lsn))
			delay_ms += PgClusterFailoverTimeoutMs / 2;
		election.was_paused = false;
		election.not_before = Max(election.not_before,
								  TimestampTzPlusMilliseconds(now, delay_ms));
	}
	if (now < election.not_before)
		return "waiting";
	return NULL;
}

/* RandomDelayMs draws the random part of the election timeout. */
static int
RandomDelayMs(void)
{
	return (int) pg_prng_uint64_range(&pg_global_prng_state, 0,
									  Max(PgClusterFailoverTimeoutMs / 4, 1));
}

static void
ResetRound(void)
{
	election.round_started_at = 0;
	election.grants = 1;		/* our own */
	memset(election.granted_by, 0, sizeof(election.granted_by));
}

/* OwnSyncRecord: the synchronous record this node holds. */
static void
OwnSyncRecord(PgClusterSyncRecord *record)
{
	PgClusterDurableState durable;

	PgClusterDurableSnapshot(&durable);
	*record = durable.sync;
}

/* Ask every peer for a pre-vote for election.term. */
static void
SendPreVoteRequests(void)
{
	PgClusterVoteRequest req;

	memset(&req, 0, sizeof(req));
	strlcpy(req.candidate, PgClusterNodeName, PGC_NAME_LEN);
	req.term = election.term;
	req.lsn = PgClusterLocalLsn(&req.timeline);
	req.wal_term = PgClusterWalTerm(NULL, NULL);
	req.pre_vote = true;
	OwnSyncRecord(&req.sync);
	PeerConnectionsRequestVotes(&req);
}

static void BecomeLeader(TimestampTz now);
static void CountGrants(TimestampTz now);

/*
 * StartVoteRound raises the term to election.term with our own vote, on
 * disk, and asks every peer for its vote.  "transfer_from" names the leader
 * that handed its term over to us (V8), NULL in a normal election.
 */
static void
StartVoteRound(TimestampTz now, const char *transfer_from, const char *why)
{
	PgClusterDurableState next;
	PgClusterVoteRequest req;

	LWLockAcquire(PgClusterShmem->durable_lock, LW_EXCLUSIVE);

	/*
	 * Our own vote obeys V3 too: if a leader was heard since the round
	 * began, raising the term now would depose it.  Checked under
	 * durable_lock, which heartbeats hold while they acknowledge a leader,
	 * so no acknowledgement can slip in between.  A handover is exempt, as
	 * for every voter (V8).  So does V9: a synchronous record adopted while
	 * the pre-vote ran may exclude us, and it counts (a handover too).
	 */
	if ((transfer_from == NULL &&
		 now - LastLeaderContact() < (int64) PgClusterFailoverTimeoutMs * 1000) ||
		PgClusterShmem->durable.term + 1 != election.term ||
		PgClusterWhyNotEligible(PgClusterNodeName, &PgClusterShmem->durable) != NULL)
	{
		LWLockRelease(PgClusterShmem->durable_lock);
		election.phase = ELECTION_IDLE;
		return;
	}
	next = PgClusterShmem->durable;
	next.term = election.term;
	strlcpy(next.voted_for, PgClusterNodeName, PGC_NAME_LEN);
	pg_atomic_write_u64(&PgClusterShmem->commit_allowed_until, 0);
	PgClusterPersistLocked(&next);
	LWLockAcquire(PgClusterShmem->lock, LW_EXCLUSIVE);
	PgClusterShmem->leader[0] = '\0';
	LWLockRelease(PgClusterShmem->lock);
	LWLockRelease(PgClusterShmem->durable_lock);

	PgClusterRecordEvent("election_started", NULL, "%s; standing for term " UINT64_FORMAT,
						 why, election.term);
	election.phase = ELECTION_VOTE;
	ResetRound();
	election.round_started_at = now;

	memset(&req, 0, sizeof(req));
	strlcpy(req.candidate, PgClusterNodeName, PGC_NAME_LEN);
	req.term = election.term;
	req.lsn = PgClusterLocalLsn(&req.timeline);
	req.wal_term = PgClusterWalTerm(NULL, NULL);
	OwnSyncRecord(&req.sync);
	if (transfer_from != NULL)
		strlcpy(req.transfer_from, transfer_from, PGC_NAME_LEN);
	strlcpy(election.transfer_from, req.transfer_from, PGC_NAME_LEN);
	PeerConnectionsRequestVotes(&req);
	CountGrants(now);			/* a one-node cluster wins at once */
}

/* Check whether the round has a majority, and move on if so. */
static void
CountGrants(TimestampTz now)
{
	if (election.grants < PgClusterMajoritySize())
		return;

	if (election.phase == ELECTION_PRE_VOTE)
	{
		char		why[64];

		snprintf(why, sizeof(why), "pre-vote won with %d of %d voters",
				 election.grants, PgClusterPeers->count);
		StartVoteRound(now, NULL, why);
		return;
	}

	if (election.phase == ELECTION_VOTE)
		BecomeLeader(now);
}

/*
 * BecomeLeader records the win on disk, takes leadership and, on a
 * standby, promotes it from inside the server.
 */
static void
BecomeLeader(TimestampTz now)
{
	PgClusterDurableState next;

	LWLockAcquire(PgClusterShmem->durable_lock, LW_EXCLUSIVE);
	if (PgClusterShmem->durable.term != election.term ||
		strcmp(PgClusterShmem->durable.voted_for, PgClusterNodeName) != 0)
	{
		LWLockRelease(PgClusterShmem->durable_lock);
		election.phase = ELECTION_IDLE;
		return;
	}
	next = PgClusterShmem->durable;
	next.leader_term = election.term;
	strlcpy(next.leader_name, PgClusterNodeName, PGC_NAME_LEN);
	PgClusterPersistLocked(&next);
	LWLockAcquire(PgClusterShmem->lock, LW_EXCLUSIVE);
	PgClusterShmem->is_leader = true;
	strlcpy(PgClusterShmem->leader, PgClusterNodeName, PGC_NAME_LEN);
	/* a new leader is its own live leader: it refuses votes (V3) */
	PgClusterShmem->last_leader_contact = now;
	LWLockRelease(PgClusterShmem->lock);
	LWLockRelease(PgClusterShmem->durable_lock);

	election.phase = ELECTION_IDLE;
	PgClusterRecordEvent("elected", NULL,
						 "won the election of term " UINT64_FORMAT " with %d of %d votes",
						 election.term, election.grants, PgClusterPeers->count);
	WorkerRequestImmediateTick();

	/* after a handover, the promotion waits for the old leader's last WAL */
	if (RecoveryInProgress() && election.transfer_from[0] == '\0')
		PromoteStandby(election.term, "");
}

/*
 * PromoteStandby asks the server to end recovery; pg_promote returns at
 * once and the worker watches recovery end.
 */
void
PromoteStandby(uint64 term, const char *why)
{
	PgClusterRecordEvent("promotion", NULL,
						 "promoting this standby for term " UINT64_FORMAT "%s",
						 term, why);
	(void) DirectFunctionCall2(pg_promote, BoolGetDatum(false), Int32GetDatum(60));
}

/*
 * ElectionHandleVoteReply counts a peer's answer to our (pre-)vote request.
 */
void
ElectionHandleVoteReply(int node_index, const char *peer, uint64 term, bool pre_vote,
						bool granted, uint64 voter_term, const char *reason)
{
	TimestampTz now = GetCurrentTimestamp();
	uint64		our_term;

	LWLockAcquire(PgClusterShmem->durable_lock, LW_SHARED);
	our_term = PgClusterShmem->durable.term;
	LWLockRelease(PgClusterShmem->durable_lock);

	if (voter_term > our_term && !(pre_vote && voter_term < term))
	{
		/* someone is further along: give up this round */
		PgClusterAdoptTerm(voter_term, peer);
		election.phase = ELECTION_IDLE;
		return;
	}
	if (term != election.term ||
		(pre_vote ? election.phase != ELECTION_PRE_VOTE : election.phase != ELECTION_VOTE))
		return;					/* a late answer to an old round */

	PgClusterRecordEvent(granted ? "vote_granted" : "vote_refused", peer,
						 "%s for term " UINT64_FORMAT " from \"%s\": %s",
						 pre_vote ? "pre-vote" : "vote", term, peer, reason);
	if (granted && node_index >= 0 && !election.granted_by[node_index])
	{
		election.granted_by[node_index] = true;
		election.grants++;
		CountGrants(now);
	}
}

/*
 * ElectionTick runs the candidate side once per worker loop: times out
 * rounds, and starts a pre-vote when this node should stand.
 */
void
ElectionTick(TimestampTz now)
{
	PgClusterDurableState durable;
	const char *why_not;
	char		handover_from[PGC_NAME_LEN];

	if (WalRcvStreaming())
		election.last_streaming_at = now;

	if (election.phase != ELECTION_IDLE &&
		now - election.round_started_at > (int64) PgClusterFailoverTimeoutMs * 500)
	{
		PgClusterRecordEvent("election_failed", NULL,
							 "%s round for term " UINT64_FORMAT " got %d of %d needed votes",
							 election_phase_names[election.phase], election.term,
							 election.grants, PgClusterMajoritySize());
		election.phase = ELECTION_IDLE;
		/* try again after a new random delay (split votes resolve) */
		election.contact_seen = LastLeaderContact();
		election.not_before = TimestampTzPlusMilliseconds(now, RandomDelayMs());
	}
	PgClusterDurableSnapshot(&durable);

	/*
	 * A round whose term was overtaken (we voted or adopted), or during
	 * whose pre-vote a live leader was heard, is over.
	 */
	if (election.phase == ELECTION_PRE_VOTE)
	{
		TimestampTz last_contact;

		last_contact = LastLeaderContact();
		if (last_contact > election.round_started_at)
		{
			election.phase = ELECTION_IDLE;
			return;
		}
	}
	if (election.phase != ELECTION_IDLE &&
		durable.term >= election.term &&
		!(election.phase == ELECTION_VOTE && durable.term == election.term &&
		  strcmp(durable.voted_for, PgClusterNodeName) == 0))
	{
		election.phase = ELECTION_IDLE;
		election.not_before = TimestampTzPlusMilliseconds(now, RandomDelayMs());
		return;
	}
	if (election.phase != ELECTION_IDLE)
		return;

	/* a leader handed its term over to us: stand at once, no pre-vote */
	if (HandoverPending(durable.term, handover_from))
	{
		char		why[PGC_NAME_LEN + 32];

		snprintf(why, sizeof(why), "handover from \"%s\"", handover_from);
		election.term = durable.term + 1;
		StartVoteRound(now, handover_from, why);
		return;
	}

	why_not = WhyNotStand(now, &durable);
	if (why_not != NULL)
		return;

	election.phase = ELECTION_PRE_VOTE;
	election.term = durable.term + 1;
	ResetRound();
	election.round_started_at = now;
	SendPreVoteRequests();
	CountGrants(now);
}

/*
 * ElectionWhyNotCandidate explains, for pg_cluster.status, why this node
 * would not stand now (NULL if it would).
 */
const char *
ElectionWhyNotCandidate(TimestampTz now)
{
	PgClusterDurableState durable;
	const char *why;

	PgClusterDurableSnapshot(&durable);
	why = WhyNotStand(now, &durable);
	return (why != NULL && strcmp(why, "waiting") == 0) ? NULL : why;
}

/* ----------------------------------------------------------------------
 * The leader's lease (worker only)
 * ----------------------------------------------------------------------
 */

static int
CompareTimestampsDesc(const void *a, const void *b)
{
	TimestampTz ta = *(const TimestampTz *) a;
	TimestampTz tb = *(const TimestampTz *) b;

	return (ta < tb) - (ta > tb);
}

/*
 * LeaseUpdate recomputes and publishes how long this node may commit:
 * forever while it bootstraps a cluster, until the lease end while it
 * leads, not at all otherwise.
 */
void
LeaseUpdate(TimestampTz now)
{
	TimestampTz acked[PGC_MAX_NODES];
	int			nacked = 0;
	uint64		term;
	bool		is_leader;
	uint64		allowed_until = 0;
	bool		primary = PgClusterNodeKindSetting == PGC_NODE_DATA && !RecoveryInProgress();

	LWLockAcquire(PgClusterShmem->durable_lock, LW_SHARED);
	term = PgClusterShmem->durable.term;

	LWLockAcquire(PgClusterShmem->lock, LW_EXCLUSIVE);
	is_leader = PgClusterShmem->is_leader;
	if (primary && term == 0)
		allowed_until = PG_INT64_MAX;	/* bootstrapping (§5) */
	else if (primary && is_leader && PgClusterShmem->wal_term_known &&
			 PgClusterShmem->wal_term == term)
	{
		/*
		 * (Only once this term's marker is in the WAL, walterm.c: every
		 * commit of the term comes after it.)
		 */
		acked[nacked++] = now;	/* this node */
		for (int i = 0; i < PgClusterShmem->node_count; i++)
		{
			PgClusterNodeEntry *e = &PgClusterShmem->nodes[i];

			if (!e->is_self && e->acked_term == term && e->acked_sent_at != 0)
				acked[nacked++] = e->acked_sent_at;
		}
		if (nacked >= PgClusterMajoritySize())
		{
			TimestampTz m;

			qsort(acked, nacked, sizeof(TimestampTz), CompareTimestampsDesc);
			m = acked[PgClusterMajoritySize() - 1];
			allowed_until = TimestampTzPlusMilliseconds(m, PgClusterLeaseDurationMs());
			/* a leader with a valid lease counts as contact for V3 */
			if ((int64) allowed_until > now)
				PgClusterShmem->last_leader_contact = Max(PgClusterShmem->last_leader_contact, m);
		}
	}
	LWLockRelease(PgClusterShmem->lock);

	pg_atomic_write_u64(&PgClusterShmem->commit_allowed_until, allowed_until);
	LWLockRelease(PgClusterShmem->durable_lock);
}
