/*
 * cmd_lint.c: `twinstage lint FILE|DIR...`, the static view of a migration,
 * fast enough for a pre-commit hook: no database, no configuration.
 */
#include "cmd/cmd.h"
#include "core/error.h"
#include "migrate/lint.h"
#include "report/format.h"

#include <stdio.h>
#include <string.h>

static const char lint_usage[] =
"usage: twinstage lint [--format text|json|github] FILE|DIR...\n"
"\n"
"Reads migrations with PostgreSQL's own parser (libpg_query) and reports\n"
"what would break the live version or block its reads and writes, each\n"
"with file:line:col, a rule id and the safe recipe. A folder's *.sql files\n"
"are read in the format of its migration tool; down parts are skipped.\n"
"\"-- twinstage:ignore RULE\" before a statement silences RULE for it.\n"
"\n"
"exit codes: 0 no error-level finding, 1 at least one, 2 bad usage or an\n"
"unreadable path\n";

/* GitHub Actions annotations on the lines of the findings, and a notice that counts them. */
static void render_github(const struct ts_lint *l)
{
	for (size_t i = 0; i < l->n; i++) {
		const struct ts_lint_finding *f = &l->v[i];

		printf("::%s file=", f->level == TS_LINT_ERROR ? "error" : "warning");
		ts_github_escape(stdout, f->file, 1);
		printf(",line=%d,col=%d,title=", f->line, f->col);
		ts_github_escape(stdout, "twinstage lint: ", 1);
		ts_github_escape(stdout, f->rule, 1);
		printf("::");
		ts_github_escape(stdout, f->message, 0);
		printf("%%0Asafe: ");
		ts_github_escape(stdout, f->recipe, 0);
		putchar('\n');
	}
	printf("::notice title=twinstage lint::%zu file%s, %zu statement%s: %zu error%s, %zu warning%s\n", l->files,
	       l->files == 1 ? "" : "s", l->stmts, l->stmts == 1 ? "" : "s", l->errors, l->errors == 1 ? "" : "s",
	       l->warnings, l->warnings == 1 ? "" : "s");
}

int cmd_lint(int argc, char **argv)
{
	struct ts_opts o;
	struct ts_lint l = { 0 };
	int done, code;

	code = cmd_parse_options(argc, argv, "lint", lint_usage, "format help ARGS", &o, &done);
	if (done)
		return code;
	if (o.format && strcmp(o.format, "text") && strcmp(o.format, "json") && strcmp(o.format, "github")) {
		fprintf(stderr, "twinstage lint: unknown format \"%s\" (text, json or github)\n", o.format);
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
	else if (o.format && !strcmp(o.format, "github"))
		render_github(&l);
	else
		ts_lint_render_text(&l, stdout);
	code = l.errors ? TS_EXIT_GATE : TS_EXIT_OK;
	ts_lint_free(&l);
	return code;
}
