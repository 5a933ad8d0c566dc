/*
 * cmd_lint.c: `twinstage lint FILE|DIR...`, the static view of a migration,
 * fast enough for a pre-commit hook: no database, no configuration.
 */
#include "cmd/cmd.h"
#include "core/error.h"
#include "migrate/lint.h"

#include <stdio.h>
#include <string.h>

static const char lint_usage[] =
"usage: twinstage lint [--format text|json] FILE|DIR...\n"
"\n"
"Reads migrations with PostgreSQL's own parser (libpg_query) and reports\n"
"what would break the live version or block its reads and writes, each\n"
"with file:line:col, a rule id and the safe recipe. A folder's *.sql files\n"
"are read in the format of its migration tool; down parts are skipped.\n"
"\"-- twinstage:ignore RULE\" before a statement silences RULE for it.\n"
"\n"
"exit codes: 0 no error-level finding, 1 at least one, 2 bad usage or an\n"
"unreadable path\n";

int cmd_lint(int argc, char **argv)
{
	struct ts_opts o;
	struct ts_lint l = { 0 };
	int done, code;

	code = cmd_parse_options(argc, argv, "lint", lint_usage, "format help ARGS", &o, &done);
	if (done)
		return code;
	if (o.format && strcmp(o.format, "text") && strcmp(o.format, "json")) {
		fprintf(stderr, "twinstage lint: unknown format \"%s\" (text or json)\n", o.format);
		return TS_EXIT_USAGE;
	}
	if (!o.n_args) {
		fprintf(stderr, "twinstage lint: name a migration file or folder\n%s", lint_usage);
		return TS_EXIT_USAGE;
	}
	if (ts_lint_paths(&l, o.args, (size_t)o.n_args)) {
		ts_lint_free(&l);
		return ts_error_print();
	}
	if (o.format && !strcmp(o.format, "json"))
		ts_lint_render_json(&l, stdout);
	else
		ts_lint_render_text(&l, stdout);
	code = l.errors ? TS_EXIT_GATE : TS_EXIT_OK;
	ts_lint_free(&l);
	return code;
}
