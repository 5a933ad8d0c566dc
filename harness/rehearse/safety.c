/*
 * safety.c: nothing lost on the way, and a way back: the double dump test
 * of a side, the data of the tables no migration touched and each
 * [equal OLD NEW], and the rollback through the down migrations. Each is
 * a data check in the report. See safety.h.
 */
#include "rehearse/safety.h"
#include "config/config.h"
#include "migrate/tools.h"
#include "core/error.h"
#include "core/strbuf.h"
#include "core/strvec.h"
#include "core/util.h"
#include "core/wrapper.h"
#include "migrate/migrate.h"
#include "pg/equal.h"
#include "pg/schema.h"
#include "rehearse/check.h"
#include "rehearse/ddt.h"
#include "rehearse/run.h"
#include "rehearse/tool.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/*
 * Whether a lock lets its statement change a table's rows: what writes
 * (RowExclusive and up), not what only reads or builds beside them (an
 * index build's Share, ShareUpdateExclusive's VACUUM, ANALYZE, VALIDATE).
 */
static int writes_rows(const char *mode)
{
	return strcmp(mode, "AccessShareLock") && strcmp(mode, "RowShareLock") && strcmp(mode, "ShareLock") &&
	       strcmp(mode, "ShareUpdateExclusiveLock");
}

/*
 * The tables whose rows a migration statement may have changed: locked to
 * write, or with columns or the table itself in the schema diff. A table
 * that only got an index or a constraint holds the same rows, and is
 * compared like any other.
 */
static void touched_tables(const struct ts_report *rep, struct strvec *out)
{
	json_t *v, *l;
	size_t i, k;

	for (size_t m = 0; m < rep->n_migrations; m++)
		for (size_t j = 0; j < rep->migrations[m].n_stmts; j++)
			json_array_foreach(json_object_get(rep->migrations[m].stmts[j].facts, "locks"), k, l)
				if (writes_rows(ts_json_str(l, "mode")))
					strvec_push(out, ts_json_str(l, "relation"));
	json_array_foreach(rep->schema, i, v) {
		const char *kind = ts_json_str(v, "kind");

		if (!strcmp(kind, "column"))
			strvec_push(out, ts_json_str(v, "table"));
		if (!strcmp(kind, "table")) {
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

		if (!d || !same_shape(&rp.v[i], d) || strvec_find(&touched, rp.v[i].shown) >= 0 ||
		    ts_tool_owns(run->cfg.tool, run->cfg.tracking_table, rp.v[i].shown))
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

/* The tables this run's migration statements UPDATE, each with the columns they assign: "t" then "a,b". */
static void updated_tables(const struct ts_report *rep, struct strvec *tables, struct strvec *assigned)
{
	for (size_t m = 0; m < rep->n_migrations; m++)
		for (size_t j = 0; j < rep->migrations[m].n_stmts; j++) {
			json_t *a;
			size_t k;

			json_array_foreach(json_object_get(rep->migrations[m].stmts[j].facts, "acts"), k, a) {
				const char *act = json_string_value(a), *t, *cols;
				char *table;
				int at;

				if (strncmp(act, "update:", 7))
					continue;
				t = act + 7;
				cols = strchr(t, ':');
				table = cols ? xstrndup(t, (size_t)(cols - t)) : xstrdup(t);
				if ((at = strvec_find(tables, table)) < 0) {
					strvec_push(tables, table);
					strvec_push(assigned, cols ? cols + 1 : "");
				} else if (cols) {
					char *more = xstrfmt("%s,%s", assigned->v[at], cols + 1);

					free(assigned->v[at]);
					assigned->v[at] = more;
				}
				free(table);
			}
		}
}

/*
 * What a migration changed and did not say: for each table its UPDATEs
 * write, the columns they do not assign must hold what they held (a
 * trigger that sets updated_at on every row it touches changes them
 * silently). Compared as the untouched tables are, production clone
 * against dev side, each a data check of its own.
 */
static int compare_undeclared(struct ts_run *run, PGconn *prod, PGconn *dev)
{
	struct strvec tables = STRVEC_INIT, assigned = STRVEC_INIT;
	struct ts_rels rp = { 0 }, rd = { 0 };
	int r = 0;

	if (run->cfg.undeclared == TS_GATE_OFF)
		return 0;
	updated_tables(&run->rep, &tables, &assigned);
	if (tables.nr && (ts_rels_read(prod, run->tracker.table, &rp) || ts_rels_read(dev, run->tracker.table, &rd)))
		r = -1;
	for (size_t i = 0; !r && i < tables.nr; i++) {
		const struct ts_rel *a = ts_rels_find(&rp, tables.v[i]), *b = ts_rels_find(&rd, tables.v[i]);
		struct strvec set = STRVEC_INIT;
		const char **cols;
		size_t n = 0;
		struct ts_cmp c;
		char *name;
		json_t *check;

		if (!a || !b)
			continue;
		strvec_split(&set, assigned.v[i], ",");
		cols = xcalloc(a->cols.nr + 1, sizeof(*cols));
		for (size_t k = 0; k < a->cols.nr; k++) {
			int at = ts_rel_col(b, a->cols.v[k]);

			if (at >= 0 && !strcmp(a->types.v[k], b->types.v[at]) && strvec_find(&set, a->cols.v[k]) < 0)
				cols[n++] = a->cols.v[k];
		}
		strvec_clear(&set);
		if (!n) {
			free(cols);
			continue;
		}
		name = xstrfmt("the columns of %s no migration statement assigns hold what they held", a->shown);
		check = data_check("undeclared", name, "dev", run->cfg.undeclared == TS_GATE_FAIL);
		if ((r = ts_table_compare(prod, a, dev, b, cols, cols, n, &c)) == 0) {
			json_object_set_new(check, "tables", json_integer(1));
			json_object_set_new(check, "rows", json_integer(c.rows[0]));
			if (c.at >= 0) {
				char *what = xstrfmt("%s changed in columns no migration statement assigns (a trigger, a rule or a default did it)",
						     a->shown);

				cmp_failed(check, what, &c, "production clone", "dev side");
				json_object_set_new(check, "object", json_string(a->shown));
				ts_report_note(&run->rep, "%s%s", what,
					       run->cfg.undeclared == TS_GATE_FAIL ? "" :
					       " (gate.undeclared = warn: this does not fail the gate)");
				free(what);
			}
			ts_cmp_free(&c);
			add_data(run, check);
		} else {
			json_decref(check);
		}
		free(name);
		free(cols);
	}
	ts_rels_free(&rp);
	ts_rels_free(&rd);
	strvec_clear(&tables);
	strvec_clear(&assigned);
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

/* Sessions on both sides (ts_env_session): the checks after the comparison reuse them. */
static PGconn *connect_both(struct ts_run *run, PGconn **dev)
{
	PGconn *prod = ts_env_session(&run->env, &run->env.prod);

	*dev = prod ? ts_env_session(&run->env, &run->env.dev) : NULL;
	if (prod && !*dev) {
		PQfinish(prod);
		prod = NULL;
	}
	return prod;
}

static void done_both(struct ts_run *run, PGconn *prod, PGconn *dev)
{
	ts_env_session_done(&run->env, &run->env.prod, prod);
	ts_env_session_done(&run->env, &run->env.dev, dev);
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
	if (!r)
		r = compare_undeclared(run, prod, dev);
	for (size_t i = 0; !r && i < run->cfg.n_equal; i++)
		r = compare_declared(run, prod, dev, &run->cfg.equal[i]);
	done_both(run, prod, dev);
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
	done_both(run, prod, dev);
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

		r = ts_schema_snapshot(dev, run->tracker.table, &now) ||
		    ts_schema_describe(dev, &now, before) ? -1 : 0;
		if (!r)
			ts_schema_diff(before, &now, &d);
		ts_schema_free(&now);
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
	done_both(run, prod, dev);
	return r;
}

/*
 * After the way back ran (or failed, as check says): the dev side's schema
 * against the state before, and each version live before against it.
 */
static int judge_way_back(struct ts_run *run, json_t *check, const struct ts_schema *before,
			  const struct strvec *apps)
{
	int r = 0;

	if (strcmp(ts_json_str(check, "status"), "failed"))
		r = rollback_compare(run, check, before);
	/* the versions live before work again, whatever the schema says */
	for (size_t a = 0; !r && a < apps->nr && strcmp(ts_json_str(check, "status"), "failed"); a++) {
		r = ts_run_check(run, apps->v[a], &run->env.dev, TS_CHECK_ROLLBACK, run->cfg.rollback == TS_GATE_FAIL);
		if (!r) {
			const struct ts_report_check *c = &run->rep.checks[run->rep.n_checks - 1];
			char *f = xstrfmt("%s %s after the down migrations (%zu/%zu scenarios)", c->app,
					  c->failed ? "fails" : "works again", c->n_cases - c->failed, c->n_cases);

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
	return r;
}

/* The files' way back: each applied migration's down part, newest first. */
static int files_way_back(struct ts_run *run, json_t *check, const struct ts_migration **todo, size_t n,
			  const struct strvec *missing)
{
	PGconn *dev;
	int r = 0;

	if (missing->nr) {
		char *f = xstrfmt("%s has no down part, so the %s cannot be rolled back%s",
				  missing->v[0], run->phase ? "phase" : "release",
				  missing->nr > 1 ? " (nor can the others listed)" : "");

		data_failed(check, missing->v[0], f);
		for (size_t i = 1; i < missing->nr; i++)
			json_array_append_new(json_object_get(check, "excerpt"),
					      json_sprintf("%s has no down part", missing->v[i]));
		free(f);
		return 0;
	}
	if (!(dev = ts_env_connect(&run->env, &run->env.dev, NULL)))
		return -1;
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
			data_failed(check, todo[i]->down_file ? todo[i]->down_file : todo[i]->file, ts_error_message());
			ts_error_clear();
			break;
		}
		if (!run->quiet)
			fprintf(stderr, " %.0f ms\n", ms);
	}
	PQfinish(dev);
	return r;
}

/* A tool's way back: [phase] down, [migrate] down, or the tool's own (tools.h). */
static int tool_way_back(struct ts_run *run, json_t *check)
{
	const char *down = run->cfg.mig_down;
	double ms;

	for (size_t i = 0; run->phase && i < run->cfg.n_phases; i++)
		if (!strcmp(run->cfg.phases[i].name, run->phase))
			down = run->cfg.phases[i].down;
	if (ts_tool_down(run, down, &run->tool_before, &ms)) {
		if (ts_error_class() != TS_EXIT_GATE && ts_error_class() != TS_EXIT_USAGE)
			return -1;
		data_failed(check, down ? down : ts_tool_name(run->cfg.tool), ts_error_message());
		ts_error_clear();
	}
	return 0;
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
	double t0 = now_ms();
	int r = 0;

	*passed = 0;
	if (run->cfg.rollback == TS_GATE_OFF || ts_run_migration_failed(run))
		return 0;
	todo = xcalloc(run->rep.n_migrations + 1, sizeof(*todo));
	for (size_t i = 0; i < run->rep.n_migrations && !run->cfg.tool; i++) {
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
	if (!run->cfg.tool && !with_down) {
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
	st = ts_run_stage(run, "rollback", run->cfg.tool ? "the tool's way back on the dev side"
							 : "applying the down migrations on the dev side");
	check = data_check("rollback", name, "dev", run->cfg.rollback == TS_GATE_FAIL);
	free(name);
	r = run->cfg.tool ? tool_way_back(run, check) : files_way_back(run, check, todo, n, &missing);
	if (!r)
		r = judge_way_back(run, check, before, apps);
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
