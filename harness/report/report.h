/*
 * report: the one model every stage writes to, and the verdict.
 *
 * Stages append what they saw (stages, migrations and their statements,
 * checks and their cases); ts_report_decide computes the verdict and the
 * exit code from that alone, so the verdict can never disagree with the
 * facts shown. The model's serialisation is report.json; `twinstage report`
 * reads it back and renders it again, so every format comes from one
 * source of truth (render.h).
 */
#ifndef TS_REPORT_H
#define TS_REPORT_H

#include <stddef.h>

struct ts_report_stage {
	char *name;
	double ms;
	char *status;		/* "ok", "failed", "skipped" */
	char *detail;		/* e.g. clone method, or NULL */
};

struct ts_report_stmt {
	int line;
	double ms;
	double at;		/* now_ms() when it started, in this process only (not saved) */
	char *sql;		/* first line, shortened */
	/*
	 * What was seen of it, as JSON (or NULL): "locks" [{relation, mode,
	 * blocking, held_ms, over_gate}], "rewrites" and "scans" [table],
	 * "lint" [{rule, level, line, col, message, recipe}].
	 */
	struct json_t *facts;
};

struct ts_report_migration {
	char *file;
	char *version;		/* NULL for a repeatable */
	char *description;
	char *status;		/* "applied", "already applied", "failed", "not run" */
	int transactional;
	double ms;
	struct ts_report_stmt *stmts;
	size_t n_stmts;
	char *error;		/* "file:line: SQLSTATE: message", or NULL */
	char *phase;		/* the [phase] that applied it, or NULL */
	int retries;		/* promote: times it was tried again after lock_timeout */
	int numbered;		/* a tool's: statements numbered as sent, not lines of a file */
	/*
	 * What it did to the dev side as a whole, as JSON (or NULL): "wal_bytes"
	 * written while it ran (with the load's, when the load ran), "sizes"
	 * [{table, table_before, table_after, indexes_before, indexes_after}]
	 * of the tables whose size changed.
	 */
	struct json_t *facts;
};

struct ts_report_case {
	char *file;		/* scenario file (basename), or the command */
	char *name;
	int line;
	char *sql;		/* on one line, shortened */
	char *text;		/* the whole statement, in this process only (not saved), or NULL */
	struct json_t *locks;	/* ["schema.table:Mode"] the statement took (a scenario's), or NULL */
	char *expected;
	char *got;
	int pass;
	/*
	 * A prepares or same statement that fails on the production clone
	 * too: not the migration's doing. pass is 1, this says why.
	 */
	char *uncheckable;
	long calls;		/* @calls: production's count, 0 when not known */
	int captured;		/* from the app's workload (twinstage capture) */
	char *role;		/* the role it ran as, or NULL */
};

/* What a check means for the verdict. */
enum ts_check_role {
	TS_CHECK_BASELINE,	/* current on prod: proves the scenarios */
	TS_CHECK_BACKWARD,	/* current on dev: the gate */
	TS_CHECK_NEXT,		/* next on dev: the gate */
	TS_CHECK_FORWARD,	/* next on prod: per gate.forward_compat */
	TS_CHECK_ROLLBACK,	/* current on dev after the down migrations: per gate.rollback */
	TS_CHECK_DURING,	/* a live version on dev while it migrated (the load): the gate */
};

struct ts_report_check {
	char *app;
	char *side;		/* "prod" or "dev" */
	enum ts_check_role role;
	int gating;		/* 1: a failure fails the gate; 0: a warning */
	int ran;		/* 0: skipped (the reason is in skip) */
	char *skip;
	double ms;
	struct ts_report_case *cases;
	size_t n_cases;
	size_t failed;
	char *output;		/* tail of a command's output, or NULL */
	char *phase;		/* on the dev side after this [phase], or NULL */
	char *dir;		/* the folder of the scenario files, or NULL */
	char *role_note;	/* which @role statements ran as the superuser, and why; or NULL */
};

struct ts_report {
	char *run_id;
	char *project;
	char *started;
	char *backend;
	char *clone;		/* how the dev side was made: cow, physical, logical */
	char *clone_source;	/* how the production clone was filled */
	char *clone_note;	/* why a faster way was not taken, or NULL */
	double clone_dev_ms;	/* the dev side from the production clone */
	int prod_port, dev_port;
	/* what each side's guest said it booted, from inside (dualboot), or NULL */
	char *prod_booted, *dev_booted;
	char *current, *next;

	/* the tracking table: whose, and the versions around the migration */
	char *tracking, *tracking_table;
	char *migrations_dir;	/* the migrations folder (absolute) */
	char *prod_version;	/* production clone, before (never migrated) */
	char *dev_before, *dev_after;

	struct ts_report_stage *stages;
	size_t n_stages;
	struct ts_report_migration *migrations;
	size_t n_migrations;
	struct ts_report_check *checks;
	size_t n_checks;
	char **notes;		/* warnings for a person to read */
	size_t n_notes;

	/*
	 * The schema changes from the production clone to the dev side, as
	 * JSON (NULL when not read): [{class, kind, name, table, change,
	 * detail, old_name, file, line, evidence: ["app file:line name"]}].
	 */
	struct json_t *schema;
	/*
	 * The data checks, as JSON (NULL when none ran): [{check: "ddt",
	 * "untouched", "equal" or "rollback", name, side, status: "passed" |
	 * "failed" | "skipped", gating, object, failure, excerpt: [lines],
	 * tables, rows, ms}], in the order they ran.
	 */
	struct json_t *data;
	/*
	 * The [phase] sections, in order (NULL without): [{name, title,
	 * apps: [the versions live after it], migrations: [files]}]. Data
	 * checks of a phase carry its name as "phase".
	 */
	struct json_t *phases;
	/*
	 * The load that ran while the dev side migrated, one entry per
	 * migration run (per phase), as JSON (NULL when none ran): [{phase,
	 * apps, mode, clients, sample_ms, samples, before/during/after:
	 * {statements, per_s, p50_ms, p99_ms, max_ms}, errors, stall, stalls:
	 * [{file, line, sql, ms, app, app_file, app_line, name, waits,
	 * over_gate}], lock_queues, timeline}]. See load.h.
	 */
	struct json_t *load;
	/*
	 * With dev_stack, how the dev side reached the new major (NULL
	 * without): {stack, recipe, suite, from, to, method, mode, steps:
	 * {name_ms}, check: [lines], output: [lines], left: [files],
	 * settings: [{name, set, source, change, old_default, new_default}],
	 * plans: [{app, file, line, name, sql, calls, prod_ms, dev_ms, ratio,
	 * plan_changed, over_gate, prod_shape, dev_shape, prod_plan,
	 * dev_plan}]}. See upgrade.h and plans.h.
	 */
	struct json_t *upgrade;
	/*
	 * Guests under software emulation (NULL otherwise): {emulated, probe,
	 * guest_ms, host_ms, factor, gating, reason, gates: {max_lock_ms,
	 * max_stall_ms, statement_timeout_ms, migration_timeout_ms: {set,
	 * used}}}. See timing.h.
	 */
	struct json_t *timing;
	double max_lock_ms;	/* gate.max_lock_ms, for the verdict's reason */
	double max_stall_ms;	/* gate.max_stall_ms */
	int lint_fails;		/* gate.lint = fail */

	char *error;		/* the run could not finish: why */
	int error_class;	/* its exit code */

	char *verdict;		/* "compatible", "incompatible", "scenarios-wrong", "error" */
	char *reason;		/* one line that says why */
	int exit_code;
};

void ts_report_init(struct ts_report *r, const char *project);
void ts_report_free(struct ts_report *r);

struct ts_report_stage *ts_report_stage_add(struct ts_report *r, const char *name);
struct ts_report_migration *ts_report_migration_add(struct ts_report *r, const char *file);
struct ts_report_stmt *ts_report_stmt_add(struct ts_report_migration *m, int line, double ms,
					  const char *sql);
/* Forgets m's statements (a transaction rolled back to be tried again). */
void ts_report_stmts_clear(struct ts_report_migration *m);
struct ts_report_check *ts_report_check_add(struct ts_report *r, const char *app,
					    const char *side, enum ts_check_role role, int gating);
struct ts_report_case *ts_report_case_add(struct ts_report_check *c);
void ts_report_note(struct ts_report *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Appends a data check (the reference is taken). */
void ts_report_data_add(struct ts_report *r, struct json_t *check);
/* The first data check of that kind (and side, when not NULL), or NULL. */
struct json_t *ts_report_data_find(const struct ts_report *r, const char *check, const char *side);
/* Records that the run stopped on the error in the error slot. */
void ts_report_fail(struct ts_report *r);

/* Computes verdict, reason and exit_code from what was recorded. */
void ts_report_decide(struct ts_report *r);

/* Reads <dir>/report.json back (for `twinstage report`). */
int ts_report_load(struct ts_report *r, const char *dir);
/* The model as JSON (report.json): a new reference. */
struct json_t *ts_report_to_json(const struct ts_report *r);

/*
 * What the verdict and the renderers both ask of the model, so that what a
 * report shows and what it decides come from one place.
 */
/* A check shown only in the rollout matrix: a version that is not live there. */
int ts_report_informational(const struct ts_report *r, const struct ts_report_check *c);
/* Counts the schema changes: n[0] breaking, n[1] risky, n[2] additive. */
void ts_report_schema_counts(const struct ts_report *r, size_t n[3]);
/* The first case of c that failed, or NULL. */
const struct ts_report_case *ts_report_first_failure(const struct ts_report_check *c);
/* 1 for a data check that failed and fails the gate. */
int ts_report_data_fails(struct json_t *v);
/*
 * Why a migration that applied fails the gate anyway, or NULL (new
 * string): the application stalled on it over gate.max_stall_ms, a lock
 * that blocks writes held over gate.max_lock_ms, or (gate.lint = fail) an
 * error-level lint finding.
 */
char *ts_report_gate_failure(const struct ts_report *r, const struct ts_report_migration *m);
/* A stall of the load as one line: "V3:1 kept v1 01_x.sql:5 "name" waiting 1602 ms..." (new string). */
char *ts_report_stall_line(const struct ts_report *r, struct json_t *stall);
/* Who waited in a stall: a scenario statement, or a session of the load command (new string). */
char *ts_report_stall_who(struct json_t *stall);
/* Why a stall over gate.max_stall_ms owed to a statement of migration `file` fails the gate, or NULL. */
char *ts_report_stall_failure(const struct ts_report *r, const char *file);
/* "phase 2 (backfill)": an entry of r->phases as people read it (new string). */
char *ts_report_phase_title(struct json_t *ph);
/* 1 when two phase names (NULL: none) are the same. */
int ts_report_same_phase(const char *a, const char *b);
/* "dev", "dev after phase 2", "dev while phase 2 migrated": a failure's place in a list (new string). */
char *ts_report_check_place(const struct ts_report_check *c);

/*
 * The captured workload of a check, by statement (its parameter sets are
 * one): how many, how many fail and are not checkable, production's calls
 * of them and of the failing ones, and the failing ones heaviest first.
 */
struct ts_report_workload {
	size_t statements, failed, uncheckable;
	long calls, failed_calls;
	const struct ts_report_case **failing;	/* the first failing case of each, by calls */
	size_t n_failing;
};
/* 0 when c has no captured statement; free with ts_report_workload_free. */
int ts_report_workload(const struct ts_report_check *c, struct ts_report_workload *w);
void ts_report_workload_free(struct ts_report_workload *w);
/* "3 of 412 captured statements of v1 fail on the dev side (4.1 % of production's calls)" (new string). */
char *ts_report_workload_line(const struct ts_report_check *c, const struct ts_report_workload *w);

/* The string at key of a JSON object of the report, "" when there is none. */
const char *ts_json_str(struct json_t *o, const char *key);
/* The number at key, 0 when there is none. */
double ts_json_num(struct json_t *o, const char *key);

/* 1 for a check of the compatibility matrix (not the way back, not the load). */
int ts_check_in_matrix(const struct ts_report_check *c);
/* A name for the role, as shown to people. */
const char *ts_check_role_name(enum ts_check_role role);

#endif
