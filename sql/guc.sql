--
-- Every pg_cluster parameter is checked; a bad value is refused and
-- changes nothing.  ALTER SYSTEM runs the same check hooks as a reload.
--
SHOW pg_cluster.node_name;
SHOW pg_cluster.peers;
SHOW pg_cluster.heartbeat_interval;
SHOW pg_cluster.failover_timeout;
SHOW pg_cluster.connect_timeout;
SHOW pg_cluster.node_role;

-- malformed peer lists
ALTER SYSTEM SET pg_cluster.peers = 'n1';
ALTER SYSTEM SET pg_cluster.peers = 'n1=127.0.0.1';
ALTER SYSTEM SET pg_cluster.peers = 'n1=127.0.0.1:0';
ALTER SYSTEM SET pg_cluster.peers = 'n1=127.0.0.1:70000';
ALTER SYSTEM SET pg_cluster.peers = 'n1=127.0.0.1:5432,';
ALTER SYSTEM SET pg_cluster.peers = 'n1=127.0.0.1:5432,,n2=127.0.0.2:5432';
ALTER SYSTEM SET pg_cluster.peers = 'n 1=127.0.0.1:5432';
ALTER SYSTEM SET pg_cluster.peers = 'n1=::1:5432';
ALTER SYSTEM SET pg_cluster.peers = 'n1=[::1:5432';
-- duplicates
ALTER SYSTEM SET pg_cluster.peers = 'n1=127.0.0.1:5432,N1=127.0.0.2:5432';
ALTER SYSTEM SET pg_cluster.peers = 'n1=127.0.0.1:5432,n2=127.0.0.1:5432';
-- this node missing
ALTER SYSTEM SET pg_cluster.peers = 'n2=127.0.0.1:5432,n3=127.0.0.1:5433';
-- too many nodes
ALTER SYSTEM SET pg_cluster.peers = 'n1=h:1,n2=h:2,n3=h:3,n4=h:4,n5=h:5,n6=h:6,n7=h:7,n8=h:8,n9=h:9,n10=h:10,n11=h:11,n12=h:12,n13=h:13,n14=h:14,n15=h:15,n16=h:16,n17=h:17';
-- good ones are accepted, IPv6 included
ALTER SYSTEM SET pg_cluster.peers = 'n1=[::1]:5432, n2=127.0.0.1:5433 ,n3=db3.example:5434';
ALTER SYSTEM RESET pg_cluster.peers;

-- intervals out of range, and a timeout too close to the heartbeat
ALTER SYSTEM SET pg_cluster.heartbeat_interval = 5;
ALTER SYSTEM SET pg_cluster.heartbeat_interval = '1h';
ALTER SYSTEM SET pg_cluster.heartbeat_interval = 300;
ALTER SYSTEM SET pg_cluster.failover_timeout = 10;
ALTER SYSTEM SET pg_cluster.failover_timeout = 400;
ALTER SYSTEM SET pg_cluster.failover_timeout = '2s';
ALTER SYSTEM RESET pg_cluster.failover_timeout;
ALTER SYSTEM SET pg_cluster.connect_timeout = 0;

-- peer_conninfo must parse and must not set what peers sets
ALTER SYSTEM SET pg_cluster.peer_conninfo = 'user=x dbname';
ALTER SYSTEM SET pg_cluster.peer_conninfo = 'nosuchoption=1';
ALTER SYSTEM SET pg_cluster.peer_conninfo = 'host=10.0.0.1';
ALTER SYSTEM SET pg_cluster.peer_conninfo = 'user=pgcluster port=5433';

-- names and roles
ALTER SYSTEM SET pg_cluster.node_name = 'bad name';
ALTER SYSTEM SET pg_cluster.node_role = 'arbiter';

-- postmaster-only parameters cannot change in a session
SET pg_cluster.node_name = 'n2';
-- reload-only parameters neither
SET pg_cluster.heartbeat_interval = 200;

-- nothing above changed the configuration
SHOW pg_cluster.peers;
SHOW pg_cluster.heartbeat_interval;
SHOW pg_cluster.failover_timeout;
SELECT pg_read_file('postgresql.auto.conf') ~ 'pg_cluster' AS auto_conf_mentions_pg_cluster;
