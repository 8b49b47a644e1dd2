--
-- The views on a node whose only peer is down.
--
SELECT node_name, node_role, role, term >= 0 AS has_term, leader, fenced,
	nodes_total, peers_reachable, has_quorum, worker_pid IS NOT NULL AS worker_running,
	heartbeat_interval_ms, failover_timeout_ms
FROM pg_cluster.status;

-- the worker publishes its state shortly after start
DO $$
BEGIN
	FOR i IN 1..300 LOOP
		EXIT WHEN (SELECT state FROM pg_cluster.status) <> 'starting';
		PERFORM pg_sleep(0.1);
	END LOOP;
END
$$;
-- a primary whose cluster never had a leader bootstraps: it takes writes
-- and stands for term 1 (in vain: n2 never answers)
SELECT state IN ('bootstrapping', 'candidate') AS bootstrapping, fenced, term
FROM pg_cluster.status;
CREATE TABLE bootstrap_write (x int);
DROP TABLE bootstrap_write;

SELECT node_name, host, port, role, reachable, is_leader, is_self,
	timeline IS NOT NULL AS has_timeline, lsn IS NOT NULL AS has_lsn, lag_bytes
FROM pg_cluster.nodes WHERE is_self;

SELECT node_name, host, port, role, reachable, is_leader, is_self, term, lsn, refused
FROM pg_cluster.nodes WHERE NOT is_self;

-- events are ordered and include the worker's start
SELECT kind FROM pg_cluster.events WHERE kind IN ('worker_started', 'state_file_created') ORDER BY seq;
SELECT bool_and(seq > 0) AND count(*) = count(DISTINCT seq) AS seq_unique FROM pg_cluster.events;

-- connection URIs for writers and readers
SELECT pg_cluster.connection_uri();
SELECT pg_cluster.connection_uri(read_only => true);
