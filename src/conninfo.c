/*-------------------------------------------------------------------------
 *
 * conninfo.c
 *		The connection strings pg_cluster builds to reach its peers: for the
 *		worker's heartbeats and RPCs, for a backend that forwards a
 *		switchover, for replication (primary_conninfo) and for pg_rewind.
 *
 * All of them start from pg_cluster.peer_conninfo and end with the address
 * from pg_cluster.peers, which nothing overrides (the check hook forbids
 * host and port in peer_conninfo).
 *
 * Copyright (c) 2026, pg_cluster developers
 *
 * IDENTIFICATION
 *		src/conninfo.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"

#include "pg_cluster.h"

/* Quote a conninfo value: single quotes, with ' and \ escaped. */
static void
AppendConninfoValue(StringInfo buf, const char *keyword, const char *value)
{
	appendStringInfo(buf, " %s='", keyword);
	for (const char *p = value; *p; p++)
	{
		if (*p == '\'' || *p == '\\')
			appendStringInfoChar(buf, '\\');
		appendStringInfoChar(buf, *p);
	}
	appendStringInfoChar(buf, '\'');
}

static void
AppendPeerOptions(StringInfo buf)
{
	if (PgClusterPeerConninfo != NULL && PgClusterPeerConninfo[0] != '\0')
	{
		appendStringInfoChar(buf, ' ');
		appendStringInfoString(buf, PgClusterPeerConninfo);
	}
}

/*
 * PgClusterPeerConninfoFor builds the string for an SQL connection to a
 * peer: our defaults, then pg_cluster.peer_conninfo (which may override
 * them), then the address.  "purpose" goes into application_name; a
 * positive statement_timeout_ms bounds every statement on the peer.
 */
char *
PgClusterPeerConninfoFor(const char *host, int port, const char *purpose,
						 int statement_timeout_ms)
{
	StringInfoData buf;
	char		appname[PGC_NAME_LEN + 64];

	initStringInfo(&buf);
	snprintf(appname, sizeof(appname), "pg_cluster %s from %s", purpose,
			 PgClusterNodeName ? PgClusterNodeName : "");
	AppendConninfoValue(&buf, "dbname", "postgres");
	AppendConninfoValue(&buf, "application_name", appname);
	if (statement_timeout_ms > 0)
	{
		char		options[64];

		snprintf(options, sizeof(options), "-c statement_timeout=%d",
				 statement_timeout_ms);
		AppendConninfoValue(&buf, "options", options);
	}

	/*
	 * TCP keepalives catch a dead peer on an idle connection even before
	 * our own deadlines.
	 */
	appendStringInfoString(&buf, " keepalives=1 keepalives_idle=5 keepalives_interval=1 keepalives_count=3");
	AppendPeerOptions(&buf);
	AppendConninfoValue(&buf, "host", host);
	appendStringInfo(&buf, " port=%d", port);
	return buf.data;
}

/*
 * PgClusterReplicationConninfoFor builds primary_conninfo for following the
 * node at host:port, with this node's name as application_name (the name
 * synchronous_standby_names uses).
 */
char *
PgClusterReplicationConninfoFor(const char *host, int port)
{
	StringInfoData buf;

	initStringInfo(&buf);
	if (PgClusterPeerConninfo != NULL && PgClusterPeerConninfo[0] != '\0')
		appendStringInfo(&buf, "%s ", PgClusterPeerConninfo);
	appendStringInfo(&buf, "host=%s port=%d application_name=%s",
					 host, port, PgClusterNodeName);
	return buf.data;
}

/*
 * PgClusterNodeAddress looks up a configured node's address; false if the
 * node is unknown.
 */
bool
PgClusterNodeAddress(const char *name, char *host, int *port)
{
	int			i;
	bool		found = false;

	LWLockAcquire(PgClusterShmem->lock, LW_SHARED);
	i = PgClusterFindNode(name);
	if (i >= 0)
	{
		strlcpy(host, PgClusterShmem->nodes[i].host, PGC_HOST_LEN);
		*port = PgClusterShmem->nodes[i].port;
		found = true;
	}
	LWLockRelease(PgClusterShmem->lock);
	return found;
}
