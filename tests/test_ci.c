/*
 * test_ci.c: what a CI system reads from twinstage: report.json and
 * manifest.json against their JSON Schemas (schema/), GitHub Actions
 * annotations and the step summary, the pull-request comment, and the CI
 * files of examples/ci/, whose every twinstage command must exist with
 * the options it uses.
 */
#include "core/strbuf.h"
#include "core/strvec.h"
#include "core/util.h"
#include "core/wrapper.h"
#include "helpers.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

TH_PROJECT_SUITE(ci);

#define ASSERT_HAS TH_ASSERT_HAS
#define PYTHON "/usr/bin/python3"	/* Debian's, which sees python3-jsonschema and python3-yaml */

/* Validates files (NULL-terminated) against schema/<schema>; fails with what the validator said. */
static void assert_valid(const char *schema, ...)
{
	char *tool = th_src("tests/tools/validate-json.py"), *sch = xstrfmt("schema/%s", schema);
	char *sp = th_src(sch);
	struct strvec args = STRVEC_INIT;
	struct strbuf said = STRBUF_INIT;
	struct child_process cp = CHILD_PROCESS_INIT;
	va_list ap;
	const char *f;
	int code;

	strvec_pushl(&cp.args, PYTHON, tool, sp, NULL);
	va_start(ap, schema);
	while ((f = va_arg(ap, const char *)))
		strvec_push(&cp.args, f);
	va_end(ap);
	cp.capture = &said;
	cp.no_stdin = 1;
	code = run_command(&cp);
	cr_assert_eq(code, 0, "not valid against %s (exit %d):\n%s", schema, code, said.buf);
	child_process_clear(&cp);
	strvec_clear(&args);
	strbuf_release(&said);
	free(tool);
	free(sch);
	free(sp);
}

static char *latest(const char *name)
{
	char *rel = xstrfmt(".twinstage/reports/latest/%s", name), *p = path_join(dir, rel);

	free(rel);
	return p;
}

Test(ci, reports_and_manifests_match_their_json_schemas_passing_or_not)
{
	char *rep, *man, *summary = path_join(dir, "summary.md");
	json_t *o;
	int code;

	/* a compatible release */
	th_project(dir, NULL);
	th_write(dir, "migrations/V1__create_invoices.sql", "CREATE TABLE invoices (LIKE inovices);\n");
	code = th_twinstage(dir, &out, &err, "rehearse", "-q", NULL);
	cr_assert_eq(code, 0, "exit %d\n%s", code, err.buf);
	rep = latest("report.json");
	man = latest("manifest.json");
	assert_valid("report.schema.json", rep, NULL);
	assert_valid("manifest.schema.json", man, NULL);
	o = json_load_file(rep, 0, NULL);
	cr_assert_eq(json_integer_value(json_object_get(o, "format")), 1);
	cr_assert(json_string_value(json_object_get(o, "twinstage")), "report.json names no twinstage version");
	json_decref(o);
	free(rep);
	free(man);

	/* an incompatible one, in GitHub's format: annotations, and the summary */
	th_write(dir, "migrations/V2__rename.sql", "ALTER TABLE inovices RENAME TO invoices_old;\n");
	setenv("GITHUB_STEP_SUMMARY", summary, 1);
	setenv("GITHUB_WORKSPACE", dir, 1);
	strbuf_reset(&out);
	code = th_twinstage(dir, &out, &err, "rehearse", "-q", "--format", "github", NULL);
	unsetenv("GITHUB_STEP_SUMMARY");
	unsetenv("GITHUB_WORKSPACE");
	cr_assert_eq(code, 1, "exit %d\n%s", code, err.buf);
	/* on the migration's line, and on the scenario statement that broke */
	ASSERT_HAS(out, "::warning file=migrations/V2__rename.sql,line=1,title=twinstage lint%3A rename-table::");
	ASSERT_HAS(out, "01_invoices.sql,line=5,title=twinstage%3A v1 on dev::create invoice: expected rows 1, got error 42P01");
	ASSERT_HAS(out, "::error title=twinstage rehearse::incompatible: ");
	{
		char *md = th_read(dir, "summary.md");

		cr_assert(md && strstr(md, "# twinstage"), "the step summary holds no Markdown report:\n%s", md ? md : "(none)");
		free(md);
	}
	rep = latest("report.json");
	man = latest("manifest.json");
	assert_valid("report.schema.json", rep, NULL);
	assert_valid("manifest.schema.json", man, NULL);
	free(rep);
	free(man);
	{
		/* the pull-request comment: per migration its time, locks, WAL and sizes */
		char *c = th_read(dir, ".twinstage/reports/latest/comment.md");

		cr_assert(c, "no comment.md beside the reports");
		cr_assert(strstr(c, "| migration | status | time | locks | WAL | sizes |"), "%s", c);
		cr_assert(strstr(c, "`V2__rename.sql` | applied |"), "%s", c);
		cr_assert(strstr(c, "AccessExclusiveLock on public.inovices: **blocked writes"), "%s", c);
		cr_assert(strstr(c, "**v1** (live now) on dev: **"), "%s", c);
		free(c);
	}
	free(summary);
}

Test(ci, lint_annotates_the_line_of_each_finding)
{
	int code;

	th_write(dir, "migrations/V1__rename.sql", "-- rename\nALTER TABLE a RENAME TO b;\n");
	code = th_twinstage(dir, &out, &err, "lint", "--format", "github", "migrations", NULL);
	cr_assert_eq(code, 1, "exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(out, "::error file=migrations/V1__rename.sql,line=2,col=");
	ASSERT_HAS(out, "title=twinstage lint%3A rename-table::renames table a to \"b\"");
	ASSERT_HAS(out, "::notice title=twinstage lint::1 file, 1 statement: 1 error");
}

Test(ci, a_report_of_a_later_format_is_refused_by_name)
{
	int code;

	th_write(dir, ".twinstage/reports/x/report.json", "{\"format\": 99, \"twinstage\": \"9.0\", \"run_id\": \"x\"}\n");
	th_write(dir, "twinstage.ini", "[project]\nname = x\n");
	th_write(dir, "migrations/.keep", "");
	code = th_twinstage(dir, &out, &err, "report", "--run", "x", NULL);
	cr_assert_eq(code, 2, "exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(err, "is of format a later one, newer than this twinstage reads (1)");
	ASSERT_HAS(err, "read it with the twinstage that wrote it (9.0)");
}

Test(ci, the_example_ci_files_run_only_commands_twinstage_has)
{
	char *tool = th_src("tests/tools/ci-commands.py");
	char *gh = th_src("examples/ci/github-actions.yml"), *gl = th_src("examples/ci/gitlab-ci.yml");
	struct child_process cp = CHILD_PROCESS_INIT;
	struct strbuf said = STRBUF_INIT;
	struct strvec lines = STRVEC_INIT;
	int code, promote = 0;

	strvec_pushl(&cp.args, PYTHON, tool, gh, gl, NULL);
	cp.capture = &said;
	cp.no_stdin = 1;
	code = run_command(&cp);
	cr_assert_eq(code, 0, "the CI files do not read as YAML, or run no twinstage (exit %d):\n%s", code, said.buf);
	strvec_split(&lines, said.buf, "\n");
	cr_assert(lines.nr >= 6, "too few twinstage commands found:\n%s", said.buf);
	for (size_t i = 0; i < lines.nr; i++) {
		json_t *words = json_loads(lines.v[i], 0, NULL), *w;
		struct strvec args = STRVEC_INIT, help = STRVEC_INIT;
		size_t k;

		cr_assert(json_is_array(words), "not a command: %s", lines.v[i]);
		json_array_foreach(words, k, w)
			if (k)
				strvec_push(&args, json_string_value(w));
		promote |= !strcmp(args.v[0], "promote");
		/* the command and its options exist: they parse, then --help stops it */
		strvec_push(&help, args.v[0]);
		strvec_push(&help, "--help");
		strbuf_reset(&out);
		code = th_twinstage_v(dir, &out, &err, &help);
		cr_assert_eq(code, 0, "\"twinstage %s\" is not a command:\n%s", args.v[0], err.buf);
		strvec_push(&args, "--help");
		strbuf_reset(&err);
		code = th_twinstage_v(dir, NULL, &err, &args);
		cr_assert_eq(code, 0, "%s: an option twinstage does not have:\n%s", lines.v[i], err.buf);
		/* and a --format it names is one the command's usage lists */
		for (size_t a = 0; a + 1 < args.nr; a++)
			if (!strcmp(args.v[a], "--format"))
				cr_assert(strstr(out.buf, args.v[a + 1]), "%s: \"twinstage %s\" has no format %s:\n%s",
					  lines.v[i], args.v[0], args.v[a + 1], out.buf);
		strvec_clear(&args);
		strvec_clear(&help);
		json_decref(words);
	}
	cr_assert(promote, "no CI file promotes");
	child_process_clear(&cp);
	strvec_clear(&lines);
	strbuf_release(&said);
	free(tool);
	free(gh);
	free(gl);
}
