/*
 * election.pml -- Promela model of pg_cluster's election, lease and fencing
 * (docs/protocol.md sections 2-6).  Checked by model/check.sh with spin.
 *
 * Topology (3 voters, majority 2):
 *   default       node 0 = data (bootstrap primary), node 1 = data standby,
 *                 node 2 = witness (votes, never stands)
 *   -DTHREE_DATA  nodes 0, 1, 2 are data nodes (node 0 bootstrap primary)
 *
 * Time is discrete.  One action, TICK, advances the global clock by one
 * tick.  To keep the state space finite, no absolute time is stored: every
 * timestamp is kept relative to "now" and saturates where the protocol
 * stops caring:
 *   contact[i]   ticks since node i's last_leader_contact (saturates at F)
 *   lease[i]     ticks until lease_until of leader i (0 = no valid lease)
 *   hb_lrem      in a heartbeat (and echoed in its reply): lease_duration
 *                minus the ticks since the heartbeat was *sent*, i.e. what
 *                lease_until - now would be if this heartbeat were the
 *                latest one acknowledged (lease = send time + duration)
 *
 * Tunables (all -D):
 *   F       failover_timeout in ticks (default 5)
 *   LEASE   lease_duration in ticks   (default 4)
 *   DRIFT   0 or 1: every V3 check and every standing timer may fire DRIFT
 *           ticks early (a fast local clock), i.e. threshold F - DRIFT
 *   MAXTERM highest term the model explores (default 3)
 *   MAXLSN  highest LSN (default 2)
 *   MAXCRASH total number of crashes over all nodes (default 1)
 *   NOREJOIN  leave out "a demoted primary rejoins as a standby"
 *
 * Protocol fixes found necessary by this model (see model/README.md); off
 * by default, so that the default model is the protocol as written:
 *   SELFVOTE_RECHECK     the candidate's own vote obeys V3: it re-checks
 *                        now - last_leader_contact >= failover_timeout
 *                        when it turns a won pre-vote into a real vote
 *                        (and a pre-candidate that acknowledges a live
 *                        leader gives up its pre-vote round)
 *   WITNESS_LSN_DURABLE  the witness keeps the highest leader LSN it heard
 *                        in its durable state (survives a restart)
 *
 * Properties:
 *   P1  monitor: at no instant two nodes may write (leader of their current
 *       term with lease_until > now, or the bootstrapping primary in term
 *       0); at every commit: commits happen in non-decreasing term order
 *       (an old leader never commits after a newer one did).
 *   P2  at most one leader per term (ghost leader_of[]).
 *   P3  at every granted vote: candidate LSN >= data voter's LSN; candidate
 *       LSN >= every leader LSN the witness ever heard (any incarnation);
 *       at every election win (witness topology): winner LSN >= that value.
 *   REACH=1  assert(false) when some node wins an election (must fail)
 *   REACH=2  assert(false) when a leader of term >= 2 (a failover) commits
 *            under a valid lease (must fail)
 */

#define N     3
#define NONE  3

#ifndef F
#define F 5
#endif
#ifndef LEASE
#define LEASE 4
#endif
#ifndef DRIFT
#define DRIFT 0
#endif
#define FIRE (F - DRIFT)
#ifndef MAXTERM
#define MAXTERM 3
#endif
#ifndef MAXLSN
#define MAXLSN 2
#endif
#ifndef MAXCRASH
#define MAXCRASH 1
#endif
#ifndef MAXMSG
#define MAXMSG 2
#endif

#ifdef THREE_DATA
#define DATA(i) (1)
#else
#define DATA(i) ((i) != 2)
#endif

/* ---------------------------------------------------------------- nodes */

bit  up[N] = 1;
/* durable (pg_cluster.state, plus the WAL position and recovery state) */
byte term[N];            /* term */
byte voted[N] = NONE;    /* voted_for in term */
byte lterm[N];           /* leader_term (leader_name = self implied) */
bit  primary[N];         /* not in recovery */
byte lsn[N];             /* WAL position (data nodes) */
/* volatile */
byte phase[N];           /* 0 waiting, 1 pre-vote round, 2 vote round */
byte contact[N] = F;     /* ticks since last_leader_contact */
byte lease[N];           /* ticks left of the lease */
byte heard[N];           /* witness: highest LSN a leader reported */
byte crashes;

#define LEADER(i) (up[i] && term[i] > 0 && lterm[i] == term[i])
#define BOOTSTRAPPING(i) ((i) == 0 && up[0] && primary[0] && term[0] == 0)
#define WRITABLE(i) ((LEADER(i) && lease[i] > 0) || BOOTSTRAPPING(i))

/* ------------------------------------------------------------- messages */
/*
 * One slot per directed link (index s*N+d) and message kind.  Sending into
 * a full slot overwrites it (the older message is lost).  Any message may
 * be delivered at any later time (delay), dropped (loss), and messages of
 * different kinds or links are delivered in any order (reordering).
 */
#define LNK(s,d) ((s)*N+(d))

/* heartbeat with leadership claim of hb_term */
bit  hb_on[N*N];
byte hb_term[N*N];
byte hb_lrem[N*N];
byte hb_lsn[N*N];        /* only sent to the witness (only it uses it) */
/* heartbeat reply */
bit  hr_on[N*N];
byte hr_term[N*N];
bit  hr_ack[N*N];
byte hr_lrem[N*N];
/* request_vote */
bit  vq_on[N*N];
bit  vq_pre[N*N];
byte vq_term[N*N];
byte vq_lsn[N*N];
/* request_vote reply */
bit  vr_on[N*N];
bit  vr_pre[N*N];
byte vr_rterm[N*N];      /* term the request was for */
byte vr_vterm[N*N];      /* voter's term after the request */
bit  vr_grant[N*N];

/* ---------------------------------------------------------------- ghosts */
byte leader_of[MAXTERM+1] = NONE;   /* P2 */
byte commit_term;                   /* P1: term of the latest commit */
byte w_seen;                        /* P3: highest leader LSN the witness ever heard */

byte nmsg;                          /* messages in flight, <= MAXMSG */

hidden byte k;
hidden byte g;

/* ------------------------------------------------------------- helpers */

/* adopt a higher term durably: vote cleared, any round or leadership ends */
inline ADOPT(i, t) {
	if
	:: t > term[i] ->
		term[i] = t; voted[i] = NONE; phase[i] = 0; lease[i] = 0
	:: else -> skip
	fi
}

/* a request into an empty slot, if the network has room */
#define CAN_SEND(on) (!(on) && nmsg < MAXMSG)
/* a reply (or any message) into a slot: a full slot is overwritten */
#define PUT(on) if :: !(on) -> nmsg++ :: else fi; on = 1
#define TAKE(on) nmsg--; on = 0

/* ------------------------------------------------------------- actions */

/* §4 stand: start a pre-vote round for term + 1 */
inline STAND(i) {
	d_step {
		up[i] && DATA(i) && phase[i] == 0 && term[i] < MAXTERM && !LEADER(i) &&
		   (BOOTSTRAPPING(i) ||
		    (term[i] >= 1 && contact[i] >= FIRE &&
		     (!primary[i] || (i == 0 && lterm[i] == 0)))) ->
		phase[i] = 1
	}
}

/* a candidate sends (or resends) its request of the current round to d */
inline SEND_VQ(s, d) {
	d_step {
		up[s] && phase[s] != 0 && CAN_SEND(vq_on[LNK(s,d)]) ->
		PUT(vq_on[LNK(s,d)]);
		if
		:: phase[s] == 1 -> vq_pre[LNK(s,d)] = 1; vq_term[LNK(s,d)] = term[s] + 1
		:: else ->          vq_pre[LNK(s,d)] = 0; vq_term[LNK(s,d)] = term[s]
		fi;
		vq_lsn[LNK(s,d)] = lsn[s]
	}
}

/* a round times out: back to waiting (term and vote stay) */
inline GIVE_UP(i) {
	d_step { phase[i] != 0 -> phase[i] = 0 }
}

/* leader heartbeat to d (at most one in flight per peer) */
inline SEND_HB(s, d) {
	d_step {
		LEADER(s) && CAN_SEND(hb_on[LNK(s,d)]) ->
		PUT(hb_on[LNK(s,d)]);
		hb_term[LNK(s,d)] = term[s]; hb_lrem[LNK(s,d)] = LEASE;
		hb_lsn[LNK(s,d)] = (DATA(d) -> 0 : lsn[s])
	}
}

/* a commit: pre-commit check passed (leader of current term, now < lease_until) */
inline COMMIT(i) {
	d_step {
		lsn[i] < MAXLSN && WRITABLE(i) ->
		assert(term[i] >= commit_term);       /* P1: no older leader commits after a newer one */
		commit_term = term[i];
#if REACH == 2
		assert(!(term[i] >= 2));              /* reachability probe: a failover leader commits */
#endif
		lsn[i]++
	}
}

/* standby d streams from primary s */
inline CATCH_UP(d, s) {
	d_step {
		up[d] && up[s] && DATA(d) && !primary[d] && primary[s] && lsn[s] > lsn[d] ->
		lsn[d] = lsn[s]
	}
}

/* a demoted primary is rewound and rejoins as a standby of leader s */
inline REJOIN(i, s) {
	d_step {
		up[i] && primary[i] && term[i] > 0 && !LEADER(i) && LEADER(s) ->
		primary[i] = 0; lsn[i] = lsn[s]
	}
}

inline CRASH(i) {
	d_step {
		up[i] && crashes < MAXCRASH ->
		up[i] = 0; crashes++;
		phase[i] = 0; contact[i] = 0; lease[i] = 0;
#ifndef WITNESS_LSN_DURABLE
		heard[i] = 0;
#endif
		skip
	}
}

/* restart: volatile state lost; last_leader_contact = start time (§6);
 * a node with leader_term == term resumes its claim (LEADER() is derived) */
inline RESTART(i) {
	d_step { !up[i] -> up[i] = 1; contact[i] = 0; phase[i] = 0; lease[i] = 0 }
}

/* the global clock advances one tick */
inline TICK() {
	d_step {
		k = 0;
		do
		:: k < N ->
			if :: up[k] && contact[k] < F -> contact[k]++ :: else fi;
			if :: lease[k] > 0 -> lease[k]-- :: else fi;
			k++
		:: else -> break
		od;
		k = 0;
		do
		:: k < N*N ->
			if :: hb_lrem[k] > 0 -> hb_lrem[k]-- :: else fi;
			if :: hr_lrem[k] > 0 -> hr_lrem[k]-- :: else fi;
			k++
		:: else -> break
		od;
		k = 0
	}
}

/* §3.1 heartbeat s -> d */
inline HB_DELIVER(s, d) {
	d_step {
		hb_on[LNK(s,d)] && up[d] ->
		ADOPT(d, hb_term[LNK(s,d)]);
		if
		:: hb_term[LNK(s,d)] == term[d] ->
			assert(!LEADER(d));                 /* P2: two claims of one term */
			contact[d] = 0;
			if :: phase[d] == 2 -> phase[d] = 0 :: else fi;
#ifdef SELFVOTE_RECHECK
			if :: phase[d] == 1 -> phase[d] = 0 :: else fi;
#endif
			if
			:: !DATA(d) ->
				if :: hb_lsn[LNK(s,d)] > heard[d] -> heard[d] = hb_lsn[LNK(s,d)] :: else fi;
				if :: hb_lsn[LNK(s,d)] > w_seen -> w_seen = hb_lsn[LNK(s,d)] :: else fi
			:: else
			fi;
			hr_on[LNK(d,s)] = 1; hr_term[LNK(d,s)] = term[d];
			hr_ack[LNK(d,s)] = 1; hr_lrem[LNK(d,s)] = hb_lrem[LNK(s,d)]
		:: else ->                              /* stale claim: tell the higher term */
			hr_on[LNK(d,s)] = 1; hr_term[LNK(d,s)] = term[d];
			hr_ack[LNK(d,s)] = 0; hr_lrem[LNK(d,s)] = 0
		fi;
		hb_on[LNK(s,d)] = 0; hb_term[LNK(s,d)] = 0; hb_lrem[LNK(s,d)] = 0; hb_lsn[LNK(s,d)] = 0
	}
}

/* heartbeat reply from d arrives at s: §6 lease, leader's own contact */
inline HR_DELIVER(d, s) {
	d_step {
		hr_on[LNK(d,s)] && up[s] ->
		ADOPT(s, hr_term[LNK(d,s)]);
		if
		:: hr_ack[LNK(d,s)] && hr_term[LNK(d,s)] == term[s] && LEADER(s) ->
			contact[s] = 0;                     /* majority acknowledgement (N = 3) */
			/* lease_until = max acked send time + duration (majority-th of 3) */
			if :: hr_lrem[LNK(d,s)] > lease[s] -> lease[s] = hr_lrem[LNK(d,s)] :: else fi
		:: else
		fi;
		hr_on[LNK(d,s)] = 0; hr_term[LNK(d,s)] = 0; hr_ack[LNK(d,s)] = 0; hr_lrem[LNK(d,s)] = 0
	}
}

/* §3.2 request_vote s -> d */
inline VQ_DELIVER(s, d) {
	d_step {
		vq_on[LNK(s,d)] && up[d] ->
		if
		:: vq_pre[LNK(s,d)] ->                  /* pre-vote: changes nothing */
			if
			:: vq_term[LNK(s,d)] >= term[d] &&                      /* V1 */
			      contact[d] >= FIRE &&                             /* V3 */
			      (!DATA(d) || vq_lsn[LNK(s,d)] >= lsn[d]) &&       /* V4 */
			      (DATA(d) || vq_lsn[LNK(s,d)] >= heard[d]) ->   /* V5 */
				g = 1
			:: else -> g = 0
			fi;
			if
			:: g || term[d] >= vq_term[LNK(s,d)] ->
				vr_on[LNK(d,s)] = 1; vr_pre[LNK(d,s)] = 1; vr_grant[LNK(d,s)] = g;
				vr_rterm[LNK(d,s)] = vq_term[LNK(s,d)]; vr_vterm[LNK(d,s)] = term[d]
			:: else
			fi
		:: else ->
			ADOPT(d, vq_term[LNK(s,d)]);                        /* V1 */
			if
			:: vq_term[LNK(s,d)] == term[d] &&
			      (voted[d] == NONE || voted[d] == s) &&            /* V2 */
			      contact[d] >= FIRE &&                             /* V3 */
			      (!DATA(d) || vq_lsn[LNK(s,d)] >= lsn[d]) &&       /* V4 */
			      (DATA(d) || vq_lsn[LNK(s,d)] >= heard[d]) ->   /* V5 */
				g = 1
			:: else -> g = 0
			fi;
			if
			:: g ->
				voted[d] = s;
				/* P3 */
				assert(!DATA(d) || lsn[s] >= lsn[d]);
				assert(DATA(d) || lsn[s] >= w_seen)
			:: else
			fi;
			if
			:: g || term[d] > vq_term[LNK(s,d)] ->
				vr_on[LNK(d,s)] = 1; vr_pre[LNK(d,s)] = 0; vr_grant[LNK(d,s)] = g;
				vr_rterm[LNK(d,s)] = vq_term[LNK(s,d)]; vr_vterm[LNK(d,s)] = term[d]
			:: else
			fi
		fi;
		g = 0;
		vq_on[LNK(s,d)] = 0; vq_pre[LNK(s,d)] = 0; vq_term[LNK(s,d)] = 0; vq_lsn[LNK(s,d)] = 0
	}
}

/* reply from d arrives at candidate s (a, b: the peers of s) */
inline VR_DELIVER(d, s, a, b) {
	d_step {
		vr_on[LNK(d,s)] && up[s] ->
		ADOPT(s, vr_vterm[LNK(d,s)]);
		if
		:: vr_pre[LNK(d,s)] && vr_grant[LNK(d,s)] && phase[s] == 1 &&
		      vr_rterm[LNK(d,s)] == term[s] + 1 ->
			/* pre-vote won (self + one grant): the real vote round */
#ifdef SELFVOTE_RECHECK
			if
			:: contact[s] >= FIRE ->
#endif
				term[s]++; voted[s] = s; phase[s] = 2; lease[s] = 0;
				SEND_VQ(s, a, 0, term[s]);
				SEND_VQ(s, b, 0, term[s])
#ifdef SELFVOTE_RECHECK
			:: else -> phase[s] = 0
			fi
#endif
		:: !vr_pre[LNK(d,s)] && vr_grant[LNK(d,s)] && phase[s] == 2 &&
		      vr_rterm[LNK(d,s)] == term[s] ->
			/* elected (self + one grant) */
			assert(leader_of[term[s]] == NONE || leader_of[term[s]] == s);   /* P2 */
			leader_of[term[s]] = s;
#ifndef THREE_DATA
			assert(lsn[s] >= w_seen);                                        /* P3 */
#endif
#if REACH == 1
			assert(false);                      /* reachability probe: a leader is elected */
#endif
			lterm[s] = term[s]; phase[s] = 0; primary[s] = 1; lease[s] = 0
		:: else
		fi;
		vr_on[LNK(d,s)] = 0; vr_pre[LNK(d,s)] = 0; vr_rterm[LNK(d,s)] = 0;
		vr_vterm[LNK(d,s)] = 0; vr_grant[LNK(d,s)] = 0
	}
}

inline DROP(s, d) {
	d_step {
		hb_on[LNK(s,d)] ->
		hb_on[LNK(s,d)] = 0; hb_term[LNK(s,d)] = 0; hb_lrem[LNK(s,d)] = 0; hb_lsn[LNK(s,d)] = 0
	}
}

/* ------------------------------------------------------------- system */

/* all actions of node i (peers a, b) */
#define NODE(i, a, b) \
	:: STAND(i, a, b) \
	:: GIVE_UP(i) \
	:: HEARTBEAT(i, a, b) \
	:: COMMIT(i) \
	:: CATCH_UP(i, a) \
	:: CATCH_UP(i, b) \
	REJOIN_ACTIONS(i, a, b) \
	:: CRASH(i) \
	:: RESTART(i)

#ifdef NOREJOIN
#define REJOIN_ACTIONS(i, a, b)
#else
#define REJOIN_ACTIONS(i, a, b) :: REJOIN(i, a) :: REJOIN(i, b)
#endif

/* delivery and loss on the link s -> d (t: the third node) */
#define LINK(s, d, t) \
	:: HB_DELIVER(s, d) \
	:: HR_DELIVER(s, d) \
	:: VQ_DELIVER(s, d) \
	:: VR_DELIVER(s, d, s, t) \
	:: DROP(s, d) \
	:: d_step { hr_on[LNK(s,d)] -> hr_on[LNK(s,d)] = 0; hr_term[LNK(s,d)] = 0; hr_ack[LNK(s,d)] = 0; hr_lrem[LNK(s,d)] = 0 } \
	:: d_step { vq_on[LNK(s,d)] -> vq_on[LNK(s,d)] = 0; vq_pre[LNK(s,d)] = 0; vq_term[LNK(s,d)] = 0; vq_lsn[LNK(s,d)] = 0 } \
	:: d_step { vr_on[LNK(s,d)] -> vr_on[LNK(s,d)] = 0; vr_pre[LNK(s,d)] = 0; vr_rterm[LNK(s,d)] = 0; vr_vterm[LNK(s,d)] = 0; vr_grant[LNK(s,d)] = 0 }

active proctype cluster()
{
	primary[0] = 1;          /* node 0 is the bootstrap primary in term 0 */
	do
	:: TICK()
	NODE(0, 1, 2)
	NODE(1, 0, 2)
#ifdef THREE_DATA
	NODE(2, 0, 1)
#else
	:: CRASH(2)
	:: RESTART(2)
#endif
	LINK(0, 1, 2)
	LINK(1, 0, 2)
	LINK(0, 2, 1)
	LINK(2, 0, 1)
	LINK(1, 2, 0)
	LINK(2, 1, 0)
	od
}

/* P1: never two writers at the same instant */
active proctype monitor()
{
	atomic { !(WRITABLE(0) + WRITABLE(1) + WRITABLE(2) <= 1) -> assert(false) }
}
