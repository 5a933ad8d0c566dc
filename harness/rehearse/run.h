/*
 * run: the context of one twinstage command (struct ts_run), passed down
 * instead of globals, and the stages that build and change the dev side:
 * planning, provisioning, migrating, and the report at the end. The
 * checks after migrating are check.h (what the versions see) and safety.h
 * (what the data keeps). `rehearse` runs them all; `up`, `migrate` and
 * `replay` one each.
 */
#ifndef TS_RUN_H
#define TS_RUN_H

#include "config/config.h"
#include "env/env.h"
#include "migrate/migrate.h"
#include "migrate/tracking.h"
#include "pg/fingerprint.h"
#include "report/render.h"
#include "report/report.h"

/*
 * A side as it was at one point of the rehearsal, for the manifest: the
 * production clone before anything ran (phase NULL), and the dev side
 * after each phase's migrations (after all of them: phase NULL too, and
 * after = 1). Production must be at one of these for `promote`.
 */
struct ts_run_state {
	char *phase;
	int after;		/* 0: the production clone; 1: the dev side after migrating */
	struct ts_fingerprint fp;
	struct ts_tracking_state tracking;
};

struct ts_run {
	struct ts_config cfg;
	struct ts_env env;
	struct ts_report rep;
	struct ts_migrations set;	/* the migrations folder, once planned */
	struct ts_tracker tracker;	/* whose tracking table */
	struct ts_tracking_state prod_state;	/* production's, once read */
	struct ts_tracking_state tool_before;	/* a tool's table before its last command (its way back's goal) */
	struct ts_phase_plan *plans;	/* the [phase] sections resolved, once planned (NULL: none) */
	int have_prod_state;
	int have_config, have_env, have_report, planned;
	int quiet;		/* no progress lines */
	int load;		/* run [load] while migrating */
	const char *phase;	/* the [phase] being rehearsed, or NULL */
	const struct strvec *live;	/* the versions live while it migrates (NULL: current) */
	int dev_before_read;	/* rep.dev_before holds the version before the first migration */
	char *report_dir;	/* where this run's reports went */
	int fingerprints;	/* take the states below (rehearse: for the manifest) */
	struct ts_run_state *states;
	size_t n_states;
	/* the source's server ([source] dsn): what the production clone was made from */
	int source_version_num;
	char *source_version, *source_sysid;
	/*
	 * How many times slower the servers run than this machine (timing.h):
	 * 1, or an emulated guest's measured ratio. Absolute noise floors scale by it.
	 */
	double slowness;
	/*
	 * defer_dev: ts_run_provision may leave the dev side coming (a guest
	 * that boots on while the production clone is checked);
	 * dev_coming_since: when it was left so (0: it is up), for
	 * ts_run_dev_ready.
	 */
	int defer_dev;
	double dev_coming_since;
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
 * The tool's tracking table as production's clone finds it (prod: a
 * connection to it): schema-qualified from now on, for both sides.
 */
int ts_run_resolve_tracking(struct ts_run *run, PGconn *prod);
/*
 * Reads the production clone's tracking table: refuses a dirty or failed
 * one, notes drift, and records the version production is at.
 */
int ts_run_read_production(struct ts_run *run);
/*
 * Builds both sides: the production clone from [source], the dev side from
 * it (with defer_dev maybe still coming: ts_run_dev_ready).
 */
int ts_run_provision(struct ts_run *run);
/* The dev side that ts_run_provision left coming, up (its own clone stage); 0 at once when none. */
int ts_run_dev_ready(struct ts_run *run);
/*
 * Takes the kept environments and returns the dev side to the state
 * before migrating (the snapshot "base", else a new copy of the
 * production clone); builds them when none are kept.
 */
int ts_run_reuse(struct ts_run *run);
/* 1 when a migration failed on the dev side in this run. */
int ts_run_migration_failed(const struct ts_run *run);
/* The version a side's tracking table is at (*out NULL: none); -1 when it cannot be read. */
int ts_run_side_version(struct ts_run *run, PGconn *conn, char **out);
/*
 * Records what `side` is now, on a connection of its own: the fingerprint
 * of its schema and its tracking table (after: once migrated), for the
 * manifest. The production clone stands for the source: its server is the
 * source's, where the source was read.
 */
int ts_run_take_state(struct ts_run *run, struct ts_side *side, int after);
/* Decides, writes the reports, prints the chosen format; returns the exit code. */
int ts_run_finish(struct ts_run *run, enum ts_report_format fmt);

#endif
