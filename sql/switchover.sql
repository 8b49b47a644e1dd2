--
-- Switchover refusals on one node.  This node is a primary of term 7
-- (adopted in rpc.sql) that leads nothing, and its peer n2 never answers:
-- every call is refused and changes nothing.
--
\set VERBOSITY default
-- bad arguments
SELECT pg_cluster.switchover('n2', '10 ms');
SELECT pg_cluster.switchover('n2', '2 hours');
SELECT pg_cluster.switchover('n2', NULL);
SELECT pg_cluster.switchover('');
-- without a leader there is nobody to hand over
SELECT pg_cluster.switchover();
SELECT pg_cluster.switchover('n2');
-- a role outside pgcluster_admin may not call it
SET ROLE regress_monitor;
SELECT pg_cluster.switchover('n2');
RESET ROLE;
-- nothing changed
SELECT term, leader, fenced, paused FROM pg_cluster.status;
SELECT count(*) AS switchover_events FROM pg_cluster.events WHERE kind LIKE 'switchover%';

-- the internal halves check their caller like every RPC
SELECT * FROM pg_cluster.handover('n9', (SELECT system_identifier FROM pg_cluster.status),
	7, '0/0', 1000, 3);
SELECT * FROM pg_cluster.request_switchover('n2', 1000, 'n9',
	(SELECT system_identifier FROM pg_cluster.status), 3);
-- a primary does not take over from anyone
SELECT * FROM pg_cluster.handover('n2', (SELECT system_identifier FROM pg_cluster.status),
	7, '0/0', 1000, 3);
SELECT kind, node_name, detail FROM pg_cluster.events WHERE kind = 'handover_refused';
-- and only the leader runs a switchover for another node
SELECT * FROM pg_cluster.request_switchover('n2', 1000, 'n2',
	(SELECT system_identifier FROM pg_cluster.status), 3);
SELECT * FROM pg_cluster.request_switchover(NULL, 10, 'n2',
	(SELECT system_identifier FROM pg_cluster.status), 3);
