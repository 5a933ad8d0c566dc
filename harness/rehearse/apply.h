/*
 * apply: the stage that migrates the dev side, on a planned run (run.h).
 * With files, twinstage applies them itself, traced (pg/trace.h); with a
 * migration tool ([project] tool), the tool runs, watched (tool.h). Either
 * way the load runs against the live versions while it happens, and the
 * report gets each migration, its statements and their facts.
 */
#ifndef TS_APPLY_H
#define TS_APPLY_H

struct ts_run;
struct ts_migrations;

/* Applies the pending migrations on the dev side. 0 even when one failed (it is in the report). */
int ts_run_migrate(struct ts_run *run);
/* The same for the pending migrations of `set` (a phase's), tagged with run->phase. */
int ts_run_migrate_set(struct ts_run *run, const struct ts_migrations *set);

#endif
