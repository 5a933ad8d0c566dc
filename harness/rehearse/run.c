/*
 * run.c: the context of one command, and the stages that build and change
 * the dev side, in the order of the flow:
 *
 *	plan → provision → clone → migrate (apply.c) → (check.c, safety.c) → report
 *
 * Each stage records itself in the report (name, duration, outcome), so
 * the report shows where the time went and where a run stopped.
 */
#include "rehearse/run.h"
#include "config/phase_plan.h"
#include "core/error.h"
#include "core/progress.h"
#include "core/strbuf.h"
#include "core/strvec.h"
#include "core/util.h"
#include "core/wrapper.h"
#include "migrate/migrate.h"
#include "migrate/tools.h"
#include "pg/pg.h"
#include "rehearse/clone.h"
#include "rehearse/scenario.h"
#include "report/render.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ts_run_open(struct ts_run *run, const char *config, const char *env_file)
{
	memset(run, 0, sizeof(*run));
	run->slowness = 1;
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
	for (size_t i = 0; i < run->n_states; i++) {
		free(run->states[i].phase);
		ts_fingerprint_free(&run->states[i].fp);
		ts_tracking_state_free(&run->states[i].tracking);
	}
	free(run->states);
	ts_tracking_state_free(&run->tool_before);
	free(run->source_version);
	free(run->source_sysid);
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

	va_start(ap, fmt);
	ts_vsay(run->quiet, fmt, ap);
	va_end(ap);
}

struct ts_report_stage *ts_run_stage(struct ts_run *run, const char *name, const char *what)
{
	/* the checks of one stage share sessions; what a stage runs may change how a new one starts */
	ts_env_sessions_close(&run->env);
	ts_run_say(run, "%s: %s", name, what);
	return ts_report_stage_add(&run->rep, name);
}

int ts_run_stage_end(struct ts_run *run, struct ts_report_stage *st, double t0, int r)
{
	ts_env_sessions_close(&run->env);
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
static int prove_booted(struct ts_run *run, struct ts_side *side, char **said)
{
	struct ts_env *env = &run->env;

	free(*said);
	*said = NULL;
	return env->ops->booted ? env->ops->booted(env, side, said) : 0;
}

/* Both sides, or the production clone alone while the dev side is coming. */
static int prove_sides(struct ts_run *run, int dev_coming)
{
	return prove_booted(run, &run->env.prod, &run->rep.prod_booted) ||
	       (!dev_coming && prove_booted(run, &run->env.dev, &run->rep.dev_booted)) ? -1 : 0;
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
	if (info->upgrade) {
		json_decref(run->rep.upgrade);
		run->rep.upgrade = json_incref(info->upgrade);
	}
	if (info->source_version) {
		free(run->source_version);
		free(run->source_sysid);
		run->source_version_num = info->source_version_num;
		run->source_version = xstrdup(info->source_version);
		run->source_sysid = info->source_sysid ? xstrdup(info->source_sysid) : NULL;
	}
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
		ts_run_say(run, "removing the environments of an earlier run (backend %s)", env->ops->name);
		if (ts_env_down(env) || ts_env_use_backend(env, run->cfg.backend))
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
	st = ts_run_stage(run, "clone", !strcmp(ts_clone_source_kind(&run->cfg), "dsn") ?
				     "copying the source into the production clone" :
				     run->cfg.seed ? "seeding the production clone" :
				     "an empty production clone (no [source])");
	r = ts_clone_source(env, &info);
	if (!r && info.source)
		ts_run_say(run, "clone: the production clone from %s in %.1f s", info.source,
			   info.prod_ms / 1000.0);
	if (!r) {
		if (run->cfg.dev_next)
			ts_run_say(run, "clone: the dev side (127.0.0.1:%d), the production clone upgraded (%s) to the %s %s",
				   env->dev.port, run->cfg.upgrade, run->cfg.dev_image ? "image" : "stack",
				   run->cfg.dev_next);
		else
			ts_run_say(run, "clone: the dev side (127.0.0.1:%d), a %s copy of the production clone",
				   env->dev.port, env->clone);
		info.defer = run->defer_dev;
		run->dev_coming_since = now_ms();
		r = ts_clone_dev(env, &info);
	}
	if (!r && info.pending)
		ts_run_say(run, "clone: the dev guest boots on while the production clone is checked");
	else
		run->dev_coming_since = 0;
	r = r || prove_sides(run, info.pending) ? -1 : 0;
	clone_done(run, st, &info, run->cfg.dev_next ? "upgraded" : run->dev_coming_since ? "started" : "copied");
	return ts_run_stage_end(run, st, t0, r);
}

int ts_run_dev_ready(struct ts_run *run)
{
	struct ts_report_stage *st;
	double t0 = now_ms();
	int r;

	if (!run->dev_coming_since)
		return 0;
	st = ts_run_stage(run, "clone", "the dev side, booting since the production clone was frozen");
	r = ts_clone_dev_ready(&run->env) || prove_booted(run, &run->env.dev, &run->rep.dev_booted) ? -1 : 0;
	run->rep.clone_dev_ms = now_ms() - run->dev_coming_since;
	run->dev_coming_since = 0;
	free(st->detail);
	st->detail = xstrfmt("dev side up %.2f s after the copy began", run->rep.clone_dev_ms / 1000.0);
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
	r = ts_env_ensure_running(env) || ts_clone_reset(env, NULL, &info) || prove_sides(run, 0) ? -1 : 0;
	info.source = xstrdup("kept (rehearse --reuse)");
	clone_done(run, st, &info, "reset");
	return ts_run_stage_end(run, st, t0, r);
}

/* A scenario file that does not read is refused before anything is built. */
static int scenarios_read(struct ts_run *run)
{
	for (size_t i = 0; i < run->cfg.n_apps; i++) {
		struct ts_scenario *sc;
		size_t n;

		if (run->cfg.apps[i].command && !ts_app_has_sql(&run->cfg.apps[i]))
			continue;
		if (ts_scenario_load_app(&run->cfg.apps[i], &sc, &n))
			return -1;
		ts_scenario_free_all(sc, n);
	}
	return 0;
}

/*
 * A tool's migrations are code, its own: nothing to discover. Its table is
 * the one the tool keeps, and each [phase] names a command.
 */
static int plan_tool(struct ts_run *run)
{
	const char *table = ts_tool_table(run->cfg.tool, run->cfg.tracking_table);
	char *q = table ? ts_pg_qualified(table) : NULL;

	ts_tracker_init(&run->tracker, TS_TRACK_TWINSTAGE, q ? q : TS_TRACKING_TABLE);
	free(q);
	run->planned = 1;
	free(run->rep.tracking);
	free(run->rep.tracking_table);
	run->rep.tracking = xstrdup(ts_tool_name(run->cfg.tool));
	run->rep.tracking_table = table ? xstrdup(run->tracker.table) : NULL;
	if (run->cfg.n_phases) {
		run->plans = xcalloc(run->cfg.n_phases, sizeof(*run->plans));
		for (size_t i = 0; i < run->cfg.n_phases; i++)
			run->plans[i].cfg = &run->cfg.phases[i];
	}
	return scenarios_read(run);
}

/* The tracking state of a side: the tool's table, or the migration files' one. */
static int read_tracking(struct ts_run *run, PGconn *conn, struct ts_tracking_state *st)
{
	if (run->cfg.tool)
		return ts_tool_read_state(conn, run->cfg.tool, run->cfg.tracking_table, st);
	return ts_tracking_read(conn, &run->tracker, st);
}

int ts_run_plan(struct ts_run *run)
{
	enum ts_tracking_tool tool;

	if (run->planned)
		return 0;
	/* a stack recipe that does not read is refused before anything is built */
	for (int image = 0; image < 2; image++) {
		const char *path = image ? run->cfg.dev_image : run->cfg.dev_stack;
		struct ts_recipe r;

		if (path && ts_stack_recipe_load_next(&r, path, image))
			return -1;
		if (path)
			ts_recipe_free(&r);
	}
	if (run->cfg.tool)
		return plan_tool(run);
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
	free(run->rep.migrations_dir);
	run->rep.migrations_dir = xstrdup(run->cfg.migrations);
	/* a [phase] that names no migration is refused before anything is built */
	if (run->cfg.n_phases && ts_phases_resolve(&run->cfg, &run->set, &run->plans))
		return -1;
	return scenarios_read(run);
}

int ts_run_migration_failed(const struct ts_run *run)
{
	for (size_t i = 0; i < run->rep.n_migrations; i++)
		if (run->rep.migrations[i].status && !strcmp(run->rep.migrations[i].status, "failed"))
			return 1;
	return 0;
}

int ts_run_side_version(struct ts_run *run, PGconn *conn, char **out)
{
	struct ts_tracking_state st;

	*out = NULL;
	if (read_tracking(run, conn, &st))
		return -1;
	if (st.latest)
		*out = xstrdup(st.latest);
	ts_tracking_state_free(&st);
	return 0;
}

int ts_run_resolve_tracking(struct ts_run *run, PGconn *prod)
{
	if (ts_tracking_resolve(prod, &run->tracker))
		return -1;
	free(run->rep.tracking_table);
	run->rep.tracking_table = xstrdup(run->tracker.table);
	return 0;
}

int ts_run_take_state(struct ts_run *run, struct ts_side *side, int after)
{
	struct ts_run_state *s;
	PGconn *conn;
	int r;

	if (!run->fingerprints)
		return 0;
	if (!(conn = ts_env_connect(&run->env, side, NULL)))
		return -1;
	run->states = xrealloc(run->states, (run->n_states + 1) * sizeof(*run->states));
	s = &run->states[run->n_states];
	memset(s, 0, sizeof(*s));
	r = read_tracking(run, conn, &s->tracking) ||
	    ts_fingerprint_read(conn, run->tracker.table, &s->fp) ? -1 : 0;
	PQfinish(conn);
	if (r) {
		ts_tracking_state_free(&s->tracking);
		return -1;
	}
	s->phase = run->phase ? xstrdup(run->phase) : NULL;
	s->after = after;
	/*
	 * Each state is production's, before or after promotion: its server is
	 * the source's where the source was read (a new cluster's identifier
	 * and this machine's build say nothing of production).
	 */
	free(s->fp.system_identifier);
	s->fp.system_identifier = run->source_sysid ? xstrdup(run->source_sysid) : NULL;
	if (run->source_version) {
		free(s->fp.server_version);
		s->fp.server_version = xstrdup(run->source_version);
		s->fp.server_version_num = run->source_version_num;
	}
	run->n_states++;
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
	if (run->cfg.tool) {
		/* the tool decides what is pending; its table says where production is */
		r = read_tracking(run, conn, &st);
		PQfinish(conn);
		if (r)
			return -1;
		free(run->rep.prod_version);
		run->rep.prod_version = st.latest ? xstrdup(st.latest) : NULL;
		if (run->have_prod_state)
			ts_tracking_state_free(&run->prod_state);
		run->prod_state = st;
		run->have_prod_state = 1;
		return run->n_states ? 0 : ts_run_take_state(run, &run->env.prod, 0);
	}
	r = ts_run_resolve_tracking(run, conn) || ts_tracking_read(conn, &run->tracker, &st) ? -1 : 0;
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
	if (!r && !run->n_states)
		r = ts_run_take_state(run, &run->env.prod, 0);
	return r;
}

int ts_run_finish(struct ts_run *run, enum ts_report_format fmt)
{
	char *reports = path_join(run->cfg.workdir, "reports");

	ts_env_sessions_close(&run->env);

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
