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
	'standby', 7, NULL, 1, '0/3000000', now(), 2, false, 0, false, 5, true, 'n1');
SELECT sync_record FROM pg_cluster.status;
SELECT kind, detail FROM pg_cluster.events WHERE kind = 'sync_record';
-- an older record changes nothing
SELECT sync_version FROM pg_cluster.heartbeat('n2', (SELECT system_identifier FROM pg_cluster.status),
	'standby', 7, NULL, 1, '0/3000000', now(), 2, false, 0, false, 4, false, '');
SELECT sync_record FROM pg_cluster.status;

-- V9: a candidate that knows an older record, or that the record leaves
-- out, gets no vote, not even a pre-vote
SELECT granted, reason FROM pg_cluster.request_vote('n2',
	(SELECT system_identifier FROM pg_cluster.status), 8, 1, 'FFFF/0', true, 2, NULL, 4);
SELECT granted, reason FROM pg_cluster.request_vote('n2',
	(SELECT system_identifier FROM pg_cluster.status), 8, 1, 'FFFF/0', true, 2, NULL, 5);
-- the nodes view tells who may be promoted, and why not
SELECT node_name, eligible, why_not_eligible FROM pg_cluster.nodes ORDER BY node_name;
