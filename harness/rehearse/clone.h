/*
 * clone: how production's data reaches the two sides.
 *
 * The source is read, never written: it is opened only by pg_dump or
 * pg_basebackup and by one read-only session that measures it, and this
 * file is the only one that ever receives its connection string. Nothing
 * in twinstage has a way to send a statement to the source.
 *
 * The dev side is made from the production clone by one of:
 *   cow       a copy-on-write (reflink) copy of the cleanly stopped
 *             cluster, on a pool (see pool.h): O(1) in the size of the data;
 *   physical  a file copy of the cleanly stopped cluster: O(size), no SQL;
 *   logical   pg_dump -Fd -j | pg_restore -j: O(size), rebuilds indexes.
 * "auto" picks cow where a pool works here, else physical, and says why.
 */
#ifndef TS_CLONE_H
#define TS_CLONE_H

#include "env/env.h"

struct json_t;

/* What the clone stage did, for the report. */
struct ts_clone_info {
	char *source;		/* how the production clone was filled: "pg_basebackup", ... */
	char *note;		/* why a faster way was not taken, or NULL */
	double dev_ms;		/* the dev side from the production clone, until it accepts connections */
	double prod_ms;		/* the production clone from the source */
	/* the source's server, read in its read-only session ([source] dsn only) */
	int source_version_num;
	char *source_version;
	char *source_sysid;	/* or NULL where the role may not read it */
	/* with dev_stack: how the dev side reached the new major (upgrade.h), or NULL */
	struct json_t *upgrade;
	int early;		/* ts_clone_source started the dev side's slow part (env ops' early) */
	int defer;		/* in: ts_clone_dev may leave the dev side coming, for ts_clone_dev_ready */
	int pending;		/* out: it did; ts_clone_dev_ready before the dev side is used */
};
void ts_clone_info_free(struct ts_clone_info *info);

/*
 * Settles env->clone from [environments] clone: for cow and auto, finds or
 * makes the pool the sides will live on. Before anything is created.
 */
int ts_clone_plan(struct ts_env *env, struct ts_clone_info *info);

/* What [source] is: "dsn" (a real database), "seed" (a script) or "empty". */
const char *ts_clone_source_kind(const struct ts_config *cfg);

/* Creates the production clone, started, and fills it from [source]. */
int ts_clone_source(struct ts_env *env, struct ts_clone_info *info);

/*
 * Makes the dev side a copy of the production clone by env->clone and
 * starts it. On a pool, the copy is also kept as the snapshot "base".
 */
int ts_clone_dev(struct ts_env *env, struct ts_clone_info *info);

/*
 * The dev side that ts_clone_dev left coming (info->pending: a guest that
 * boots on while the production clone is checked) started, and kept as
 * the snapshot "base".
 */
int ts_clone_dev_ready(struct ts_env *env);

/* The snapshot the clone keeps: the dev side before any migration. */
#define TS_SNAPSHOT_BASE "base"

/* Saves the dev side as snapshot `name` (replacing one of that name). */
int ts_clone_snapshot(struct ts_env *env, const char *name);
/*
 * Returns the dev side to snapshot `name`; NULL: to the state before any
 * migration (the snapshot "base", else a new copy of the production clone).
 */
int ts_clone_reset(struct ts_env *env, const char *name, struct ts_clone_info *info);

#endif
