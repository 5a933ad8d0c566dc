/*
 * cmd_rehearse.c: `twinstage rehearse`, the whole flow in one command,
 * with the exit code a CI pipeline gates on.
 */
#include "cmd/cmd.h"
#include "core/error.h"
#include "core/util.h"
#include "release/manifest.h"
#include "rehearse/check.h"
#include "rehearse/phase.h"
#include "rehearse/apply.h"
#include "rehearse/plans.h"
#include "rehearse/run.h"
#include "rehearse/safety.h"
#include "rehearse/timing.h"
#include "report/render.h"

#include <stdio.h>

static const char usage[] =
"usage: twinstage rehearse [-c twinstage.ini] [--env FILE] [--keep | --reuse] [--format FORMAT] [-q]\n"
"\n"
"Builds the production clone and the dev side, runs the current version's\n"
"scenarios on the production clone (the baseline), migrates the dev side,\n"
"compares the schemas, runs the double dump test on both sides and\n"
"compares the data the migration did not touch, runs each version against\n"
"each schema, rehearses the down migrations when there are some, writes\n"
"the reports and the manifest (what verify and promote check) and removes\n"
"the environments.\n"
"\n"
"With [phase] sections, the migrations are applied phase by phase; after\n"
"each, the versions it names must pass on the dev side, its equal tables\n"
"must hold, and its down migrations must lead back to the phase before.\n"
"\n"
"  -c, --config FILE   configuration (default: twinstage.ini)\n"
"      --env FILE      take [environments] from FILE (e.g. envs/local.ini)\n"
"      --keep          keep both environments running afterwards\n"
"      --reuse         take the kept environments (of --keep, \"up\" or an earlier\n"
"                      --reuse) and return the dev side to before migrating\n"
"                      (\"twinstage reset\": O(1) on a copy-on-write pool)\n"
"                      instead of copying production again; builds them when\n"
"                      none are kept, and keeps them afterwards\n"
"      --no-load       do not run the live versions while the dev side migrates\n"
"                      (the [load] section; on by default)\n"
"  -f, --format F      what to print: text (default), json, junit, markdown, html,\n"
"                      github (Actions annotations; the Markdown report goes to\n"
"                      $GITHUB_STEP_SUMMARY), comment (for a pull request);\n"
"                      each is also written under <workdir>/reports/<run>/\n"
"  -q, --quiet         no progress lines\n"
"\n"
"exit codes: 0 compatible, 1 the gate failed (an incompatibility was found),\n"
"2 usage or configuration error (also: the scenarios fail before migrating),\n"
"3 an environment could not be provisioned or reached\n";

int cmd_rehearse(int argc, char **argv)
{
	struct ts_opts o;
	struct ts_run run;
	enum ts_report_format fmt = TS_FMT_TEXT;
	int done, code, r;

	code = cmd_parse_options(argc, argv, "rehearse", usage,
				 "config env format keep reuse quiet load no-load help", &o, &done);
	if (done)
		return code;
	if (o.format && ts_report_format_parse(o.format, &fmt))
		return ts_error_print();
	if (ts_run_open(&run, o.config, o.env_file)) {
		return ts_run_fail(&run);
	}
	run.quiet = o.quiet;
	run.load = o.load > 0 || (!o.load && run.cfg.load);
	run.fingerprints = 1;	/* the states the manifest keeps */

	/* a folder that cannot be read stops the run before anything is built */
	if (ts_run_plan(&run)) {
		return ts_run_fail(&run);
	}
	/* a dev guest may boot on while the production clone is checked: up before the first migration */
	run.defer_dev = 1;
	r = o.reuse ? ts_run_reuse(&run) : ts_run_provision(&run);
	if (!r)
		r = ts_run_read_production(&run);
	/* before any scenario runs there: an application command may write */
	if (!r)
		r = ts_run_ddt(&run, &run.env.prod);
	/*
	 * before anything is timed: an emulated guest's gates scaled to its
	 * speed (after the double dump test, whose scratch server, the speed
	 * probe's on this machine, starts while the production clone is dumped)
	 */
	if (!r)
		r = ts_run_timing(&run);
	if (!r && run.cfg.current) {
		double t0 = now_ms();
		struct ts_report_stage *st = ts_run_stage(&run, "baseline",
			"the current version on the production clone");

		r = ts_run_stage_end(&run, st, t0,
				     ts_run_check(&run, run.cfg.current, &run.env.prod,
						  TS_CHECK_BASELINE, 0));
	}
	if (!r)
		r = ts_run_dev_ready(&run);
	/* the new major against production's, before any migration: the server is all that differs */
	if (!r && run.cfg.dev_next)
		r = ts_run_plans(&run);
	if (!r && run.cfg.n_phases) {
		/* a rollout in several releases: each phase in turn */
		r = ts_run_phases(&run);
	} else {
		if (!r)
			r = ts_run_migrate(&run);
		if (!r)
			r = ts_run_schema(&run);
		if (!r)
			r = ts_run_ddt(&run, &run.env.dev);
		if (!r)
			r = ts_run_equal(&run);
		if (!r)
			r = ts_run_matrix(&run, 0);
		if (!r)
			ts_run_evidence(&run);
		if (!r)
			r = ts_run_rollback(&run);
	}
	if (r) {
		ts_report_fail(&run.rep);
		ts_error_print();
	}
	code = ts_run_finish(&run, fmt);
	/* passing or not: verify and promote read it */
	if (ts_manifest_write(&run))
		ts_error_print();
	else if (run.report_dir)
		ts_run_say(&run, "manifest: %s/%s (twinstage verify / promote --manifest it)", run.report_dir,
			   TS_MANIFEST_NAME);

	if (o.keep || o.reuse) {
		/* a run that stopped early: the dev side kept up, and its snapshot "base" made */
		if (ts_run_dev_ready(&run))
			ts_error_print();
		ts_run_say(&run, "kept: production clone on 127.0.0.1:%d, dev side on 127.0.0.1:%d (user %s, database %s); \"twinstage down\" removes them",
			   run.env.prod.port, run.env.dev.port, TS_DB_USER, run.cfg.dbname);
	} else {
		ts_run_say(&run, "teardown: removing both environments");
		if (ts_env_down(&run.env)) {
			int c = ts_error_print();

			if (!code)
				code = c;
		}
	}
	ts_run_close(&run);
	return code;
}
