/*
 * test_phases.c: a rollout in several releases as a user rehearses it:
 * the phase that breaks a live version is named with the version and its
 * scenario, a backfill that skips rows fails its phase's equal check,
 * batched backfills run in batches, and [phase] sections that do not match
 * the migrations are refused with the line that is wrong.
 */
#include "config/config.h"
#include "config/phase_plan.h"
#include "core/error.h"
#include "core/strbuf.h"
#include "core/util.h"
#include "core/wrapper.h"
#include "migrate/migrate.h"
#include "migrate/tracking.h"
#include "helpers.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

TH_PROJECT_SUITE(phases);

#define ASSERT_HAS TH_ASSERT_HAS

/* The four phases of the invoices example, with v3, over these migrations. */
static void rollout_project(const char *v3_to_v4, const char *v4_to_v5)
{
	char *v3 = th_src("scenarios/invoices/apps/v3");
	char *ini = xstrfmt("\n[app v3]\nscenarios = %s\n"
			    "[phase 1]\ntitle = expand\nmigrations = 1-2\napps = v1, v2\n"
			    "[phase 2]\ntitle = backfill\nmigrations = 3\napps = v2\nequal = inovices invoices\n"
			    "[phase 3]\ntitle = read new, stop writing old\nmigrations = 4\napps = v2, v3\n"
			    "[phase 4]\ntitle = delete old\nmigrations = 5\napps = v3\n", v3);
	char *src = th_src("scenarios/invoices/migrations");
	static const char *const files[] = { "V1__create_invoices.sql", "V2__invoices_by_customer.sql",
					     "U1__create_invoices.sql", "U2__invoices_by_customer.sql",
					     "V4__invoices_own_ids.sql", "U4__invoices_own_ids.sql",
					     "V5__drop_inovices.sql", NULL };

	th_project(dir, ini);
	for (size_t i = 0; files[i]; i++) {
		char *text = th_read(src, files[i]), *rel = xstrfmt("migrations/%s", files[i]);

		cr_assert(text, "example file %s is missing", files[i]);
		th_write(dir, rel, text);
		free(text);
		free(rel);
	}
	th_write(dir, "migrations/V3__backfill_invoices.sql", v3_to_v4);
	th_write(dir, "migrations/U3__backfill_invoices.sql", "SELECT 1;\n");
	if (v4_to_v5) {
		th_write(dir, "migrations/V4__invoices_own_ids.sql", v4_to_v5);
		th_write(dir, "migrations/U4__invoices_own_ids.sql", "SELECT 1;\n");
	}
	free(ini);
	free(src);
	free(v3);
}

static const char backfill[] =
	"-- twinstage:batch 1000\n"
	"INSERT INTO invoices (id, customer, amount, created_at)\n"
	"SELECT id, customer, amount, created_at FROM inovices o\n"
	"WHERE NOT EXISTS (SELECT 1 FROM invoices n WHERE n.id = o.id)\n"
	"ORDER BY id;\n";

Test(phases, dropping_the_old_table_while_v2_reads_it_fails_phase_3)
{
	int code;
	char *wd;
	json_t *rep;

	rollout_project(backfill, "DROP TABLE inovices;\n");
	code = th_twinstage(dir, &out, &err, "rehearse", NULL);
	cr_assert_eq(code, 1, "exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(out, "verdict: incompatible - phase 3 (read new, stop writing old): v2 fails on the dev side after phase 3: 01_invoices.sql:5 \"create invoice in both tables\"");
	ASSERT_HAS(out, "relation \"inovices\" does not exist");
	/* the matrix: phases 1 and 2 pass, phase 3 names v2's scenario, phase 4 still runs */
	ASSERT_HAS(out, "after phase 3 (read new, stop writing old)");
	ASSERT_HAS(out, "FAIL 0/3: \"create invoice in both tables\"");
	ASSERT_HAS(out, "after phase 4 (delete old)");
	wd = path_join(dir, ".twinstage");
	rep = th_latest_report(wd);
	cr_assert_eq(json_array_size(json_object_get(rep, "phases")), 4);
	json_decref(rep);
	free(wd);
}

Test(phases, a_backfill_that_skips_rows_fails_phase_2s_equal)
{
	int code;

	rollout_project("INSERT INTO invoices (id, customer, amount, created_at)\n"
			"SELECT id, customer, amount, created_at FROM inovices WHERE id <> 1234;\n", NULL);
	code = th_twinstage(dir, &out, &err, "rehearse", NULL);
	cr_assert_eq(code, 1, "exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(out, "verdict: incompatible - phase 2 (backfill): [equal inovices invoices] after phase 2");
	ASSERT_HAS(out, "first difference at id=1234 (3000 rows on the production clone, 2999 on the dev side)");
	/* phase 1 passed before it */
	ASSERT_HAS(out, "passed  rollback of phase 1");
	/* and that backfill cannot run twice: after its way back, it does not apply again */
	ASSERT_HAS(out, "failed  redo of phase 2: its migrations apply again after the way back: after the down migrations, phase 2 does not apply again: V3__backfill_invoices.sql:1: 23505: duplicate key value");
}

Test(phases, the_four_part_example_passes_every_phase)
{
	int code;
	char *ini = th_src("scenarios/invoices/twinstage.ini");

	code = th_twinstage(dir, &out, &err, "rehearse", "-c", ini, "--format", "markdown", NULL);
	cr_assert_eq(code, 0, "exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(out, "| after phase 4 (delete old) | (fail 0/5) | (fail 0/3) | pass 3/3 |");
	ASSERT_HAS(out, "3000 rows in 3 batches");
	ASSERT_HAS(out, "phase 4 has no down migrations");
	ASSERT_HAS(err, "3000 rows in 3 batches of 1000");
	/* both versions live before phase 2 are shown to work again after its way back */
	ASSERT_HAS(out, "v1 works again after the down migrations (5/5 scenarios); v2 works again after the down migrations (3/3 scenarios)");
	free(ini);
}

/* A project with no application versions: the batches alone, on `rows` accounts. */
static void batch_project(const char *backfill_sql, int rows)
{
	char *seed = xstrfmt("CREATE TABLE accounts (id bigint PRIMARY KEY, email text NOT NULL);\n"
			     "INSERT INTO accounts SELECT i, 'User' || i || '@Example.com' FROM generate_series(1, %d) i;\n",
			     rows);

	/* what these tests check is the backfill, not the dump or the way back */
	th_write(dir, "twinstage.ini", "[project]\nname = batches\n\n[source]\nseed = seed.sql\n"
		 "\n[gate]\nddt = off\nrollback = off\n");
	th_write(dir, "seed.sql", seed);
	free(seed);
	th_write(dir, "migrations/1_email_norm.up.sql", "ALTER TABLE accounts ADD COLUMN email_norm text;\n");
	th_write(dir, "migrations/2_backfill.up.sql", backfill_sql);
}

static json_t *stmt_facts(json_t *rep, const char *file)
{
	json_t *m;
	size_t i;

	json_array_foreach(json_object_get(rep, "migrations"), i, m)
		if (!strcmp(json_string_value(json_object_get(m, "file")), file))
			return json_object_get(json_array_get(json_object_get(m, "statements"), 0), "facts");
	cr_assert_fail("no migration %s in the report", file);
	return NULL;
}

Test(phases, a_batch_backfill_of_200000_rows_runs_in_batches)
{
	int code;
	char *wd = path_join(dir, ".twinstage");
	json_t *rep, *b;

	batch_project("-- Backfill in batches, as on a live table.\n"
		      "-- twinstage:batch 5000\n"
		      "UPDATE accounts SET email_norm = lower(email) WHERE email_norm IS NULL;\n", 200000);
	code = th_twinstage(dir, &out, &err, "rehearse", "--keep", NULL);
	cr_assert_eq(code, 0, "exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(err, "200000 rows in 40 batches of 5000");
	ASSERT_HAS(out, "ran in 40 batches of 5000: 200000 rows");
	rep = th_latest_report(wd);
	b = json_object_get(stmt_facts(rep, "2_backfill.up.sql"), "batch");
	cr_assert_eq(json_integer_value(json_object_get(b, "batches")), 40);
	cr_assert_eq(json_integer_value(json_object_get(b, "rows")), 200000);
	json_decref(rep);
	/* every row was done, on the dev side */
	{
		char *conninfo = xstrfmt("host=127.0.0.1 port=%d user=postgres dbname=batches",
					 th_kept_port(wd, "dev"));
		char *n;

		n = th_value(conninfo, "SELECT count(*) FROM accounts WHERE email_norm = lower(email)");
		cr_assert_str_eq(n, "200000");
		free(n);
		free(conninfo);
	}
	free(wd);
}

Test(phases, an_insert_select_with_a_join_and_on_conflict_runs_in_batches)
{
	int code;

	/* the LIMIT goes before ON CONFLICT, not before the join's ON */
	batch_project("CREATE TABLE copies (id bigint PRIMARY KEY, email text, again text);\n"
		      "-- twinstage:batch 300\n"
		      "INSERT INTO copies SELECT a.id, a.email, b.email FROM accounts a JOIN accounts b ON a.id = b.id\n"
		      "WHERE NOT EXISTS (SELECT 1 FROM copies c WHERE c.id = a.id) ORDER BY a.id\n"
		      "ON CONFLICT DO NOTHING;\n", 2000);
	code = th_twinstage(dir, &out, &err, "rehearse", NULL);
	cr_assert_eq(code, 0, "exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(out, "ran in 7 batches of 300: 2000 rows");
}

/* A batch statement twinstage refuses to run to the end: the migration fails, saying why. */
static void batch_refused(const char *sql, const char *why)
{
	int code;

	batch_project(sql, 2000);
	code = th_twinstage(dir, &out, &err, "rehearse", NULL);
	cr_assert_eq(code, 1, "exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(out, why);
}

Test(phases, a_batch_that_does_not_converge_is_stopped)
{
	batch_refused("-- twinstage:batch 500\n"
		      "UPDATE accounts SET email_norm = lower(email) WHERE id > 0;\n",
		      "2_backfill.up.sql:2: the batch statement does not converge: 2500 rows affected in 5 batches, but 2000 matched at the start");
}

Test(phases, a_batch_with_no_shape_to_limit_is_refused_with_its_line)
{
	batch_refused("\n-- twinstage:batch 100\n"
		      "UPDATE accounts SET email_norm = lower(email) RETURNING id;\n",
		      "2_backfill.up.sql:3: a batch statement cannot have RETURNING");
}

/* ---- [phase] sections against the folder ---- */

static int resolve(const char *phases, const char *applied_in_prod)
{
	struct ts_config cfg;
	struct ts_migrations set;
	struct ts_tracker t;
	struct ts_tracking_state prod = { 0 };
	struct ts_phase_plan *plans = NULL;
	char *ini = path_join(dir, "twinstage.ini");
	int r;

	th_write(dir, "apps/v1/a.sql", "SELECT 1;\n");
	for (int v = 1; v <= 4; v++) {
		char *rel = xstrfmt("migrations/%d_step.up.sql", v);

		th_write(dir, rel, "SELECT 1;\n");
		free(rel);
	}
	th_write(dir, "twinstage.ini", phases);
	cr_assert_eq(ts_config_load(&cfg, ini, NULL), 0, "%s", ts_error_message());
	cr_assert_eq(ts_migrations_discover(cfg.migrations, &set), 0, "%s", ts_error_message());
	ts_tracker_init(&t, TS_TRACK_GOLANG, NULL);
	if (applied_in_prod)
		prod.latest = xstrdup(applied_in_prod);
	ts_error_clear();
	r = ts_phases_resolve(&cfg, &set, &plans);
	if (!r) {
		r = ts_phases_check_pending(&cfg, plans, &set, &t, &prod);
		if (!r)
			cr_assert_eq(plans[0].set.n, 2);
		ts_phases_free(plans, cfg.n_phases);
	}
	ts_tracking_state_free(&prod);
	ts_tracker_release(&t);
	ts_migrations_free(&set);
	ts_config_free(&cfg);
	free(ini);
	return r;
}

#define APP "[app v1]\nscenarios = apps/v1\n"

Test(phases, phases_resolve_versions_ranges_and_file_names)
{
	cr_assert_eq(resolve(APP "[phase a]\nmigrations = 1-2\napps = v1\n"
			     "[phase b]\nmigrations = 3_step.up.sql, 4\napps = v1\n", NULL), 0,
		     "%s", ts_error_message());
}

Test(phases, a_version_no_migration_has_is_refused_with_its_line)
{
	cr_assert_eq(resolve(APP "[phase a]\nmigrations = 1-2\napps = v1\n"
			     "[phase b]\nmigrations = 3, 7\napps = v1\n", NULL), -1);
	cr_assert(strstr(ts_error_message(), "twinstage.ini:7: [phase b] migrations: no migration has version or file name \"7\" (versions here: 1, 2, 3, 4)"),
		  "%s", ts_error_message());
}

Test(phases, phases_out_of_version_order_are_refused)
{
	cr_assert_eq(resolve(APP "[phase a]\nmigrations = 3-4\napps = v1\n"
			     "[phase b]\nmigrations = 1-2\napps = v1\n", NULL), -1);
	cr_assert(strstr(ts_error_message(), "[phase b] applies version 1, which is not above version 4 of [phase a]"),
		  "%s", ts_error_message());
}

Test(phases, a_pending_migration_no_phase_names_is_refused)
{
	cr_assert_eq(resolve(APP "[phase a]\nmigrations = 1-2\napps = v1\n", NULL), -1);
	cr_assert(strstr(ts_error_message(), "migration 3_step.up.sql is pending (production has not applied it), but no [phase] names it"),
		  "%s", ts_error_message());
}

Test(phases, a_bad_phase_is_refused_before_anything_is_built)
{
	char *wd = path_join(dir, ".twinstage"), *prod = path_join(wd, "prod");
	int code;

	th_write(dir, "migrations/1_a.up.sql", "SELECT 1;\n");
	th_write(dir, "apps/v1/a.sql", "SELECT 1;\n");
	th_write(dir, "twinstage.ini", APP "\n[phase 1]\nmigrations = 1, 9\napps = v1\n");
	code = th_twinstage(dir, &out, &err, "rehearse", NULL);
	cr_assert_eq(code, 2, "exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(err, "twinstage.ini:5: [phase 1] migrations: no migration has version or file name \"9\" (versions here: 1)");
	cr_assert(!is_dir(prod), "a production clone was built for a configuration that names no migration 9");
	free(prod);
	free(wd);
}

Test(phases, an_unknown_version_in_apps_is_refused_at_load)
{
	struct ts_config cfg;
	char *ini = path_join(dir, "twinstage.ini");

	th_write(dir, "migrations/1_a.up.sql", "SELECT 1;\n");
	th_write(dir, "apps/v1/a.sql", "SELECT 1;\n");
	th_write(dir, "twinstage.ini", APP "\n[phase 1]\nmigrations = 1\napps = v1, v9\n");
	cr_assert_eq(ts_config_load(&cfg, ini, NULL), -1);
	cr_assert(strstr(ts_error_message(), "twinstage.ini:4: [phase 1] names version v9, but there is no section [app v9]"),
		  "%s", ts_error_message());
	free(ini);
}
