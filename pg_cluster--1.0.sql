/* pg_cluster--1.0.sql: the SQL surface of pg_cluster */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION pg_cluster" to load this file. \quit

-- Names starting with "pg_" are reserved for schemas; the contract of
-- pg_cluster fixes the schema name, so lift the reservation for this one
-- statement only.
SET LOCAL allow_system_table_mods = on;
CREATE SCHEMA pg_cluster;
RESET allow_system_table_mods;
COMMENT ON SCHEMA pg_cluster IS 'pg_cluster: cluster membership, election and failover';

-- Peers call the internal RPCs as members of pgcluster_peer; operators
-- pause, resume (and switch over) as members of pgcluster_admin.
DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'pgcluster_peer') THEN
		CREATE ROLE pgcluster_peer NOLOGIN;
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'pgcluster_admin') THEN
		CREATE ROLE pgcluster_admin NOLOGIN;
	END IF;
END
$$;

-- Internal: a peer's heartbeat.  Records the sender's view, returns ours.
CREATE FUNCTION pg_cluster.heartbeat(
	sender_name text,
	sender_system_identifier text,
	sender_role text,
	sender_term bigint,
	sender_leader text,
	sender_timeline integer,
	sender_lsn pg_catalog.pg_lsn,
	sender_time timestamptz,
	sender_protocol_version integer,
	sender_is_leader boolean,
	sender_pause_version bigint,
	sender_paused boolean,
	sender_sync_version bigint,
	sender_sync_restricted boolean,
	sender_sync_eligible text,
	sender_sync_term bigint,
	sender_wal_term bigint,
	sender_wal_term_lsn pg_catalog.pg_lsn,
	OUT node_name text,
	OUT system_identifier text,
	OUT role text,
	OUT term bigint,
	OUT leader text,
	OUT timeline integer,
	OUT lsn pg_catalog.pg_lsn,
	OUT protocol_version integer,
	OUT is_leader boolean,
	OUT ack boolean,
	OUT pause_version bigint,
	OUT paused boolean,
	OUT priority integer,
	OUT state text,
	OUT sync_version bigint,
	OUT sync_term bigint,
	OUT wal_term bigint)
RETURNS record
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'pg_cluster_heartbeat';

REVOKE ALL ON FUNCTION pg_cluster.heartbeat(text, text, text, bigint, text, integer, pg_catalog.pg_lsn, timestamptz, integer, boolean, bigint, boolean, bigint, boolean, text, bigint, bigint, pg_catalog.pg_lsn) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pg_cluster.heartbeat(text, text, text, bigint, text, integer, pg_catalog.pg_lsn, timestamptz, integer, boolean, bigint, boolean, bigint, boolean, text, bigint, bigint, pg_catalog.pg_lsn) TO pgcluster_peer;

-- Internal: a candidate's (pre-)vote request.
CREATE FUNCTION pg_cluster.request_vote(
	candidate_name text,
	candidate_system_identifier text,
	candidate_term bigint,
	candidate_timeline integer,
	candidate_lsn pg_catalog.pg_lsn,
	pre_vote boolean,
	candidate_protocol_version integer,
	transfer_from text,
	candidate_sync_version bigint,
	candidate_sync_term bigint,
	candidate_sync_restricted boolean,
	candidate_sync_eligible text,
	candidate_wal_term bigint,
	OUT term bigint,
	OUT granted boolean,
	OUT reason text)
RETURNS record
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'pg_cluster_request_vote';

REVOKE ALL ON FUNCTION pg_cluster.request_vote(text, text, bigint, integer, pg_catalog.pg_lsn, boolean, integer, text, bigint, bigint, boolean, text, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pg_cluster.request_vote(text, text, bigint, integer, pg_catalog.pg_lsn, boolean, integer, text, bigint, bigint, boolean, text, bigint) TO pgcluster_peer;

-- Internal: the leader asks the target of a switchover to take over.
CREATE FUNCTION pg_cluster.handover(
	leader_name text,
	leader_system_identifier text,
	leader_term bigint,
	handover_lsn pg_catalog.pg_lsn,
	timeout_ms integer,
	leader_protocol_version integer,
	OUT accepted boolean,
	OUT reason text)
RETURNS record
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'pg_cluster_handover';
REVOKE ALL ON FUNCTION pg_cluster.handover(text, text, bigint, pg_catalog.pg_lsn, integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pg_cluster.handover(text, text, bigint, pg_catalog.pg_lsn, integer, integer) TO pgcluster_peer;

-- Internal: another node's pg_cluster.switchover() asks the leader to run it.
CREATE FUNCTION pg_cluster.request_switchover(
	target text,
	timeout_ms integer,
	caller_name text,
	caller_system_identifier text,
	caller_protocol_version integer,
	OUT target text,
	OUT term bigint)
RETURNS record
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'pg_cluster_request_switchover';
REVOKE ALL ON FUNCTION pg_cluster.request_switchover(text, integer, text, text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pg_cluster.request_switchover(text, integer, text, text, integer) TO pgcluster_peer;

-- Planned switchover: hands the primary role to "target" (NULL: the best
-- standby) and returns the new primary's name.
CREATE FUNCTION pg_cluster.switchover(
	target text DEFAULT NULL,
	timeout interval DEFAULT '60 seconds')
RETURNS text
LANGUAGE C VOLATILE PARALLEL UNSAFE CALLED ON NULL INPUT
AS 'MODULE_PATHNAME', 'pg_cluster_switchover';
REVOKE ALL ON FUNCTION pg_cluster.switchover(text, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pg_cluster.switchover(text, interval) TO pgcluster_admin;

-- Maintenance mode, cluster-wide and durable: no automatic failover.
CREATE FUNCTION pg_cluster.pause() RETURNS boolean
LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'pg_cluster_pause';
CREATE FUNCTION pg_cluster.resume() RETURNS boolean
LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'pg_cluster_resume';
REVOKE ALL ON FUNCTION pg_cluster.pause() FROM PUBLIC;
REVOKE ALL ON FUNCTION pg_cluster.resume() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pg_cluster.pause() TO pgcluster_admin;
GRANT EXECUTE ON FUNCTION pg_cluster.resume() TO pgcluster_admin;

CREATE FUNCTION pg_cluster.node_info(
	OUT node_name text,
	OUT host text,
	OUT port integer,
	OUT role text,
	OUT reachable boolean,
	OUT is_leader boolean,
	OUT is_self boolean,
	OUT term bigint,
	OUT timeline integer,
	OUT lsn pg_catalog.pg_lsn,
	OUT lag_bytes bigint,
	OUT last_seen timestamptz,
	OUT last_heard timestamptz,
	OUT rtt_ms double precision,
	OUT connection text,
	OUT refused boolean,
	OUT last_error text,
	OUT heartbeats_sent bigint,
	OUT heartbeats_answered bigint,
	OUT heartbeats_received bigint,
	OUT system_identifier text,
	OUT state text,
	OUT priority integer,
	OUT synchronous boolean,
	OUT eligible boolean,
	OUT why_not_eligible text)
RETURNS SETOF record
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'pg_cluster_node_info';

CREATE FUNCTION pg_cluster.status_info(
	OUT node_name text,
	OUT node_role text,
	OUT role text,
	OUT state text,
	OUT term bigint,
	OUT leader text,
	OUT fenced boolean,
	OUT voted_for text,
	OUT timeline integer,
	OUT lsn pg_catalog.pg_lsn,
	OUT wal_term bigint,
	OUT system_identifier text,
	OUT nodes_total integer,
	OUT peers_reachable integer,
	OUT has_quorum boolean,
	OUT worker_pid integer,
	OUT worker_started_at timestamptz,
	OUT heartbeat_interval_ms integer,
	OUT failover_timeout_ms integer,
	OUT paused boolean,
	OUT lease_until timestamptz,
	OUT last_leader_contact timestamptz,
	OUT synchronous_mode text,
	OUT synchronous_standby_names text,
	OUT sync_state text,
	OUT sync_record text,
	OUT commits_not_replicated bigint)
RETURNS SETOF record
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'pg_cluster_status_info';

CREATE FUNCTION pg_cluster.event_log(
	OUT seq bigint,
	OUT event_time timestamptz,
	OUT term bigint,
	OUT node_name text,
	OUT kind text,
	OUT detail text)
RETURNS SETOF record
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'pg_cluster_event_log';

CREATE FUNCTION pg_cluster.connection_uri(read_only boolean DEFAULT false)
RETURNS text
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'pg_cluster_connection_uri';

CREATE VIEW pg_cluster.nodes AS
	SELECT * FROM pg_cluster.node_info();
COMMENT ON VIEW pg_cluster.nodes IS 'Every configured node as this node sees it';

CREATE VIEW pg_cluster.status AS
	SELECT * FROM pg_cluster.status_info();
COMMENT ON VIEW pg_cluster.status IS 'This node: role, state, term, leader';

CREATE VIEW pg_cluster.events AS
	SELECT * FROM pg_cluster.event_log();
COMMENT ON VIEW pg_cluster.events IS 'Recent cluster events kept in shared memory (also in the server log)';

-- Monitoring is for pg_monitor, not PUBLIC.
REVOKE ALL ON FUNCTION pg_cluster.node_info() FROM PUBLIC;
REVOKE ALL ON FUNCTION pg_cluster.status_info() FROM PUBLIC;
REVOKE ALL ON FUNCTION pg_cluster.event_log() FROM PUBLIC;
REVOKE ALL ON pg_cluster.nodes, pg_cluster.status, pg_cluster.events FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pg_cluster.node_info() TO pg_monitor;
GRANT EXECUTE ON FUNCTION pg_cluster.status_info() TO pg_monitor;
GRANT EXECUTE ON FUNCTION pg_cluster.event_log() TO pg_monitor;
GRANT USAGE ON SCHEMA pg_cluster TO pg_monitor, pgcluster_peer, pgcluster_admin;
GRANT SELECT ON pg_cluster.nodes, pg_cluster.status, pg_cluster.events TO pg_monitor;
