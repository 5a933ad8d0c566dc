/*
 * test_upgrade.c: the dev side on the next PostgreSQL major ([environments]
 * dev_stack). The stack is real: a Debian 13 root with PostgreSQL 17 and
 * Debian 12's postgresql-15, made with debootstrap from the machine's
 * mirror the first time and cached (under a lock: the first test to need
 * it builds it, the others wait). The production clone runs this
 * machine's PostgreSQL 15; the dev side runs 17 from the stack, upgraded
 * with pg_upgrade or filled by pg_dump of 17, as a team would do it.
 */
#include "core/strbuf.h"
#include "core/util.h"
#include "core/wrapper.h"
#include "helpers.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *dir, *proj;
static struct strbuf out = STRBUF_INIT, err = STRBUF_INIT;

#define ASSERT_HAS TH_ASSERT_HAS

static void setup(void)
{
	dir = th_tmpdir();
	proj = th_user_folder(dir);
	strbuf_reset(&out);
	strbuf_reset(&err);
}

static void teardown(void)
{
	char *ex = path_join(proj, "scenarios/upgrade-17");

	th_twinstage(ex, NULL, NULL, "down", "-q", NULL);
	th_twinstage(proj, NULL, NULL, "down", "-q", NULL);
	th_rmtree(dir);
	free(ex);
	free(proj);
	free(dir);
}

TestSuite(upgrade, .init = setup, .fini = teardown, .timeout = 600);

/* The bundled example, its stack recipe and envs, copied as they lie in the source tree. */
static char *copy_example(void)
{
	char *scen = path_join(proj, "scenarios"), *src = th_src("scenarios/upgrade-17");
	char *stacks = th_src("stacks"), *envs = th_src("envs");

	mkdir_p(scen, 0755);
	cr_assert_eq(th_run(NULL, "cp", "-a", src, scen, NULL), 0);
	cr_assert_eq(th_run(NULL, "cp", "-a", stacks, envs, proj, NULL), 0);
	free(src);
	free(stacks);
	free(envs);
	free(scen);
	return path_join(proj, "scenarios/upgrade-17");
}

/* The server_version_num of a kept side, read from env.json's port. */
static int side_version(const char *workdir, const char *side)
{
	char *ci = xstrfmt("host=127.0.0.1 port=%d user=postgres dbname=shop", th_kept_port(workdir, side));
	char *v = th_value(ci, "SELECT current_setting('server_version_num')");
	int n = atoi(v);

	free(ci);
	free(v);
	return n;
}

static json_t *data_check(json_t *rep, const char *check, const char *side)
{
	json_t *v;
	size_t i;

	json_array_foreach(json_object_get(rep, "data"), i, v)
		if (!strcmp(json_string_value(json_object_get(v, "check")), check) &&
		    (!side || !strcmp(json_string_value(json_object_get(v, "side")), side)))
			return v;
	return NULL;
}

/*
 * The example as a team would run it before moving from 15 to 17: the
 * live version's health page reads counters 17 moved: it fails on the
 * dev side only, named; the report shows the upgrade, the plan 17
 * changed, the setting 17 lacks; both sides really run their majors; no
 * row is lost; `down` leaves nothing.
 */
Test(upgrade, the_live_version_is_rehearsed_against_17_and_what_broke_is_named)
{
	char *ex = copy_example(), *wd = path_join(ex, ".twinstage");
	json_t *rep, *up, *v, *plan = NULL;
	size_t i;
	int code = th_twinstage(ex, &out, &err, "rehearse", "--keep", NULL);

	cr_assert_eq(code, 1, "exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(out, "v1 (current)       pass 5/5 (baseline)                FAIL 4/5 (gate)");
	ASSERT_HAS(out, "02_health.sql:6 \"checkpoint counters\"");
	ASSERT_HAS(out, "got error 42703: column \"checkpoints_timed\" does not exist");
	ASSERT_HAS(out, "dev side on PostgreSQL 17");
	ASSERT_HAS(out, "from PostgreSQL 15 by pg_upgrade --clone");
	ASSERT_HAS(out, "setting vacuum_defer_cleanup_age = 0 (configuration file): PostgreSQL 17 does not have it");
	ASSERT_HAS(out, "plan before: Aggregate Plain [Seq Scan on orders]");
	ASSERT_HAS(err, "upgrade: pg_upgrade --check (15 to 17)");
	cr_assert_geq(side_version(wd, "dev"), 170000);
	cr_assert_lt(side_version(wd, "prod"), 160000);

	rep = th_latest_report(wd);
	up = json_object_get(rep, "upgrade");
	cr_assert_eq(json_integer_value(json_object_get(up, "from")), 15);
	cr_assert_eq(json_integer_value(json_object_get(up, "to")), 17);
	cr_assert_str_eq(json_string_value(json_object_get(up, "method")), "pg_upgrade");
	cr_assert_str_eq(json_string_value(json_object_get(up, "mode")), "clone");
	cr_assert(json_number_value(json_object_get(json_object_get(up, "steps"), "upgrade_ms")) > 0);
	v = json_object_get(up, "check");
	cr_assert_str_eq(json_string_value(json_array_get(v, json_array_size(v) - 1)), "*Clusters are compatible*");
	json_array_foreach(json_object_get(up, "plans"), i, v)
		if (strstr(json_string_value(json_object_get(v, "sql")), "placed_at IS NULL"))
			plan = v;
	cr_assert(plan, "the IS NULL report was not measured");
	cr_assert(json_is_true(json_object_get(plan, "plan_changed")));
	cr_assert(strstr(json_string_value(json_object_get(plan, "prod_shape")), "Seq Scan on orders"));
	cr_assert(!strstr(json_string_value(json_object_get(plan, "dev_shape")), "Seq Scan"));
	/* both plans, whole, for the reader */
	cr_assert_str_eq(json_string_value(json_object_get(json_object_get(plan, "prod_plan"), "Node Type")),
			 "Aggregate");
	cr_assert(json_is_false(json_object_get(plan, "over_gate")));
	/* nothing lost: the upgraded side dumps and restores, and the tables no migration touched are equal */
	cr_assert_str_eq(json_string_value(json_object_get(data_check(rep, "ddt", "dev"), "status")), "passed");
	cr_assert_str_eq(json_string_value(json_object_get(data_check(rep, "untouched", NULL), "status")),
			 "passed");
	cr_assert_str_eq(json_string_value(json_object_get(data_check(rep, "plans", NULL), "status")), "passed");
	json_decref(rep);

	/*
	 * again on the kept sides: the dev side back to its upgraded state,
	 * statistics included, so the plans are the same as the first time
	 */
	strbuf_reset(&out);
	code = th_twinstage(ex, &out, &err, "rehearse", "--reuse", NULL);
	cr_assert_eq(code, 1, "exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(out, "kept from an earlier run (rehearse --reuse), upgraded from PostgreSQL 15 by pg_upgrade");
	rep = th_latest_report(wd);
	cr_assert_eq(json_integer_value(json_object_get(data_check(rep, "plans", NULL), "changed")), 1, "%s", out.buf);
	json_decref(rep);

	cr_assert_eq(th_twinstage(ex, NULL, NULL, "down", NULL), 0);
	th_assert_nothing_left(wd);
	free(ex);
	free(wd);
}

/* The version fixed for both majors passes; with upgrade = dump, pg_dump of 17 fills the dev side. */
Test(upgrade, the_fixed_version_passes_with_the_dump_method)
{
	char *ex = copy_example(), *wd = path_join(ex, ".twinstage");
	json_t *rep;
	int code;

	th_write(ex, "dump.ini", "[environments]\ninclude = ../../envs/local.ini\n"
				 "dev_stack = ../../stacks/debian13-pg17.ini\nupgrade = dump\n");
	code = th_twinstage(ex, &out, &err, "rehearse", "-c", "twinstage-fixed.ini", "--env", "dump.ini", NULL);
	cr_assert_eq(code, 0, "exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(out, "from PostgreSQL 15 by dump");
	ASSERT_HAS(out, "verdict: compatible");
	rep = th_latest_report(wd);
	cr_assert_str_eq(json_string_value(json_object_get(json_object_get(rep, "upgrade"), "method")), "dump");
	cr_assert_str_eq(json_string_value(json_object_get(data_check(rep, "ddt", "dev"), "status")), "passed");
	cr_assert_eq(json_integer_value(json_object_get(data_check(rep, "plans", NULL), "changed")), 1);
	json_decref(rep);
	th_assert_nothing_left(wd);
	free(ex);
	free(wd);
}

static void stack_project(const char *extra_seed, const char *extra_ini)
{
	char *seed = th_src("scenarios/invoices/seed.sql"), *stack = th_src("stacks/debian13-pg17.ini");
	char *ini;
	struct strbuf sb = STRBUF_INIT;

	cr_assert(!strbuf_read_file(&sb, seed), "no %s", seed);
	strbuf_addf(&sb, "\n%s", extra_seed);
	th_write(proj, "seed.sql", sb.buf);
	ini = xstrfmt("[project]\nname = tproj\nmigrations = migrations\n\n[source]\nseed = seed.sql\n\n"
		      "[environments]\ndev_stack = %s\n\n[app v1]\nscenarios = apps/v1\n\n"
		      "[rehearsal]\ncurrent = v1\n%s", stack, extra_ini);
	th_write(proj, "twinstage.ini", ini);
	th_write(proj, "migrations/V1__note.sql", "ALTER TABLE inovices ADD COLUMN note text;\n");
	th_write(proj, "apps/v1/01.sql", "-- @name invoices of a customer\n"
					 "SELECT id, amount FROM inovices WHERE customer = 'acme' ORDER BY id;\n");
	strbuf_release(&sb);
	free(ini);
	free(seed);
	free(stack);
}

/*
 * adminpack is gone from PostgreSQL 17: a production clone that has it is
 * refused by pg_upgrade --check, whose message is the error, exit 3, and
 * nothing is left.
 */
Test(upgrade, an_extension_the_stack_lacks_stops_at_the_check)
{
	char *wd;
	int code;

	stack_project("CREATE EXTENSION adminpack;\n", "");
	wd = path_join(proj, ".twinstage");
	code = th_twinstage(proj, &out, &err, "rehearse", NULL);
	cr_assert_eq(code, 3, "exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(err, "error: pg_upgrade --check refused the production clone (Checking for presence of required libraries): could not load library \"$libdir/adminpack\"");
	ASSERT_HAS(err, "add its package for the new major to the recipe's packages");
	th_assert_nothing_left(wd);
	free(wd);
}

/*
 * A statement slower on the new major than gate.max_slowdown fails the
 * gate, named with both times; max_slowdown = 0 turns the gate off. (The
 * statement waits where the server is 17: slower there, as a planner
 * regression would be, by a margin no noise reaches.)
 */
Test(upgrade, a_statement_slower_on_the_new_major_fails_the_gate)
{
	static const char slow[] =
		"-- @name monthly report\n"
		"SELECT pg_sleep(CASE WHEN current_setting('server_version_num')::int >= 170000 THEN 0.05 ELSE 0 END);\n";
	int code;

	stack_project("", "");
	th_write(proj, "apps/v1/02_report.sql", slow);
	code = th_twinstage(proj, &out, &err, "rehearse", NULL);
	cr_assert_eq(code, 1, "exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(out, "verdict: incompatible - plans and timings, PostgreSQL 15 against 17: v1 02_report.sql:2 \"monthly report\" is ");
	ASSERT_HAS(out, "x slower on the dev side (");
	ASSERT_HAS(out, "over gate.max_slowdown 2.0");

	strbuf_reset(&out);
	stack_project("", "\n[gate]\nmax_slowdown = 0\n");
	code = th_twinstage(proj, &out, &err, "rehearse", NULL);
	cr_assert_eq(code, 0, "exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(out, "x slower\n");	/* still shown, failing nothing */
	ASSERT_HAS(out, "(gate.max_slowdown off)");
}

/* Any bundled example rehearses on 17 with envs/pg17.ini, its verdict the one it has on 15. */
Test(upgrade, the_bundled_examples_keep_their_verdicts_on_17)
{
	static const struct { const char *example; int code; } runs[] = { { "rename-breaks", 1 }, { "invoices", 0 } };
	char *src = th_src("scenarios"), *envs = th_src("envs"), *stacks = th_src("stacks");

	cr_assert_eq(th_run(NULL, "cp", "-a", src, envs, stacks, proj, NULL), 0);
	for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
		char *ex = xstrfmt("%s/scenarios/%s", proj, runs[i].example), *wd = path_join(ex, ".twinstage");
		int code;

		strbuf_reset(&out);
		strbuf_reset(&err);
		code = th_twinstage(ex, &out, &err, "rehearse", "--env", "../../envs/pg17.ini", NULL);
		cr_assert_eq(code, runs[i].code, "%s: exit %d\n%s\n%s", runs[i].example, code, out.buf, err.buf);
		ASSERT_HAS(out, "dev side on PostgreSQL 17");
		th_assert_nothing_left(wd);
		free(ex);
		free(wd);
	}
	free(src);
	free(envs);
	free(stacks);
}

Test(upgrade, the_configuration_is_checked_before_anything_is_built)
{
	static const struct { const char *env, *says; } bad[] = {
		{ "[environments]\nbackend = vm\nimage = images/x.ini\ndev_stack = stack.ini\n",
		  "dev_stack needs backend = instance" },
		{ "[environments]\ndev_stack = nowhere.ini\n", "stack recipe" },
		{ "[environments]\nupgrade = dump\n", "upgrade = dump needs dev_stack" },
		{ "[environments]\ndev_stack = stack.ini\nupgrade = pg_dumpall\n",
		  "invalid value for upgrade: \"pg_dumpall\" (expected pg_upgrade or dump)" },
		{ "[environments]\ndev_stack = image.ini\n", "is an [image] recipe, not a [stack]" },
	};
	char *image = th_src("images/debian-pg15.ini");
	struct strbuf text = STRBUF_INIT;

	cr_assert(!strbuf_read_file(&text, image));
	th_project(proj, NULL);
	th_write(proj, "migrations/V1__note.sql", "ALTER TABLE inovices ADD COLUMN note text;\n");
	th_write(proj, "stack.ini", "[stack]\nsuite = trixie\n[postgresql]\nversion = 17\n");
	th_write(proj, "image.ini", text.buf);
	th_write(proj, "images/x.ini", text.buf);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int code;

		th_write(proj, "bad.ini", bad[i].env);
		strbuf_reset(&err);
		code = th_twinstage(proj, &out, &err, "rehearse", "--env", "bad.ini", NULL);
		cr_assert_eq(code, 2, "%s: exit %d\n%s", bad[i].env, code, err.buf);
		ASSERT_HAS(err, bad[i].says);
	}
	th_write(proj, "gate.ini", "[project]\nname = x\n[gate]\nmax_slowdown = 0.5\n");
	strbuf_reset(&err);
	cr_assert_eq(th_twinstage(proj, &out, &err, "rehearse", "-c", "gate.ini", NULL), 2, "%s", err.buf);
	ASSERT_HAS(err, "gate.ini:4: invalid value for max_slowdown: \"0.5\" (a ratio of at least 1");
	/* a stack recipe names its own mistakes by line */
	th_write(proj, "stack.ini", "[stack]\nsuite = trixie\nsize = 4G\n");
	th_write(proj, "bad.ini", "[environments]\ndev_stack = stack.ini\n");
	strbuf_reset(&err);
	cr_assert_eq(th_twinstage(proj, &out, &err, "rehearse", "--env", "bad.ini", NULL), 2, "%s", err.buf);
	ASSERT_HAS(err, "stack.ini:3");
	ASSERT_HAS(err, "\"size\" is for an [image]");
	free(image);
	strbuf_release(&text);
}

/* `twinstage image build` of a stack recipe prints its root, where both majors' servers are. */
Test(upgrade, image_build_of_a_stack_prints_its_root)
{
	char *recipe = th_src("stacks/debian13-pg17.ini"), *p17, *p15;
	int code = th_twinstage(proj, &out, &err, "image", "build", recipe, NULL);

	cr_assert_eq(code, geteuid() == 0 || strstr(err.buf, "cached") ? 0 : 3, "exit %d\n%s", code, err.buf);
	if (code)
		return;
	strbuf_rtrim(&out);
	p17 = path_join(out.buf, "usr/lib/postgresql/17/bin/postgres");
	p15 = path_join(out.buf, "usr/lib/postgresql/15/bin/postgres");
	cr_assert(is_file(p17), "%s", p17);
	cr_assert(is_file(p15), "%s", p15);
	free(p17);
	free(p15);
	free(recipe);
}
