/*
 * scenario_run: what an application version does, run against one side.
 *
 * Each scenario file runs in a transaction that is rolled back, each
 * statement under a savepoint, so a failing statement does not abort the
 * ones after it and the data the next check sees is unchanged. On the dev
 * side, a live version's prepares and same statements run on the
 * production clone first (in a transaction of its own, kept in step with
 * the side's), and the dev side must give what it gave; one that fails
 * there is not checkable. An [app] with `command =` runs that command
 * instead, with PGHOST, PGPORT, PGDATABASE, PGUSER and DATABASE_URL
 * pointing at the side under test.
 */
#ifndef TS_SCENARIO_RUN_H
#define TS_SCENARIO_RUN_H

struct child_process;
struct ts_app;
struct ts_env;
struct ts_report_check;
struct ts_side;

/*
 * Splits an application command into cp's argv (quotes as a shell would,
 * no shell), relative to the configuration, with PGHOST... set for side.
 * origin and what ("[app v1]") name it in errors.
 */
int ts_command_prepare(struct ts_env *env, struct ts_side *side, const char *command,
		       const char *origin, const char *what, struct child_process *cp);
/* The last `lines` lines of a file, or NULL when it is empty or missing. */
char *ts_tail_lines(const char *path, int lines);

/*
 * Runs app against one side and fills check with one case per statement
 * (or one for a command). baseline is the app's run on the production
 * clone before migrating, or NULL: a prepares statement's outcome there
 * stands for the production clone's, which does not change, and is not
 * asked for again. Returns 0 when it could run (whatever the verdict), -1
 * when the side could not be reached or a file not parsed.
 */
int ts_scenario_run_app(struct ts_env *env, struct ts_side *side, const struct ts_app *app,
			const char *log_dir, const struct ts_report_check *baseline, struct ts_report_check *check);

#endif
