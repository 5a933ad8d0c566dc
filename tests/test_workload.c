/*
 * test_workload.c: `twinstage capture` from a real source, and the
 * captured workload rehearsed with no hand-written scenario at all.
 *
 * The source is a cluster of its own with pg_stat_statements preloaded and
 * logging each statement as stderr, csvlog and jsonlog at once; the live
 * version's traffic comes from real clients under the application's role
 * (pgbench with a script, in -M extended and -M prepared, and psql's
 * simple protocol), its search_path set on the role as a real one is.
 */
#include "core/strbuf.h"
#include "core/util.h"
#include "core/wrapper.h"
#include "migrate/query.h"
#include "helpers.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char *dir, *proj;
static struct strbuf out = STRBUF_INIT, err = STRBUF_INIT;
static struct th_cluster src;
static int src_up;

#define ASSERT_HAS TH_ASSERT_HAS
#define ASSERT_LACKS(sb, needle) cr_assert(!strstr((sb).buf, needle), "output has \"%s\":\n%s", needle, (sb).buf)

static void setup(void)
{
	dir = th_tmpdir();
	proj = th_user_folder(dir);
	strbuf_reset(&out);
	strbuf_reset(&err);
	src_up = 0;
}

static void teardown(void)
{
	th_twinstage(proj, NULL, NULL, "down", "-q", NULL);
	if (src_up)
		th_cluster_stop(&src);
	th_rmtree(dir);
	free(proj);
	free(dir);
}

TestSuite(workload, .init = setup, .fini = teardown, .timeout = 300);

static const char schema_sql[] =
	"CREATE ROLE app LOGIN;"
	"CREATE SCHEMA shop;"
	"ALTER ROLE app SET search_path = shop, public;"
	"CREATE TABLE shop.customers (id serial PRIMARY KEY, name text NOT NULL);"
	"CREATE TABLE shop.orders (id serial PRIMARY KEY, customer_id int NOT NULL REFERENCES shop.customers,"
	"  amount numeric(10,2) NOT NULL, note text, created timestamptz NOT NULL DEFAULT now());"
	"INSERT INTO shop.customers (name) SELECT 'customer ' || g FROM generate_series(1, 40) g;"
	"INSERT INTO shop.orders (customer_id, amount, note) SELECT 1 + g % 40, g * 1.25, 'n' || g"
	"  FROM generate_series(1, 400) g;"
	"CREATE VIEW shop.big_orders AS SELECT id, amount FROM shop.orders WHERE amount > 100;"
	"GRANT USAGE ON SCHEMA shop TO app;"
	"GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA shop TO app;"
	"GRANT USAGE ON ALL SEQUENCES IN SCHEMA shop TO app;";

/* What v1 sends: unqualified names (the role's search_path finds them), $n from the driver. */
static const char traffic[] =
	"\\set cid random(1, 40)\n"
	"SELECT o.id, amount, name FROM orders o JOIN customers c ON c.id = o.customer_id WHERE c.id = :cid ORDER BY o.id;\n"
	"SELECT count(*) FROM orders WHERE customer_id = :cid;\n"
	"UPDATE orders SET note = 'seen' WHERE id = :cid;\n"
	"SELECT now(), random();\n"
	"SELECT count(*) FROM big_orders;\n";

static char *data_dir(void)
{
	return path_join(src.env.prod.dir, "data");
}

static char *log_path(const char *name)
{
	char *d = data_dir(), *p = xstrfmt("%s/log/%s", d, name);

	free(d);
	return p;
}

/* Waits until the file holds needle: the logging collector writes behind the server. */
static void wait_for_text(const char *path, const char *needle)
{
	for (int i = 0; i < 1000; i++) {
		struct strbuf sb = STRBUF_INIT;
		int found = !strbuf_read_file(&sb, path) && strstr(sb.buf, needle);

		strbuf_release(&sb);
		if (found)
			return;
		usleep(10000);
	}
	cr_assert_fail("%s never held \"%s\"", path, needle);
}

/*
 * The source: pg_stat_statements (pgss: preloaded and created), every
 * statement logged in the three formats, the shop's schema, and v1's
 * traffic, ended by a statement each log is waited for.
 */
static void source_start(int pgss)
{
	char *bench = path_join(dir, "v1.pgbench"), *pgbench, *psql, *ci;
	struct ts_side *prod;

	th_cluster_start(&src, "shop");
	src_up = 1;
	if (pgss)
		th_sql(src.conninfo, "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'");
	th_sql(src.conninfo, "ALTER SYSTEM SET logging_collector = on");
	th_sql(src.conninfo, "ALTER SYSTEM SET log_destination = 'stderr,csvlog,jsonlog'");
	th_sql(src.conninfo, "ALTER SYSTEM SET log_directory = 'log'");
	th_sql(src.conninfo, "ALTER SYSTEM SET log_filename = 'pg'");
	th_sql(src.conninfo, "ALTER SYSTEM SET log_statement = 'all'");
	th_sql(src.conninfo, "ALTER SYSTEM SET log_line_prefix = '%m [%p] %q%u@%d '");
	prod = &src.env.prod;
	cr_assert(!src.env.ops->stop(&src.env, prod) && !src.env.ops->start(&src.env, prod), "restart the source");
	if (pgss)
		th_sql(src.conninfo, "CREATE EXTENSION pg_stat_statements");
	th_sql(src.conninfo, schema_sql);
	th_write(dir, "v1.pgbench", traffic);
	pgbench = path_join(src.env.pg_bin, "pgbench");
	psql = path_join(src.env.pg_bin, "psql");
	ci = xstrfmt("host=127.0.0.1 port=%d dbname=shop user=app application_name=shop-web", prod->port);
	cr_assert_eq(th_run(NULL, pgbench, "-n", "-M", "extended", "-t", "15", "-f", bench, ci, NULL), 0);
	cr_assert_eq(th_run(NULL, pgbench, "-n", "-M", "prepared", "-t", "5", "-f", bench, ci, NULL), 0);
	cr_assert_eq(th_run(NULL, psql, "-X", "-q", "-d", ci, "-c",
			    "SELECT name FROM customers WHERE id = 7; INSERT INTO orders (customer_id, amount) VALUES (3, 12.5)",
			    "-c", "SELECT 'v1 traffic done'", NULL), 0);
	{
		const char *files[] = { "pg", "pg.csv", "pg.json" };

		for (int i = 0; i < 3; i++) {
			char *p = log_path(files[i]);

			wait_for_text(p, "v1 traffic done");
			free(p);
		}
	}
	free(ci);
	free(psql);
	free(pgbench);
	free(bench);
}

/* A project with no scenario: v1 is its captured workload, run as role app. */
static void project(const char *migration, const char *extra)
{
	char *ini = xstrfmt("[project]\nname = shop\nmigrations = migrations\n\n"
			    "[source]\ndsn = host=127.0.0.1 port=%d dbname=shop user=postgres password=hunter2\n\n"
			    "[app v1]\nrole = app\n\n[rehearsal]\ncurrent = v1\n%s",
			    src.env.prod.port, extra ? extra : "");

	th_write(proj, "twinstage.ini", ini);
	th_write(proj, "migrations/V1__change.sql", migration);
	free(ini);
}

static void change(const char *migration)
{
	th_write(proj, "migrations/V1__change.sql", migration);
}

static int capture6(const char *a1, const char *a2, const char *a3, const char *a4, const char *a5,
		    const char *a6)
{
	strbuf_reset(&out);
	strbuf_reset(&err);
	return th_twinstage(proj, &out, &err, "capture", "--app", "v1", a1, a2, a3, a4, a5, a6, NULL);
}

static int capture(const char *a1, const char *a2, const char *a3, const char *a4)
{
	return capture6(a1, a2, a3, a4, NULL, NULL);
}

static int rehearse(void)
{
	strbuf_reset(&out);
	strbuf_reset(&err);
	return th_twinstage(proj, &out, &err, "rehearse", "--format", "text", NULL);
}

static char *captured(void)
{
	return th_read(proj, "workload/v1/captured.sql");
}

/* The file without its header's line that says when it was taken. */
static char *without_date(const char *text)
{
	const char *on = strstr(text, " on 20");
	const char *eol = on ? strstr(on, ": ") : NULL;

	cr_assert(eol, "no date in the header:\n%s", text);
	return xstrfmt("%.*s%s", (int)(on - text), text, eol);
}

static json_t *dev_workload(void)
{
	char *wd = path_join(proj, ".twinstage");
	json_t *rep = th_latest_report(wd), *c, *w = NULL;
	size_t i;

	json_array_foreach(json_object_get(rep, "checks"), i, c)
		if (!strcmp(json_string_value(json_object_get(c, "side")), "dev") &&
		    !strcmp(json_string_value(json_object_get(c, "role")), "backward"))
			w = json_incref(json_object_get(c, "workload"));
	json_decref(rep);
	free(wd);
	cr_assert(w, "the dev side's check has no workload");
	return w;
}

Test(workload, pg_stat_statements_then_a_renamed_column_fails_with_its_calls)
{
	char *file, *again, *a, *b;
	json_t *w, *f;

	source_start(1);
	project("ALTER TABLE shop.orders RENAME COLUMN note TO remark;\n", NULL);
	cr_assert_eq(capture(NULL, NULL, NULL, NULL), 0, "%s", err.buf);
	ASSERT_HAS(err, "written to");
	ASSERT_HAS(err, "utility statements");
	ASSERT_LACKS(err, "hunter2");
	file = captured();
	cr_assert(strstr(file, "-- @role app\n") && strstr(file, "-- @expect prepares\n") && strstr(file, "-- @calls "),
		  "%s", file);
	cr_assert(strstr(file, "UPDATE orders SET note = $2 WHERE id = $1;"), "pg_stat_statements' text:\n%s", file);
	cr_assert(!strstr(file, "hunter2") && !strstr(file, "CREATE TABLE") && !strstr(file, "pg_stat_statements s"),
		  "a password, a utility statement or the capture's own query:\n%s", file);
	/* taken again, the same file but for its date: statements in fingerprint order */
	cr_assert_eq(capture("-q", NULL, NULL, NULL), 0, "%s", err.buf);
	again = captured();
	a = without_date(file);
	b = without_date(again);
	cr_assert_str_eq(a, b);

	cr_assert_eq(rehearse(), 1, "%s\n%s", out.buf, err.buf);
	ASSERT_HAS(out, "1 of ");
	ASSERT_HAS(out, "captured statements of v1 fails on the dev side (");
	ASSERT_HAS(out, "% of production's calls)");
	ASSERT_HAS(out, "column \"note\" of relation \"orders\" does not exist");
	/* the load replayed production's mix while it migrated */
	ASSERT_HAS(out, "error during the migration: v1 captured.sql:");
	ASSERT_LACKS(out, "hunter2");
	w = dev_workload();
	cr_assert_eq(json_integer_value(json_object_get(w, "failed")), 1);
	f = json_array_get(json_object_get(w, "failing"), 0);
	cr_assert(strstr(json_string_value(json_object_get(f, "name")), "UPDATE orders SET note"));
	cr_assert_geq(json_integer_value(json_object_get(f, "calls")), 20, "the calls pg_stat_statements counted");
	json_decref(w);
	free(a);
	free(b);
	free(again);
	free(file);
}

Test(workload, csvlog_jsonlog_and_stderr_give_one_workload_and_an_ambiguous_column_fails)
{
	char *csv = NULL, *json = NULL, *text = NULL, *a, *b, *c, *log;

	source_start(0);
	project("ALTER TABLE shop.orders ADD COLUMN name text;\n", NULL);
	/* the stderr log's prefix names no application: the role tells v1 from the test's own sessions */
	log = log_path("pg.json");
	cr_assert_eq(capture6("--log", log, "-o", "from-json", "--user", "app"), 0, "%s", err.buf);
	free(log);
	log = log_path("pg");
	cr_assert_eq(capture6("--log", log, "-o", "from-stderr", "--user", "app"), 0, "%s", err.buf);
	free(log);
	log = log_path("pg.csv");
	cr_assert_eq(capture6("--log", log, "--user", "app", NULL, NULL), 0, "%s", err.buf);
	free(log);
	ASSERT_HAS(err, "of other roles (--user)");
	csv = captured();
	json = th_read(proj, "from-json/captured.sql");
	text = th_read(proj, "from-stderr/captured.sql");
	/* the extended protocol's parameters, and psql's literals taken out as parameters */
	cr_assert(strstr(csv, "-- @params '") && strstr(csv, "SELECT name FROM customers WHERE id = $1;\n") &&
		  strstr(csv, "-- @params 3, 12.5\n"), "%s", csv);
	a = strstr(csv, "\n\n");
	b = strstr(json, "\n\n");
	c = strstr(text, "\n\n");
	cr_assert(a && b && c);
	cr_assert_str_eq(b, a, "jsonlog and csvlog differ");
	cr_assert_str_eq(c, a, "stderr and csvlog differ");

	cr_assert_eq(rehearse(), 1, "%s\n%s", out.buf, err.buf);
	ASSERT_HAS(out, "column reference \"name\" is ambiguous");
	ASSERT_HAS(out, "production clone: ");
	free(csv);
	free(json);
	free(text);
}

Test(workload, a_type_change_or_a_new_view_changes_rows_for_same_but_prepares_passes)
{
	char *log = NULL, *file;

	source_start(0);
	/* as a real migration must: the view that reads the column goes and comes back */
	project("DROP VIEW shop.big_orders;\n"
		"ALTER TABLE shop.orders ALTER COLUMN amount TYPE numeric(10,1);\n"
		"CREATE VIEW shop.big_orders AS SELECT id, amount FROM shop.orders WHERE amount > 100;\n"
		"GRANT SELECT ON shop.big_orders TO app;\n", NULL);
	log = log_path("pg.csv");
	cr_assert_eq(capture("--log", log, NULL, NULL), 0, "%s", err.buf);
	cr_assert_eq(rehearse(), 1, "%s\n%s", out.buf, err.buf);
	ASSERT_HAS(out, "first differing row: production clone (");
	ASSERT_HAS(out, ", dev side (");

	/* no production value in the file, and what still prepares passes */
	cr_assert_eq(capture("--log", log, "--no-params", NULL), 0, "%s", err.buf);
	file = captured();
	cr_assert(!strstr(file, "@params") && !strstr(file, "'seen'") && !strstr(file, "12.5") &&
		  strstr(file, "UPDATE orders SET note = $2 WHERE id = $1;"), "%s", file);
	cr_assert_eq(rehearse(), 0, "%s\n%s", out.buf, err.buf);
	ASSERT_HAS(out, "0 of ");

	/* a view whose definition changed: the same query, other rows */
	change("CREATE OR REPLACE VIEW shop.big_orders AS SELECT id, amount FROM shop.orders WHERE amount > 200;\n");
	cr_assert_eq(capture("--log", log, NULL, NULL), 0, "%s", err.buf);
	cr_assert_eq(rehearse(), 1, "%s\n%s", out.buf, err.buf);
	ASSERT_HAS(out, "SELECT count(*) FROM big_orders");
	ASSERT_HAS(out, "first differing row: production clone (");
	free(file);
	free(log);
}

Test(workload, grants_and_the_roles_search_path_are_checked_as_production_has_them)
{
	char *log;

	source_start(0);
	/*
	 * the next version reads a table the migration makes without a grant;
	 * both sides made by pg_dump, which carries owners and grants only
	 * with the source's roles
	 */
	project("CREATE TABLE shop.audit (id int, at timestamptz DEFAULT now());\n",
		"next = v2\n\n[app v2]\nrole = app\nscenarios = apps/v2\n\n[environments]\nclone = logical\n");
	th_write(proj, "apps/v2/01_audit.sql", "-- @name the audit v2 reads\nSELECT count(*) FROM audit;\n");
	log = log_path("pg.csv");
	cr_assert_eq(capture("--log", log, NULL, NULL), 0, "%s", err.buf);
	cr_assert_eq(rehearse(), 1, "%s\n%s", out.buf, err.buf);
	ASSERT_HAS(out, "production clone from pg_dump");
	ASSERT_HAS(out, "permission denied for table audit");
	change("CREATE TABLE shop.audit (id int, at timestamptz DEFAULT now());\nGRANT SELECT ON shop.audit TO app;\n");
	cr_assert_eq(rehearse(), 0, "%s\n%s", out.buf, err.buf);

	/* v1 names its tables unqualified: on the dev side its role no longer finds them */
	change("CREATE TABLE shop.audit (id int);\nGRANT SELECT ON shop.audit TO app;\nALTER ROLE app SET search_path = public;\n");
	cr_assert_eq(rehearse(), 1, "%s\n%s", out.buf, err.buf);
	ASSERT_HAS(out, "relation \"orders\" does not exist");
	free(log);
}

Test(workload, an_expand_migration_passes_and_now_is_no_false_failure)
{
	char *log, *wd, *rep_text;
	json_t *rep;

	source_start(0);
	project("ALTER TABLE shop.orders ADD COLUMN discount numeric(10,2);\n", NULL);
	th_write(proj, "migrations/V2__index.sql", "CREATE INDEX CONCURRENTLY orders_created_idx ON shop.orders (created);\n");
	log = log_path("pg.csv");
	cr_assert_eq(capture("--log", log, NULL, NULL), 0, "%s", err.buf);
	cr_assert_eq(rehearse(), 0, "%s\n%s", out.buf, err.buf);
	ASSERT_HAS(out, "0 of ");
	wd = path_join(proj, ".twinstage");
	rep = th_latest_report(wd);
	rep_text = json_dumps(rep, 0);
	cr_assert(strstr(rep_text, "its rows differ between two runs on the production clone, so only its shape is compared"),
		  "now() and random() are compared by shape");
	free(rep_text);
	json_decref(rep);
	free(wd);
	free(log);
}

Test(workload, bad_logs_and_sources_are_refused_or_counted)
{
	char *log, *bad, *copy;
	struct strbuf sb = STRBUF_INIT;

	source_start(0);
	project("SELECT 1;\n", NULL);
	/* a file that is not a server log */
	th_write(dir, "notes.txt", "these are my notes\nnot a log\n");
	bad = path_join(dir, "notes.txt");
	cr_assert_eq(capture("--log", bad, NULL, NULL), 2);
	ASSERT_HAS(err, "notes.txt: not a PostgreSQL server log");
	cr_assert(!is_dir(path_join(proj, "workload")), "nothing written");
	/* lines of a log that cannot be read are counted and named, not fatal */
	log = log_path("pg.csv");
	cr_assert(!strbuf_read_file(&sb, log));
	strbuf_addstr(&sb, "this line is not csvlog\n\"an unterminated,\n");
	copy = path_join(dir, "copy.csv");
	write_file(copy, sb.buf, sb.len);
	cr_assert_eq(capture("--log", copy, NULL, NULL), 0, "%s", err.buf);
	ASSERT_HAS(err, "unreadable log lines: 2 (");
	ASSERT_HAS(err, "copy.csv:");
	/* no --app, an app that is not there, a source without pg_stat_statements */
	cr_assert_eq(th_twinstage(proj, &out, &err, "capture", NULL), 2);
	cr_assert_eq(capture("--since", "yesterday", NULL, NULL), 2);
	ASSERT_HAS(err, "--since \"yesterday\"");
	strbuf_reset(&err);
	cr_assert_eq(th_twinstage(proj, &out, &err, "capture", "--app", "v9", NULL), 2);
	ASSERT_HAS(err, "no [app v9]");
	cr_assert_eq(capture(NULL, NULL, NULL, NULL), 3, "%s", err.buf);
	ASSERT_HAS(err, "has no pg_stat_statements extension");
	ASSERT_HAS(err, "shared_preload_libraries");
	ASSERT_LACKS(err, "hunter2");
	strbuf_release(&sb);
	free(copy);
	free(bad);
	free(log);
}

/* Written by hand in the captured format, on the bundled example's seed, which has no such role. */
Test(workload, a_role_the_clone_lacks_is_named_and_its_statements_run_as_the_superuser)
{
	char *seed = th_src("scenarios/invoices/seed.sql");
	char *ini = xstrfmt("[project]\nname = roles\nmigrations = migrations\n\n[source]\nseed = %s\n\n"
			    "[app v1]\nworkload = workload/v1\n\n[rehearsal]\ncurrent = v1\n", seed);

	th_write(proj, "twinstage.ini", ini);
	th_write(proj, "migrations/V1__note.sql", "ALTER TABLE inovices ADD COLUMN note text;\n");
	th_write(proj, "workload/v1/captured.sql",
		 "-- @role ghost\n-- @calls 7\n-- @expect same\n-- @params 'acme'\n"
		 "SELECT count(*) FROM inovices WHERE customer = $1;\n"
		 "-- @role ghost\n-- @calls 3\n-- @expect prepares\n"
		 "SELECT amount FROM inovices WHERE id = $1;\n");
	cr_assert_eq(rehearse(), 0, "%s\n%s", out.buf, err.buf);
	ASSERT_HAS(out, "role ghost not on the prod side: 2 statements ran as the superuser instead (captured.sql:5");
	ASSERT_HAS(out, "0 of 2 captured statements of v1 fail on the dev side (0.0 % of production's calls)");
	free(ini);
	free(seed);
}

Test(workload, annotations_are_checked_with_file_and_line)
{
	struct {
		const char *text, *says;
	} bad[] = {
		{ "-- @params 1\nSELECT $1, $2;\n", "w.sql:2: @params \"1\" has 1 value; the statement takes 2" },
		{ "-- @expect prepares\nVACUUM;\n", "w.sql:2: @expect prepares needs a query" },
		{ "-- @calls many\nSELECT 1;\n", "w.sql:1: @calls \"many\" is not a count" },
		{ "-- @params now()\nSELECT $1;\n", "w.sql:1: @params \"now()\": value 1 is not a constant" },
		{ "-- @expect same\nSELECT $1;\n", "w.sql:2: @expect same on a statement with $1 needs @params" },
		{ "-- @role\nSELECT 1;\n", "w.sql:1: @role needs a role name" },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		th_write(proj, "twinstage.ini", "[project]\nname = a\n\n[app v1]\nscenarios = apps\n\n[rehearsal]\ncurrent = v1\n");
		th_write(proj, "migrations/V1__a.sql", "SELECT 1;\n");
		th_write(proj, "apps/w.sql", bad[i].text);
		strbuf_reset(&out);
		strbuf_reset(&err);
		cr_assert_eq(th_twinstage(proj, &out, &err, "rehearse", NULL), 2, "%s", bad[i].text);
		ASSERT_HAS(err, bad[i].says);
	}
}

Test(workload, a_literal_statement_gives_its_constants_as_parameters_in_their_order)
{
	struct {
		const char *sql, *normalized, *values;
	} cases[] = {
		{ "SELECT * FROM t WHERE a = -5 AND b = 'it''s' AND c IN (1, 2.5)",
		  "SELECT * FROM t WHERE a = $1 AND b = $2 AND c IN ($3, $4)", "-5|'it''s'|1|2.5" },
		/* libpg_query numbers OFFSET before LIMIT: the values follow the numbers, not the text */
		{ "SELECT a FROM t LIMIT 10 OFFSET 2", "SELECT a FROM t LIMIT $2 OFFSET $1", "2|10" },
		{ "SELECT '7'::int, E'a\\nb' FROM t WHERE x = $1 AND y = 'k'",
		  "SELECT $2::int, $3 FROM t WHERE x = $1 AND y = $4", "'7'|E'a\\nb'|'k'" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		struct strvec v = STRVEC_INIT;
		struct strbuf got = STRBUF_INIT;
		char *n = NULL;

		cr_assert_eq(ts_query_normalize(cases[i].sql, &n, &v), 0, "%s", cases[i].sql);
		cr_assert_str_eq(n, cases[i].normalized);
		for (size_t k = 0; k < v.nr; k++)
			strbuf_addf(&got, "%s%s", k ? "|" : "", v.v[k]);
		cr_assert_str_eq(got.buf, cases[i].values, "%s", cases[i].sql);
		strbuf_release(&got);
		strvec_clear(&v);
		free(n);
	}
	{
		struct strvec v = STRVEC_INIT;

		cr_assert_eq(ts_query_log_params("$1 = '42', $2 = NULL, $3 = 'a, $4 = b'", &v), 0);
		cr_assert_eq(v.nr, 3);
		cr_assert_str_eq(v.v[2], "'a, $4 = b'", "a value is one token of the scanner, commas and all");
		strvec_clear(&v);
	}
}
