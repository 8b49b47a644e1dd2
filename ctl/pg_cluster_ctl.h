/*-------------------------------------------------------------------------
 *
 * pg_cluster_ctl.h
 *		Declarations shared by the two files of pg_cluster_ctl: the
 *		supervisor (pg_cluster_ctl.c) and the files it reads and writes in
 *		the data directory (rejoin_files.c).
 *
 * Copyright (c) 2026, pg_cluster developers
 *
 * IDENTIFICATION
 *		ctl/pg_cluster_ctl.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_CLUSTER_CTL_H
#define PG_CLUSTER_CTL_H

#include <sys/types.h>

/* Exit statuses, documented in --help and in docs/pg_cluster_ctl.md. */
#define CTL_EXIT_OK			0	/* stopped on request, or postgres exited 0 */
#define CTL_EXIT_FAILURE	1	/* postgres failed, or a rejoin could not go on */
#define CTL_EXIT_USAGE		2	/* bad usage or environment: nothing started */

/* Names inside the data directory; the extension uses the same. */
#define REJOIN_MARKER_FILE	"pg_cluster.rejoin"
#define REJOIN_DONE_FILE	"pg_cluster.rejoin.done"
#define STANDBY_SIGNAL_FILE "standby.signal"

/* The environment variable through which postgres learns of its supervisor */
#define SUPERVISOR_ENV_VAR	"PG_CLUSTER_SUPERVISOR"

/*
 * A rejoin marker, as written by the extension.  The parsed values point
 * into "parsed", a copy of "contents" cut into lines; "contents" is kept
 * so the marker can be written back unchanged if pg_rewind deletes it.
 */
typedef struct RejoinMarker
{
	char	   *contents;
	size_t		size;
	mode_t		mode;
	char	   *parsed;
	char	   *leader;			/* name of the node to follow */
	char	   *conninfo;		/* libpq connection string, or NULL */
	bool		rewind;			/* run pg_rewind first? */
	char	   *reason;			/* free text, or NULL */
	char	   *term;			/* digits, or NULL */
} RejoinMarker;

/* What a node file was like before pg_rewind ran. */
typedef enum SavedFileState
{
	SAVED_ABSENT,				/* did not exist: remove the leader's copy */
	SAVED_CONTENTS,				/* regular file: write these bytes back */
	SAVED_LEFT_ALONE			/* not a regular file (a symlink): not ours */
} SavedFileState;

typedef struct SavedFile
{
	const char *name;
	SavedFileState state;
	char	   *contents;
	size_t		size;
	mode_t		mode;
} SavedFile;

#define NUM_NODE_FILES 5

typedef struct NodeFiles
{
	SavedFile	files[NUM_NODE_FILES];
} NodeFiles;

/* rejoin_files.c */
extern bool rejoin_marker_exists(const char *pg_data);
extern bool read_rejoin_marker(const char *pg_data, RejoinMarker *marker);
extern void free_rejoin_marker(RejoinMarker *marker);
extern bool write_rejoin_marker(const char *pg_data, const RejoinMarker *marker);
extern bool remove_rejoin_marker(const char *pg_data);
extern bool write_rejoin_done(const char *pg_data, const char *leader,
							  bool rewind, int64 rewind_ms, int attempts);
extern bool ensure_standby_signal(const char *pg_data, bool *created);
extern bool save_node_files(const char *pg_data, NodeFiles *saved);
extern bool restore_node_files(const char *pg_data, const NodeFiles *saved);
extern void free_node_files(NodeFiles *saved);

#endif							/* PG_CLUSTER_CTL_H */
