--
-- The heartbeat RPC as a peer calls it.
--
-- a sender that is not in pg_cluster.peers is refused (SQLSTATE PC001)
\set VERBOSITY default
SELECT * FROM pg_cluster.heartbeat('n9', (SELECT system_identifier FROM pg_cluster.status),
	'standby', 0, NULL, 1, '0/0', now(), 1);
-- a sender from another cluster is refused (terse: the detail has our identifier)
\set VERBOSITY terse
SELECT * FROM pg_cluster.heartbeat('n2', '12345', 'standby', 0, NULL, 1, '0/0', now(), 1);
\set VERBOSITY default
-- a sender speaking another protocol version is refused
SELECT * FROM pg_cluster.heartbeat('n2', (SELECT system_identifier FROM pg_cluster.status),
	'standby', 0, NULL, 1, '0/0', now(), 99);
-- null arguments are refused
SELECT * FROM pg_cluster.heartbeat(NULL, '1', 'standby', 0, NULL, 1, '0/0', now(), 1);
\set VERBOSITY terse
SELECT kind, node_name, regexp_replace(detail, 'ours is \d+', 'ours is N') AS detail
FROM pg_cluster.events WHERE kind = 'peer_refused' ORDER BY seq;

-- a good heartbeat from n2 is recorded, and answered with our own view
SELECT node_name, system_identifier = (SELECT system_identifier FROM pg_cluster.status) AS same_cluster,
	role, term, leader, timeline, protocol_version
FROM pg_cluster.heartbeat('n2', (SELECT system_identifier FROM pg_cluster.status),
	'standby', 0, 'n1', 1, '0/3000000', now(), 1);
SELECT node_name, role, term, timeline, lsn, last_heard IS NOT NULL AS heard,
	heartbeats_received
FROM pg_cluster.nodes WHERE node_name = 'n2';

-- a higher term in a heartbeat is adopted by the worker and made durable
SELECT term FROM pg_cluster.heartbeat('n2', (SELECT system_identifier FROM pg_cluster.status),
	'standby', 7, NULL, 1, '0/3000000', now(), 1);
DO $$
BEGIN
	FOR i IN 1..300 LOOP
		EXIT WHEN (SELECT term FROM pg_cluster.status) = 7;
		PERFORM pg_sleep(0.1);
	END LOOP;
END
$$;
SELECT term, voted_for FROM pg_cluster.status;
SELECT kind, term, detail FROM pg_cluster.events WHERE kind = 'term_changed';
-- terms never go back
SELECT term FROM pg_cluster.heartbeat('n2', (SELECT system_identifier FROM pg_cluster.status),
	'standby', 3, NULL, 1, '0/3000000', now(), 1);
SELECT term FROM pg_cluster.status;
