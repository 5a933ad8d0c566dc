/*
 * run: the context of one twinstage command (struct ts_run), passed down
 * instead of globals, and the stages of the rehearsal that the commands
 * share: `rehearse` runs them all, `up`, `migrate` and `replay` one each.
 */
#ifndef TS_RUN_H
#define TS_RUN_H

#include "config.h"
#include "env.h"
#include "migrate.h"
#include "report.h"
#include "tracking.h"

struct ts_run {
	struct ts_config cfg;
	struct ts_env env;
	struct ts_report rep;
	struct ts_migrations set;	/* the migrations folder, once planned */
	struct ts_tracker tracker;	/* whose tracking table */
	struct ts_tracking_state prod_state;	/* production's, once read */
	struct ts_phase_plan *plans;	/* the [phase] sections resolved, once planned (NULL: none) */
	int have_prod_state;
	int have_config, have_env, have_report, planned;
	int quiet;		/* no progress lines */
	int load;		/* run [load] while migrating */
	const char *phase;	/* the [phase] being rehearsed, or NULL */
	const struct strvec *live;	/* the versions live while it migrates (NULL: current) */
	int dev_before_read;	/* rep.dev_before holds the version before the first migration */
	char *report_dir;	/* where this run's reports went */
};

/* Loads the configuration and takes the workdir. -1: error slot set. */
int ts_run_open(struct ts_run *run, const char *config, const char *env_file);
void ts_run_close(struct ts_run *run);
/* Prints the error in the slot, closes run, and returns the exit code to use. */
int ts_run_fail(struct ts_run *run);

/* Progress, one line per step on stderr: a terminal and a CI log alike. */
void ts_run_say(struct ts_run *run, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Starts a stage: records it and prints its line; finish it with ts_run_stage_end. */
struct ts_report_stage *ts_run_stage(struct ts_run *run, const char *name, const char *what);
/* Closes a stage with r's outcome (0 ok, else failed); returns r. */
int ts_run_stage_end(struct ts_run *run, struct ts_report_stage *st, double t0, int r);

/*
 * Reads the migrations folder, picks the tracking table and resolves the
 * [phase] sections against the folder (no database needed).
 */
int ts_run_plan(struct ts_run *run);
/*
 * Reads the production clone's tracking table: refuses a dirty or failed
 * one, notes drift, and records the version production is at.
 */
int ts_run_read_production(struct ts_run *run);
/* Builds both sides: the production clone from [source], the dev side from it. */
int ts_run_provision(struct ts_run *run);
/*
 * Takes the kept environments and returns the dev side to the state
 * before migrating (the snapshot "base", else a new copy of the
 * production clone); builds them when none are kept.
 */
int ts_run_reuse(struct ts_run *run);
/* 1 when a migration failed on the dev side in this run. */
int ts_run_migration_failed(const struct ts_run *run);
/* Applies the pending migrations on the dev side. 0 even when one failed (it is in the report). */
int ts_run_migrate(struct ts_run *run);
/* The same for the pending migrations of `set` (a phase's), tagged with run->phase. */
int ts_run_migrate_set(struct ts_run *run, const struct ts_migrations *set);
/* Each `equal = OLD NEW` of a phase: OLD on the production clone, NEW on the dev side now. */
int ts_run_equal_phase(struct ts_run *run, const struct ts_phase *ph);
/* Reads both schemas and records the classified changes, each tied to its statement. */
int ts_run_schema(struct ts_run *run);
/* After the matrix: ties breaking changes to the scenarios they broke; notes the others. */
void ts_run_evidence(struct ts_run *run);
/*
 * The double dump test of a side, recorded as a data check; on the dev
 * side, a failure the production clone already had does not fail the gate.
 * 0 even when the test fails (that is in the report); -1 when it could not run.
 */
int ts_run_ddt(struct ts_run *run, struct ts_side *side);
/*
 * After migrating: the tables the migration did not touch hold the same
 * rows on both sides, and each [equal OLD NEW] holds.
 */
int ts_run_equal(struct ts_run *run);
/*
 * After the matrix: the down parts of what was applied, newest first; then
 * the dev side's schema must equal the production clone's, the current
 * version's scenarios pass again, and untouched tables are still equal.
 */
int ts_run_rollback(struct ts_run *run);
/*
 * The same, in general: the down parts of what this run applied (with
 * run->phase set: what that phase applied), newest first; then the schema
 * must be `before` again (NULL: the production clone's), untouched tables
 * equal, and `apps` (the versions live before) pass. *passed: 1 when the
 * way back was rehearsed and held, or there was none to rehearse.
 */
struct ts_schema;
int ts_run_rollback_phase(struct ts_run *run, const struct ts_schema *before,
			  const struct strvec *apps, int *passed);
/* Records a data check that failed on the dev side (tagged with run->phase). */
void ts_run_data_failed(struct ts_run *run, const char *check, const char *name, const char *object,
			const char *failure, int gating);
/* Runs one check of the compatibility matrix. */
int ts_run_check(struct ts_run *run, const char *app, struct ts_side *side,
		 enum ts_check_role role, int gating);
/* Runs the checks that remain after migrating (skipping dev when a migration failed). */
int ts_run_matrix(struct ts_run *run, int baseline_too);
/* Decides, writes the reports, prints the chosen format; returns the exit code. */
int ts_run_finish(struct ts_run *run, enum ts_report_format fmt);

/* Shared option handling of the cmd_* functions. */
struct ts_opts {
	const char *config;
	const char *env_file;
	const char *format;
	int keep, quiet, force, purge, reuse;
	int load;		/* --load 1, --no-load -1 */
	const char *run_id;
	char **args;		/* operands, when "ARGS" is allowed */
	int n_args;
};

#endif
