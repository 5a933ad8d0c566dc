/* test_scenario.c: annotations, their errors, and judging real results. */
#include "config/config.h"
#include "core/error.h"
#include "core/util.h"
#include "rehearse/scenario.h"
#include "rehearse/scenario_run.h"
#include "report/report.h"
#include "helpers.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

Test(scenario, parses_annotations_and_lines)
{
	struct ts_scenario sc;
	const char *text =
		"-- what v1 does\n"
		"\n"
		"-- @name create invoice\n"
		"-- @expect rows 1\n"
		"INSERT INTO t (a) VALUES ('x;y') RETURNING id;\n"
		"-- @expect error 42703\n"
		"SELECT nope\n"
		"  FROM t;\n"
		"-- @expect columns id, a\n"
		"SELECT * FROM t;\n"
		"SELECT $$ a ; b $$;\n";

	cr_assert_eq(ts_scenario_parse_text("s.sql", text, &sc), 0, "%s", ts_error_message());
	cr_assert_eq(sc.n, 4);
	cr_assert_str_eq(sc.stmts[0].name, "create invoice");
	cr_assert_eq(sc.stmts[0].expect, TS_EXPECT_ROWS);
	cr_assert_eq(sc.stmts[0].rows, 1);
	cr_assert_eq(sc.stmts[0].line, 5);
	cr_assert_eq(sc.stmts[1].expect, TS_EXPECT_ERROR);
	cr_assert_str_eq(sc.stmts[1].sqlstate, "42703");
	cr_assert_eq(sc.stmts[1].line, 7);
	cr_assert_str_eq(sc.stmts[1].name, "SELECT nope", "a statement without @name is named by its first line");
	cr_assert_eq(sc.stmts[2].expect, TS_EXPECT_COLUMNS);
	cr_assert_eq(sc.stmts[2].columns.nr, 2);
	cr_assert_str_eq(sc.stmts[2].columns.v[1], "a");
	cr_assert_eq(sc.stmts[3].expect, TS_EXPECT_OK);
	cr_assert_str_eq(sc.stmts[3].sql, "SELECT $$ a ; b $$");
	ts_scenario_free(&sc);
}

Test(scenario, bad_annotations_name_file_and_line)
{
	struct ts_scenario sc;

	cr_assert_eq(ts_scenario_parse_text("s.sql", "SELECT 1;\n-- @expect rows many\nSELECT 2;\n", &sc), -1);
	cr_assert(strstr(ts_error_message(), "s.sql:2: invalid @expect \"rows many\""), "%s", ts_error_message());
	cr_assert_eq(ts_scenario_parse_text("s.sql", "-- @expect error 427\nSELECT 2;\n", &sc), -1);
	cr_assert(strstr(ts_error_message(), "s.sql:1: invalid SQLSTATE"), "%s", ts_error_message());
	cr_assert_eq(ts_scenario_parse_text("s.sql", "\n-- @expcet ok\nSELECT 2;\n", &sc), -1);
	cr_assert(strstr(ts_error_message(), "s.sql:2: unknown annotation \"@expcet\""), "%s", ts_error_message());
	cr_assert_eq(ts_scenario_parse_text("s.sql", "SELECT 1;\n-- @name dangling\n", &sc), -1);
	cr_assert(strstr(ts_error_message(), "annotation with no statement after it"), "%s", ts_error_message());
}

Test(scenario, judges_each_statement_on_a_real_cluster_and_rolls_back, .timeout = 120)
{
	struct th_cluster c;
	struct ts_app app = { 0 };
	struct ts_report rep;
	struct ts_report_check *chk;
	char *dir = th_tmpdir();

	th_cluster_start(&c, "scen");
	th_sql(c.conninfo, "CREATE TABLE t (id serial PRIMARY KEY, a text NOT NULL)");
	th_write(dir, "apps/01.sql",
		 "-- @expect rows 1\nINSERT INTO t (a) VALUES ('x') RETURNING id;\n"
		 "-- @expect rows 1\nSELECT * FROM t;\n"			/* sees the insert above */
		 "-- @expect error 23502\nINSERT INTO t (a) VALUES (NULL);\n"
		 "-- @expect columns id, a, b\nSELECT * FROM t;\n"		/* fails: no b */
		 "-- @expect rows 5\nSELECT * FROM t;\n"			/* fails: 1 row */
		 "-- @expect error 42P01\nSELECT * FROM t;\n"		/* fails: no error */
		 "-- @expect ok\nSELECT 1;\n");
	app.name = "v1";
	app.scenarios = path_join(dir, "apps");
	app.origin = "test";
	ts_report_init(&rep, "t");
	chk = ts_report_check_add(&rep, "v1", "prod", TS_CHECK_BASELINE, 0);
	cr_assert_eq(ts_scenario_run_app(&c.env, &c.env.prod, &app, dir, NULL, chk), 0, "%s", ts_error_message());
	cr_assert_eq(chk->n_cases, 7);
	cr_assert(chk->cases[0].pass && chk->cases[1].pass && chk->cases[2].pass && chk->cases[6].pass);
	cr_assert(!chk->cases[3].pass);
	cr_assert_str_eq(chk->cases[3].got, "columns id,a (missing b)");
	cr_assert(!chk->cases[4].pass);
	cr_assert_str_eq(chk->cases[4].got, "rows 1");
	cr_assert(!chk->cases[5].pass);
	cr_assert_eq(chk->failed, 3);
	cr_assert_eq(chk->cases[1].line, 4);
	/* the scenario's writes were rolled back */
	{
		char *n = th_value(c.conninfo, "SELECT count(*) FROM t");

		cr_assert_str_eq(n, "0");
		free(n);
	}
	ts_report_free(&rep);
	free(app.scenarios);
	th_cluster_stop(&c);
	th_rmtree(dir);
	free(dir);
}
