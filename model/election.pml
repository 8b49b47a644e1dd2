/*
 * election.pml -- Promela model of pg_cluster's election, lease and fencing
 * (docs/protocol.md sections 2-6), of the planned switchover (section 8)
 * and, with -DSYNC, of synchronous mode (section 9).  Checked by
 * model/check.sh with spin; model/README.md says what is modelled and what
 * is abstracted away.
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
 *   MAXSWITCH switchovers started over the whole run (default 1; 0 leaves
 *             the switchover out, and with it the bookkeeping of which
 *             leader each node knows, which V8 needs)
 *   PRIMARY_STANDS  a primary that does not lead may stand, as
 *             src/election.c allows (WhyNotStand checks only standbys'
 *             priority and lag), e.g. a leader that stepped down after an
 *             unclear handover; without it only standbys and the
 *             bootstrap primary stand (docs/protocol.md §4)
 *   HEARD_LAST  the LSN a node remembers of its leader (V5, the lag rule)
 *             is the one in the latest acknowledged claim, as the C code
 *             did before commit 689744d (rpc.c, peer.c overwrote
 *             leader_lsn); without it, the highest one heard since the node
 *             started, which is what it does now
 *             (PgClusterRaiseLeaderProgressLocked)
 *   SYNC      synchronous mode "quorum" (§9, src/syncrep.c, the V9 rule
 *             of src/election.c, fence.c): the synchronous record, the
 *             leader's manager of synchronous_standby_names, the ready
 *             gate, commit acknowledgements and property P5.  Without it
 *             none of this is compiled in (the other checks keep their
 *             state spaces)
 *   MAXVER    with SYNC: the highest sync_version (default 2, at most 3)
 *   BOOT_COMMITS  with SYNC: the bootstrap primary may commit in term 0
 *             (left out by default: with the small MAXLSN they use the LSNs
 *             up; acknowledged with no standby, see model/README.md)
 *   BOOT_ACKS with SYNC: ... and they count as acknowledged for P5 (the
 *             sync checks of check.sh run with both)
 *
 * Protocol variants (model/README.md):
 *   NO_SELFVOTE_RECHECK  the protocol before the fix this model found: the
 *                        candidate's own vote does not obey V3 (it neither
 *                        gives up its pre-vote round when it acknowledges a
 *                        live leader nor re-checks V3 before raising its
 *                        term).  Violates P1.
 *   WITNESS_LSN_DURABLE  the fix this model proposed, in protocol.md §2
 *                        and the C code since commit 689744d
 *                        (heard_leader_lsn, PgClusterPersistLeaderProgress):
 *                        the witness keeps the highest leader LSN it heard
 *                        in its durable state, so V5 survives its restart.
 *                        Without it P3 is violated (fixed-witness-restart,
 *                        fixed-handover-lsn).
 *   ERROR_ANSWER         the target may record a handover and still answer
 *                        with an error.  Alone: the leader takes it for a
 *                        refusal, releases the hold and carries on (what
 *                        src/peer.c PeerHandleHandoverReply did before
 *                        689744d); violates P4 (fixed-handover-error-answer).
 *   ERROR_UNCLEAR        with ERROR_ANSWER, the fix (PeerHandleHandoverReply
 *                        now): an error answer is an unclear outcome, the
 *                        leader steps down (switchover-error-answer).
 *   HANDOVER_DURABLE     the fix this model proposed, in protocol.md §2, §5,
 *                        §8 and the C code since 689744d (handed_over_term,
 *                        PgClusterSetHandedOverTerm, ResumeLeadership): the
 *                        leader records durably, before it sends the
 *                        handover request, that it gives up its term
 *                        (cleared only by a refusal), so that after a
 *                        restart it does not resume its claim (§5) while
 *                        the target may be standing with its blessing.
 *                        Without it P1 is violated (fixed-handover-restart).
 *   SELF_V9              with SYNC, the fix of fixed-sync-own-vote (in
 *                        src/election.c): the candidate's own vote obeys
 *                        V9.  Before it, src/election.c checked the node's
 *                        own record only for a standby (WhyNotStand) and
 *                        not when it raised its term (StartVoteRound); now
 *                        every node checks it before standing and again,
 *                        atomically with the V3 re-check, before it raises
 *                        its term.
 *   SYNC_TERM_ORDER      with SYNC, the fix of fixed-sync-version-collision
 *                        (in src/): a record carries the term of the leader
 *                        that created it (sync_term) and records are
 *                        ordered by (term, version) -- adoption, V9's "at
 *                        least as new" and RecordOnMajority compare the
 *                        pair; a leader publishes (its term, version + 1).
 *                        Without it only sync_version orders them, and two
 *                        leaders create the same version with different
 *                        contents.
 *   BOOT_RECORD          with SYNC, the fix of fixed-sync-bootstrap-acks
 *                        (in src/): the bootstrap primary publishes (term
 *                        0, version + 1, restricted to itself) before it
 *                        acknowledges a commit (PgClusterSyncReady in term
 *                        0: only while its record names it alone), and a
 *                        real vote request (not a pre-vote) carries the
 *                        candidate's whole record, which the voter adopts
 *                        durably if newer, whatever its answer, before V9.
 *                        Without it term-0 commits are acknowledged at once
 *                        and a vote request carries only the key.
 *
 * Mutants (each must violate a property, to show the checks bite):
 *   MUTANT_NO_HOLD            the leader keeps acknowledging commits while
 *                             it hands over
 *   MUTANT_RESUME_ON_LOSS     an unclear handover outcome releases the hold
 *                             and the leader carries on with its lease,
 *                             instead of stepping down
 *   MUTANT_TRANSFER_ANY_TERM  V8 without its term and leader check: a
 *                             transfer vote for any term >= the voter's
 *   MUTANT_EARLY_PROMOTE      the target promotes as soon as it is
 *                             elected, without the handover LSN
 *   MUTANT_HANDOVER_ANY_TERM  the target accepts a handover from the leader
 *                             it knows whatever term the request names
 *   MUTANT_NO_V9              (SYNC) voters ignore V9
 *   MUTANT_SHRINK_FIRST       (SYNC) the names stop waiting for a node
 *                             before a majority stores the record without it
 *   MUTANT_NO_READY           (SYNC) a new leader acknowledges commits
 *                             without the ready gate
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
 *       receives a leadership claim for a term it won itself.
 *   P3  at every granted vote that can still count (the candidate is in
 *       that vote round), except a transfer vote (V8, covered by P4):
 *       candidate LSN >= the data voter's LSN, and candidate LSN >= every
 *       LSN a leader ever reported to the witness (in any incarnation of
 *       the witness).
 *   P4  handover: when a target promotes after a transfer election, its
 *       LSN is >= every LSN the leader that handed over acknowledged in the
 *       term it handed over (ghost p4_ack: H, raised by every later commit
 *       of that leader in that term).
 *   P5  (I2, with SYNC) monitor_p5(): at every instant every writer's LSN
 *       is >= every LSN acknowledged to a client in a term >= 1 (with
 *       BOOT_ACKS also in term 0) (ghost acked): no node becomes a writer without all acknowledged commits.
 *   A writer (P1, P5) is a leader of its current term that is a primary,
 *   holds a valid lease and does not hold commits for a switchover, or the
 *   bootstrapping primary.
 *   REACH=1   assert(false) when some node wins an election (must "fail")
 *   REACH=2   assert(false) when node 1 commits, i.e. after a failover
 *             the standby leads and holds a valid lease (must "fail")
 *   REACH=3   assert(false) when a target promotes after a transfer
 *             election: a switchover completes (must "fail")
 *   REACH=4..7 (SYNC) a commit is acknowledged; ... by a leader with a
 *             restricted record; another node gets a lease after an
 *             acknowledgement (a failover P5 is about); a record grows
 *             (restricted -> less restricted) after an acknowledgement
 *   REACH=8   (SYNC, BOOT_ACKS) another node than the bootstrap primary
 *             gets a lease after a commit of term 0 was acknowledged
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
#ifndef MAXSWITCH
#define MAXSWITCH 1
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
byte heard[N];           /* LSN a leader reported (V5; witness, and data
                          * nodes with STAND_LAG_RULE); see HEARD_LAST */
byte crashes;
/* switchover (§8), all volatile */
bit  dropped[N];         /* a leader of its term dropped its claim without a
                          * new term (stepped down, gave up); a standby
                          * never resumes a claim after a restart.  Only
                          * set while lterm == term */
byte knows[N] = NONE;    /* the leader this node acknowledged in its
                          * current term (the C code's `leader`), NONE */
byte swp[N];             /* on the leader: 0, or target + 1 while it holds
                          * commits and hands over (HOLDING, HANDING_OVER) */
byte hst[N];             /* on a target: 0; 1 accepted a handover, stands
                          * at once; 2 in (or elected by) the transfer round,
                          * not promoted yet */
byte hof[N];             /* target: who handed over (while hst > 0) */
byte hol[N];             /* target: the handover LSN H (while hst > 0) */
byte switches;           /* switchovers started */
short stale;             /* a handover request whose leader gave up on it,
                          * still to be processed by the target's backend:
                          * the K_HO message | l << 10 | t << 12, or 0 */
#ifdef HANDOVER_DURABLE
bit  gave[N];            /* durable: the leader handed its current term over
                          * (a term that is over is forgotten) */
#define GAVE_CLEAR(i) gave[i] = 0
#else
#define GAVE_CLEAR(i) skip
#endif

#define LEADER(i) (up[i] && term[i] > 0 && lterm[i] == term[i] && !dropped[i])
#define BOOTSTRAPPING(i) ((i) == 0 && up[0] && primary[0] && term[0] == 0)
#ifdef MUTANT_NO_HOLD
#define HOLDS(i) (0)
#else
#define HOLDS(i) (swp[i] != 0)
#endif
#define WRITABLE(i) ((LEADER(i) && primary[i] && lease[i] > 0 && !HOLDS(i)) || BOOTSTRAPPING(i))

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
#define LNK_DST(c) ((c) % 2 + ((c) % 2 >= (c) / 2))  /* the callee of connection c */
#ifdef SYNC
int  cx[6];                                        /* messages carry the record */
#else
short cx[6];
#endif
byte nmsg;                                         /* messages in flight */

#define KIND(c)   (cx[c] & 7)
#define K_HB  1   /* heartbeat, leadership claim: term, lrem, lsn (to the witness) */
#define K_HR  2   /* heartbeat reply: term, lrem, ack */
#define K_VQ  3   /* request_vote: term, pre, lsn */
#define K_VR  4   /* request_vote reply: rterm (asked), pre, vterm (voter's), grant */
#define K_HO  5   /* handover (§8): term handed over, handover LSN H */
#define K_HOR 6   /* handover reply: accepted */
#define TERM(c)   ((cx[c] >> 3) & 3)   /* term of HB, HR, VQ, HO; rterm of VR */
#define LREM(c)   ((cx[c] >> 5) & 7)   /* HB, HR */
#define HB_LSN(c) ((cx[c] >> 8) & 3)
#define HR_ACK(c) ((cx[c] >> 8) & 1)
#define PRE(c)    ((cx[c] >> 5) & 1)   /* VQ, VR */
#define VQ_LSN(c) ((cx[c] >> 6) & 3)
#define VTERM(c)  ((cx[c] >> 6) & 3)   /* VR */
#define GRANT(c)  ((cx[c] >> 8) & 1)   /* VR */
#define XFER(c)   ((cx[c] >> 8) & 3)   /* VQ: transfer_from + 1, 0 = none */
#define HO_LSN(c) ((cx[c] >> 5) & 3)   /* HO */
#define HO_ACC(c) ((cx[c] >> 8) & 1)   /* HOR */

#define MK_HB(t, r, n)     (K_HB | ((t) << 3) | ((r) << 5) | ((n) << 8))
#define MK_HR(t, r, a)     (K_HR | ((t) << 3) | ((r) << 5) | ((a) << 8))
#define MK_VQ(t, p, n)     (K_VQ | ((t) << 3) | ((p) << 5) | ((n) << 6))
#define MK_VR(t, p, v, g)  (K_VR | ((t) << 3) | ((p) << 5) | ((v) << 6) | ((g) << 8))
#define MK_VQX(t, n, f)    (K_VQ | ((t) << 3) | ((n) << 6) | (((f) + 1) << 8))
#define MK_HO(t, h)        (K_HO | ((t) << 3) | ((h) << 5))
#define MK_HOR(a)          (K_HOR | ((a) << 8))
#ifdef ERROR_UNCLEAR
#define HO_ERR(c)  ((cx[c] >> 9) & 1)  /* HOR: an error, not a row */
#define HO_ERRBIT  (1 << 9)
#else
#define HO_ERR(c)  0
#define HO_ERRBIT  0
#endif
#ifdef SYNC
/* §9: a heartbeat and a vote request carry the sender's synchronous
 * record, a heartbeat reply the receiver's record key ((term,) version) */
#define HB_REC(c)  ((cx[c] >> 10) & 255)
#define HR_KEY(c)  ((cx[c] >> 9) & 15)
#define VQ_REC(c)  ((cx[c] >> 10) & 255)
#define VQ_KEY(c)  RKEY(VQ_REC(c))
#define HB_SY(s)   (rec[s] << 10)
#define HR_SY(d)   (RKEY(rec[d]) << 9)
#define VQ_SY(s)   (rec[s] << 10)
#else
#define HB_SY(s)   0
#define HR_SY(d)   0
#define VQ_SY(s)   0
#endif

#define IDLE(c)  (cx[c] == 0 && nmsg < MAXMSG)
#define SEND(c, v)  nmsg++; cx[c] = (v)
#define REPLY(c, v) cx[c] = (v)
#define DONE(c)     nmsg--; cx[c] = 0

/* V8 (§3.2): may voter d grant candidate s a transfer vote for term t on
 * the handover of f?  The term right after the voter's, in which it knows
 * f as the leader; f itself only while it hands over to s */
#ifdef MUTANT_TRANSFER_ANY_TERM
#define V8(s, d, f, t) (1)
#else
#define V8(s, d, f, t) ((t) == term[d] + 1 && \
	((d) == (f) -> (LEADER(d) && swp[d] == (s) + 1) : knows[d] == (f)))
#endif

/* ------------------------------------------------ synchronous mode (§9) */
#ifdef SYNC
#ifndef MAXVER
#define MAXVER 2             /* highest sync_version a leader creates */
#endif
/* durable, on every node: the synchronous record (pg_cluster.state
 * sync_version, sync_restricted, sync_eligible): bits 0-1 the version,
 * bit 2 restricted, bits 3-5 the eligible nodes (a mask, 0 unless
 * restricted); with -DSYNC_TERM_ORDER bits 6-7 the term of the leader that
 * created it (sync_term), and records are ordered by (term, version) */
byte rec[N];
#define RVER(r)  ((r) & 3)
#define RRES(r)  (((r) >> 2) & 1)
#define RELIG(r) (((r) >> 3) & 7)
#define RTERM(r) (((r) >> 6) & 3)    /* 0 without -DSYNC_TERM_ORDER */
#ifdef SYNC_TERM_ORDER
#define RKEY(r)  ((((r) >> 6) & 3) << 2 | RVER(r))
#define MKREC(v, r, e, t) ((v) | ((r) << 2) | ((e) << 3) | ((t) << 6))
#else
#define RKEY(r)  RVER(r)
#define MKREC(v, r, e, t) ((v) | ((r) << 2) | ((e) << 3))
#endif
/* PgClusterWhyNotEligible: may the record r let node j be promoted? */
#define MAY_PROMOTE(r, j) (!RRES(r) || ((RELIG(r) >> (j)) & 1))
/* V9: the candidate's record (key) is at least as new as the voter's,
 * and the voter's record lets the candidate be promoted */
#ifdef MUTANT_NO_V9
#define V9(s, d, key) (1)
#else
#define V9(s, d, key) ((key) >= RKEY(rec[d]) && MAY_PROMOTE(rec[d], s))
#endif

/* The leader's manager (src/syncrep.c SyncRepTick).  Names
 * (synchronous_standby_names) are numbered relative to the node, o1 < o2
 * being its two peers:
 *   0 ''   1 ANY 1 (o1)   2 ANY 1 (o2)   3 ANY 1 (o1, o2)   4 ANY 2 (o1, o2)
 * (with a witness only 0 and 1 occur: ANY 1 (the other data node)). */
byte nmc[N];             /* names last set by ALTER SYSTEM */
byte nmu[N] = 1;         /* the names WAL senders may still be using (a mask
                          * of the numbers above): {nmc} once in force */
byte nfx[N];             /* names_in_force_lsn + 1, 0 = not taken yet */
bit  rdy[N];             /* sync_ready_term == term: may acknowledge new commits */
byte av[6];              /* av[LNK(l,p)]: acked_sync_version (key) + 1 that
                          * peer p's latest acknowledgement of l's current
                          * term carried, 0 = none */
byte wmax[N];            /* ghost: highest LSN a backend of node i wrote (in a
                          * term >= 1, since its server started) and may
                          * still wait for */
#define p5_acked_commit_lost (P5_OK)
#if REACH == 6
byte acker;              /* probe: the node that acknowledged last */
#endif
#if REACH == 8
bit  bootack;            /* probe: a commit of term 0 was acknowledged */
#endif
byte acked;              /* ghost, P5: highest LSN acknowledged to a client
                          * (in a term >= 1; with BOOT_ACKS also in term 0) */
byte y1, y2, y3, y4;      /* scratch, always 0 between actions */

/* macros below take the node i and its peers a < b */
#define KQ 1                                 /* a majority of 3 voters - 1 */
#define NBITS(m) (((m) & 1) + (((m) >> 1) & 1) + (((m) >> 2) & 1))
/* data standbys among the peers (those that can have a WAL sender on i) */
#define ISSTBY(d) (DATA(d) && !primary[d])
#define STBY(a, b) ((ISSTBY(a) << (a)) | (ISSTBY(b) << (b)))
#define DPEERS(a, b) ((DATA(a) << (a)) | (DATA(b) << (b)))
/* standbys whose flushed WAL reaches x */
#define HAS(d, c) (ISSTBY(d) && lsn[d] >= (c))
#define FLUSHED(a, b, x) ((HAS(a, x) << (a)) | (HAS(b, x) << (b)))
/* released: is the commit at LSN c of leader i released under any of the
 * names its WAL senders may be using (each WAL sender releases waiters by
 * the names it read)? */
#define REL(i, a, b, c) ((nmu[i] & 1) || ((nmu[i] & 2) && HAS(a, c)) || \
	((nmu[i] & 4) && HAS(b, c)) || ((nmu[i] & 8) && (HAS(a, c) || HAS(b, c))) || \
	((nmu[i] & 16) && HAS(a, c) && HAS(b, c)))
/* RecordOnMajority: a peer acknowledged l's current term with a record at
 * least as new as l's */
#ifdef MUTANT_SHRINK_FIRST
#define ON_MAJORITY(l, a, b) (1)
#else
#define ON_MAJORITY(l, a, b) ((av[LNK(l, a)] > 0 && av[LNK(l, a)] - 1 >= RKEY(rec[l])) || \
                              (av[LNK(l, b)] > 0 && av[LNK(l, b)] - 1 >= RKEY(rec[l])))
#endif
/* PgClusterSyncReady.  In term 0 (bootstrap), with -DBOOT_RECORD (the
 * fix of issue 8, src/syncrep.c BootstrapTick): only while the node's own
 * record is restricted to exactly itself (BOOT_PUBLISH); before the fix
 * at once */
#ifdef BOOT_RECORD
#define BOOT_READY(i) (RRES(rec[i]) && RELIG(rec[i]) == (1 << (i)))
#else
#define BOOT_READY(i) (1)
#endif
#ifdef MUTANT_NO_READY
#define SYNC_READY(i) ((term[i] == 0 && BOOT_READY(i)) || term[i] > 0)
#else
#define SYNC_READY(i) ((term[i] == 0 && BOOT_READY(i)) || (term[i] > 0 && rdy[i]))
#endif
/* commits of the bootstrap (term 0) are acknowledged without any standby
 * (no names are managed before a leader exists); without -DBOOT_COMMITS
 * the synchronous runs leave them out (with the small MAXLSN they use the
 * LSNs up); -DBOOT_ACKS counts their acknowledgement for P5 */
#if defined(BOOT_COMMITS) || defined(BOOT_ACKS)
#define COMMIT_TERM_OK(i) (1)
#else
#define COMMIT_TERM_OK(i) (term[i] > 0)
#endif
#define P5_OK ((!WRITABLE(0) || lsn[0] >= acked) && (!WRITABLE(1) || lsn[1] >= acked) && \
               (!WRITABLE(2) || lsn[2] >= acked))
/* The candidate's own vote: before the fix src/election.c WhyNotStand
 * checked a standby's own record only, StartVoteRound not at all.
 * -DSELF_V9 (the fix, in src/): every node checks it before standing, and
 * again, with V3, when it raises its term. */
#ifdef SELF_V9
#define SELF_ELIGIBLE(i) MAY_PROMOTE(rec[i], i)
#define OWN_V9(i) MAY_PROMOTE(rec[i], i)
#else
#define SELF_ELIGIBLE(i) (primary[i] || MAY_PROMOTE(rec[i], i))
#define OWN_V9(i) (1)
#endif
#else
#define V9(s, d, key) (1)
#define SELF_ELIGIBLE(i) (1)
#define OWN_V9(i) (1)
#define SYNC_READY(i) (1)
#define COMMIT_TERM_OK(i) (1)
#endif

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
#if MAXSWITCH > 0 && MAXLSN > 0
byte p4_from = NONE;                /* P4: the leader of the latest switchover, */
byte p4_term;                       /* the term it handed over, and the highest */
byte p4_ack;                        /* LSN it acknowledged in that term */
#endif

byte k;                             /* scratch, always 0 between actions */
byte g;                             /* scratch, always 0 between actions */
bit  kg;                            /* scratch, always 0 between actions */

/* ------------------------------------------------------------- helpers */

/* replay output (spin -t): one line per action, then per node: up,
 * term, voted_for (3 = none), leader_term, primary, lsn, round (phase),
 * contact age, lease left, L = leader of its term, W = writer, then for
 * the switchover: so = handing over to (target + 1), ho = target state
 * (hst) and H, dr = claim dropped, kn = leader known (3 = none) */
#define NODE_SHOW(i) printf(" | n%d up%d t%d v%d lt%d pr%d lsn%d ph%d c%d ls%d L%d W%d so%d ho%d/%d dr%d kn%d", i, up[i], term[i], voted[i], lterm[i], primary[i], lsn[i], phase[i], contact[i], lease[i], LEADER(i), WRITABLE(i), swp[i], hst[i], hol[i], dropped[i], knows[i])
#ifdef SYNC
/* then the record (term, version, restricted, eligible), names set/in use, ready,
 * highest waiting write, and the highest acknowledged LSN */
#define SYNC_SHOW(i) printf(" | n%d rec t%d v%d r%d e%d names %d/%d rdy%d w%d", i, RTERM(rec[i]), RVER(rec[i]), RRES(rec[i]), RELIG(rec[i]), nmc[i], nmu[i], rdy[i], wmax[i])
#define SYNC_SHOW_ALL SYNC_SHOW(0); SYNC_SHOW(1); SYNC_SHOW(2); printf(" | acked %d", acked);
#else
#define SYNC_SHOW_ALL
#endif
inline SHOW() {
	NODE_SHOW(0); NODE_SHOW(1); NODE_SHOW(2);
	SYNC_SHOW_ALL
	printf(" | heard%d msgs%d\n", heard[2], nmsg)
}

/* adopt a higher term durably: vote cleared, any round or leadership ends,
 * and so does a handover this node accepted (HandoverTick); a leader that
 * hands over keeps holding commits until it has the target's answer */
inline ADOPT(i, t) {
	if
	:: t > term[i] ->
		term[i] = t; voted[i] = NONE; phase[i] = 0; lease[i] = 0;
		knows[i] = NONE; dropped[i] = 0; HO_CLEAR(i); GAVE_CLEAR(i)
	:: else
	fi
}

/* the target's handover state ends */
inline HO_CLEAR(i) {
	hst[i] = 0; hof[i] = 0; hol[i] = 0
}

/* the leader steps down without a new term (unclear handover outcome,
 * src/switchover.c StepDown): the hold ends with the claim and the lease */
inline STEP_DOWN(i) {
	swp[i] = 0;
#ifndef MUTANT_RESUME_ON_LOSS
	if :: LEADER(i) -> dropped[i] = 1; lease[i] = 0 :: else fi
#endif
}

/* the connection from a to i closes or loses its message: a handover
 * request or reply on it has an unclear outcome for a (peer.c PeerFail) */
inline HO_UNCLEAR(a, i) {
	if
	:: (KIND(LNK(a,i)) == K_HO || KIND(LNK(a,i)) == K_HOR) && swp[a] == i + 1 ->
		STEP_DOWN(a);
		printf("n%d: handover outcome unclear: steps down", a)
	:: else
	fi
}

/* node i stops (crash, or restart for a rewind): its connections close */
inline CUT(i, a, b) {
	if :: cx[LNK(i,a)] -> DONE(LNK(i,a)) :: else fi;
	if :: cx[LNK(i,b)] -> DONE(LNK(i,b)) :: else fi;
	if :: cx[LNK(a,i)] -> HO_UNCLEAR(a, i); DONE(LNK(a,i)) :: else fi;
	if :: cx[LNK(b,i)] -> HO_UNCLEAR(b, i); DONE(LNK(b,i)) :: else fi;
	/* a stale request dies with the target's backend */
	if :: stale != 0 && ((stale >> 12) & 3) == i -> stale = 0; nmsg-- :: else fi
}

/* A heartbeat (or its reply) of caller c/2 whose lrem can no longer raise
 * that node's lease is normalised to lrem 0, so that equivalent states are
 * equal: its term is no longer led by the caller (leader_term never
 * returns to an old term; a dropped claim returns only after a restart,
 * which closes the connections), or lrem <= the lease it has (both count
 * down together).  Run after every action. */
inline NORM() {
	k = 0;
	kg = (switches < MAXSWITCH || hst[0] || hst[1] || hst[2] || stale);
	do
	:: k < 6 ->
		if
		:: (KIND(k) == K_HB || KIND(k) == K_HR) && LREM(k) > 0 &&
		      (!LEADER(k / 2) || TERM(k) != term[k / 2] || LREM(k) <= lease[k / 2]) ->
			cx[k] = cx[k] & ~(7 << 5)
		:: else
		fi;
		if :: KIND(k) == K_HO || (KIND(k) == K_VQ && XFER(k)) -> kg = 1 :: else fi;
#ifdef SYNC
		/* a record in a heartbeat that is not newer than the receiver's,
		 * or a key in a reply older than the leader's, never matters */
		if
		:: KIND(k) == K_HB && HB_REC(k) != 0 && RKEY(HB_REC(k)) <= RKEY(rec[LNK_DST(k)]) ->
			cx[k] = cx[k] & ~(255 << 10)
		:: KIND(k) == K_HR && HR_KEY(k) != 0 && HR_KEY(k) < RKEY(rec[k / 2]) ->
			cx[k] = cx[k] & ~(15 << 9)
		:: else
		fi;
#endif
		k++
	:: else -> break
	od;
	k = 0;
	/* which leader a node knows matters only to V8 and to a handover
	 * request: once no switchover can start and none is under way, it is
	 * forgotten, so that equivalent states are equal */
	if :: !kg -> knows[0] = NONE; knows[1] = NONE; knows[2] = NONE :: else fi;
	kg = 0;
#ifdef SYNC
	/* synchronous-mode state that no longer matters is reset, so that
	 * equivalent states are equal: a node that is down or a standby has
	 * no WAL sender and no waiting backend (its names only matter once it
	 * leads, and a new leader sets them before it is ready); a node that
	 * does not lead its term is not ready and counts no acknowledgement;
	 * names_in_force_lsn is taken anew whenever the manager starts */
	do
	:: k < N ->
		if :: wmax[k] <= acked -> wmax[k] = 0 :: else fi;   /* nothing left to acknowledge */
		if
		:: !up[k] || !primary[k] || (!LEADER(k) && wmax[k] == 0) ->
			nmc[k] = 0; nmu[k] = 1; wmax[k] = 0
		:: else
		fi;
		if
		:: !LEADER(k) -> rdy[k] = 0; av[k * 2] = 0; av[k * 2 + 1] = 0   /* LNK(k, its peers) */
		:: else
		fi;
		if :: !(LEADER(k) && primary[k] && lease[k] > 0) -> nfx[k] = 0 :: else fi;
		/* names in use that release less than others in use do not
		 * matter (a commit is released under any of them): '' (0)
		 * releases the most, then ANY 1 (o1, o2) (3), then ANY 1 (o1) or
		 * (o2) (1, 2), then ANY 2 (4) */
		if
		:: nmu[k] & 1 -> nmu[k] = 1
		:: (nmu[k] & 1) == 0 && (nmu[k] & 8) -> nmu[k] = 8
		:: (nmu[k] & 9) == 0 && (nmu[k] & 6) -> nmu[k] = nmu[k] & 6
		:: else
		fi;
		/* an acknowledgement with an older record than the leader's own
		 * never counts again (a node's record only gets newer) */
		if :: av[k * 2] > 0 && av[k * 2] - 1 < RKEY(rec[k]) -> av[k * 2] = 0 :: else fi;
		if :: av[k * 2 + 1] > 0 && av[k * 2 + 1] - 1 < RKEY(rec[k]) -> av[k * 2 + 1] = 0 :: else fi;
		k++
	:: else -> break
	od;
	k = 0
#endif
}

/* ------------------------------------------------------ node actions */

/* §4: a data node stands, i.e. starts a pre-vote round for term + 1 --
 * also a candidate whose vote round timed out (phase 2).  (A pre-vote
 * round that gets no majority simply stays open: that state can do all
 * that "waiting" can, its late replies can always be lost instead.)  A
 * handover it accepted is over then (its deadline passed, or its transfer
 * round ended without a win: HandoverTick). */
#ifdef PRIMARY_STANDS
#define MAY_STAND_AS_PRIMARY(i) (1)
#else
#define MAY_STAND_AS_PRIMARY(i) ((i) == 0 && lterm[i] == 0)
#endif
inline STAND(i) {
	d_step {
		up[i] && DATA(i) && phase[i] != 1 && term[i] < MAXTERM && !LEADER(i) &&
		   (BOOTSTRAPPING(i) ||
		    (term[i] >= 1 && contact[i] >= FIRE &&
#ifdef STAND_LAG_RULE
		     (primary[i] || lsn[i] >= heard[i]) &&
#endif
		     SELF_ELIGIBLE(i) &&                           /* WhyNotStand, §9 */
		     (!primary[i] || MAY_STAND_AS_PRIMARY(i)))) ->
		phase[i] = 1; HO_CLEAR(i);
		NORM();
		printf("n%d stands (pre-vote for term %d)", i, term[i] + 1); SHOW()
	}
}

/* §8: a target that accepted a handover stands at once for term + 1 with
 * transfer_from = the leader: no pre-vote, its own vote exempt from V3
 * (StartVoteRound); it leaves any round it was in (which would end).
 * hst == 1 implies that its term is still the one handed over: every
 * change of its term ends the handover (HandoverPending) */
inline TRANSFER_STAND(i) {
	d_step {
		up[i] && hst[i] == 1 && term[i] < MAXTERM ->
		term[i]++; voted[i] = i; phase[i] = 2; lease[i] = 0; knows[i] = NONE;
		dropped[i] = 0; GAVE_CLEAR(i); hst[i] = 2;
		printf("n%d stands for term %d on the handover of n%d (H %d)", i, term[i], hof[i], hol[i]); SHOW()
	}
}

/* a candidate sends (or resends) the request of its current round to d */
inline SEND_VQ(s, d) {
	d_step {
		up[s] && phase[s] != 0 && IDLE(LNK(s,d)) ->
		if
		:: phase[s] == 1 -> SEND(LNK(s,d), MK_VQ(term[s] + 1, 1, lsn[s]) | VQ_SY(s))
		:: phase[s] == 2 && hst[s] == 2 -> SEND(LNK(s,d), MK_VQX(term[s], lsn[s], hof[s]) | VQ_SY(s))
		:: else ->          SEND(LNK(s,d), MK_VQ(term[s], 0, lsn[s]) | VQ_SY(s))
		fi;
		printf("n%d -> n%d request_vote pre %d term %d lsn %d transfer_from %d", s, d, PRE(LNK(s,d)), TERM(LNK(s,d)), lsn[s], XFER(LNK(s,d)) - 1); SHOW()
	}
}

/* the leader sends a heartbeat to d */
inline SEND_HB(s, d) {
	d_step {
		LEADER(s) && IDLE(LNK(s,d)) ->
		SEND(LNK(s,d), MK_HB(term[s], LEASE, (HEARS_LSN(d) -> lsn[s] : 0)) | HB_SY(s));
		NORM();
		printf("n%d -> n%d heartbeat term %d", s, d, term[s]); SHOW()
	}
}

/* a transaction that wrote commits: the pre-commit check passed (§6) */
inline COMMIT(i) {
	d_step {
		WRITABLE(i) && SYNC_READY(i) && lsn[i] < MAXLSN && COMMIT_TERM_OK(i) ->
#if REACH == 2
		assert(!(REACH == 2 && i != 0));  /* probe: after a failover, node 1 commits */
#endif
		lsn[i]++;
#ifdef SYNC
		if
		:: term[i] > 0 -> wmax[i] = lsn[i]      /* waits for its standbys */
#ifdef BOOT_ACKS
		:: else -> acked = lsn[i];              /* no names yet: acknowledged at once */
#if REACH == 6
			acker = i;
#endif
#if REACH == 8
			bootack = 1;
#endif
			skip
#else
		:: else
#endif
		fi;
#endif
#if MAXSWITCH > 0 && MAXLSN > 0
		if :: i == p4_from && term[i] == p4_term -> p4_ack = lsn[i] :: else fi;
#endif
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
 * with it the worker) restarts, so volatile state is lost as in RESTART.
 * Only to a leader that is a primary (on a newer timeline: RejoinTick),
 * and not during a switchover of its own */
inline REJOIN(i, s, t) {
	d_step {
		up[i] && primary[i] && term[i] > 0 && !LEADER(i) && swp[i] == 0 &&
		   LEADER(s) && primary[s] ->
		primary[i] = 0; lsn[i] = lsn[s];
		CUT(i, s, t);
		contact[i] = 0; phase[i] = 0; lease[i] = 0; heard[i] = 0;
		knows[i] = NONE; swp[i] = 0; HO_CLEAR(i);
		dropped[i] = (lterm[i] == term[i]);      /* a standby claims nothing */
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
		knows[i] = NONE; swp[i] = 0; HO_CLEAR(i); dropped[i] = 0;
#ifdef WITNESS_LSN_DURABLE
		if :: DATA(i) -> heard[i] = 0 :: else fi;
#else
		heard[i] = 0;
#endif
		NORM();
		printf("n%d CRASHES", i); SHOW()
	}
}

/* restart: last_leader_contact = start time (§6); a primary whose durable
 * leader_term equals its term resumes its claim (LEADER() is derived),
 * without a lease (src/worker.c ResumeLeadership; a standby does not).
 * Everything about a switchover is volatile: a hold and a handover the
 * node accepted are gone. */
#ifdef HANDOVER_DURABLE
#define GAVE(i) gave[i]
#else
#define GAVE(i) 0
#endif
inline RESTART(i) {
	d_step {
		!up[i] ->
		up[i] = 1; contact[i] = 0; phase[i] = 0; lease[i] = 0;
		dropped[i] = (term[i] > 0 && lterm[i] == term[i] && (!primary[i] || GAVE(i)));
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
#ifdef SYNC
		/* a newer synchronous record is adopted durably, whoever sends it
		 * and whatever its term (rpc.c PgClusterAdoptSyncRecord) */
		if :: RKEY(HB_REC(LNK(s,d))) > RKEY(rec[d]) -> rec[d] = HB_REC(LNK(s,d)) :: else fi;
#endif
		if
		:: TERM(LNK(s,d)) == term[d] ->                        /* step 4 */
			assert(lterm[d] != term[d]);        /* P2: a claim of a term d won */
			contact[d] = 0;
			if :: phase[d] == 2 -> phase[d] = 0 :: else fi;
			if :: hst[d] == 2 -> HO_CLEAR(d) :: else fi;      /* its transfer round lost */
#ifndef NO_SELFVOTE_RECHECK
			if :: phase[d] == 1 -> phase[d] = 0 :: else fi;   /* §4 round 1 */
#endif
#if MAXSWITCH > 0
			knows[d] = s;                       /* records it as leader */
#endif
#if defined(HEARD_LAST) && defined(WITNESS_LSN_DURABLE)
			if :: DATA(d) || HB_LSN(LNK(s,d)) > heard[d] -> heard[d] = HB_LSN(LNK(s,d)) :: else fi;
#elif defined(HEARD_LAST)
			heard[d] = HB_LSN(LNK(s,d));
#else
			if :: HB_LSN(LNK(s,d)) > heard[d] -> heard[d] = HB_LSN(LNK(s,d)) :: else fi;
#endif
#ifndef WITNESS_LSN_DURABLE
			if :: !DATA(d) && HB_LSN(LNK(s,d)) > w_seen -> w_seen = HB_LSN(LNK(s,d)) :: else fi;
#endif
			REPLY(LNK(s,d), MK_HR(term[d], LREM(LNK(s,d)), 1) | HR_SY(d))
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
#ifdef SYNC
			av[LNK(s,d)] = HR_KEY(LNK(s,d)) + 1;     /* acked_sync_version */
#endif
			/* lease_until = M + lease_duration; with N = 3, M is the latest
			 * acknowledged send time of the two peers.  The leader counts
			 * its majority acknowledgement as contact (V3): here from M,
			 * the send time (src/election.c), which is earlier than the
			 * arrival of the acknowledgement, so more permissive; for an
			 * acknowledgement sent LEASE or more ticks ago the exact age is
			 * not kept and contact is left as it is (more permissive
			 * still).  A leader that is still a standby (elected on a
			 * handover, not promoted) computes no lease and counts no
			 * contact (LeaseUpdate); the acknowledgement is kept and makes
			 * the lease once it is promoted. */
			if
			:: primary[s] && LREM(LNK(s,d)) > 0 && LEASE - LREM(LNK(s,d)) < contact[s] ->
				contact[s] = LEASE - LREM(LNK(s,d))
			:: else
			fi;
			if
			:: LREM(LNK(s,d)) > lease[s] ->
#if REACH == 6
				/* probe: a failover after an acknowledged commit: another
				 * node gets a lease (and must hold the commit, P5) */
				assert(!(REACH == 6 && acked > 0 && s != acker && primary[s]));
#endif
#if REACH == 8
				/* probe: a failover after a commit of the bootstrap was
				 * acknowledged: another node gets a lease */
				assert(!(REACH == 8 && bootack && s != 0 && primary[s]));
#endif
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

/* d's reply to a (real) vote request of s; g: granted.  A refusal that
 * tells the candidate no higher term is the same as a lost request */
inline VR_REPLY(s, d) {
	if
	:: g || term[d] > TERM(LNK(s,d)) ->
		REPLY(LNK(s,d), MK_VR(TERM(LNK(s,d)), 0, term[d], g))
	:: else ->
		DONE(LNK(s,d))
	fi
}

/* §3.2 request_vote s -> d, and d's reply; refuse: V4/V5 fail (MAXLSN=0) */
inline VQ_DELIVER(s, d, refuse) {
	d_step {
		KIND(LNK(s,d)) == K_VQ && up[d] ->
		printf("n%d <- n%d request_vote pre %d term %d lsn %d", d, s, PRE(LNK(s,d)), TERM(LNK(s,d)), VQ_LSN(LNK(s,d)));
#ifdef BOOT_RECORD
		/* a real vote request: the candidate's record, if newer, is
		 * adopted durably whatever the answer (src/election.c
		 * PgClusterHandleVoteRequest, the fix of issue 8), before V9 */
		if
		:: !PRE(LNK(s,d)) && VQ_KEY(LNK(s,d)) > RKEY(rec[d]) -> rec[d] = VQ_REC(LNK(s,d))
		:: else
		fi;
#endif
		if
		:: PRE(LNK(s,d)) ->                     /* pre-vote: changes nothing */
			if
			:: !refuse && TERM(LNK(s,d)) >= term[d] &&               /* V1 */
			      V9(s, d, VQ_KEY(LNK(s,d))) &&                      /* V9 */
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
		:: XFER(LNK(s,d)) ->                    /* a transfer vote (§8) */
			/* V8, checked before the term is adopted: the term right
			 * after the one in which the voter knows the leader that
			 * handed over; that leader itself only for its target.
			 * Exempt from V3, V4, V5. */
			if
			:: !refuse && V9(s, d, VQ_KEY(LNK(s,d))) &&              /* V9 */
			      V8(s, d, XFER(LNK(s,d)) - 1, TERM(LNK(s,d))) ->
				ADOPT(d, TERM(LNK(s,d)));                            /* V1 */
				if
				:: TERM(LNK(s,d)) == term[d] &&
				      (voted[d] == NONE || voted[d] == s) ->         /* V2 */
					g = 1;
					voted[d] = s
				:: else -> g = 0
				fi
			:: else -> g = 0
			fi;
			VR_REPLY(s, d)
		:: else ->
			ADOPT(d, TERM(LNK(s,d)));                                /* V1 */
			if
			:: !refuse && TERM(LNK(s,d)) == term[d] &&
			      V9(s, d, VQ_KEY(LNK(s,d))) &&                      /* V9 */
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
			VR_REPLY(s, d)
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
			:: contact[s] >= FIRE && OWN_V9(s) ->   /* own vote obeys V3 (and V9) */
				term[s]++; voted[s] = s; phase[s] = 2; lease[s] = 0;
				knows[s] = NONE; dropped[s] = 0; HO_CLEAR(s); GAVE_CLEAR(s)
			:: else -> phase[s] = 0
			fi
#else
			term[s]++; voted[s] = s; phase[s] = 2; lease[s] = 0;
			knows[s] = NONE; dropped[s] = 0; HO_CLEAR(s); GAVE_CLEAR(s)
#endif
		:: !PRE(LNK(s,d)) && GRANT(LNK(s,d)) && phase[s] == 2 &&
		      TERM(LNK(s,d)) == term[s] ->
			/* elected: leader_term durable; a standby is promoted */
			assert(leader_of[term[s]] == NONE || leader_of[term[s]] == s);   /* P2 */
			leader_of[term[s]] = s;
#if REACH == 1
			assert(!(REACH == 1));              /* probe: a leader is elected */
#endif
			lterm[s] = term[s]; phase[s] = 0; lease[s] = 0; dropped[s] = 0;
			if
			:: hst[s] == 2 ->
				/* elected on a handover: promotes only with H (PROMOTE) */
#ifdef MUTANT_EARLY_PROMOTE
				P4_CHECK(s);
				primary[s] = 1; HO_CLEAR(s)
#else
				skip
#endif
			:: else -> primary[s] = 1
			fi;
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
		HO_UNCLEAR(s, d);
		DONE(LNK(s,d));
		NORM();
		SHOW()
	}
}

/* ------------------------------------------------------- switchover (§8) */

/* P4: a target promoted after a transfer election holds every commit the
 * leader that handed over acknowledged in the term it handed over */
inline P4_CHECK(i) {
#if MAXSWITCH > 0 && MAXLSN > 0
	assert(!(hof[i] == p4_from && term[i] == p4_term + 1) || lsn[i] >= p4_ack)
#else
	skip
#endif
}

/* leader l starts a switchover to data node t (PREPARING checks: it leads
 * with a lease; the target's own checks decide the rest): HOLDING -- from
 * now on it acknowledges no commit; H = its LSN; HANDING_OVER -- it sends
 * pg_cluster.handover(term, H) on its connection to t */
inline SO_START(l, t) {
	d_step {
		switches < MAXSWITCH && LEADER(l) && primary[l] && lease[l] > 0 &&
		   swp[l] == 0 && DATA(t) && IDLE(LNK(l,t)) ->
		switches++;
		swp[l] = t + 1;
#ifdef HANDOVER_DURABLE
		gave[l] = 1;
#endif
		SEND(LNK(l,t), MK_HO(term[l], lsn[l]));
#if MAXLSN > 0
		p4_from = l; p4_term = term[l]; p4_ack = lsn[l];
#endif
		NORM();
		printf("n%d SWITCHOVER to n%d: holds commits, H %d, -> handover term %d", l, t, lsn[l], term[l]); SHOW()
	}
}

/* the handover request arrives at t: accepted iff t is a standby that
 * knows l as the leader of exactly that term (WhyRefuseHandover).  With
 * err = 1 (-DERROR_ANSWER) t records the handover and its answer is still
 * an error (e.g. statement_timeout, checked when the event is logged),
 * which l read as a refusal before commit 689744d; with -DERROR_UNCLEAR
 * (what src/peer.c PeerHandleHandoverReply does now) an unclear outcome:
 * l steps down */
#ifdef MUTANT_HANDOVER_ANY_TERM
#define HO_TERM_OK(l, t) (1)
#define STALE_TERM_OK(t) (1)
#else
#define HO_TERM_OK(l, t) (TERM(LNK(l,t)) == term[t])
#define STALE_TERM_OK(t) (((stale >> 3) & 3) == term[t])
#endif
#define HO_ACCEPTS(l, t) (DATA(t) && !primary[t] && HO_TERM_OK(l, t) && knows[t] == l)
inline HO_DELIVER(l, t, err) {
	d_step {
		KIND(LNK(l,t)) == K_HO && up[t] && (!err || HO_ACCEPTS(l, t)) ->
		printf("n%d <- n%d handover term %d H %d", t, l, TERM(LNK(l,t)), HO_LSN(LNK(l,t)));
		if
		:: HO_ACCEPTS(l, t) ->
			hst[t] = 1; hof[t] = l; hol[t] = HO_LSN(LNK(l,t));
			REPLY(LNK(l,t), MK_HOR(!err) | (err * HO_ERRBIT))
		:: else ->
			REPLY(LNK(l,t), MK_HOR(0))
		fi;
		NORM();
		printf(" => accepted %d", HO_ACC(LNK(l,t))); SHOW()
	}
}

/* t's answer arrives at l (o: the third node).  Accepted: DEMOTING, l
 * shuts down to restart as a standby (standby.signal is durable); with
 * stream = 1 its walsender got its last WAL to t first (the shutdown
 * checkpoint; with stream = 0 it did not).  Refused: the hold ends, l
 * carries on.  An answer to a switchover that is over is ignored. */
inline HOR_DELIVER(l, t, o, stream) {
	d_step {
		KIND(LNK(l,t)) == K_HOR && up[l] &&
		   (!stream || (HO_ACC(LNK(l,t)) && swp[l] == t + 1 && up[t] && !primary[t] && lsn[t] < lsn[l])) ->
		printf("n%d <- n%d handover reply accepted %d", l, t, HO_ACC(LNK(l,t)));
		g = HO_ACC(LNK(l,t));
		kg = HO_ERR(LNK(l,t));                  /* (NORM resets kg) */
		DONE(LNK(l,t));
		if
		:: swp[l] == t + 1 && g ->
			if :: stream -> lsn[t] = lsn[l] :: else fi;
			up[l] = 0;
			CUT(l, t, o);
			primary[l] = 0; swp[l] = 0;
			phase[l] = 0; contact[l] = 0; lease[l] = 0; knows[l] = NONE;
			HO_CLEAR(l); dropped[l] = 0; heard[l] = 0;
			printf(" => n%d SHUTS DOWN to rejoin as a standby (its last WAL streamed to n%d: %d)", l, t, stream)
		:: swp[l] == t + 1 && !g && kg ->       /* -DERROR_UNCLEAR: an error answer */
			STEP_DOWN(l);
			printf(" => an error, not a row: unclear, n%d steps down", l)
		:: swp[l] == t + 1 && !g && !kg ->
			swp[l] = 0;
#ifdef HANDOVER_DURABLE
			gave[l] = 0;
#endif
			printf(" => refused: n%d releases the hold", l)
		:: else
		fi;
		g = 0;
		NORM();
		SHOW()
	}
}

/* the switchover's deadline passes while l waits for the answer: it steps
 * down.  An answer on its way may still arrive (and is ignored); a request
 * still on its way becomes stale: t's backend may still process it, later,
 * after newer calls on a new connection (peer.c gives the old one up) */
inline SO_TIMEOUT(l) {
	d_step {
		swp[l] != 0 ->
		k = swp[l] - 1;
		if
		:: KIND(LNK(l,k)) == K_HO ->            /* still counted in nmsg */
			stale = cx[LNK(l,k)] | (l << 10) | (k << 12);
			cx[LNK(l,k)] = 0
		:: else
		fi;
		k = 0;
		STEP_DOWN(l);
		NORM();
		printf("n%d: switchover deadline: steps down", l); SHOW()
	}
}

/* t's backend processes the stale handover request of l (its answer goes
 * nowhere) */
inline STALE_DELIVER() {
	d_step {
		stale != 0 && up[(stale >> 12) & 3] ->
		k = (stale >> 10) & 3;                  /* l */
		g = (stale >> 12) & 3;                  /* t */
		printf("n%d <- n%d stale handover term %d H %d", g, k, (stale >> 3) & 3, (stale >> 5) & 3);
		if
		:: DATA(g) && !primary[g] && STALE_TERM_OK(g) && knows[g] == k ->
			hst[g] = 1; hof[g] = k; hol[g] = (stale >> 5) & 3;
			printf(" => accepted")
		:: else
		fi;
		stale = 0; nmsg--;
		k = 0; g = 0;
		NORM();
		SHOW()
	}
}

inline STALE_LOSE() {
	d_step {
		stale != 0 ->
		stale = 0; nmsg--;
		NORM();
		printf("lost: the stale handover request"); SHOW()
	}
}

/* a target elected on a handover promotes once it holds H (the old
 * leader's shutdown checkpoint past H replayed, or H at the deadline) */
inline PROMOTE(i) {
	d_step {
		up[i] && hst[i] == 2 && LEADER(i) && !primary[i] && lsn[i] >= hol[i] ->
		P4_CHECK(i);
#if REACH == 3
		assert(!(REACH == 3));              /* probe: a switchover completes */
#endif
		primary[i] = 1; HO_CLEAR(i);
		NORM();
		printf("n%d PROMOTES after the handover (lsn %d)", i, lsn[i]); SHOW()
	}
}

/* ... or gives up at the deadline (without H): the claim ends, no new term */
inline GIVEUP(i) {
	d_step {
		up[i] && hst[i] == 2 && LEADER(i) && !primary[i] ->
		dropped[i] = 1; lease[i] = 0; HO_CLEAR(i);
		NORM();
		printf("n%d gives the handover up: steps down unpromoted", i); SHOW()
	}
}

/* ------------------------------------------------ synchronous mode (§9) */
#ifdef SYNC

/* PublishRecord: a new version of the record, durable here (heartbeats
 * spread it); the bound MAXVER stops the manager instead */
inline PUBLISH(i, r, e) {
	if
	:: RVER(rec[i]) < MAXVER ->
		rec[i] = MKREC(RVER(rec[i]) + 1, r, (r) * (e), term[i]);
		printf(" => n%d publishes record v%d restricted %d eligible %d", i, RVER(rec[i]), RRES(rec[i]), RELIG(rec[i]))
	:: else
	fi
}

/* One run of leader i's manager (SyncRepTick) with the data standbys h
 * (a mask) streaming: which ones a WAL sender shows as streaming is left
 * free (any standby, even one that is down: its WAL sender may not have
 * noticed yet).  y1 = target restricted, y2 = growing, y3/y4 = k/list of
 * the names to set. */
#define TEL(i, h) ((1 << (i)) | (h))                         /* target eligible */
inline SYNC_TICK(i, a, b, h) {
	d_step {
		LEADER(i) && primary[i] && lease[i] > 0 && ((h) & ~STBY(a, b)) == 0 ->
		printf("n%d sync manager, streaming %d", i, h);
		y1 = (NBITS(h) < KQ);
		if
		:: !ON_MAJORITY(i, a, b) ->
			printf(" => waits for a majority to store v%d", RVER(rec[i]))   /* a record of ours on its way */
		:: else ->
			if
			:: y1 && (!RRES(rec[i]) || (RELIG(rec[i]) & ~TEL(i, h)) != 0) ->
				/* 1. shrink: first the record, by itself */
				if
				:: RRES(rec[i]) -> y4 = RELIG(rec[i]) & TEL(i, h)     /* Intersect */
				:: else -> y4 = TEL(i, h)
				fi;
				PUBLISH(i, 1, y4)
			:: else ->
				/* 2. the names: while nodes are to become eligible, every
				 * streaming standby must acknowledge */
				y2 = (RRES(rec[i]) && (!y1 || (TEL(i, h) & ~RELIG(rec[i])) != 0));
				if
				:: y2 || y1 -> y3 = NBITS(h); y4 = (h)
				:: else -> y3 = KQ; y4 = DPEERS(a, b)
				fi;
				/* the number of 'ANY y3 (y4)', in y1 from here on */
				if
				:: y3 == 0 || y4 == 0 -> y1 = 0
				:: else -> if
					:: y3 >= 2 -> y1 = 4
					:: else -> if
						:: y4 == (1 << (a)) -> y1 = 1
						:: y4 == (1 << (b)) -> y1 = 2
						:: else -> y1 = 3
						fi
					fi
				fi;
				if
				:: y1 != nmc[i] ->                                 /* SetNames */
					nmc[i] = y1;
					nmu[i] = nmu[i] | (1 << nmc[i]);
					nfx[i] = 0;
					printf(" => sets names %d", nmc[i])
				:: y1 == nmc[i] && nmu[i] != (1 << nmc[i]) ->
					printf(" => names %d not in force yet", nmc[i])
				:: else ->
					if :: nfx[i] == 0 -> nfx[i] = lsn[i] + 1 :: else fi;
					if
					:: NBITS(y4 & (h) & FLUSHED(a, b, nfx[i] - 1)) >= y3 ->
						if
						:: y2 ->                /* 3. they become eligible */
#if REACH == 7
							assert(!(REACH == 7 && acked > 0));   /* probe: a record grows after an acknowledgement */
#endif
							PUBLISH(i, NBITS(h) < KQ, TEL(i, h))
						:: else ->
							rdy[i] = 1;
							printf(" => ready (names %d, x %d)", nmc[i], nfx[i] - 1)
						fi
					:: else ->
						printf(" => waits for flush up to %d", nfx[i] - 1)
					fi
				fi
			fi
		fi;
		y1 = 0; y2 = 0; y3 = 0; y4 = 0;
		NORM();
		SHOW()
	}
}

#ifdef BOOT_RECORD
/* the bootstrap primary in synchronous mode, before the first election
 * (term 0), records durably that it alone may be promoted: version + 1 of
 * term 0, restricted to itself (src/syncrep.c BootstrapTick); its commits
 * wait for that (BOOT_READY).  When it does so is left free (it may also
 * never do it, and then never commit in term 0) */
inline BOOT_PUBLISH(i) {
	d_step {
		up[i] && DATA(i) && primary[i] && term[i] == 0 && !BOOT_READY(i) && RVER(rec[i]) < MAXVER ->
		rec[i] = MKREC(RVER(rec[i]) + 1, 1, 1 << (i), 0);
		NORM();
		printf("n%d bootstraps in synchronous mode: publishes record v%d restricted to itself", i, RVER(rec[i])); SHOW()
	}
}
#define BOOT_ACTIONS(i) :: BOOT_PUBLISH(i)
#else
#define BOOT_ACTIONS(i)
#endif

/* every WAL sender of node i now uses the names last set (NamesInForce;
 * the residual assumption of §9: they re-read them within 100 ms) */
inline IN_FORCE(i) {
	d_step {
		up[i] && nmu[i] != (1 << nmc[i]) ->
		nmu[i] = 1 << nmc[i];
		printf("n%d: names %d in force", i, nmc[i]); SHOW()
	}
}

/* a backend of leader i acknowledges the commit at LSN c to its client:
 * released by its WAL senders (fence.c CommitReplicated) and the lease
 * still valid at the second look (XACT_EVENT_COMMIT) */
inline ACK(i, a, b, c) {
	d_step {
		LEADER(i) && primary[i] && lease[i] > 0 && (c) > acked && (c) <= wmax[i] && REL(i, a, b, c) ->
		acked = c;
#if REACH == 4
		assert(!(REACH == 4));              /* probe: a commit is acknowledged */
#endif
#if REACH == 5
		assert(!(REACH == 5 && RRES(rec[i])));  /* probe: ... by a leader with a restricted record */
#endif
#if REACH == 6
		acker = i;
#endif
		printf("n%d ACKNOWLEDGES lsn %d", i, c); SHOW()
	}
}

/* node s's heartbeat to d (every node heartbeats every peer; a follower
 * its leader only every 10th interval, docs/protocol.md §3.1) carries its
 * record; d adopts a newer one.  For a node that does not lead only the
 * record is modelled, delivered at once or never (lost: a skipped
 * heartbeat is one of these); a leader's heartbeats are the messages above */
inline GOSSIP(s, d) {
	d_step {
		up[s] && up[d] && !LEADER(s) && RKEY(rec[s]) > RKEY(rec[d]) ->
		rec[d] = rec[s];
		NORM();
		printf("n%d <- n%d record v%d restricted %d eligible %d", d, s, RVER(rec[d]), RRES(rec[d]), RELIG(rec[d])); SHOW()
	}
}

#define ACKS(i, a, b) :: ACK(i, a, b, 1) ACK2(i, a, b)
#if MAXLSN >= 2
#define ACK2(i, a, b) :: ACK(i, a, b, 2)
#else
#define ACK2(i, a, b)
#endif
#define SYNC_ACTIONS(i, a, b) \
	:: SYNC_TICK(i, a, b, 0) \
	:: SYNC_TICK(i, a, b, 1 << (a)) \
	:: SYNC_TICK(i, a, b, 1 << (b)) \
	:: SYNC_TICK(i, a, b, (1 << (a)) | (1 << (b))) \
	:: IN_FORCE(i) \
	ACKS(i, a, b) \
	:: GOSSIP(i, a) \
	:: GOSSIP(i, b)
#else
#define SYNC_ACTIONS(i, a, b)
#define BOOT_ACTIONS(i)
#endif

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
	:: RESTART(i) \
	SWITCH_ACTIONS(i, a, b) \
	SYNC_ACTIONS(i, a, b)

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

#if MAXSWITCH > 0
#define SWITCH_ACTIONS(i, a, b) \
	:: SO_START(i, a) \
	:: SO_START(i, b) \
	:: SO_TIMEOUT(i) \
	:: TRANSFER_STAND(i) \
	:: PROMOTE(i) \
	:: GIVEUP(i)
#if MAXLSN > 0
#define HO_STREAMED(s, d, o) :: HOR_DELIVER(s, d, o, 1)
#else
#define HO_STREAMED(s, d, o)
#endif
#ifdef ERROR_ANSWER
#define HO_ERROR(s, d) :: HO_DELIVER(s, d, 1)
#else
#define HO_ERROR(s, d)
#endif
#define HO_CONN(s, d, o) \
	:: HO_DELIVER(s, d, 0) \
	HO_ERROR(s, d) \
	:: HOR_DELIVER(s, d, o, 0) \
	HO_STREAMED(s, d, o)
#define SWITCH_GLOBAL \
	:: STALE_DELIVER() \
	:: STALE_LOSE()
#else
#define SWITCH_ACTIONS(i, a, b)
#define HO_CONN(s, d, o)
#define SWITCH_GLOBAL
#endif

/* the connection from s to d (o: the third node): delivery both ways, and
 * loss */
#define CONN(s, d, o) \
	:: HB_DELIVER(s, d) \
	:: HR_DELIVER(s, d) \
	:: VQ_DELIVER(s, d, 0) \
	VQ_REFUSED(s, d) \
	:: VR_DELIVER(s, d) \
	HO_CONN(s, d, o) \
	:: LOSE(s, d)

active proctype cluster()
{
	primary[0] = 1;          /* node 0 is the bootstrap primary, term 0 */
	do
	:: TICK()
	NODE(0, 1, 2)
	BOOT_ACTIONS(0)          /* only node 0 is a primary in term 0 */
	NODE(1, 0, 2)
	SWITCH_GLOBAL
	CONN(0, 1, 2)
	CONN(1, 0, 2)
	CONN(0, 2, 1)
	CONN(1, 2, 0)
#ifdef THREE_DATA
	NODE(2, 0, 1)
	CONN(2, 0, 1)
	CONN(2, 1, 0)
#else
	:: CRASH(2, 0, 1)        /* the witness only answers */
	:: RESTART(2)
#ifdef SYNC
	:: GOSSIP(2, 0)
	:: GOSSIP(2, 1)
#endif
#endif
	od
}

#ifdef SYNC
/* P5 (I2): no writer lacks an acknowledged commit */
active proctype monitor_p5()
{
	atomic {
		!P5_OK ->
		printf("P5 VIOLATED: a writer lacks an acknowledged commit (acked %d)", acked); SHOW();
		assert(p5_acked_commit_lost)
	}
}
#endif

/* P1: never two writers at the same instant */
active proctype monitor()
{
	atomic {
		!(WRITABLE(0) + WRITABLE(1) + WRITABLE(2) <= 1 && LEASE_ORDER_OK) ->
		printf("P1 VIOLATED: two writers, or a write in term 0 after a lease"); SHOW();
		assert(false)
	}
}
