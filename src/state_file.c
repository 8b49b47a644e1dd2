/*-------------------------------------------------------------------------
 *
 * state_file.c
 *		The durable state of a node: the current term, the vote cast in that
 *		term and, on a witness, the identifier of the cluster it serves.
 *
 * The state lives in $PGDATA/pg_cluster.state.  It is written atomically
 * (temporary file, fsync, rename, fsync of the directory) before the worker
 * acts on it, so a vote is never forgotten across a crash.  The contents
 * carry a CRC-32C: a torn or damaged file is reported and the node stops
 * taking part in elections until an operator repairs it; it is never
 * silently reset, because forgetting a vote could elect two leaders in one
 * term.
 *
 * Writers hold PgClusterShmem->durable_lock exclusively (durable.c).
 *
 * Copyright (c) 2026, pg_cluster developers
 *
 * IDENTIFICATION
 *		src/state_file.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "port/pg_crc32c.h"
#include "storage/fd.h"

#include "pg_cluster.h"

#define STATE_FILE_NAME			"pg_cluster.state"
#define STATE_FILE_TEMP_NAME	"pg_cluster.state.tmp"
#define STATE_FILE_MAGIC		0x50474353	/* "PGCS" */
#define STATE_FILE_VERSION		4

/* On-disk layout; the CRC covers everything before it. */
typedef struct StateFileContents
{
	uint32		magic;
	uint32		version;
	uint64		term;
	char		voted_for[PGC_NAME_LEN];
	uint64		leader_term;
	char		leader_name[PGC_NAME_LEN];
	uint64		cluster_system_identifier;
	uint64		pause_version;
	uint32		paused;
	uint32		sync_restricted;
	uint64		sync_term;
	uint64		sync_version;
	char		sync_eligible[PGC_NAME_LIST_LEN];
	uint64		handed_over_term;
	uint64		heard_leader_lsn;
	uint64		heard_leader_wal_term;
	uint64		wal_term;
	uint64		wal_term_lsn;
	uint64		wal_read_lsn;
	uint32		wal_term_unknown;
	pg_crc32c	crc;
} StateFileContents;

static pg_crc32c
StateFileCrc(const StateFileContents *contents)
{
	pg_crc32c	crc;

	INIT_CRC32C(crc);
	COMP_CRC32C(crc, contents, offsetof(StateFileContents, crc));
	FIN_CRC32C(crc);
	return crc;
}

/*
 * PgClusterReadStateFile reads the state file into "state".  A missing file
 * is normal on a node that never ran pg_cluster.  Anything unreadable is
 * CORRUPT, with the reason in errbuf.
 */
PgClusterStateFileResult
PgClusterReadStateFile(PgClusterDurableState *state, char *errbuf, size_t errlen)
{
	StateFileContents contents;
	int			fd;
	ssize_t		nread;
	struct stat st;

	memset(state, 0, sizeof(*state));

	fd = OpenTransientFile(STATE_FILE_NAME, O_RDONLY | PG_BINARY);
	if (fd < 0)
	{
		if (errno == ENOENT)
			return PGC_STATE_FILE_MISSING;
		snprintf(errbuf, errlen, "could not open \"%s\": %m", STATE_FILE_NAME);
		return PGC_STATE_FILE_CORRUPT;
	}
	if (fstat(fd, &st) != 0)
	{
		snprintf(errbuf, errlen, "could not stat \"%s\": %m", STATE_FILE_NAME);
		CloseTransientFile(fd);
		return PGC_STATE_FILE_CORRUPT;
	}
	if (st.st_size != sizeof(contents))
	{
		snprintf(errbuf, errlen, "\"%s\" has %lld bytes, expected %zu",
				 STATE_FILE_NAME, (long long) st.st_size, sizeof(contents));
		CloseTransientFile(fd);
		return PGC_STATE_FILE_CORRUPT;
	}
	nread = read(fd, &contents, sizeof(contents));
	if (nread != sizeof(contents))
	{
		snprintf(errbuf, errlen, "could not read \"%s\": %s", STATE_FILE_NAME,
				 nread < 0 ? strerror(errno) : "short read");
		CloseTransientFile(fd);
		return PGC_STATE_FILE_CORRUPT;
	}
	CloseTransientFile(fd);

	if (contents.magic != STATE_FILE_MAGIC)
	{
		snprintf(errbuf, errlen, "\"%s\" has a wrong magic number %08X",
				 STATE_FILE_NAME, contents.magic);
		return PGC_STATE_FILE_CORRUPT;
	}
	if (!EQ_CRC32C(contents.crc, StateFileCrc(&contents)))
	{
		snprintf(errbuf, errlen, "\"%s\" fails its checksum", STATE_FILE_NAME);
		return PGC_STATE_FILE_CORRUPT;
	}
	if (contents.version != STATE_FILE_VERSION)
	{
		snprintf(errbuf, errlen, "\"%s\" has version %u, this pg_cluster reads version %d",
				 STATE_FILE_NAME, contents.version, STATE_FILE_VERSION);
		return PGC_STATE_FILE_CORRUPT;
	}
	if (memchr(contents.voted_for, '\0', PGC_NAME_LEN) == NULL ||
		memchr(contents.leader_name, '\0', PGC_NAME_LEN) == NULL ||
		memchr(contents.sync_eligible, '\0', PGC_NAME_LIST_LEN) == NULL)
	{
		snprintf(errbuf, errlen, "\"%s\" has an unterminated name", STATE_FILE_NAME);
		return PGC_STATE_FILE_CORRUPT;
	}

	state->term = contents.term;
	strlcpy(state->voted_for, contents.voted_for, PGC_NAME_LEN);
	state->leader_term = contents.leader_term;
	strlcpy(state->leader_name, contents.leader_name, PGC_NAME_LEN);
	state->cluster_system_identifier = contents.cluster_system_identifier;
	state->pause_version = contents.pause_version;
	state->paused = contents.paused != 0;
	state->sync.term = contents.sync_term;
	state->sync.version = contents.sync_version;
	state->sync.restricted = contents.sync_restricted != 0;
	strlcpy(state->sync.eligible, contents.sync_eligible, PGC_NAME_LIST_LEN);
	state->handed_over_term = contents.handed_over_term;
	state->heard_leader_wal_term = contents.heard_leader_wal_term;
	state->wal_term = contents.wal_term;
	state->wal_term_lsn = contents.wal_term_lsn;
	state->wal_read_lsn = contents.wal_read_lsn;
	state->wal_term_unknown = contents.wal_term_unknown != 0;
	state->heard_leader_lsn = contents.heard_leader_lsn;
	return PGC_STATE_FILE_OK;
}

/*
 * PgClusterWriteStateFile makes "state" durable.  It returns only once the
 * new contents and the rename are on disk; any failure is an ERROR, because
 * a node must not answer a vote it could not persist.
 */
void
PgClusterWriteStateFile(const PgClusterDurableState *state)
{
	StateFileContents contents;
	int			fd;

	memset(&contents, 0, sizeof(contents));
	contents.magic = STATE_FILE_MAGIC;
	contents.version = STATE_FILE_VERSION;
	contents.term = state->term;
	strlcpy(contents.voted_for, state->voted_for, PGC_NAME_LEN);
	contents.leader_term = state->leader_term;
	strlcpy(contents.leader_name, state->leader_name, PGC_NAME_LEN);
	contents.cluster_system_identifier = state->cluster_system_identifier;
	contents.pause_version = state->pause_version;
	contents.paused = state->paused ? 1 : 0;
	contents.sync_term = state->sync.term;
	contents.sync_version = state->sync.version;
	contents.sync_restricted = state->sync.restricted ? 1 : 0;
	strlcpy(contents.sync_eligible, state->sync.eligible, PGC_NAME_LIST_LEN);
	contents.handed_over_term = state->handed_over_term;
	contents.heard_leader_wal_term = state->heard_leader_wal_term;
	contents.wal_term = state->wal_term;
	contents.wal_term_lsn = state->wal_term_lsn;
	contents.wal_read_lsn = state->wal_read_lsn;
	contents.wal_term_unknown = state->wal_term_unknown ? 1 : 0;
	contents.heard_leader_lsn = state->heard_leader_lsn;
	contents.crc = StateFileCrc(&contents);

	fd = OpenTransientFile(STATE_FILE_TEMP_NAME,
						   O_WRONLY | O_CREAT | O_TRUNC | PG_BINARY);
	if (fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create file \"%s\": %m", STATE_FILE_TEMP_NAME)));

	errno = 0;
	if (write(fd, &contents, sizeof(contents)) != sizeof(contents))
	{
		/* if write didn't set errno, assume the disk is full */
		if (errno == 0)
			errno = ENOSPC;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not write file \"%s\": %m", STATE_FILE_TEMP_NAME)));
	}
	if (pg_fsync(fd) != 0)
		ereport(data_sync_elevel(ERROR),
				(errcode_for_file_access(),
				 errmsg("could not fsync file \"%s\": %m", STATE_FILE_TEMP_NAME)));
	if (CloseTransientFile(fd) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not close file \"%s\": %m", STATE_FILE_TEMP_NAME)));

	/* fsyncs the renamed file and the data directory */
	(void) durable_rename(STATE_FILE_TEMP_NAME, STATE_FILE_NAME, ERROR);
}
