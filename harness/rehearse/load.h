/*
 * load: the versions that are live while the dev side migrates, running
 * against it, and who waited on whom.
 *
 * Knowing which locks a migration takes is not knowing whether users
 * would have waited, so this measures it. Before the migration starts,
 * [load] clients connections run the live versions' scenarios in a loop
 * (each file in a transaction that is rolled back, as in the matrix), each
 * statement timed; or [load] command runs the application's own load
 * generator. A sampler session reads pg_stat_activity and
 * pg_blocking_pids() every sample_ms. The load runs before_ms before the
 * migration and after_ms after it, then stops, and what it saw is judged:
 *
 *   - a statement of a live version that failed during the migration is a
 *     compatibility failure (a check with role "during migration"), even
 *     when it passes after;
 *   - an application statement that waited on the migration (directly, or
 *     queued behind it) is a stall, tied to the migration statement that
 *     held or was waiting for the lock; the longest over gate.max_stall_ms
 *     fails the gate;
 *   - a migration statement that waited behind an application transaction
 *     while others queued behind it is a lock-queue stall, reported with
 *     the advice to set lock_timeout and retry;
 *   - latency p50/p99/max and throughput before, during and after.
 *
 * The clients and the sampler are threads with their own connections;
 * they only append to their own arrays, read once they have stopped.
 * This file starts the load (load.c); load_judge.h stops and judges it.
 */
#ifndef TS_LOAD_H
#define TS_LOAD_H

#include <stddef.h>

#include "core/strvec.h"

struct ts_env;
struct ts_load;
struct ts_report;

/* What the load needs of the rehearsal that runs it. */
struct ts_load_ctx {
	struct ts_env *env;	/* it runs on env->dev; env->cfg holds [load] and the apps */
	struct ts_report *rep;	/* what it saw is recorded here */
	const char *phase;	/* the [phase] being rehearsed, or NULL */
	int quiet;		/* no progress lines */
};

/*
 * Starts the load on the dev side for the versions in `live` (NULL: the
 * current one), to watch the migration session `migration_pid`, and lets
 * it run before_ms. NULL when nothing can run (a note says why), or the
 * dev side refused the clients (a note says so).
 */
struct ts_load *ts_load_start(const struct ts_load_ctx *ctx, const struct strvec *live,
			      int migration_pid);
/*
 * The migration's session, once known (0 at the start): a migration tool
 * run as a command opens its own, which twinstage finds while it runs.
 */
void ts_load_watch(struct ts_load *l, int pid);

#endif
