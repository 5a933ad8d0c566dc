/*
 * plans.c: the live version's statements explained and timed on the
 * production clone (production's major) and the dev side (the stack's).
 */
#include "rehearse/plans.h"
#include "core/error.h"
#include "core/strbuf.h"
#include "core/util.h"
#include "core/wrapper.h"
#include "pg/pg.h"
#include "report/format.h"
#include "rehearse/execute.h"
#include "rehearse/safety.h"
#include "rehearse/scenario.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Under this many milliseconds more on the dev side (times run->slowness), a ratio is noise, not a slowdown. */
#define NOISE_MS 1.0
/* What "slower" means in the report when gate.max_slowdown is off (0). */
#define REPORTED_SLOWDOWN 2.0

struct measure {
	json_t *plan;		/* the "Plan" of EXPLAIN's JSON */
	double ms;		/* median */
};

static void shape_into(json_t *node, struct strbuf *sb)
{
	static const char *const keys[][3] = { { "Join Type", " (", ")" }, { "Strategy", " ", "" },
					      { "Relation Name", " on ", "" }, { "Index Name", " using ", "" },
					      { "CTE Name", " ", "" }, { "Function Name", " ", "" } };
	json_t *kids = json_object_get(node, "Plans"), *k;
	size_t i;

	strbuf_addstr(sb, ts_json_str(node, "Node Type"));
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (*ts_json_str(node, keys[i][0]))
			strbuf_addf(sb, "%s%s%s", keys[i][1], ts_json_str(node, keys[i][0]), keys[i][2]);
	if (json_array_size(kids)) {
		strbuf_addstr(sb, " [");
		json_array_foreach(kids, i, k) {
			if (i)
				strbuf_addstr(sb, ", ");
			shape_into(k, sb);
		}
		strbuf_addch(sb, ']');
	}
}

char *ts_plan_shape(json_t *plan)
{
	struct strbuf sb = STRBUF_INIT;

	shape_into(plan, &sb);
	return strbuf_detach(&sb);
}

/* 1 when res is an error, 0 when it worked; res is freed. */
static int failed(PGresult *res)
{
	int bad = PQresultStatus(res) != PGRES_TUPLES_OK && PQresultStatus(res) != PGRES_COMMAND_OK;

	PQclear(res);
	return bad;
}

/*
 * Explains and times st on one side, in a transaction that is rolled
 * back. 1 when it could not be measured there (it fails alone, or EXPLAIN
 * does not take it), 0 when measured, -1 when the session broke.
 */
static int measure(PGconn *conn, const struct ts_scenario_stmt *st, int timeout_ms, struct measure *m)
{
	const char *params = st->params.nr ? st->params.v[0] : NULL;
	char *set = xstrfmt("SET LOCAL statement_timeout = %d", timeout_ms);
	char *explain = params ? xstrfmt("EXPLAIN (FORMAT JSON) EXECUTE twinstage_plan(%s)", params) :
				 xstrfmt("EXPLAIN (FORMAT JSON) %s", st->sql);
	char *run = params ? xstrfmt("EXECUTE twinstage_plan(%s)", params) : xstrdup(st->sql);
	struct ts_role_state roles = { 0 };
	double times[8];
	int r = 1, n = 0, runs = 5;
	PGresult *res;

	memset(m, 0, sizeof(*m));
	if (ts_pg_exec(conn, "BEGIN") || ts_pg_exec(conn, set) || ts_role_switch(conn, &roles, st->role)) {
		r = -1;
		goto out;
	}
	if (params) {
		char *prep = xstrfmt("PREPARE twinstage_plan AS %s", st->sql);

		res = PQexec(conn, prep);
		free(prep);
		if (failed(res))
			goto out;
	}
	if (ts_pg_exec(conn, "SAVEPOINT twinstage_plan"))
		goto out;
	res = PQexec(conn, explain);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
		json_t *doc = json_loads(PQgetvalue(res, 0, 0), 0, NULL);

		m->plan = json_incref(json_object_get(json_array_get(doc, 0), "Plan"));
		json_decref(doc);
	}
	PQclear(res);
	if (!m->plan || ts_pg_exec(conn, "ROLLBACK TO SAVEPOINT twinstage_plan"))
		goto out;
	/* a warm-up first: the caches, the catalog, the plan's first build */
	for (int i = 0; i <= runs; i++) {
		double t = now_ms(), dt;
		int bad = failed(PQexec(conn, run));

		dt = now_ms() - t;
		if (ts_pg_exec(conn, "ROLLBACK TO SAVEPOINT twinstage_plan") || bad)
			goto out;
		if (i == 0 && dt > 500)
			runs = 3;
		else if (i > 0)
			times[n++] = dt;
	}
	sort_doubles(times, (size_t)n);
	m->ms = times[n / 2];
	r = 0;
out:
	if (r) {
		json_decref(m->plan);
		m->plan = NULL;
	}
	/* a prepared statement outlives the rollback of its transaction: DEALLOCATE it */
	if (PQtransactionStatus(conn) != PQTRANS_IDLE && ts_pg_exec(conn, "ROLLBACK"))
		r = -1;
	ts_role_state_ended(&roles);
	if (params && r >= 0 && ts_pg_exec(conn, "DEALLOCATE twinstage_plan"))
		ts_error_clear();
	ts_role_state_free(&roles);
	free(set);
	free(explain);
	free(run);
	return r;
}

/* The weight of a slowdown: the time production would lose, its calls counted. */
static double lost(json_t *s)
{
	double calls = json_number_value(json_object_get(s, "calls"));

	return (json_number_value(json_object_get(s, "dev_ms")) - json_number_value(json_object_get(s, "prod_ms"))) *
	       (calls > 0 ? calls : 1);
}

static int heavier_first(const void *a, const void *b)
{
	double x = lost(*(json_t *const *)a), y = lost(*(json_t *const *)b);

	return x < y ? 1 : x > y ? -1 : 0;
}

/* The report's upgrade section; a run that reuses kept sides says only which majors they run. */
static void ensure_upgrade(struct ts_run *run, int from)
{
	if (!run->rep.upgrade)
		run->rep.upgrade = json_pack("{s:s, s:s, s:i, s:i, s:s, s:b, s:{}}", "stack",
					     strrchr(run->env.stack.root, '/') + 1, "suite", run->env.stack.suite,
					     "from", from, "to", atoi(run->env.stack.version), "method",
					     run->cfg.upgrade, "kept", 1, "steps");
}

/* "v1 01_invoices.sql:9 "list the invoices"" */
static char *where(json_t *s)
{
	return xstrfmt("%s %s:%d \"%s\"", ts_json_str(s, "app"), ts_json_str(s, "file"),
		       (int)json_integer_value(json_object_get(s, "line")), ts_json_str(s, "name"));
}

static int measure_app(struct ts_run *run, PGconn *a, PGconn *b, const struct ts_app *app, json_t *all,
		       int *unmeasured)
{
	struct ts_scenario *sc;
	size_t n;
	int r = 0;

	if (!ts_app_has_sql(app))
		return 0;
	if (ts_scenario_load_app(app, &sc, &n))
		return -1;
	for (size_t f = 0; f < n && !r; f++)
		for (size_t i = 0; i < sc[f].n && !r; i++) {
			const struct ts_scenario_stmt *st = &sc[f].stmts[i];
			struct measure mp, md;
			int ra, rb;

			if (st->expect == TS_EXPECT_ERROR || (st->nparams && !st->params.nr) ||
			    st->expect == TS_EXPECT_PREPARES) {
				(*unmeasured)++;
				continue;
			}
			ra = measure(a, st, run->cfg.statement_timeout_ms, &mp);
			rb = ra ? 1 : measure(b, st, run->cfg.statement_timeout_ms, &md);
			if (ra < 0 || rb < 0) {
				r = -1;
			} else if (ra || rb) {
				(*unmeasured)++;
			} else {
				char *sp = ts_plan_shape(mp.plan), *sd = ts_plan_shape(md.plan), *sql = ts_oneline(st->sql);
				double ratio = mp.ms > 0 ? md.ms / mp.ms : 1;
				double limit = run->cfg.max_slowdown > 0 ? run->cfg.max_slowdown : REPORTED_SLOWDOWN;
				int slower = ratio > limit && md.ms - mp.ms >= NOISE_MS * run->slowness;
				int over = slower && run->cfg.max_slowdown > 0;

				json_array_append_new(all, json_pack("{s:s, s:s, s:i, s:s, s:s, s:I, s:f, s:f, s:f, s:b, s:b,"
								     " s:b, s:s, s:s, s:o, s:o}",
								     "app", app->name, "file", sc[f].file, "line", st->line,
								     "name", st->name ? st->name : "", "sql", sql,
								     "calls", (json_int_t)st->calls, "prod_ms", mp.ms,
								     "dev_ms", md.ms, "ratio", ratio,
								     "plan_changed", strcmp(sp, sd) != 0, "over_gate", over,
								     "slower", slower,
								     "prod_shape", sp, "dev_shape", sd, "prod_plan", mp.plan,
								     "dev_plan", md.plan));
				free(sp);
				free(sd);
				free(sql);
			}
			if (ra == 0 && rb != 0)
				json_decref(mp.plan);
		}
	ts_scenario_free_all(sc, n);
	return r;
}

int ts_run_plans(struct ts_run *run)
{
	struct ts_env *env = &run->env;
	double t0 = now_ms();
	char *name;
	struct ts_report_stage *st = ts_run_stage(run, "plans", "each statement of the live version explained and timed on both sides");
	PGconn *a = ts_env_connect(env, &env->prod, NULL), *b = a ? ts_env_connect(env, &env->dev, NULL) : NULL;
	json_t *all = json_array(), *check, *s, *excerpt = json_array();
	json_t **sorted = NULL;
	int r = !a || !b ? -1 : 0, unmeasured = 0, changed = 0, slower = 0;
	size_t i, n;

	for (size_t k = 0; k < run->cfg.n_apps && !r; k++) {
		const struct ts_app *app = &run->cfg.apps[k];

		/* the live version's statements: what production runs while it takes the upgrade */
		if (!run->cfg.current || !strcmp(app->name, run->cfg.current))
			r = measure_app(run, a, b, app, all, &unmeasured);
	}
	if (r)
		goto out;
	n = json_array_size(all);
	sorted = xcalloc(n ? n : 1, sizeof(*sorted));
	json_array_foreach(all, i, s)
		sorted[i] = s;
	qsort(sorted, n, sizeof(*sorted), heavier_first);
	name = xstrfmt("plans and timings, PostgreSQL %d against %s", PQserverVersion(a) / 10000, env->stack.version);
	check = json_pack("{s:s, s:s, s:s, s:s, s:b, s:i, s:i, s:f}", "check", "plans", "name", name, "side", "dev",
			  "status", "passed", "gating", run->cfg.max_slowdown > 0, "statements", (int)n,
			  "unmeasured", unmeasured, "max_slowdown", run->cfg.max_slowdown);
	for (i = 0; i < n; i++) {
		char *w = where(sorted[i]);
		int over = json_is_true(json_object_get(sorted[i], "over_gate"));
		int slow = json_is_true(json_object_get(sorted[i], "slower"));
		int ch = json_is_true(json_object_get(sorted[i], "plan_changed"));

		slower += slow;
		changed += ch;
		if (over && !json_object_get(check, "failure")) {
			char *why = xstrfmt("%s is %.1fx slower on the dev side (%.2f ms against %.2f ms), over gate.max_slowdown %.1f",
					    w, json_number_value(json_object_get(sorted[i], "ratio")),
					    json_number_value(json_object_get(sorted[i], "dev_ms")),
					    json_number_value(json_object_get(sorted[i], "prod_ms")), run->cfg.max_slowdown);

			json_object_set_new(check, "status", json_string("failed"));
			json_object_set_new(check, "object", json_string(w));
			json_object_set_new(check, "failure", json_string(why));
			free(why);
		}
		if ((slow || ch) && json_array_size(excerpt) < 12) {
			char speed[96];

			ts_speed_text(json_number_value(json_object_get(sorted[i], "prod_ms")),
				      json_number_value(json_object_get(sorted[i], "dev_ms")), speed, sizeof(speed));
			json_array_append_new(excerpt, json_sprintf("%s: %s%s", w, speed, over ? ", over the gate" : ""));
			if (ch) {
				json_array_append_new(excerpt, json_sprintf("  plan before: %s", ts_json_str(sorted[i], "prod_shape")));
				json_array_append_new(excerpt, json_sprintf("  plan after:  %s", ts_json_str(sorted[i], "dev_shape")));
			}
		}
		free(w);
	}
	json_object_set_new(check, "detail", json_sprintf("%zu statement%s measured (%d not: they fail alone or EXPLAIN does not take them), %d plan%s changed, %d slower than %.1fx%s",
							  n, n == 1 ? "" : "s", unmeasured, changed, changed == 1 ? "" : "s",
							  slower, run->cfg.max_slowdown > 0 ? run->cfg.max_slowdown : REPORTED_SLOWDOWN,
							  run->cfg.max_slowdown > 0 ? "" : " (gate.max_slowdown off)"));
	json_object_set_new(check, "changed", json_integer(changed));
	json_object_set_new(check, "slower", json_integer(slower));
	json_object_set(check, "excerpt", excerpt);
	json_object_set_new(check, "ms", json_real(now_ms() - t0));
	free(name);
	ts_run_say(run, "plans: %zu statements on both majors: %d plan%s changed, %d slower", n, changed,
		   changed == 1 ? "" : "s", slower);
	ts_report_data_add(&run->rep, check);
	ensure_upgrade(run, PQserverVersion(a) / 10000);
	{
		json_t *ordered = json_array();

		for (i = 0; i < n; i++)
			json_array_append(ordered, sorted[i]);
		json_object_set_new(run->rep.upgrade, "plans", ordered);
	}
out:
	free(sorted);
	json_decref(all);
	json_decref(excerpt);
	if (a)
		PQfinish(a);
	if (b)
		PQfinish(b);
	return ts_run_stage_end(run, st, t0, r);
}
