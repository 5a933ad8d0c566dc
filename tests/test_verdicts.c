/*
 * test_verdicts.c: verdicts that are right on migrations as real projects
 * write them: down parts that add a column back, indexes rebuilt, a
 * backfill on a table with a trigger, a database with its own search_path,
 * transactions that lock in opposite orders, Prisma's layout. A gate that
 * cries wolf is switched off: each false failure and each hidden or
 * misattributed finding here was one.
 */
#include "core/strbuf.h"
#include "core/util.h"
#include "core/wrapper.h"
#include "helpers.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

TH_PROJECT_SUITE(verdicts);

#define ASSERT_HAS TH_ASSERT_HAS
#define ASSERT_LACKS(sb, needle) \
	cr_assert(!strstr((sb).buf, needle), "output has \"%s\":\n%s", needle, (sb).buf)

static const char shop_seed[] =
	"CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL);\n"
	"CREATE TABLE orders (id serial PRIMARY KEY, customer_id int NOT NULL REFERENCES customers (id),\n"
	"  legacy_ref int, note text, amount numeric(12,2) NOT NULL, name text);\n"
	"ALTER TABLE orders ADD CONSTRAINT orders_legacy_fk FOREIGN KEY (legacy_ref) REFERENCES customers (id);\n"
	"CREATE INDEX orders_legacy_idx ON orders (legacy_ref);\n"
	"CREATE INDEX orders_customer_idx ON orders (customer_id);\n"
	"INSERT INTO customers (name) SELECT 'c' || i FROM generate_series(1, 50) i;\n"
	"INSERT INTO orders (customer_id, legacy_ref, note, amount, name)\n"
	"  SELECT 1 + i % 50, 1 + i % 7, 'n' || i, i, 'o' || i FROM generate_series(1, 2000) i;\n";

/* A project: the shop's seed (and more), the current version's scenario, [extra] ini lines. */
static void shop(const char *seed_more, const char *v1, const char *extra_ini)
{
	char *seed = xstrfmt("%s%s", shop_seed, seed_more ? seed_more : "");
	char *ini = xstrfmt("[project]\nname = shop\n[source]\nseed = seed.sql\n[app v1]\nscenarios = apps/v1\n"
			    "[rehearsal]\ncurrent = v1\n%s", extra_ini ? extra_ini : "");

	th_write(dir, "seed.sql", seed);
	th_write(dir, "apps/v1/01_orders.sql", v1 ? v1 :
		 "-- @name an order\n-- @expect rows 1\nSELECT id, customer_id, amount FROM orders WHERE id = 7;\n");
	th_write(dir, "twinstage.ini", ini);
	free(seed);
	free(ini);
}

static int rehearse(void)
{
	strbuf_reset(&out);
	strbuf_reset(&err);
	return th_twinstage(dir, &out, &err, "rehearse", "--no-load", NULL);
}

static json_t *data_check(json_t *rep, const char *check)
{
	json_t *v;
	size_t i;

	json_array_foreach(json_object_get(rep, "data"), i, v)
		if (!strcmp(json_string_value(json_object_get(v, "check")), check))
			return v;
	cr_assert_fail("no %s data check in the report", check);
	return NULL;
}

Test(verdicts, a_down_part_that_adds_a_column_back_restores_the_schema)
{
	char *wd = path_join(dir, ".twinstage");
	json_t *rep;
	int code;

	/* dbmate, as a real project writes it: the way back re-adds the column, its key and its index */
	shop(NULL, NULL, NULL);
	th_write(dir, "migrations/20240101120000_drop_legacy_ref.sql",
		 "-- migrate:up\nALTER TABLE orders DROP COLUMN legacy_ref;\n\n"
		 "-- migrate:down\nALTER TABLE orders ADD COLUMN legacy_ref int;\n"
		 "ALTER TABLE orders ADD CONSTRAINT orders_legacy_fk FOREIGN KEY (legacy_ref) REFERENCES customers (id);\n"
		 "CREATE INDEX orders_legacy_idx ON orders (legacy_ref);\n");
	code = rehearse();
	cr_assert_eq(code, 0, "exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_LACKS(out, "definition ?");
	rep = th_latest_report(wd);
	cr_assert_str_eq(json_string_value(json_object_get(data_check(rep, "rollback"), "status")), "passed");
	json_decref(rep);
	/* the column comes back last, and that alone is no difference */
	ASSERT_LACKS(out, "orders_legacy_fk changed");
	ASSERT_LACKS(out, "orders_legacy_idx changed");
	free(wd);
}

Test(verdicts, a_real_failure_is_not_hidden_behind_the_way_back)
{
	int code;

	/* the same release holding its lock 200 ms: the lock is the verdict, the way back passes */
	shop(NULL, NULL, "[gate]\nmax_lock_ms = 100\n");
	th_write(dir, "migrations/20240101120000_drop_legacy_ref.sql",
		 "-- migrate:up\nALTER TABLE orders DROP COLUMN legacy_ref;\nSELECT pg_sleep(0.2);\n\n"
		 "-- migrate:down\nALTER TABLE orders ADD COLUMN legacy_ref int;\n"
		 "ALTER TABLE orders ADD CONSTRAINT orders_legacy_fk FOREIGN KEY (legacy_ref) REFERENCES customers (id);\n"
		 "CREATE INDEX orders_legacy_idx ON orders (legacy_ref);\n");
	code = rehearse();
	cr_assert_eq(code, 1, "exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(out, "verdict: incompatible - 20240101120000_drop_legacy_ref.sql:2 holds AccessExclusiveLock on public.");
	ASSERT_HAS(out, "over gate.max_lock_ms = 100");
	ASSERT_HAS(out, "passed  rollback");
}

Test(verdicts, a_rebuilt_index_shows_both_definitions_in_every_format)
{
	char *wd = path_join(dir, ".twinstage");
	char *md;
	json_t *rep, *c;
	size_t i;
	int found = 0;

	shop(NULL, NULL, NULL);
	th_write(dir, "migrations/V1__widen_customer_idx.sql",
		 "DROP INDEX orders_customer_idx;\nCREATE INDEX orders_customer_idx ON orders (customer_id, amount);\n");
	rehearse();
	ASSERT_HAS(out, "index public.orders_customer_idx changed: definition CREATE INDEX orders_customer_idx ON public.orders USING btree (customer_id) -> CREATE INDEX orders_customer_idx ON public.orders USING btree (customer_id, amount)");
	rep = th_latest_report(wd);
	json_array_foreach(json_object_get(rep, "schema"), i, c)
		if (!strcmp(json_string_value(json_object_get(c, "name")), "public.orders_customer_idx"))
			found = strstr(json_string_value(json_object_get(c, "detail")), "(customer_id, amount)") != NULL;
	cr_assert(found, "report.json lacks the new definition");
	json_decref(rep);
	md = th_read(wd, "reports/latest/report.md");
	/* (Markdown escapes the underscores) */
	cr_assert(md && strstr(md, "btree (customer\\_id) -\\> CREATE") && strstr(md, "btree (customer\\_id, amount)"),
		  "report.md lacks a definition:\n%s", md ? md : "(no report.md)");
	free(md);
	free(wd);
}

Test(verdicts, a_change_is_tied_to_the_statement_that_made_it)
{
	/* V2 names orders and a note column, V3 updates amount: neither dropped or retyped them */
	shop(NULL, NULL, NULL);
	th_write(dir, "migrations/V2__audit.sql",
		 "CREATE TABLE audit (id serial PRIMARY KEY, note text, orders_id int REFERENCES orders (id));\n");
	th_write(dir, "migrations/V3__cents.sql", "UPDATE orders SET amount = amount * 100;\n");
	th_write(dir, "migrations/V4__tidy.sql",
		 "ALTER TABLE orders DROP COLUMN note;\nALTER TABLE orders ALTER COLUMN amount TYPE bigint;\n");
	rehearse();
	ASSERT_HAS(out, "column public.orders.note dropped: the current version may still use this column [V4__tidy.sql:1]");
	ASSERT_HAS(out, "column public.orders.amount changed: type numeric(12,2) -> bigint [V4__tidy.sql:2]");
}

Test(verdicts, evidence_is_the_scenarios_that_use_the_object)
{
	/* two breaking changes, two failing scenarios, each failing because of one */
	shop(NULL,
	     "-- @name the order's name\n-- @expect rows 1\nSELECT name FROM orders WHERE id = 7;\n\n"
	     "-- @name a customer's name\n-- @expect rows 1\nSELECT name FROM customers WHERE id = 7;\n\n"
	     "-- @name the amounts\n-- @expect rows 1\nSELECT sum(amount) FROM orders;\n", NULL);
	th_write(dir, "migrations/V1__breaks.sql",
		 "ALTER TABLE orders DROP COLUMN name;\nALTER TABLE customers RENAME TO clients;\n"
		 "ALTER TABLE orders ALTER COLUMN amount TYPE numeric(10,2);\n");
	cr_assert_eq(rehearse(), 1);
	ASSERT_HAS(out, "column public.orders.name dropped: the current version may still use this column [V1__breaks.sql:1] - fails v1 01_orders.sql:3 \"the order's name\"\n");
	ASSERT_HAS(out, "table public.clients renamed: renamed from public.customers: the current version still uses the old name [V1__breaks.sql:2] - fails v1 01_orders.sql:7 \"a customer's name\"\n");
	/* read by a scenario that passed: said so, not "not exercised" */
	ASSERT_HAS(out, "breaking change that no scenario failed on: column public.orders.amount changed is used by v1 01_orders.sql:11 \"the amounts\", which passed");
	ASSERT_LACKS(out, "not exercised by any scenario of v1: column public.orders.amount");
}

Test(verdicts, a_backfill_that_fires_a_trigger_changes_what_it_did_not_say)
{
	static const char trigger[] =
		"ALTER TABLE orders ADD COLUMN updated_at timestamptz NOT NULL DEFAULT '2024-01-01';\n"
		"ALTER TABLE orders ADD COLUMN amount_cents bigint;\n"
		"CREATE TABLE payments (id int PRIMARY KEY, amount int);\n"
		"INSERT INTO payments SELECT i, i FROM generate_series(1, 100) i;\n"
		"CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$\n"
		"BEGIN NEW.updated_at := now(); RETURN NEW; END $$;\n"
		"CREATE TRIGGER orders_touch BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION touch();\n";
	char *wd = path_join(dir, ".twinstage");
	json_t *rep, *c;

	shop(trigger, NULL, NULL);
	th_write(dir, "migrations/V1__cents.sql",
		 "-- twinstage:batch 500\nUPDATE orders SET amount_cents = amount * 100 WHERE amount_cents IS NULL;\n");
	th_write(dir, "migrations/V2__payments_by_amount.sql", "CREATE INDEX payments_amount ON payments (amount);\n");
	cr_assert_eq(rehearse(), 0, "%s\n%s", out.buf, err.buf);
	ASSERT_HAS(out, "public.orders changed in columns no migration statement assigns (a trigger, a rule or a default did it)");
	rep = th_latest_report(wd);
	c = data_check(rep, "undeclared");
	cr_assert_str_eq(json_string_value(json_object_get(c, "status")), "failed");
	{
		char *rows = json_dumps(json_object_get(c, "excerpt"), 0);

		cr_assert(strstr(rows, "updated_at"), "the row shown lacks updated_at: %s", rows);
		free(rows);
	}
	/* a table that only got an index holds the same rows, and is compared */
	cr_assert_eq(json_integer_value(json_object_get(data_check(rep, "untouched"), "tables")), 2,
		     "customers and payments are compared");
	json_decref(rep);
	/* gate.undeclared = fail makes it the verdict */
	shop(trigger, NULL, "[gate]\nundeclared = fail\n");
	cr_assert_eq(rehearse(), 1, "%s", out.buf);
	ASSERT_HAS(out, "verdict: incompatible - the columns of public.orders no migration statement assigns hold what they held: public.orders changed in columns no migration statement assigns");
	free(wd);
}

Test(verdicts, the_tools_table_is_found_where_the_tool_finds_it)
{
	static const char seed_more[] =
		"CREATE SCHEMA app;\n"
		"DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET search_path = app, public', current_database()); END $$;\n"
		"SET search_path = app, public;\n"
		"CREATE TABLE app.schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL);\n"
		"INSERT INTO app.schema_migrations VALUES (1, false);\n"
		"CREATE TABLE app.tags (id serial PRIMARY KEY, name text);\n";
	static const char *const clones[] = { "cow", "logical" };

	for (size_t i = 0; i < 2; i++) {
		char *ini = xstrfmt("[environments]\nclone = %s\n", clones[i]);

		shop(seed_more, NULL, ini);
		th_write(dir, "migrations/1_create_tags.up.sql", "CREATE TABLE tags (id serial PRIMARY KEY, name text);\n");
		th_write(dir, "migrations/2_tag_digest.up.sql", "ALTER TABLE tags ADD COLUMN digest text;\n");
		cr_assert_eq(th_twinstage(dir, &out, &err, "up", "-q", NULL), 0, "%s", err.buf);
		strbuf_reset(&out);
		cr_assert_eq(th_twinstage(dir, &out, &err, "status", NULL), 0, "%s", err.buf);
		ASSERT_HAS(out, "tracked in golang-migrate's table app.schema_migrations");
		ASSERT_HAS(out, "dev   at version 1, 1 pending");
		cr_assert_eq(th_twinstage(dir, &out, &err, "down", NULL), 0);
		/* only 2 runs, in app's table, and no second table is made */
		cr_assert_eq(rehearse(), 0, "clone = %s: %s\n%s", clones[i], out.buf, err.buf);
		ASSERT_HAS(out, "tracked in golang-migrate's table app.schema_migrations: production clone at 1, dev side 1 -> 2");
		ASSERT_LACKS(out, "1_create_tags.up.sql");
		free(ini);
	}
}

Test(verdicts, opposite_lock_orders_are_a_deadlock_every_time)
{
	shop(NULL,
	     "-- @name the customer, then the order\n-- @expect rows 1\nUPDATE customers SET name = name WHERE id = 3;\n"
	     "-- @expect rows 1\nUPDATE orders SET note = note WHERE id = 3;\n", NULL);
	/* one transaction: orders, then customers */
	th_write(dir, "migrations/V1__two_tables.sql",
		 "ALTER TABLE orders ADD COLUMN shipped boolean;\nALTER TABLE customers ADD COLUMN vip boolean;\n");
	for (int run = 0; run < 2; run++) {
		cr_assert_eq(rehearse(), 1, "run %d: %s", run, out.buf);
		ASSERT_HAS(out, "a deadlock waiting to happen: V1__two_tables.sql:1 locks public.orders (AccessExclusiveLock) then V1__two_tables.sql:2 locks public.customers (AccessExclusiveLock); v1 01_orders.sql:3 locks public.customers (RowExclusiveLock) then 01_orders.sql:5 locks public.orders (RowExclusiveLock)");
	}
	/* in the application's order, no deadlock */
	th_write(dir, "migrations/V1__two_tables.sql",
		 "ALTER TABLE customers ADD COLUMN vip boolean;\nALTER TABLE orders ADD COLUMN shipped boolean;\n");
	cr_assert_eq(rehearse(), 0, "%s", out.buf);
}

Test(verdicts, a_repeatable_production_lists_and_the_folder_lacks_is_drift)
{
	shop("CREATE TABLE flyway_schema_history (installed_rank integer PRIMARY KEY, version varchar(50),"
	     " description varchar(200) NOT NULL, type varchar(20) NOT NULL, script varchar(1000) NOT NULL,"
	     " checksum integer, installed_by varchar(100) NOT NULL, installed_on timestamp NOT NULL DEFAULT now(),"
	     " execution_time integer NOT NULL, success boolean NOT NULL);\n"
	     "INSERT INTO flyway_schema_history VALUES (1, '1', 'create orders', 'SQL', 'V1__create_orders.sql', 1, 'me', now(), 1, true),"
	     " (2, NULL, 'order totals', 'SQL', 'R__order_totals.sql', 7, 'me', now(), 1, true),"
	     " (3, NULL, 'order totals', 'SQL', 'R__order_totals.sql', 8, 'me', now(), 1, true);\n", NULL, NULL);
	th_write(dir, "migrations/V1__create_orders.sql", "SELECT 1;\n");
	th_write(dir, "migrations/V2__add_shipped.sql", "ALTER TABLE orders ADD COLUMN shipped boolean;\n");
	rehearse();
	ASSERT_HAS(err, "drift: repeatable migration \"order totals\" is applied in production but has no file in the migrations folder");
	/* said once, though production re-ran it */
	cr_assert(strstr(strstr(err.buf, "drift: repeatable") + 1, "drift: repeatable") == NULL, "%s", err.buf);
}

Test(verdicts, the_tools_own_bookkeeping_is_not_a_finding)
{
	/* production at version 1 of golang-migrate: its table is there, and each migration rewrites it */
	shop("CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL);\n"
	     "INSERT INTO schema_migrations VALUES (1, false);\n", NULL, NULL);
	th_write(dir, "migrations/1_create_shop.up.sql", "SELECT 1;\n");
	th_write(dir, "migrations/2_add_shipped.up.sql", "ALTER TABLE orders ADD COLUMN shipped boolean;\n");
	th_write(dir, "migrations/3_add_vip.up.sql", "ALTER TABLE customers ADD COLUMN vip boolean;\n");
	cr_assert_eq(rehearse(), 0, "%s", out.buf);
	ASSERT_HAS(out, "dev side 1 -> 3");
	ASSERT_LACKS(out, "rewrote public.schema_migrations");
	ASSERT_LACKS(out, "on public.schema_migrations");
}

Test(verdicts, a_lock_wait_no_one_queued_behind_gets_no_advice)
{
	/* the one client holds its read lock until the migration waits behind it: nobody queues */
	shop(NULL,
	     "-- @name the long report\n-- @expect rows 1\nSELECT count(*) FROM orders;\n"
	     "DO $$ BEGIN\n"
	     "  IF current_setting('application_name') = 'twinstage load 1' THEN\n"
	     "    FOR i IN 1..4000 LOOP\n"
	     "      EXIT WHEN EXISTS (SELECT 1 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation\n"
	     "                        WHERE c.relname = 'orders' AND NOT l.granted);\n"
	     "      PERFORM pg_sleep(0.005);\n"
	     "    END LOOP;\n"
	     "    PERFORM pg_sleep(0.3);\n"
	     "  END IF;\n"
	     "END $$;\n",
	     "[load]\nclients = 1\nbefore_ms = 200\nafter_ms = 100\n[gate]\nmax_stall_ms = 0\nmax_lock_ms = 0\n");
	th_write(dir, "migrations/V1__add_shipped.sql", "ALTER TABLE orders ADD COLUMN shipped boolean;\n");
	strbuf_reset(&out);
	th_twinstage(dir, &out, &err, "rehearse", NULL);
	ASSERT_HAS(out, "lock wait: V1__add_shipped.sql:1 waited ");
	ASSERT_HAS(out, "no application statement queued behind it");
	ASSERT_LACKS(out, "Set lock_timeout before it");
}

/* Prisma: a folder per migration, _prisma_migrations as Prisma keeps it */
static const char prisma_init[] = "-- CreateTable\nCREATE TABLE \"User\" (\"id\" SERIAL NOT NULL, \"email\" TEXT NOT NULL,\n"
				  "    CONSTRAINT \"User_pkey\" PRIMARY KEY (\"id\"));\n";
static const char prisma_note[] = "-- AlterTable\nALTER TABLE \"User\" ADD COLUMN \"note\" TEXT;\n";

Test(verdicts, prisma_migrations_are_read_and_kept_as_prisma_keeps_them)
{
	char sum[65], *seed, *wd = path_join(dir, ".twinstage");

	th_write(dir, "migrations/migration_lock.toml", "provider = \"postgresql\"\n");
	th_write(dir, "migrations/20240101120000_init/migration.sql", prisma_init);
	th_write(dir, "migrations/20240301090000_add_note/migration.sql", prisma_note);
	sha256_hex(prisma_init, strlen(prisma_init), sum);
	seed = xstrfmt("%s"
		       "CREATE TABLE _prisma_migrations (id varchar(36) PRIMARY KEY NOT NULL, checksum varchar(64) NOT NULL,"
		       " finished_at timestamptz, migration_name varchar(255) NOT NULL, logs text, rolled_back_at timestamptz,"
		       " started_at timestamptz NOT NULL DEFAULT now(), applied_steps_count integer NOT NULL DEFAULT 0);\n"
		       "INSERT INTO _prisma_migrations VALUES ('b3c1e3a2-0000-4000-8000-000000000001', '%s', now(),"
		       " '20240101120000_init', NULL, NULL, now(), 1);\n"
		       "INSERT INTO \"User\" (email) VALUES ('a@example.com');\n", prisma_init, sum);
	th_write(dir, "seed.sql", seed);
	th_write(dir, "apps/v1/01_users.sql", "-- @expect rows 1\nSELECT id, email FROM \"User\";\n");
	th_write(dir, "twinstage.ini", "[project]\nname = prisma_app\n[source]\nseed = seed.sql\n"
		 "[app v1]\nscenarios = apps/v1\n[rehearsal]\ncurrent = v1\n");
	cr_assert_eq(th_twinstage(dir, &out, &err, "rehearse", "--no-load", "--keep", NULL), 0, "%s\n%s", out.buf, err.buf);
	ASSERT_HAS(out, "tracked in prisma's table public._prisma_migrations: production clone at 20240101120000, dev side 20240101120000 -> 20240301090000");
	ASSERT_LACKS(out, "20240101120000_init/migration.sql");
	/* the dev side's row: finished, one step, Prisma's checksum (SHA-256 of the file) */
	{
		char *ci = xstrfmt("host=127.0.0.1 port=%d dbname=prisma_app user=postgres", th_kept_port(wd, "dev"));
		char *row;

		sha256_hex(prisma_note, strlen(prisma_note), sum);
		row = th_value(ci, "SELECT checksum || ' ' || applied_steps_count || ' ' || (finished_at IS NOT NULL)"
				   " FROM _prisma_migrations WHERE migration_name = '20240301090000_add_note'");
		cr_assert(!strncmp(row, sum, 64) && !strcmp(row + 64, " 1 true"), "row: %s (checksum %s)", row, sum);
		free(row);
		free(ci);
	}
	cr_assert_eq(th_twinstage(dir, &out, &err, "down", NULL), 0);
	free(seed);
	free(wd);
}

Test(verdicts, a_layout_it_cannot_read_is_an_error_not_zero_migrations)
{
	shop(NULL, NULL, NULL);
	th_write(dir, "migrations/20240101120000_init/steps.sql", "SELECT 1;\n");
	cr_assert_eq(th_twinstage(dir, &out, &err, "lint", "migrations", NULL), 2, "%s", out.buf);
	ASSERT_HAS(err, "holds no migration twinstage can read: it has \"20240101120000_init\" (a folder with no migration.sql)");
	strbuf_reset(&err);
	cr_assert_eq(rehearse(), 2, "%s", out.buf);
	ASSERT_HAS(err, "holds no migration twinstage can read");
}
