/*
 * test_input.c: every file twinstage reads, wrong in the ways real files
 * are: each is refused with the file, the line and what was expected,
 * exit 2, before anything is built, and nothing a user made is lost.
 */
#include "core/error.h"
#include "core/strbuf.h"
#include "core/util.h"
#include "core/wrapper.h"
#include "helpers.h"
#include "migrate/batch.h"
#include "migrate/sql.h"
#include "rehearse/scenario.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <pg_query.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

TH_PROJECT_SUITE(input);

#define ASSERT_HAS TH_ASSERT_HAS

/* A small project of its own: one migration, one version, a seed. */
static void small_project(const char *extra_ini)
{
	char *ini = xstrfmt("[project]\nname = shop\n[source]\nseed = seed.sql\n[app v1]\nscenarios = apps/v1\n"
			    "[rehearsal]\ncurrent = v1\n%s", extra_ini ? extra_ini : "");

	th_write(dir, "seed.sql", "CREATE TABLE t (id int PRIMARY KEY, name text);\nINSERT INTO t VALUES (1, 'a');\n");
	th_write(dir, "migrations/V1__add_note.sql", "ALTER TABLE t ADD COLUMN note text;\n");
	th_write(dir, "apps/v1/01_t.sql", "-- @expect rows 1\nSELECT id, name FROM t;\n");
	th_write(dir, "twinstage.ini", ini);
	free(ini);
}

/* Runs `twinstage ARGS` and asserts exit 2 with needle in its error, and that nothing was built. */
#define ASSERT_REFUSED(needle, ...)                                                              \
	do {                                                                                     \
		int code_ = th_twinstage(dir, &out, &err, __VA_ARGS__, NULL);                   \
		char *wd_ = path_join(dir, ".twinstage");                                        \
		cr_assert_eq(code_, 2, "exit %d\n%s\n%s", code_, out.buf, err.buf);              \
		ASSERT_HAS(err, needle);                                                         \
		th_assert_nothing_left(wd_);                                                     \
		free(wd_);                                                                       \
		strbuf_reset(&out);                                                              \
		strbuf_reset(&err);                                                              \
	} while (0)

Test(input, a_workdir_that_holds_the_project_is_refused_and_the_project_kept)
{
	static const char *const workdirs[] = { ".", "../", "migrations", "apps" };

	small_project(NULL);
	for (size_t i = 0; i < sizeof(workdirs) / sizeof(workdirs[0]); i++) {
		char *ini = xstrfmt("[project]\nname = shop\nworkdir = %s\n[source]\nseed = seed.sql\n"
				    "[app v1]\nscenarios = apps/v1\n[rehearsal]\ncurrent = v1\n", workdirs[i]);

		th_write(dir, "twinstage.ini", ini);
		cr_assert_eq(th_twinstage(dir, &out, &err, "down", "--purge", NULL), 2,
			     "workdir = %s: %s", workdirs[i], err.buf);
		ASSERT_HAS(err, "twinstage removes what it makes in its workdir");
		cr_assert_eq(th_twinstage(dir, &out, &err, "up", NULL), 2);
		free(ini);
	}
	/* nothing of the project went */
	cr_assert(is_file(path_join(dir, "migrations/V1__add_note.sql")));
	cr_assert(is_file(path_join(dir, "apps/v1/01_t.sql")));
	cr_assert(is_file(path_join(dir, "twinstage.ini")));
	cr_assert(is_file(path_join(dir, "seed.sql")));
}

Test(input, a_workdir_with_someone_elses_files_is_never_emptied)
{
	char *other = path_join(dir, "data");

	small_project("[project]\nworkdir = data\n");
	th_write(dir, "twinstage.ini",
		 "[project]\nname = shop\nworkdir = data\n[source]\nseed = seed.sql\n[app v1]\nscenarios = apps/v1\n"
		 "[rehearsal]\ncurrent = v1\n");
	th_write(other, "precious.csv", "1,2,3\n");
	cr_assert_eq(th_twinstage(dir, &out, &err, "down", "--purge", NULL), 2, "%s", err.buf);
	ASSERT_HAS(err, "is not twinstage's: it holds \"precious.csv\"");
	cr_assert_eq(th_twinstage(dir, &out, &err, "rehearse", NULL), 2);
	cr_assert(is_file(path_join(other, "precious.csv")));
	/* an empty folder becomes twinstage's, and --purge removes it */
	unlink(path_join(other, "precious.csv"));
	cr_assert_eq(th_twinstage(dir, &out, &err, "up", "-q", NULL), 0, "%s", err.buf);
	cr_assert(is_file(path_join(other, ".twinstage-workdir")));
	cr_assert_eq(th_twinstage(dir, &out, &err, "down", "--purge", NULL), 0, "%s", err.buf);
	cr_assert(!is_dir(other));
	free(other);
}

Test(input, a_scenario_that_commits_is_refused_when_it_is_read)
{
	struct ts_scenario sc;

	cr_assert_eq(ts_scenario_parse_text("01_t.sql", "-- @name insert\nINSERT INTO t VALUES (2);\n\nCOMMIT;\n", &sc), -1);
	cr_assert(strstr(ts_error_message(), "01_t.sql:4: a scenario may not control its transaction (COMMIT)"),
		  "%s", ts_error_message());
	cr_assert_eq(ts_scenario_parse_text("01_t.sql", "SELECT 1;\n-- @name undo\n  ROLLBACK;\n", &sc), -1);
	cr_assert(strstr(ts_error_message(), "01_t.sql:3:"), "%s", ts_error_message());
	/* a statement that does not parse is a scenario's business (it may expect 42601) */
	cr_assert_eq(ts_scenario_parse_text("01_t.sql", "-- @expect error 42601\nSELECT 1 +;\n", &sc), 0, "%s",
		     ts_error_message());
	ts_scenario_free(&sc);
	/* but one with no keyword would vanish from libpg_query's split: refused, not skipped */
	cr_assert_eq(ts_scenario_parse_text("01_t.sql", "SELECT 1;\nSELEC 2;\nSELECT 3;\n", &sc), -1);
	cr_assert(strstr(ts_error_message(), "01_t.sql:2: \"SELEC 2\" is not a statement"), "%s", ts_error_message());
	/* end to end: refused before any cluster is made, production clone untouched */
	small_project(NULL);
	th_write(dir, "apps/v1/02_commit.sql", "INSERT INTO t VALUES (2, 'b');\nCOMMIT;\n");
	ASSERT_REFUSED("02_commit.sql:2: a scenario may not control its transaction", "rehearse");
}

Test(input, two_expectations_on_one_statement_are_refused)
{
	struct ts_scenario sc;

	cr_assert_eq(ts_scenario_parse_text("a.sql", "-- @expect rows 1\n-- @expect ok\nSELECT 1;\n", &sc), -1);
	cr_assert(strstr(ts_error_message(), "a.sql:2: a second @expect for one statement (the first is on line 1)"),
		  "%s", ts_error_message());
}

Test(input, non_finite_gates_are_refused_with_their_line)
{
	small_project("[gate]\nmax_stall_ms = nan\n");
	ASSERT_REFUSED("twinstage.ini:10: invalid value for max_stall_ms: \"nan\"", "rehearse");
	small_project("[gate]\nmax_lock_ms = inf\n");
	ASSERT_REFUSED("twinstage.ini:10: invalid value for max_lock_ms: \"inf\"", "rehearse");
	small_project("[gate]\nstatement_timeout = 5 weeks\n");
	ASSERT_REFUSED("twinstage.ini:10: invalid value for statement_timeout", "rehearse");
}

Test(input, lines_are_counted_right_whatever_their_length)
{
	struct strbuf ini = STRBUF_INIT;

	/* a 10 kB comment (over inih's buffer), then an error six lines down */
	small_project(NULL);
	strbuf_addstr(&ini, "[project]\nname = shop\n# ");
	for (int i = 0; i < 10000; i++)
		strbuf_addch(&ini, 'x');
	strbuf_addstr(&ini, "\n[source]\nseed = seed.sql\nno equals sign here\n");
	th_write(dir, "twinstage.ini", ini.buf);
	ASSERT_REFUSED("twinstage.ini:6: syntax error", "rehearse");
	/* a 10 MB line is named as what it is, on its own line */
	strbuf_reset(&ini);
	strbuf_addstr(&ini, "[project]\nname = shop\n# ");
	for (int i = 0; i < 10 * 1024 * 1024; i++)
		strbuf_addch(&ini, 'x');
	strbuf_addstr(&ini, "\n[source]\nseed = seed.sql\n");
	th_write(dir, "twinstage.ini", ini.buf);
	ASSERT_REFUSED("twinstage.ini:3: the line is 10485763 bytes long", "rehearse");
	strbuf_release(&ini);
}

Test(input, a_folder_is_not_a_configuration)
{
	small_project(NULL);
	ASSERT_REFUSED("is a folder, not a file", "rehearse", "-c", dir);
	th_write(dir, "twinstage.ini", "[project]\nname = shop\n[environments]\ninclude = migrations\n");
	ASSERT_REFUSED("is a folder, not a file", "rehearse");
	ASSERT_REFUSED("is a folder, not a file", "rehearse", "-c", path_join(dir, "twinstage.ini"), "--env", dir);
}

Test(input, empty_binary_and_wrong_files_name_the_file_and_line)
{
	int fd;

	small_project(NULL);
	/* an empty configuration, an environment file without [environments] */
	th_write(dir, "empty.ini", "");
	ASSERT_REFUSED("empty.ini: the file is empty", "rehearse", "-c", "empty.ini");
	th_write(dir, "envs.ini", "; only a comment\n");
	ASSERT_REFUSED("envs.ini: no [section] in it", "rehearse", "--env", "envs.ini");
	th_write(dir, "envs.ini", "[environments]\n");
	th_twinstage(dir, &out, &err, "status", "--env", "envs.ini", NULL);
	ASSERT_HAS(out, "no environments in");	/* read, and nothing is up */
	/* binary garbage in the configuration: named, and never echoed to the terminal */
	th_write(dir, "twinstage.ini", "[project]\nname = shop\x1b]0;owned\x07\n");
	ASSERT_REFUSED("twinstage.ini:2: control character 0x1b", "rehearse");
	cr_assert(!strchr(err.buf, '\x1b'));
	/* a seed that is a folder, is empty, or holds a NUL byte */
	small_project(NULL);
	unlink(path_join(dir, "seed.sql"));
	mkdir(path_join(dir, "seed.sql"), 0755);
	ASSERT_REFUSED("seed.sql\" is a folder, not a file (expected a seed", "rehearse");
	rmdir(path_join(dir, "seed.sql"));
	th_write(dir, "seed.sql", "");
	ASSERT_REFUSED("seed.sql: the file is empty", "rehearse");
	fd = open(path_join(dir, "seed.sql"), O_WRONLY | O_TRUNC);
	cr_assert(write(fd, "SELECT 1;\nSELECT\0 2;\n", 21) == 21);
	close(fd);
	ASSERT_REFUSED("seed.sql:2: a NUL byte at byte 16", "rehearse");
	/* an empty migration, an empty scenario */
	small_project(NULL);
	th_write(dir, "migrations/V2__empty.sql", "");
	ASSERT_REFUSED("V2__empty.sql: the file is empty (expected a migration", "rehearse");
	unlink(path_join(dir, "migrations/V2__empty.sql"));
	th_write(dir, "apps/v1/02_empty.sql", "");
	ASSERT_REFUSED("02_empty.sql: the file is empty (expected a scenario file", "rehearse");
}

Test(input, a_migration_that_is_not_utf8_names_file_line_and_byte)
{
	small_project(NULL);
	th_write(dir, "migrations/V2__caf\xc3\xa9.sql", "-- a comment\nINSERT INTO t VALUES (3, 'caf\xe9');\n");
	cr_assert_eq(th_twinstage(dir, &out, &err, "lint", "migrations", NULL), 2, "%s", out.buf);
	ASSERT_HAS(err, "V2__caf\xc3\xa9.sql:2: byte 0xe9 at byte 42 is not UTF-8 text");
	ASSERT_REFUSED("V2__caf\xc3\xa9.sql:2: byte 0xe9 at byte 42 is not UTF-8 text", "rehearse");
	/* a file name that is not UTF-8: shown escaped */
	unlink(path_join(dir, "migrations/V2__caf\xc3\xa9.sql"));
	th_write(dir, "migrations/V2__caf\xe9.sql", "SELECT 1;\n");
	ASSERT_REFUSED("V2__caf\\xe9.sql\" is not UTF-8 text", "rehearse");
}

Test(input, a_path_that_is_not_utf8_is_refused_before_anything_is_mounted)
{
	char *odd = path_join(dir, "caf\xe9");
	char *wd = path_join(odd, ".twinstage");

	th_write(odd, "migrations/V1__a.sql", "SELECT 1;\n");
	th_write(odd, "twinstage.ini", "[project]\nname = shop\n");
	cr_assert_eq(th_twinstage(odd, &out, &err, "up", NULL), 2, "%s", err.buf);
	ASSERT_HAS(err, "caf\\xe9/twinstage.ini\" is not UTF-8 text");
	th_assert_nothing_left(wd);
	free(wd);
	free(odd);
}

Test(input, an_empty_migrations_folder_rehearses_nothing)
{
	small_project(NULL);
	unlink(path_join(dir, "migrations/V1__add_note.sql"));
	cr_assert_eq(th_twinstage(dir, &out, &err, "rehearse", "--no-load", NULL), 0, "%s\n%s", out.buf, err.buf);
	ASSERT_HAS(out, "verdict: compatible");
}

Test(input, a_database_name_with_a_space_works_everywhere)
{
	small_project("[project]\ndatabase = my shop's db\n[app v2]\ncommand = ./check.sh\n[rehearsal]\nnext = v2\n");
	th_write(dir, "check.sh", "#!/bin/sh\necho \"url=$DATABASE_URL\"\n"
		 "psql -X -At -c 'SELECT current_database()'\n");
	chmod(path_join(dir, "check.sh"), 0755);
	cr_assert_eq(th_twinstage(dir, &out, &err, "rehearse", NULL), 0, "%s\n%s", out.buf, err.buf);
	ASSERT_HAS(out, "verdict: compatible");
	{
		char *log = th_read(dir, ".twinstage/logs/v2-on-dev.log");

		cr_assert(log && strstr(log, "url=postgresql://postgres@127.0.0.1:") &&
			  strstr(log, "/my%20shop%27s%20db"), "%s", log ? log : "(no log)");
		cr_assert(strstr(log, "my shop's db\n"), "%s", log);
		free(log);
	}
}

Test(input, down_removes_what_the_recorded_backend_made)
{
	char *wd = path_join(dir, ".twinstage"), *vm = th_src("envs/vm.ini");

	small_project(NULL);
	cr_assert_eq(th_twinstage(dir, &out, &err, "up", "-q", NULL), 0, "%s", err.buf);
	cr_assert(th_postgres_procs(wd) + th_postgres_procs("/var/tmp/twinstage-") > 0);
	/* the configuration now names vm: the kept sides are still instance's */
	cr_assert_eq(th_twinstage(dir, &out, &err, "down", "--env", vm, NULL), 0, "%s", err.buf);
	th_assert_nothing_left(wd);
	free(vm);
	free(wd);
}

Test(input, statements_that_never_return_are_stopped_by_the_documented_settings)
{
	small_project("[gate]\nstatement_timeout = 300ms\nmigration_timeout = 1s\n");
	th_write(dir, "apps/v1/02_slow.sql", "-- @name the slow report\nSELECT pg_sleep(30);\n");
	cr_assert_eq(th_twinstage(dir, &out, &err, "rehearse", "--no-load", NULL), 2, "%s\n%s", out.buf, err.buf);
	ASSERT_HAS(out, "02_slow.sql:2 \"the slow report\" expected ok, got error 57014: canceling statement due to statement timeout (stopped after [gate] statement_timeout = 300 ms)");
	unlink(path_join(dir, "apps/v1/02_slow.sql"));
	th_write(dir, "migrations/V2__slow.sql", "SELECT pg_sleep(30);\n");
	strbuf_reset(&out);
	cr_assert_eq(th_twinstage(dir, &out, &err, "rehearse", "--no-load", NULL), 1, "%s\n%s", out.buf, err.buf);
	ASSERT_HAS(out, "V2__slow.sql:1: 57014: canceling statement due to statement timeout (stopped after [gate] migration_timeout = 1 s)");
}

/* Found by fuzz_batch: a comment at the end of the last line swallowed the LIMIT. */
Test(input, a_batch_statement_ending_in_a_comment_rewrites_to_sql_that_parses)
{
	static const char *const sqls[] = {
		"-- twinstage:batch 100\nUPDATE t SET a = 1 WHERE a IS NULL -- the rest",
		"-- twinstage:batch 100\nINSERT INTO b SELECT * FROM a WHERE NOT EXISTS (SELECT 1 FROM b) -- x\n;",
		"-- twinstage:batch 100\nDELETE FROM t WHERE done /* done */",
	};

	for (size_t i = 0; i < sizeof(sqls) / sizeof(sqls[0]); i++) {
		struct ts_stmt *st;
		size_t n;
		char *outq, *count;
		PgQueryParseResult a, b;

		cr_assert_eq(ts_stmts_parse("f.sql", sqls[i], 1, &st, &n), 0, "%s", ts_error_message());
		cr_assert_eq(ts_batch_rewrite(&st[0], st[0].batch, &outq, &count), 0, "%s", ts_error_message());
		a = pg_query_parse(outq);
		b = pg_query_parse(count);
		cr_assert(!a.error, "%s\ndoes not parse: %s", outq, a.error->message);
		cr_assert(!b.error, "%s\ndoes not parse: %s", count, b.error->message);
		cr_assert(strstr(outq, "LIMIT 100"), "%s", outq);
		pg_query_free_parse_result(a);
		pg_query_free_parse_result(b);
		free(outq);
		free(count);
		ts_stmts_free(st, n);
	}
}
