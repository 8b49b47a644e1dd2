/*-------------------------------------------------------------------------
 *
 * peer.c
 *		Non-blocking libpq connections from the worker to every peer, and
 *		the heartbeats sent over them.
 *
 * Each peer has one persistent connection driven by a small state machine
 * (the table peer_states below).  Nothing here ever blocks: connections are
 * made with PQconnectStart/PQconnectPoll, queries are sent with
 * PQsendQueryPrepared/PQsendQueryParams on a non-blocking connection, and
 * results are read only when the socket is readable.  Every wait has a
 * deadline, so a peer that hangs, drops packets or answers slowly costs the
 * others nothing: the worker waits for all sockets at once in one
 * WaitEventSet.
 *
 * A heartbeat is a call of pg_cluster.heartbeat() on the peer.  It carries
 * this node's view (role, term, leader, timeline, LSN) and returns the
 * peer's.  At most one heartbeat per peer is in flight; a peer that does
 * not answer within pg_cluster.connect_timeout has its connection closed
 * and reopened.  The heartbeat is prepared once per connection, so that
 * the backend answering it does not parse and plan it ten times a second;
 * the rare votes and handovers are sent as plain queries.
 *
 * A follower whose leader heartbeats it sends that leader a heartbeat of
 * its own only every FOLLOWER_TO_LEADER_EVERY intervals (docs/protocol.md
 * §3.1): the leader's heartbeats and the follower's replies already carry
 * both views each interval, and the leader, the busiest node, then answers
 * no heartbeats but the rare ones of its followers.
 *
 * Copyright (c) 2026, pg_cluster developers
 *
 * IDENTIFICATION
 *		src/peer.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "libpq-fe.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/pg_lsn.h"
#include "utils/timestamp.h"

#include "pg_cluster.h"
#include "worker.h"

/*
 * A peer is unreachable when neither its reply to our heartbeat nor a
 * heartbeat of its own arrived for this many heartbeat intervals.
 */
#define MISSED_HEARTBEATS_FOR_UNREACHABLE 3

/*
 * A follower that acknowledged a heartbeat of the leader it follows within
 * the last LEADER_HEARD_WITHIN_HALVES / 2 intervals sends it a heartbeat
 * of its own only every FOLLOWER_TO_LEADER_EVERY intervals: what only a
 * reply carries (the leader's state and priority, the round trip) stays
 * that fresh.
 */
#define LEADER_HEARD_WITHIN_HALVES	3
#define FOLLOWER_TO_LEADER_EVERY	10

/* Retry delays for a peer that refused us (it belongs to another cluster). */
#define REFUSED_RETRY_MIN_MS	1000
#define REFUSED_RETRY_MAX_MS	10000

typedef enum PeerState
{
	PEER_DISCONNECTED = 0,		/* no connection; retry at next_attempt_at */
	PEER_CONNECTING,			/* PQconnectPoll in progress */
	PEER_IDLE,					/* connected, no heartbeat in flight */
	PEER_AWAITING_REPLY			/* heartbeat sent, reply not complete */
} PeerState;

/* What the request in flight on a connection is. */
typedef enum PeerRequestKind
{
	PEER_REQUEST_PREPARE = 0,	/* preparing the heartbeat statement */
	PEER_REQUEST_HEARTBEAT,
	PEER_REQUEST_VOTE,
	PEER_REQUEST_HANDOVER
} PeerRequestKind;

typedef struct Peer
{
	char		name[PGC_NAME_LEN];
	char		host[PGC_HOST_LEN];
	int			port;

	PeerState	state;
	PGconn	   *conn;
	bool		holds_external_fd;
	PostgresPollingStatusType poll_status;	/* while CONNECTING */
	bool		flush_pending;	/* while AWAITING_REPLY */
	bool		heartbeat_prepared; /* on this connection */
	int			wait_position;	/* in the worker's WaitEventSet, or -1 */
	uint32		wait_events;	/* registered there */

	TimestampTz deadline;		/* of CONNECTING and AWAITING_REPLY */
	TimestampTz next_attempt_at;	/* of DISCONNECTED */
	TimestampTz sent_at;		/* of the request in flight */
	TimestampTz heartbeat_sent_at;	/* of the last heartbeat sent */
	uint64		leader_reply_term;	/* term of its last reply if that showed
									 * it leading (state "leader"), else 0 */
	PeerRequestKind in_flight;
	PgClusterVoteRequest in_flight_vote;
	bool		vote_pending;	/* a vote request waits to be sent */
	PgClusterVoteRequest pending_vote;
	bool		handover_pending;	/* a handover request waits to be sent */
	bool		handover_unanswered;	/* one went out, no answer yet */
	PgClusterHandoverRequest pending_handover;
	int			refused_retry_ms;	/* current back-off after a refusal */

	/* what the reachability check last published, to log transitions */
	bool		reachable;
	bool		ever_reachable;
} Peer;

typedef void (*PeerAction) (Peer *peer, TimestampTz now);
typedef uint32 (*PeerWaitEvents) (Peer *peer);

/*
 * The state table: what each state waits for, what a heartbeat tick and a
 * ready socket do in it, and whether it has a deadline.
 */
typedef struct PeerStateInfo
{
	const char *name;			/* shown as pg_cluster.nodes.connection */
	PeerWaitEvents wait_events;
	PeerAction on_tick;
	PeerAction on_socket;
	bool		has_deadline;
} PeerStateInfo;

static void PeerStartConnecting(Peer *peer, TimestampTz now);
static void PeerContinueConnecting(Peer *peer, TimestampTz now);
static void PeerSendHeartbeat(Peer *peer, TimestampTz now);
static void PeerSendNext(Peer *peer, TimestampTz now);
static void PeerReadReply(Peer *peer, TimestampTz now);
static void PeerReadWhileIdle(Peer *peer, TimestampTz now);
static uint32 PeerConnectWaitEvents(Peer *peer);
static uint32 PeerIdleWaitEvents(Peer *peer);
static uint32 PeerReplyWaitEvents(Peer *peer);

static const PeerStateInfo peer_states[] = {
	[PEER_DISCONNECTED] = {"disconnected", NULL, PeerStartConnecting, NULL, false},
	[PEER_CONNECTING] = {"connecting", PeerConnectWaitEvents, NULL, PeerContinueConnecting, true},
	[PEER_IDLE] = {"connected", PeerIdleWaitEvents, PeerSendNext, PeerReadWhileIdle, false},
	[PEER_AWAITING_REPLY] = {"connected", PeerReplyWaitEvents, NULL, PeerReadReply, true},
};

static Peer peers[PGC_MAX_NODES];
static int	peer_count = 0;

/*
 * Changes whenever a peer's socket may have been replaced (a connection
 * opened, polled or closed) or a Peer moved in the array: the worker keeps
 * one WaitEventSet while it stays the same, and builds a new one when it
 * changes.  A closed socket leaves the kernel's epoll set by itself, and a
 * new one may reuse its number, so a set is never patched for those.
 */
static uint64 sockets_generation = 0;

static const char heartbeat_query[] =
"SELECT node_name, system_identifier, role, term, leader, timeline, lsn, protocol_version, "
"is_leader, ack, pause_version, paused, priority, state, sync_version, sync_term, wal_term "
"FROM pg_cluster.heartbeat($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)";

#define HEARTBEAT_REPLY_COLUMNS 17
#define HEARTBEAT_PARAMS 18
#define HEARTBEAT_STATEMENT "pg_cluster_heartbeat"

static const char vote_query[] =
"SELECT term, granted, reason "
"FROM pg_cluster.request_vote($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)";

static const char handover_query[] =
"SELECT accepted, reason "
"FROM pg_cluster.handover($1, $2, $3, $4, $5, $6)";

/*
 * WITH_NODE_ENTRY runs "body" with "entry" pointing at the shared node entry
 * of "peer", under the exclusive lock.  Nothing runs if a reload removed the
 * node.  The body must not raise errors or take other locks.
 */
#define WITH_NODE_ENTRY(peer, entry, body) \
	do { \
		int			idx_; \
		LWLockAcquire(PgClusterShmem->lock, LW_EXCLUSIVE); \
		idx_ = PgClusterFindNode((peer)->name); \
		if (idx_ >= 0) \
		{ \
			PgClusterNodeEntry *entry = &PgClusterShmem->nodes[idx_]; \
			body; \
		} \
		LWLockRelease(PgClusterShmem->lock); \
	} while (0)

static void
PeerSetState(Peer *peer, PeerState state)
{
	peer->state = state;
	WITH_NODE_ENTRY(peer, entry, entry->connection_state = peer_states[state].name);
}

/* PeerCloseConnection closes the connection quietly and frees its fd. */
static void
PeerCloseConnection(Peer *peer)
{
	if (peer->conn != NULL)
	{
		sockets_generation++;
		/* read what is pending so the peer does not log a reset connection */
		if (PQstatus(peer->conn) == CONNECTION_OK)
			(void) PQconsumeInput(peer->conn);
		PQfinish(peer->conn);
		peer->conn = NULL;
	}
	if (peer->holds_external_fd)
	{
		ReleaseExternalFD();
		peer->holds_external_fd = false;
	}
	peer->flush_pending = false;
	peer->heartbeat_prepared = false;
	/* a new connection starts with a heartbeat, even to the leader */
	peer->heartbeat_sent_at = 0;
	peer->leader_reply_term = 0;
}

/*
 * FlattenReason copies a libpq message into one line: server messages span
 * several lines, which would split events and log entries.
 */
static void
FlattenReason(char *dst, const char *src, size_t len)
{
	size_t		j = 0;

	for (size_t i = 0; src[i] != '\0' && j + 1 < len; i++)
	{
		char		c = (src[i] == '\n' || src[i] == '\t') ? ' ' : src[i];

		if (c == ' ' && j > 0 && dst[j - 1] == ' ')
			continue;
		dst[j++] = c;
	}
	while (j > 0 && dst[j - 1] == ' ')
		j--;
	dst[j] = '\0';
}

/*
 * PeerFail closes the connection after a failure, records why, and
 * schedules the next attempt: at the next heartbeat normally, later and
 * later for a peer that refused us.
 */
static void
PeerFail(Peer *peer, TimestampTz now, bool refused, const char *raw_reason)
{
	bool		newly_refused = false;
	char		reason[PGC_ERROR_LEN];

	FlattenReason(reason, raw_reason, sizeof(reason));

	/*
	 * A handover request lost with its connection has an unknown outcome;
	 * one that was never sent is simply refused.
	 */
	if (peer->handover_unanswered)
	{
		peer->handover_unanswered = false;
		SwitchoverHandleHandoverReply(peer->name, false, true, reason);
	}
	if (peer->handover_pending)
	{
		peer->handover_pending = false;
		SwitchoverHandleHandoverReply(peer->name, false, false, reason);
	}
	PeerCloseConnection(peer);

	if (refused)
	{
		peer->refused_retry_ms = Min(Max(peer->refused_retry_ms * 2,
										 REFUSED_RETRY_MIN_MS),
									 REFUSED_RETRY_MAX_MS);
		peer->next_attempt_at = TimestampTzPlusMilliseconds(now, peer->refused_retry_ms);
	}
	else
		peer->next_attempt_at = now;

	WITH_NODE_ENTRY(peer, entry,
		{
			newly_refused = refused && !entry->refused;
			entry->refused = refused;
			strlcpy(entry->last_error, reason, PGC_ERROR_LEN);
		});
	if (newly_refused)
		PgClusterRecordEvent("peer_refused", peer->name, "%s", reason);

	PeerSetState(peer, PEER_DISCONNECTED);
}

static void
PeerNoticeReceiver(void *arg, const PGresult *res)
{
	Peer	   *peer = arg;

	ereport(DEBUG1,
			(errmsg_internal("pg_cluster: notice from peer \"%s\": %s",
							 peer->name, PQresultErrorMessage(res))));
}

/* DISCONNECTED, on tick: open a new connection when the retry time came. */
static void
PeerStartConnecting(Peer *peer, TimestampTz now)
{
	char	   *conninfo;

	if (now < peer->next_attempt_at)
		return;

	if (!AcquireExternalFD())
	{
		PeerFail(peer, now, false, "too many open files in the worker");
		return;
	}
	peer->holds_external_fd = true;

	conninfo = PgClusterPeerConninfoFor(peer->host, peer->port, "heartbeat",
										PgClusterConnectTimeoutMs);
	peer->conn = PQconnectStart(conninfo);
	pfree(conninfo);
	sockets_generation++;

	if (peer->conn == NULL || PQstatus(peer->conn) == CONNECTION_BAD)
	{
		char		reason[PGC_ERROR_LEN];

		snprintf(reason, sizeof(reason), "could not start connection: %s",
				 peer->conn ? pchomp(PQerrorMessage(peer->conn)) : "out of memory");
		PeerFail(peer, now, false, reason);
		return;
	}
	PQsetNoticeReceiver(peer->conn, PeerNoticeReceiver, peer);
	peer->poll_status = PGRES_POLLING_WRITING;
	peer->deadline = TimestampTzPlusMilliseconds(now, PgClusterConnectTimeoutMs);
	PeerSetState(peer, PEER_CONNECTING);
}

static uint32
PeerConnectWaitEvents(Peer *peer)
{
	return peer->poll_status == PGRES_POLLING_READING ?
		WL_SOCKET_READABLE : WL_SOCKET_WRITEABLE;
}

/* CONNECTING, socket ready: advance libpq's connection state machine. */
static void
PeerContinueConnecting(Peer *peer, TimestampTz now)
{
	peer->poll_status = PQconnectPoll(peer->conn);
	sockets_generation++;		/* libpq may have moved to another socket */

	switch (peer->poll_status)
	{
		case PGRES_POLLING_OK:
			if (PQsetnonblocking(peer->conn, 1) != 0)
			{
				PeerFail(peer, now, false, "could not make the connection non-blocking");
				return;
			}
			PeerSetState(peer, PEER_IDLE);
			/* do not wait for the next tick to say hello */
			PeerSendNext(peer, now);
			break;
		case PGRES_POLLING_FAILED:
			{
				char		reason[PGC_ERROR_LEN];

				snprintf(reason, sizeof(reason), "connection failed: %s",
						 pchomp(PQerrorMessage(peer->conn)));
				PeerFail(peer, now, false, reason);
			}
			break;
		default:
			/* still reading or writing: wait for the socket again */
			break;
	}
}

/*
 * PeerAwaitReply follows a PQsend* call ("sent" is its result) of a request
 * of the given kind: it flushes what it can without blocking and moves to
 * AWAITING_REPLY with a deadline.
 */
static void
PeerAwaitReply(Peer *peer, TimestampTz now, PeerRequestKind kind, int sent)
{
	int			rc;

	if (!sent)
	{
		char		reason[PGC_ERROR_LEN];

		snprintf(reason, sizeof(reason), "could not send request: %s",
				 pchomp(PQerrorMessage(peer->conn)));
		PeerFail(peer, now, false, reason);
		return;
	}
	rc = PQflush(peer->conn);
	if (rc < 0)
	{
		PeerFail(peer, now, false, "could not send request");
		return;
	}
	peer->flush_pending = (rc == 1);
	peer->sent_at = now;
	peer->in_flight = kind;
	peer->deadline = TimestampTzPlusMilliseconds(now, PgClusterConnectTimeoutMs);
	PeerSetState(peer, PEER_AWAITING_REPLY);
}

/* PeerSendHeartbeat sends a heartbeat carrying this node's view. */
static void
PeerSendHeartbeat(Peer *peer, TimestampTz now)
{
	PgClusterNodeView view;
	char		sysid[32];
	char		term[32];
	char		timeline[16];
	char		lsn[32];
	char		version[16];
	char		pause_version[32];
	char		sync_version[32];
	char		sync_term[32];
	char		wal_term[32];
	char		wal_term_lsn[32];
	PgClusterDurableState durable;
	const char *params[HEARTBEAT_PARAMS];

	PgClusterLocalView(&view);
	PgClusterDurableSnapshot(&durable);
	snprintf(sysid, sizeof(sysid), UINT64_FORMAT, view.system_identifier);
	snprintf(term, sizeof(term), UINT64_FORMAT, view.term);
	snprintf(timeline, sizeof(timeline), "%u", view.timeline);
	snprintf(lsn, sizeof(lsn), "%X/%X", LSN_FORMAT_ARGS(view.lsn));
	snprintf(version, sizeof(version), "%d", PGC_PROTOCOL_VERSION);
	snprintf(pause_version, sizeof(pause_version), UINT64_FORMAT, view.pause_version);

	params[0] = PgClusterNodeName;
	params[1] = sysid;
	params[2] = PgClusterRoleName(view.role);
	params[3] = term;
	params[4] = view.leader[0] ? view.leader : NULL;
	params[5] = timeline;
	params[6] = lsn;
	params[7] = timestamptz_to_str(view.sent_at);
	params[8] = version;
	params[9] = view.is_leader ? "t" : "f";
	params[10] = pause_version;
	params[11] = view.paused ? "t" : "f";
	snprintf(sync_version, sizeof(sync_version), UINT64_FORMAT, durable.sync.version);
	snprintf(sync_term, sizeof(sync_term), UINT64_FORMAT, durable.sync.term);
	params[12] = sync_version;
	params[13] = durable.sync.restricted ? "t" : "f";
	params[14] = durable.sync.eligible;
	params[15] = sync_term;
	snprintf(wal_term, sizeof(wal_term), UINT64_FORMAT, view.wal_term);
	snprintf(wal_term_lsn, sizeof(wal_term_lsn), "%X/%X", LSN_FORMAT_ARGS(view.wal_term_lsn));
	params[16] = wal_term;
	params[17] = wal_term_lsn;

	PeerAwaitReply(peer, now, PEER_REQUEST_HEARTBEAT,
				   PQsendQueryPrepared(peer->conn, HEARTBEAT_STATEMENT, lengthof(params),
									   params, NULL, NULL, 0));
	if (peer->state == PEER_AWAITING_REPLY)
	{
		peer->heartbeat_sent_at = now;
		WITH_NODE_ENTRY(peer, entry, entry->heartbeats_sent++);
	}
}

/*
 * LeaderHeartbeatsUs says whether this node may skip its heartbeat to
 * "peer" at this tick: this node follows peer as the leader of its term,
 * acknowledged a heartbeat of it lately, has seen it in state "leader" in
 * a reply of this term (until then its state, which only replies carry,
 * changes fast: a switchover waits for it), and sent it a heartbeat less
 * than FOLLOWER_TO_LEADER_EVERY intervals ago.  A leader whose heartbeats
 * stop is heartbeated again from the next tick on.
 */
static bool
LeaderHeartbeatsUs(Peer *peer, TimestampTz now)
{
	int64		window_us = (int64) PgClusterHeartbeatIntervalMs * 1000 *
		LEADER_HEARD_WITHIN_HALVES / 2;
	bool		heartbeats_us = false;
	int			i;

	if (now - peer->heartbeat_sent_at >=
		(int64) PgClusterHeartbeatIntervalMs * 1000 * FOLLOWER_TO_LEADER_EVERY)
		return false;
	LWLockAcquire(PgClusterShmem->durable_lock, LW_SHARED);
	LWLockAcquire(PgClusterShmem->lock, LW_SHARED);
	i = PgClusterFindNode(peer->name);
	heartbeats_us = i >= 0 && !PgClusterShmem->is_leader &&
		strcmp(PgClusterShmem->leader, peer->name) == 0 &&
		peer->leader_reply_term == PgClusterShmem->durable.term &&
		now - PgClusterShmem->last_leader_contact < window_us &&
		now - PgClusterShmem->nodes[i].last_heard_at < window_us;
	LWLockRelease(PgClusterShmem->lock);
	LWLockRelease(PgClusterShmem->durable_lock);
	return heartbeats_us;
}

/* PeerSendVote sends the pending (pre-)vote request. */
static void
PeerSendVote(Peer *peer, TimestampTz now)
{
	const PgClusterVoteRequest *req = &peer->pending_vote;
	char		sysid[32];
	char		term[32];
	char		timeline[16];
	char		lsn[32];
	char		version[16];
	char		sync_version[32];
	char		sync_term[32];
	char		wal_term[32];
	const char *params[13];

	snprintf(sysid, sizeof(sysid), UINT64_FORMAT, PgClusterLocalSystemIdentifier());
	snprintf(term, sizeof(term), UINT64_FORMAT, req->term);
	snprintf(sync_version, sizeof(sync_version), UINT64_FORMAT, req->sync.version);
	snprintf(sync_term, sizeof(sync_term), UINT64_FORMAT, req->sync.term);
	snprintf(timeline, sizeof(timeline), "%u", req->timeline);
	snprintf(lsn, sizeof(lsn), "%X/%X", LSN_FORMAT_ARGS(req->lsn));
	snprintf(version, sizeof(version), "%d", PGC_PROTOCOL_VERSION);
	params[0] = req->candidate;
	params[1] = sysid;
	params[2] = term;
	params[3] = timeline;
	params[4] = lsn;
	params[5] = req->pre_vote ? "t" : "f";
	params[6] = version;
	params[7] = req->transfer_from[0] ? req->transfer_from : NULL;
	params[8] = sync_version;
	params[9] = sync_term;
	params[10] = req->sync.restricted ? "t" : "f";
	params[11] = req->sync.eligible;
	snprintf(wal_term, sizeof(wal_term), UINT64_FORMAT, req->wal_term);
	params[12] = wal_term;

	peer->in_flight_vote = *req;
	peer->vote_pending = false;
	PeerAwaitReply(peer, now, PEER_REQUEST_VOTE,
				   PQsendQueryParams(peer->conn, vote_query, lengthof(params), NULL,
									 params, NULL, NULL, 0));
}

/* PeerSendHandover sends the pending handover request. */
static void
PeerSendHandover(Peer *peer, TimestampTz now)
{
	const PgClusterHandoverRequest *req = &peer->pending_handover;
	char		sysid[32];
	char		term[32];
	char		lsn[32];
	char		timeout[16];
	char		version[16];
	const char *params[6];

	snprintf(sysid, sizeof(sysid), UINT64_FORMAT, PgClusterLocalSystemIdentifier());
	snprintf(term, sizeof(term), UINT64_FORMAT, req->term);
	snprintf(lsn, sizeof(lsn), "%X/%X", LSN_FORMAT_ARGS(req->lsn));
	snprintf(timeout, sizeof(timeout), "%d", req->timeout_ms);
	snprintf(version, sizeof(version), "%d", PGC_PROTOCOL_VERSION);
	params[0] = PgClusterNodeName;
	params[1] = sysid;
	params[2] = term;
	params[3] = lsn;
	params[4] = timeout;
	params[5] = version;

	peer->handover_pending = false;
	peer->handover_unanswered = true;
	PeerAwaitReply(peer, now, PEER_REQUEST_HANDOVER,
				   PQsendQueryParams(peer->conn, handover_query, lengthof(params), NULL,
									 params, NULL, NULL, 0));
}

/*
 * PeerSendPending sends a queued request, if any: votes first (an election
 * is the most urgent), then a handover.  Returns whether it sent one.
 */
static bool
PeerSendPending(Peer *peer, TimestampTz now)
{
	if (peer->vote_pending)
		PeerSendVote(peer, now);
	else if (peer->handover_pending)
		PeerSendHandover(peer, now);
	else
		return false;
	return true;
}

/*
 * IDLE, on tick or when a request waits: a queued request, else a
 * heartbeat, prepared first on a new connection (and again at the next
 * tick if preparing failed: the extension may not be created there yet).
 */
static void
PeerSendNext(Peer *peer, TimestampTz now)
{
	if (PeerSendPending(peer, now))
		return;
	if (peer->heartbeat_prepared)
	{
		if (!LeaderHeartbeatsUs(peer, now))
			PeerSendHeartbeat(peer, now);
	}
	else
		PeerAwaitReply(peer, now, PEER_REQUEST_PREPARE,
					   PQsendPrepare(peer->conn, HEARTBEAT_STATEMENT, heartbeat_query,
									 HEARTBEAT_PARAMS, NULL));
}

/*
 * PeerConnectionsRequestVotes queues a vote request to every peer; idle
 * connections send it at once, busy ones right after their reply.
 */
void
PeerConnectionsRequestVotes(const PgClusterVoteRequest *req)
{
	TimestampTz now = GetCurrentTimestamp();

	for (int i = 0; i < peer_count; i++)
	{
		peers[i].pending_vote = *req;
		peers[i].vote_pending = true;
		if (peers[i].state == PEER_IDLE)
			PeerSendVote(&peers[i], now);
	}
}

/*
 * PeerConnectionsRequestHandover queues a handover request to the named
 * peer.  Returns false if that peer has no connection: the request could
 * not even be sent.
 */
bool
PeerConnectionsRequestHandover(const char *name, const PgClusterHandoverRequest *req)
{
	TimestampTz now = GetCurrentTimestamp();

	for (int i = 0; i < peer_count; i++)
	{
		Peer	   *peer = &peers[i];

		if (strcmp(peer->name, name) != 0)
			continue;
		if (peer->state != PEER_IDLE && peer->state != PEER_AWAITING_REPLY)
			return false;
		peer->pending_handover = *req;
		peer->handover_pending = true;
		if (peer->state == PEER_IDLE)
			PeerSendHandover(peer, now);
		return true;
	}
	return false;
}

/*
 * An idle connection is watched too: the peer closing it (a restart, an
 * administrator's pg_terminate_backend) is noticed at once instead of at
 * the next heartbeat, and the worker's WaitEventSet need not change every
 * time a reply comes in.
 */
static uint32
PeerIdleWaitEvents(Peer *peer)
{
	return WL_SOCKET_READABLE;
}

/*
 * IDLE, socket readable: with no request in flight, only a notice, a
 * parameter change or the end of the connection can arrive.  libpq takes
 * the first two in; the last is a failure like any other.
 */
static void
PeerReadWhileIdle(Peer *peer, TimestampTz now)
{
	char		reason[PGC_ERROR_LEN];

	if (PQconsumeInput(peer->conn))
		return;
	snprintf(reason, sizeof(reason), "connection lost: %s",
			 pchomp(PQerrorMessage(peer->conn)));
	PeerFail(peer, now, false, reason);
}

static uint32
PeerReplyWaitEvents(Peer *peer)
{
	return WL_SOCKET_READABLE | (peer->flush_pending ? WL_SOCKET_WRITEABLE : 0);
}

/*
 * DescribeHeartbeatError says why preparing or running the heartbeat
 * failed; returns whether the peer refused us (it is not a member of this
 * cluster).
 */
static bool
DescribeHeartbeatError(PGresult *res, char *reason, size_t reasonlen)
{
	const char *sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char *message = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);

	if (sqlstate != NULL && strcmp(sqlstate, "PC001") == 0)
	{
		snprintf(reason, reasonlen, "peer refused our heartbeat: %s: %s",
				 message ? message : "", detail ? detail : "");
		return true;
	}
	if (sqlstate != NULL &&
		(strcmp(sqlstate, "42883") == 0 || strcmp(sqlstate, "3F000") == 0))
		snprintf(reason, reasonlen,
				 "extension pg_cluster is not installed on the peer: %s",
				 message ? message : "");
	else
		snprintf(reason, reasonlen, "heartbeat failed: %s",
				 pchomp(PQresultErrorMessage(res)));
	return false;
}

/*
 * PeerParseReply checks a heartbeat reply and turns it into a view.  It
 * returns false with a reason, and sets *refused when the peer must not be
 * treated as a member of this cluster.
 */
static bool
PeerParseReply(Peer *peer, PGresult *res, PgClusterNodeView *view, bool *acked,
			   bool *refused, char *reason, size_t reasonlen)
{
	const char *name;
	const char *leader;
	uint32		hi,
				lo;
	int			version;

	*refused = false;
	*acked = false;
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		*refused = DescribeHeartbeatError(res, reason, reasonlen);
		return false;
	}
	if (PQntuples(res) != 1 || PQnfields(res) != HEARTBEAT_REPLY_COLUMNS)
	{
		snprintf(reason, reasonlen, "heartbeat returned %d rows of %d columns",
				 PQntuples(res), PQnfields(res));
		return false;
	}

	version = atoi(PQgetvalue(res, 0, 7));
	if (version != PGC_PROTOCOL_VERSION)
	{
		*refused = true;
		snprintf(reason, reasonlen, "peer speaks protocol version %d, we speak %d",
				 version, PGC_PROTOCOL_VERSION);
		return false;
	}

	name = PQgetvalue(res, 0, 0);
	if (strcmp(name, peer->name) != 0)
	{
		*refused = true;
		snprintf(reason, reasonlen, "%s:%d answers as node \"%s\", not \"%s\"",
				 peer->host, peer->port, name, peer->name);
		return false;
	}

	memset(view, 0, sizeof(*view));
	view->system_identifier = strtou64(PQgetvalue(res, 0, 1), NULL, 10);
	view->role = PgClusterRoleFromName(PQgetvalue(res, 0, 2));
	view->term = strtou64(PQgetvalue(res, 0, 3), NULL, 10);
	leader = PQgetisnull(res, 0, 4) ? "" : PQgetvalue(res, 0, 4);
	strlcpy(view->leader, leader, PGC_NAME_LEN);
	view->timeline = (TimeLineID) strtoul(PQgetvalue(res, 0, 5), NULL, 10);
	if (PQgetisnull(res, 0, 6) ||
		sscanf(PQgetvalue(res, 0, 6), "%X/%X", &hi, &lo) != 2)
		view->lsn = InvalidXLogRecPtr;
	else
		view->lsn = ((uint64) hi) << 32 | lo;
	view->is_leader = strcmp(PQgetvalue(res, 0, 8), "t") == 0;
	*acked = strcmp(PQgetvalue(res, 0, 9), "t") == 0;
	view->pause_version = strtou64(PQgetvalue(res, 0, 10), NULL, 10);
	view->paused = strcmp(PQgetvalue(res, 0, 11), "t") == 0;
	view->priority = atoi(PQgetvalue(res, 0, 12));
	view->state = PgClusterStateFromName(PQgetvalue(res, 0, 13));
	view->sync_version = strtou64(PQgetvalue(res, 0, 14), NULL, 10);
	view->sync_term = strtou64(PQgetvalue(res, 0, 15), NULL, 10);
	view->wal_term = strtou64(PQgetvalue(res, 0, 16), NULL, 10);

	if (!WorkerAcceptClusterIdentifier(view->system_identifier, view->role,
									   reason, reasonlen))
	{
		*refused = true;
		return false;
	}
	return true;
}

/*
 * PeerRecordReply stores a good heartbeat reply and acts on it: a higher
 * term is adopted (a leader steps down), an acknowledgement extends the
 * lease, and a reply from the leader counts as contact with it.
 */
static void
PeerRecordReply(Peer *peer, const PgClusterNodeView *view, bool acked, TimestampTz now)
{
	uint64		our_term;
	bool		heard_leader = false;

	peer->refused_retry_ms = 0;
	peer->leader_reply_term = view->state == PGC_STATE_LEADER ? view->term : 0;
	WITH_NODE_ENTRY(peer, entry,
		{
			entry->view = *view;
			entry->view_valid = true;
			entry->view_received_at = now;
			entry->last_reply_at = now;
			entry->last_rtt_us = now - peer->sent_at;
			entry->heartbeats_answered++;
			entry->refused = false;
			entry->last_error[0] = '\0';
		});

	if (view->term > 0)
		PgClusterAdoptTerm(view->term, peer->name);
	if (view->pause_version > 0)
		PgClusterAdoptPause(view->pause_version, view->paused, peer->name);

	LWLockAcquire(PgClusterShmem->durable_lock, LW_SHARED);
	our_term = PgClusterShmem->durable.term;
	LWLockAcquire(PgClusterShmem->lock, LW_EXCLUSIVE);
	if (view->term == our_term)
	{
		int			idx = PgClusterFindNode(peer->name);

		if (acked && idx >= 0)
		{
			PgClusterShmem->nodes[idx].acked_term = our_term;
			PgClusterShmem->nodes[idx].acked_sent_at = peer->sent_at;
			PgClusterShmem->nodes[idx].acked_sync_term = view->sync_term;
			PgClusterShmem->nodes[idx].acked_sync_version = view->sync_version;
		}
		if (view->is_leader && !PgClusterShmem->is_leader)
		{
			strlcpy(PgClusterShmem->leader, peer->name, PGC_NAME_LEN);
			PgClusterShmem->last_leader_contact = now;
			PgClusterRaiseLeaderProgressLocked(view->wal_term, view->timeline, view->lsn);
			heard_leader = true;
		}
	}
	LWLockRelease(PgClusterShmem->lock);
	LWLockRelease(PgClusterShmem->durable_lock);
	if (heard_leader)
		PgClusterPersistLeaderProgress();
}

/* PeerHandlePrepareReply notes whether the heartbeat statement is ready. */
static void
PeerHandlePrepareReply(Peer *peer, PGresult *res)
{
	char		reason[PGC_ERROR_LEN];

	if (PQresultStatus(res) == PGRES_COMMAND_OK)
	{
		peer->heartbeat_prepared = true;
		return;
	}
	(void) DescribeHeartbeatError(res, reason, sizeof(reason));
	WITH_NODE_ENTRY(peer, entry, strlcpy(entry->last_error, reason, PGC_ERROR_LEN));
}

/* PeerHandleVoteReply passes a vote answer to the election. */
static void
PeerHandleVoteReply(Peer *peer, PGresult *res)
{
	const PgClusterVoteRequest *req = &peer->in_flight_vote;
	int			idx;

	LWLockAcquire(PgClusterShmem->lock, LW_SHARED);
	idx = PgClusterFindNode(peer->name);
	LWLockRelease(PgClusterShmem->lock);

	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 || PQnfields(res) != 3)
	{
		ElectionHandleVoteReply(idx, peer->name, req->term, req->pre_vote, false, 0,
								pchomp(PQresultErrorMessage(res)));
		return;
	}
	ElectionHandleVoteReply(idx, peer->name, req->term, req->pre_vote,
							strcmp(PQgetvalue(res, 0, 1), "t") == 0,
							strtou64(PQgetvalue(res, 0, 0), NULL, 10),
							PQgetvalue(res, 0, 2));
}

/* PeerHandleHandoverReply passes the target's answer to the switchover. */
static void
PeerHandleHandoverReply(Peer *peer, PGresult *res)
{
	peer->handover_unanswered = false;

	/*
	 * Only a row saying "not accepted" is a refusal.  An error may come
	 * after the target recorded the handover (a timeout, an error while
	 * sending the row), so its outcome is unclear.
	 */
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 || PQnfields(res) != 2)
	{
		char		reason[PGC_ERROR_LEN];

		FlattenReason(reason, PQresultErrorMessage(res), sizeof(reason));
		SwitchoverHandleHandoverReply(peer->name, false, true, reason);
		return;
	}
	SwitchoverHandleHandoverReply(peer->name, strcmp(PQgetvalue(res, 0, 0), "t") == 0,
								  false, PQgetvalue(res, 0, 1));
}

/* AWAITING_REPLY, socket ready: finish sending, then read the reply. */
static void
PeerReadReply(Peer *peer, TimestampTz now)
{
	if (peer->flush_pending)
	{
		int			rc = PQflush(peer->conn);

		if (rc < 0)
		{
			PeerFail(peer, now, false, "could not send heartbeat");
			return;
		}
		peer->flush_pending = (rc == 1);
	}

	if (!PQconsumeInput(peer->conn))
	{
		char		reason[PGC_ERROR_LEN];

		snprintf(reason, sizeof(reason), "connection lost: %s",
				 pchomp(PQerrorMessage(peer->conn)));
		PeerFail(peer, now, false, reason);
		return;
	}

	while (!PQisBusy(peer->conn))
	{
		PGresult   *res = PQgetResult(peer->conn);
		PgClusterNodeView view;
		bool		refused;
		bool		acked;
		char		reason[PGC_ERROR_LEN];

		if (res == NULL)
		{
			/*
			 * The whole reply is in; a queued request goes out now, and on a
			 * new connection the first heartbeat as soon as it is prepared.
			 */
			bool		say_hello = peer->in_flight == PEER_REQUEST_PREPARE &&
				peer->heartbeat_prepared;

			PeerSetState(peer, PEER_IDLE);
			if (say_hello)
				PeerSendNext(peer, now);
			else
				(void) PeerSendPending(peer, now);
			return;
		}
		if (peer->in_flight == PEER_REQUEST_PREPARE)
			PeerHandlePrepareReply(peer, res);
		else if (peer->in_flight == PEER_REQUEST_VOTE)
			PeerHandleVoteReply(peer, res);
		else if (peer->in_flight == PEER_REQUEST_HANDOVER)
			PeerHandleHandoverReply(peer, res);
		else if (PeerParseReply(peer, res, &view, &acked, &refused, reason, sizeof(reason)))
			PeerRecordReply(peer, &view, acked, now);
		else if (refused)
		{
			PQclear(res);
			PeerFail(peer, now, true, reason);
			return;
		}
		else
			WITH_NODE_ENTRY(peer, entry,
							strlcpy(entry->last_error, reason, PGC_ERROR_LEN));
		PQclear(res);
	}
}

/*
 * PeerConnectionsConfigure makes the set of connections follow the peer
 * list: connections to nodes that left the list or moved are closed, new
 * nodes get a fresh (disconnected) entry.
 */
void
PeerConnectionsConfigure(const PgClusterPeerList *list)
{
	Peer		old_peers[PGC_MAX_NODES];
	int			old_count = peer_count;

	memcpy(old_peers, peers, sizeof(peers));
	memset(peers, 0, sizeof(peers));
	peer_count = 0;
	sockets_generation++;		/* the wait set points at the old entries */

	for (int i = 0; list != NULL && i < list->count; i++)
	{
		const PgClusterPeerAddress *addr = &list->nodes[i];
		Peer	   *peer = &peers[peer_count];
		bool		kept = false;

		if (i == list->self_index)
			continue;

		for (int j = 0; j < old_count; j++)
		{
			if (strcmp(old_peers[j].name, addr->name) == 0 &&
				strcmp(old_peers[j].host, addr->host) == 0 &&
				old_peers[j].port == addr->port)
			{
				*peer = old_peers[j];
				old_peers[j].conn = NULL;
				old_peers[j].holds_external_fd = false;
				kept = true;
				break;
			}
		}
		if (!kept)
		{
			strlcpy(peer->name, addr->name, PGC_NAME_LEN);
			strlcpy(peer->host, addr->host, PGC_HOST_LEN);
			peer->port = addr->port;
			peer->state = PEER_DISCONNECTED;
			peer->wait_position = -1;
		}
		peer_count++;
	}

	/* whatever was not carried over is closed */
	for (int j = 0; j < old_count; j++)
		PeerCloseConnection(&old_peers[j]);

	/* the notice receiver points into the array: re-aim it */
	for (int i = 0; i < peer_count; i++)
	{
		if (peers[i].conn != NULL)
			PQsetNoticeReceiver(peers[i].conn, PeerNoticeReceiver, &peers[i]);
	}
}

/*
 * PeerConnectionsCloseAll closes every connection; the next tick reopens
 * them (with the current options).
 */
void
PeerConnectionsCloseAll(void)
{
	for (int i = 0; i < peer_count; i++)
	{
		PeerCloseConnection(&peers[i]);
		peers[i].next_attempt_at = 0;
		PeerSetState(&peers[i], PEER_DISCONNECTED);
	}
}

int
PeerConnectionsCount(void)
{
	return peer_count;
}

/* PeerConnectionsTick runs the heartbeat-tick action of every peer. */
void
PeerConnectionsTick(TimestampTz now)
{
	for (int i = 0; i < peer_count; i++)
	{
		const PeerStateInfo *info = &peer_states[peers[i].state];

		if (info->on_tick)
			info->on_tick(&peers[i], now);
	}
}

/* PeerConnectionsCheckDeadlines fails every peer whose wait expired. */
void
PeerConnectionsCheckDeadlines(TimestampTz now)
{
	for (int i = 0; i < peer_count; i++)
	{
		Peer	   *peer = &peers[i];

		if (peer_states[peer->state].has_deadline && now >= peer->deadline)
			PeerFail(peer, now, false,
					 peer->state == PEER_CONNECTING ?
					 "timed out connecting" : "timed out waiting for a heartbeat reply");
	}
}

/*
 * LastHeardFrom: when the peer last answered our heartbeat or sent one of
 * its own (shared state locked); its own count only while our last request
 * to it did not fail (no last_error): a peer that sends heartbeats but
 * cannot answer ours (the extension dropped there, its durable state
 * damaged) is not reachable, because its answers are what a leader's lease
 * needs.
 */
static TimestampTz
LastHeardFrom(const PgClusterNodeEntry *entry)
{
	if (entry->last_error[0] == '\0')
		return Max(entry->last_reply_at, entry->last_heard_at);
	return entry->last_reply_at;
}

/*
 * PeerConnectionsUpdateReachability publishes which peers are reachable: a
 * peer is reachable while our connection to it is up, it does not refuse
 * us, and we heard from it (LastHeardFrom) within the last
 * MISSED_HEARTBEATS_FOR_UNREACHABLE heartbeat intervals.  Every change is
 * an event.
 */
void
PeerConnectionsUpdateReachability(TimestampTz now)
{
	int64		window_us = (int64) PgClusterHeartbeatIntervalMs * 1000 *
		MISSED_HEARTBEATS_FOR_UNREACHABLE;

	for (int i = 0; i < peer_count; i++)
	{
		Peer	   *peer = &peers[i];
		bool		reachable = false;
		char		reason[PGC_ERROR_LEN] = "";

		WITH_NODE_ENTRY(peer, entry,
			{
				TimestampTz last_heard = LastHeardFrom(entry);

				reachable = !entry->refused &&
					(peer->state == PEER_IDLE || peer->state == PEER_AWAITING_REPLY) &&
					last_heard != 0 && now - last_heard <= window_us;
				entry->reachable = reachable;
				strlcpy(reason, entry->last_error, sizeof(reason));
			});

		if (reachable == peer->reachable)
			continue;
		peer->reachable = reachable;
		if (reachable)
		{
			PgClusterRecordEvent("peer_reachable", peer->name,
								 "peer \"%s\" at %s:%d is reachable",
								 peer->name, peer->host, peer->port);
			peer->ever_reachable = true;
			continue;
		}
		if (reason[0] == '\0')
			snprintf(reason, sizeof(reason),
					 "neither a reply nor a heartbeat from it in the last %d heartbeat intervals",
					 MISSED_HEARTBEATS_FOR_UNREACHABLE);
		PgClusterRecordEvent("peer_unreachable", peer->name,
							 "peer \"%s\" at %s:%d is unreachable: %s",
							 peer->name, peer->host, peer->port, reason);
	}
}

/*
 * PeerConnectionsNextDeadline returns the earliest time after "now" at which
 * a peer needs attention without any socket activity: a connect or reply
 * deadline, or the moment a reachable peer would turn unreachable.
 */
TimestampTz
PeerConnectionsNextDeadline(TimestampTz now)
{
	TimestampTz next = DT_NOEND;
	int64		window_us = (int64) PgClusterHeartbeatIntervalMs * 1000 *
		MISSED_HEARTBEATS_FOR_UNREACHABLE;

	for (int i = 0; i < peer_count; i++)
	{
		Peer	   *peer = &peers[i];

		if (peer_states[peer->state].has_deadline)
			next = Min(next, peer->deadline);
		if (peer->reachable)
		{
			TimestampTz last_heard = 0;

			WITH_NODE_ENTRY(peer, entry, last_heard = LastHeardFrom(entry));
			next = Min(next, last_heard + window_us + 1);
		}
	}
	return next;
}

/* PeerConnectionsSocketsGeneration: see sockets_generation. */
uint64
PeerConnectionsSocketsGeneration(void)
{
	return sockets_generation;
}

/*
 * PeerConnectionsAddWaitEvents adds the socket of every peer that has one
 * to a new "set", with the peer as user data, and notes where.  Returns
 * how many it added.
 */
int
PeerConnectionsAddWaitEvents(WaitEventSet *set)
{
	int			added = 0;

	for (int i = 0; i < peer_count; i++)
	{
		Peer	   *peer = &peers[i];
		const PeerStateInfo *info = &peer_states[peer->state];
		pgsocket	sock;

		peer->wait_position = -1;
		if (info->wait_events == NULL || peer->conn == NULL)
			continue;
		sock = PQsocket(peer->conn);
		if (sock == PGINVALID_SOCKET)
			continue;
		peer->wait_events = info->wait_events(peer);
		peer->wait_position = AddWaitEventToSet(set, peer->wait_events, sock, NULL, peer);
		added++;
	}
	return added;
}

/*
 * PeerConnectionsUpdateWaitEvents adjusts what "set", built by
 * PeerConnectionsAddWaitEvents in the current sockets generation, waits
 * for on each socket: readable, or writable too while a request is only
 * partly sent.  Usually nothing changed, and no system call is made.
 */
void
PeerConnectionsUpdateWaitEvents(WaitEventSet *set)
{
	for (int i = 0; i < peer_count; i++)
	{
		Peer	   *peer = &peers[i];
		const PeerStateInfo *info = &peer_states[peer->state];
		uint32		events;

		if (peer->wait_position < 0)
			continue;
		/* a peer without a socket closed it, which began a new generation */
		Assert(info->wait_events != NULL && peer->conn != NULL);
		events = info->wait_events(peer);
		if (events != peer->wait_events)
		{
			ModifyWaitEvent(set, peer->wait_position, events, NULL);
			peer->wait_events = events;
		}
	}
}

/* PeerConnectionHandleSocket runs the socket action of the peer's state. */
void
PeerConnectionHandleSocket(void *arg, uint32 events, TimestampTz now)
{
	Peer	   *peer = arg;
	const PeerStateInfo *info = &peer_states[peer->state];

	if (info->on_socket)
		info->on_socket(peer, now);
}
