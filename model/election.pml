/*
 * election.pml -- Promela model of pg_cluster's election, lease and fencing
 * (docs/protocol.md sections 2-6).  Checked by model/check.sh with spin;
 * model/README.md says what is modelled and what is abstracted away.
 *
 * Topology (3 voters, majority 2):
 *   default       node 0 = data (bootstrap primary), node 1 = data standby,
 *                 node 2 = witness (votes, never stands)
 *   -DTHREE_DATA  nodes 0, 1, 2 are data nodes (node 0 bootstrap primary)
 *
 * Time is discrete.  One action, TICK, advances the global clock by one
 * tick; every other action happens at an instant.  To keep the state space
 * finite no absolute time is stored: every timestamp is kept relative to
 * "now" and saturates where the protocol stops caring:
 *   contact[i]  now - last_leader_contact of node i (saturates at FIRE)
 *   lease[i]    lease_until - now of leader i, 0 = no valid lease
 *   lrem        in a heartbeat (and echoed in its reply): lease_duration
 *               minus the ticks since the heartbeat was *sent*, i.e. what
 *               lease_until - now is if this heartbeat is the acknowledged
 *               one (§6: lease_until = send time + lease_duration)
 *
 * Tunables (-D):
 *   F         failover_timeout in ticks (default 5)
 *   LEASE     lease_duration in ticks (default 4)
 *   DRIFT     clock-rate error: every V3 check and every standing timer may
 *             fire DRIFT ticks early (fast local clock), i.e. at F - DRIFT
 *             (default 0)
 *   MAXTERM   highest term explored (default 3, at most 3)
 *   MAXLSN    highest LSN (default 2, at most 3).  MAXLSN=0 leaves LSNs
 *             out: V4/V5 become "a voter may refuse" (nondeterministic), an
 *             over-approximation of every LSN history, for P1 and P2
 *   MAXCRASH  crashes over the whole run, all nodes together (default 1)
 *   MAXMSG    messages in flight at once, all connections together
 *             (default 2)
 *   NOREJOIN  leave out "a demoted primary is rewound and rejoins"
 *   STAND_LAG_RULE  model the §4 standing rule "its LSN is within
 *             max_lag_on_failover (0) of the last leader LSN it knew" (data
 *             nodes remember the leader LSN like the witness); without it
 *             standbys may stand regardless, an over-approximation
 *
 * Protocol variants (model/README.md):
 *   NO_SELFVOTE_RECHECK  the protocol before the fix this model found: the
 *                        candidate's own vote does not obey V3 (it neither
 *                        gives up its pre-vote round when it acknowledges a
 *                        live leader nor re-checks V3 before raising its
 *                        term).  Violates P1.
 *   WITNESS_LSN_DURABLE  proposed fix, not in docs/protocol.md yet: the
 *                        witness keeps the highest leader LSN it heard in
 *                        its durable state, so V5 survives its restart.
 *                        Without it P3 is violated.
 *
 * Properties:
 *   P1  monitor(): at no instant two writers, a writer being the leader of
 *       its current term with now < lease_until (the pre-commit check) or
 *       the bootstrapping primary in term 0.  With -DLEASE_ORDER also (a
 *       ghost that doubles the state space): leases are obtained in
 *       non-decreasing term order (an old leader never gets a lease back
 *       once a newer leader had one; no bootstrap write after any lease),
 *       so commits, which need a lease, never interleave between leaders.
 *   P2  at most one leader per term (ghost leader_of[]); a node never
 *       receives a leadership claim for a term it leads itself.
 *   P3  at every granted vote that can still count (the candidate is in
 *       that vote round): candidate LSN >= the data voter's LSN, and
 *       candidate LSN >= every LSN a leader ever reported to the witness
 *       (in any incarnation of the witness).
 *   REACH=1   assert(false) when some node wins an election (must "fail")
 *   REACH=2   assert(false) when node 1 commits, i.e. after a failover
 *             the standby leads and holds a valid lease (must "fail")
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
#ifndef REACH
#define REACH 0
#endif

#ifdef THREE_DATA
#define DATA(i) (1)
#else
#define DATA(i) ((i) != 2)
#endif
#ifdef STAND_LAG_RULE
#define HEARS_LSN(i) (1)
#else
#define HEARS_LSN(i) (!DATA(i))
#endif

/* ---------------------------------------------------------------- nodes */

bit  up[N] = 1;
/* durable: pg_cluster.state, the WAL position and "in recovery" */
byte term[N];            /* term */
byte voted[N] = NONE;    /* voted_for in term */
byte lterm[N];           /* leader_term (leader_name = self implied) */
bit  primary[N];         /* not in recovery */
byte lsn[N];             /* WAL position (data nodes) */
/* volatile */
byte phase[N];           /* 0 waiting, 1 pre-vote round, 2 vote round */
byte contact[N] = FIRE;  /* now - last_leader_contact, saturated at FIRE */
byte lease[N];           /* lease_until - now, 0 = none */
byte heard[N];           /* highest LSN a leader reported (V5; witness, and data
                          * nodes with STAND_LAG_RULE) */
byte crashes;

#define LEADER(i) (up[i] && term[i] > 0 && lterm[i] == term[i])
#define BOOTSTRAPPING(i) ((i) == 0 && up[0] && primary[0] && term[0] == 0)
#define WRITABLE(i) ((LEADER(i) && lease[i] > 0) || BOOTSTRAPPING(i))

/* ------------------------------------------------------------- messages */
/*
 * §3: each node has one connection to each peer, on which it calls the
 * peer's functions one at a time.  cx[LNK(s,d)] is the connection from s
 * (the caller) to d: empty, a request of s on its way to d, or d's reply on
 * its way back.  A request is sent only on an idle connection and only
 * while fewer than MAXMSG messages are in flight.  Any message may be
 * delivered at any later time (delay) or lost (loss, timeout); messages on
 * different connections are delivered in any order (reordering).  When a
 * node stops, its connections close: what is in flight on them is lost.
 */
#define LNK(s,d) ((s)*2 + (d) - ((d) > (s)))      /* 6 connections */
short cx[6];
byte nmsg;                                         /* messages in flight */

#define KIND(c)   (cx[c] & 7)
#define K_HB  1   /* heartbeat, leadership claim: term, lrem, lsn (to the witness) */
#define K_HR  2   /* heartbeat reply: term, lrem, ack */
#define K_VQ  3   /* request_vote: term, pre, lsn */
#define K_VR  4   /* request_vote reply: rterm (asked), pre, vterm (voter's), grant */
#define TERM(c)   ((cx[c] >> 3) & 3)   /* term of HB, HR, VQ; rterm of VR */
#define LREM(c)   ((cx[c] >> 5) & 7)   /* HB, HR */
#define HB_LSN(c) ((cx[c] >> 8) & 3)
#define HR_ACK(c) ((cx[c] >> 8) & 1)
#define PRE(c)    ((cx[c] >> 5) & 1)   /* VQ, VR */
#define VQ_LSN(c) ((cx[c] >> 6) & 3)
#define VTERM(c)  ((cx[c] >> 6) & 3)   /* VR */
#define GRANT(c)  ((cx[c] >> 8) & 1)   /* VR */

#define MK_HB(t, r, n)     (K_HB | ((t) << 3) | ((r) << 5) | ((n) << 8))
#define MK_HR(t, r, a)     (K_HR | ((t) << 3) | ((r) << 5) | ((a) << 8))
#define MK_VQ(t, p, n)     (K_VQ | ((t) << 3) | ((p) << 5) | ((n) << 6))
#define MK_VR(t, p, v, g)  (K_VR | ((t) << 3) | ((p) << 5) | ((v) << 6) | ((g) << 8))

#define IDLE(c)  (cx[c] == 0 && nmsg < MAXMSG)
#define SEND(c, v)  nmsg++; cx[c] = (v)
#define REPLY(c, v) cx[c] = (v)
#define DONE(c)     nmsg--; cx[c] = 0

/* ---------------------------------------------------------------- ghosts */
byte leader_of[MAXTERM+1] = NONE;   /* P2: who won each term */
#ifdef LEASE_ORDER
byte lease_term;                    /* P1: term of the latest lease obtained */
#define LEASE_ORDER_OK (!BOOTSTRAPPING(0) || lease_term == 0)
#else
#define LEASE_ORDER_OK 1
#endif
#ifdef WITNESS_LSN_DURABLE
#define w_seen heard[2]
#else
byte w_seen;                        /* P3: highest LSN ever reported to the witness */
#endif

byte k;                             /* scratch, always 0 between actions */
byte g;                             /* scratch, always 0 between actions */

/* ------------------------------------------------------------- helpers */

/* replay output (spin -t): one line per action, then per node: up,
 * term, voted_for (3 = none), leader_term, primary, lsn, round (phase),
 * contact age, lease left, L = leader of its term, W = writer */
#define NODE_SHOW(i) printf(" | n%d up%d t%d v%d lt%d pr%d lsn%d ph%d c%d ls%d L%d W%d", i, up[i], term[i], voted[i], lterm[i], primary[i], lsn[i], phase[i], contact[i], lease[i], LEADER(i), WRITABLE(i))
inline SHOW() {
	NODE_SHOW(0); NODE_SHOW(1); NODE_SHOW(2);
	printf(" | heard%d msgs%d\n", heard[2], nmsg)
}

/* adopt a higher term durably: vote cleared, any round or leadership ends */
inline ADOPT(i, t) {
	if
	:: t > term[i] ->
		term[i] = t; voted[i] = NONE; phase[i] = 0; lease[i] = 0
	:: else
	fi
}

/* node i stops (crash, or restart for a rewind): its connections close */
inline CUT(i, a, b) {
	if :: cx[LNK(i,a)] -> DONE(LNK(i,a)) :: else fi;
	if :: cx[LNK(i,b)] -> DONE(LNK(i,b)) :: else fi;
	if :: cx[LNK(a,i)] -> DONE(LNK(a,i)) :: else fi;
	if :: cx[LNK(b,i)] -> DONE(LNK(b,i)) :: else fi
}

/* A heartbeat (or its reply) of caller c/2 whose lrem can no longer raise
 * that node's lease is normalised to lrem 0, so that equivalent states are
 * equal: its term is no longer led by the caller (leader_term never
 * returns to an old term), or lrem <= the lease it has (both count down
 * together).  Run after every action. */
inline NORM() {
	k = 0;
	do
	:: k < 6 ->
		if
		:: (KIND(k) == K_HB || KIND(k) == K_HR) && LREM(k) > 0 &&
		      (!LEADER(k / 2) || TERM(k) != term[k / 2] || LREM(k) <= lease[k / 2]) ->
			cx[k] = cx[k] & ~(7 << 5)
		:: else
		fi;
		k++
	:: else -> break
	od;
	k = 0
}

/* ------------------------------------------------------ node actions */

/* §4: a data node stands, i.e. starts a pre-vote round for term + 1 --
 * also a candidate whose vote round timed out (phase 2).  (A pre-vote
 * round that gets no majority simply stays open: that state can do all
 * that "waiting" can, its late replies can always be lost instead.) */
inline STAND(i) {
	d_step {
		up[i] && DATA(i) && phase[i] != 1 && term[i] < MAXTERM && !LEADER(i) &&
		   (BOOTSTRAPPING(i) ||
		    (term[i] >= 1 && contact[i] >= FIRE &&
#ifdef STAND_LAG_RULE
		     (primary[i] || lsn[i] >= heard[i]) &&
#endif
		     (!primary[i] || (i == 0 && lterm[i] == 0)))) ->
		phase[i] = 1;
		printf("n%d stands (pre-vote for term %d)", i, term[i] + 1); SHOW()
	}
}

/* a candidate sends (or resends) the request of its current round to d */
inline SEND_VQ(s, d) {
	d_step {
		up[s] && phase[s] != 0 && IDLE(LNK(s,d)) ->
		if
		:: phase[s] == 1 -> SEND(LNK(s,d), MK_VQ(term[s] + 1, 1, lsn[s]))
		:: else ->          SEND(LNK(s,d), MK_VQ(term[s], 0, lsn[s]))
		fi;
		printf("n%d -> n%d request_vote pre %d term %d lsn %d", s, d, PRE(LNK(s,d)), TERM(LNK(s,d)), lsn[s]); SHOW()
	}
}

/* the leader sends a heartbeat to d */
inline SEND_HB(s, d) {
	d_step {
		LEADER(s) && IDLE(LNK(s,d)) ->
		SEND(LNK(s,d), MK_HB(term[s], LEASE, (HEARS_LSN(d) -> lsn[s] : 0)));
		NORM();
		printf("n%d -> n%d heartbeat term %d", s, d, term[s]); SHOW()
	}
}

/* a transaction that wrote commits: the pre-commit check passed (§6) */
inline COMMIT(i) {
	d_step {
		WRITABLE(i) && lsn[i] < MAXLSN ->
#if REACH == 2
		assert(!(REACH == 2 && i != 0));  /* probe: after a failover, node 1 commits */
#endif
		lsn[i]++;
		printf("n%d COMMITS lsn %d in term %d", i, lsn[i], term[i]); SHOW()
	}
}

/* standby d streams WAL from primary s */
inline CATCH_UP(d, s) {
	d_step {
		up[d] && up[s] && DATA(d) && !primary[d] && primary[s] && lsn[s] > lsn[d] ->
		lsn[d] = lsn[s];
		printf("n%d catches up from n%d", d, s); SHOW()
	}
}

/* a demoted primary is rewound and rejoins as a standby of leader s: its
 * WAL is cut back to the fork point and streamed from s; postgres (and
 * with it the worker) restarts, so volatile state is lost as in RESTART */
inline REJOIN(i, s, t) {
	d_step {
		up[i] && primary[i] && term[i] > 0 && !LEADER(i) && LEADER(s) ->
		primary[i] = 0; lsn[i] = lsn[s];
		CUT(i, s, t);
		contact[i] = 0; phase[i] = 0; lease[i] = 0; heard[i] = 0;
		NORM();
		printf("n%d rejoins as standby of n%d", i, s); SHOW()
	}
}

/* crash: volatile state is lost (reset here already, to keep states few) */
inline CRASH(i, a, b) {
	d_step {
		up[i] && crashes < MAXCRASH ->
		up[i] = 0; crashes++;
		CUT(i, a, b);
		phase[i] = 0; contact[i] = 0; lease[i] = 0;
#ifdef WITNESS_LSN_DURABLE
		if :: DATA(i) -> heard[i] = 0 :: else fi;
#else
		heard[i] = 0;
#endif
		NORM();
		printf("n%d CRASHES", i); SHOW()
	}
}

/* restart: last_leader_contact = start time (§6); a node whose durable
 * leader_term equals its term resumes its claim (LEADER() is derived),
 * without a lease */
inline RESTART(i) {
	d_step {
		!up[i] ->
		up[i] = 1; contact[i] = 0; phase[i] = 0; lease[i] = 0;
		printf("n%d restarts", i); SHOW()
	}
}

/* the global clock advances one tick */
inline TICK() {
	d_step {
		k = 0;
		do
		:: k < N ->
			if :: up[k] && contact[k] < FIRE -> contact[k]++ :: else fi;
			if :: lease[k] > 0 -> lease[k]-- :: else fi;
			k++
		:: else -> break
		od;
		k = 0;
		do
		:: k < 6 ->
			if
			:: (KIND(k) == K_HB || KIND(k) == K_HR) && LREM(k) > 0 -> cx[k] = cx[k] - (1 << 5)
			:: else
			fi;
			k++
		:: else -> break
		od;
		NORM();
		printf("-- tick --"); SHOW()
	}
}

/* ---------------------------------------------------- message delivery */

/* §3.1 heartbeat s -> d, and d's reply */
inline HB_DELIVER(s, d) {
	d_step {
		KIND(LNK(s,d)) == K_HB && up[d] ->
		printf("n%d <- n%d heartbeat term %d lrem %d lsn %d", d, s, TERM(LNK(s,d)), LREM(LNK(s,d)), HB_LSN(LNK(s,d)));
		ADOPT(d, TERM(LNK(s,d)));                              /* step 3 */
		if
		:: TERM(LNK(s,d)) == term[d] ->                        /* step 4 */
			assert(!LEADER(d));                 /* P2: a claim of a term d leads */
			contact[d] = 0;
			if :: phase[d] == 2 -> phase[d] = 0 :: else fi;
#ifndef NO_SELFVOTE_RECHECK
			if :: phase[d] == 1 -> phase[d] = 0 :: else fi;   /* §4 round 1 */
#endif
			if :: HB_LSN(LNK(s,d)) > heard[d] -> heard[d] = HB_LSN(LNK(s,d)) :: else fi;
#ifndef WITNESS_LSN_DURABLE
			if :: !DATA(d) && HB_LSN(LNK(s,d)) > w_seen -> w_seen = HB_LSN(LNK(s,d)) :: else fi;
#endif
			REPLY(LNK(s,d), MK_HR(term[d], LREM(LNK(s,d)), 1))
		:: else ->                              /* stale claim: reply with the higher term */
			REPLY(LNK(s,d), MK_HR(term[d], 0, 0))
		fi;
		NORM();
		printf(" => ack %d", HR_ACK(LNK(s,d))); SHOW()
	}
}

/* heartbeat reply from d arrives at s (§3.1 last line, §6) */
inline HR_DELIVER(s, d) {
	d_step {
		KIND(LNK(s,d)) == K_HR && up[s] ->
		printf("n%d <- n%d heartbeat reply term %d ack %d lrem %d", s, d, TERM(LNK(s,d)), HR_ACK(LNK(s,d)), LREM(LNK(s,d)));
		ADOPT(s, TERM(LNK(s,d)));
		if
		:: HR_ACK(LNK(s,d)) && TERM(LNK(s,d)) == term[s] && LEADER(s) ->
			/* lease_until = M + lease_duration; with N = 3, M is the latest
			 * acknowledged send time of the two peers.  The leader counts
			 * its majority acknowledgement as contact (V3): here from M,
			 * the send time (src/election.c), which is earlier than the
			 * arrival of the acknowledgement, so more permissive; for an
			 * acknowledgement sent LEASE or more ticks ago the exact age is
			 * not kept and contact is left as it is (more permissive
			 * still). */
			if
			:: LREM(LNK(s,d)) > 0 && LEASE - LREM(LNK(s,d)) < contact[s] ->
				contact[s] = LEASE - LREM(LNK(s,d))
			:: else
			fi;
			if
			:: LREM(LNK(s,d)) > lease[s] ->
#ifdef LEASE_ORDER
				/* P1: leases are obtained in non-decreasing term order */
				assert(term[s] >= lease_term);
				lease_term = term[s];
#endif
				lease[s] = LREM(LNK(s,d))
			:: else
			fi
		:: else
		fi;
		DONE(LNK(s,d));
		NORM();
		SHOW()
	}
}

/* §3.2 request_vote s -> d, and d's reply; refuse: V4/V5 fail (MAXLSN=0) */
inline VQ_DELIVER(s, d, refuse) {
	d_step {
		KIND(LNK(s,d)) == K_VQ && up[d] ->
		printf("n%d <- n%d request_vote pre %d term %d lsn %d", d, s, PRE(LNK(s,d)), TERM(LNK(s,d)), VQ_LSN(LNK(s,d)));
		if
		:: PRE(LNK(s,d)) ->                     /* pre-vote: changes nothing */
			if
			:: !refuse && TERM(LNK(s,d)) >= term[d] &&               /* V1 */
			      contact[d] >= FIRE &&                              /* V3 */
			      (!DATA(d) || VQ_LSN(LNK(s,d)) >= lsn[d]) &&        /* V4 */
			      VQ_LSN(LNK(s,d)) >= heard[d] ->                     /* V5 */
				g = 1
			:: else -> g = 0
			fi;
			if
			:: g || term[d] >= TERM(LNK(s,d)) ->
				/* (a voter term below the candidate's cannot matter to it) */
				REPLY(LNK(s,d), MK_VR(TERM(LNK(s,d)), 1,
				      (term[d] >= TERM(LNK(s,d)) -> term[d] : TERM(LNK(s,d)) - 1), g))
			:: else ->                          /* a refusal that tells nothing */
				DONE(LNK(s,d))
			fi
		:: else ->
			ADOPT(d, TERM(LNK(s,d)));                                /* V1 */
			if
			:: !refuse && TERM(LNK(s,d)) == term[d] &&
			      (voted[d] == NONE || voted[d] == s) &&             /* V2 */
			      contact[d] >= FIRE &&                              /* V3 */
			      (!DATA(d) || VQ_LSN(LNK(s,d)) >= lsn[d]) &&        /* V4 */
			      VQ_LSN(LNK(s,d)) >= heard[d] ->                     /* V5 */
				g = 1;
				voted[d] = s;                   /* durable before the reply */
				/* P3, for a grant that can still count */
				assert(!(up[s] && phase[s] == 2 && term[s] == term[d]) ||
				       ((!DATA(d) || lsn[s] >= lsn[d]) && (DATA(d) || lsn[s] >= w_seen)))
			:: else -> g = 0
			fi;
			if
			:: g || term[d] > TERM(LNK(s,d)) ->
				REPLY(LNK(s,d), MK_VR(TERM(LNK(s,d)), 0, term[d], g))
			:: else ->
				DONE(LNK(s,d))
			fi
		fi;
		printf(" => granted %d", g);
		g = 0;
		NORM();
		SHOW()
	}
}

/* a vote reply from d arrives at candidate s (majority = self + 1 grant) */
inline VR_DELIVER(s, d) {
	d_step {
		KIND(LNK(s,d)) == K_VR && up[s] ->
		printf("n%d <- n%d vote reply pre %d for term %d grant %d (voter term %d)", s, d, PRE(LNK(s,d)), TERM(LNK(s,d)), GRANT(LNK(s,d)), VTERM(LNK(s,d)));
		ADOPT(s, VTERM(LNK(s,d)));
		if
		:: PRE(LNK(s,d)) && GRANT(LNK(s,d)) && phase[s] == 1 &&
		      TERM(LNK(s,d)) == term[s] + 1 ->
			/* pre-vote won: the vote round, term + 1 and own vote durable */
#ifndef NO_SELFVOTE_RECHECK
			if
			:: contact[s] >= FIRE ->            /* own vote obeys V3 */
				term[s]++; voted[s] = s; phase[s] = 2; lease[s] = 0
			:: else -> phase[s] = 0
			fi
#else
			term[s]++; voted[s] = s; phase[s] = 2; lease[s] = 0
#endif
		:: !PRE(LNK(s,d)) && GRANT(LNK(s,d)) && phase[s] == 2 &&
		      TERM(LNK(s,d)) == term[s] ->
			/* elected: leader_term durable; a standby is promoted */
			assert(leader_of[term[s]] == NONE || leader_of[term[s]] == s);   /* P2 */
			leader_of[term[s]] = s;
#if REACH == 1
			assert(!(REACH == 1));              /* probe: a leader is elected */
#endif
			lterm[s] = term[s]; phase[s] = 0; primary[s] = 1; lease[s] = 0;
			printf(" => n%d ELECTED leader of term %d", s, term[s])
		:: else
		fi;
		DONE(LNK(s,d));
		NORM();
		SHOW()
	}
}

inline LOSE(s, d) {
	d_step {
		cx[LNK(s,d)] ->
		printf("lost: kind %d on connection n%d -> n%d", KIND(LNK(s,d)), s, d);
		DONE(LNK(s,d));
		NORM();
		SHOW()
	}
}

/* ------------------------------------------------------------- system */

/* the actions of data node i (peers a, b) */
#define NODE(i, a, b) \
	:: STAND(i) \
	:: SEND_VQ(i, a) \
	:: SEND_VQ(i, b) \
	:: SEND_HB(i, a) \
	:: SEND_HB(i, b) \
	:: COMMIT(i) \
	:: CATCH_UP(i, a) \
	:: CATCH_UP(i, b) \
	REJOIN_ACTIONS(i, a, b) \
	:: CRASH(i, a, b) \
	:: RESTART(i)

#ifdef NOREJOIN
#define REJOIN_ACTIONS(i, a, b)
#else
#define REJOIN_ACTIONS(i, a, b) :: REJOIN(i, a, b) :: REJOIN(i, b, a)
#endif

/* MAXLSN = 0: no LSNs at all; V4 and V5 then become "the voter may
 * refuse", an over-approximation of every LSN history (for P1, P2) */
#if MAXLSN == 0
#define VQ_REFUSED(s, d) :: VQ_DELIVER(s, d, 1)
#else
#define VQ_REFUSED(s, d)
#endif

/* the connection from s to d: delivery both ways, and loss */
#define CONN(s, d) \
	:: HB_DELIVER(s, d) \
	:: HR_DELIVER(s, d) \
	:: VQ_DELIVER(s, d, 0) \
	VQ_REFUSED(s, d) \
	:: VR_DELIVER(s, d) \
	:: LOSE(s, d)

active proctype cluster()
{
	primary[0] = 1;          /* node 0 is the bootstrap primary, term 0 */
	do
	:: TICK()
	NODE(0, 1, 2)
	NODE(1, 0, 2)
	CONN(0, 1)
	CONN(1, 0)
	CONN(0, 2)
	CONN(1, 2)
#ifdef THREE_DATA
	NODE(2, 0, 1)
	CONN(2, 0)
	CONN(2, 1)
#else
	:: CRASH(2, 0, 1)        /* the witness only answers */
	:: RESTART(2)
#endif
	od
}

/* P1: never two writers at the same instant */
active proctype monitor()
{
	atomic {
		!(WRITABLE(0) + WRITABLE(1) + WRITABLE(2) <= 1 && LEASE_ORDER_OK) ->
		printf("P1 VIOLATED: two writers, or a write in term 0 after a lease"); SHOW();
		assert(false)
	}
}
