/*
 * tool: a migration tool whose migrations are code ([project] tool:
 * Alembic, Django, Rails, Sqitch, or the team's own command), run for real
 * on the dev side, and what the server saw it run.
 *
 * The command runs with PGHOST, PGPORT, PGDATABASE, PGUSER, DATABASE_URL
 * and PGAPPNAME set for the dev side, and PGOPTIONS asking the server to
 * log each of its statements (log_min_duration_statement = 0) and to stop
 * one after [gate] migration_timeout. While it runs, a sampler reads
 * pg_locks of every session that is not twinstage's own every few
 * milliseconds (with the server's clock), and the load runs as for files.
 * After it, the dev side's statement log (jsonlog) is read up to a mark,
 * and the report gets the tool's statements in order, grouped into its
 * migrations (a write to its table closes one), each with its duration,
 * the locks it took and how long they were held, the tables it rewrote,
 * and the lint's findings on its text.
 */
#ifndef TS_TOOL_RUN_H
#define TS_TOOL_RUN_H

struct ts_run;
struct ts_tracking_state;

/*
 * Runs `command` (the [migrate] or [phase] command) on the dev side and
 * records what it ran in run->rep, tagged with run->phase. A command that
 * fails is a migration that failed: TS_EXIT_GATE, with the server's error
 * and the command's last lines in the report. A tool that is not installed
 * is TS_EXIT_ENV, with a hint. *ran_ms gets how long the command itself ran
 * (0 when it did not start).
 */
int ts_tool_migrate(struct ts_run *run, const char *command, double *ran_ms);

/*
 * Takes the dev side back to `to` (the tool's table as it was then): the
 * configured `down` command, else the tool's own way back (tools.h).
 * *ms gets how long it took. A command that fails is a TS_EXIT_GATE
 * error naming it; nothing to do is 0.
 */
int ts_tool_down(struct ts_run *run, const char *down, const struct ts_tracking_state *to, double *ms);

/* The same command again, not reported (a phase applied again after its way back). */
int ts_tool_reapply(struct ts_run *run, const char *command);

#endif
