/*
 * scenario: what an application version does, and whether it still works.
 *
 * A scenario file is SQL with annotations on the comment lines before the
 * statement they apply to:
 *
 *	-- @name create invoice
 *	-- @expect rows 1
 *	INSERT INTO inovices (customer, amount) VALUES ('acme', 100) RETURNING id;
 *
 * @expect is one of: ok (the default), rows N (rows returned, or affected
 * when none are returned), error SQLSTATE, columns a,b,c (the result has
 * these columns; more are fine, since adding a column is a compatible change),
 * prepares (the statement, with $1 ... as pg_stat_statements writes it, is
 * prepared and its generic plan made), or same (on the dev side it gives
 * what it gives on the production clone: the same SQLSTATE, columns and
 * rows). prepares and same are judged against the production clone: a
 * statement that fails there is not checkable, and fails nothing.
 *
 * The annotations a capture writes (any file may use them):
 *
 *	-- @role app                 run as this role ([app] role = is the default)
 *	-- @calls 412                how often production ran it (weighs failures)
 *	-- @params '42', NULL        the values of $1, $2 (one line per sample)
 *
 * How they run against a side is scenario_run.h.
 */
#ifndef TS_SCENARIO_H
#define TS_SCENARIO_H

#include <stddef.h>

#include "core/strvec.h"

struct ts_app;

enum ts_expect_kind {
	TS_EXPECT_OK, TS_EXPECT_ROWS, TS_EXPECT_ERROR, TS_EXPECT_COLUMNS, TS_EXPECT_PREPARES, TS_EXPECT_SAME
};

struct ts_scenario_stmt {
	char *name;
	int line;
	char *sql;
	enum ts_expect_kind expect;
	long rows;
	char sqlstate[6];
	struct strvec columns;
	char *role;		/* @role, or [app] role, or NULL: the session's own */
	long calls;		/* @calls: production's count, 0 when not known */
	struct strvec params;	/* each @params line: SQL constants, one run each */
	int ordered;		/* a SELECT ordered at the top level (same compares rows in order) */
	int nparams;		/* the highest $n it uses (prepares and @params), from its parse tree */
};

struct ts_scenario {
	char *file;		/* basename */
	char *path;
	struct ts_scenario_stmt *stmts;
	size_t n;
	int captured;		/* from the app's workload folder (twinstage capture) */
};

/* Parses one file. Errors (TS_EXIT_USAGE) name file:line. */
int ts_scenario_parse(const char *path, struct ts_scenario *out);
/* Parses text as if it were the file `name` (for tests and tools). */
int ts_scenario_parse_text(const char *name, const char *text, struct ts_scenario *out);
void ts_scenario_free(struct ts_scenario *sc);

/*
 * The .sql files of app's scenarios folder, then those of its workload
 * folder (captured), parsed, in name order; [app] role given to the
 * statements without @role.
 */
int ts_scenario_load_app(const struct ts_app *app, struct ts_scenario **out, size_t *n);
void ts_scenario_free_all(struct ts_scenario *sc, size_t n);

/* Judges one result against st's expectation; *got (allocated) says what happened. */
struct pg_result;
int ts_scenario_judge(const struct ts_scenario_stmt *st, struct pg_result *res, char **got);

/* SQL on one line (spaces folded), at most about 200 characters, for reports. */
char *ts_oneline(const char *sql);

/* prepares or same: judged against the production clone, its effects always undone. */
int ts_scenario_differential(const struct ts_scenario_stmt *st);

/* The expectation as text: "ok", "rows 1", "error 42703", "columns a,b", "prepares", "same". */
char *ts_scenario_expect_text(const struct ts_scenario_stmt *st);

/* Whether the app has SQL to run: a scenarios folder, or a captured workload. */
int ts_app_has_sql(const struct ts_app *app);

#endif
