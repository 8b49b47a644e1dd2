/*-------------------------------------------------------------------------
 *
 * guc.c
 *		The pg_cluster.* configuration parameters and their check hooks.
 *
 * Every parameter is validated by a check hook, so a bad value is refused
 * with a message and the old configuration stays in force: at a reload the
 * GUC machinery keeps the previous value of any parameter whose new value
 * a hook rejects.  The peer list is parsed once, in its check hook, and the
 * parsed form is handed to the assign hook as the GUC's "extra".
 *
 * Copyright (c) 2026, pg_cluster developers
 *
 * IDENTIFICATION
 *		src/guc.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <limits.h>

#include "access/parallel.h"
#include "libpq-fe.h"
#include "utils/guc.h"

#include "pg_cluster.h"

/* The failover timeout must cover at least this many heartbeat intervals. */
#define MIN_HEARTBEATS_PER_FAILOVER_TIMEOUT 5

char	   *PgClusterNodeName = NULL;
char	   *PgClusterPeersString = NULL;
char	   *PgClusterPeerConninfo = NULL;
int			PgClusterHeartbeatIntervalMs = 100;
int			PgClusterFailoverTimeoutMs = 1000;
int			PgClusterConnectTimeoutMs = 500;
int			PgClusterNodeKindSetting = PGC_NODE_DATA;
int			PgClusterPriority = 100;
int			PgClusterMaxLagOnFailover = 16 * 1024 * 1024;
char	   *PgClusterOnRoleChangeCommand = NULL;
int			PgClusterSynchronousMode = PGC_SYNC_OFF;
int			PgClusterDebugHandoverFault = PGC_HANDOVER_FAULT_NONE;

/* The parsed peer list, or NULL while pg_cluster.peers is empty. */
const PgClusterPeerList *PgClusterPeers = NULL;

/*
 * Cross-parameter checks compare with the other parameter's current value.
 * While the parameters are being defined at startup the other one may not
 * hold its configured value yet, so they wait until all are defined.
 */
static bool gucs_defined = false;

static const struct config_enum_entry sync_mode_options[] = {
	{"off", PGC_SYNC_OFF, false},
	{"quorum", PGC_SYNC_QUORUM, false},
	{"strict", PGC_SYNC_STRICT, false},
	{NULL, 0, false}
};

static const struct config_enum_entry handover_fault_options[] = {
	{"none", PGC_HANDOVER_FAULT_NONE, false},
	{"delay", PGC_HANDOVER_FAULT_DELAY, false},
	{"error", PGC_HANDOVER_FAULT_ERROR, false},
	{NULL, 0, false}
};

static const struct config_enum_entry node_kind_options[] = {
	{"data", PGC_NODE_DATA, false},
	{"witness", PGC_NODE_WITNESS, false},
	{NULL, 0, false}
};

/* Keywords of peer_conninfo that pg_cluster sets itself. */
static const char *const reserved_conninfo_keywords[] = {
	"host", "hostaddr", "port", "replication", "target_session_attrs", NULL
};

/*
 * ValidNodeName says whether "name" may name a node.  Names end up in
 * application_name and synchronous_standby_names, so they are restricted to
 * characters that need no quoting there.
 */
static bool
ValidNodeName(const char *name, size_t len)
{
	if (len == 0 || len >= PGC_NAME_LEN)
		return false;
	for (size_t i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) name[i];

		if (!(isalnum(c) || c == '_' || c == '-' || c == '.'))
			return false;
	}
	return true;
}

/* ParsePort parses a decimal TCP port, 1..65535. */
static bool
ParsePort(const char *s, size_t len, int *port)
{
	int			value = 0;

	if (len == 0 || len > 5)
		return false;
	for (size_t i = 0; i < len; i++)
	{
		if (!isdigit((unsigned char) s[i]))
			return false;
		value = value * 10 + (s[i] - '0');
	}
	if (value < 1 || value > 65535)
		return false;
	*port = value;
	return true;
}

/*
 * ParsePeerEntry parses one "name=host:port" item (IPv6 as "[addr]:port")
 * into "peer".  On failure it writes a sentence for errdetail to errbuf.
 */
static bool
ParsePeerEntry(const char *item, size_t len, PgClusterPeerAddress *peer,
			   char *errbuf, size_t errlen)
{
	const char *eq = memchr(item, '=', len);
	const char *addr;
	const char *end = item + len;
	const char *host_start;
	const char *host_end;
	const char *colon;

	if (eq == NULL)
	{
		snprintf(errbuf, errlen, "Entry \"%.*s\" is not of the form name=host:port.",
				 (int) len, item);
		return false;
	}
	if (!ValidNodeName(item, eq - item))
	{
		snprintf(errbuf, errlen,
				 "Node name \"%.*s\" must be 1 to %d letters, digits, \"_\", \"-\" or \".\".",
				 (int) (eq - item), item, PGC_NAME_LEN - 1);
		return false;
	}
	memcpy(peer->name, item, eq - item);
	peer->name[eq - item] = '\0';

	addr = eq + 1;
	if (addr < end && *addr == '[')
	{
		host_start = addr + 1;
		host_end = memchr(host_start, ']', end - host_start);
		if (host_end == NULL || host_end + 1 >= end || host_end[1] != ':')
		{
			snprintf(errbuf, errlen,
					 "Address of node \"%s\" must be written [IPv6-address]:port.",
					 peer->name);
			return false;
		}
		colon = host_end + 1;
	}
	else
	{
		host_start = addr;
		colon = memchr(addr, ':', end - addr);
		host_end = colon;
		if (colon != NULL && memchr(colon + 1, ':', end - colon - 1) != NULL)
		{
			snprintf(errbuf, errlen,
					 "Address of node \"%s\" looks like an IPv6 address; write it as [address]:port.",
					 peer->name);
			return false;
		}
	}
	if (colon == NULL || host_end == host_start)
	{
		snprintf(errbuf, errlen, "Address of node \"%s\" must be host:port.",
				 peer->name);
		return false;
	}
	if (host_end - host_start >= PGC_HOST_LEN)
	{
		snprintf(errbuf, errlen, "Host of node \"%s\" is longer than %d bytes.",
				 peer->name, PGC_HOST_LEN - 1);
		return false;
	}
	for (const char *p = host_start; p < host_end; p++)
	{
		if (isspace((unsigned char) *p) || *p == '\'' || *p == '\\' ||
			*p == '/' || *p == '?' || *p == '@')
		{
			snprintf(errbuf, errlen, "Host of node \"%s\" contains the character \"%c\".",
					 peer->name, *p);
			return false;
		}
	}
	memcpy(peer->host, host_start, host_end - host_start);
	peer->host[host_end - host_start] = '\0';

	if (!ParsePort(colon + 1, end - colon - 1, &peer->port))
	{
		snprintf(errbuf, errlen, "Port of node \"%s\" must be a number from 1 to 65535.",
				 peer->name);
		return false;
	}
	return true;
}

/*
 * PgClusterParsePeerList parses a pg_cluster.peers value into "list".
 *
 * The value is a comma-separated list of name=host:port.  Names must be
 * unique (case-insensitively: they are used unquoted in
 * synchronous_standby_names), and so must addresses.  When self_name is not
 * empty it must be one of the names.  An empty value gives an empty list.
 */
bool
PgClusterParsePeerList(const char *value, const char *self_name,
					   PgClusterPeerList *list, char *errbuf, size_t errlen)
{
	const char *p = value ? value : "";

	memset(list, 0, sizeof(*list));
	list->self_index = -1;

	/* an empty or blank value is an empty list */
	while (isspace((unsigned char) *p))
		p++;
	if (*p == '\0')
		return true;

	for (;;)
	{
		const char *start;
		const char *stop;
		PgClusterPeerAddress *peer;

		while (isspace((unsigned char) *p))
			p++;
		start = p;
		while (*p != '\0' && *p != ',')
			p++;
		stop = p;
		while (stop > start && isspace((unsigned char) stop[-1]))
			stop--;

		if (stop == start)
		{
			snprintf(errbuf, errlen, "The list has an empty entry.");
			return false;
		}
		if (list->count >= PGC_MAX_NODES)
		{
			snprintf(errbuf, errlen, "At most %d nodes are supported.",
					 PGC_MAX_NODES);
			return false;
		}
		peer = &list->nodes[list->count];
		if (!ParsePeerEntry(start, stop - start, peer, errbuf, errlen))
			return false;

		for (int i = 0; i < list->count; i++)
		{
			if (pg_strcasecmp(list->nodes[i].name, peer->name) == 0)
			{
				snprintf(errbuf, errlen, "Node name \"%s\" appears more than once.",
						 peer->name);
				return false;
			}
			if (pg_strcasecmp(list->nodes[i].host, peer->host) == 0 &&
				list->nodes[i].port == peer->port)
			{
				snprintf(errbuf, errlen,
						 "Nodes \"%s\" and \"%s\" have the same address %s:%d.",
						 list->nodes[i].name, peer->name, peer->host, peer->port);
				return false;
			}
		}
		if (self_name != NULL && strcmp(self_name, peer->name) == 0)
			list->self_index = list->count;
		list->count++;

		if (*p != ',')
			break;
		p++;					/* another entry must follow the comma */
	}

	if (list->count > 0 && self_name != NULL && self_name[0] != '\0' &&
		list->self_index < 0)
	{
		snprintf(errbuf, errlen,
				 "This node's name \"%s\" (pg_cluster.node_name) is not in the list.",
				 self_name);
		return false;
	}
	return true;
}

static bool
CheckNodeName(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || (*newval)[0] == '\0')
		return true;
	if (!ValidNodeName(*newval, strlen(*newval)))
	{
		GUC_check_errdetail("A node name is 1 to %d letters, digits, \"_\", \"-\" or \".\".",
							PGC_NAME_LEN - 1);
		return false;
	}
	return true;
}

static bool
CheckPeers(char **newval, void **extra, GucSource source)
{
	PgClusterPeerList list;
	char		errbuf[512];
	PgClusterPeerList *copy;

	if (!PgClusterParsePeerList(*newval, PgClusterNodeName, &list,
								errbuf, sizeof(errbuf)))
	{
		GUC_check_errdetail("%s", errbuf);
		GUC_check_errhint("Write the list as name=host:port[,...], the same on every node, including this node.");
		return false;
	}

	copy = malloc(sizeof(PgClusterPeerList));
	if (copy == NULL)
		return false;
	memcpy(copy, &list, sizeof(PgClusterPeerList));
	*extra = copy;
	return true;
}

static void
AssignPeers(const char *newval, void *extra)
{
	const PgClusterPeerList *list = extra;

	PgClusterPeers = (list != NULL && list->count > 0) ? list : NULL;
}

static bool
CheckPeerConninfo(char **newval, void **extra, GucSource source)
{
	char	   *errmsg = NULL;
	PQconninfoOption *options;

	if (*newval == NULL || (*newval)[0] == '\0')
		return true;

	options = PQconninfoParse(*newval, &errmsg);
	if (options == NULL)
	{
		/* libpq's messages end in a newline */
		if (errmsg != NULL && errmsg[0] != '\0' && errmsg[strlen(errmsg) - 1] == '\n')
			errmsg[strlen(errmsg) - 1] = '\0';
		GUC_check_errdetail("%s", errmsg ? errmsg : "out of memory");
		if (errmsg)
			PQfreemem(errmsg);
		return false;
	}
	for (PQconninfoOption *opt = options; opt->keyword != NULL; opt++)
	{
		if (opt->val == NULL)
			continue;
		for (int i = 0; reserved_conninfo_keywords[i] != NULL; i++)
		{
			if (strcmp(opt->keyword, reserved_conninfo_keywords[i]) == 0)
			{
				GUC_check_errdetail("Option \"%s\" is set by pg_cluster from pg_cluster.peers.",
									opt->keyword);
				GUC_check_errhint("Remove \"%s\" from pg_cluster.peer_conninfo.",
								  opt->keyword);
				PQconninfoFree(options);
				return false;
			}
		}
	}
	PQconninfoFree(options);
	return true;
}

/*
 * The failover timeout must leave room for several lost heartbeats, or one
 * late reply would start an election.
 */
static bool
TimingIsConsistent(int heartbeat_ms, int failover_ms)
{
	/*
	 * A parallel worker takes its leader's settings one by one, after
	 * resetting them to their defaults: on the way, a default failover
	 * timeout meets the leader's slower heartbeat.  The leader checked the
	 * pair when it took it.
	 */
	if (InitializingParallelWorker)
		return true;
	return (int64) failover_ms >=
		(int64) heartbeat_ms * MIN_HEARTBEATS_PER_FAILOVER_TIMEOUT;
}

static bool
CheckHeartbeatInterval(int *newval, void **extra, GucSource source)
{
	if (gucs_defined && !TimingIsConsistent(*newval, PgClusterFailoverTimeoutMs))
	{
		GUC_check_errdetail("pg_cluster.failover_timeout (%d ms) must be at least %d heartbeat intervals (%d ms).",
							PgClusterFailoverTimeoutMs,
							MIN_HEARTBEATS_PER_FAILOVER_TIMEOUT,
							*newval * MIN_HEARTBEATS_PER_FAILOVER_TIMEOUT);
		GUC_check_errhint("Raise pg_cluster.failover_timeout first, reload, then lower the heartbeat rate.");
		return false;
	}
	return true;
}

static bool
CheckFailoverTimeout(int *newval, void **extra, GucSource source)
{
	if (!TimingIsConsistent(PgClusterHeartbeatIntervalMs, *newval))
	{
		GUC_check_errdetail("It must be at least %d heartbeat intervals, %d ms with pg_cluster.heartbeat_interval = %d ms.",
							MIN_HEARTBEATS_PER_FAILOVER_TIMEOUT,
							PgClusterHeartbeatIntervalMs * MIN_HEARTBEATS_PER_FAILOVER_TIMEOUT,
							PgClusterHeartbeatIntervalMs);
		GUC_check_errhint("Lower pg_cluster.heartbeat_interval first, reload, then lower the failover timeout.");
		return false;
	}
	return true;
}

/*
 * PgClusterDefineGucs defines every pg_cluster.* parameter.  The order
 * matters: node_name before peers (whose check needs it) and
 * heartbeat_interval before failover_timeout.
 */
void
PgClusterDefineGucs(void)
{
	DefineCustomStringVariable("pg_cluster.node_name",
							   "Name of this node; must appear in pg_cluster.peers.",
							   NULL,
							   &PgClusterNodeName,
							   "",
							   PGC_POSTMASTER,
							   0,
							   CheckNodeName, NULL, NULL);

	DefineCustomEnumVariable("pg_cluster.synchronous_mode",
							 "How the leader manages synchronous replication: off, quorum or strict.",
							 "The leader's setting rules; set it alike on every node.",
							 &PgClusterSynchronousMode,
							 PGC_SYNC_OFF,
							 sync_mode_options,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomEnumVariable("pg_cluster.node_role",
							 "Whether this node holds data or is a voting witness.",
							 NULL,
							 &PgClusterNodeKindSetting,
							 PGC_NODE_DATA,
							 node_kind_options,
							 PGC_POSTMASTER,
							 0,
							 NULL, NULL, NULL);

	DefineCustomStringVariable("pg_cluster.peers",
							   "All nodes of the cluster as name=host:port, this node included.",
							   "IPv6 addresses are written [address]:port.",
							   &PgClusterPeersString,
							   "",
							   PGC_SIGHUP,
							   0,
							   CheckPeers, AssignPeers, NULL);

	DefineCustomStringVariable("pg_cluster.peer_conninfo",
							   "Connection options added to every connection to a peer.",
							   "Host and port come from pg_cluster.peers.",
							   &PgClusterPeerConninfo,
							   "dbname=postgres",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY,
							   CheckPeerConninfo, NULL, NULL);

	DefineCustomIntVariable("pg_cluster.heartbeat_interval",
							"Time between two heartbeats to each peer.",
							NULL,
							&PgClusterHeartbeatIntervalMs,
							100, 10, 10000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							CheckHeartbeatInterval, NULL, NULL);

	DefineCustomIntVariable("pg_cluster.failover_timeout",
							"Time without the leader before a new leader is elected.",
							NULL,
							&PgClusterFailoverTimeoutMs,
							1000, 50, 3600 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							CheckFailoverTimeout, NULL, NULL);

	DefineCustomIntVariable("pg_cluster.connect_timeout",
							"Longest wait for a peer connection to be established or a heartbeat to be answered.",
							NULL,
							&PgClusterConnectTimeoutMs,
							500, 10, 60 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_cluster.priority",
							"Promotion priority of this node; 0 means it is never promoted.",
							"Among eligible standbys the most advanced wins; priority only excludes (0) or includes.",
							&PgClusterPriority,
							100, 0, 1000,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_cluster.max_lag_on_failover",
							"Largest WAL lag behind the last known leader position with which a standby may become leader.",
							NULL,
							&PgClusterMaxLagOnFailover,
							16 * 1024 * 1024, 0, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	DefineCustomStringVariable("pg_cluster.on_role_change_command",
							   "Shell command run after this node became leader or stepped down.",
							   "%n is replaced by the node name, %r by the new role (primary or demoted), %t by the term.",
							   &PgClusterOnRoleChangeCommand,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	DefineCustomEnumVariable("pg_cluster.debug_handover_fault",
							 "Fault injected into this node's answer to a handover it accepted (testing only).",
							 "none, delay (answer late, before deciding) or error (answer with an error after accepting).",
							 &PgClusterDebugHandoverFault,
							 PGC_HANDOVER_FAULT_NONE,
							 handover_fault_options,
							 PGC_SUSET,
							 GUC_NOT_IN_SAMPLE,
							 NULL, NULL, NULL);

	gucs_defined = true;

	MarkGUCPrefixReserved("pg_cluster");
}

/*
 * PgClusterIsConfigured says whether this node has a name that appears in a
 * non-empty peer list: the minimum for the worker to do anything.
 */
bool
PgClusterIsConfigured(void)
{
	return PgClusterNodeName != NULL && PgClusterNodeName[0] != '\0' &&
		PgClusterPeers != NULL && PgClusterPeers->self_index >= 0;
}
