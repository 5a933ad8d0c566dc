/*
 * report.c: the report model, the verdict, and the model as JSON.
 *
 * report.json is the model written out; `twinstage report` loads it and
 * renders again, so every format (render.c) agrees with it. The verdict is
 * computed from the recorded facts alone.
 */
#include "report/report.h"
#include "core/error.h"
#include "core/strbuf.h"
#include "core/util.h"
#include "core/version.h"
#include "core/wrapper.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define GROW(arr, n) ((arr) = xrealloc((arr), ((n) + 1) * sizeof(*(arr))), \
		      memset(&(arr)[(n)], 0, sizeof(*(arr))), &(arr)[(n)++])

void ts_report_init(struct ts_report *r, const char *project)
{
	char ts[32], id[64];
	time_t t = time(NULL);
	struct tm tm;

	memset(r, 0, sizeof(*r));
	r->project = xstrdup(project);
	iso_time(ts, sizeof(ts));
	r->started = xstrdup(ts);
	gmtime_r(&t, &tm);
	strftime(id, sizeof(id), "%Y%m%d-%H%M%S", &tm);
	r->run_id = xstrfmt("%s-%d", id, (int)getpid());
}

void ts_report_free(struct ts_report *r)
{
	for (size_t i = 0; i < r->n_stages; i++) {
		free(r->stages[i].name);
		free(r->stages[i].status);
		free(r->stages[i].detail);
	}
	for (size_t i = 0; i < r->n_migrations; i++) {
		struct ts_report_migration *m = &r->migrations[i];

		ts_report_stmts_clear(m);
		free(m->file);
		free(m->version);
		free(m->description);
		free(m->status);
		free(m->error);
		free(m->phase);
		json_decref(m->facts);
	}
	for (size_t i = 0; i < r->n_checks; i++) {
		struct ts_report_check *c = &r->checks[i];

		for (size_t j = 0; j < c->n_cases; j++) {
			struct ts_report_case *k = &c->cases[j];

			free(k->file);
			free(k->name);
			free(k->sql);
			free(k->text);
			free(k->expected);
			free(k->got);
			free(k->uncheckable);
			free(k->role);
			json_decref(k->locks);
		}
		free(c->cases);
		free(c->app);
		free(c->side);
		free(c->skip);
		free(c->output);
		free(c->phase);
		free(c->dir);
		free(c->role_note);
	}
	for (size_t i = 0; i < r->n_notes; i++)
		free(r->notes[i]);
	free(r->notes);
	json_decref(r->schema);
	json_decref(r->data);
	json_decref(r->phases);
	json_decref(r->load);
	json_decref(r->upgrade);
	json_decref(r->timing);
	free(r->stages);
	free(r->migrations);
	free(r->checks);
	free(r->run_id);
	free(r->project);
	free(r->started);
	free(r->backend);
	free(r->prod_booted);
	free(r->dev_booted);
	free(r->clone);
	free(r->clone_source);
	free(r->clone_note);
	free(r->tracking);
	free(r->tracking_table);
	free(r->migrations_dir);
	free(r->prod_version);
	free(r->dev_before);
	free(r->dev_after);
	free(r->current);
	free(r->next);
	free(r->error);
	free(r->verdict);
	free(r->reason);
	memset(r, 0, sizeof(*r));
}

struct ts_report_stage *ts_report_stage_add(struct ts_report *r, const char *name)
{
	struct ts_report_stage *s = GROW(r->stages, r->n_stages);

	s->name = xstrdup(name);
	return s;
}

struct ts_report_migration *ts_report_migration_add(struct ts_report *r, const char *file)
{
	struct ts_report_migration *m = GROW(r->migrations, r->n_migrations);

	m->file = xstrdup(file);
	return m;
}

struct ts_report_stmt *ts_report_stmt_add(struct ts_report_migration *m, int line, double ms,
					  const char *sql)
{
	struct ts_report_stmt *s = GROW(m->stmts, m->n_stmts);

	s->line = line;
	s->ms = ms;
	s->sql = xstrdup(sql);
	return s;
}

void ts_report_stmts_clear(struct ts_report_migration *m)
{
	for (size_t j = 0; j < m->n_stmts; j++) {
		free(m->stmts[j].sql);
		json_decref(m->stmts[j].facts);
	}
	free(m->stmts);
	m->stmts = NULL;
	m->n_stmts = 0;
}

struct ts_report_check *ts_report_check_add(struct ts_report *r, const char *app,
					    const char *side, enum ts_check_role role, int gating)
{
	struct ts_report_check *c = GROW(r->checks, r->n_checks);

	c->app = xstrdup(app);
	c->side = xstrdup(side);
	c->role = role;
	c->gating = gating;
	return c;
}

struct ts_report_case *ts_report_case_add(struct ts_report_check *c)
{
	return GROW(c->cases, c->n_cases);
}

void ts_report_note(struct ts_report *r, const char *fmt, ...)
{
	struct strbuf sb = STRBUF_INIT;
	va_list ap;
	char **slot;

	va_start(ap, fmt);
	strbuf_vaddf(&sb, fmt, ap);
	va_end(ap);
	slot = GROW(r->notes, r->n_notes);
	*slot = strbuf_detach(&sb);
}

void ts_report_data_add(struct ts_report *r, json_t *check)
{
	if (!r->data)
		r->data = json_array();
	json_array_append_new(r->data, check);
}

json_t *ts_report_data_find(const struct ts_report *r, const char *check, const char *side)
{
	json_t *v;
	size_t i;

	json_array_foreach(r->data, i, v) {
		const char *c = json_string_value(json_object_get(v, "check"));
		const char *s = json_string_value(json_object_get(v, "side"));

		if (c && !strcmp(c, check) && (!side || (s && !strcmp(s, side))))
			return v;
	}
	return NULL;
}

void ts_report_fail(struct ts_report *r)
{
	free(r->error);
	if (ts_error_hint_text())
		r->error = xstrfmt("%s\n%s", ts_error_message(), ts_error_hint_text());
	else
		r->error = xstrdup(ts_error_message());
	r->error_class = (int)ts_error_class();
}

const char *ts_check_role_name(enum ts_check_role role)
{
	switch (role) {
	case TS_CHECK_BASELINE: return "baseline";
	case TS_CHECK_BACKWARD: return "backward";
	case TS_CHECK_NEXT: return "next";
	case TS_CHECK_FORWARD: return "forward";
	case TS_CHECK_ROLLBACK: return "after rollback";
	case TS_CHECK_DURING: return "during migration";
	}
	return "?";
}

int ts_check_in_matrix(const struct ts_report_check *c)
{
	return c->role != TS_CHECK_ROLLBACK && c->role != TS_CHECK_DURING;
}

const struct ts_report_case *ts_report_first_failure(const struct ts_report_check *c)
{
	for (size_t i = 0; i < c->n_cases; i++)
		if (!c->cases[i].pass)
			return &c->cases[i];
	return NULL;
}

static void set_verdict(struct ts_report *r, const char *verdict, int code, char *reason)
{
	free(r->verdict);
	free(r->reason);
	r->verdict = xstrdup(verdict);
	r->exit_code = code;
	r->reason = reason;
}

double ts_json_num(json_t *o, const char *key)
{
	return json_number_value(json_object_get(o, key));
}

const char *ts_json_str(json_t *o, const char *key)
{
	const char *v = json_string_value(json_object_get(o, key));

	return v ? v : "";
}

/* A data check that failed and fails the gate. */
int ts_report_data_fails(json_t *v)
{
	return !strcmp(ts_json_str(v, "status"), "failed") && json_is_true(json_object_get(v, "gating"));
}

/* "v1 01_invoices.sql:5 "create invoice"" or the command's query. */
char *ts_report_stall_who(json_t *s)
{
	if (json_object_get(s, "app_file"))
		return xstrfmt("%s %s:%d \"%s\"", ts_json_str(s, "app"), ts_json_str(s, "app_file"),
			       (int)json_integer_value(json_object_get(s, "app_line")), ts_json_str(s, "name"));
	return xstrfmt("a session of the load command (%s)", ts_json_str(s, "name"));
}

char *ts_report_stall_line(const struct ts_report *r, json_t *s)
{
	char *who = ts_report_stall_who(s), over[64] = "";
	char *line;

	if (json_is_true(json_object_get(s, "over_gate")))
		snprintf(over, sizeof(over), ", over gate.max_stall_ms = %.0f", r->max_stall_ms);
	line = xstrfmt("%s kept %s waiting %.0f ms%s", ts_json_str(s, "migration"), who,
		       ts_json_num(s, "ms"), over);
	free(who);
	return line;
}

char *ts_report_stall_failure(const struct ts_report *r, const char *file)
{
	size_t n = strlen(file);
	json_t *e, *s;
	size_t i, j;

	json_array_foreach(r->load, i, e)
		json_array_foreach(json_object_get(e, "stalls"), j, s) {
			const char *where = ts_json_str(s, "migration");

			if (json_is_true(json_object_get(s, "over_gate")) && !strncmp(where, file, n) &&
			    where[n] == ':') {
				char *line = ts_report_stall_line(r, s), *why;

				why = xstrfmt("%s: users would have waited that long", line);
				free(line);
				return why;
			}
		}
	return NULL;
}

static char *case_reason(const struct ts_report_check *c, const char *where)
{
	const struct ts_report_case *k = ts_report_first_failure(c);

	return xstrfmt("%s fails %s: %s:%d \"%s\" expected %s, got %s", c->app, where,
		       k->file, k->line, k->name, k->expected, k->got);
}

/*
 * Why a migration that applied fails the gate anyway, or NULL: the
 * application stalled on it over gate.max_stall_ms, a lock
 * that blocks writes held over gate.max_lock_ms, or (gate.lint = fail) an
 * error-level lint finding. One answer for the verdict and for JUnit.
 */
char *ts_report_gate_failure(const struct ts_report *r, const struct ts_report_migration *m)
{
	/* a measured stall says more than a lock's length */
	char *stall = ts_report_stall_failure(r, m->file);

	if (stall)
		return stall;
	for (size_t j = 0; j < m->n_stmts; j++) {
		json_t *facts = m->stmts[j].facts, *l;
		size_t k;

		json_array_foreach(json_object_get(facts, "locks"), k, l)
			if (json_is_true(json_object_get(l, "over_gate")))
				return xstrfmt("%s:%d holds %s on %s for %.0f ms, over gate.max_lock_ms = %.0f: the application waits that long",
					       m->file, m->stmts[j].line,
					       json_string_value(json_object_get(l, "mode")),
					       json_string_value(json_object_get(l, "relation")),
					       json_number_value(json_object_get(l, "held_ms")), r->max_lock_ms);
		json_array_foreach(json_object_get(facts, "lint"), k, l) {
			const char *level = json_string_value(json_object_get(l, "level"));

			if (r->lint_fails && level && !strcmp(level, "error"))
				return xstrfmt("%s:%d: lint %s: %s (gate.lint = fail)", m->file,
					       (int)json_integer_value(json_object_get(l, "line")),
					       json_string_value(json_object_get(l, "rule")),
					       json_string_value(json_object_get(l, "message")));
		}
	}
	return NULL;
}

/* "phase 2 (backfill)": a phase of r->phases as people read it. */
char *ts_report_phase_title(json_t *ph)
{
	const char *title = ts_json_str(ph, "title");

	return xstrfmt("phase %s%s%s%s", ts_json_str(ph, "name"), *title ? " (" : "", title,
		       *title ? ")" : "");
}

int ts_report_same_phase(const char *a, const char *b)
{
	return a ? b && !strcmp(a, b) : !b;
}

/* Where a check ran, for a reason: "on the migrated dev side", "... after phase 2". */
static char *check_where(const struct ts_report_check *c)
{
	if (c->role == TS_CHECK_FORWARD)
		return xstrdup("on the production clone (forward compatibility)");
	if (c->role == TS_CHECK_DURING)
		return c->phase ? xstrfmt("on the dev side while phase %s migrated it", c->phase)
				: xstrdup("on the dev side while it migrated");
	if (c->role == TS_CHECK_ROLLBACK)
		return c->phase ? xstrfmt("on the dev side after rolling phase %s back", c->phase)
				: xstrdup("on the dev side after the down migrations");
	if (c->phase)
		return xstrfmt("on the dev side after phase %s", c->phase);
	return xstrdup(strcmp(c->side, "prod") ? "on the migrated dev side" : "on the production clone");
}

/* "dev", "dev after phase 2", "dev while phase 2 migrated": a failure's place in a list. */
char *ts_report_check_place(const struct ts_report_check *c)
{
	if (c->role == TS_CHECK_DURING)
		return c->phase ? xstrfmt("%s while phase %s migrated", c->side, c->phase)
				: xstrfmt("%s while migrating", c->side);
	return c->phase ? xstrfmt("%s after phase %s", c->side, c->phase) : xstrdup(c->side);
}

/*
 * Why what was recorded for one phase (NULL: outside any phase) fails the
 * gate, or NULL: a failed migration, then a gating check, then a data
 * check, then a lock or lint gate.
 */
static char *phase_failure(const struct ts_report *r, const char *phase)
{
	json_t *v;
	size_t i;
	char *why;

	for (i = 0; i < r->n_migrations; i++) {
		const struct ts_report_migration *m = &r->migrations[i];

		if (ts_report_same_phase(phase, m->phase) && m->status && !strcmp(m->status, "failed"))
			return xstrfmt("migration %s failed on the dev side: %s", m->file,
				       m->error ? m->error : "unknown error");
	}
	/* what the matrix shows first; a failure while migrating only when the end state passes */
	for (int during = 0; during < 2; during++)
		for (i = 0; i < r->n_checks; i++) {
			const struct ts_report_check *c = &r->checks[i];

			if (ts_report_same_phase(phase, c->phase) && c->gating && c->failed &&
			    (c->role == TS_CHECK_DURING) == during) {
				char *where = check_where(c);

				why = case_reason(c, where);
				free(where);
				return why;
			}
		}
	json_array_foreach(r->data, i, v)
		if (ts_report_same_phase(phase, json_string_value(json_object_get(v, "phase"))) && ts_report_data_fails(v))
			return xstrfmt("%s: %s", ts_json_str(v, "name"), ts_json_str(v, "failure"));
	for (i = 0; i < r->n_migrations; i++) {
		why = ts_report_same_phase(phase, r->migrations[i].phase) ? ts_report_gate_failure(r, &r->migrations[i]) : NULL;
		if (why)
			return why;
	}
	return NULL;
}

void ts_report_decide(struct ts_report *r)
{
	json_t *ph;
	size_t i;
	char *why;

	if (r->error) {
		set_verdict(r, "error", r->error_class ? r->error_class : TS_EXIT_ENV,
			    xstrdup(r->error));
		return;
	}
	for (i = 0; i < r->n_checks; i++) {
		const struct ts_report_check *c = &r->checks[i];

		if (c->role == TS_CHECK_BASELINE && c->failed) {
			why = case_reason(c, "on the production clone, before any migration");
			set_verdict(r, "scenarios-wrong", TS_EXIT_USAGE,
				    xstrfmt("%s; the scenarios are wrong, not the migration", why));
			free(why);
			return;
		}
	}
	/* the first phase that would break a live version is the one to name */
	json_array_foreach(r->phases, i, ph) {
		if ((why = phase_failure(r, ts_json_str(ph, "name")))) {
			char *title = ts_report_phase_title(ph);

			set_verdict(r, "incompatible", TS_EXIT_GATE, xstrfmt("%s: %s", title, why));
			free(title);
			free(why);
			return;
		}
	}
	if ((why = phase_failure(r, NULL))) {
		set_verdict(r, "incompatible", TS_EXIT_GATE, why);
		return;
	}
	set_verdict(r, "compatible", TS_EXIT_OK,
		    xstrdup(r->current ? "every gating check passed" : "the migrations applied"));
}

/* ---- JSON: the model written out, and read back ---- */

static json_t *jstr(const char *s)
{
	return s ? json_string(s) : json_null();
}

json_t *ts_report_to_json(const struct ts_report *r)
{
	json_t *o = json_object(), *a;

	/* what a machine reading it checks first: the shape (schema/report.schema.json) */
	json_object_set_new(o, "format", json_integer(TS_REPORT_FORMAT));
	json_object_set_new(o, "twinstage", json_string(TS_VERSION));
	json_object_set_new(o, "run_id", jstr(r->run_id));
	json_object_set_new(o, "project", jstr(r->project));
	json_object_set_new(o, "started", jstr(r->started));
	json_object_set_new(o, "backend", jstr(r->backend));
	json_object_set_new(o, "clone", jstr(r->clone));
	json_object_set_new(o, "clone_source", jstr(r->clone_source));
	json_object_set_new(o, "clone_dev_ms", json_real(r->clone_dev_ms));
	json_object_set_new(o, "clone_note", jstr(r->clone_note));
	if (r->upgrade)
		json_object_set(o, "upgrade", r->upgrade);
	if (r->timing)
		json_object_set(o, "timing", r->timing);
	json_object_set_new(o, "ports", json_pack("{s:i, s:i}", "prod", r->prod_port, "dev", r->dev_port));
	if (r->prod_booted || r->dev_booted)
		json_object_set_new(o, "booted", json_pack("{s:o, s:o}", "prod", jstr(r->prod_booted), "dev",
							   jstr(r->dev_booted)));
	json_object_set_new(o, "tracking", json_pack("{s:o, s:o, s:o, s:o, s:o, s:o}",
						     "tool", jstr(r->tracking), "table", jstr(r->tracking_table),
						     "folder", jstr(r->migrations_dir),
						     "prod_version", jstr(r->prod_version),
						     "dev_before", jstr(r->dev_before),
						     "dev_after", jstr(r->dev_after)));
	json_object_set_new(o, "current", jstr(r->current));
	json_object_set_new(o, "next", jstr(r->next));
	json_object_set_new(o, "verdict", jstr(r->verdict));
	json_object_set_new(o, "reason", jstr(r->reason));
	json_object_set_new(o, "exit_code", json_integer(r->exit_code));
	json_object_set_new(o, "error", jstr(r->error));
	json_object_set_new(o, "error_class", json_integer(r->error_class));

	a = json_array();
	for (size_t i = 0; i < r->n_stages; i++) {
		const struct ts_report_stage *s = &r->stages[i];

		json_array_append_new(a, json_pack("{s:s, s:f, s:s?, s:s?}", "name", s->name,
						   "ms", s->ms, "status", s->status, "detail", s->detail));
	}
	json_object_set_new(o, "stages", a);

	a = json_array();
	for (size_t i = 0; i < r->n_migrations; i++) {
		const struct ts_report_migration *m = &r->migrations[i];
		json_t *st = json_array();

		for (size_t j = 0; j < m->n_stmts; j++)
			json_array_append_new(st, json_pack("{s:i, s:f, s:s, s:O?}", "line", m->stmts[j].line,
							    "ms", m->stmts[j].ms, "sql", m->stmts[j].sql,
							    "facts", m->stmts[j].facts));
		json_array_append_new(a, json_pack("{s:s, s:o, s:o, s:s?, s:b, s:f, s:o, s:o, s:o, s:i, s:O?}",
						   "file", m->file, "version", jstr(m->version),
						   "description", jstr(m->description),
						   "status", m->status, "transactional", m->transactional,
						   "ms", m->ms, "error", jstr(m->error), "phase", jstr(m->phase),
						   "statements", st, "retries", m->retries, "facts", m->facts));
		if (m->numbered)
			json_object_set_new(json_array_get(a, json_array_size(a) - 1), "numbered", json_true());
	}
	json_object_set_new(o, "migrations", a);

	a = json_array();
	for (size_t i = 0; i < r->n_checks; i++) {
		const struct ts_report_check *c = &r->checks[i];
		json_t *cases = json_array();

		for (size_t j = 0; j < c->n_cases; j++) {
			const struct ts_report_case *k = &c->cases[j];

			json_t *w = json_pack("{s:s?, s:s?, s:i, s:s?, s:s?, s:s?, s:b}",
					      "file", k->file, "name", k->name, "line", k->line, "sql", k->sql,
					      "expected", k->expected, "got", k->got, "pass", k->pass);

			if (k->locks)
				json_object_set(w, "locks", k->locks);
			if (k->uncheckable)
				json_object_set_new(w, "uncheckable", json_string(k->uncheckable));
			if (k->calls)
				json_object_set_new(w, "calls", json_integer(k->calls));
			if (k->captured)
				json_object_set_new(w, "captured", json_true());
			if (k->role)
				json_object_set_new(w, "role", json_string(k->role));
			json_array_append_new(cases, w);
		}
		json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:b, s:b, s:o, s:f, s:i, s:o, s:o, s:o}",
						   "app", c->app, "side", c->side,
						   "role", ts_check_role_name(c->role),
						   "gating", c->gating, "ran", c->ran,
						   "skip", jstr(c->skip), "ms", c->ms,
						   "failed", (int)c->failed, "output", jstr(c->output),
						   "phase", jstr(c->phase), "cases", cases));
		if (c->dir)
			json_object_set_new(json_array_get(a, json_array_size(a) - 1), "dir", json_string(c->dir));
		{
			struct ts_report_workload w;

			if (ts_report_workload(c, &w)) {
				json_t *failing = json_array();

				for (size_t j = 0; j < w.n_failing; j++)
					json_array_append_new(failing, json_pack("{s:s, s:i, s:s?, s:I, s:s?}",
						"file", w.failing[j]->file, "line", w.failing[j]->line,
						"name", w.failing[j]->name, "calls", (json_int_t)w.failing[j]->calls,
						"got", w.failing[j]->got));
				json_object_set_new(json_array_get(a, json_array_size(a) - 1), "workload",
						    json_pack("{s:I, s:I, s:I, s:I, s:I, s:o}",
							      "statements", (json_int_t)w.statements,
							      "failed", (json_int_t)w.failed,
							      "uncheckable", (json_int_t)w.uncheckable,
							      "calls", (json_int_t)w.calls,
							      "failed_calls", (json_int_t)w.failed_calls,
							      "failing", failing));
			}
			ts_report_workload_free(&w);
		}
	}
	json_object_set_new(o, "checks", a);

	a = json_array();
	for (size_t i = 0; i < r->n_notes; i++)
		json_array_append_new(a, json_string(r->notes[i]));
	json_object_set_new(o, "notes", a);
	if (r->schema)
		json_object_set(o, "schema", r->schema);
	if (r->data)
		json_object_set(o, "data", r->data);
	if (r->phases)
		json_object_set(o, "phases", r->phases);
	if (r->load)
		json_object_set(o, "load", r->load);
	json_object_set_new(o, "gate", json_pack("{s:f, s:f, s:b}", "max_lock_ms", r->max_lock_ms,
						 "max_stall_ms", r->max_stall_ms, "lint_fails", r->lint_fails));
	return o;
}

static char *jget(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_string(v) ? xstrdup(json_string_value(v)) : NULL;
}

static int jint(json_t *o, const char *key)
{
	return (int)json_integer_value(json_object_get(o, key));
}

static void from_json(struct ts_report *r, json_t *o)
{
	json_t *v, *w;
	size_t i, j;

	memset(r, 0, sizeof(*r));
	r->run_id = jget(o, "run_id");
	r->project = jget(o, "project");
	r->started = jget(o, "started");
	r->backend = jget(o, "backend");
	r->clone = jget(o, "clone");
	r->clone_source = jget(o, "clone_source");
	r->clone_dev_ms = ts_json_num(o, "clone_dev_ms");
	r->clone_note = jget(o, "clone_note");
	if ((v = json_object_get(o, "upgrade")) && json_is_object(v))
		r->upgrade = json_incref(v);
	if ((v = json_object_get(o, "timing")) && json_is_object(v))
		r->timing = json_incref(v);
	r->prod_port = jint(json_object_get(o, "ports"), "prod");
	r->dev_port = jint(json_object_get(o, "ports"), "dev");
	r->prod_booted = jget(json_object_get(o, "booted"), "prod");
	r->dev_booted = jget(json_object_get(o, "booted"), "dev");
	{
		json_t *tr = json_object_get(o, "tracking");

		r->tracking = jget(tr, "tool");
		r->tracking_table = jget(tr, "table");
		r->migrations_dir = jget(tr, "folder");
		r->prod_version = jget(tr, "prod_version");
		r->dev_before = jget(tr, "dev_before");
		r->dev_after = jget(tr, "dev_after");
	}
	r->current = jget(o, "current");
	r->next = jget(o, "next");
	r->verdict = jget(o, "verdict");
	r->reason = jget(o, "reason");
	r->exit_code = jint(o, "exit_code");
	r->error = jget(o, "error");
	r->error_class = jint(o, "error_class");
	json_array_foreach(json_object_get(o, "stages"), i, v) {
		struct ts_report_stage *s = GROW(r->stages, r->n_stages);

		s->name = jget(v, "name");
		s->ms = ts_json_num(v, "ms");
		s->status = jget(v, "status");
		s->detail = jget(v, "detail");
	}
	json_array_foreach(json_object_get(o, "migrations"), i, v) {
		struct ts_report_migration *m = GROW(r->migrations, r->n_migrations);

		m->file = jget(v, "file");
		m->version = jget(v, "version");
		m->description = jget(v, "description");
		m->status = jget(v, "status");
		m->transactional = json_is_true(json_object_get(v, "transactional"));
		m->ms = ts_json_num(v, "ms");
		m->error = jget(v, "error");
		m->phase = jget(v, "phase");
		m->retries = jint(v, "retries");
		m->numbered = json_is_true(json_object_get(v, "numbered"));
		m->facts = json_incref(json_object_get(v, "facts"));
		json_array_foreach(json_object_get(v, "statements"), j, w) {
			char *sql = jget(w, "sql");

			struct ts_report_stmt *rs = ts_report_stmt_add(m, jint(w, "line"), ts_json_num(w, "ms"),
								       sql ? sql : "");

			free(sql);
			rs->facts = json_incref(json_object_get(w, "facts"));
		}
	}
	json_array_foreach(json_object_get(o, "checks"), i, v) {
		struct ts_report_check *c = GROW(r->checks, r->n_checks);
		const char *role = json_string_value(json_object_get(v, "role"));

		c->app = jget(v, "app");
		c->side = jget(v, "side");
		c->role = TS_CHECK_BASELINE;
		for (int k = TS_CHECK_BASELINE; k <= TS_CHECK_DURING; k++)
			if (role && !strcmp(role, ts_check_role_name((enum ts_check_role)k)))
				c->role = (enum ts_check_role)k;
		c->gating = json_is_true(json_object_get(v, "gating"));
		c->ran = json_is_true(json_object_get(v, "ran"));
		c->skip = jget(v, "skip");
		c->ms = ts_json_num(v, "ms");
		c->output = jget(v, "output");
		c->phase = jget(v, "phase");
		c->dir = jget(v, "dir");
		json_array_foreach(json_object_get(v, "cases"), j, w) {
			struct ts_report_case *k = ts_report_case_add(c);

			k->file = jget(w, "file");
			k->name = jget(w, "name");
			k->line = jint(w, "line");
			k->sql = jget(w, "sql");
			k->expected = jget(w, "expected");
			k->got = jget(w, "got");
			k->locks = json_incref(json_object_get(w, "locks"));
			k->pass = json_is_true(json_object_get(w, "pass"));
			k->uncheckable = jget(w, "uncheckable");
			k->calls = (long)json_integer_value(json_object_get(w, "calls"));
			k->captured = json_is_true(json_object_get(w, "captured"));
			k->role = jget(w, "role");
			if (!k->pass)
				c->failed++;
		}
	}
	json_array_foreach(json_object_get(o, "notes"), i, v) {
		char **slot = GROW(r->notes, r->n_notes);

		*slot = xstrdup(json_string_value(v) ? json_string_value(v) : "");
	}
	r->schema = json_incref(json_object_get(o, "schema"));
	r->data = json_incref(json_object_get(o, "data"));
	r->phases = json_incref(json_object_get(o, "phases"));
	r->load = json_incref(json_object_get(o, "load"));
	r->max_lock_ms = ts_json_num(json_object_get(o, "gate"), "max_lock_ms");
	r->max_stall_ms = ts_json_num(json_object_get(o, "gate"), "max_stall_ms");
	r->lint_fails = json_is_true(json_object_get(json_object_get(o, "gate"), "lint_fails"));
}

int ts_report_load(struct ts_report *r, const char *dir)
{
	char *path = path_join(dir, "report.json");
	json_error_t jerr;
	json_t *o = json_load_file(path, 0, &jerr);

	if (!o) {
		ts_error_set(TS_EXIT_USAGE, "could not read report \"%s\": %s", path, jerr.text);
		free(path);
		return -1;
	}
	{
		json_t *f = json_object_get(o, "format");

		/* a report of a twinstage before formats had numbers is format 1 */
		if (f && (!json_is_integer(f) || json_integer_value(f) > TS_REPORT_FORMAT)) {
			ts_error_set(TS_EXIT_USAGE, "report \"%s\" is of format %s, newer than this twinstage reads (%d)",
				     path, json_is_integer(f) ? "a later one" : "an unknown one", TS_REPORT_FORMAT);
			ts_error_hint("read it with the twinstage that wrote it (%s)",
				      json_string_value(json_object_get(o, "twinstage")) ?: "a later version");
			json_decref(o);
			free(path);
			return -1;
		}
	}
	from_json(r, o);
	json_decref(o);
	free(path);
	return 0;
}

int ts_report_informational(const struct ts_report *r, const struct ts_report_check *c)
{
	return r->phases && !c->gating && c->role != TS_CHECK_BASELINE;
}

void ts_report_schema_counts(const struct ts_report *r, size_t n[3])
{
	json_t *v;
	size_t i;

	n[0] = n[1] = n[2] = 0;
	json_array_foreach(r->schema, i, v) {
		const char *c = ts_json_str(v, "class");

		n[!strcmp(c, "breaking") ? 0 : !strcmp(c, "risky") ? 1 : 2]++;
	}
}

static int heavier(const void *a, const void *b)
{
	const struct ts_report_case *x = *(const struct ts_report_case *const *)a;
	const struct ts_report_case *y = *(const struct ts_report_case *const *)b;

	if (x->calls != y->calls)
		return x->calls < y->calls ? 1 : -1;
	return x->line - y->line;
}

int ts_report_workload(const struct ts_report_check *c, struct ts_report_workload *w)
{
	memset(w, 0, sizeof(*w));
	for (size_t i = 0; i < c->n_cases; i++) {
		const struct ts_report_case *k = &c->cases[i];
		size_t first = i;
		int failed = !k->pass, uncheckable = !!k->uncheckable;

		if (!k->captured)
			continue;
		/* the parameter sets of one statement follow each other */
		if (i && c->cases[i - 1].captured && c->cases[i - 1].line == k->line &&
		    !strcmp(c->cases[i - 1].file, k->file))
			continue;
		for (size_t j = i + 1; j < c->n_cases && c->cases[j].line == k->line && c->cases[j].captured &&
				       !strcmp(c->cases[j].file, k->file); j++) {
			if (!c->cases[j].pass && !failed++)
				first = j;
			uncheckable |= !!c->cases[j].uncheckable;
		}
		w->statements++;
		w->calls += k->calls;
		if (failed) {
			w->failed++;
			w->failed_calls += k->calls;
			w->failing = xrealloc(w->failing, (w->n_failing + 1) * sizeof(*w->failing));
			w->failing[w->n_failing++] = &c->cases[first];
		} else if (uncheckable) {
			w->uncheckable++;
		}
	}
	if (w->n_failing > 1)
		qsort(w->failing, w->n_failing, sizeof(*w->failing), heavier);
	return w->statements > 0;
}

void ts_report_workload_free(struct ts_report_workload *w)
{
	free(w->failing);
	memset(w, 0, sizeof(*w));
}

char *ts_report_workload_line(const struct ts_report_check *c, const struct ts_report_workload *w)
{
	struct strbuf sb = STRBUF_INIT;

	strbuf_addf(&sb, "%zu of %zu captured statement%s of %s fail%s on the %s side", w->failed, w->statements,
		    w->statements == 1 ? "" : "s", c->app, w->failed == 1 ? "s" : "", c->side);
	if (w->calls)
		strbuf_addf(&sb, " (%.1f %% of production's calls)", 100.0 * (double)w->failed_calls / (double)w->calls);
	if (w->uncheckable)
		strbuf_addf(&sb, "; %zu not checkable (they fail on the production clone too)", w->uncheckable);
	return strbuf_detach(&sb);
}
