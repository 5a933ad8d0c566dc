/*
 * test_tools.c: migrations that are code, run by the team's own tool for
 * real (Django, Alembic, Sqitch, ActiveRecord, a command of its own) on
 * the dev side, and what twinstage saw the server run: the statements
 * grouped by the tool's migrations, their locks and rewrites, the live
 * version's verdict, the way back, failures, phases.
 *
 * Projects are copied from scenarios/ into a folder whose path has a space,
 * as a user's would; "production" is a real cluster migrated by the tool
 * itself where the test says so.
 */
#include "core/run_command.h"
#include "core/strbuf.h"
#include "core/util.h"
#include "core/wrapper.h"
#include "helpers.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ASSERT_HAS TH_ASSERT_HAS

static char *dir, *proj;
static struct strbuf out = STRBUF_INIT, err = STRBUF_INIT;
static struct th_cluster prod;
static int prod_up;

static void setup(void)
{
	dir = th_tmpdir();
	proj = path_join(dir, "my shop");
	strbuf_reset(&out);
	strbuf_reset(&err);
}

static void teardown(void)
{
	th_twinstage(proj, NULL, NULL, "down", "-q", NULL);
	if (prod_up)
		th_cluster_stop(&prod);
	prod_up = 0;
	th_rmtree(dir);
	free(proj);
	free(dir);
}

TestSuite(tools, .init = setup, .fini = teardown, .timeout = 300);

/* A copy of scenarios/<example> in "my shop", its include pointing at this tree's envs/. */
static void copy_example(const char *example)
{
	char *rel = xstrfmt("scenarios/%s", example), *src = th_src(rel), *envs = th_src("envs/local.ini");
	const char *inis[] = { "twinstage.ini", "twinstage-rename.ini", NULL };

	cr_assert_eq(th_run(NULL, "cp", "-r", src, proj, NULL), 0);
	for (int i = 0; inis[i]; i++) {
		char *ini = th_read(proj, inis[i]), *at, *fixed;

		if (!ini)
			continue;
		at = strstr(ini, "include = ../../envs/local.ini");
		cr_assert(at, "%s names no include", inis[i]);
		fixed = xstrfmt("%.*sinclude = %s%s", (int)(at - ini), ini, envs, at + strlen("include = ../../envs/local.ini"));
		th_write(proj, inis[i], fixed);
		free(fixed);
		free(ini);
	}
	/* what a rehearsal of the source tree may have left there is not the copy's */
	{
		char *a = path_join(proj, ".twinstage"), *b = path_join(proj, ".twinstage-rename");

		th_rmtree(a);
		th_rmtree(b);
		free(a);
		free(b);
	}
	free(rel);
	free(src);
	free(envs);
}

/* Appends text to a file of the project. */
static void append(const char *rel, const char *text)
{
	char *was = th_read(proj, rel), *now = xstrfmt("%s%s", was ? was : "", text);

	th_write(proj, rel, now);
	free(now);
	free(was);
}

/* Replaces the first `was` in a file of the project by `now`. */
static void replace(const char *rel, const char *was, const char *now)
{
	char *text = th_read(proj, rel), *at = text ? strstr(text, was) : NULL, *fixed;

	cr_assert(at, "%s holds no \"%s\"", rel, was);
	fixed = xstrfmt("%.*s%s%s", (int)(at - text), text, now, at + strlen(was));
	th_write(proj, rel, fixed);
	free(fixed);
	free(text);
}

/* Replaces the [source] seed line with a dsn to the test's production cluster. */
static void source_is_prod(const char *ini_name)
{
	char *dsn = xstrfmt("dsn = postgresql://postgres@127.0.0.1:%d/shop", prod.env.prod.port);

	replace(ini_name, "seed = seed.sql", dsn);
	free(dsn);
}

/* Runs the tool itself against production (argv NULL-terminated), in the project. */
static void tool_on_prod(const char *arg0, ...)
{
	struct child_process cp = CHILD_PROCESS_INIT;
	struct strbuf said = STRBUF_INIT;
	va_list ap;
	const char *a;
	int code;

	strvec_push(&cp.args, arg0);
	va_start(ap, arg0);
	while ((a = va_arg(ap, const char *)))
		strvec_push(&cp.args, a);
	va_end(ap);
	strvec_pushl(&cp.env, "PGHOST=127.0.0.1", "PGUSER=postgres", "PGDATABASE=shop", NULL);
	strvec_pushf(&cp.env, "PGPORT=%d", prod.env.prod.port);
	strvec_pushf(&cp.env, "DATABASE_URL=postgresql://postgres@127.0.0.1:%d/shop", prod.env.prod.port);
	strvec_pushf(&cp.env, "SQITCH_TARGET=db:pg://postgres@127.0.0.1:%d/shop", prod.env.prod.port);
	cp.dir = proj;
	cp.capture = &said;
	cp.no_stdin = 1;
	code = run_command(&cp);
	cr_assert_eq(code, 0, "%s on production exited %d:\n%s", arg0, code, said.buf);
	child_process_clear(&cp);
	strbuf_release(&said);
}

static void prod_start(void)
{
	th_cluster_start(&prod, "shop");
	prod_up = 1;
}

static json_t *report(const char *workdir)
{
	char *wd = path_join(proj, workdir);
	json_t *o = th_latest_report(wd);

	free(wd);
	return o;
}

/* Writes twinstage.ini (ini, freed), rehearses, and returns the report of a run that passed. */
static json_t *rehearse_passes(char *ini)
{
	int code;

	th_write(proj, "twinstage.ini", ini);
	free(ini);
	code = th_twinstage(proj, &out, &err, "rehearse", "-q", NULL);
	cr_assert_eq(code, 0, "exit %d\n%s\n%s", code, out.buf, err.buf);
	return report(".twinstage");
}

static json_t *migration(json_t *rep, size_t i)
{
	return json_array_get(json_object_get(rep, "migrations"), i);
}

static const char *str(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* The statement of migration m whose text holds `needle`, or NULL. */
static json_t *statement(json_t *m, const char *needle)
{
	json_t *s;
	size_t i;

	json_array_foreach(json_object_get(m, "statements"), i, s)
		if (strstr(str(s, "sql"), needle))
			return s;
	return NULL;
}

/* Whether statement s held a lock of mode on table, blocking writes or not as said. */
static int held(json_t *s, const char *table, const char *mode, int blocking)
{
	json_t *l;
	size_t i;

	json_array_foreach(json_object_get(json_object_get(s, "facts"), "locks"), i, l)
		if (!strcmp(str(l, "relation"), table) && !strcmp(str(l, "mode"), mode) &&
		    json_is_true(json_object_get(l, "blocking")) == blocking)
			return 1;
	return 0;
}

static json_t *data_check(json_t *rep, const char *check)
{
	json_t *d;
	size_t i;

	json_array_foreach(json_object_get(rep, "data"), i, d)
		if (!strcmp(str(d, "check"), check))
			return d;
	return NULL;
}

/*
 * The expand step as many teams first write it: the AddField and its
 * RunPython backfill in one migration, which Django runs in one
 * transaction on PostgreSQL (the example splits them, 0002 and 0003).
 */
static void django_one_atomic_migration(void)
{
	char *gone = path_join(proj, "shop/migrations/0003_copy_names.py");

	th_write(proj, "shop/migrations/0002_customer_name.py",
		 "from django.db import migrations, models\n\n\n"
		 "def copy_names(apps, schema_editor):\n"
		 "    Order = apps.get_model(\"shop\", \"Order\")\n"
		 "    for order in Order.objects.filter(customer_name__isnull=True):\n"
		 "        order.customer_name = order.customer\n"
		 "        order.save(update_fields=[\"customer_name\"])\n\n\n"
		 "class Migration(migrations.Migration):\n"
		 "    dependencies = [(\"shop\", \"0001_initial\")]\n"
		 "    operations = [\n"
		 "        migrations.AddField(\"order\", \"customer_name\", models.CharField(max_length=100, null=True)),\n"
		 "        migrations.RunPython(copy_names, migrations.RunPython.noop),\n"
		 "    ]\n");
	cr_assert_eq(unlink(gone), 0);
	free(gone);
}

Test(tools, django_runs_only_what_production_lacks_and_its_data_migration_is_checked)
{
	json_t *rep, *m, *s;
	int code;

	copy_example("django-shop");
	django_one_atomic_migration();
	/* production migrated by Django itself to 0001, with its orders */
	prod_start();
	tool_on_prod("/usr/bin/python3", "manage.py", "migrate", "shop", "0001", "--noinput", NULL);
	th_sql(prod.conninfo, "INSERT INTO shop_order (customer, amount) SELECT 'c' || (i % 7), i FROM generate_series(1, 300) i");
	source_is_prod("twinstage.ini");
	append("twinstage.ini", "\n[load]\nenabled = false\n");
	code = th_twinstage(proj, &out, &err, "rehearse", "-q", NULL);
	cr_assert_eq(code, 0, "exit %d\n%s\n%s", code, out.buf, err.buf);
	rep = report(".twinstage");
	/* pending is what production's table lacks: 0001 is not run again */
	cr_assert_eq(json_array_size(json_object_get(rep, "migrations")), 1, "%s", out.buf);
	m = migration(rep, 0);
	cr_assert_str_eq(str(m, "file"), "shop.0002_customer_name");
	cr_assert_str_eq(str(json_object_get(rep, "tracking"), "dev_before"), "shop.0001_initial");
	cr_assert_str_eq(str(json_object_get(rep, "tracking"), "dev_after"), "shop.0002_customer_name");
	/* what the server ran: the ALTER holding ACCESS EXCLUSIVE through the backfill, the UPDATE per row */
	s = statement(m, "ADD COLUMN \"customer_name\"");
	cr_assert(s, "no ADD COLUMN among the statements:\n%s", out.buf);
	cr_assert(held(s, "public.shop_order", "AccessExclusiveLock", 1), "the ALTER's lock was not seen:\n%s", out.buf);
	s = statement(m, "UPDATE \"shop_order\" SET \"customer_name\"");
	cr_assert(s, "no backfill UPDATE:\n%s", out.buf);
	cr_assert_eq(json_integer_value(json_object_get(json_object_get(json_object_get(s, "facts"), "repeated"), "times")),
		     300);
	/* RunPython read every row and wrote them back: [equal] says each name was copied */
	cr_assert_str_eq(str(data_check(rep, "equal"), "status"), "passed");
	/* and Django's own way back (migrate shop 0001_initial) restored the schema */
	cr_assert_str_eq(str(data_check(rep, "rollback"), "status"), "passed", "%s", out.buf);
	json_decref(rep);
}

/* The load's findings for a tool as for files: who waited, on which of its statements. */
Test(tools, the_live_version_queued_behind_djangos_lock_is_a_stall_tied_to_its_statement)
{
	json_t *rep, *stall;
	int code;

	copy_example("django-shop");
	django_one_atomic_migration();
	append("twinstage.ini", "\n[gate]\nmax_stall_ms = 50\nmax_lock_ms = 0\nddt = off\nrollback = off\n");
	code = th_twinstage(proj, &out, &err, "rehearse", NULL);
	cr_assert_eq(code, 1, "exit %d\n%s\n%s", code, out.buf, err.buf);
	rep = report(".twinstage");
	stall = json_object_get(json_array_get(json_object_get(rep, "load"), 0), "stall");
	cr_assert(json_is_object(stall), "no stall recorded:\n%s", out.buf);
	/* v1's writes queued behind the ADD COLUMN's lock, held through the backfill */
	cr_assert_str_eq(str(stall, "migration"), "shop.0002_customer_name:1", "%s", out.buf);
	cr_assert_str_eq(str(stall, "app"), "v1");
	cr_assert(json_number_value(json_object_get(stall, "ms")) > 50, "%s", out.buf);
	ASSERT_HAS(out, "verdict: incompatible - shop.0002_customer_name:1 kept v1 01_orders.sql:");
	ASSERT_HAS(out, "over gate.max_stall_ms = 50: users would have waited that long");
	json_decref(rep);
}

Test(tools, django_renaming_in_one_step_breaks_the_live_version_even_while_it_migrates)
{
	json_t *rep, *c;
	size_t i;
	int code, during = 0;

	copy_example("django-shop");
	code = th_twinstage(proj, &out, &err, "rehearse", "-c", "twinstage-rename.ini", "-q", NULL);
	cr_assert_eq(code, 1, "exit %d\n%s\n%s", code, out.buf, err.buf);
	rep = report(".twinstage-rename");
	c = json_array_get(json_object_get(rep, "schema"), 0);
	cr_assert_str_eq(str(c, "class"), "breaking");
	/* tied to the tool's migration, by the statement that did it */
	cr_assert_str_eq(str(c, "file"), "shop.0002_rename_customer");
	cr_assert_eq(json_integer_value(json_object_get(c, "line")), 1);
	ASSERT_HAS(out, "verdict: incompatible - v1 fails on the migrated dev side");
	/* the load ran v1 while Django migrated, and saw it fail then */
	json_array_foreach(json_object_get(rep, "checks"), i, c)
		during |= !strcmp(str(c, "role"), "during migration") && json_integer_value(json_object_get(c, "failed")) > 0;
	cr_assert(during, "the load did not see v1 fail while Django migrated:\n%s", out.buf);
	json_decref(rep);
}

/* Alembic: a revision after b2 that changes a column's type (a rewrite). */
static void alembic_c3(const char *body)
{
	char *py = xstrfmt("\"\"\"c3\n\nRevision ID: c3\nRevises: b2\n\"\"\"\nfrom alembic import op\nimport sqlalchemy as sa\n\n"
			   "revision = \"c3\"\ndown_revision = \"b2\"\nbranch_labels = None\ndepends_on = None\n\n\n"
			   "def upgrade():\n%s\n\ndef downgrade():\n"
			   "    op.alter_column(\"orders\", \"amount\", type_=sa.Integer)\n",
			   body);

	th_write(proj, "migrations/versions/c3.py", py);
	free(py);
}

Test(tools, alembic_shows_an_index_built_without_concurrently_and_a_rewrite)
{
	json_t *rep, *b2, *c3, *s;
	int code;

	copy_example("alembic-shop");
	alembic_c3("    op.alter_column(\"orders\", \"amount\", type_=sa.BigInteger)\n");
	append("twinstage.ini", "\n[load]\nenabled = false\n");
	code = th_twinstage(proj, &out, &err, "rehearse", "-q", NULL);
	cr_assert_eq(code, 0, "exit %d\n%s\n%s", code, out.buf, err.buf);
	rep = report(".twinstage");
	cr_assert_eq(json_array_size(json_object_get(rep, "migrations")), 2, "%s", out.buf);
	b2 = migration(rep, 0);
	c3 = migration(rep, 1);
	cr_assert_str_eq(str(b2, "file"), "b2");
	cr_assert_str_eq(str(c3, "file"), "c3");
	s = statement(b2, "CREATE INDEX orders_customer_name_idx");
	cr_assert(s && held(s, "public.orders", "ShareLock", 1), "the index build's lock was not seen:\n%s", out.buf);
	ASSERT_HAS(out, "[index-not-concurrent]");
	s = statement(c3, "TYPE BIGINT");
	cr_assert(s, "no type change among c3's statements:\n%s", out.buf);
	cr_assert_str_eq(json_string_value(json_array_get(json_object_get(json_object_get(s, "facts"), "rewrites"), 0)),
			 "public.orders", "the rewrite was not seen:\n%s", out.buf);
	/* the way back: alembic downgrade a1, production's revision */
	cr_assert_str_eq(str(data_check(rep, "rollback"), "status"), "passed", "%s", out.buf);
	json_decref(rep);
}

Test(tools, a_failing_tool_is_a_failed_migration_with_the_servers_error)
{
	json_t *rep, *m;
	int code;

	copy_example("alembic-shop");
	alembic_c3("    op.execute(\"ALTER TABLE orders ADD COLUMN total numeric\")\n"
		   "    op.execute(\"UPDATE orders SET total = amount / 0\")\n");
	append("twinstage.ini", "\n[load]\nenabled = false\n");
	code = th_twinstage(proj, &out, &err, "rehearse", "-q", NULL);
	cr_assert_eq(code, 1, "exit %d\n%s\n%s", code, out.buf, err.buf);
	rep = report(".twinstage");
	m = migration(rep, 1);
	cr_assert_str_eq(str(m, "status"), "failed");
	cr_assert(strstr(str(m, "error"), "22012: division by zero (the statement: UPDATE orders SET total = amount / 0"),
		  "%s", str(m, "error"));
	/* Alembic ran b2 in the same transaction: it went with it */
	cr_assert_str_eq(str(migration(rep, 0), "status"), "rolled back");
	cr_assert_str_eq(str(json_object_get(rep, "tracking"), "dev_after"), "a1");
	json_decref(rep);
}

Test(tools, a_tool_that_is_not_installed_is_an_environment_error_with_a_hint)
{
	int code;

	copy_example("alembic-shop");
	replace("twinstage.ini", "command = alembic upgrade head", "command = alembic-not-here upgrade head");
	code = th_twinstage(proj, &out, &err, "rehearse", "-q", NULL);
	cr_assert_eq(code, 3, "exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(err, "alembic's command \"alembic-not-here\" is not installed here (not found on PATH)");
	ASSERT_HAS(err, "apt-get install alembic");
	th_assert_nothing_left(path_join(proj, ".twinstage"));
}

Test(tools, alembic_rehearses_a_rollout_release_by_release)
{
	json_t *rep;
	int code;

	copy_example("alembic-shop");
	alembic_c3("    op.alter_column(\"orders\", \"amount\", type_=sa.BigInteger)\n");
	append("twinstage.ini", "\n[load]\nenabled = false\n\n"
				"[phase expand]\ncommand = alembic upgrade b2\napps = v1, v2\n\n"
				"[phase widen]\ncommand = alembic upgrade c3\napps = v2\n");
	code = th_twinstage(proj, &out, &err, "rehearse", "-q", NULL);
	cr_assert_eq(code, 0, "exit %d\n%s\n%s", code, out.buf, err.buf);
	rep = report(".twinstage");
	cr_assert_str_eq(str(migration(rep, 0), "file"), "b2");
	cr_assert_str_eq(str(migration(rep, 0), "phase"), "expand");
	cr_assert_str_eq(str(migration(rep, 1), "file"), "c3");
	cr_assert_str_eq(str(migration(rep, 1), "phase"), "widen");
	/* each phase's way back (alembic downgrade to where it started) was rehearsed */
	ASSERT_HAS(out, "rollback of phase expand");
	ASSERT_HAS(out, "rollback of phase widen");
	json_decref(rep);
}

Test(tools, sqitch_deploys_what_production_lacks_through_psql_and_reverts)
{
	json_t *rep, *m;

	mkdir_p(proj, 0755);
	th_write(proj, "sqitch.conf", "[core]\n\tengine = pg\n");
	th_write(proj, "sqitch.plan", "%syntax-version=1.0.0\n%project=shop\n\n"
				      "orders 2026-12-01T10:00:00Z Dev <dev@example.com> # orders\n"
				      "orders_note [orders] 2026-12-01T11:00:00Z Dev <dev@example.com> # a note\n");
	th_write(proj, "deploy/orders.sql", "BEGIN;\nCREATE TABLE orders (id bigserial PRIMARY KEY, customer text NOT NULL);\nCOMMIT;\n");
	th_write(proj, "revert/orders.sql", "BEGIN;\nDROP TABLE orders;\nCOMMIT;\n");
	th_write(proj, "verify/orders.sql", "SELECT id FROM orders WHERE false;\n");
	th_write(proj, "deploy/orders_note.sql", "BEGIN;\nALTER TABLE orders ADD COLUMN note text;\n"
						 "CREATE INDEX orders_customer_idx ON orders (customer);\nCOMMIT;\n");
	th_write(proj, "revert/orders_note.sql", "BEGIN;\nDROP INDEX orders_customer_idx;\nALTER TABLE orders DROP COLUMN note;\nCOMMIT;\n");
	th_write(proj, "verify/orders_note.sql", "SELECT note FROM orders WHERE false;\n");
	th_write(proj, "apps/v1/01.sql", "-- @expect rows 1\nINSERT INTO orders (customer) VALUES ('acme');\n");
	/* production deployed by Sqitch itself to the first change */
	prod_start();
	tool_on_prod("sqitch", "deploy", "--to", "orders", NULL);
	rep = rehearse_passes(xstrfmt("[project]\nname = shop\ntool = sqitch\nmigrations = deploy\n\n"
				    "[source]\ndsn = postgresql://postgres@127.0.0.1:%d/shop\n\n"
				    "[app v1]\nscenarios = apps/v1\n[rehearsal]\ncurrent = v1\n[load]\nenabled = false\n",
				    prod.env.prod.port));
	cr_assert_eq(json_array_size(json_object_get(rep, "migrations")), 1, "%s", out.buf);
	m = migration(rep, 0);
	cr_assert_str_eq(str(m, "file"), "orders_note");
	/* psql ran the script; its statements are the change's, not the registry's */
	cr_assert(statement(m, "ALTER TABLE orders ADD COLUMN note text"), "%s", out.buf);
	cr_assert(statement(m, "CREATE INDEX orders_customer_idx"), "%s", out.buf);
	cr_assert(!statement(m, "sqitch."), "the registry's writes are shown:\n%s", out.buf);
	cr_assert_str_eq(str(json_object_get(rep, "tracking"), "prod_version"), "orders");
	cr_assert_str_eq(str(data_check(rep, "rollback"), "status"), "passed", "%s", out.buf);
	json_decref(rep);
}

Test(tools, activerecord_migrations_run_as_rails_runs_them)
{
	json_t *rep, *m;

	mkdir_p(proj, 0755);
	/* ActiveRecord without the rest of Rails, with db:migrate [VERSION=N] as bin/rails takes it */
	th_write(proj, "migrate.rb", "require \"active_record\"\n"
				     "ActiveRecord::Base.establish_connection(ENV.fetch(\"DATABASE_URL\"))\n"
				     "version = ARGV.find { |a| a.start_with?(\"VERSION=\") }&.split(\"=\", 2)&.last\n"
				     "ActiveRecord::MigrationContext.new(\"db/migrate\", ActiveRecord::SchemaMigration).migrate(version&.to_i)\n");
	th_write(proj, "db/migrate/1_create_orders.rb", "class CreateOrders < ActiveRecord::Migration[6.1]\n  def change\n"
							"    create_table :orders do |t|\n      t.string :customer, null: false\n    end\n  end\nend\n");
	th_write(proj, "db/migrate/2_add_note.rb", "class AddNote < ActiveRecord::Migration[6.1]\n  def change\n"
						   "    add_column :orders, :note, :text\n    add_index :orders, :customer\n  end\nend\n");
	th_write(proj, "apps/v1/01.sql", "-- @expect rows 1\nINSERT INTO orders (customer) VALUES ('acme');\n");
	prod_start();
	tool_on_prod("ruby", "migrate.rb", "db:migrate", "VERSION=1", NULL);
	rep = rehearse_passes(xstrfmt("[project]\nname = shop\ntool = rails\nmigrations = db/migrate\n\n"
				    "[migrate]\ncommand = ruby migrate.rb db:migrate\n\n"
				    "[source]\ndsn = postgresql://postgres@127.0.0.1:%d/shop\n\n"
				    "[app v1]\nscenarios = apps/v1\n[rehearsal]\ncurrent = v1\n[load]\nenabled = false\n",
				    prod.env.prod.port));
	m = migration(rep, 0);
	cr_assert_str_eq(str(m, "file"), "2");
	cr_assert(statement(m, "ADD \"note\" text"), "%s", out.buf);
	cr_assert(statement(m, "CREATE INDEX \"index_orders_on_customer\""), "%s", out.buf);
	cr_assert(!statement(m, "ar_internal_metadata") && !statement(m, "schema_migrations"),
		  "the tool's books are shown:\n%s", out.buf);
	/* the way back: the same command, to production's version */
	cr_assert_str_eq(str(data_check(rep, "rollback"), "status"), "passed", "%s", out.buf);
	json_decref(rep);
}

Test(tools, a_command_of_the_teams_own_is_one_migration_with_its_way_back)
{
	json_t *rep, *m;

	copy_example("alembic-shop");
	th_write(proj, "up.sql", "ALTER TABLE orders ADD COLUMN note text;\nUPDATE orders SET note = 'x' WHERE id < 10;\n");
	th_write(proj, "down.sql", "ALTER TABLE orders DROP COLUMN note;\n");
	rep = rehearse_passes(xstrfmt("[project]\nname = shop\ntool = command\n\n"
				    "[migrate]\ncommand = psql -v ON_ERROR_STOP=1 -X -q -f up.sql\n"
				    "down = psql -v ON_ERROR_STOP=1 -X -q -f down.sql\n\n"
				    "[source]\nseed = seed.sql\n\n[app v1]\nscenarios = apps/v1\n[rehearsal]\ncurrent = v1\n"
				    "[load]\nenabled = false\n[environments]\ninclude = %s\n", th_src("envs/local.ini")));
	cr_assert_eq(json_array_size(json_object_get(rep, "migrations")), 1, "%s", out.buf);
	m = migration(rep, 0);
	cr_assert_str_eq(str(m, "file"), "psql -v ON_ERROR_STOP=1 -X -q -f up.sql");
	cr_assert(statement(m, "ALTER TABLE orders ADD COLUMN note text"), "%s", out.buf);
	cr_assert(statement(m, "UPDATE orders SET note"), "%s", out.buf);
	cr_assert_str_eq(str(data_check(rep, "rollback"), "status"), "passed", "%s", out.buf);
	json_decref(rep);
}
