/* test_config.c: twinstage.ini errors name file:line and suggest the right name. */
#include "config/config.h"
#include "core/error.h"
#include "core/util.h"
#include "helpers.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

static char *dir;

static void setup(void)
{
	dir = th_tmpdir();
	th_write(dir, "migrations/V1__x.sql", "SELECT 1;\n");
	th_write(dir, "apps/v1/a.sql", "SELECT 1;\n");
}

static void teardown(void)
{
	th_rmtree(dir);
	free(dir);
}

/* Loads text as twinstage.ini; returns 0 or -1 with the error slot set. */
static int load(const char *text, struct ts_config *cfg)
{
	char *p = path_join(dir, "twinstage.ini");
	int r;

	th_write(dir, "twinstage.ini", text);
	r = ts_config_load(cfg, p, NULL);
	free(p);
	return r;
}

#define ASSERT_ERROR(text, needle)                                                         \
	do {                                                                               \
		struct ts_config c_;                                                       \
		cr_assert_eq(load(text, &c_), -1, "expected an error");                    \
		cr_assert(strstr(ts_error_message(), needle), "message \"%s\" lacks \"%s\"", \
			  ts_error_message(), needle);                                     \
		cr_assert_eq(ts_error_class(), TS_EXIT_USAGE);                             \
	} while (0)

TestSuite(config, .init = setup, .fini = teardown);

Test(config, reads_the_documented_keys)
{
	struct ts_config cfg;

	cr_assert_eq(load("[project]\nname = invoices\nmigrations = migrations\n"
			  "[source]\nseed =\n"
			  "[environments]\nbackend = instance\nprod_port = 0\ndev_port = 6543\n"
			  "[app v1]\nscenarios = apps/v1\n"
			  "[rehearsal]\ncurrent = v1\n"
			  "[gate]\nforward_compat = fail\n", &cfg), 0, "%s", ts_error_message());
	cr_assert_str_eq(cfg.name, "invoices");
	cr_assert_eq(cfg.dev_port, 6543);
	cr_assert_eq(cfg.forward_compat, TS_GATE_FAIL);
	cr_assert_eq(cfg.n_apps, 1);
	cr_assert(strstr(cfg.apps[0].scenarios, "/apps/v1"));
	cr_assert(strstr(cfg.workdir, "/.twinstage"), "default workdir next to the file");
	ts_config_free(&cfg);
}

Test(config, unknown_key_names_line_and_suggests)
{
	ASSERT_ERROR("[project]\nname = x\nmigratons = migrations\n",
		     "twinstage.ini:3: unknown key \"migratons\" in [project]; did you mean \"migrations\"?");
}

Test(config, unknown_section_suggests)
{
	ASSERT_ERROR("[project]\nname = x\n[rehersal]\ncurrent = v1\n",
		     "twinstage.ini:4: unknown section [rehersal]; did you mean [rehearsal]?");
	ASSERT_ERROR("[apps v1]\nscenarios = apps/v1\n", "did you mean [app v1]?");
}

Test(config, malformed_line_is_a_syntax_error)
{
	ASSERT_ERROR("[project]\nname = x\nthis line has no equals sign\n", "twinstage.ini:3: syntax error");
}

Test(config, missing_migrations_folder)
{
	ASSERT_ERROR("[project]\nmigrations = nowhere\n", "twinstage.ini:2: migrations folder");
	ASSERT_ERROR("[project]\nmigrations = nowhere\n", "nowhere\" does not exist");
}

Test(config, values_are_checked)
{
	ASSERT_ERROR("[environments]\nprod_port = 70000\n", "twinstage.ini:2: invalid value for prod_port: \"70000\"");
	ASSERT_ERROR("[gate]\nforward_compat = maybe\n", "invalid value for forward_compat: \"maybe\"");
	ASSERT_ERROR("[environments]\nbackend = instanse\n", "did you mean \"instance\"?");
	ASSERT_ERROR("[app v1]\nscenarios = apps/v1\n[rehearsal]\ncurrent = v9\n",
		     "twinstage.ini:4: current = v9, but there is no section [app v9]");
	ASSERT_ERROR("[app v1]\nscenarios = apps/none\n[rehearsal]\ncurrent = v1\n",
		     "scenarios folder");
	ASSERT_ERROR("[source]\nseed = missing.sql\n", "twinstage.ini:2: seed file");
	ASSERT_ERROR("[environments]\nclone = fast\n",
		     "twinstage.ini:2: invalid value for clone: \"fast\" (expected auto, cow, physical or logical)");
}

Test(config, environments_come_from_an_included_file)
{
	struct ts_config cfg;

	th_write(dir, "envs/local.ini", "[environments]\nbackend = instance\nprod_port = 7001\n");
	cr_assert_eq(load("[environments]\ninclude = envs/local.ini\ndev_port = 7002\n", &cfg), 0,
		     "%s", ts_error_message());
	cr_assert_eq(cfg.prod_port, 7001);
	cr_assert_eq(cfg.dev_port, 7002);
	ts_config_free(&cfg);

	th_write(dir, "envs/bad.ini", "[environments]\nbackend = instance\n[project]\nname = y\n");
	ASSERT_ERROR("[environments]\ninclude = envs/bad.ini\n",
		     "envs/bad.ini:4: section [project] does not belong in an environment file");
}

Test(config, equal_sections_need_no_keys_and_map_columns)
{
	struct ts_config cfg;

	cr_assert_eq(load("[project]\nmigrations = migrations\n"
			  "[equal inovices invoices]\n"
			  "[equal customers]\n"
			  "columns = id, name : full_name\n", &cfg), 0, "%s", ts_error_message());
	cr_assert_eq(cfg.n_equal, 2);
	cr_assert_str_eq(cfg.equal[0].old_table, "inovices");
	cr_assert_str_eq(cfg.equal[0].new_table, "invoices");
	cr_assert_eq(cfg.equal[0].n_cols, 0, "no columns: all of OLD's");
	cr_assert(strstr(cfg.equal[0].origin, "twinstage.ini:3"), "%s", cfg.equal[0].origin);
	cr_assert_str_eq(cfg.equal[1].new_table, "customers");
	cr_assert_eq(cfg.equal[1].n_cols, 2);
	cr_assert_str_eq(cfg.equal[1].old_cols[1], "name");
	cr_assert_str_eq(cfg.equal[1].new_cols[1], "full_name");
	cr_assert_eq(cfg.ddt, TS_GATE_FAIL);
	cr_assert_eq(cfg.rollback, TS_GATE_FAIL);
	ts_config_free(&cfg);
	ASSERT_ERROR("[project]\nmigrations = migrations\n[equal a b]\ncolumns = id, name:\n",
		     "twinstage.ini:4: invalid column mapping \"name:\" in [equal a b]");
	ASSERT_ERROR("[project]\nmigrations = migrations\n[equal a b c]\n",
		     "twinstage.ini:3: section [equal a b c] names more than two tables");
	ASSERT_ERROR("[project]\nmigrations = migrations\n[gate]\nrollback = maybe\n",
		     "twinstage.ini:4: invalid value for rollback: \"maybe\"");
}
