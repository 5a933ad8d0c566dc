/*
 * test_rehearse.c: the program as a user runs it: the bundled examples end
 * to end with their exit codes, the step commands, bad input, and nothing
 * left behind.
 */
#include "core/error.h"
#include "core/run_command.h"
#include "core/strbuf.h"
#include "core/util.h"
#include "core/wrapper.h"
#include "helpers.h"
#include "pg/pg.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

TH_PROJECT_SUITE(rehearse);

#define ASSERT_HAS TH_ASSERT_HAS


#define latest_report th_latest_report

static const char *verdict_of(json_t *o)
{
	return json_string_value(json_object_get(o, "verdict"));
}

Test(rehearse, invoices_example_is_compatible)
{
	char *ini = th_src("scenarios/invoices/twinstage.ini");
	char *wd = th_src("scenarios/invoices/.twinstage");
	json_t *rep;
	int code;

	code = th_twinstage(dir, &out, &err, "rehearse", "-c", ini, NULL);
	cr_assert_eq(code, 0, "exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(out, "verdict: compatible");
	/* four phases, each version after each */
	ASSERT_HAS(out, "after phase 1 (expand: create invoices, write twice)");
	ASSERT_HAS(out, "passed  rollback of phase 3");
	ASSERT_HAS(err, "teardown");
	rep = latest_report(wd);
	cr_assert_str_eq(verdict_of(rep), "compatible");
	cr_assert_eq(json_array_size(json_object_get(rep, "migrations")), 5);
	json_decref(rep);
	th_assert_nothing_left(wd);
	free(ini);
	free(wd);
}

Test(rehearse, rename_breaks_example_fails_naming_v1)
{
	char *ini = th_src("scenarios/rename-breaks/twinstage.ini");
	char *wd = th_src("scenarios/rename-breaks/.twinstage");
	int code;

	code = th_twinstage(dir, &out, &err, "rehearse", "-c", ini, "--format", "junit", NULL);
	cr_assert_eq(code, 1, "exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(out, "<testsuite name=\"v1 on dev (backward)\"");
	ASSERT_HAS(out, "name=\"create invoice (line 5)\"><failure message=\"expected rows 1, got error 42P01: relation &quot;inovices&quot; does not exist\"");
	strbuf_reset(&out);
	cr_assert_eq(th_twinstage(dir, &out, &err, "report", "-c", ini, NULL), 1);
	ASSERT_HAS(out, "verdict: incompatible - v1 fails on the migrated dev side: 01_invoices.sql:5 \"create invoice\"");
	ASSERT_HAS(out, "INSERT INTO inovices (customer, amount) VALUES ('acme', 100) RETURNING id");
	/* the three views of the migration, side by side */
	ASSERT_HAS(out, "lock AccessExclusiveLock on public.inovices held");
	ASSERT_HAS(out, "lint error [rename-table] renames table inovices to \"invoices\"");
	ASSERT_HAS(out, "breaking: table public.invoices renamed");
	ASSERT_HAS(out, "breaking table public.invoices renamed: renamed from public.inovices: the current version still uses the old name [V1__rename_inovices.sql:2] - fails v1 01_invoices.sql:5 \"create invoice\"");
	cr_assert(!strstr(out.buf, "flyway_schema_history added"), "the tracking table is not a change:\n%s", out.buf);
	strbuf_reset(&out);
	cr_assert_eq(th_twinstage(dir, &out, &err, "report", "-c", ini, "--format", "markdown", NULL), 1);
	ASSERT_HAS(out, "### Schema changes");
	th_assert_nothing_left(wd);
	free(ini);
	free(wd);
}

Test(rehearse, registry_example_applies_only_what_production_lacks)
{
	char *ini = th_src("scenarios/registry/twinstage.ini");
	char *wd = th_src("scenarios/registry/.twinstage");
	json_t *rep, *tr, *m;
	int code;

	code = th_twinstage(dir, &out, &err, "rehearse", "-c", ini, NULL);
	cr_assert_eq(code, 0, "exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(out, "tracked in golang-migrate's table public.schema_migrations: production clone at 2, dev side 2 -> 4");
	rep = latest_report(wd);
	tr = json_object_get(rep, "tracking");
	cr_assert_str_eq(json_string_value(json_object_get(tr, "tool")), "golang-migrate");
	cr_assert_str_eq(json_string_value(json_object_get(tr, "dev_after")), "4");
	m = json_object_get(rep, "migrations");
	cr_assert_eq(json_array_size(m), 2, "only 3 and 4 are pending");
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(m, 0), "file")), "3_add_tag_digest.up.sql");
	json_decref(rep);
	th_assert_nothing_left(wd);
	free(ini);
	free(wd);
}

Test(rehearse, a_dirty_production_stops_before_anything_runs)
{
	int code;

	th_write(dir, "seed.sql", "CREATE TABLE schema_migrations (version bigint PRIMARY KEY, dirty boolean NOT NULL);\n"
				  "INSERT INTO schema_migrations VALUES (7, true);\n");
	th_write(dir, "migrations/8_x.up.sql", "CREATE TABLE x (id int);\n");
	th_write(dir, "twinstage.ini", "[source]\nseed = seed.sql\n");
	code = th_twinstage(dir, &out, &err, "rehearse", NULL);
	cr_assert_eq(code, 2, "exit %d\n%s", code, err.buf);
	ASSERT_HAS(err, "the production clone's golang-migrate table \"public.schema_migrations\" is dirty at version 7");
	ASSERT_HAS(out, "none pending");
	th_assert_nothing_left(path_join(dir, ".twinstage"));
}

Test(rehearse, step_commands_build_migrate_replay_and_remove)
{
	char *wd = path_join(dir, ".twinstage");
	int code;

	th_project(dir, NULL);
	th_write(dir, "migrations/V1__create_invoices.sql", "CREATE TABLE invoices (LIKE inovices);\n");
	code = th_twinstage(dir, &out, &err, "up", NULL);
	cr_assert_eq(code, 0, "up: %d\n%s", code, err.buf);
	ASSERT_HAS(out, "prod  running  postgresql://postgres@127.0.0.1:");
	cr_assert_eq(th_postgres_procs(wd) >= 2, 1, "two servers run");

	cr_assert_eq(th_twinstage(dir, &out, &err, "up", NULL), 0, "a second up reuses them");
	ASSERT_HAS(err, "already up");

	strbuf_reset(&out);
	cr_assert_eq(th_twinstage(dir, &out, &err, "migrate", NULL), 0, "%s", err.buf);
	ASSERT_HAS(out, "applied 1 migration on the dev side");
	strbuf_reset(&out);
	cr_assert_eq(th_twinstage(dir, &out, &err, "migrate", NULL), 0);
	ASSERT_HAS(out, "applied 0 migrations");

	strbuf_reset(&out);
	cr_assert_eq(th_twinstage(dir, &out, &err, "status", NULL), 0);
	ASSERT_HAS(out, "dev   at version 1, 0 pending");
	ASSERT_HAS(out, "applied 1 create invoices");

	strbuf_reset(&out);
	code = th_twinstage(dir, &out, &err, "replay", "--format", "json", NULL);
	cr_assert_eq(code, 0, "replay: %d\n%s", code, err.buf);
	ASSERT_HAS(out, "\"verdict\": \"compatible\"");

	/* the schema of the kept pair, from the catalogs */
	strbuf_reset(&out);
	cr_assert_eq(th_twinstage(dir, &out, &err, "diff", NULL), 0, "%s", err.buf);
	ASSERT_HAS(out, "schema changes, production clone -> dev side: 0 breaking, 0 risky, 1 additive");
	ASSERT_HAS(out, "additive table public.invoices added");
	th_write(dir, "migrations/V2__drop_customer.sql", "ALTER TABLE inovices DROP COLUMN customer;\n");
	cr_assert_eq(th_twinstage(dir, &out, &err, "migrate", NULL), 0, "%s", err.buf);
	strbuf_reset(&out);
	cr_assert_eq(th_twinstage(dir, &out, &err, "diff", "--format", "json", NULL), 1);
	ASSERT_HAS(out, "\"name\": \"public.inovices.customer\"");
	ASSERT_HAS(out, "\"class\": \"breaking\"");

	/* a migration edited after it was applied is refused */
	th_write(dir, "migrations/V1__create_invoices.sql", "CREATE TABLE invoices (LIKE inovices INCLUDING ALL);\n");
	strbuf_reset(&err);
	cr_assert_eq(th_twinstage(dir, &out, &err, "migrate", NULL), 2);
	ASSERT_HAS(err, "\"V1__create_invoices.sql\" was changed after it was applied");

	cr_assert_eq(th_twinstage(dir, &out, &err, "down", NULL), 0);
	th_assert_nothing_left(wd);
	strbuf_reset(&out);
	cr_assert_eq(th_twinstage(dir, &out, &err, "status", NULL), 3);
	ASSERT_HAS(out, "no environments");
	free(wd);
}

Test(rehearse, bad_sql_in_a_migration_fails_the_gate_with_file_and_line)
{
	int code;

	th_project(dir, NULL);
	th_write(dir, "migrations/V1__ok.sql", "CREATE TABLE a (id int);\n");
	th_write(dir, "migrations/V2__typo.sql", "-- oops\nCREATE TABEL b (id int);\n");
	code = th_twinstage(dir, &out, &err, "rehearse", NULL);
	cr_assert_eq(code, 1, "exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(out, "V2__typo.sql:2: syntax error at or near \"TABEL\"");
	ASSERT_HAS(out, "not run (a migration failed)");
	th_assert_nothing_left(path_join(dir, ".twinstage"));
}

Test(rehearse, lint_findings_warn_unless_the_gate_says_fail)
{
	int code;

	th_project(dir, NULL);
	th_write(dir, "migrations/V1__index.sql", "CREATE TABLE invoices (LIKE inovices);\nCREATE INDEX inovices_customer ON inovices (customer);\n");
	code = th_twinstage(dir, &out, &err, "rehearse", NULL);
	cr_assert_eq(code, 0, "a lint error the rehearsal does not confirm is a warning\n%s\n%s", out.buf, err.buf);
	ASSERT_HAS(out, "lint error [index-not-concurrent] CREATE INDEX on existing table inovices without CONCURRENTLY");
	ASSERT_HAS(out, "lock ShareLock on public.inovices held");
	ASSERT_HAS(out, "(blocks writes)");

	th_project(dir, "[gate]\nlint = fail\n");
	strbuf_reset(&out);
	code = th_twinstage(dir, &out, &err, "rehearse", NULL);
	cr_assert_eq(code, 1, "exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(out, "verdict: incompatible - V1__index.sql:2: lint index-not-concurrent");
	strbuf_reset(&out);
	cr_assert_eq(th_twinstage(dir, &out, &err, "report", "--format", "junit", NULL), 1);
	ASSERT_HAS(out, "name=\"V1__index.sql\" time=");
	ASSERT_HAS(out, "<failure message=\"V1__index.sql:2: lint index-not-concurrent");
	th_assert_nothing_left(path_join(dir, ".twinstage"));
}

Test(rehearse, failing_baseline_blames_the_scenarios)
{
	int code;

	th_write(dir, "seed.sql", "CREATE TABLE a (id int);\n");
	th_write(dir, "migrations/V1__b.sql", "CREATE TABLE b (id int);\n");
	th_write(dir, "apps/v1/01.sql", "-- @name read c\nSELECT * FROM c;\n");
	th_write(dir, "twinstage.ini", "[source]\nseed = seed.sql\n[app v1]\nscenarios = apps/v1\n"
				       "[rehearsal]\ncurrent = v1\n");
	code = th_twinstage(dir, &out, &err, "rehearse", NULL);
	cr_assert_eq(code, 2, "exit %d\n%s", code, out.buf);
	ASSERT_HAS(out, "verdict: scenarios-wrong");
	ASSERT_HAS(out, "the scenarios are wrong, not the migration");
}

/*
 * The checks of one stage share a session (a guest's new one is slow to
 * warm): each still starts as a new session would. What one version's
 * scenario left in it (a prepared statement, the sequence's currval) is
 * gone for the next, and a migration's ALTER DATABASE ... SET reaches the
 * checks after it.
 */
Test(rehearse, each_check_starts_as_a_new_session_would)
{
	char *wd = path_join(dir, ".twinstage");
	json_t *rep, *c;
	size_t i, passed_v3 = 0;
	int code;

	th_write(dir, "seed.sql", "CREATE TABLE t (id serial PRIMARY KEY, name text);\nINSERT INTO t (name) VALUES ('a');\n");
	th_write(dir, "migrations/V1__notes.sql", "CREATE SCHEMA app;\nCREATE TABLE app.notes (id int);\n");
	th_write(dir, "migrations/V2__search_path.sql", "ALTER DATABASE shop SET search_path = app, public;\n");
	th_write(dir, "apps/v1/01.sql", "PREPARE q AS SELECT name FROM t;\nEXECUTE q;\nSELECT nextval('t_id_seq');\n");
	th_write(dir, "apps/v2/01.sql", "-- @name no currval in a new session\n-- @expect error 55000\n"
					"SELECT currval('t_id_seq');\nPREPARE q AS SELECT name FROM t;\nEXECUTE q;\n");
	th_write(dir, "apps/v3/01.sql", "-- @name notes by the database's search_path\nSELECT count(*) FROM notes;\n");
	th_write(dir, "twinstage.ini", "[project]\nname = shop\n[source]\nseed = seed.sql\n"
				       "[app v1]\nscenarios = apps/v1\n[app v2]\nscenarios = apps/v2\n"
				       "[app v3]\nscenarios = apps/v3\n[rehearsal]\ncurrent = v1\nnext = v2\n"
				       "[phase 1]\nmigrations = 1\napps = v1, v2\n"
				       "[phase 2]\nmigrations = 2\napps = v2, v3\n[load]\nenabled = false\n");
	code = th_twinstage(dir, &out, &err, "rehearse", NULL);
	cr_assert_eq(code, 0, "exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(err, "check: v2 on dev after phase 1 (next): 3/3 passed");
	ASSERT_HAS(err, "check: v3 on dev after phase 2 (next): 1/1 passed");
	rep = latest_report(wd);
	json_array_foreach(json_object_get(rep, "checks"), i, c) {
		const char *app = json_string_value(json_object_get(c, "app"));

		/* v2 on both sides, after v1 on the same one: never a session v1 used as v1 left it */
		if (!strcmp(app, "v2"))
			cr_assert_eq(json_integer_value(json_object_get(c, "failed")), 0, "%s",
				     json_dumps(c, 0));
		passed_v3 += !strcmp(app, "v3") && !json_integer_value(json_object_get(c, "failed"));
	}
	cr_assert(passed_v3 >= 1, "v3 never passed:\n%s", out.buf);
	json_decref(rep);
	free(wd);
}

Test(rehearse, an_application_command_runs_against_each_side)
{
	int code;

	th_project(dir, NULL);
	/* v1's "own test suite": reads the old table through the PG* variables */
	th_write(dir, "old-tests.sh",
		 "#!/bin/sh\n"
		 "echo \"testing $PGDATABASE on port $PGPORT\"\n"
		 "exec psql -X -v ON_ERROR_STOP=1 -c 'SELECT count(*) FROM inovices'\n");
	{
		char *script = path_join(dir, "old-tests.sh");

		chmod(script, 0755);
		free(script);
	}
	{
		char *ini = th_read(dir, "twinstage.ini");
		char *p = strstr(ini, "[app v1]");
		char *fixed = xstrfmt("%.*s[app v1]\ncommand = ./old-tests.sh\n%s", (int)(p - ini), ini,
				      strstr(p, "\n\n"));

		th_write(dir, "twinstage.ini", fixed);
		free(fixed);
		free(ini);
	}
	th_write(dir, "migrations/V1__rename.sql", "ALTER TABLE inovices RENAME TO invoices;\n");
	code = th_twinstage(dir, &out, &err, "rehearse", NULL);
	cr_assert_eq(code, 1, "exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(out, "v1 on dev: ./old-tests.sh");
	ASSERT_HAS(out, "expected exit 0, got exit 1");
	ASSERT_HAS(out, "relation \"inovices\" does not exist");
	ASSERT_HAS(out, "testing tproj on port");
}

Test(rehearse, configuration_errors_exit_2_naming_file_and_line)
{
	th_write(dir, "twinstage.ini", "[project]\nname = x\n[enviroments]\nbackend = instance\n");
	cr_assert_eq(th_twinstage(dir, &out, &err, "rehearse", NULL), 2);
	ASSERT_HAS(err, "twinstage.ini:4: unknown section [enviroments]; did you mean [environments]?");

	strbuf_reset(&err);
	th_write(dir, "twinstage.ini", "[project]\nmigrations = db/migrations\n");
	cr_assert_eq(th_twinstage(dir, &out, &err, "rehearse", NULL), 2);
	ASSERT_HAS(err, "twinstage.ini:2: migrations folder");

	strbuf_reset(&err);
	cr_assert_eq(th_twinstage(dir, &out, &err, "rehearse", "-c", "nope.ini", NULL), 2);
	ASSERT_HAS(err, "could not open configuration file \"nope.ini\": No such file or directory");

	strbuf_reset(&err);
	cr_assert_eq(th_twinstage(dir, &out, &err, "rehearse", "--fromat", "json", NULL), 2);
	ASSERT_HAS(err, "unknown option \"--fromat\"");
	cr_assert(!is_dir(path_join(dir, ".twinstage/prod")), "nothing was built");
}

Test(rehearse, a_port_in_use_is_a_clear_error)
{
	struct sockaddr_in sa = { 0 };
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), code;
	char *extra;

	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert(!bind(fd, (struct sockaddr *)&sa, sizeof(sa)) && !listen(fd, 1));
	getsockname(fd, (struct sockaddr *)&sa, &sl);
	extra = xstrfmt("[environments]\nprod_port = %d\n", ntohs(sa.sin_port));
	th_project(dir, extra);
	th_write(dir, "migrations/V1__a.sql", "SELECT 1;\n");
	code = th_twinstage(dir, &out, &err, "rehearse", NULL);
	cr_assert_eq(code, 3, "exit %d\n%s", code, err.buf);
	ASSERT_HAS(err, "already in use");
	close(fd);
	free(extra);
	th_assert_nothing_left(path_join(dir, ".twinstage"));
}

Test(rehearse, unreachable_source_exits_3_and_hides_the_password)
{
	int code;

	th_write(dir, "migrations/V1__a.sql", "SELECT 1;\n");
	th_write(dir, "twinstage.ini",
		 "[source]\ndsn = postgresql://app:s3cretpw@127.0.0.1:1/prod\n");
	code = th_twinstage(dir, &out, &err, "rehearse", NULL);
	cr_assert_eq(code, 3, "exit %d\n%s", code, err.buf);
	ASSERT_HAS(err, "could not connect to the source database (");
	cr_assert(!strstr(err.buf, "s3cretpw") && !strstr(out.buf, "s3cretpw"), "password leaked:\n%s", err.buf);
	th_assert_nothing_left(path_join(dir, ".twinstage"));
}

#define tree_contains th_tree_contains
#define bg_run th_bg
#define bg_start(b, option) th_bg_start(b, dir, "rehearse", option, NULL)
#define bg_read th_bg_read
#define bg_wait_for_line th_bg_wait_for_line
#define bg_finish(b) th_bg_finish(b, &err)
#define bg_kill th_bg_kill

Test(rehearse, a_real_source_is_copied_and_its_password_never_written)
{
	struct th_cluster src;
	char *seed = th_src("scenarios/invoices/seed.sql");
	struct strbuf sql = STRBUF_INIT;
	char *extra;
	int code;

	th_cluster_start(&src, "shop");
	strbuf_read_file(&sql, seed);
	th_sql(src.conninfo, sql.buf);
	th_project(dir, NULL);
	{
		/* replace the seed with the dsn */
		char *ini = th_read(dir, "twinstage.ini");
		char *s = strstr(ini, "seed = ");

		extra = xstrfmt("%.*sdsn = postgresql://postgres:s3cretpw@127.0.0.1:%d/shop%s",
				(int)(s - ini), ini, src.env.prod.port, strchr(s, '\n'));
		th_write(dir, "twinstage.ini", extra);
		free(ini);
		free(extra);
	}
	th_write(dir, "migrations/V1__create_invoices.sql", "CREATE TABLE invoices (LIKE inovices);\n");
	{
		/* the process list, read all the while the rehearsal runs, never shows it */
		struct bg_run b;
		int listed = 0;

		bg_start(&b, "--keep");
		while (!bg_read(&b, 20)) {
			struct strbuf ps = STRBUF_INIT;

			cr_assert_eq(th_run(&ps, "ps", "-eo", "args", NULL), 0, "ps failed: the check would see nothing");
			listed |= strstr(ps.buf, "rehearse --keep") != NULL;
			cr_assert(!strstr(ps.buf, "s3cretpw"), "the password is in the process list:\n%s", ps.buf);
			strbuf_release(&ps);
		}
		cr_assert(listed, "ps never listed the rehearsal: the check would see nothing");
		code = bg_finish(&b);
	}
	cr_assert_eq(code, 0, "exit %d\n%s\n%s", code, out.buf, err.buf);
	/* the source lets its superuser replicate: the whole server is copied */
	ASSERT_HAS(err, "the production clone from pg_basebackup");
	cr_assert(!strstr(err.buf, "s3cretpw") && !strstr(out.buf, "s3cretpw"));
	{
		char *wd = path_join(dir, ".twinstage");

		cr_assert(!tree_contains(wd, "s3cretpw"), "the password reached a file under the workdir");
		free(wd);
	}
	/* the source is only read: no tracking table, no new table there */
	{
		char *n = th_value(src.conninfo, "SELECT count(*) FROM pg_class WHERE relname IN ('invoices', 'twinstage_schema_history')");

		cr_assert_str_eq(n, "0");
		free(n);
	}
	cr_assert_eq(th_twinstage(dir, &out, &err, "down", NULL), 0);
	th_cluster_stop(&src);
	strbuf_release(&sql);
	free(seed);
}

/*
 * The rehearsal of a project in which every stage has something to do: a
 * seed of 400,000 rows (the double dump test takes a while), a migration
 * with a down part, a version whose scenarios read the table.
 */
static void stages_project(const char *seed_tail)
{
	char *seed = xstrfmt("CREATE TABLE a (id int PRIMARY KEY, v text);\n"
			     "INSERT INTO a SELECT i, md5(i::text) FROM generate_series(1, 400000) i;\n%s",
			     seed_tail ? seed_tail : "");

	th_write(dir, "seed.sql", seed);
	th_write(dir, "migrations/1_add_note.up.sql", "ALTER TABLE a ADD COLUMN note text;\n");
	th_write(dir, "migrations/1_add_note.down.sql", "ALTER TABLE a DROP COLUMN note;\n");
	th_write(dir, "apps/v1/01_a.sql", "-- @expect rows 1\nSELECT id, v FROM a WHERE id = 7;\n");
	th_write(dir, "twinstage.ini", "[project]\nname = stages\n[source]\nseed = seed.sql\n"
		 "[app v1]\nscenarios = apps/v1\n[rehearsal]\ncurrent = v1\n");
	free(seed);
}

/*
 * Starts a rehearsal, lets it reach `line` (a stage's progress line) and,
 * when `marker` is set, until that file exists under the workdir (the
 * stage's own file, such as the double dump test's), kills it with
 * SIGKILL, and checks that `down` removes everything. Returns how many
 * servers the killed run had left.
 */
static int kill_at(const char *line, const char *marker)
{
	char *wd = path_join(dir, ".twinstage"), *path = marker ? path_join(wd, marker) : NULL;
	struct bg_run b;
	int left;

	bg_start(&b, NULL);
	bg_wait_for_line(&b, line);
	for (double t0 = now_ms(); path && !is_file(path) && !is_dir(path) && now_ms() - t0 < 60000;)
		usleep(2000);
	cr_assert(!path || is_file(path) || is_dir(path), "%s never appeared:\n%s", marker, b.said.buf);
	/* while it runs, the workdir is taken */
	cr_assert_eq(th_twinstage(dir, &out, &err, "rehearse", NULL), 2);
	ASSERT_HAS(err, "is in use by another twinstage run");
	bg_kill(&b);
	left = th_postgres_procs(wd);
	cr_assert_eq(th_twinstage(dir, &out, &err, "down", NULL), 0, "%s", err.buf);
	th_assert_nothing_left(wd);
	free(path);
	free(wd);
	return left;
}

Test(rehearse, down_cleans_up_after_sigkill_during_initdb)
{
	stages_project("SELECT pg_sleep(30);\n");
	kill_at("twinstage: provision:", "prod/data/PG_VERSION");
}

Test(rehearse, down_cleans_up_after_sigkill_with_servers_running)
{
	stages_project("SELECT pg_sleep(30);\n");
	cr_assert(kill_at("twinstage: clone: seeding", "logs/seed.log") > 0,
		  "the killed run should have left a server");
}

Test(rehearse, down_cleans_up_after_sigkill_in_the_double_dump_test_of_production)
{
	stages_project(NULL);
	kill_at("twinstage: ddt: double dump test of the production clone", "ddt-prod");
}

Test(rehearse, down_cleans_up_after_sigkill_in_the_baseline)
{
	stages_project(NULL);
	kill_at("twinstage: baseline:", NULL);
}

Test(rehearse, down_cleans_up_after_sigkill_while_migrating)
{
	stages_project(NULL);
	kill_at("twinstage: migrate:", NULL);
}

Test(rehearse, down_cleans_up_after_sigkill_in_the_double_dump_test_of_the_dev_side)
{
	stages_project(NULL);
	kill_at("twinstage: ddt: double dump test of the dev side", "ddt-dev");
}

Test(rehearse, down_cleans_up_after_sigkill_in_the_checks)
{
	stages_project(NULL);
	kill_at("twinstage: check:", NULL);
}

Test(rehearse, down_cleans_up_after_sigkill_in_the_rollback)
{
	stages_project(NULL);
	kill_at("twinstage: rollback:", NULL);
}

Test(rehearse, down_cleans_up_after_sigkill_once_the_report_is_written)
{
	stages_project(NULL);
	kill_at("twinstage: reports in ", NULL);
}

Test(rehearse, down_cleans_up_after_sigkill_while_the_source_is_dumped)
{
	struct th_cluster src;
	char *ini;

	th_cluster_start(&src, "shop");
	th_sql(src.conninfo, "CREATE TABLE a (id int PRIMARY KEY, v text);"
			     "INSERT INTO a SELECT i, md5(i::text) FROM generate_series(1, 400000) i");
	stages_project(NULL);
	ini = xstrfmt("[project]\nname = shop\n[source]\ndsn = postgresql://postgres@127.0.0.1:%d/shop\n"
		      "[environments]\nclone = logical\n[app v1]\nscenarios = apps/v1\n[rehearsal]\ncurrent = v1\n",
		      src.env.prod.port);
	th_write(dir, "twinstage.ini", ini);
	/* the dump (prod.dump) lives until the production clone is restored from it */
	kill_at("twinstage: clone: copying the source", "prod.dump");
	th_cluster_stop(&src);
	free(ini);
}

/*
 * A project in a folder the server user cannot enter (mode 0700: /root, a
 * `mktemp -d`, many CI containers), with a space in its path, run as root:
 * each example with another clone method, its verdict as usual, nothing
 * left (the data lived under /var/tmp/twinstage-*).
 */
Test(rehearse, the_bundled_examples_run_from_a_folder_the_server_user_cannot_enter, .timeout = 600)
{
	static const struct { const char *example, *clone; int code; } runs[] = {
		{ "invoices", "cow", 0 }, { "rename-breaks", "physical", 1 }, { "registry", "logical", 0 },
	};
	char tmpl[] = "/tmp/twinstage private XXXXXX";
	char *priv, *src_scenarios = th_src("scenarios"), *src_envs = th_src("envs");

	if (geteuid() != 0)
		cr_skip_test("only root runs the servers as another user");
	priv = xstrdup(mkdtemp(tmpl));
	cr_assert_eq(chmod(priv, 0700), 0);
	cr_assert_eq(th_run(NULL, "cp", "-a", src_scenarios, src_envs, priv, NULL), 0);
	for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
		char *ini = xstrfmt("%s/scenarios/%s/twinstage.ini", priv, runs[i].example);
		char *wd = xstrfmt("%s/scenarios/%s/.twinstage", priv, runs[i].example);
		char *env = xstrfmt("[environments]\nclone = %s\n", runs[i].clone);
		int code;

		th_write(priv, "clone.ini", env);
		strbuf_reset(&out);
		strbuf_reset(&err);
		code = th_twinstage(priv, &out, &err, "rehearse", "-c", ini, "--env", "clone.ini", NULL);
		cr_assert_eq(code, runs[i].code, "%s (clone = %s): exit %d\n%s\n%s", runs[i].example,
			     runs[i].clone, code, out.buf, err.buf);
		cr_assert(!strstr(err.buf, "Permission denied"), "%s", err.buf);
		th_assert_nothing_left(wd);
		free(ini);
		free(wd);
		free(env);
	}
	th_rmtree(priv);
	free(priv);
	free(src_scenarios);
	free(src_envs);
}

Test(rehearse, help_version_and_unknown_commands)
{
	cr_assert_eq(th_twinstage(dir, &out, &err, "--help", NULL), 0);
	ASSERT_HAS(out, "rehearse");
	ASSERT_HAS(out, "exit codes: 0 compatible, 1 the gate failed");
	strbuf_reset(&out);
	cr_assert_eq(th_twinstage(dir, &out, &err, "rehearse", "--help", NULL), 0);
	ASSERT_HAS(out, "usage: twinstage rehearse");
	strbuf_reset(&out);
	cr_assert_eq(th_twinstage(dir, &out, &err, "--version", NULL), 0);
	ASSERT_HAS(out, "twinstage 0.");
	cr_assert_eq(th_twinstage(dir, &out, &err, "rehersal", NULL), 2);
	ASSERT_HAS(err, "did you mean \"rehearse\"?");
	cr_assert_eq(th_twinstage(dir, &out, &err, "init", NULL), 0);
	cr_assert(is_file(path_join(dir, "twinstage.ini")));
	strbuf_reset(&err);
	cr_assert_eq(th_twinstage(dir, &out, &err, "init", NULL), 2);
	ASSERT_HAS(err, "already exists");
}
