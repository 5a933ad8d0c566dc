/*
 * cmd_steps.c: `twinstage migrate`, `replay`, `report`, `snapshot` and
 * `reset`: the middle of the rehearsal, one step at a time, on
 * environments kept by `up`.
 */
#include "cmd/cmd.h"
#include "core/error.h"
#include "core/strvec.h"
#include "core/util.h"
#include "rehearse/check.h"
#include "rehearse/clone.h"
#include "rehearse/apply.h"
#include "rehearse/run.h"
#include "rehearse/safety.h"
#include "rehearse/timing.h"
#include "report/render.h"
#include "report/render_load.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static const char migrate_usage[] =
"usage: twinstage migrate [-c twinstage.ini] [--load] [-q]\n"
"\n"
"Applies the pending migrations on the dev side of environments built by\n"
"\"twinstage up\". With --load, the current version's scenarios run on the\n"
"dev side meanwhile ([load]), and what waited on the migration is shown.\n"
"Exit code 1 when a migration fails, or (--load) the current version failed\n"
"or stalled over gate.max_stall_ms while it ran.\n";

static const char replay_usage[] =
"usage: twinstage replay [-c twinstage.ini] [--format FORMAT] [-q]\n"
"\n"
"Runs the compatibility matrix (each version against each side) on the\n"
"environments as they are now, and writes a report.\n";

static const char diff_usage[] =
"usage: twinstage diff [-c twinstage.ini] [--format text|json]\n"
"\n"
"Reads the schema of the production clone and of the dev side kept by\n"
"\"twinstage up\" from their catalogs, and lists every change from one to\n"
"the other: breaking for the current version, risky to run, or additive.\n"
"Exit code 1 when a change is breaking.\n";

static const char ddt_usage[] =
"usage: twinstage ddt [-c twinstage.ini] [--format text|json] [prod|dev]\n"
"\n"
"The double dump test of a side kept by \"twinstage up\" (default: dev):\n"
"dump it, restore the dump into a fresh cluster, dump that again, and\n"
"compare schema and data (every table, in key order). Names the first\n"
"object that differs or fails to restore. Exit code 1 when it fails.\n";

static const char equal_usage[] =
"usage: twinstage equal [-c twinstage.ini] [--format text|json]\n"
"\n"
"Compares the data of the production clone and the dev side kept by\n"
"\"twinstage up\": every table whose columns the migration left as they\n"
"were holds the same rows on both sides, and each [equal OLD NEW] of the\n"
"configuration holds. Rows are read in key order and compared as they\n"
"stream; the first difference is named by its key. Exit code 1 when\n"
"something differs.\n";

static const char report_usage[] =
"usage: twinstage report [-c twinstage.ini] [--format FORMAT] [--run ID]\n"
"\n"
"Prints the latest report again (or run ID's) in text, json, junit or\n"
"markdown. The exit code is the one that run had.\n";

static const char snapshot_usage[] =
"usage: twinstage snapshot [-c twinstage.ini] [-q] [NAME]\n"
"\n"
"Saves the dev side kept by \"twinstage up\" (or rehearse --keep) as NAME,\n"
"to return to with \"twinstage reset NAME\". On a copy-on-write pool\n"
"(clone = cow) it takes a fraction of a second whatever the size of the\n"
"data; elsewhere it is a full copy. Without NAME, lists the snapshots:\n"
"\"base\" is the dev side as the clone made it, before any migration.\n";

static const char reset_usage[] =
"usage: twinstage reset [-c twinstage.ini] [-q] [NAME]\n"
"\n"
"Returns the dev side kept by \"twinstage up\" to snapshot NAME or,\n"
"without NAME, to the state before any migration (the snapshot \"base\",\n"
"else a new copy of the production clone). Edit a migration, reset,\n"
"migrate again: production is not copied again.\n";

/* Opens the run and the kept environments, started. */
static int open_kept(struct ts_run *run, const struct ts_opts *o)
{
	int loaded;

	if (ts_run_open(run, o->config, o->env_file))
		return -1;
	run->quiet = o->quiet;
	run->load = o->load > 0;
	loaded = ts_env_load(&run->env);
	if (loaded < 0)
		return -1;
	if (!loaded)
		return ts_error_set(TS_EXIT_ENV, "no environments in \"%s\"", run->cfg.workdir),
		       ts_error_hint("\"twinstage up\" builds them");
	run->rep.prod_port = run->env.prod.port;
	run->rep.dev_port = run->env.dev.port;
	return ts_env_ensure_running(&run->env) || ts_run_timing(run) ? -1 : 0;
}

int cmd_migrate(int argc, char **argv)
{
	struct ts_opts o;
	struct ts_run run;
	int done, code;
	size_t applied = 0;

	code = cmd_parse_options(argc, argv, "migrate", migrate_usage, "config env quiet load help", &o, &done);
	if (done)
		return code;
	if (open_kept(&run, &o) || ts_run_read_production(&run) || ts_run_migrate(&run)) {
		return ts_run_fail(&run);
	}
	ts_report_decide(&run.rep);
	for (size_t i = 0; i < run.rep.n_migrations; i++)
		applied += !strcmp(run.rep.migrations[i].status, "applied");
	if (run.rep.exit_code)
		fprintf(stderr, "twinstage: error: %s\n", run.rep.reason);
	else
		printf("applied %zu migration%s on the dev side\n", applied, applied == 1 ? "" : "s");
	ts_report_render_load(&run.rep, 0, stdout);
	code = run.rep.exit_code;
	ts_run_close(&run);
	return code;
}

int cmd_replay(int argc, char **argv)
{
	struct ts_opts o;
	struct ts_run run;
	enum ts_report_format fmt = TS_FMT_TEXT;
	int done, code;

	code = cmd_parse_options(argc, argv, "replay", replay_usage, "config env format quiet help",
				 &o, &done);
	if (done)
		return code;
	if (o.format && ts_report_format_parse(o.format, &fmt))
		return ts_error_print();
	if (open_kept(&run, &o)) {
		return ts_run_fail(&run);
	}
	if (ts_run_matrix(&run, 1)) {
		ts_report_fail(&run.rep);
		ts_error_print();
	}
	code = ts_run_finish(&run, fmt);
	ts_run_close(&run);
	return code;
}

int cmd_report(int argc, char **argv)
{
	struct ts_opts o;
	struct ts_config cfg;
	struct ts_report rep;
	enum ts_report_format fmt = TS_FMT_TEXT;
	char *reports, *dir;
	int done, code;

	code = cmd_parse_options(argc, argv, "report", report_usage, "config env format run help",
				 &o, &done);
	if (done)
		return code;
	if (o.format && ts_report_format_parse(o.format, &fmt))
		return ts_error_print();
	if (ts_config_load(&cfg, o.config ? o.config : "twinstage.ini", o.env_file))
		return ts_error_print();
	reports = path_join(cfg.workdir, "reports");
	dir = path_join(reports, o.run_id ? o.run_id : "latest");
	if (!is_dir(dir)) {
		if (o.run_id)
			ts_error_set(TS_EXIT_USAGE, "no report of run \"%s\" in \"%s\"", o.run_id, reports);
		else
			ts_error_set(TS_EXIT_USAGE, "no report yet in \"%s\"", reports);
		ts_error_hint("\"twinstage rehearse\" or \"twinstage replay\" writes one");
		code = ts_error_print();
	} else if (ts_report_load(&rep, dir)) {
		code = ts_error_print();
	} else {
		ts_report_render(&rep, fmt, stdout);
		code = rep.exit_code;
		ts_report_free(&rep);
	}
	free(dir);
	free(reports);
	ts_config_free(&cfg);
	return code;
}

int cmd_diff(int argc, char **argv)
{
	struct ts_opts o;
	struct ts_run run;
	enum ts_report_format fmt = TS_FMT_TEXT;
	int done, code;
	size_t counts[3];

	code = cmd_parse_options(argc, argv, "diff", diff_usage, "config env format help", &o, &done);
	if (done)
		return code;
	if (o.format && ts_report_format_parse(o.format, &fmt))
		return ts_error_print();
	o.quiet = 1;
	if (open_kept(&run, &o) || ts_run_schema(&run))
		return ts_run_fail(&run);
	ts_report_render_schema(&run.rep, fmt, stdout);
	ts_report_schema_counts(&run.rep, counts);
	ts_run_close(&run);
	return counts[0] ? TS_EXIT_GATE : TS_EXIT_OK;
}

int cmd_ddt(int argc, char **argv)
{
	struct ts_opts o;
	struct ts_run run;
	enum ts_report_format fmt = TS_FMT_TEXT;
	const char *which;
	json_t *res;
	int done, code;

	code = cmd_parse_options(argc, argv, "ddt", ddt_usage, "config env format quiet help ARGS",
				 &o, &done);
	if (done)
		return code;
	if (o.format && ts_report_format_parse(o.format, &fmt))
		return ts_error_print();
	which = o.n_args ? o.args[0] : "dev";
	if (o.n_args > 1 || (strcmp(which, "prod") && strcmp(which, "dev"))) {
		ts_error_set(TS_EXIT_USAGE, "which side? expected prod or dev, got \"%s\"",
			     o.n_args > 1 ? o.args[1] : which);
		return ts_error_print();
	}
	if (open_kept(&run, &o))
		return ts_run_fail(&run);
	/* run alone, it always runs and always counts */
	run.cfg.ddt = TS_GATE_FAIL;
	if (ts_run_ddt(&run, !strcmp(which, "prod") ? &run.env.prod : &run.env.dev))
		return ts_run_fail(&run);
	ts_report_render_data(&run.rep, fmt, stdout);
	res = ts_report_data_find(&run.rep, "ddt", which);
	code = res && !strcmp(ts_json_str(res, "status"), "failed") ?
	       TS_EXIT_GATE : TS_EXIT_OK;
	ts_run_close(&run);
	return code;
}

int cmd_equal(int argc, char **argv)
{
	struct ts_opts o;
	struct ts_run run;
	enum ts_report_format fmt = TS_FMT_TEXT;
	json_t *v;
	size_t i;
	int done, code;

	code = cmd_parse_options(argc, argv, "equal", equal_usage, "config env format quiet help",
				 &o, &done);
	if (done)
		return code;
	if (o.format && ts_report_format_parse(o.format, &fmt))
		return ts_error_print();
	/* the schema diff says which tables changed shape: those are not compared */
	if (open_kept(&run, &o) || ts_run_schema(&run) || ts_run_equal(&run))
		return ts_run_fail(&run);
	ts_report_render_data(&run.rep, fmt, stdout);
	code = TS_EXIT_OK;
	json_array_foreach(run.rep.data, i, v)
		if (!strcmp(ts_json_str(v, "status"), "failed"))
			code = TS_EXIT_GATE;
	ts_run_close(&run);
	return code;
}

/* The snapshots and when each was taken. */
static void list_snapshots(struct ts_run *run)
{
	struct strvec names = STRVEC_INIT;

	ts_env_snapshots(&run->env, &names);
	if (!names.nr)
		printf("no snapshots; \"twinstage snapshot NAME\" saves the dev side as it is\n");
	for (size_t i = 0; i < names.nr; i++) {
		struct ts_side snap;
		struct stat st;
		char when[32] = "?";

		ts_env_snapshot_side(&run->env, names.v[i], &snap);
		if (!stat(snap.dir, &st))
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime(&st.st_mtime));
		printf("%-20s %s%s\n", names.v[i], when,
		       strcmp(names.v[i], TS_SNAPSHOT_BASE) ? "" : "  (the dev side before migrating)");
		ts_env_side_release(&snap);
	}
	strvec_clear(&names);
}

/* The options of snapshot and reset: at most one snapshot name. */
static int snapshot_options(int argc, char **argv, const char *cmd, const char *usage,
			    struct ts_opts *o, int *done)
{
	int code = cmd_parse_options(argc, argv, cmd, usage, "config env quiet help ARGS", o, done);

	if (!*done && o->n_args > 1) {
		*done = 1;
		ts_error_set(TS_EXIT_USAGE, "one snapshot name at a time, got \"%s\" and \"%s\"",
			     o->args[0], o->args[1]);
		return ts_error_print();
	}
	return code;
}

int cmd_snapshot(int argc, char **argv)
{
	struct ts_opts o;
	struct ts_run run;
	int done, code;
	double t0;

	code = snapshot_options(argc, argv, "snapshot", snapshot_usage, &o, &done);
	if (done)
		return code;
	if (open_kept(&run, &o))
		return ts_run_fail(&run);
	if (!o.n_args) {
		list_snapshots(&run);
		ts_run_close(&run);
		return 0;
	}
	run.env.quiet = run.quiet;
	t0 = now_ms();
	if (ts_clone_snapshot(&run.env, o.args[0]))
		return ts_run_fail(&run);
	printf("dev side saved as \"%s\" in %.2f s (%s)\n", o.args[0], (now_ms() - t0) / 1000.0,
	       run.env.clone ? run.env.clone : "physical");
	ts_run_close(&run);
	return 0;
}

int cmd_reset(int argc, char **argv)
{
	struct ts_opts o;
	struct ts_run run;
	struct ts_clone_info info = { 0 };
	const char *name;
	int done, code;
	double t0;

	code = snapshot_options(argc, argv, "reset", reset_usage, &o, &done);
	if (done)
		return code;
	name = o.n_args ? o.args[0] : NULL;
	if (open_kept(&run, &o))
		return ts_run_fail(&run);
	run.env.quiet = run.quiet;
	t0 = now_ms();
	if (ts_clone_reset(&run.env, name, &info)) {
		ts_clone_info_free(&info);
		return ts_run_fail(&run);
	}
	printf("dev side reset to %s%s%s in %.2f s (%s)\n", name ? "\"" : "", name ? name : "before migrating",
	       name ? "\"" : "", (now_ms() - t0) / 1000.0, run.env.clone ? run.env.clone : "physical");
	ts_clone_info_free(&info);
	ts_run_close(&run);
	return 0;
}
