/* test_migrate.c: discovery and order for each format, and applying for real. */
#include "core/error.h"
#include "core/util.h"
#include "migrate/migrate.h"
#include "migrate/sql.h"
#include "migrate/tracking.h"
#include "pg/pg.h"
#include "report/report.h"
#include "helpers.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

static char *dir;

static void setup(void)
{
	dir = th_tmpdir();
}

static void teardown(void)
{
	th_rmtree(dir);
	free(dir);
}

TestSuite(migrate, .init = setup, .fini = teardown);

static void discover(struct ts_migrations *set)
{
	cr_assert_eq(ts_migrations_discover(dir, set), 0, "%s", ts_error_message());
}

Test(migrate, orders_flyway_versions_numerically)
{
	struct ts_migrations set;

	th_write(dir, "V10__ten.sql", "SELECT 10;");
	th_write(dir, "V9__nine.sql", "SELECT 9;");
	th_write(dir, "V1.10__one_ten.sql", "SELECT 1;");
	th_write(dir, "V1.9__one_nine.sql", "SELECT 1;");
	th_write(dir, "R__views.sql", "SELECT 0;");
	th_write(dir, "U9__nine.sql", "SELECT -9;");
	th_write(dir, "README.md", "not a migration");
	discover(&set);
	cr_assert_eq(set.format, TS_FMT_FLYWAY);
	cr_assert_eq(set.n, 5);
	cr_assert_str_eq(set.v[0].file, "V1.9__one_nine.sql");
	cr_assert_str_eq(set.v[1].file, "V1.10__one_ten.sql");
	cr_assert_str_eq(set.v[2].file, "V9__nine.sql");
	cr_assert_str_eq(set.v[2].down, "SELECT -9;", "the U file is the down part of V9");
	cr_assert_str_eq(set.v[3].file, "V10__ten.sql");
	cr_assert_str_eq(set.v[4].file, "R__views.sql", "repeatables come after versioned ones");
	cr_assert_str_eq(set.v[0].description, "one nine");
	ts_migrations_free(&set);
}

Test(migrate, pairs_golang_migrate_up_and_down)
{
	struct ts_migrations set;

	th_write(dir, "2_b.up.sql", "SELECT 2;");
	th_write(dir, "2_b.down.sql", "SELECT -2;");
	th_write(dir, "10_c.up.sql", "SELECT 10;");
	th_write(dir, "1_a.up.sql", "SELECT 1;");
	discover(&set);
	cr_assert_eq(set.format, TS_FMT_GOLANG);
	cr_assert_eq(set.n, 3);
	cr_assert_str_eq(set.v[0].version, "1");
	cr_assert_str_eq(set.v[1].file, "2_b.up.sql");
	cr_assert_str_eq(set.v[1].down, "SELECT -2;");
	cr_assert_str_eq(set.v[2].version, "10");
	ts_migrations_free(&set);
}

Test(migrate, splits_dbmate_sections)
{
	struct ts_migrations set;

	th_write(dir, "20240101120000_create.sql",
		 "-- migrate:up\nCREATE TABLE a (id int);\n\n-- migrate:down\nDROP TABLE a;\n");
	th_write(dir, "20240202120000_index.sql",
		 "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY i ON a (id);\n"
		 "-- migrate:down\nDROP INDEX i;\n");
	discover(&set);
	cr_assert_eq(set.format, TS_FMT_DBMATE);
	cr_assert_eq(set.n, 2);
	cr_assert_str_eq(set.v[0].up, "CREATE TABLE a (id int);\n\n");
	cr_assert_eq(set.v[0].up_line, 2);
	cr_assert_str_eq(set.v[0].down, "DROP TABLE a;\n");
	cr_assert_eq(set.v[0].down_line, 5);
	cr_assert_eq(set.v[1].no_transaction, 1);
	cr_assert_eq(set.v[0].no_transaction, 0);
	ts_migrations_free(&set);
}

Test(migrate, reads_plain_numbered_files)
{
	struct ts_migrations set;

	th_write(dir, "010-third.sql", "SELECT 3;");
	th_write(dir, "2_second.sql", "SELECT 2;");
	th_write(dir, "1.sql", "SELECT 1;");
	discover(&set);
	cr_assert_eq(set.format, TS_FMT_PLAIN);
	cr_assert_str_eq(set.v[0].file, "1.sql");
	cr_assert_str_eq(set.v[1].file, "2_second.sql");
	cr_assert_str_eq(set.v[2].file, "010-third.sql");
	ts_migrations_free(&set);
}

Test(migrate, refuses_mixed_formats_unknown_names_and_duplicates)
{
	struct ts_migrations set;

	th_write(dir, "V1__a.sql", "SELECT 1;");
	th_write(dir, "2_b.up.sql", "SELECT 2;");
	cr_assert_eq(ts_migrations_discover(dir, &set), -1);
	cr_assert(strstr(ts_error_message(), "mixes formats"), "%s", ts_error_message());
	th_rmtree(dir);
	mkdir_p(dir, 0755);
	th_write(dir, "create_things.sql", "SELECT 1;");
	cr_assert_eq(ts_migrations_discover(dir, &set), -1);
	cr_assert(strstr(ts_error_message(), "cannot tell the version of migration file"));
	cr_assert(strstr(ts_error_message(), "create_things.sql"));
	th_rmtree(dir);
	mkdir_p(dir, 0755);
	th_write(dir, "V1__a.sql", "SELECT 1;");
	th_write(dir, "V1.0__b.sql", "SELECT 1;");
	cr_assert_eq(ts_migrations_discover(dir, &set), -1);
	cr_assert(strstr(ts_error_message(), "two migrations have version"), "%s", ts_error_message());
}

Test(migrate, parser_finds_statements_that_cannot_run_in_a_transaction)
{
	struct ts_stmt *st;
	size_t n;
	const char *sql =
		"-- a comment with a ; in it\n"
		"CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\n"
		"INSERT INTO t VALUES ('x;y');\n"
		"CREATE INDEX CONCURRENTLY i ON t (a);\n"
		"/* CREATE INDEX CONCURRENTLY j ON t (a); */ VACUUM t;\n"
		"CREATE INDEX k ON t (a);\n";

	cr_assert_eq(ts_stmts_parse("m.sql", sql, 1, &st, &n), 0, "%s", ts_error_message());
	cr_assert_eq(n, 5);
	cr_assert_eq(st[0].line, 2, "the line after the leading comment");
	cr_assert_str_eq(st[0].kind, "CreateFunctionStmt");
	cr_assert_eq(st[0].no_transaction, 0);
	cr_assert_eq(st[1].line, 3);
	cr_assert_eq(st[2].no_transaction, 1, "CONCURRENTLY");
	cr_assert_eq(st[3].no_transaction, 1, "VACUUM, not the commented index");
	cr_assert_eq(st[4].no_transaction, 0);
	ts_stmts_free(st, n);
}

Test(migrate, syntax_error_names_file_and_line)
{
	struct ts_stmt *st;
	size_t n;

	cr_assert_eq(ts_stmts_parse("V3__x.sql", "SELECT 1;\n\nCREATE TABEL x (id int);\n", 1, &st, &n), -1);
	cr_assert(strstr(ts_error_message(), "V3__x.sql:3: syntax error at or near \"TABEL\""),
		  "%s", ts_error_message());
}

static int apply(struct th_cluster *c, struct ts_report *rep)
{
	struct ts_migrations set;
	struct ts_tracker t;
	PGconn *conn = ts_pg_connect(c->conninfo, "test");
	int r;

	cr_assert(conn);
	discover(&set);
	ts_tracker_init(&t, ts_tracking_for_format(set.format), NULL);
	r = ts_migrations_apply(conn, &set, &t, NULL, rep, NULL, 0);
	ts_tracker_release(&t);
	PQfinish(conn);
	ts_migrations_free(&set);
	return r;
}

static long count(const char *conninfo, const char *sql)
{
	char *v = th_value(conninfo, sql);
	long n = atol(v);

	free(v);
	return n;
}

Test(migrate, applies_records_and_detects_a_changed_file, .timeout = 120)
{
	struct th_cluster c;
	struct ts_report rep;

	th_cluster_start(&c, "mig");
	th_write(dir, "1_create.sql", "CREATE TABLE t (id int PRIMARY KEY, a text);\n");
	th_write(dir, "2_index.sql", "CREATE INDEX CONCURRENTLY t_a ON t (a);\n");
	ts_report_init(&rep, "t");
	cr_assert_eq(apply(&c, &rep), 2, "%s", ts_error_message());
	cr_assert_eq(rep.migrations[1].transactional, 0);
	cr_assert_eq(count(c.conninfo, "SELECT count(*) FROM " TS_TRACKING_TABLE " WHERE success"), 2);
	ts_report_free(&rep);

	/* nothing pending the second time */
	ts_report_init(&rep, "t");
	cr_assert_eq(apply(&c, &rep), 0, "%s", ts_error_message());
	ts_report_free(&rep);

	/* an applied file that changed is an error */
	th_write(dir, "1_create.sql", "CREATE TABLE t (id bigint PRIMARY KEY, a text);\n");
	ts_report_init(&rep, "t");
	cr_assert_eq(apply(&c, &rep), -1);
	cr_assert_eq(ts_error_class(), TS_EXIT_USAGE);
	cr_assert(strstr(ts_error_message(), "\"1_create.sql\" was changed after it was applied"),
		  "%s", ts_error_message());
	ts_report_free(&rep);
	th_cluster_stop(&c);
}

Test(migrate, failing_statement_rolls_back_and_names_the_line, .timeout = 120)
{
	struct th_cluster c;
	struct ts_report rep;

	th_cluster_start(&c, "mig");
	th_write(dir, "1_ok.up.sql", "CREATE TABLE t (id int);\n");
	th_write(dir, "2_bad.up.sql", "CREATE TABLE u (id int);\n-- the next one fails\nALTER TABLE missing\n  ADD COLUMN x int;\n");
	th_write(dir, "3_after.up.sql", "CREATE TABLE v (id int);\n");
	ts_report_init(&rep, "t");
	cr_assert_eq(apply(&c, &rep), -1);
	cr_assert_eq(ts_error_class(), TS_EXIT_GATE);
	cr_assert(strstr(ts_error_message(), "2_bad.up.sql:3: 42P01: relation \"missing\" does not exist"),
		  "%s", ts_error_message());
	cr_assert_str_eq(rep.migrations[1].status, "failed");
	cr_assert_str_eq(rep.migrations[2].status, "not run");
	/* the failed migration's first statement was rolled back with it */
	cr_assert_eq(count(c.conninfo, "SELECT count(*) FROM pg_class WHERE relname = 'u'"), 0);
	/* golang-migrate's table: the failed version, left dirty, as the tool leaves it */
	cr_assert_eq(count(c.conninfo, "SELECT version FROM schema_migrations WHERE dirty"), 2);
	cr_assert_eq(count(c.conninfo, "SELECT count(*) FROM schema_migrations"), 1);
	ts_report_free(&rep);
	th_cluster_stop(&c);
}
