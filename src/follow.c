/*-------------------------------------------------------------------------
 *
 * follow.c
 *		What the worker does to the local server when leadership changes:
 *		re-point a standby at the new leader, and run the role-change hook.
 *
 * A standby follows the leader by setting primary_conninfo with ALTER
 * SYSTEM semantics and reloading (primary_conninfo is reloadable since
 * PostgreSQL 13; the WAL receiver restarts with the new value, and
 * recovery_target_timeline = latest follows the new timeline).
 *
 * The hook pg_cluster.on_role_change_command runs in its own process
 * group, never waited for synchronously: the worker polls it at every
 * loop and kills it at the timeout.
 *
 * Copyright (c) 2026, pg_cluster developers
 *
 * IDENTIFICATION
 *		src/follow.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "access/timeline.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "access/xlogrecovery.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "postmaster/postmaster.h"
#include "replication/walreceiver.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "pg_cluster.h"
#include "worker.h"

/* How long the role-change hook may run before it is killed. */
#define ROLE_CHANGE_COMMAND_TIMEOUT_MS 30000

/* The leader whose address primary_conninfo holds ("" = not set by us). */
static char followed_leader[PGC_NAME_LEN] = "";

/* The running hook, if any. */
static pid_t hook_pid = 0;
static TimestampTz hook_deadline = 0;
static char hook_description[128];

/*
 * AlterSystemSet writes "name = value" to postgresql.auto.conf, as ALTER
 * SYSTEM does, and asks the postmaster to reload.
 */
void
AlterSystemSet(const char *name, const char *value)
{
	AlterSystemStmt *stmt = makeNode(AlterSystemStmt);
	A_Const    *constant = makeNode(A_Const);

	constant->val.sval.type = T_String;
	constant->val.sval.sval = pstrdup(value);
	constant->location = -1;

	stmt->setstmt = makeNode(VariableSetStmt);
	stmt->setstmt->kind = VAR_SET_VALUE;
	stmt->setstmt->name = pstrdup(name);
	stmt->setstmt->args = list_make1(constant);

	/* the privilege check reads the catalogs: it needs a transaction */
	StartTransactionCommand();
	AlterSystemSetConfigFile(stmt);
	CommitTransactionCommand();

	if (kill(PostmasterPid, SIGHUP) != 0)
		ereport(WARNING,
				(errmsg("pg_cluster: could not signal the postmaster to reload: %m")));
}

/* SetPrimaryConninfo points this node's WAL receiver at another server. */
void
SetPrimaryConninfo(const char *conninfo)
{
	AlterSystemSet("primary_conninfo", conninfo);
}

/*
 * FollowLeader points this standby at the current leader when it does not
 * stream from it yet.  A standby found streaming when the first leader is
 * learned is taken to stream from it (it was cloned from it); after that,
 * every change of leader re-points.
 */
void
FollowLeader(void)
{
	char		leader[PGC_NAME_LEN];
	char		host[PGC_HOST_LEN] = "";
	int			port = 0;
	char	   *conninfo;

	if (PgClusterNodeKindSetting != PGC_NODE_DATA || !RecoveryInProgress())
		return;

	LWLockAcquire(PgClusterShmem->lock, LW_SHARED);
	strlcpy(leader, PgClusterShmem->leader, PGC_NAME_LEN);
	if (leader[0] != '\0')
	{
		int			i = PgClusterFindNode(leader);

		/*
		 * A leader still in recovery (catching up after a handover, or
		 * promoting) is followed once it is a primary: until then the old
		 * primary may still be sending its last WAL, which this standby
		 * should get first-hand.
		 */
		if (i >= 0 && !PgClusterShmem->nodes[i].is_self &&
			PgClusterShmem->nodes[i].view.role == PGC_ROLE_PRIMARY)
		{
			strlcpy(host, PgClusterShmem->nodes[i].host, PGC_HOST_LEN);
			port = PgClusterShmem->nodes[i].port;
		}
	}
	LWLockRelease(PgClusterShmem->lock);

	if (host[0] == '\0' || strcmp(followed_leader, leader) == 0)
		return;
	if (followed_leader[0] == '\0' && WalRcvStreaming())
	{
		strlcpy(followed_leader, leader, PGC_NAME_LEN);
		return;
	}

	conninfo = PgClusterReplicationConninfoFor(host, port);
	if (PrimaryConnInfo == NULL || strcmp(PrimaryConnInfo, conninfo) != 0)
	{
		SetPrimaryConninfo(conninfo);
		PgClusterRecordEvent("follow", leader,
							 "following leader \"%s\" at %s:%d", leader, host, port);
	}
	strlcpy(followed_leader, leader, PGC_NAME_LEN);
	pfree(conninfo);
}

/*
 * StandbyNeedsRewind says whether this standby cannot follow the leader's
 * timeline because its WAL goes past the point where that timeline forked
 * off its own (an old primary, or a standby that was ahead of the winner).
 * It needs the new timeline's history file, which the WAL receiver fetches
 * when it connects to the leader; until then the answer is "no".
 */
bool
StandbyNeedsRewind(void)
{
	TimeLineID	leader_tli;
	TimeLineID	own_tli;
	XLogRecPtr	own_lsn;
	List	   *history;
	XLogRecPtr	fork;

	if (PgClusterNodeKindSetting != PGC_NODE_DATA || !RecoveryInProgress())
		return false;
	LWLockAcquire(PgClusterShmem->lock, LW_SHARED);
	leader_tli = PgClusterShmem->leader[0] ? PgClusterShmem->leader_timeline : 0;
	LWLockRelease(PgClusterShmem->lock);

	own_lsn = PgClusterLocalLsn(&own_tli);
	if (leader_tli <= own_tli || !existsTimeLineHistory(leader_tli))
		return false;

	history = readTimeLineHistory(leader_tli);
	if (!tliInHistory(own_tli, history))
		return true;			/* our timeline is not an ancestor at all */
	fork = tliSwitchPoint(own_tli, history, NULL);
	list_free_deep(history);
	return own_lsn > fork;
}

/*
 * RoleChangeHookStart runs pg_cluster.on_role_change_command with %n, %r
 * and %t replaced, unless one is still running (its end is recorded first).
 */
void
RoleChangeHookStart(const char *role, uint64 term)
{
	StringInfoData cmd;
	pid_t		pid;

	if (PgClusterOnRoleChangeCommand == NULL || PgClusterOnRoleChangeCommand[0] == '\0')
		return;
	if (hook_pid != 0)
	{
		PgClusterRecordEvent("hook_skipped", NULL,
							 "role change to %s in term " UINT64_FORMAT " not run: %s still running",
							 role, term, hook_description);
		return;
	}

	initStringInfo(&cmd);
	for (const char *p = PgClusterOnRoleChangeCommand; *p; p++)
	{
		if (p[0] == '%' && p[1] == 'n')
			appendStringInfoString(&cmd, PgClusterNodeName), p++;
		else if (p[0] == '%' && p[1] == 'r')
			appendStringInfoString(&cmd, role), p++;
		else if (p[0] == '%' && p[1] == 't')
			appendStringInfo(&cmd, UINT64_FORMAT, term), p++;
		else if (p[0] == '%' && p[1] == '%')
			appendStringInfoChar(&cmd, '%'), p++;
		else
			appendStringInfoChar(&cmd, *p);
	}

	fflush(NULL);
	pid = fork();
	if (pid < 0)
	{
		PgClusterRecordEvent("hook_failed", NULL, "could not fork for the role change hook: %m");
		return;
	}
	if (pid == 0)
	{
		/* child: own process group (so a timeout kills the whole command) */
		setsid();
		for (int fd = 3; fd < 1024; fd++)
			close(fd);
		execl("/bin/sh", "sh", "-c", cmd.data, (char *) NULL);
		_exit(127);
	}
	hook_pid = pid;
	hook_deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
												ROLE_CHANGE_COMMAND_TIMEOUT_MS);
	snprintf(hook_description, sizeof(hook_description), "hook for role %s, term " UINT64_FORMAT,
			 role, term);
	PgClusterRecordEvent("hook_started", NULL, "%s: %s", hook_description, cmd.data);
	pfree(cmd.data);
}

/* RoleChangeHookPoll records the end of the hook, or kills it at timeout. */
void
RoleChangeHookPoll(TimestampTz now)
{
	int			status;
	pid_t		rc;

	if (hook_pid == 0)
		return;
	rc = waitpid(hook_pid, &status, WNOHANG);
	if (rc == 0)
	{
		if (now >= hook_deadline)
		{
			kill(-hook_pid, SIGKILL);
			(void) waitpid(hook_pid, &status, 0);
			PgClusterRecordEvent("hook_finished", NULL, "%s killed after %d ms",
								 hook_description, ROLE_CHANGE_COMMAND_TIMEOUT_MS);
			hook_pid = 0;
		}
		return;
	}
	if (rc < 0)
		PgClusterRecordEvent("hook_finished", NULL, "%s: lost track of it: %m", hook_description);
	else if (WIFEXITED(status))
		PgClusterRecordEvent("hook_finished", NULL, "%s exited with status %d",
							 hook_description, WEXITSTATUS(status));
	else
		PgClusterRecordEvent("hook_finished", NULL, "%s ended by signal %d",
							 hook_description, WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	hook_pid = 0;
}
