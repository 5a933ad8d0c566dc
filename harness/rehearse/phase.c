/*
 * phase.c: rehearsing a rollout phase by phase.
 */
#include "rehearse/phase.h"
#include "config/config.h"
#include "config/phase_plan.h"
#include "core/error.h"
#include "core/strbuf.h"
#include "core/strvec.h"
#include "core/util.h"
#include "core/wrapper.h"
#include "pg/schema.h"
#include "rehearse/check.h"
#include "rehearse/apply.h"
#include "rehearse/run.h"
#include "rehearse/safety.h"
#include "rehearse/tool.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int has_app(const struct strvec *apps, const char *name)
{
	return strvec_find(apps, name) >= 0;
}

/* The report's list of phases: name, title, the versions live after, the files. */
static json_t *phases_json(const struct ts_phase_plan *plans, size_t n)
{
	json_t *a = json_array();

	for (size_t p = 0; p < n; p++) {
		const struct ts_phase *ph = plans[p].cfg;
		json_t *apps = json_array(), *files = json_array();

		for (size_t i = 0; i < ph->apps.nr; i++)
			json_array_append_new(apps, json_string(ph->apps.v[i]));
		for (size_t i = 0; i < plans[p].set.n; i++)
			json_array_append_new(files, json_string(plans[p].set.v[i].file));
		json_array_append_new(a, json_pack("{s:s, s:s?, s:o, s:o}", "name", ph->name,
						   "title", ph->title, "apps", apps, "migrations", files));
	}
	return a;
}

/*
 * Every version on the dev side after the phase: the ones it names must
 * pass (the gate); the others run for information.
 */
static int phase_matrix(struct ts_run *run, const struct ts_phase *ph, const struct strvec *live_before)
{
	struct ts_report_stage *st;
	double t0 = now_ms();
	int r = 0;
	char *what = xstrfmt("phase %s: each version on the dev side", ph->name);

	st = ts_run_stage(run, "check", what);
	free(what);
	for (size_t i = 0; i < run->cfg.n_apps && !r; i++) {
		const char *app = run->cfg.apps[i].name;
		int gating = has_app(&ph->apps, app);

		r = ts_run_check(run, app, &run->env.dev,
				 has_app(live_before, app) ? TS_CHECK_BACKWARD : TS_CHECK_NEXT, gating);
	}
	return ts_run_stage_end(run, st, t0, r);
}

/* The versions that are not live yet, on the production clone: which need a migration first. */
static int prod_row(struct ts_run *run)
{
	int r = 0;

	for (size_t i = 0; i < run->cfg.n_apps && !r; i++)
		if (strcmp(run->cfg.apps[i].name, run->cfg.current))
			r = ts_run_check(run, run->cfg.apps[i].name, &run->env.prod, TS_CHECK_FORWARD, 0);
	return r;
}

static int snapshot_dev(struct ts_run *run, struct ts_schema *out)
{
	PGconn *dev = ts_env_connect(&run->env, &run->env.dev, NULL);
	int r;

	if (!dev)
		return -1;
	/* kept to compare with after the way back: with every definition, as the oids will be gone */
	r = ts_schema_snapshot(dev, run->tracker.table, out);
	if (!r && (r = ts_schema_describe(dev, out, NULL)))
		ts_schema_free(out);
	PQfinish(dev);
	return r;
}

/*
 * After a phase's way back was rehearsed: the phase again, quietly, as it
 * was. 1: it does not apply again (recorded as a failed check).
 */
static int reapply(struct ts_run *run, const struct ts_migrations *set)
{
	struct ts_report scratch;
	PGconn *dev = ts_env_connect(&run->env, &run->env.dev, NULL);
	int r;

	if (!dev)
		return -1;
	ts_report_init(&scratch, "reapply");
	if (run->cfg.tool) {
		const char *cmd = NULL;

		for (size_t i = 0; i < run->cfg.n_phases; i++)
			if (!strcmp(run->cfg.phases[i].name, run->phase))
				cmd = run->cfg.phases[i].command;
		r = ts_tool_reapply(run, cmd ? cmd : run->cfg.mig_command);
	} else {
		r = ts_migrations_apply(dev, set, &run->tracker, run->have_prod_state ? &run->prod_state : NULL,
					&scratch, NULL, 0);
	}
	ts_report_free(&scratch);
	PQfinish(dev);
	if (r < 0 && ts_error_class() == TS_EXIT_GATE) {
		/* down then up again does not round-trip: a finding, not a crash */
		char *name = xstrfmt("redo of phase %s: its migrations apply again after the way back", run->phase);
		char *why = xstrfmt("after the down migrations, phase %s does not apply again: %s", run->phase,
				    ts_error_message());

		ts_run_data_failed(run, "rollback", name, NULL, why, run->cfg.rollback == TS_GATE_FAIL);
		ts_error_clear();
		free(name);
		free(why);
		return 1;
	}
	if (r < 0)
		return ts_error_prefix("applying phase %s again after rehearsing its way back", run->phase);
	return 0;
}

/* Records the migrations of the phases that did not run. */
static void not_run(struct ts_run *run, const struct ts_phase_plan *pl)
{
	for (size_t i = 0; i < pl->set.n; i++) {
		struct ts_report_migration *m = ts_report_migration_add(&run->rep, pl->set.v[i].file);

		m->status = xstrdup("not run");
		m->phase = xstrdup(pl->cfg->name);
	}
}

int ts_run_phases(struct ts_run *run)
{
	struct ts_phase_plan *plans;
	struct strvec live = STRVEC_INIT, during = STRVEC_INIT;
	size_t np = run->cfg.n_phases;
	int r, stopped = 0;

	if (ts_run_plan(run) ||
	    ts_phases_check_pending(&run->cfg, run->plans, &run->set, &run->tracker,
				    run->have_prod_state ? &run->prod_state : NULL))
		return -1;
	plans = run->plans;
	json_decref(run->rep.phases);
	run->rep.phases = phases_json(plans, np);
	strvec_push(&live, run->cfg.current);
	r = prod_row(run);
	for (size_t p = 0; p < np && !r; p++) {
		const struct ts_phase *ph = plans[p].cfg;
		struct ts_schema before;
		int want_back = run->cfg.rollback != TS_GATE_OFF, passed = 1;

		if (stopped) {
			not_run(run, &plans[p]);
			continue;
		}
		run->phase = ph->name;
		{
			struct strbuf apps = STRBUF_INIT;

			for (size_t i = 0; i < ph->apps.nr; i++)
				strbuf_addf(&apps, "%s%s", i ? ", " : "", ph->apps.v[i]);
			if (run->cfg.tool)
				ts_run_say(run, "phase %s%s%s%s: %s; live after it: %s", ph->name,
					   ph->title ? " (" : "", ph->title ? ph->title : "", ph->title ? ")" : "",
					   ph->command, apps.buf);
			else
				ts_run_say(run, "phase %s%s%s%s: %zu migration%s; live after it: %s", ph->name,
					   ph->title ? " (" : "", ph->title ? ph->title : "", ph->title ? ")" : "",
					   plans[p].set.n, plans[p].set.n == 1 ? "" : "s", apps.buf);
			strbuf_release(&apps);
		}
		if (want_back && (r = snapshot_dev(run, &before)))
			break;
		/*
		 * What runs while it migrates: the versions live before it that
		 * stay live after it. One that is retired by this phase is gone
		 * before a contract migration runs; one that is new arrives
		 * after an expand. (None stays: a hard switch; the old ones run.)
		 */
		strvec_clear(&during);
		for (size_t i = 0; i < live.nr; i++)
			if (has_app(&ph->apps, live.v[i]))
				strvec_push(&during, live.v[i]);
		run->live = during.nr ? &during : &live;
		r = ts_run_migrate_set(run, &plans[p].set);
		run->live = NULL;
		if (!r)
			r = phase_matrix(run, ph, &live);
		if (!r)
			r = ts_run_equal_phase(run, ph);
		if (!r && want_back) {
			r = ts_run_rollback_phase(run, &before, &live, &passed);
			if (!r && passed && (r = reapply(run, &plans[p].set)) > 0) {
				passed = 0;
				r = 0;
			}
		}
		if (want_back)
			ts_schema_free(&before);
		if (!r && !passed) {
			ts_report_note(&run->rep,
				       "phase %s's way back failed, so the phases after it were not rehearsed",
				       ph->name);
			stopped = 1;
		}
		/* a failed migration leaves a state no later phase starts from */
		if (ts_run_migration_failed(run))
			stopped = 1;
		strvec_clear(&live);
		for (size_t i = 0; i < ph->apps.nr; i++)
			strvec_push(&live, ph->apps.v[i]);
	}
	run->phase = NULL;
	/* the end state, as a one-phase rehearsal checks it */
	if (!r && !stopped)
		r = ts_run_schema(run);
	if (!r && !stopped)
		r = ts_run_ddt(run, &run->env.dev);
	if (!r && !stopped)
		r = ts_run_equal(run);
	if (!r)
		ts_run_evidence(run);
	strvec_clear(&live);
	strvec_clear(&during);
	return r;
}
