/*
 * tool_log: the tool's statements, as the dev side's statement log has
 * them, made into its migrations in the report.
 *
 * Each statement is parsed (libpg_query) and fingerprinted; the
 * transactions are read from each session's BEGIN and COMMIT. A write to
 * the tool's table closes a migration, named by what it wrote (else by the
 * table's new rows in order); its bookkeeping is left out. Each lock the
 * watcher saw goes to the statement that took it (the earliest of its
 * transaction that names the table and takes that mode, by PostgreSQL's
 * lock table), held to its transaction's end; each rewritten table to the
 * statement whose parse tree rewrites it. A run of the same statement with
 * other values (a data migration's UPDATE per row) is one line with how
 * many times it ran; the lint reads one statement of each run.
 */
#ifndef TS_TOOL_LOG_H
#define TS_TOOL_LOG_H

#include <jansson.h>

struct ts_run;
struct ts_statement_log;
struct ts_tool_watch;
struct strvec;
struct ts_report_migration;

/*
 * Adds the tool's migrations to run->rep. files0 and files1 are the
 * tables' files before and after (tool_watch.h), recorded the versions the
 * tool's table gained, failed whether the command failed (what follows its
 * last migration is then the one that failed), delta the server's clock
 * minus ours. *last gets the last migration added, or NULL.
 */
void ts_tool_log_report(struct ts_run *run, struct ts_statement_log *log, const struct ts_tool_watch *w,
			json_t *files0, json_t *files1, const struct strvec *recorded, int failed,
			const char *command, double delta, struct ts_report_migration **last);

#endif
