/*
 * lint: what a migration will do to the live application, read from its
 * parse tree alone (libpg_query), without a database.
 *
 * Each finding has a rule id, a level, the file:line:col of the statement
 * (or of the clause at fault), and the safe recipe. Statements on a table
 * created earlier in the same migration are never hazards. A leading
 * comment "-- twinstage:ignore RULE[,RULE]" silences those rules for the
 * statement it precedes.
 */
#ifndef TS_LINT_H
#define TS_LINT_H

#include "migrate/migrations.h"
#include "migrate/sql.h"

#include <stdio.h>

enum ts_lint_level { TS_LINT_WARNING, TS_LINT_ERROR };

struct ts_lint_finding {
	char *file;
	int line, col;
	int stmt_line;		/* line of the statement it is about */
	const char *rule;
	enum ts_lint_level level;
	char *message;
	const char *recipe;
};

struct ts_lint {
	struct ts_lint_finding *v;
	size_t n;
	size_t errors, warnings, files, stmts;
};

/*
 * Lints the statements of one migration, parsed from `sql` (which starts
 * at first_line of file). fmt and no_transaction say how the project's
 * tool runs the file: dbmate wraps it in a transaction unless
 * "transaction:false", golang-migrate runs a file of several statements
 * as one implicit transaction, twinstage and Flyway run a file that holds
 * CONCURRENTLY outside one.
 */
void ts_lint_stmts(struct ts_lint *out, const char *file, const char *sql, int first_line,
		   const struct ts_stmt *stmts, size_t n, enum ts_mig_format fmt,
		   int no_transaction);
/* Parses and lints one migration's SQL; a syntax error is a finding. */
void ts_lint_sql(struct ts_lint *out, const char *file, const char *sql, int first_line,
		 enum ts_mig_format fmt, int no_transaction);
/*
 * Lints files and folders (the *.sql files in them; down parts are
 * skipped in a folder). -1 when a path cannot be read (TS_EXIT_USAGE).
 */
int ts_lint_paths(struct ts_lint *out, char **paths, size_t n);
void ts_lint_free(struct ts_lint *l);

struct json_t;
/* A finding as JSON: file, line, col, rule, level, message, recipe. */
struct json_t *ts_lint_finding_json(const struct ts_lint_finding *f);

void ts_lint_render_text(const struct ts_lint *l, FILE *out);
void ts_lint_render_json(const struct ts_lint *l, FILE *out);

#endif
