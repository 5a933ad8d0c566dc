/*
 * migrate: applying the pending migrations of a folder to the dev side,
 * statement by statement, and their down parts for the way back.
 *
 * The model of a folder's migrations is migrations.h; splitting SQL,
 * sql.h; the tool's table, tracking.h.
 */
#ifndef TS_MIGRATE_H
#define TS_MIGRATE_H

#include <libpq-fe.h>

#include "migrate/migrations.h"

struct strvec;
struct ts_report;
struct ts_trace;
struct ts_tracker;
struct ts_tracking_state;

/*
 * Applies, on conn, every migration of set that t's tracking table does
 * not list as applied, in order, records each there as the tool would, and
 * in rep, each statement with its lint findings and, when trace is set,
 * its observed locks, rewrites and scans. A migration that fails stops the
 * run (TS_EXIT_GATE); a file changed after it was applied on the dev side
 * (and not in production, `prod`'s table, which may be NULL), or a dirty
 * or failed table, is a TS_EXIT_USAGE error. Returns the number applied,
 * or -1.
 */
int ts_migrations_apply(PGconn *conn, const struct ts_migrations *set, const struct ts_tracker *t,
			const struct ts_tracking_state *prod, struct ts_report *rep,
			struct ts_trace *trace, int verbose);
/*
 * How promote applies them: the statements named in `guarded` ("file:line":
 * those that took a lock blocking writes when rehearsed) run under
 * lock_timeout, and one stopped by it is tried again `retries` times,
 * after 250 ms, 500 ms, ... (a transactional file from its start, rolled
 * back first). verbose: a line per migration and per retry.
 */
struct ts_apply_opts {
	int lock_timeout_ms;
	int retries;
	const struct strvec *guarded;
	int verbose;
};
int ts_migrations_apply_opts(PGconn *conn, const struct ts_migrations *set, const struct ts_tracker *t,
			     const struct ts_tracking_state *prod, struct ts_report *rep,
			     struct ts_trace *trace, const struct ts_apply_opts *o);

/*
 * Applies the down part of m (which has one) on conn and takes m out of
 * t's table as the tool's own `down` would. A statement that fails is a
 * TS_EXIT_GATE error "file:line: ...".
 */
int ts_migrations_down(PGconn *conn, const struct ts_migrations *set, const struct ts_tracker *t,
		       const struct ts_migration *m, double *ms);

#endif
