/*-------------------------------------------------------------------------
 *
 * pg_cluster.c
 *		Entry point of the pg_cluster extension: loads the configuration,
 *		reserves shared memory and registers the background worker.
 *
 * pg_cluster must be in shared_preload_libraries: it needs shared memory
 * and a worker started by the postmaster.  Loaded any other way it refuses
 * with an error that says so.
 *
 * Copyright (c) 2026, pg_cluster developers
 *
 * IDENTIFICATION
 *		src/pg_cluster.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlog.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/shmem.h"

#include "pg_cluster.h"

PG_MODULE_MAGIC;

/* Seconds before the postmaster restarts a worker that died. */
#define WORKER_RESTART_SECONDS 1

void		_PG_init(void);

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
PgClusterShmemRequest(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();

	RequestAddinShmemSpace(PgClusterShmemSize());
	RequestNamedLWLockTranche("pg_cluster", 2);	/* state, durable state */
}

static void
PgClusterShmemStartup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	PgClusterShmemInit();
}

/*
 * RegisterWorker registers the one worker of this instance.  It starts once
 * the instance is consistent, so it runs on hot standbys as well, and keeps
 * running through a promotion.
 */
static void
RegisterWorker(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	/*
	 * The worker connects to no database, only to the shared catalogs: it
	 * needs them to check privileges (ALTER SYSTEM), and a connection makes
	 * it visible in pg_stat_activity.
	 */
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_ConsistentState;
	worker.bgw_restart_time = WORKER_RESTART_SECONDS;
	strlcpy(worker.bgw_library_name, "pg_cluster", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "PgClusterWorkerMain", BGW_MAXLEN);
	strlcpy(worker.bgw_name, "pg_cluster worker", BGW_MAXLEN);
	strlcpy(worker.bgw_type, "pg_cluster", BGW_MAXLEN);
	RegisterBackgroundWorker(&worker);
}

void
_PG_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pg_cluster must be loaded via shared_preload_libraries"),
				 errdetail("pg_cluster needs shared memory and a background worker, which only a library loaded at server start can have."),
				 errhint("Add pg_cluster to shared_preload_libraries in postgresql.conf and restart the server.")));

	PgClusterDefineGucs();

	if (!EnableHotStandby && PgClusterNodeKindSetting == PGC_NODE_DATA)
		ereport(WARNING,
				(errmsg("pg_cluster: hot_standby is off, so the worker cannot run while this node is a standby"),
				 errhint("Set hot_standby = on.")));

	PgClusterRegisterFence();

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = PgClusterShmemRequest;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = PgClusterShmemStartup;

	RegisterWorker();
}
