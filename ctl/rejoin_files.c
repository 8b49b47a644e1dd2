/*-------------------------------------------------------------------------
 *
 * rejoin_files.c
 *		The files through which the pg_cluster extension and pg_cluster_ctl
 *		hand a rejoin over to each other, and the node's own files that must
 *		survive pg_rewind.
 *
 * The extension writes $PGDATA/pg_cluster.rejoin just before it asks its
 * postmaster to shut down.  pg_cluster_ctl reads it once postgres is gone,
 * does the rejoin, and answers with $PGDATA/pg_cluster.rejoin.done, which
 * the extension reads (and deletes) when postgres starts again.  Both are
 * "key=value" text lines; see docs/pg_cluster_ctl.md.
 *
 * pg_rewind makes the data directory a copy of the leader's, configuration
 * files included: without care the node would come back with the leader's
 * port, node name, pg_hba.conf and durable election state.  So the files
 * that describe this node are read into memory before pg_rewind runs and
 * written back after it, whatever its outcome.
 *
 * Everything written here is written atomically (temporary file, fsync,
 * rename, fsync of the directory): after a crash a file has its old or its
 * new contents, never a mix, and the extension never reads half a file.
 * Errors are logged here; callers decide what they mean.
 *
 * Copyright (c) 2026, pg_cluster developers
 *
 * IDENTIFICATION
 *		ctl/rejoin_files.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres_fe.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "common/file_perm.h"
#include "common/file_utils.h"
#include "common/logging.h"

#include "pg_cluster_ctl.h"

/*
 * The files that pg_rewind would replace with the leader's copies but that
 * describe this node.  Other node-specific files (included configuration
 * files, certificates) belong outside the data directory.
 */
static const char *const node_file_names[NUM_NODE_FILES] = {
	"postgresql.conf",
	"postgresql.auto.conf",
	"pg_hba.conf",
	"pg_ident.conf",
	"pg_cluster.state",
};

/* A marker is a few short lines; anything much bigger is not one. */
#define MAX_MARKER_SIZE		65536

/*
 * Suffix of the temporary files.  Distinct from PostgreSQL's own
 * (postgresql.auto.conf.tmp) so the two can never step on each other.
 */
#define TEMP_FILE_SUFFIX	".pg_cluster_ctl.tmp"

static bool
data_path(char *path, const char *pg_data, const char *name)
{
	if (snprintf(path, MAXPGPATH, "%s/%s", pg_data, name) >= MAXPGPATH)
	{
		pg_log_error("path of file \"%s\" in \"%s\" is too long", name, pg_data);
		return false;
	}
	return true;
}

/*
 * Reads a whole file into a NUL-terminated malloc'd buffer, and returns its
 * size and permission bits.  max_size 0 means no limit.
 */
static char *
read_whole_file(const char *path, size_t max_size, size_t *size, mode_t *mode)
{
	int			fd;
	struct stat st;
	char	   *buf;
	size_t		done = 0;

	fd = open(path, O_RDONLY | PG_BINARY, 0);
	if (fd < 0)
	{
		pg_log_error("could not open file \"%s\": %m", path);
		return NULL;
	}
	if (fstat(fd, &st) < 0)
	{
		pg_log_error("could not stat file \"%s\": %m", path);
		close(fd);
		return NULL;
	}
	if (max_size > 0 && (size_t) st.st_size > max_size)
	{
		pg_log_error("file \"%s\" is too large (%lld bytes, at most %zu expected)",
					 path, (long long) st.st_size, max_size);
		close(fd);
		return NULL;
	}

	buf = pg_malloc((size_t) st.st_size + 1);
	while (done < (size_t) st.st_size)
	{
		ssize_t		r = read(fd, buf + done, (size_t) st.st_size - done);

		if (r < 0)
		{
			if (errno == EINTR)
				continue;
			pg_log_error("could not read file \"%s\": %m", path);
			pg_free(buf);
			close(fd);
			return NULL;
		}
		if (r == 0)
			break;				/* it shrank while we read: keep what we got */
		done += (size_t) r;
	}
	buf[done] = '\0';
	close(fd);

	*size = done;
	*mode = st.st_mode & (S_IRWXU | S_IRWXG | S_IRWXO);
	return buf;
}

/*
 * Replaces (or creates) a file atomically and durably, with the given
 * permission bits whatever the umask.
 */
static bool
write_file_durably(const char *path, const char *contents, size_t size,
				   mode_t mode)
{
	char		tmppath[MAXPGPATH];
	int			fd;
	size_t		done = 0;

	if (snprintf(tmppath, sizeof(tmppath), "%s%s", path, TEMP_FILE_SUFFIX) >=
		(int) sizeof(tmppath))
	{
		pg_log_error("path \"%s\" is too long", path);
		return false;
	}

	fd = open(tmppath, O_WRONLY | O_CREAT | O_TRUNC | PG_BINARY, mode);
	if (fd < 0)
	{
		pg_log_error("could not create file \"%s\": %m", tmppath);
		return false;
	}
	while (done < size)
	{
		ssize_t		w = write(fd, contents + done, size - done);

		if (w < 0)
		{
			if (errno == EINTR)
				continue;
			pg_log_error("could not write file \"%s\": %m", tmppath);
			goto fail;
		}
		done += (size_t) w;
	}
	/* open() applied the umask; the node's files keep their own mode */
	if (fchmod(fd, mode) != 0)
	{
		pg_log_error("could not change permissions of file \"%s\": %m", tmppath);
		goto fail;
	}
	if (fsync(fd) != 0)
	{
		pg_log_error("could not fsync file \"%s\": %m", tmppath);
		goto fail;
	}
	if (close(fd) != 0)
	{
		fd = -1;
		pg_log_error("could not close file \"%s\": %m", tmppath);
		goto fail;
	}
	fd = -1;

	/* fsyncs the file under its new name and the directory; logs errors */
	if (durable_rename(tmppath, path) != 0)
		goto fail;
	return true;

fail:
	if (fd >= 0)
		close(fd);
	(void) unlink(tmppath);
	return false;
}

/*
 * Does the data directory hold a rejoin marker?  Exits if it cannot tell:
 * guessing "no" could start a half rewound data directory.
 */
bool
rejoin_marker_exists(const char *pg_data)
{
	char		path[MAXPGPATH];
	struct stat st;

	if (!data_path(path, pg_data, REJOIN_MARKER_FILE))
		exit(CTL_EXIT_FAILURE);
	if (lstat(path, &st) == 0)
		return true;
	if (errno == ENOENT)
		return false;
	pg_log_error("could not stat file \"%s\": %m", path);
	exit(CTL_EXIT_FAILURE);
}

/* Reports a malformed marker; always returns false. */
static bool
marker_error(const char *path, int lineno, const char *what)
{
	if (lineno > 0)
		pg_log_error("malformed rejoin marker \"%s\", line %d: %s",
					 path, lineno, what);
	else
		pg_log_error("malformed rejoin marker \"%s\": %s", path, what);
	return false;
}

/* Stores a key's value, refusing a second occurrence of the key. */
static bool
set_marker_value(char **field, char *value, const char *key,
				 const char *path, int lineno)
{
	if (*field != NULL)
	{
		char	   *what = psprintf("key \"%s\" appears more than once", key);

		marker_error(path, lineno, what);
		pg_free(what);
		return false;
	}
	*field = value;
	return true;
}

/*
 * Reads and checks the marker.  Lines are "key=value", the value being the
 * rest of the line (a connection string contains '=' and spaces).  Blank
 * lines and unknown keys are ignored, so the extension can add keys
 * without breaking an older pg_cluster_ctl.  Anything ambiguous (a line
 * without '=', a key given twice, a bad value, a required key missing) is
 * an error: the caller then leaves everything as it is.
 */
bool
read_rejoin_marker(const char *pg_data, RejoinMarker *marker)
{
	char		path[MAXPGPATH];
	char	   *line;
	char	   *next;
	char	   *rewind_value = NULL;
	int			lineno = 0;

	memset(marker, 0, sizeof(*marker));
	if (!data_path(path, pg_data, REJOIN_MARKER_FILE))
		return false;

	marker->contents = read_whole_file(path, MAX_MARKER_SIZE,
									   &marker->size, &marker->mode);
	if (marker->contents == NULL)
		return false;
	if (strlen(marker->contents) != marker->size)
		return marker_error(path, 0, "it contains a zero byte");

	marker->parsed = pg_strdup(marker->contents);
	for (line = marker->parsed; line != NULL; line = next)
	{
		char	   *eq;
		char	   *key;
		char	   *value;
		size_t		len;
		bool		ok = true;

		lineno++;
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		len = strlen(line);
		if (len > 0 && line[len - 1] == '\r')
			line[--len] = '\0';
		if (len == 0)
			continue;

		eq = strchr(line, '=');
		if (eq == NULL || eq == line)
			return marker_error(path, lineno, "expected key=value");
		*eq = '\0';
		key = line;
		value = eq + 1;

		if (strcmp(key, "leader") == 0)
			ok = set_marker_value(&marker->leader, value, key, path, lineno);
		else if (strcmp(key, "conninfo") == 0)
			ok = set_marker_value(&marker->conninfo, value, key, path, lineno);
		else if (strcmp(key, "reason") == 0)
			ok = set_marker_value(&marker->reason, value, key, path, lineno);
		else if (strcmp(key, "rewind") == 0)
		{
			ok = set_marker_value(&rewind_value, value, key, path, lineno);
			if (ok && strcmp(value, "yes") != 0 && strcmp(value, "no") != 0)
				return marker_error(path, lineno,
									"rewind must be \"yes\" or \"no\"");
		}
		else if (strcmp(key, "term") == 0)
		{
			ok = set_marker_value(&marker->term, value, key, path, lineno);
			if (ok && (value[0] == '\0' ||
					   strspn(value, "0123456789") != strlen(value)))
				return marker_error(path, lineno,
									"term must be a non-negative integer");
		}
		if (!ok)
			return false;
	}

	if (marker->leader == NULL || marker->leader[0] == '\0')
		return marker_error(path, 0, "no leader");
	if (rewind_value == NULL)
		return marker_error(path, 0, "no rewind (yes or no)");
	marker->rewind = (strcmp(rewind_value, "yes") == 0);
	if (marker->rewind && (marker->conninfo == NULL || marker->conninfo[0] == '\0'))
		return marker_error(path, 0, "rewind=yes needs a conninfo to the leader");
	return true;
}

void
free_rejoin_marker(RejoinMarker *marker)
{
	pg_free(marker->contents);
	pg_free(marker->parsed);
	memset(marker, 0, sizeof(*marker));
}

/* Puts the marker back as it was read (pg_rewind may have removed it). */
bool
write_rejoin_marker(const char *pg_data, const RejoinMarker *marker)
{
	char		path[MAXPGPATH];

	if (!data_path(path, pg_data, REJOIN_MARKER_FILE))
		return false;
	return write_file_durably(path, marker->contents, marker->size,
							  marker->mode);
}

bool
remove_rejoin_marker(const char *pg_data)
{
	char		path[MAXPGPATH];

	if (!data_path(path, pg_data, REJOIN_MARKER_FILE))
		return false;
	if (unlink(path) != 0 && errno != ENOENT)
	{
		pg_log_error("could not remove file \"%s\": %m", path);
		return false;
	}
	/* the removal must be durable before the .done file says "ok" */
	return fsync_fname(pg_data, true) == 0;
}

/* Writes the answer the extension reads when postgres starts again. */
bool
write_rejoin_done(const char *pg_data, const char *leader, bool rewind,
				  int64 rewind_ms, int attempts)
{
	char		path[MAXPGPATH];
	struct timeval now;
	char	   *contents;
	bool		ok;

	if (!data_path(path, pg_data, REJOIN_DONE_FILE))
		return false;
	gettimeofday(&now, NULL);
	contents = psprintf("leader=%s\n"
						"rewind=%s\n"
						"rewind_ms=" INT64_FORMAT "\n"
						"attempts=%d\n"
						"finished_at=%lld.%06ld\n"
						"result=ok\n",
						leader,
						rewind ? "yes" : "no",
						rewind_ms,
						attempts,
						(long long) now.tv_sec, (long) now.tv_usec);
	ok = write_file_durably(path, contents, strlen(contents),
							pg_file_create_mode);
	pg_free(contents);
	return ok;
}

/* Makes sure postgres starts as a standby; says whether it had to. */
bool
ensure_standby_signal(const char *pg_data, bool *created)
{
	char		path[MAXPGPATH];
	struct stat st;
	int			fd;

	*created = false;
	if (!data_path(path, pg_data, STANDBY_SIGNAL_FILE))
		return false;
	if (stat(path, &st) == 0)
	{
		if (S_ISREG(st.st_mode))
			return true;
		pg_log_error("\"%s\" exists but is not a regular file", path);
		return false;
	}
	if (errno != ENOENT)
	{
		pg_log_error("could not stat file \"%s\": %m", path);
		return false;
	}

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | PG_BINARY, pg_file_create_mode);
	if (fd < 0)
	{
		pg_log_error("could not create file \"%s\": %m", path);
		return false;
	}
	if (fsync(fd) != 0)
	{
		pg_log_error("could not fsync file \"%s\": %m", path);
		close(fd);
		return false;
	}
	if (close(fd) != 0)
	{
		pg_log_error("could not close file \"%s\": %m", path);
		return false;
	}
	if (fsync_fname(pg_data, true) != 0)
		return false;
	*created = true;
	return true;
}

/*
 * Reads the node's files into memory before pg_rewind.  Symbolic links and
 * other non-regular files are left alone: they point outside the data
 * directory, which pg_rewind does not write.
 */
bool
save_node_files(const char *pg_data, NodeFiles *saved)
{
	int			i;

	memset(saved, 0, sizeof(*saved));
	for (i = 0; i < NUM_NODE_FILES; i++)
	{
		SavedFile  *file = &saved->files[i];
		char		path[MAXPGPATH];
		struct stat st;

		file->name = node_file_names[i];
		if (!data_path(path, pg_data, file->name))
			return false;
		if (lstat(path, &st) != 0)
		{
			if (errno != ENOENT)
			{
				pg_log_error("could not stat file \"%s\": %m", path);
				return false;
			}
			file->state = SAVED_ABSENT;
			continue;
		}
		if (!S_ISREG(st.st_mode))
		{
			pg_log_warning("\"%s\" is not a regular file: left as pg_rewind leaves it",
						   path);
			file->state = SAVED_LEFT_ALONE;
			continue;
		}
		file->contents = read_whole_file(path, 0, &file->size, &file->mode);
		if (file->contents == NULL)
			return false;
		file->state = SAVED_CONTENTS;
	}
	return true;
}

/*
 * Puts the node's files back as they were before pg_rewind: the saved
 * contents are written back, and a file the node did not have (the leader's
 * pg_cluster.state, say) is removed.  Goes through every file even after
 * an error, so as much as possible is restored.
 */
bool
restore_node_files(const char *pg_data, const NodeFiles *saved)
{
	bool		ok = true;
	bool		removed = false;
	int			i;

	for (i = 0; i < NUM_NODE_FILES; i++)
	{
		const SavedFile *file = &saved->files[i];
		char		path[MAXPGPATH];

		if (!data_path(path, pg_data, file->name))
		{
			ok = false;
			continue;
		}
		switch (file->state)
		{
			case SAVED_CONTENTS:
				if (!write_file_durably(path, file->contents, file->size,
										file->mode))
					ok = false;
				break;
			case SAVED_ABSENT:
				if (unlink(path) == 0)
				{
					pg_log_info("removed \"%s\": the node had no such file before pg_rewind",
								path);
					removed = true;
				}
				else if (errno != ENOENT)
				{
					pg_log_error("could not remove file \"%s\": %m", path);
					ok = false;
				}
				break;
			case SAVED_LEFT_ALONE:
				break;
		}
	}
	if (removed && fsync_fname(pg_data, true) != 0)
		ok = false;
	return ok;
}

void
free_node_files(NodeFiles *saved)
{
	int			i;

	for (i = 0; i < NUM_NODE_FILES; i++)
		pg_free(saved->files[i].contents);
	memset(saved, 0, sizeof(*saved));
}
