/*
 * check.c: what the application versions see after migrating: the
 * compatibility matrix (each version against each side), and the schema
 * diff of the two sides, each change tied to the statement that made it
 * and to the scenarios it broke. See check.h.
 */
#include "rehearse/check.h"
#include "config/config.h"
#include "core/strbuf.h"
#include "core/strvec.h"
#include "core/util.h"
#include "core/wrapper.h"
#include "migrate/sql.h"
#include "pg/schema.h"
#include "rehearse/run.h"
#include "rehearse/scenario.h"
#include "rehearse/scenario_run.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The last dot-separated part of a name, before any argument list. */
static char *short_name(const char *name)
{
	const char *paren = strchr(name, '('), *end = paren ? paren : name + strlen(name);
	const char *p = end;

	while (p > name && p[-1] != '.')
		p--;
	return xstrndup(p, (size_t)(end - p));
}

/*
 * The acts (sql.h) that make a change of this kind: "drop-column:orders:note"
 * for a dropped column, and so on; out gets patterns, a trailing ':' for
 * "any name". table and obj are unqualified.
 */
static void acts_for(json_t *c, const char *table, const char *obj, const char *old, struct strvec *out)
{
	const char *kind = ts_json_str(c, "kind"), *change = ts_json_str(c, "change");
	int added = !strcmp(change, "added"), dropped = !strcmp(change, "dropped");
	int renamed = !strcmp(change, "renamed");

	if (!strcmp(kind, "column")) {
		if (renamed)
			strvec_pushf(out, "rename-column:%s:%s:%s", table, old, obj);
		else
			strvec_pushf(out, "%s:%s:%s", added ? "add-column" : dropped ? "drop-column" : "alter-column",
				     table, obj);
	} else if (!strcmp(kind, "table")) {
		if (renamed)
			strvec_pushf(out, "rename:%s:%s", old, obj);
		else if (added)
			strvec_pushf(out, "create-table:%s", obj);
		else if (dropped)
			strvec_pushf(out, "drop-table:%s", obj);
		else
			strvec_pushf(out, "alter-table:%s", obj);
	} else if (!strcmp(kind, "index")) {
		if (!dropped) {
			strvec_pushf(out, "create-index:%s:%s", table, obj);
			strvec_pushf(out, "add-constraint:%s:%s", table, obj);	/* a UNIQUE's index */
		}
		if (!added)
			strvec_pushf(out, "drop-index:%s", obj);
	} else if (!strcmp(kind, "constraint")) {
		if (!dropped) {
			strvec_pushf(out, "add-constraint:%s:%s", table, obj);
			strvec_pushf(out, "validate-constraint:%s:%s", table, obj);
		}
		if (!added)
			strvec_pushf(out, "drop-constraint:%s:%s", table, obj);
	} else if (!strcmp(kind, "view") || !strcmp(kind, "materialized view")) {
		strvec_pushf(out, "%s:%s", dropped ? "drop-view" : "create-view", obj);
	} else if (!strcmp(kind, "function") || !strcmp(kind, "procedure")) {
		strvec_pushf(out, "%s:%s", dropped ? "drop-function" : "create-function", obj);
	} else if (!strcmp(kind, "trigger")) {
		strvec_pushf(out, "%s:%s:%s", dropped ? "drop-trigger" : "create-trigger", table, obj);
		strvec_pushf(out, "alter-trigger:%s:%s", table, obj);
	} else if (!strcmp(kind, "enum")) {
		strvec_pushf(out, "type:%s", obj);
	} else if (!strcmp(kind, "sequence") || !strcmp(kind, "extension")) {
		strvec_pushf(out, "%s:%s", kind, obj);
	}
	/* an index or a constraint made with its table: the CREATE TABLE made it */
	if (table && strcmp(kind, "table") && !dropped)
		strvec_pushf(out, "create-table:%s", table);
}

/* 1 when the statement's acts hold one of the patterns. */
static int acts_match(json_t *acts, const struct strvec *want)
{
	json_t *v;
	size_t i;

	json_array_foreach(acts, i, v)
		for (size_t k = 0; k < want->nr; k++)
			if (!strcmp(json_string_value(v), want->v[k]))
				return 1;
	return 0;
}

/* 1 when the statement held a lock that lets it change the table, or rewrote it. */
static int changed_table(json_t *facts, const char *table)
{
	json_t *v;
	size_t i;

	json_array_foreach(json_object_get(facts, "locks"), i, v) {
		const char *rel = ts_json_str(v, "relation"), *dot = strrchr(rel, '.');

		if (!strcmp(dot ? dot + 1 : rel, table) && strcmp(ts_json_str(v, "mode"), "AccessShareLock") &&
		    strcmp(ts_json_str(v, "mode"), "RowExclusiveLock"))
			return 1;
	}
	json_array_foreach(json_object_get(facts, "rewrites"), i, v) {
		const char *rel = json_string_value(v), *dot = strrchr(rel, '.');

		if (!strcmp(dot ? dot + 1 : rel, table))
			return 1;
	}
	return 0;
}

/*
 * Ties a change to the statement that made it: the last one (in the order
 * they ran) whose parse tree does that to that object. Failing that, when
 * the trace saw the statements of only one file change its table (a lock
 * beyond writing rows, or a rewrite), that file, with no line: "in file X"
 * rather than a wrong line.
 */
static void link_statement(struct ts_report *rep, json_t *c, const char *obj, const char *table,
			   const char *old)
{
	struct strvec want = STRVEC_INIT;
	const char *file = NULL;
	int line = 0, files = 0;

	acts_for(c, table, obj, old, &want);
	for (size_t i = 0; i < rep->n_migrations; i++) {
		const struct ts_report_migration *m = &rep->migrations[i];

		for (size_t j = 0; j < m->n_stmts; j++)
			if (acts_match(json_object_get(m->stmts[j].facts, "acts"), &want)) {
				file = m->file;
				line = m->stmts[j].line;
			}
	}
	for (size_t i = 0; !file && table && i < rep->n_migrations; i++) {
		const struct ts_report_migration *m = &rep->migrations[i];
		int hit = 0;

		for (size_t j = 0; j < m->n_stmts; j++)
			hit |= changed_table(m->stmts[j].facts, table);
		if (hit && !files++)
			file = m->file;
	}
	if (files > 1)
		file = NULL;	/* several files changed the table: which one did this is not known */
	if (file) {
		json_object_set_new(c, "file", json_string(file));
		json_object_set_new(c, "line", json_integer(line));
	}
	strvec_clear(&want);
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
			char *table = c->table ? short_name(c->table) : NULL;

			json_object_set_new(o, "short", json_string(old ? old : obj));
			link_statement(&run->rep, o, obj, table, old);
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
/*
 * Whether a scenario statement is about the change's object: its parse tree
 * names the object (and, for what belongs to a table, the table too), or
 * its error quotes it.
 */
static int case_uses(const struct ts_report_case *cs, const char *obj, const char *table)
{
	struct strvec names = STRVEC_INIT;
	char *quoted = xstrfmt("\"%s\"", obj), *dotted = table ? xstrfmt("%s.%s", table, obj) : NULL;
	int r;

	ts_sql_names_text(cs->text ? cs->text : cs->sql ? cs->sql : "", &names);
	r = (strvec_find(&names, obj) >= 0 && (!table || strvec_find(&names, table) >= 0)) ||
	    (!cs->pass && cs->got && (strstr(cs->got, quoted) || (dotted && strstr(cs->got, dotted))));
	strvec_clear(&names);
	free(quoted);
	free(dotted);
	return r;
}

void ts_run_evidence(struct ts_run *run)
{
	json_t *c;
	size_t i;

	json_array_foreach(run->rep.schema, i, c) {
		const char *name = ts_json_str(c, "short"), *kind = ts_json_str(c, "kind");
		const char *qtable = ts_json_str(c, "table");
		char *table = *qtable && strcmp(kind, "table") && strcmp(kind, "view") ? short_name(qtable) : NULL;
		json_t *ev = json_object_get(c, "evidence"), *passed = json_array();

		if (strcmp(ts_json_str(c, "class"), "breaking")) {
			json_decref(passed);
			free(table);
			continue;
		}
		for (size_t j = 0; j < run->rep.n_checks; j++) {
			const struct ts_report_check *k = &run->rep.checks[j];

			/* any version that ran on the migrated dev side is evidence; in a rollout, a live one */
			if (!ts_check_in_matrix(k) || strcmp(k->side, "dev") || (k->phase && !k->gating))
				continue;
			for (size_t n = 0; n < k->n_cases; n++) {
				const struct ts_report_case *cs = &k->cases[n];

				if (!case_uses(cs, name, table))
					continue;
				{
					json_t *to = cs->pass ? passed : ev, *one = json_sprintf("%s %s:%d \"%s\"", k->app,
						cs->file, cs->line, cs->name ? cs->name : ""), *v;
					size_t m;
					int seen = 0;

					/* a statement's parameter sets are one piece of evidence */
					json_array_foreach(to, m, v)
						seen |= json_equal(v, one);
					if (seen)
						json_decref(one);
					else
						json_array_append_new(to, one);
				}
			}
		}
		if (json_array_size(passed))
			json_object_set(c, "passed", passed);
		/* in a rollout, the current version retires: the matrix says when */
		if (!json_array_size(ev) && json_array_size(passed) && !run->cfg.n_phases)
			ts_report_note(&run->rep,
				       "breaking change that no scenario failed on: %s %s %s is used by %s, which passed%s",
				       kind, ts_json_str(c, "name"), ts_json_str(c, "change"),
				       json_string_value(json_array_get(passed, 0)),
				       json_array_size(passed) > 1 ? " (and more that passed)" : "");
		else if (!json_array_size(ev) && run->cfg.current && !run->cfg.n_phases)
			ts_report_note(&run->rep,
				       "breaking change not exercised by any scenario of %s: %s %s %s; add a scenario that uses it, or it stays a warning",
				       run->cfg.current, kind, ts_json_str(c, "name"), ts_json_str(c, "change"));
		json_decref(passed);
		free(table);
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
	if (app && (app->scenarios || ts_app_has_sql(app)))
		c->dir = xstrdup(app->scenarios ? app->scenarios : app->workload);
	if (!strcmp(side->name, "dev") && ts_run_migration_failed(run)) {
		c->skip = xstrdup("a migration failed");
		free(logs);
		return 0;
	}
	{
		/* the same version's run on the production clone before migrating, when there was one */
		const struct ts_report_check *baseline = NULL;

		for (size_t i = 0; i + 1 < run->rep.n_checks; i++)
			if (run->rep.checks[i].role == TS_CHECK_BASELINE && run->rep.checks[i].ran &&
			    !strcmp(run->rep.checks[i].app, app_name))
				baseline = &run->rep.checks[i];
		r = ts_scenario_run_app(&run->env, side, app, logs, strcmp(side->name, "prod") ? baseline : NULL, c);
	}
	free(logs);
	if (!r && c->role_note)
		ts_report_note(&run->rep, "%s on the %s side: %s", app_name, side->name, c->role_note);
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
