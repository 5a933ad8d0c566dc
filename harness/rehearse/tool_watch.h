/*
 * tool_watch: what twinstage reads on the dev side while the team's tool
 * runs (tool.h), from a session of its own.
 *
 * The watcher samples pg_locks every few milliseconds, with the server's
 * clock, and keeps each relation lock the tool's sessions (its
 * application_name) held, with when it was first and last seen. Once one
 * of them shows up the sample shrinks to the locks alone, and the load is
 * told, as the migration's session, the tool's session that holds the
 * strongest lock (its waits are judged against it). The relfilenode of each table, before and after, says which
 * tables were rewritten; the clock difference puts the server's times on
 * ours.
 */
#ifndef TS_TOOL_WATCH_H
#define TS_TOOL_WATCH_H

#include <jansson.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stddef.h>

struct ts_env;
struct ts_load;
struct ts_report;

struct ts_seen_lock {
	int pid;
	char *rel, *mode;	/* "schema.table", "AccessExclusiveLock" */
	double first, last;	/* server clock, epoch ms */
};

struct ts_tool_watch {
	PGconn *conn;
	pthread_t th;
	int stop;		/* __atomic */
	int running;
	struct ts_load *load;	/* told the tool's session once seen */
	char *app;		/* the tool's application_name */
	int watched;		/* the tool's session the load is told of, or 0 */
	int *tool, *other;	/* sessions known to be the tool's, and not */
	size_t n_tool, n_other;
	struct ts_seen_lock *v;	/* what was seen, in the order first seen */
	size_t n;
	size_t samples;
};

/*
 * Starts sampling the dev side of env. A watcher that cannot connect is a
 * note in rep, not an error: the rehearsal goes on without the locks.
 */
void ts_tool_watch_start(struct ts_tool_watch *w, struct ts_env *env, struct ts_report *rep, struct ts_load *load,
			 const char *app);
void ts_tool_watch_stop(struct ts_tool_watch *w);
void ts_tool_watch_free(struct ts_tool_watch *w);

/* {"schema.table": "relfilenode"} of the tables that exist now. */
json_t *ts_tool_table_files(PGconn *conn);

/* The server's clock minus ours (now_ms), in ms. */
double ts_tool_clock_delta(PGconn *conn);

#endif
