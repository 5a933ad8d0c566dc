/*
 * test_release.c: the loop from a rehearsal to production, against a real
 * "production" cluster: the manifest every rehearsal writes, `verify`,
 * and `promote`, which applies exactly what was rehearsed, and refuses
 * what was not, or a production that moved since.
 */
#include "core/strbuf.h"
#include "core/util.h"
#include "core/wrapper.h"
#include "helpers.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

#define ASSERT_HAS TH_ASSERT_HAS
#define MANIFEST ".twinstage/reports/latest/manifest.json"

static char *dir;
static struct strbuf out = STRBUF_INIT, err = STRBUF_INIT;
static struct th_cluster prod;
static int prod_up;

static void setup(void)
{
	dir = th_tmpdir();
	strbuf_reset(&out);
	strbuf_reset(&err);
}

/* Whatever a test did, or where it failed: no server left behind. */
static void teardown(void)
{
	th_twinstage(dir, NULL, NULL, "down", "-q", NULL);
	if (prod_up)
		th_cluster_stop(&prod);
	prod_up = 0;
	unsetenv("TWINSTAGE_TARGET_DSN");
	th_rmtree(dir);
	free(dir);
}

TestSuite(release, .init = setup, .fini = teardown, .timeout = 300);

/*
 * A shop whose production holds orders, a project that rehearses against
 * it (the source's password is one nobody may see), and the target's
 * connection string, with another password, in the environment.
 */
static void shop(const char *extra_ini)
{
	char *ini, *target;

	th_cluster_start(&prod, "shop");
	prod_up = 1;
	th_sql(prod.conninfo, "CREATE TABLE orders (id int PRIMARY KEY, total int NOT NULL);"
			      "INSERT INTO orders SELECT i, i * 10 FROM generate_series(1, 500) i;");
	ini = xstrfmt("[project]\nname = shop\n\n"
		      "[source]\ndsn = postgresql://postgres:s3cretpw@127.0.0.1:%d/shop\n\n"
		      "[app v1]\nscenarios = apps/v1\n\n[rehearsal]\ncurrent = v1\n\n"
		      "[load]\nenabled = false\n%s",
		      prod.env.prod.port, extra_ini ? extra_ini : "");
	th_write(dir, "twinstage.ini", ini);
	th_write(dir, "apps/v1/01_orders.sql",
		 "-- @expect rows 1\nSELECT id, total FROM orders WHERE id = 1;\n\n"
		 "-- @expect rows 1\nINSERT INTO orders (id, total) VALUES (1000, 5);\n");
	target = xstrfmt("postgresql://postgres:t4rgetpw@127.0.0.1:%d/shop", prod.env.prod.port);
	setenv("TWINSTAGE_TARGET_DSN", target, 1);
	free(target);
	free(ini);
}

/* golang-migrate: a column, then an index. */
static void golang_migrations(void)
{
	th_write(dir, "migrations/1_note.up.sql", "ALTER TABLE orders ADD COLUMN note text;\n");
	th_write(dir, "migrations/1_note.down.sql", "ALTER TABLE orders DROP COLUMN note;\n");
	th_write(dir, "migrations/2_total_idx.up.sql", "CREATE INDEX orders_total_idx ON orders (total);\n");
	th_write(dir, "migrations/2_total_idx.down.sql", "DROP INDEX orders_total_idx;\n");
}

static void rehearse_ok(void)
{
	int code = th_twinstage(dir, &out, &err, "rehearse", "-q", NULL);

	cr_assert_eq(code, 0, "rehearse exit %d\n%s\n%s", code, out.buf, err.buf);
	strbuf_reset(&out);
	strbuf_reset(&err);
}

static char *prod_value(const char *sql)
{
	return th_value(prod.conninfo, sql);
}

static void assert_value(const char *sql, const char *want)
{
	char *v = prod_value(sql);

	cr_assert_str_eq(v, want, "%s: %s, expected %s", sql, v, want);
	free(v);
}

/* What production has written, from its own statistics (flushed: every other session has ended). */
static char *write_counters(void)
{
	return prod_value("SELECT tup_inserted || '/' || tup_updated || '/' || tup_deleted"
			  " FROM pg_stat_database WHERE datname = 'shop'");
}

Test(release, rehearse_verify_promote_and_production_ends_where_the_dev_side_did)
{
	char *before, *after, *wd = path_join(dir, ".twinstage");
	int code;

	shop(NULL);
	golang_migrations();
	/* the rehearsal only reads the source: its write counters do not move */
	before = write_counters();
	rehearse_ok();
	after = write_counters();
	cr_assert_str_eq(after, before, "the rehearsal wrote to the source: %s -> %s", before, after);
	free(after);
	free(before);
	assert_value("SELECT count(*) FROM pg_class WHERE relname = 'schema_migrations'", "0");

	code = th_twinstage(dir, &out, &err, "verify", "--manifest", MANIFEST, NULL);
	cr_assert_eq(code, 0, "verify exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(out, "production is as the rehearsal found it");
	ASSERT_HAS(out, "the manifest holds");
	ASSERT_HAS(out, "from TWINSTAGE_TARGET_DSN");

	strbuf_reset(&out);
	code = th_twinstage(dir, &out, &err, "promote", "--manifest", MANIFEST, NULL);
	cr_assert_eq(code, 0, "promote exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(out, "production's schema is now the rehearsal's dev side's");
	ASSERT_HAS(out, "promoted: 2 migrations applied");
	/* the tool's table as golang-migrate keeps it, the schema as rehearsed */
	assert_value("SELECT version || ':' || dirty FROM schema_migrations", "2:false");
	assert_value("SELECT count(*) FROM pg_attribute WHERE attrelid = 'orders'::regclass AND attname = 'note'", "1");
	assert_value("SELECT count(*) FROM pg_indexes WHERE indexname = 'orders_total_idx'", "1");
	{
		/* the record beside the manifest */
		char *latest = path_join(dir, ".twinstage/reports/latest");
		DIR *d = opendir(latest);
		struct dirent *de;
		json_t *rec = NULL;

		cr_assert(d);
		while ((de = readdir(d)))
			if (!strncmp(de->d_name, "promotion-", 10)) {
				char *p = path_join(latest, de->d_name);

				rec = json_load_file(p, 0, NULL);
				free(p);
			}
		closedir(d);
		free(latest);
		cr_assert(rec, "no promotion record beside the manifest");
		cr_assert_str_eq(json_string_value(json_object_get(rec, "result")), "promoted");
		cr_assert(json_is_true(json_object_get(json_object_get(rec, "production_after"), "matches_rehearsal")));
		cr_assert_eq(json_array_size(json_object_get(rec, "migrations")), 2);
		json_decref(rec);
	}

	/* a second promote: nothing pending */
	strbuf_reset(&out);
	code = th_twinstage(dir, &out, &err, "promote", "--manifest", MANIFEST, NULL);
	cr_assert_eq(code, 0, "second promote exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(out, "nothing to promote: production already has every rehearsed migration");
	assert_value("SELECT version FROM schema_migrations", "2");

	/* no password in any output or file */
	cr_assert(!strstr(out.buf, "s3cretpw") && !strstr(err.buf, "s3cretpw") && !strstr(out.buf, "t4rgetpw") &&
		  !strstr(err.buf, "t4rgetpw"), "a password was printed:\n%s\n%s", out.buf, err.buf);
	cr_assert(!th_tree_contains(wd, "s3cretpw") && !th_tree_contains(wd, "t4rgetpw"),
		  "a password reached a file under the workdir");
	free(wd);
}

Test(release, a_migration_edited_after_the_rehearsal_is_refused)
{
	int code;

	shop(NULL);
	golang_migrations();
	rehearse_ok();
	th_write(dir, "migrations/2_total_idx.up.sql", "CREATE INDEX orders_total_idx ON orders (total, id);\n");
	code = th_twinstage(dir, &out, &err, "promote", "--manifest", MANIFEST, NULL);
	cr_assert_eq(code, 1, "promote exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(out, "migrations/2_total_idx.up.sql changed since the rehearsal");
	ASSERT_HAS(err, "promote refused: the manifest no longer holds");
	assert_value("SELECT count(*) FROM pg_class WHERE relname IN ('schema_migrations', 'orders_total_idx')", "0");

	/* and a migration nobody rehearsed */
	th_write(dir, "migrations/2_total_idx.up.sql", "CREATE INDEX orders_total_idx ON orders (total);\n");
	th_write(dir, "migrations/3_more.up.sql", "ALTER TABLE orders ADD COLUMN more int;\n");
	strbuf_reset(&out);
	code = th_twinstage(dir, &out, &err, "verify", "--manifest", MANIFEST, NULL);
	cr_assert_eq(code, 1, "verify exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(out, "migrations/3_more.up.sql was not rehearsed: it is new since the rehearsal");
	cr_assert(!strstr(out.buf, "2_total_idx.up.sql changed"), "restored, it holds again:\n%s", out.buf);
}

Test(release, a_production_that_changed_since_is_refused_naming_the_change)
{
	int code;

	shop(NULL);
	golang_migrations();
	rehearse_ok();
	/* a hotfix lands on production */
	th_sql(prod.conninfo, "ALTER TABLE orders ADD COLUMN hotfix boolean");
	code = th_twinstage(dir, &out, &err, "verify", "--manifest", MANIFEST, NULL);
	cr_assert_eq(code, 1, "verify exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(out, "production's schema changed since the rehearsal: column public.orders.hotfix added");
	strbuf_reset(&out);
	code = th_twinstage(dir, &out, &err, "promote", "--manifest", MANIFEST, NULL);
	cr_assert_eq(code, 1, "promote exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(out, "column public.orders.hotfix added");
	assert_value("SELECT count(*) FROM pg_class WHERE relname = 'schema_migrations'", "0");
}

Test(release, a_failing_rehearsal_cannot_be_promoted)
{
	int code;

	shop(NULL);
	/* the live version reads total: dropping it breaks it */
	th_write(dir, "migrations/1_drop_total.up.sql", "ALTER TABLE orders DROP COLUMN total;\n");
	code = th_twinstage(dir, &out, &err, "rehearse", "-q", NULL);
	cr_assert_eq(code, 1, "rehearse exit %d\n%s", code, err.buf);
	strbuf_reset(&err);
	code = th_twinstage(dir, &out, &err, "promote", "--manifest", MANIFEST, NULL);
	cr_assert_eq(code, 1, "promote exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(err, "promote refused: the rehearsal did not pass (incompatible");
	assert_value("SELECT count(*) FROM pg_attribute WHERE attrelid = 'orders'::regclass AND attname = 'total'", "1");
}

/* Flyway: a transactional migration that takes an ACCESS EXCLUSIVE lock. */
static void flyway_migration(void)
{
	th_write(dir, "migrations/V1__note.sql", "ALTER TABLE orders ADD COLUMN note text;\n"
						 "UPDATE orders SET note = 'x' WHERE id = 1;\n");
}

/* A session of the application that holds a lock on orders until told. */
static PGconn *hold_lock(void)
{
	PGconn *c = PQconnectdb(prod.conninfo);

	cr_assert_eq(PQstatus(c), CONNECTION_OK);
	PQclear(PQexec(c, "BEGIN"));
	PQclear(PQexec(c, "SELECT count(*) FROM orders"));	/* ACCESS SHARE, held until COMMIT */
	return c;
}

Test(release, a_lock_held_on_production_is_waited_for_under_lock_timeout_and_retried)
{
	struct th_bg b;
	PGconn *app;
	int code, listed = 0;

	shop(NULL);
	flyway_migration();
	rehearse_ok();
	app = hold_lock();
	th_bg_start(&b, dir, "promote", "--manifest", MANIFEST, "--lock-timeout", "200ms", "--retries", "50", NULL);
	/* it gave up waiting once, and will try again: the lock is released now */
	th_bg_wait_for_line(&b, "no lock within lock_timeout = 200 ms");
	{
		struct strbuf ps = STRBUF_INIT;

		cr_assert_eq(th_run(&ps, "ps", "-eo", "args", NULL), 0);
		listed = strstr(ps.buf, "promote --manifest") != NULL;
		cr_assert(!strstr(ps.buf, "t4rgetpw") && !strstr(ps.buf, "s3cretpw"),
			  "a password is in the process list:\n%s", ps.buf);
		strbuf_release(&ps);
	}
	cr_assert(listed, "ps never listed promote: the check would see nothing");
	/* while it waits, nothing of it is applied: the application is never blocked for long */
	{
		PGresult *res = PQexec(app, "SELECT count(*) FROM information_schema.columns WHERE column_name = 'note'");

		cr_assert_str_eq(PQgetvalue(res, 0, 0), "0");
		PQclear(res);
	}
	PQclear(PQexec(app, "COMMIT"));
	code = th_bg_finish(&b, &err);
	cr_assert_eq(code, 0, "promote exit %d\n%s", code, err.buf);
	ASSERT_HAS(err, "V1__note.sql: applied in");
	assert_value("SELECT note FROM orders WHERE id = 1", "x");
	assert_value("SELECT count(*) FROM flyway_schema_history WHERE version = '1' AND success", "1");
	PQfinish(app);
}

Test(release, a_lock_never_released_gives_up_with_nothing_half_applied)
{
	PGconn *app;
	int code;

	shop(NULL);
	flyway_migration();
	rehearse_ok();
	app = hold_lock();
	code = th_twinstage(dir, &out, &err, "promote", "--manifest", MANIFEST, "--lock-timeout", "100ms",
			    "--retries", "2", NULL);
	cr_assert_eq(code, 1, "promote exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(out, "55P03: canceling statement due to lock timeout (tried 3 times)");
	/* rolled back whole: the column is not there, and Flyway's table lists nothing */
	PQclear(PQexec(app, "COMMIT"));
	assert_value("SELECT count(*) FROM pg_attribute WHERE attrelid = 'orders'::regclass AND attname = 'note'", "0");
	assert_value("SELECT count(*) FROM flyway_schema_history WHERE version = '1'", "0");
	ASSERT_HAS(out, "production's flyway table is at version none");
	/* and once the application lets go, the same manifest promotes */
	strbuf_reset(&out);
	code = th_twinstage(dir, &out, &err, "promote", "--manifest", MANIFEST, NULL);
	cr_assert_eq(code, 0, "promote exit %d\n%s\n%s", code, out.buf, err.buf);
	PQfinish(app);
}

Test(release, a_rollout_is_promoted_phase_by_phase_in_order)
{
	int code;

	shop("\n[phase expand]\nmigrations = 1\napps = v1\n\n[phase index]\nmigrations = 2\napps = v1\n");
	golang_migrations();
	rehearse_ok();
	code = th_twinstage(dir, &out, &err, "promote", "--manifest", MANIFEST, NULL);
	cr_assert_eq(code, 2, "promote exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(err, "the rehearsal is a rollout in 2 phases: promote one at a time, with --phase NAME");

	strbuf_reset(&out);
	code = th_twinstage(dir, &out, &err, "promote", "--manifest", MANIFEST, "--phase", "index", NULL);
	cr_assert_eq(code, 1, "promote --phase index exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(out, "production is as the rehearsal found it, not where this phase starts");
	ASSERT_HAS(out, "promote the phases before it first");
	assert_value("SELECT count(*) FROM pg_class WHERE relname = 'schema_migrations'", "0");

	strbuf_reset(&out);
	code = th_twinstage(dir, &out, &err, "promote", "--manifest", MANIFEST, "--phase", "expand", NULL);
	cr_assert_eq(code, 0, "promote --phase expand exit %d\n%s\n%s", code, out.buf, err.buf);
	assert_value("SELECT version FROM schema_migrations", "1");
	strbuf_reset(&out);
	code = th_twinstage(dir, &out, &err, "promote", "--manifest", MANIFEST, "--phase", "index", NULL);
	cr_assert_eq(code, 0, "promote --phase index exit %d\n%s\n%s", code, out.buf, err.buf);
	assert_value("SELECT version FROM schema_migrations", "2");
	assert_value("SELECT count(*) FROM pg_indexes WHERE indexname = 'orders_total_idx'", "1");
}

Test(release, the_write_credentials_never_come_from_the_command_line_with_a_password)
{
	int code;

	shop(NULL);
	golang_migrations();
	rehearse_ok();
	unsetenv("TWINSTAGE_TARGET_DSN");
	/* the source stays read-only: without a target, promote writes nowhere */
	code = th_twinstage(dir, &out, &err, "promote", "--manifest", MANIFEST, NULL);
	cr_assert_eq(code, 2, "promote exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(err, "promote needs production's connection string, to write there");
	strbuf_reset(&err);
	code = th_twinstage(dir, &out, &err, "promote", "--manifest", MANIFEST, "--dsn",
			    "postgresql://postgres:t4rgetpw@127.0.0.1:1/shop", NULL);
	cr_assert_eq(code, 2, "promote exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(err, "--dsn holds a password");
	cr_assert(!strstr(err.buf, "t4rgetpw"));
	assert_value("SELECT count(*) FROM pg_class WHERE relname = 'schema_migrations'", "0");
}
