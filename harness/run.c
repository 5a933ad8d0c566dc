/*
 * run.c: the stages of the rehearsal, in the order of the flow:
 *
 *	provision → clone → baseline → migrate → check → report → teardown
 *
 * Each stage records itself in the report (name, duration, outcome), so
 * the report shows where the time went and where a run stopped.
 */
#include "run.h"
#include "clone.h"
#include "ddt.h"
#include "equal.h"
#include "error.h"
#include "load.h"
#include "migrate.h"
#include "pg.h"
#include "phase.h"
#include "scenario.h"
#include "schema.h"
#include "strvec.h"
#include "trace.h"
#include "util.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ts_run_open(struct ts_run *run, const char *config, const char *env_file)
{
	memset(run, 0, sizeof(*run));
	if (ts_config_load(&run->cfg, config ? config : "twinstage.ini", env_file))
		return -1;
	run->have_config = 1;
	if (ts_env_init(&run->env, &run->cfg))
		return -1;
	run->have_env = 1;
	if (ts_env_lock(&run->env))
		return -1;
	ts_report_init(&run->rep, run->cfg.name);
	run->have_report = 1;
	run->rep.backend = xstrdup(run->cfg.backend);
	run->rep.max_lock_ms = run->cfg.max_lock_ms;
	run->rep.max_stall_ms = run->cfg.max_stall_ms;
	run->rep.lint_fails = run->cfg.lint == TS_GATE_FAIL;
	if (run->cfg.current)
		run->rep.current = xstrdup(run->cfg.current);
	if (run->cfg.next)
		run->rep.next = xstrdup(run->cfg.next);
	return 0;
}

void ts_run_close(struct ts_run *run)
{
	if (run->have_prod_state)
		ts_tracking_state_free(&run->prod_state);
	if (run->planned) {
		ts_phases_free(run->plans, run->cfg.n_phases);
		ts_migrations_free(&run->set);
		ts_tracker_release(&run->tracker);
	}
	if (run->have_report)
		ts_report_free(&run->rep);
	if (run->have_env)
		ts_env_release(&run->env);
	if (run->have_config)
		ts_config_free(&run->cfg);
	free(run->report_dir);
	memset(run, 0, sizeof(*run));
}

int ts_run_fail(struct ts_run *run)
{
	int code = ts_error_print();

	ts_run_close(run);
	return code;
}

void ts_run_say(struct ts_run *run, const char *fmt, ...)
{
	va_list ap;

	if (run->quiet)
		return;
	fputs("twinstage: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

struct ts_report_stage *ts_run_stage(struct ts_run *run, const char *name, const char *what)
{
	ts_run_say(run, "%s: %s", name, what);
	return ts_report_stage_add(&run->rep, name);
}

int ts_run_stage_end(struct ts_run *run, struct ts_report_stage *st, double t0, int r)
{
	st->ms = now_ms() - t0;
	if (run->phase) {
		char *d = xstrfmt("phase %s%s%s", run->phase, st->detail ? ": " : "",
				  st->detail ? st->detail : "");

		free(st->detail);
		st->detail = d;
	}
	free(st->status);
	st->status = xstrdup(r ? "failed" : "ok");
	if (!run->quiet && st->ms >= 1000)
		fprintf(stderr, "twinstage: %s: done in %.1f s\n", st->name, st->ms / 1000.0);
	return r;
}

/* Which root each side's guest booted, asked from inside it (dualboot), for the report. */
static int prove_booted(struct ts_run *run)
{
	struct ts_env *env = &run->env;

	if (!env->ops->booted)
		return 0;
	free(run->rep.prod_booted);
	free(run->rep.dev_booted);
	run->rep.prod_booted = run->rep.dev_booted = NULL;
	return env->ops->booted(env, &env->prod, &run->rep.prod_booted) ||
	       env->ops->booted(env, &env->dev, &run->rep.dev_booted) ? -1 : 0;
}

/* What the clone stage did, in the report and on the terminal. */
static void clone_done(struct ts_run *run, struct ts_report_stage *st, struct ts_clone_info *info,
		       const char *how)
{
	struct ts_env *env = &run->env;

	run->rep.prod_port = env->prod.port;
	run->rep.dev_port = env->dev.port;
	if (env->clone) {
		free(run->rep.clone);
		run->rep.clone = xstrdup(env->clone);
		free(st->detail);
		st->detail = xstrfmt("%s, dev side %s in %.2f s", env->clone, how, info->dev_ms / 1000.0);
	}
	if (info->source) {
		free(run->rep.clone_source);
		run->rep.clone_source = xstrdup(info->source);
	}
	run->rep.clone_dev_ms = info->dev_ms;
	if (info->note) {
		ts_run_say(run, "note: %s", info->note);
		free(run->rep.clone_note);
		run->rep.clone_note = xstrdup(info->note);
	}
	ts_clone_info_free(info);
}

int ts_run_provision(struct ts_run *run)
{
	struct ts_env *env = &run->env;
	struct ts_clone_info info = { 0 };
	struct ts_report_stage *st;
	double t0;
	int r;

	if (ts_env_load(env) > 0) {
		ts_run_say(run, "removing the environments of an earlier run");
		if (ts_env_down(env))
			return -1;
	}
	ts_error_clear();
	env->quiet = run->quiet;
	t0 = now_ms();
	st = ts_run_stage(run, "provision", "choosing the ports and the storage of both sides");
	r = ts_clone_plan(env, &info) || ts_env_up(env) ? -1 : 0;
	run->rep.prod_port = env->prod.port;
	run->rep.dev_port = env->dev.port;
	if (ts_run_stage_end(run, st, t0, r)) {
		ts_clone_info_free(&info);
		return -1;
	}

	t0 = now_ms();
	st = ts_run_stage(run, "clone", run->cfg.dsn ? "copying the source into the production clone" :
				     run->cfg.seed ? "seeding the production clone" :
				     "an empty production clone (no [source])");
	r = ts_clone_source(env, &info);
	if (!r && info.source)
		ts_run_say(run, "clone: the production clone from %s in %.1f s", info.source,
			   info.prod_ms / 1000.0);
	if (!r) {
		ts_run_say(run, "clone: the dev side (127.0.0.1:%d), a %s copy of the production clone",
			   env->dev.port, env->clone);
		r = ts_clone_dev(env, &info);
	}
	r = r || prove_booted(run) ? -1 : 0;
	clone_done(run, st, &info, "copied");
	return ts_run_stage_end(run, st, t0, r);
}

int ts_run_reuse(struct ts_run *run)
{
	struct ts_env *env = &run->env;
	struct ts_clone_info info = { 0 };
	struct ts_report_stage *st;
	double t0;
	int r, loaded = ts_env_load(env);

	if (loaded < 0)
		return -1;
	if (!loaded) {
		ts_run_say(run, "no kept environments to reuse: building them");
		return ts_run_provision(run);
	}
	env->quiet = run->quiet;
	t0 = now_ms();
	st = ts_run_stage(run, "clone", "reusing the kept environments: the dev side back to before migrating");
	r = ts_env_ensure_running(env) || ts_clone_reset(env, NULL, &info) || prove_booted(run) ? -1 : 0;
	info.source = xstrdup("kept (rehearse --reuse)");
	clone_done(run, st, &info, "reset");
	return ts_run_stage_end(run, st, t0, r);
}

int ts_run_plan(struct ts_run *run)
{
	enum ts_tracking_tool tool;

	if (run->planned)
		return 0;
	if (ts_migrations_discover(run->cfg.migrations, &run->set))
		return -1;
	ts_tracking_tool_parse(run->cfg.tracking, &tool);
	if (tool == TS_TRACK_AUTO)
		tool = ts_tracking_for_format(run->set.format);
	ts_tracker_init(&run->tracker, tool, run->cfg.tracking_table);
	run->planned = 1;
	free(run->rep.tracking);
	free(run->rep.tracking_table);
	run->rep.tracking = xstrdup(ts_tracking_tool_name(tool));
	run->rep.tracking_table = xstrdup(run->tracker.table);
	/* a [phase] that names no migration is refused before anything is built */
	if (run->cfg.n_phases && ts_phases_resolve(&run->cfg, &run->set, &run->plans))
		return -1;
	return 0;
}

int ts_run_migration_failed(const struct ts_run *run)
{
	for (size_t i = 0; i < run->rep.n_migrations; i++)
		if (run->rep.migrations[i].status && !strcmp(run->rep.migrations[i].status, "failed"))
			return 1;
	return 0;
}

/* The version a side's tracking table is at (NULL: none), or -1. */
static int side_version(struct ts_run *run, PGconn *conn, char **out)
{
	struct ts_tracking_state st;

	*out = NULL;
	if (ts_tracking_read(conn, &run->tracker, &st))
		return -1;
	if (st.latest)
		*out = xstrdup(st.latest);
	ts_tracking_state_free(&st);
	return 0;
}

int ts_run_read_production(struct ts_run *run)
{
	struct ts_tracking_state st;
	struct strvec drift = STRVEC_INIT;
	PGconn *conn;
	int r;

	if (ts_run_plan(run) || !(conn = ts_env_connect(&run->env, &run->env.prod, NULL)))
		return -1;
	r = ts_tracking_read(conn, &run->tracker, &st);
	PQfinish(conn);
	if (r)
		return -1;
	r = ts_tracking_check(&run->tracker, &st, "production clone");
	if (!r) {
		ts_tracking_drift(&run->tracker, &st, &run->set, &drift);
		for (size_t i = 0; i < drift.nr; i++) {
			ts_report_note(&run->rep, "drift: %s", drift.v[i]);
			ts_run_say(run, "drift: %s", drift.v[i]);
		}
		free(run->rep.prod_version);
		run->rep.prod_version = st.latest ? xstrdup(st.latest) : NULL;
	}
	strvec_clear(&drift);
	if (run->have_prod_state)
		ts_tracking_state_free(&run->prod_state);
	run->prod_state = st;
	run->have_prod_state = 1;
	return r;
}

int ts_run_migrate(struct ts_run *run)
{
	if (ts_run_plan(run))
		return -1;
	return ts_run_migrate_set(run, &run->set);
}

int ts_run_migrate_set(struct ts_run *run, const struct ts_migrations *set)
{
	struct ts_report_stage *st;
	PGconn *conn;
	double t0 = now_ms();
	size_t first = run->rep.n_migrations;
	char *what = run->phase ? xstrfmt("phase %s: applying its migrations on the dev side", run->phase)
				: xstrdup("applying pending migrations on the dev side");
	int r;

	st = ts_run_stage(run, "migrate", what);
	free(what);
	if (ts_run_plan(run) || !(conn = ts_env_connect(&run->env, &run->env.dev, NULL)))
		return ts_run_stage_end(run, st, t0, -1);
	st->detail = xstrfmt("%zu file%s, %s, %s table", set->n, set->n == 1 ? "" : "s",
			     ts_mig_format_name(set->format), ts_tracking_tool_name(run->tracker.tool));
	r = 0;
	if (!run->dev_before_read) {	/* a rollout's later phases start where the first did */
		free(run->rep.dev_before);
		r = side_version(run, conn, &run->rep.dev_before);
		run->dev_before_read = 1;
	}
	if (!r) {
		struct ts_trace trace;
		char *observer = ts_env_conninfo(&run->env, &run->env.dev, run->cfg.dbname);

		r = ts_trace_start(&trace, conn, observer, run->cfg.max_lock_ms);
		free(observer);
		if (!r) {
			struct ts_load *load = ts_load_start(run, run->live, PQbackendPID(conn));
			double m0 = now_ms();

			r = ts_migrations_apply(conn, set, &run->tracker,
						run->have_prod_state ? &run->prod_state : NULL, &run->rep,
						&trace, !run->quiet);
			if (load)	/* leaves the error slot (a failed migration's) as it is */
				ts_load_finish(load, run, first, m0, now_ms());
			ts_trace_end(&trace);
		}
	}
	for (size_t i = first; run->phase && i < run->rep.n_migrations; i++)
		run->rep.migrations[i].phase = xstrdup(run->phase);
	if (r >= 0 || ts_error_class() == TS_EXIT_GATE) {
		char *saved = r < 0 ? xstrdup(ts_error_message()) : NULL;

		free(run->rep.dev_after);
		side_version(run, conn, &run->rep.dev_after);
		if (saved) {
			ts_error_set(TS_EXIT_GATE, "%s", saved);
			free(saved);
		}
	}
	PQfinish(conn);
	if (r < 0 && ts_error_class() == TS_EXIT_GATE) {
		/* a migration failed: that is a finding for the report, not a crash */
		ts_run_say(run, "migrate: %s", ts_error_message());
		ts_run_stage_end(run, st, t0, -1);
		return 0;
	}
	return ts_run_stage_end(run, st, t0, r < 0 ? -1 : 0);
}

/* The last dot-separated part of a name, before any argument list. */
static char *short_name(const char *name)
{
	const char *paren = strchr(name, '('), *end = paren ? paren : name + strlen(name);
	const char *p = end;

	while (p > name && p[-1] != '.')
		p--;
	return xstrndup(p, (size_t)(end - p));
}

static int names_have(json_t *names, const char *name)
{
	json_t *v;
	size_t i;

	json_array_foreach(names, i, v)
		if (!strcmp(json_string_value(v), name))
			return 1;
	return 0;
}

/*
 * Links a change to the statement that made it: the first that names the
 * object (and its table); failing that, the first that names its table.
 */
static void link_statement(struct ts_report *rep, json_t *c, const char *obj, const char *table)
{
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < rep->n_migrations; i++) {
			const struct ts_report_migration *m = &rep->migrations[i];

			for (size_t j = 0; j < m->n_stmts; j++) {
				json_t *names = json_object_get(m->stmts[j].facts, "names");

				if (pass == 0 ? names_have(names, obj) && (!table || names_have(names, table))
					      : table && names_have(names, table)) {
					json_object_set_new(c, "file", json_string(m->file));
					json_object_set_new(c, "line", json_integer(m->stmts[j].line));
					return;
				}
			}
		}
}

int ts_run_schema(struct ts_run *run)
{
	struct ts_schema_diff d;
	size_t objects;
	struct ts_report_stage *st;
	PGconn *prod, *dev;
	double t0 = now_ms();
	int r = -1;

	st = ts_run_stage(run, "schema", "reading both schemas from the catalogs");
	if (ts_run_plan(run) || !(prod = ts_env_connect(&run->env, &run->env.prod, NULL)))
		return ts_run_stage_end(run, st, t0, -1);
	if (!(dev = ts_env_connect(&run->env, &run->env.dev, NULL))) {
		PQfinish(prod);
		return ts_run_stage_end(run, st, t0, -1);
	}
	if (!ts_schema_compare(prod, dev, run->tracker.table, &d, &objects)) {
		json_decref(run->rep.schema);
		run->rep.schema = json_array();
		for (size_t i = 0; i < d.n; i++) {
			const struct ts_schema_change *c = &d.v[i];
			json_t *o = json_pack("{s:s, s:s, s:s, s:s?, s:s, s:s?, s:s?, s:[]}",
					      "class", ts_change_class_name(c->cls), "kind", c->kind,
					      "name", c->name, "table", c->table, "change", c->change,
					      "detail", c->detail, "old_name", c->old_name, "evidence");
			const char *col = ts_schema_change_column(c);
			char *obj = col ? xstrdup(col) : short_name(c->name);
			char *old = c->old_name ? short_name(c->old_name) : NULL;
			char *table = c->table && strcmp(c->kind, "table") ? short_name(c->table) : NULL;

			json_object_set_new(o, "short", json_string(old ? old : obj));
			link_statement(&run->rep, o, old ? old : obj, table);
			json_array_append_new(run->rep.schema, o);
			free(obj);
			free(old);
			free(table);
		}
		st->detail = xstrfmt("%zu objects, %zu breaking, %zu risky, %zu additive change%s",
				     objects, d.breaking, d.risky, d.additive, d.n == 1 ? "" : "s");
		ts_schema_diff_free(&d);
		r = 0;
	}
	PQfinish(prod);
	PQfinish(dev);
	return ts_run_stage_end(run, st, t0, r);
}

/*
 * Ties each breaking change to the current version's scenarios that fail
 * on the dev side and name the object (in their SQL or their error), and
 * notes the breaking changes no scenario exercised.
 */
void ts_run_evidence(struct ts_run *run)
{
	json_t *c;
	size_t i;

	json_array_foreach(run->rep.schema, i, c) {
		const char *name = ts_json_str(c, "short");
		json_t *ev = json_object_get(c, "evidence");
		char *quoted;

		if (strcmp(ts_json_str(c, "class"), "breaking"))
			continue;
		quoted = xstrfmt("\"%s\"", name);
		for (size_t j = 0; j < run->rep.n_checks; j++) {
			const struct ts_report_check *k = &run->rep.checks[j];

			/* any version that ran on the migrated dev side is evidence; in a rollout, a live one */
			if (!ts_check_in_matrix(k) || strcmp(k->side, "dev") || (k->phase && !k->gating))
				continue;
			for (size_t n = 0; n < k->n_cases; n++) {
				const struct ts_report_case *cs = &k->cases[n];
				struct strvec names = STRVEC_INIT;

				if (cs->pass)
					continue;
				if (cs->sql)
					ts_sql_names_text(cs->sql, &names);
				if (strvec_find(&names, name) >= 0 || (cs->got && strstr(cs->got, quoted)))
					json_array_append_new(ev, json_sprintf("%s %s:%d \"%s\"", k->app,
						cs->file, cs->line, cs->name ? cs->name : ""));
				strvec_clear(&names);
			}
		}
		free(quoted);
		/* in a rollout, the current version retires: the matrix says when */
		if (!json_array_size(ev) && run->cfg.current && !run->cfg.n_phases)
			ts_report_note(&run->rep,
				       "breaking change not exercised by any scenario of %s: %s %s %s; add a scenario that uses it, or it stays a warning",
				       run->cfg.current, ts_json_str(c, "kind"),
				       ts_json_str(c, "name"),
				       ts_json_str(c, "change"));
	}
}


int ts_run_check(struct ts_run *run, const char *app_name, struct ts_side *side,
		 enum ts_check_role role, int gating)
{
	const struct ts_app *app = ts_config_app(&run->cfg, app_name);
	struct ts_report_check *c = ts_report_check_add(&run->rep, app_name, side->name, role, gating);
	char *logs = path_join(run->cfg.workdir, "logs");
	int r;

	if (run->phase && !strcmp(side->name, "dev"))
		c->phase = xstrdup(run->phase);
	if (!strcmp(side->name, "dev") && ts_run_migration_failed(run)) {
		c->skip = xstrdup("a migration failed");
		free(logs);
		return 0;
	}
	r = ts_scenario_run_app(&run->env, side, app, logs, c);
	free(logs);
	if (!r && !run->quiet)
		fprintf(stderr, "twinstage: check: %s on %s%s%s (%s%s): %zu/%zu passed\n", app_name,
			side->name, c->phase ? " after phase " : "", c->phase ? c->phase : "",
			ts_check_role_name(role), gating || role == TS_CHECK_BASELINE ? "" : ", not gating",
			c->n_cases - c->failed, c->n_cases);
	return r;
}

int ts_run_matrix(struct ts_run *run, int baseline_too)
{
	const struct ts_config *cfg = &run->cfg;
	struct ts_env *env = &run->env;
	struct ts_report_stage *st;
	double t0 = now_ms();
	int r = 0;

	if (!cfg->current)
		return 0;
	st = ts_run_stage(run, "check", "running the compatibility matrix");
	if (baseline_too)
		r = ts_run_check(run, cfg->current, &env->prod, TS_CHECK_BASELINE, 0);
	if (!r)
		r = ts_run_check(run, cfg->current, &env->dev, TS_CHECK_BACKWARD, 1);
	if (!r && cfg->next && strcmp(cfg->next, cfg->current)) {
		r = ts_run_check(run, cfg->next, &env->dev, TS_CHECK_NEXT, 1);
		if (!r && cfg->forward_compat != TS_GATE_OFF)
			r = ts_run_check(run, cfg->next, &env->prod, TS_CHECK_FORWARD,
					 cfg->forward_compat == TS_GATE_FAIL);
	}
	for (size_t i = 0; !r && i < run->rep.n_checks; i++) {
		const struct ts_report_check *c = &run->rep.checks[i];

		if (c->role == TS_CHECK_FORWARD && !c->gating && c->failed)
			ts_report_note(&run->rep,
				       "%s does not work against the old schema (forward compatibility); gate.forward_compat = warn, so this does not fail the gate",
				       c->app);
	}
	return ts_run_stage_end(run, st, t0, r);
}

int ts_run_finish(struct ts_run *run, enum ts_report_format fmt)
{
	char *reports = path_join(run->cfg.workdir, "reports");

	ts_report_decide(&run->rep);
	if (ts_report_write(&run->rep, reports, &run->report_dir)) {
		ts_error_print();
		run->report_dir = NULL;
	}
	free(reports);
	ts_report_render(&run->rep, fmt, stdout);
	fflush(stdout);
	if (run->report_dir)
		ts_run_say(run, "reports in %s", run->report_dir);
	return run->rep.exit_code;
}

/* ---- data safety: the double dump test, equal data, the way back ---- */

static json_t *data_check(const char *check, const char *name, const char *side, int gating)
{
	return json_pack("{s:s, s:s, s:s?, s:s, s:b, s:[]}", "check", check, "name", name,
			 "side", side, "status", "passed", "gating", gating, "excerpt");
}

/* Records a data check, tagged with the phase being rehearsed. */
static void add_data(struct ts_run *run, json_t *check)
{
	if (run->phase && !json_object_get(check, "phase"))
		json_object_set_new(check, "phase", json_string(run->phase));
	ts_report_data_add(&run->rep, check);
}

static void data_failed(json_t *check, const char *object, const char *failure)
{
	json_object_set_new(check, "status", json_string("failed"));
	if (object)
		json_object_set_new(check, "object", json_string(object));
	json_object_set_new(check, "failure", json_string(failure));
}

void ts_run_data_failed(struct ts_run *run, const char *check, const char *name, const char *object,
			const char *failure, int gating)
{
	json_t *c = data_check(check, name, "dev", gating);

	data_failed(c, object, failure);
	add_data(run, c);
}

int ts_run_ddt(struct ts_run *run, struct ts_side *side)
{
	int is_prod = !strcmp(side->name, "prod");
	char *what = xstrfmt("double dump test of the %s", is_prod ? "production clone" : "dev side");
	struct ts_report_stage *st;
	json_t *res = NULL, *before;
	double t0 = now_ms();
	int r;

	/* a half-migrated dev side is not what would be dumped */
	if (run->cfg.ddt == TS_GATE_OFF || (!is_prod && ts_run_migration_failed(run))) {
		free(what);
		return 0;
	}
	st = ts_run_stage(run, "ddt", what);
	r = ts_ddt_run(&run->env, side, !run->quiet, &res);
	if (r) {
		free(what);
		return ts_run_stage_end(run, st, t0, -1);
	}
	json_object_set_new(res, "name", json_string(what));
	/* the production clone's result is a reference, never the release's fault */
	json_object_set_new(res, "gating", json_boolean(!is_prod && run->cfg.ddt == TS_GATE_FAIL));
	before = is_prod ? NULL : ts_report_data_find(&run->rep, "ddt", "prod");
	if (!strcmp(ts_json_str(res, "status"), "failed")) {
		ts_run_say(run, "ddt: %s: %s", what, ts_json_str(res, "failure"));
		if (is_prod)
			ts_report_note(&run->rep,
				       "production's own dump does not restore as it is (%s): fix that apart from this release",
				       ts_json_str(res, "object"));
		/* already broken before the release: not the release's doing */
		if (before && !strcmp(ts_json_str(before, "status"), "failed") &&
		    !strcmp(ts_json_str(before, "object"), ts_json_str(res, "object"))) {
			json_object_set_new(res, "gating", json_false());
			ts_report_note(&run->rep,
				       "the double dump test fails on the production clone too, at %s: it was broken before this release",
				       ts_json_str(res, "object"));
		}
	}
	st->detail = xstrdup(ts_json_str(res, "status"));
	add_data(run, res);
	free(what);
	return ts_run_stage_end(run, st, t0, 0);
}

/* The tables a migration statement changed: locked beyond reading, or in the schema diff. */
static void touched_tables(const struct ts_report *rep, struct strvec *out)
{
	json_t *v, *l;
	size_t i, k;

	for (size_t m = 0; m < rep->n_migrations; m++)
		for (size_t j = 0; j < rep->migrations[m].n_stmts; j++)
			json_array_foreach(json_object_get(rep->migrations[m].stmts[j].facts, "locks"), k, l)
				if (strcmp(ts_json_str(l, "mode"), "AccessShareLock"))
					strvec_push(out, ts_json_str(l, "relation"));
	json_array_foreach(rep->schema, i, v) {
		if (json_is_string(json_object_get(v, "table")))
			strvec_push(out, ts_json_str(v, "table"));
		if (!strcmp(ts_json_str(v, "kind"), "table")) {
			strvec_push(out, ts_json_str(v, "name"));
			if (json_is_string(json_object_get(v, "old_name")))
				strvec_push(out, ts_json_str(v, "old_name"));
		}
	}
}

static int same_shape(const struct ts_rel *a, const struct ts_rel *b)
{
	if (a->cols.nr != b->cols.nr)
		return 0;
	for (size_t i = 0; i < a->cols.nr; i++)
		if (strcmp(a->cols.v[i], b->cols.v[i]) || strcmp(a->types.v[i], b->types.v[i]))
			return 0;
	return 1;
}

/* A difference found by ts_table_compare, into a check. */
static void cmp_failed(json_t *check, const char *what, const struct ts_cmp *c,
		       const char *label_a, const char *label_b)
{
	char *f = xstrfmt("%s: first difference at %s (%lld rows on the %s, %lld on the %s)", what,
			  c->key, c->rows[0], label_a, c->rows[1], label_b);

	data_failed(check, what, f);
	json_array_append_new(json_object_get(check, "excerpt"),
			      json_sprintf("%s: %s", label_a, c->row[0] ? c->row[0] : "(no such row)"));
	json_array_append_new(json_object_get(check, "excerpt"),
			      json_sprintf("%s: %s", label_b, c->row[1] ? c->row[1] : "(no such row)"));
	free(f);
}

/* Compares every table the migration did not touch; the first difference fails `check`. */
static int compare_untouched(struct ts_run *run, PGconn *prod, PGconn *dev, json_t *check)
{
	struct ts_rels rp, rd;
	struct strvec touched = STRVEC_INIT;
	long long rows = 0, tables = 0, differ = 0;
	int r = -1;

	if (ts_rels_read(prod, run->tracker.table, &rp))
		return -1;
	if (ts_rels_read(dev, run->tracker.table, &rd)) {
		ts_rels_free(&rp);
		return -1;
	}
	touched_tables(&run->rep, &touched);
	for (size_t i = 0; i < rp.n; i++) {
		const struct ts_rel *d = ts_rels_find(&rd, rp.v[i].shown);
		struct ts_cmp c;

		if (!d || !same_shape(&rp.v[i], d) || strvec_find(&touched, rp.v[i].shown) >= 0)
			continue;
		if (ts_table_compare(prod, &rp.v[i], dev, d, NULL, NULL, 0, &c))
			goto out;
		tables++;
		rows += c.rows[0];
		if (c.at >= 0 && !differ++) {
			char *what = xstrfmt("table %s, which no migration statement changed, differs", rp.v[i].shown);

			cmp_failed(check, what, &c, "production clone", "dev side");
			json_object_set_new(check, "object", json_string(rp.v[i].shown));
			free(what);
		}
		ts_cmp_free(&c);
	}
	if (differ > 1) {
		char *f = xstrfmt("%s (and %lld more table%s)", ts_json_str(check, "failure"), differ - 1,
				  differ > 2 ? "s" : "");

		json_object_set_new(check, "failure", json_string(f));
		free(f);
	}
	json_object_set_new(check, "tables", json_integer(tables));
	json_object_set_new(check, "rows", json_integer(rows));
	r = 0;
out:
	strvec_clear(&touched);
	ts_rels_free(&rp);
	ts_rels_free(&rd);
	return r;
}

/* One [equal OLD NEW]: OLD on the production clone, NEW on the dev side. */
static int compare_declared(struct ts_run *run, PGconn *prod, PGconn *dev, const struct ts_equal *e)
{
	char *name = xstrfmt("[equal %s %s]%s%s (%s)", e->old_table, e->new_table,
			     run->phase ? " after phase " : "", run->phase ? run->phase : "", e->origin);
	json_t *check = data_check("equal", name, NULL, 1);
	struct ts_rels rp = { 0 }, rd = { 0 };
	const struct ts_rel *a, *b;
	struct ts_cmp c;
	int r = -1;

	if (ts_rels_read(prod, NULL, &rp) || ts_rels_read(dev, NULL, &rd))
		goto out;
	a = ts_rels_find(&rp, e->old_table);
	b = ts_rels_find(&rd, e->new_table);
	if (!a || !b) {
		char *f = xstrfmt("table %s does not exist on the %s", !a ? e->old_table : e->new_table,
				  !a ? "production clone" : "dev side after migrating");

		data_failed(check, !a ? e->old_table : e->new_table, f);
		free(f);
		r = 0;
		goto out;
	}
	if (ts_table_compare(prod, a, dev, b, (const char *const *)e->old_cols,
			     (const char *const *)e->new_cols, e->n_cols, &c)) {
		if (ts_error_class() != TS_EXIT_USAGE)
			goto out;
		/* a column the mapping names is not there: the declaration is wrong */
		data_failed(check, e->new_table, ts_error_message());
		ts_error_clear();
		r = 0;
		goto out;
	}
	json_object_set_new(check, "tables", json_integer(1));
	json_object_set_new(check, "rows", json_integer(c.rows[0]));
	if (c.at >= 0) {
		char *what = xstrfmt("%s (dev side) does not hold the rows of %s (production clone)",
				     b->shown, a->shown);

		cmp_failed(check, what, &c, "production clone", "dev side");
		json_object_set_new(check, "object", json_string(b->shown));
		free(what);
	}
	ts_cmp_free(&c);
	r = 0;
out:
	if (!r) {
		add_data(run, check);
		check = NULL;
	}
	json_decref(check);
	ts_rels_free(&rp);
	ts_rels_free(&rd);
	free(name);
	return r;
}

static PGconn *connect_both(struct ts_run *run, PGconn **dev)
{
	PGconn *prod = ts_env_connect(&run->env, &run->env.prod, NULL);

	*dev = prod ? ts_env_connect(&run->env, &run->env.dev, NULL) : NULL;
	if (prod && !*dev) {
		PQfinish(prod);
		prod = NULL;
	}
	return prod;
}

int ts_run_equal(struct ts_run *run)
{
	struct ts_report_stage *st;
	json_t *check;
	PGconn *prod, *dev;
	double t0 = now_ms();
	int r = 0;

	if (ts_run_migration_failed(run))
		return 0;
	st = ts_run_stage(run, "equal", "comparing the data of both sides");
	if (ts_run_plan(run) || !(prod = connect_both(run, &dev)))
		return ts_run_stage_end(run, st, t0, -1);
	check = data_check("untouched", "tables no migration statement changed are equal", NULL, 1);
	if (compare_untouched(run, prod, dev, check)) {
		json_decref(check);
		r = -1;
	} else {
		json_object_set_new(check, "ms", json_real(now_ms() - t0));
		add_data(run, check);
	}
	for (size_t i = 0; !r && i < run->cfg.n_equal; i++)
		r = compare_declared(run, prod, dev, &run->cfg.equal[i]);
	PQfinish(prod);
	PQfinish(dev);
	return ts_run_stage_end(run, st, t0, r);
}

int ts_run_equal_phase(struct ts_run *run, const struct ts_phase *ph)
{
	struct ts_report_stage *st;
	PGconn *prod, *dev;
	double t0 = now_ms();
	int r = 0;

	if (!ph->n_equal || ts_run_migration_failed(run))
		return 0;
	st = ts_run_stage(run, "equal", "comparing the tables the phase must keep equal");
	if (!(prod = connect_both(run, &dev)))
		return ts_run_stage_end(run, st, t0, -1);
	for (size_t i = 0; !r && i < ph->n_equal; i++)
		r = compare_declared(run, prod, dev, &ph->equal[i]);
	PQfinish(prod);
	PQfinish(dev);
	return ts_run_stage_end(run, st, t0, r);
}

/*
 * After the down parts ran: the schema `before` (NULL: the production
 * clone's), and the same data where untouched.
 */
static int rollback_compare(struct ts_run *run, json_t *check, const struct ts_schema *before)
{
	struct ts_schema_diff d;
	size_t objects;
	PGconn *prod, *dev;
	int r;

	if (!(prod = connect_both(run, &dev)))
		return -1;
	if (before) {
		struct ts_schema now;

		r = ts_schema_snapshot(dev, run->tracker.table, &now);
		if (!r) {
			ts_schema_diff(before, &now, &d);
			ts_schema_free(&now);
		}
	} else {
		r = ts_schema_compare(prod, dev, run->tracker.table, &d, &objects);
	}
	if (!r && d.n) {
		const struct ts_schema_change *c = &d.v[0];
		char *f = xstrfmt("after the down migrations the dev side's schema still differs from %s: %s %s %s%s%s (%zu difference%s)",
				  before ? "the one before the phase" : "the production clone's",
				  c->kind, c->name, c->change, c->detail ? ": " : "",
				  c->detail ? c->detail : "", d.n, d.n == 1 ? "" : "s");

		data_failed(check, c->name, f);
		for (size_t i = 0; i < d.n && i < 5; i++)
			json_array_append_new(json_object_get(check, "excerpt"),
					      json_sprintf("%s %s %s%s%s", d.v[i].kind, d.v[i].name, d.v[i].change,
							   d.v[i].detail ? ": " : "", d.v[i].detail ? d.v[i].detail : ""));
		free(f);
	}
	if (!r)
		ts_schema_diff_free(&d);
	if (!r && strcmp(ts_json_str(check, "status"), "failed")) {
		json_t *data = data_check("untouched", "", NULL, 1);

		r = compare_untouched(run, prod, dev, data);
		if (!r && !strcmp(ts_json_str(data, "status"), "failed")) {
			char *f = xstrfmt("after the down migrations, %s", ts_json_str(data, "failure"));

			data_failed(check, ts_json_str(data, "object"), f);
			json_object_set(check, "excerpt", json_object_get(data, "excerpt"));
			free(f);
		}
		json_decref(data);
	}
	PQfinish(prod);
	PQfinish(dev);
	return r;
}

int ts_run_rollback_phase(struct ts_run *run, const struct ts_schema *before,
			  const struct strvec *apps, int *passed)
{
	struct ts_report_stage *st;
	struct strvec missing = STRVEC_INIT;
	const struct ts_migration **todo;
	size_t n = 0, with_down = 0;
	json_t *check;
	char *name;
	PGconn *dev;
	double t0 = now_ms();
	int r = 0;

	*passed = 0;
	if (run->cfg.rollback == TS_GATE_OFF || ts_run_migration_failed(run))
		return 0;
	todo = xcalloc(run->rep.n_migrations + 1, sizeof(*todo));
	for (size_t i = 0; i < run->rep.n_migrations; i++) {
		const struct ts_report_migration *rm = &run->rep.migrations[i];

		if (strcmp(rm->status, "applied") ||
		    (run->phase && (!rm->phase || strcmp(rm->phase, run->phase))))
			continue;
		for (size_t j = 0; j < run->set.n; j++) {
			const struct ts_migration *m = &run->set.v[j];

			if (strcmp(m->file, rm->file))
				continue;
			if (m->repeatable)
				break;	/* a repeatable has no way back: the next run replaces it */
			todo[n++] = m;
			if (m->down)
				with_down++;
			else
				strvec_push(&missing, m->file);
		}
	}
	if (!with_down) {
		if (n && run->phase)
			ts_report_note(&run->rep, "phase %s has no down migrations: its way back was not rehearsed",
				       run->phase);
		else if (n)
			ts_report_note(&run->rep, "no down migrations: the way back was not rehearsed");
		free(todo);
		strvec_clear(&missing);
		*passed = 1;
		return 0;
	}
	name = run->phase ? xstrfmt("rollback of phase %s: its down migrations restore the schema before it", run->phase)
			  : xstrdup("rollback: the down migrations restore the production clone's schema");
	st = ts_run_stage(run, "rollback", "applying the down migrations on the dev side");
	check = data_check("rollback", name, "dev", run->cfg.rollback == TS_GATE_FAIL);
	free(name);
	if (missing.nr) {
		char *f = xstrfmt("%s has no down part, so the %s cannot be rolled back%s",
				  missing.v[0], run->phase ? "phase" : "release",
				  missing.nr > 1 ? " (nor can the others listed)" : "");

		data_failed(check, missing.v[0], f);
		for (size_t i = 1; i < missing.nr; i++)
			json_array_append_new(json_object_get(check, "excerpt"),
					      json_sprintf("%s has no down part", missing.v[i]));
		free(f);
	} else if (!(dev = ts_env_connect(&run->env, &run->env.dev, NULL))) {
		r = -1;
	} else {
		for (size_t i = n; i-- > 0 && !r;) {
			double ms;

			if (!run->quiet)
				fprintf(stderr, "    %s ...", todo[i]->down_file ? todo[i]->down_file : todo[i]->file);
			if (ts_migrations_down(dev, &run->set, &run->tracker, todo[i], &ms)) {
				if (!run->quiet)
					fprintf(stderr, " failed\n");
				if (ts_error_class() != TS_EXIT_GATE) {
					r = -1;
					break;
				}
				data_failed(check, todo[i]->down_file ? todo[i]->down_file : todo[i]->file,
					    ts_error_message());
				ts_error_clear();
				break;
			}
			if (!run->quiet)
				fprintf(stderr, " %.0f ms\n", ms);
		}
		PQfinish(dev);
		if (!r && strcmp(ts_json_str(check, "status"), "failed"))
			r = rollback_compare(run, check, before);
		/* the versions live before work again, whatever the schema says */
		for (size_t a = 0; !r && a < apps->nr && strcmp(ts_json_str(check, "status"), "failed"); a++) {
			r = ts_run_check(run, apps->v[a], &run->env.dev, TS_CHECK_ROLLBACK,
					 run->cfg.rollback == TS_GATE_FAIL);
			if (!r) {
				const struct ts_report_check *c = &run->rep.checks[run->rep.n_checks - 1];
				char *f = xstrfmt("%s %s after the down migrations (%zu/%zu scenarios)",
						  c->app, c->failed ? "fails" : "works again",
						  c->n_cases - c->failed, c->n_cases);

				if (c->failed) {
					data_failed(check, c->app, f);
				} else {
					/* each version live before says so, not only the last */
					const char *was = ts_json_str(check, "detail");
					char *d = *was ? xstrfmt("%s; %s", was, f) : xstrdup(f);

					json_object_set_new(check, "detail", json_string(d));
					free(d);
				}
				free(f);
			}
		}
	}
	json_object_set_new(check, "ms", json_real(now_ms() - t0));
	if (!r) {
		*passed = strcmp(ts_json_str(check, "status"), "failed") != 0;
		st->detail = xstrdup(ts_json_str(check, "status"));
		add_data(run, check);
	} else {
		json_decref(check);
	}
	free(todo);
	strvec_clear(&missing);
	return ts_run_stage_end(run, st, t0, r);
}

int ts_run_rollback(struct ts_run *run)
{
	struct strvec apps = STRVEC_INIT;
	int passed, r;

	if (run->cfg.current)
		strvec_push(&apps, run->cfg.current);
	r = ts_run_rollback_phase(run, NULL, &apps, &passed);
	strvec_clear(&apps);
	return r;
}
