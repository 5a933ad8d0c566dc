/*
 * tool: PostgreSQL's own programs (pg_dump, pg_restore, psql) run against a
 * side, each with its output in <workdir>/logs/<name>, and a failure
 * reported by the line of that output that says why.
 */
#ifndef TS_TOOL_H
#define TS_TOOL_H

#include "core/error.h"
#include "core/run_command.h"
#include "env/env.h"

/* <workdir>/logs/<name>, emptied (new string). */
char *ts_tool_log(const struct ts_env *env, const char *name);

/* The first line of a log that says ERROR, else its tail (new string). */
char *ts_tool_log_error(const char *log);

/*
 * Runs cp with its output in logs/<logname>; on failure sets an error of
 * class cls, "<what>: <the ERROR line of its output>", and a hint naming
 * the log. Clears cp.
 */
int ts_tool_run(const struct ts_env *env, struct child_process *cp, const char *logname,
		enum ts_exit cls, const char *what);

/* The same in two steps, so that other work runs while the tool does. */
int ts_tool_start(const struct ts_env *env, struct child_process *cp, const char *logname);
int ts_tool_finish(struct child_process *cp, enum ts_exit cls, const char *what);

/*
 * The roles of a cluster on another side, so that grants and owners
 * restore as they were: `pg_dumpall --roles-only --no-role-passwords`
 * run with `from`'s connection (its env, already set; database names
 * the database it may connect to), then psql of that into `to`, where a
 * role that exists already stays as it is. Logs in logs/<name>-roles*.log.
 */
int ts_tool_copy_roles(const struct ts_env *env, struct child_process *from, const char *database,
		       struct ts_side *to, const char *name);

#endif
