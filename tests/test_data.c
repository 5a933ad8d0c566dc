/*
 * test_data.c: data safety as a user sees it: the double dump test and
 * its typical catches, [equal OLD NEW] on a backfill, untouched tables,
 * and the rollback rehearsal, on real clusters; and the row-by-row
 * comparison underneath them.
 */
#include "core/error.h"
#include "core/strbuf.h"
#include "core/util.h"
#include "pg/equal.h"
#include "pg/pg.h"
#include "helpers.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

TH_PROJECT_SUITE(data);

/* These releases ship no new version: v1 alone is checked (v2 expects another schema). */
#define NO_NEXT "\n[rehearsal]\nnext = v1\n"

#define ASSERT_HAS TH_ASSERT_HAS

/* A backfill into a new table, the way back for each step, and the check that it copied everything. */
static const char backfill_up[] =
	"CREATE TABLE invoices (id bigint PRIMARY KEY, customer_name text NOT NULL,\n"
	"                       amount numeric(12, 2) NOT NULL);\n"
	"INSERT INTO invoices SELECT id, customer, amount FROM inovices;\n";
static const char equal_ini[] =
	"\n[equal inovices invoices]\ncolumns = id, customer:customer_name, amount\n" NO_NEXT;

static void backfill_project(const char *up1, const char *up2, const char *down2,
			     const char *extra_ini)
{
	char *ini = xstrfmt("%s%s", equal_ini, extra_ini ? extra_ini : "");

	th_project(dir, ini);
	th_write(dir, "migrations/1_create_invoices.up.sql", up1);
	th_write(dir, "migrations/1_create_invoices.down.sql", "DROP TABLE invoices;\n");
	th_write(dir, "migrations/2_add_note.up.sql", up2);
	if (down2)
		th_write(dir, "migrations/2_add_note.down.sql", down2);
	free(ini);
}

static json_t *latest_report(void)
{
	char *wd = path_join(dir, ".twinstage");
	json_t *o = th_latest_report(wd);

	free(wd);
	return o;
}

/* The status of each data check, in order: "ddt:passed ddt:passed untouched:passed ...". */
static char *data_statuses(json_t *rep)
{
	struct strbuf sb = STRBUF_INIT;
	json_t *v;
	size_t i;

	json_array_foreach(json_object_get(rep, "data"), i, v)
		strbuf_addf(&sb, "%s%s:%s", i ? " " : "",
			    json_string_value(json_object_get(v, "check")),
			    json_string_value(json_object_get(v, "status")));
	return strbuf_detach(&sb);
}

Test(data, a_clean_migration_passes_all_three)
{
	json_t *rep;
	char *s;
	int code;

	backfill_project(backfill_up, "ALTER TABLE invoices ADD COLUMN note text;\n",
			 "ALTER TABLE invoices DROP COLUMN note;\n", NULL);
	code = th_twinstage(dir, &out, &err, "rehearse", NULL);
	cr_assert_eq(code, 0, "exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(out, "passed  double dump test of the production clone");
	ASSERT_HAS(out, "passed  double dump test of the dev side");
	/* inovices was only read by the backfill: untouched, and compared */
	ASSERT_HAS(out, "passed  tables no migration statement changed are equal (1 table, 3000 rows");
	ASSERT_HAS(out, "passed  [equal inovices invoices]");
	ASSERT_HAS(out, "passed  rollback");
	rep = latest_report();
	s = data_statuses(rep);
	cr_assert_str_eq(s, "ddt:passed ddt:passed untouched:passed equal:passed rollback:passed");
	free(s);
	/* after the rollback, v1 ran again on the dev side, and passed */
	{
		json_t *c;
		size_t i;
		int seen = 0;

		json_array_foreach(json_object_get(rep, "checks"), i, c)
			if (!strcmp(json_string_value(json_object_get(c, "role")), "after rollback")) {
				seen = 1;
				cr_assert_eq(json_integer_value(json_object_get(c, "failed")), 0);
				cr_assert_gt(json_array_size(json_object_get(c, "cases")), 0);
			}
		cr_assert(seen, "v1 did not run after the rollback");
	}
	json_decref(rep);
}

Test(data, a_backfill_that_misses_rows_fails_equal_naming_the_key)
{
	int code;

	backfill_project("CREATE TABLE invoices (id bigint PRIMARY KEY, customer_name text NOT NULL,\n"
			 "                       amount numeric(12, 2) NOT NULL);\n"
			 "INSERT INTO invoices SELECT id, customer, amount FROM inovices WHERE id <> 1234;\n",
			 "ALTER TABLE invoices ADD COLUMN note text;\n",
			 "ALTER TABLE invoices DROP COLUMN note;\n", NULL);
	code = th_twinstage(dir, &out, &err, "rehearse", NULL);
	cr_assert_eq(code, 1, "exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(out, "failed  [equal inovices invoices]");
	ASSERT_HAS(out, "first difference at id=1234 (3000 rows on the production clone, 2999 on the dev side)");
	ASSERT_HAS(out, "production clone: id=1234, customer=");
	ASSERT_HAS(out, "verdict: incompatible - [equal inovices invoices]");
}

Test(data, a_down_migration_that_forgets_a_column_fails_the_rollback)
{
	int code;

	backfill_project(backfill_up, "ALTER TABLE inovices ADD COLUMN note text;\n",
			 "-- forgot: ALTER TABLE inovices DROP COLUMN note;\nSELECT 1;\n", NULL);
	code = th_twinstage(dir, &out, &err, "rehearse", NULL);
	cr_assert_eq(code, 1, "exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(out, "failed  rollback");
	ASSERT_HAS(out, "column public.inovices.note added");
	ASSERT_HAS(out, "verdict: incompatible - rollback");

	/* gate.rollback = warn: reported, not failing */
	strbuf_reset(&out);
	backfill_project(backfill_up, "ALTER TABLE inovices ADD COLUMN note text;\n", "SELECT 1;\n",
			 "\n[gate]\nrollback = warn\n");
	code = th_twinstage(dir, &out, &err, "rehearse", NULL);
	cr_assert_eq(code, 0, "exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(out, "failed  rollback: the down migrations restore the production clone's schema (warning)");
}

Test(data, a_missing_down_part_is_reported_and_nothing_is_rolled_back)
{
	int code;

	backfill_project(backfill_up, "ALTER TABLE invoices ADD COLUMN note text;\n", NULL, NULL);
	code = th_twinstage(dir, &out, &err, "rehearse", NULL);
	cr_assert_eq(code, 1, "exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(out, "2_add_note.up.sql has no down part");
	cr_assert(!strstr(err.buf, "1_create_invoices.down.sql ..."), "a down part ran:\n%s", err.buf);
}

/* A migration with one of the typical catches; the dev side's test must fail naming the object. */
static void ddt_catch(const char *migration, const char *object, const char *why)
{
	char *line = xstrfmt("failed  double dump test of the dev side: the restore fails at %s: %s",
			     object, why);
	int code;

	th_project(dir, NO_NEXT);
	th_write(dir, "migrations/1_catch.up.sql", migration);
	code = th_twinstage(dir, &out, &err, "rehearse", NULL);
	cr_assert_eq(code, 1, "exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(out, "passed  double dump test of the production clone");
	ASSERT_HAS(out, line);
	ASSERT_HAS(out, "verdict: incompatible - double dump test of the dev side");
	free(line);
}

Test(data, ddt_catches_an_index_on_a_function_that_depends_on_search_path)
{
	ddt_catch("CREATE FUNCTION suffix() RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT '!'::text $$;\n"
		  "CREATE FUNCTION norm(t text) RETURNS text LANGUAGE sql IMMUTABLE\n"
		  "    AS $$ SELECT lower(t) || suffix() $$;\n"
		  "CREATE INDEX inovices_norm ON inovices (norm(customer));\n",
		  "INDEX inovices_norm", "function suffix() does not exist");
}

Test(data, ddt_catches_rows_that_violate_a_foreign_key)
{
	/* written as bulk loads and logical replication do, with triggers off */
	ddt_catch("CREATE TABLE customers (name text PRIMARY KEY);\n"
		  "INSERT INTO customers SELECT DISTINCT customer FROM inovices;\n"
		  "CREATE TABLE orders (id int PRIMARY KEY, customer text REFERENCES customers (name));\n"
		  "SET session_replication_role = replica;\n"
		  "INSERT INTO orders VALUES (1, 'acme'), (2, 'umbrella');\n"
		  "RESET session_replication_role;\n",
		  "FK CONSTRAINT orders orders_customer_fkey",
		  "insert or update on table \"orders\" violates foreign key constraint");
}

Test(data, ddt_catches_an_owner_that_does_not_exist_where_it_is_restored)
{
	int code;

	/* with the step commands: up, migrate, then the test alone, on each side */
	th_project(dir, NO_NEXT);
	th_write(dir, "migrations/1_owner.up.sql",
		 "CREATE ROLE billing_owner;\n"
		 "CREATE TABLE invoices (id bigint PRIMARY KEY);\n"
		 "ALTER TABLE invoices OWNER TO billing_owner;\n");
	code = th_twinstage(dir, &out, &err, "up", "-q", NULL);
	cr_assert_eq(code, 0, "up: %s", err.buf);
	code = th_twinstage(dir, &out, &err, "migrate", "-q", NULL);
	cr_assert_eq(code, 0, "migrate: %s", err.buf);
	strbuf_reset(&out);
	code = th_twinstage(dir, &out, &err, "ddt", "prod", "-q", NULL);
	cr_assert_eq(code, 0, "ddt prod: exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(out, "passed  double dump test of the production clone");
	strbuf_reset(&out);
	code = th_twinstage(dir, &out, &err, "ddt", "-q", NULL);
	cr_assert_eq(code, 1, "ddt: exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(out, "the restore fails at TABLE invoices: role \"billing_owner\" does not exist");
	strbuf_reset(&err);
	code = th_twinstage(dir, &out, &err, "ddt", "staging", NULL);
	cr_assert_eq(code, 2, "exit %d", code);
	ASSERT_HAS(err, "expected prod or dev, got \"staging\"");
}

Test(data, a_failure_already_in_production_is_not_blamed_on_the_release)
{
	char *v1 = th_src("scenarios/invoices/apps/v1");
	char *ini = xstrfmt("[project]\nname = tproj\nmigrations = migrations\n[source]\nseed = seed.sql\n"
			    "[app v1]\nscenarios = %s\n[rehearsal]\ncurrent = v1\n", v1);
	int code;

	th_write(dir, "twinstage.ini", ini);
	th_write(dir, "seed.sql",
		 "CREATE TABLE inovices (id bigserial PRIMARY KEY, customer text NOT NULL,\n"
		 "    amount numeric(12, 2) NOT NULL, created_at timestamptz NOT NULL DEFAULT now());\n"
		 "INSERT INTO inovices (customer, amount)\n"
		 "    SELECT (ARRAY['acme', 'globex', 'initech'])[1 + i % 3], i FROM generate_series(1, 10) i;\n"
		 "CREATE FUNCTION suffix() RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT '!'::text $$;\n"
		 "CREATE FUNCTION norm(t text) RETURNS text LANGUAGE sql IMMUTABLE\n"
		 "    AS $$ SELECT lower(t) || suffix() $$;\n"
		 "CREATE INDEX inovices_norm ON inovices (norm(customer));\n");
	th_write(dir, "migrations/1_note.up.sql", "ALTER TABLE inovices ADD COLUMN note text;\n");
	code = th_twinstage(dir, &out, &err, "rehearse", NULL);
	cr_assert_eq(code, 0, "exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(out, "failed  double dump test of the production clone (warning): the restore fails at INDEX inovices_norm");
	ASSERT_HAS(out, "Command was: CREATE INDEX inovices_norm ON public.inovices");
	ASSERT_HAS(out, "failed  double dump test of the dev side (warning)");
	ASSERT_HAS(out, "it was broken before this release");
	free(ini);
	free(v1);
}

/* ---- the comparison underneath, on a real cluster ---- */

static struct th_cluster cl;

static void cluster_setup(void)
{
	th_cluster_start(&cl, "eq");
}

static void cluster_teardown(void)
{
	th_cluster_stop(&cl);
}

TestSuite(equal, .init = cluster_setup, .fini = cluster_teardown, .timeout = 120);

static void compare(const char *ta, const char *tb, const char *const *ca, const char *const *cb,
		    size_t n, struct ts_cmp *c, int expect)
{
	PGconn *a = ts_pg_connect(cl.conninfo, "a"), *b = ts_pg_connect(cl.conninfo, "b");
	struct ts_rels rels;
	int r;

	cr_assert(a && b, "%s", ts_error_message());
	cr_assert_eq(ts_rels_read(a, NULL, &rels), 0, "%s", ts_error_message());
	cr_assert(ts_rels_find(&rels, ta) && ts_rels_find(&rels, tb), "tables not listed");
	r = ts_table_compare(a, ts_rels_find(&rels, ta), b, ts_rels_find(&rels, tb), ca, cb, n, c);
	cr_assert_eq(r, expect, "compare %s %s: %d: %s", ta, tb, r, ts_error_message());
	ts_rels_free(&rels);
	PQfinish(a);
	PQfinish(b);
}

Test(equal, names_the_first_differing_key_and_counts_both_sides)
{
	struct ts_cmp c;

	th_sql(cl.conninfo,
	       "CREATE TABLE a (id int PRIMARY KEY, v text);"
	       "CREATE TABLE b (id int PRIMARY KEY, v text);"
	       "INSERT INTO a SELECT i, 'x' || i FROM generate_series(1, 100000) i;"
	       /* the same rows, written in another order, one changed and one missing */
	       "INSERT INTO b SELECT i, 'x' || i FROM generate_series(100000, 1, -1) i WHERE i <> 77000;"
	       "UPDATE b SET v = 'changed' WHERE id = 500;");
	compare("a", "b", NULL, NULL, 0, &c, 0);
	cr_assert_eq(c.rows[0], 100000);
	cr_assert_eq(c.rows[1], 99999);
	cr_assert_eq(c.at, 499);
	cr_assert_str_eq(c.key, "id=500");
	cr_assert_str_eq(c.row[0], "id=500, v=x500");
	cr_assert_str_eq(c.row[1], "id=500, v=changed");
	ts_cmp_free(&c);

	th_sql(cl.conninfo, "UPDATE b SET v = 'x500' WHERE id = 500");
	compare("a", "b", NULL, NULL, 0, &c, 0);
	cr_assert_str_eq(c.key, "id=77000");
	cr_assert_str_eq(c.row[1], "id=77001, v=x77001", "the next row is where the missing one was");
	ts_cmp_free(&c);
}

Test(equal, without_a_key_rows_compare_as_a_whole_in_any_order)
{
	struct ts_cmp c;

	th_sql(cl.conninfo,
	       "CREATE TABLE a (doc jsonb, n int);"
	       "CREATE TABLE b (doc jsonb, n int);"
	       "INSERT INTO a VALUES ('{\"k\": 1}', 1), ('{\"k\": 2}', 2), (NULL, 3), (NULL, 3);"
	       "INSERT INTO b VALUES (NULL, 3), ('{\"k\": 2}', 2), (NULL, 3), ('{\"k\": 1}', 1);");
	compare("a", "b", NULL, NULL, 0, &c, 0);
	cr_assert_eq(c.at, -1, "differs at %s", c.key);
	cr_assert_eq(c.rows[0], 4);
	ts_cmp_free(&c);
	th_sql(cl.conninfo, "DELETE FROM b WHERE n = 3 AND ctid = (SELECT min(ctid) FROM b WHERE n = 3)");
	compare("a", "b", NULL, NULL, 0, &c, 0);
	cr_assert_geq(c.at, 0, "a duplicate row that went missing is a difference");
	cr_assert_eq(c.rows[1], 3);
	ts_cmp_free(&c);
}

Test(equal, maps_renamed_columns_and_reads_new_types_as_old)
{
	static const char *const old_cols[] = { "id", "customer", "amount" };
	static const char *const new_cols[] = { "id", "customer_name", "amount" };
	static const char *const wrong[] = { "id", "customer", "amount" };
	struct ts_cmp c;

	th_sql(cl.conninfo,
	       "CREATE TABLE inovices (id int PRIMARY KEY, customer text, amount numeric(12, 2));"
	       "CREATE TABLE invoices (id bigint PRIMARY KEY, customer_name varchar(40), amount numeric,"
	       "                       extra text DEFAULT 'new');"
	       "INSERT INTO inovices SELECT i, 'c' || i, i * 1.5 FROM generate_series(1, 1000) i;"
	       "INSERT INTO invoices SELECT i, 'c' || i, i * 1.5 FROM generate_series(1, 1000) i;");
	compare("inovices", "invoices", old_cols, new_cols, 3, &c, 0);
	cr_assert_eq(c.at, -1, "differs at %s: %s / %s", c.key, c.row[0], c.row[1]);
	ts_cmp_free(&c);
	/* a value that does not survive the way to the new type is a difference */
	th_sql(cl.conninfo, "UPDATE invoices SET amount = 1.505 WHERE id = 1");
	compare("inovices", "invoices", old_cols, new_cols, 3, &c, 0);
	cr_assert_str_eq(c.key, "id=1");
	ts_cmp_free(&c);
	/* a column the mapping names that is not there */
	compare("inovices", "invoices", old_cols, wrong, 3, &c, -1);
	cr_assert(strstr(ts_error_message(), "table public.invoices has no column \"customer\""), "%s",
		  ts_error_message());
	cr_assert_eq(ts_error_class(), TS_EXIT_USAGE);
}
