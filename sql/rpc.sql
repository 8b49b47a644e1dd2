--
-- The heartbeat RPC as a peer calls it.
--
-- a sender that is not in pg_cluster.peers is refused (SQLSTATE PC001)
\set VERBOSITY default
SELECT * FROM pg_cluster.heartbeat('n9', (SELECT system_identifier FROM pg_cluster.status),
	'standby', 0, NULL, 1, '0/0', now(), 3, false, 0, false, 0, false, '', 0, 0, '0/0');
-- a sender from another cluster is refused (terse: the detail has our identifier)
\set VERBOSITY terse
SELECT * FROM pg_cluster.heartbeat('n2', '12345', 'standby', 0, NULL, 1, '0/0', now(), 3, false, 0, false, 0, false, '', 0, 0, '0/0');
\set VERBOSITY default
-- a sender speaking another protocol version is refused
SELECT * FROM pg_cluster.heartbeat('n2', (SELECT system_identifier FROM pg_cluster.status),
	'standby', 0, NULL, 1, '0/0', now(), 99, false, 0, false, 0, false, '', 0, 0, '0/0');
-- null arguments are refused
SELECT * FROM pg_cluster.heartbeat(NULL, '1', 'standby', 0, NULL, 1, '0/0', now(), 3, false, 0, false, 0, false, '', 0, 0, '0/0');
\set VERBOSITY terse
SELECT kind, node_name, regexp_replace(detail, 'ours is \d+', 'ours is N') AS detail
FROM pg_cluster.events WHERE kind = 'peer_refused' ORDER BY seq;

-- a good heartbeat from n2 is recorded, and answered with our own view
SELECT node_name, system_identifier = (SELECT system_identifier FROM pg_cluster.status) AS same_cluster,
	role, term, leader, timeline, protocol_version
FROM pg_cluster.heartbeat('n2', (SELECT system_identifier FROM pg_cluster.status),
	'standby', 0, 'n1', 1, '0/3000000', now(), 3, false, 0, false, 0, false, '', 0, 0, '0/0');
SELECT node_name, role, term, timeline, lsn, last_heard IS NOT NULL AS heard,
	heartbeats_received
FROM pg_cluster.nodes WHERE node_name = 'n2';

-- a transaction prepared while bootstrapping (commits allowed), committed
-- below once the node is fenced
CREATE TABLE twophase (x int);
BEGIN;
INSERT INTO twophase VALUES (1);
PREPARE TRANSACTION 'pgc_regress_2pc';

--
-- Votes.  This node is bootstrapping (term 0, no leader yet); its peer n2
-- asks for votes.  A pre-vote changes nothing; n2 is behind us, so refused.
--
SELECT term, granted, regexp_replace(reason, 'ours .*', 'ours (our LSN)') AS reason
FROM pg_cluster.request_vote('n2',
	(SELECT system_identifier FROM pg_cluster.status), 1, 1, '0/1', true, 3, NULL, 0, 0, false, '', 0);
-- candidates are ordered by the term of their WAL's last term marker, then
-- the LSN, not by timeline: one on timeline 99 with less WAL is behind
SELECT wal_term FROM pg_cluster.status;
SELECT term, granted, regexp_replace(reason, 'ours .*', 'ours (our LSN)') AS reason
FROM pg_cluster.request_vote('n2',
	(SELECT system_identifier FROM pg_cluster.status), 1, 99, '0/1', true, 3, NULL, 0, 0, false, '', 0);
-- once the worker has run for failover_timeout (a voter refuses before),
-- a candidate with more WAL gets a pre-vote...
DO $$
BEGIN
	FOR i IN 1..300 LOOP
		EXIT WHEN (SELECT now() - worker_started_at > interval '1.1 s' FROM pg_cluster.status);
		PERFORM pg_sleep(0.1);
	END LOOP;
END
$$;
SELECT term, granted, reason FROM pg_cluster.request_vote('n2',
	(SELECT system_identifier FROM pg_cluster.status), 1, 1, 'FFFF/0', true, 3, NULL, 0, 0, false, '', 0);
SELECT term, voted_for FROM pg_cluster.status;
-- ...and a real vote, on disk before the answer; one vote per term
SELECT term, granted, reason FROM pg_cluster.request_vote('n2',
	(SELECT system_identifier FROM pg_cluster.status), 1, 1, 'FFFF/0', false, 3, NULL, 0, 0, false, '', 0);
SELECT term, voted_for FROM pg_cluster.status;
SELECT term, granted, reason FROM pg_cluster.request_vote('n9',
	(SELECT system_identifier FROM pg_cluster.status), 1, 1, 'FFFF/0', false, 3, NULL, 0, 0, false, '', 0);
-- a stale term is refused
SELECT term, granted, reason FROM pg_cluster.request_vote('n2',
	(SELECT system_identifier FROM pg_cluster.status), 0, 1, 'FFFF/0', false, 3, NULL, 0, 0, false, '', 0);
SELECT kind, term, detail FROM pg_cluster.events WHERE kind IN ('voted', 'vote_declined') ORDER BY seq;

-- the fence: this node is a primary of term 1 that does not lead it
CREATE TABLE fenced_write (x int);
SELECT fenced FROM pg_cluster.status;
-- COMMIT PREPARED commits too: refused, the transaction stays prepared
COMMIT PREPARED 'pgc_regress_2pc';
SELECT gid FROM pg_prepared_xacts;
-- ROLLBACK PREPARED commits nothing: allowed
ROLLBACK PREPARED 'pgc_regress_2pc';
SELECT count(*) AS prepared FROM pg_prepared_xacts;
SELECT count(*) AS rows FROM twophase;
-- reads still work
SELECT count(*) > 0 AS can_read FROM pg_class;

--
-- Maintenance mode
--
SELECT pg_cluster.pause();
SELECT pg_cluster.pause();
SELECT paused FROM pg_cluster.status;
-- while paused, votes are refused
SELECT granted, reason FROM pg_cluster.request_vote('n2',
	(SELECT system_identifier FROM pg_cluster.status), 2, 1, 'FFFF/0', true, 3, NULL, 0, 0, false, '', 0);
SELECT pg_cluster.resume();
SELECT paused FROM pg_cluster.status;
SELECT kind, detail FROM pg_cluster.events WHERE kind IN ('paused', 'resumed') ORDER BY seq;

-- a higher term in a heartbeat is adopted and made durable before the answer
SELECT term FROM pg_cluster.heartbeat('n2', (SELECT system_identifier FROM pg_cluster.status),
	'standby', 7, NULL, 1, '0/3000000', now(), 3, false, 0, false, 0, false, '', 0, 0, '0/0');
SELECT term, voted_for FROM pg_cluster.status;
SELECT kind, term, detail FROM pg_cluster.events WHERE kind = 'term_changed';
-- terms never go back
SELECT term FROM pg_cluster.heartbeat('n2', (SELECT system_identifier FROM pg_cluster.status),
	'standby', 3, NULL, 1, '0/3000000', now(), 3, false, 0, false, 0, false, '', 0, 0, '0/0');
SELECT term FROM pg_cluster.status;
