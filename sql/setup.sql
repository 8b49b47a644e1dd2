--
-- The extension installs its schema, views and functions.
--
CREATE EXTENSION pg_cluster;

SELECT extname, extversion FROM pg_extension WHERE extname = 'pg_cluster';

-- everything lives in schema pg_cluster
SELECT p.oid::regprocedure AS function
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'pg_cluster'
ORDER BY p.oid::regprocedure::text;

SELECT c.relname, c.relkind
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'pg_cluster'
ORDER BY 1;

-- the RPC is internal: not executable by PUBLIC, only by pgcluster_peer
SELECT has_function_privilege('public',
	'pg_cluster.heartbeat(text,text,text,bigint,text,integer,pg_lsn,timestamptz,integer,boolean,bigint,boolean,bigint,boolean,text,bigint,bigint,pg_lsn)',
	'EXECUTE') AS public_can_heartbeat,
	has_function_privilege('pgcluster_peer',
	'pg_cluster.heartbeat(text,text,text,bigint,text,integer,pg_lsn,timestamptz,integer,boolean,bigint,boolean,bigint,boolean,text,bigint,bigint,pg_lsn)',
	'EXECUTE') AS peer_role_can_heartbeat;

-- so are the votes; pause and resume are for pgcluster_admin
SELECT has_function_privilege('public',
	'pg_cluster.request_vote(text,text,bigint,integer,pg_lsn,boolean,integer,text,bigint,bigint,boolean,text,bigint)',
	'EXECUTE') AS public_can_vote,
	has_function_privilege('public', 'pg_cluster.pause()', 'EXECUTE') AS public_can_pause,
	has_function_privilege('pgcluster_admin', 'pg_cluster.pause()', 'EXECUTE') AS admin_can_pause;

-- switchover is for pgcluster_admin; its internal halves for pgcluster_peer
SELECT f, has_function_privilege('public', f, 'EXECUTE') AS public_can_call,
	has_function_privilege('pgcluster_admin', f, 'EXECUTE') AS admin_can_call,
	has_function_privilege('pgcluster_peer', f, 'EXECUTE') AS peer_can_call
FROM unnest(ARRAY['pg_cluster.switchover(text,interval)',
	'pg_cluster.request_switchover(text,integer,text,text,integer)',
	'pg_cluster.handover(text,text,bigint,pg_lsn,integer,integer)']) AS f;

-- the views are for pg_monitor, not PUBLIC
SELECT v, has_table_privilege('public', v, 'SELECT') AS public_can_read,
	has_table_privilege('pg_monitor', v, 'SELECT') AS pg_monitor_can_read
FROM unnest(ARRAY['pg_cluster.nodes', 'pg_cluster.status', 'pg_cluster.events']) AS v;

CREATE ROLE regress_monitor IN ROLE pg_monitor;
CREATE ROLE regress_nobody;
SET ROLE regress_monitor;
SELECT node_name, role FROM pg_cluster.status;
SELECT count(*) > 0 AS has_nodes FROM pg_cluster.nodes;
-- monitoring does not allow calling the RPC
SELECT * FROM pg_cluster.heartbeat('n2', '1', 'standby', 0, NULL, 1, '0/0', now(), 3, false, 0, false, 0, false, '', 0, 0, '0/0');
RESET ROLE;
SET ROLE regress_nobody;
SELECT node_name FROM pg_cluster.status;
SELECT * FROM pg_cluster.heartbeat('n2', '1', 'standby', 0, NULL, 1, '0/0', now(), 3, false, 0, false, 0, false, '', 0, 0, '0/0');
RESET ROLE;
