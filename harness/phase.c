/*
 * phase.c: resolving [phase] sections against the migrations folder, and
 * rehearsing a rollout phase by phase.
 */
#include "phase.h"
#include "config.h"
#include "error.h"
#include "pg.h"
#include "run.h"
#include "schema.h"
#include "strbuf.h"
#include "strvec.h"
#include "tracking.h"
#include "util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The versions of the folder, for a message: "1, 2, 3". */
static char *versions_of(const struct ts_migrations *set)
{
	struct strbuf sb = STRBUF_INIT;

	for (size_t i = 0; i < set->n; i++)
		if (set->v[i].version)
			strbuf_addf(&sb, "%s%s", sb.len ? ", " : "", set->v[i].version);
	return strbuf_detach(&sb);
}

/* Marks in `in` the migrations one item names; 0 when it names none. */
static size_t match_item(const struct ts_migrations *set, const char *item, char *in)
{
	const char *dash = strchr(item, '-');
	size_t found = 0;

	for (size_t i = 0; i < set->n; i++)
		if (!strcmp(set->v[i].file, item)) {
			in[i] = 1;
			return 1;
		}
	for (size_t i = 0; i < set->n; i++) {
		const char *v = set->v[i].version;
		int hit;

		if (!v)
			continue;
		if (dash && dash > item && dash[1]) {
			char *lo = xstrndup(item, (size_t)(dash - item));

			hit = ts_version_cmp(lo, v) <= 0 && ts_version_cmp(v, dash + 1) <= 0;
			free(lo);
		} else {
			hit = !ts_version_cmp(item, v);
		}
		if (hit) {
			in[i] = 1;
			found++;
		}
	}
	return found;
}

int ts_phases_resolve(const struct ts_config *cfg, const struct ts_migrations *set,
		      struct ts_phase_plan **out)
{
	size_t np = cfg->n_phases;
	int *owner = xcalloc(set->n + 1, sizeof(*owner));	/* phase index + 1 */
	char *in = xcalloc(set->n + 1, 1);
	struct ts_phase_plan *plans = xcalloc(np + 1, sizeof(*plans));
	const char *last_version = NULL;
	size_t last_phase = 0;
	int r = 0;

	for (size_t p = 0; p < np && !r; p++) {
		const struct ts_phase *ph = &cfg->phases[p];
		const char *where = ph->migrations_origin ? ph->migrations_origin : ph->origin;
		const char *high = NULL;

		plans[p].cfg = ph;
		for (size_t k = 0; k < ph->migrations.nr && !r; k++) {
			memset(in, 0, set->n);
			if (!match_item(set, ph->migrations.v[k], in)) {
				char *vs = versions_of(set);

				r = ts_error_set(TS_EXIT_USAGE,
						 "%s: [phase %s] migrations: no migration has version or file name \"%s\" (versions here: %s)",
						 where, ph->name, ph->migrations.v[k], *vs ? vs : "none");
				free(vs);
				break;
			}
			for (size_t i = 0; i < set->n && !r; i++) {
				if (!in[i])
					continue;
				if (owner[i] && owner[i] != (int)p + 1)
					r = ts_error_set(TS_EXIT_USAGE,
							 "%s: [phase %s] names %s, which [phase %s] applies already",
							 where, ph->name, set->v[i].file,
							 cfg->phases[owner[i] - 1].name);
				owner[i] = (int)p + 1;
			}
		}
		/* a phase applies only versions above every earlier phase's */
		for (size_t i = 0; i < set->n && !r; i++) {
			const char *v = set->v[i].version;

			if (owner[i] != (int)p + 1 || !v)
				continue;
			if (last_version && ts_version_cmp(v, last_version) <= 0)
				r = ts_error_set(TS_EXIT_USAGE,
						 "%s: [phase %s] applies version %s, which is not above version %s of [phase %s]: phases apply migrations in version order",
						 where, ph->name, v, last_version, cfg->phases[last_phase].name);
			high = v;
		}
		if (high) {
			last_version = high;
			last_phase = p;
		}
	}
	/* a migrate run applies repeatables after the versions */
	for (size_t i = 0; i < set->n; i++)
		if (!owner[i] && set->v[i].repeatable)
			owner[i] = 1;
	for (size_t p = 0; p < np && !r; p++) {
		struct ts_migrations *v = &plans[p].set;

		v->format = set->format;
		v->v = xcalloc(set->n + 1, sizeof(*v->v));
		for (size_t i = 0; i < set->n; i++)
			if (owner[i] == (int)p + 1)
				v->v[v->n++] = set->v[i];
	}
	free(owner);
	free(in);
	if (r) {
		ts_phases_free(plans, np);
		return -1;
	}
	*out = plans;
	return 0;
}

static int in_a_phase(const struct ts_phase_plan *plans, size_t np, const struct ts_migration *m)
{
	for (size_t p = 0; p < np; p++)
		for (size_t i = 0; i < plans[p].set.n; i++)
			if (!strcmp(plans[p].set.v[i].file, m->file))
				return 1;
	return 0;
}

int ts_phases_check_pending(const struct ts_config *cfg, const struct ts_phase_plan *plans,
			    const struct ts_migrations *set, const struct ts_tracker *t,
			    const struct ts_tracking_state *prod)
{
	for (size_t i = 0; i < set->n; i++) {
		const struct ts_migration *m = &set->v[i];
		char *sum = NULL;
		int applied;

		if (in_a_phase(plans, cfg->n_phases, m))
			continue;
		applied = prod && ts_tracking_applied(t, prod, m, &sum);
		free(sum);
		if (!applied) {
			ts_error_set(TS_EXIT_USAGE,
				     "%s: migration %s is pending (production has not applied it), but no [phase] names it",
				     cfg->phases[cfg->n_phases - 1].origin, m->file);
			ts_error_hint("add its version to the migrations of the phase that ships it");
			return -1;
		}
	}
	return 0;
}

void ts_phases_free(struct ts_phase_plan *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i].set.v);	/* the migrations themselves are the folder's */
	free(v);
}

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
	r = ts_schema_snapshot(dev, run->tracker.table, out);
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
	r = ts_migrations_apply(dev, set, &run->tracker, run->have_prod_state ? &run->prod_state : NULL,
				&scratch, NULL, 0);
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
