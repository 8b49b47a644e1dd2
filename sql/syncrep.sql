--
-- Synchronous mode on one node: the parameter, the synchronous record a
-- heartbeat carries, and rule V9 for votes.
--
SHOW pg_cluster.synchronous_mode;
ALTER SYSTEM SET pg_cluster.synchronous_mode = 'sometimes';
SET pg_cluster.synchronous_mode = 'quorum';
SELECT synchronous_mode, sync_record, commits_not_replicated FROM pg_cluster.status;

-- a heartbeat carrying a newer record: adopted, durably, before the answer
SELECT sync_version FROM pg_cluster.heartbeat('n2', (SELECT system_identifier FROM pg_cluster.status),
	'standby', 7, NULL, 1, '0/3000000', now(), 3, false, 0, false, 5, true, 'n1', 0, 0, '0/0');
SELECT sync_record FROM pg_cluster.status;
SELECT kind, detail FROM pg_cluster.events WHERE kind = 'sync_record';
-- an older record changes nothing
SELECT sync_version FROM pg_cluster.heartbeat('n2', (SELECT system_identifier FROM pg_cluster.status),
	'standby', 7, NULL, 1, '0/3000000', now(), 3, false, 0, false, 4, false, '', 0, 0, '0/0');
SELECT sync_record FROM pg_cluster.status;

-- V9: a candidate that knows an older record, or that the record leaves
-- out, gets no vote, not even a pre-vote
SELECT granted, reason FROM pg_cluster.request_vote('n2',
	(SELECT system_identifier FROM pg_cluster.status), 8, 1, 'FFFF/0', true, 3, NULL, 4, 0, false, '', 0);
SELECT granted, reason FROM pg_cluster.request_vote('n2',
	(SELECT system_identifier FROM pg_cluster.status), 8, 1, 'FFFF/0', true, 3, NULL, 5, 0, false, '', 0);
-- the nodes view tells who may be promoted, and why not
SELECT node_name, eligible, why_not_eligible FROM pg_cluster.nodes ORDER BY node_name;

-- records are ordered by (term of the leader that made them, version): a
-- record of a later term supersedes every version of the earlier terms,
-- so two leaders' records of one version are never taken for each other
SELECT sync_version, sync_term FROM pg_cluster.heartbeat('n2', (SELECT system_identifier FROM pg_cluster.status),
	'standby', 7, NULL, 1, '0/3000000', now(), 3, false, 0, false, 1, true, 'n2', 6, 0, '0/0');
SELECT sync_record FROM pg_cluster.status;
-- V9 in that order: version 9 of term 5 is older than version 1 of term 6
SELECT granted, reason FROM pg_cluster.request_vote('n2',
	(SELECT system_identifier FROM pg_cluster.status), 8, 1, 'FFFF/0', true, 3, NULL, 9, 5, false, '', 0);
-- a pre-vote carrying a newer record changes nothing
SELECT count(*) AS answered FROM pg_cluster.request_vote('n2',
	(SELECT system_identifier FROM pg_cluster.status), 8, 1, 'FFFF/0', true, 3, NULL, 1, 7, true, 'n2', 0);
SELECT sync_record FROM pg_cluster.status;
-- a real vote request carries the candidate's record: a newer one is
-- adopted durably, whatever the answer (here refused: a stale term)
SELECT granted, reason FROM pg_cluster.request_vote('n2',
	(SELECT system_identifier FROM pg_cluster.status), 6, 1, 'FFFF/0', false, 3, NULL, 1, 7, true, 'n2', 0);
SELECT sync_record FROM pg_cluster.status;
SELECT kind, node_name, detail FROM pg_cluster.events WHERE kind = 'sync_record' ORDER BY seq;
