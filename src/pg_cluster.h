/*-------------------------------------------------------------------------
 *
 * pg_cluster.h
 *		Shared declarations of pg_cluster: the configuration, the state that
 *		the worker and the backends share in shared memory, the event ring
 *		and the durable state file.
 *
 * Every node of a cluster runs one pg_cluster worker.  The worker is the
 * only process that talks to peers (heartbeats over libpq) and the only one
 * that writes the durable state file; backends answer the peers' RPCs and
 * read the shared state for the SQL views.
 *
 * Copyright (c) 2026, pg_cluster developers
 *
 * IDENTIFICATION
 *		src/pg_cluster.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_CLUSTER_H
#define PG_CLUSTER_H

#include "access/xlogdefs.h"
#include "datatype/timestamp.h"
#include "fmgr.h"
#include "port/atomics.h"
#include "storage/condition_variable.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "utils/guc.h"

/* Version of the peer RPCs; a peer speaking another one is refused. */
#define PGC_PROTOCOL_VERSION		3

/* Limits of the configuration (sized so shared memory stays small). */
#define PGC_MAX_NODES				16
#define PGC_NAME_LEN				64
#define PGC_HOST_LEN				256
#define PGC_ERROR_LEN				256
#define PGC_EVENT_RING_SIZE			256
#define PGC_EVENT_KIND_LEN			32
#define PGC_EVENT_DETAIL_LEN		256
#define PGC_NAME_LIST_LEN			(PGC_MAX_NODES * PGC_NAME_LEN)

/*
 * SQLSTATE sent back to a peer whose heartbeat we refuse (different
 * system identifier, unknown name, other protocol).  Class "PC" is ours.
 */
#define ERRCODE_PGC_PEER_REFUSED	MAKE_SQLSTATE('P','C','0','0','1')

/*
 * SQLSTATE of a heartbeat answered by a node that cannot take part right
 * now (its durable state is not loaded or is damaged).
 */
#define ERRCODE_PGC_NODE_UNAVAILABLE MAKE_SQLSTATE('P','C','0','0','2')

/* SQLSTATE of a switchover that was refused or failed (switchover.c). */
#define ERRCODE_PGC_SWITCHOVER_REFUSED MAKE_SQLSTATE('P','C','0','0','3')
#define ERRCODE_PGC_SWITCHOVER_FAILED MAKE_SQLSTATE('P','C','0','0','4')

/* What a node is, as reported in heartbeats and in the views. */
typedef enum PgClusterRole
{
	PGC_ROLE_UNKNOWN = 0,
	PGC_ROLE_PRIMARY,
	PGC_ROLE_STANDBY,
	PGC_ROLE_WITNESS
} PgClusterRole;

/* pg_cluster.synchronous_mode */
typedef enum PgClusterSyncMode
{
	PGC_SYNC_OFF = 0,
	PGC_SYNC_QUORUM,
	PGC_SYNC_STRICT
} PgClusterSyncMode;

/*
 * pg_cluster.debug_handover_fault: a fault the target injects into its
 * answer to a handover it accepted, for the tests of protocol.md §8.
 */
typedef enum PgClusterHandoverFault
{
	PGC_HANDOVER_FAULT_NONE = 0,
	PGC_HANDOVER_FAULT_DELAY,	/* answer late, before deciding anything */
	PGC_HANDOVER_FAULT_ERROR	/* accept, then answer with an error */
} PgClusterHandoverFault;

/* pg_cluster.node_role */
typedef enum PgClusterNodeKind
{
	PGC_NODE_DATA = 0,
	PGC_NODE_WITNESS
} PgClusterNodeKind;

/*
 * The worker's state, shown as pg_cluster.status.state.  The derivation is a
 * table in worker.c; later protocol states extend this enum.
 */
typedef enum PgClusterWorkerState
{
	PGC_STATE_STARTING = 0,
	PGC_STATE_UNCONFIGURED,		/* node_name or peers missing or invalid */
	PGC_STATE_STATE_FILE_CORRUPT,	/* durable state unreadable: no voting */
	PGC_STATE_BOOTSTRAPPING,	/* primary before the first election */
	PGC_STATE_LEADER,			/* primary, leader with a valid lease */
	PGC_STATE_FENCED,			/* primary without a valid lease */
	PGC_STATE_CANDIDATE,		/* running an election */
	PGC_STATE_PROMOTING,		/* won, waiting for recovery to end */
	PGC_STATE_DEMOTING,			/* primary handing over or leaving to rejoin */
	PGC_STATE_CATCHING_UP,		/* won a handover, waiting for the old
								 * primary's last WAL before promoting */
	PGC_STATE_NEEDS_REWIND,		/* standby ahead of the leader's fork point */
	PGC_STATE_STREAMING,		/* standby with a live WAL receiver */
	PGC_STATE_NOT_STREAMING,	/* standby without a WAL receiver */
	PGC_STATE_WITNESS			/* witness node, votes only */
} PgClusterWorkerState;

#define PGC_STATE_LAST PGC_STATE_WITNESS

/* One entry of pg_cluster.peers, as parsed by the check hook. */
typedef struct PgClusterPeerAddress
{
	char		name[PGC_NAME_LEN];
	char		host[PGC_HOST_LEN];
	int			port;
} PgClusterPeerAddress;

/* The parsed pg_cluster.peers list (the GUC's "extra"). */
typedef struct PgClusterPeerList
{
	int			count;
	int			self_index;		/* -1 if node_name is not (yet) known */
	PgClusterPeerAddress nodes[PGC_MAX_NODES];
} PgClusterPeerList;

/* What a node says about itself in a heartbeat, or in its reply. */
typedef struct PgClusterNodeView
{
	PgClusterRole role;
	uint64		term;
	char		leader[PGC_NAME_LEN];	/* empty when unknown */
	TimeLineID	timeline;
	XLogRecPtr	lsn;
	uint64		wal_term;		/* term of the last marker in its WAL */
	XLogRecPtr	wal_term_lsn;	/* where that marker ends */
	uint64		system_identifier;
	bool		is_leader;		/* claims leadership of "term" */
	uint64		pause_version;
	bool		paused;
	uint64		sync_term;		/* the synchronous record it holds: */
	uint64		sync_version;	/* (creator's term, version) */
	TimestampTz sent_at;		/* the sender's clock, for display only */
	int			priority;		/* pg_cluster.priority (replies only) */
	PgClusterWorkerState state; /* pg_cluster.status.state (replies only) */
} PgClusterNodeView;

/* One configured node as this node sees it (shared memory). */
typedef struct PgClusterNodeEntry
{
	char		name[PGC_NAME_LEN];
	char		host[PGC_HOST_LEN];
	int			port;
	bool		is_self;

	bool		view_valid;		/* has the node ever told us its view? */
	PgClusterNodeView view;
	TimestampTz view_received_at;	/* local time the view arrived */

	TimestampTz last_reply_at;	/* last answer to our heartbeat */
	TimestampTz last_heard_at;	/* last heartbeat the node sent us */
	bool		reachable;		/* answered us within 3 heartbeats */
	bool		refused;		/* not part of this cluster */
	const char *connection_state;	/* static string from peer.c */
	char		last_error[PGC_ERROR_LEN];

	/* on a leader: the send time of the latest heartbeat it acknowledged */
	uint64		acked_term;
	TimestampTz acked_sent_at;
	uint64		acked_sync_term;	/* the synchronous record it holds */
	uint64		acked_sync_version;

	uint64		heartbeats_sent;
	uint64		heartbeats_answered;
	uint64		heartbeats_received;
	int64		last_rtt_us;
} PgClusterNodeEntry;

/* One entry of the event ring. */
typedef struct PgClusterEvent
{
	uint64		seq;			/* 0 = slot never used */
	TimestampTz at;
	uint64		term;
	char		node[PGC_NAME_LEN];
	char		kind[PGC_EVENT_KIND_LEN];
	char		detail[PGC_EVENT_DETAIL_LEN];
} PgClusterEvent;

/*
 * The synchronous record (syncrep.c, protocol.md §9): which data nodes hold
 * every acknowledged commit.  Not restricted: all of them, as far as rule
 * V4 can tell (every commit is on a majority).  Restricted: only those
 * named.  Made durable on a majority before it is relied on.  Records are
 * ordered by (term, version): a leader's records supersede those of every
 * earlier term, so two leaders can never make different records look alike.
 */
typedef struct PgClusterSyncRecord
{
	uint64		term;			/* term of the leader that made it; 0: the
								 * bootstrap primary's */
	uint64		version;
	bool		restricted;
	char		eligible[PGC_NAME_LIST_LEN];	/* comma-separated names */
} PgClusterSyncRecord;

/*
 * PgClusterComparePairs orders (major, minor) pairs lexicographically:
 * negative, zero or positive as a is below, equal to or above b.
 */
static inline int
PgClusterComparePairs(uint64 major_a, uint64 minor_a, uint64 major_b, uint64 minor_b)
{
	if (major_a != major_b)
		return major_a < major_b ? -1 : 1;
	if (minor_a != minor_b)
		return minor_a < minor_b ? -1 : 1;
	return 0;
}

/*
 * PgClusterCompareSyncOrder orders synchronous records by (term, version):
 * negative, zero or positive as a is older than, the same as or newer than b.
 */
static inline int
PgClusterCompareSyncOrder(uint64 term_a, uint64 version_a,
						  uint64 term_b, uint64 version_b)
{
	return PgClusterComparePairs(term_a, version_a, term_b, version_b);
}

/* The durable state file, $PGDATA/pg_cluster.state (docs/protocol.md §2). */
typedef struct PgClusterDurableState
{
	uint64		term;
	char		voted_for[PGC_NAME_LEN];
	uint64		leader_term;	/* last term this node won ... */
	char		leader_name[PGC_NAME_LEN];	/* ... and its name then */
	uint64		cluster_system_identifier;	/* learned by witnesses */
	uint64		pause_version;
	bool		paused;

	PgClusterSyncRecord sync;	/* the synchronous record */

	/*
	 * A leader that asks a target to take over its term records that term
	 * here first (switchover.c, protocol.md §8): after a restart it must
	 * not resume a term that the target may already lead.  Reset to 0 only
	 * when the target refused explicitly (or was never asked).
	 */
	uint64		handed_over_term;

	/*
	 * The highest WAL position, (term of its WAL, LSN), a leader reported to
	 * this node (rule V5).  Kept on disk by witnesses only, which have no
	 * WAL of their own to compare candidates with (protocol.md §3.2); data
	 * nodes keep it in shared memory (leader_wal_term, leader_lsn).
	 */
	uint64		heard_leader_wal_term;
	XLogRecPtr	heard_leader_lsn;

	/*
	 * The last term marker of this node's WAL (walterm.c): its term and
	 * where it ends; unknown after pg_rewind replaced the WAL.
	 */
	uint64		wal_term;
	XLogRecPtr	wal_term_lsn;
	XLogRecPtr	wal_read_lsn;	/* read without a later marker up to here */
	bool		wal_term_unknown;
} PgClusterDurableState;

/*
 * A planned switchover as the leader runs it (switchover.c, protocol.md
 * §8).  One at a time: the phase is NONE between switchovers.
 */
typedef enum PgClusterSwitchoverPhase
{
	PGC_SWITCHOVER_NONE = 0,
	PGC_SWITCHOVER_PREPARING,	/* checks passed, checkpoint running */
	PGC_SWITCHOVER_HOLDING,		/* new commits held, in-flight ones draining */
	PGC_SWITCHOVER_HANDING_OVER,	/* the worker asks the target to take over */
	PGC_SWITCHOVER_DEMOTING		/* the target accepted: shutting down */
} PgClusterSwitchoverPhase;

typedef struct PgClusterSwitchover
{
	PgClusterSwitchoverPhase phase;
	uint64		id;				/* numbers the switchovers of this server */
	char		target[PGC_NAME_LEN];
	uint64		term;			/* the term this node leads */
	XLogRecPtr	handover_lsn;	/* every acknowledged commit ends below */
	TimestampTz started_at;
	TimestampTz deadline;
	int			requester_pid;	/* the backend that waits for the outcome */
	bool		failed;			/* outcome of switchover "id" */
	char		error[PGC_ERROR_LEN];
} PgClusterSwitchover;

/* On the target: the handover it accepted (handover.c, protocol.md §8). */
typedef struct PgClusterHandover
{
	bool		active;
	char		from[PGC_NAME_LEN];	/* the leader handing over */
	uint64		term;			/* the term it led */
	XLogRecPtr	lsn;			/* its handover LSN */
	TimestampTz received_at;
	TimestampTz deadline;
} PgClusterHandover;

/* Everything in shared memory, protected by "lock" unless noted. */
typedef struct PgClusterShared
{
	LWLock	   *lock;

	/* the worker */
	pid_t		worker_pid;
	Latch	   *worker_latch;
	TimestampTz worker_started_at;
	PgClusterWorkerState state;

	/*
	 * Durable state, a copy of the state file.  Changed only under
	 * durable_lock (exclusive), on disk before it changes here.
	 */
	LWLock	   *durable_lock;
	bool		durable_loaded;
	bool		durable_corrupt;
	PgClusterDurableState durable;

	/* protocol state that is not durable (docs/protocol.md §3, §6) */
	char		leader[PGC_NAME_LEN];	/* leader of durable.term, if known */
	TimestampTz last_leader_contact;	/* rule V3 */
	TimeLineID	leader_timeline;	/* last progress the leader reported */
	uint64		leader_wal_term;
	XLogRecPtr	leader_lsn;
	bool		is_leader;		/* this node leads durable.term */

	/*
	 * Commits are allowed while now < commit_allowed_until: the lease end
	 * on a leader, "forever" on a bootstrapping primary, 0 otherwise.  Only
	 * raised by the worker under durable_lock (shared) after checking the
	 * term; whoever adopts a higher term zeroes it under durable_lock.
	 */
	pg_atomic_uint64 commit_allowed_until;

	/*
	 * The switchover's commit hold (fence.c): while commit_hold is set, new
	 * commits wait on hold_cv; commits_in_flight counts those that passed
	 * the fence and have not finished, so the leader knows when the last
	 * acknowledged commit is in its WAL.
	 */
	pg_atomic_uint32 commit_hold;
	pg_atomic_uint32 commits_in_flight;
	ConditionVariable hold_cv;

	/* switchover (on the leader) and handover (on the target) */
	PgClusterSwitchover switchover;
	ConditionVariable switchover_cv;	/* broadcast at every phase change */
	PgClusterHandover handover;
	bool		rejoin_requested;	/* shutting down to restart as a standby */

	/*
	 * Synchronous mode on the leader (syncrep.c): commits of term
	 * sync_ready_term may be acknowledged (the managed configuration is in
	 * force and every commit so far is where the record says).  Commits
	 * wait at pre-commit until then.
	 */
	pg_atomic_uint64 sync_ready_term;
	char		sync_standby_names[PGC_NAME_LIST_LEN + 32];	/* what we set */
	char		sync_status[PGC_ERROR_LEN]; /* what the manager waits for */
	uint64		commits_not_replicated; /* cancelled waits seen (fence.c) */

	/*
	 * The term of this node's WAL (walterm.c): the last marker found, where
	 * the worker's reader is, and the end of the WAL it had read to the end
	 * at its last tick (Invalid while it has not).
	 */
	bool		wal_term_known;
	uint64		wal_term;
	XLogRecPtr	wal_term_lsn;
	XLogRecPtr	wal_read_lsn;
	XLogRecPtr	wal_read_end;

	/* the configured nodes, rebuilt by the worker on every reload */
	int			node_count;
	PgClusterNodeEntry nodes[PGC_MAX_NODES];

	/* event ring */
	uint64		next_event_seq;
	PgClusterEvent events[PGC_EVENT_RING_SIZE];
} PgClusterShared;

/* pg_cluster.c */
extern PgClusterShared *PgClusterShmem;
extern void PgClusterWorkerMain(Datum main_arg);

/* guc.c */
extern char *PgClusterNodeName;
extern char *PgClusterPeersString;
extern char *PgClusterPeerConninfo;
extern int	PgClusterHeartbeatIntervalMs;
extern int	PgClusterFailoverTimeoutMs;
extern int	PgClusterConnectTimeoutMs;
extern int	PgClusterNodeKindSetting;
extern int	PgClusterPriority;
extern int	PgClusterMaxLagOnFailover;
extern char *PgClusterOnRoleChangeCommand;
extern int	PgClusterSynchronousMode;
extern int	PgClusterDebugHandoverFault;
extern const PgClusterPeerList *PgClusterPeers;
extern void PgClusterDefineGucs(void);
extern bool PgClusterIsConfigured(void);
extern bool PgClusterParsePeerList(const char *value, const char *self_name,
								   PgClusterPeerList *list,
								   char *errbuf, size_t errlen);

/* shared_state.c */
extern Size PgClusterShmemSize(void);
extern void PgClusterShmemInit(void);
extern void PgClusterSyncNodeTable(const PgClusterPeerList *peers);
extern int	PgClusterFindNode(const char *name);
extern const char *PgClusterRoleName(PgClusterRole role);
extern PgClusterRole PgClusterRoleFromName(const char *name);
extern const char *PgClusterStateName(PgClusterWorkerState state);
extern PgClusterWorkerState PgClusterStateFromName(const char *name);
extern PgClusterRole PgClusterLocalRole(void);
extern XLogRecPtr PgClusterLocalLsn(TimeLineID *timeline);
extern uint64 PgClusterLocalSystemIdentifier(void);
extern void PgClusterLocalView(PgClusterNodeView *view);

/* events.c */
extern void PgClusterRecordEvent(const char *kind, const char *node,
								 const char *fmt,...) pg_attribute_printf(3, 4);

/* state_file.c */
typedef enum PgClusterStateFileResult
{
	PGC_STATE_FILE_OK,
	PGC_STATE_FILE_MISSING,
	PGC_STATE_FILE_CORRUPT
} PgClusterStateFileResult;

extern PgClusterStateFileResult PgClusterReadStateFile(PgClusterDurableState *state,
													   char *errbuf, size_t errlen);
extern void PgClusterWriteStateFile(const PgClusterDurableState *state);

/* durable.c */
extern PgClusterStateFileResult PgClusterLoadDurableLocked(char *errbuf, size_t errlen);
extern bool PgClusterEnsureDurableLoaded(void);
extern void PgClusterPersistLocked(const PgClusterDurableState *next);
extern bool PgClusterAdoptTerm(uint64 term, const char *from);
extern bool PgClusterAdoptPause(uint64 version, bool paused, const char *from);
extern bool PgClusterAdoptSyncRecord(const PgClusterSyncRecord *record,
									 const char *from);
extern bool PgClusterNameInList(const char *list, const char *name);
extern void PgClusterDurableSnapshot(PgClusterDurableState *copy);
extern void PgClusterSetHandedOverTerm(uint64 term);
extern void PgClusterRaiseLeaderProgressLocked(uint64 wal_term, TimeLineID timeline,
											   XLogRecPtr lsn);
extern void PgClusterPersistWalTerm(uint64 term, XLogRecPtr marker_end,
									XLogRecPtr read_lsn);
extern void PgClusterForgetWalTerm(void);
extern void PgClusterPersistLeaderProgress(void);
extern void PgClusterStepDown(void);

/*
 * PgClusterCompareProgress orders WAL positions by the term of the WAL
 * (of its last term marker, walterm.c), then LSN: Raft's order on the
 * last entry's term and index.  Negative, zero or positive as a is behind,
 * equal to or ahead of b.
 */
static inline int
PgClusterCompareProgress(uint64 term_a, XLogRecPtr lsn_a,
						 uint64 term_b, XLogRecPtr lsn_b)
{
	return PgClusterComparePairs(term_a, lsn_a, term_b, lsn_b);
}

/* election.c: the voter's rules (docs/protocol.md §3.2) */
typedef struct PgClusterVoteRequest
{
	char		candidate[PGC_NAME_LEN];
	uint64		term;
	TimeLineID	timeline;
	XLogRecPtr	lsn;
	uint64		wal_term;		/* term of the last marker in its WAL */
	bool		pre_vote;
	char		transfer_from[PGC_NAME_LEN];	/* handover from this leader */
	PgClusterSyncRecord sync;	/* the candidate's synchronous record */
} PgClusterVoteRequest;

extern int	PgClusterMajoritySize(void);
extern bool PgClusterHandleVoteRequest(const PgClusterVoteRequest *req,
									   uint64 *voter_term,
									   char *reason, size_t reasonlen);

/* conninfo.c */
extern char *PgClusterPeerConninfoFor(const char *host, int port, const char *purpose,
									  int statement_timeout_ms);
extern char *PgClusterReplicationConninfoFor(const char *host, int port);
extern bool PgClusterNodeAddress(const char *name, char *host, int *port);

/* syncrep.c */
extern const char *PgClusterWhyNotEligible(const char *name, const PgClusterDurableState *durable);
extern const char *PgClusterSyncModeName(int mode);
extern bool PgClusterSyncStandbysDefined(void);

/* rpc.c */
extern int	PgClusterAdmitCaller(const char *caller, uint64 caller_sysid,
								 PgClusterRole caller_role, int version);
extern uint64 PgClusterArgSystemIdentifier(FunctionCallInfo fcinfo, int argno);
extern void PgClusterRequireUsable(void);

/* walterm.c */
extern uint64 PgClusterWalTerm(bool *known, XLogRecPtr *marker_end);
extern bool PgClusterWalTermCurrent(XLogRecPtr lsn, uint64 *term, bool read_rest);

/* fence.c */
extern void PgClusterRegisterFence(void);
extern bool PgClusterHoldCommits(int64 drain_timeout_ms);
extern bool PgClusterSyncReady(void);
extern void PgClusterReleaseCommits(void);
extern bool PgClusterCommitsAllowed(TimestampTz now);
extern int	PgClusterLeaseDurationMs(void);

#endif							/* PG_CLUSTER_H */
