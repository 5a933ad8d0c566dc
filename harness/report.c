/*
 * report.c: the report model, the verdict, and the renderers.
 *
 * report.json is the model written out; `twinstage report` loads it and
 * renders again, so text, Markdown and JUnit always agree with it.
 */
#include "report.h"
#include "error.h"
#include "strbuf.h"
#include "strvec.h"
#include "util.h"

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

		for (size_t j = 0; j < m->n_stmts; j++) {
			free(m->stmts[j].sql);
			json_decref(m->stmts[j].facts);
		}
		free(m->stmts);
		free(m->file);
		free(m->version);
		free(m->description);
		free(m->status);
		free(m->error);
		free(m->phase);
	}
	for (size_t i = 0; i < r->n_checks; i++) {
		struct ts_report_check *c = &r->checks[i];

		for (size_t j = 0; j < c->n_cases; j++) {
			struct ts_report_case *k = &c->cases[j];

			free(k->file);
			free(k->name);
			free(k->sql);
			free(k->expected);
			free(k->got);
		}
		free(c->cases);
		free(c->app);
		free(c->side);
		free(c->skip);
		free(c->output);
		free(c->phase);
	}
	for (size_t i = 0; i < r->n_notes; i++)
		free(r->notes[i]);
	free(r->notes);
	json_decref(r->schema);
	json_decref(r->data);
	json_decref(r->phases);
	json_decref(r->load);
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

static const struct ts_report_case *first_failure(const struct ts_report_check *c)
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
static int data_fails(json_t *v)
{
	return !strcmp(ts_json_str(v, "status"), "failed") && json_is_true(json_object_get(v, "gating"));
}

static char *case_reason(const struct ts_report_check *c, const char *where)
{
	const struct ts_report_case *k = first_failure(c);

	return xstrfmt("%s fails %s: %s:%d \"%s\" expected %s, got %s", c->app, where,
		       k->file, k->line, k->name, k->expected, k->got);
}

/*
 * Why a migration that applied fails the gate anyway, or NULL: the
 * application stalled on it over gate.max_stall_ms, a lock
 * that blocks writes held over gate.max_lock_ms, or (gate.lint = fail) an
 * error-level lint finding. One answer for the verdict and for JUnit.
 */
static char *gate_failure(const struct ts_report *r, const struct ts_report_migration *m)
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
static char *phase_title(json_t *ph)
{
	const char *title = ts_json_str(ph, "title");

	return xstrfmt("phase %s%s%s%s", ts_json_str(ph, "name"), *title ? " (" : "", title,
		       *title ? ")" : "");
}

static int same_phase(const char *a, const char *b)
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
static char *check_place(const struct ts_report_check *c)
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

		if (same_phase(phase, m->phase) && m->status && !strcmp(m->status, "failed"))
			return xstrfmt("migration %s failed on the dev side: %s", m->file,
				       m->error ? m->error : "unknown error");
	}
	/* what the matrix shows first; a failure while migrating only when the end state passes */
	for (int during = 0; during < 2; during++)
		for (i = 0; i < r->n_checks; i++) {
			const struct ts_report_check *c = &r->checks[i];

			if (same_phase(phase, c->phase) && c->gating && c->failed &&
			    (c->role == TS_CHECK_DURING) == during) {
				char *where = check_where(c);

				why = case_reason(c, where);
				free(where);
				return why;
			}
		}
	json_array_foreach(r->data, i, v)
		if (same_phase(phase, json_string_value(json_object_get(v, "phase"))) && data_fails(v))
			return xstrfmt("%s: %s", ts_json_str(v, "name"), ts_json_str(v, "failure"));
	for (i = 0; i < r->n_migrations; i++) {
		why = same_phase(phase, r->migrations[i].phase) ? gate_failure(r, &r->migrations[i]) : NULL;
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
			char *title = phase_title(ph);

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

int ts_report_format_parse(const char *s, enum ts_report_format *out)
{
	if (!strcmp(s, "text"))
		*out = TS_FMT_TEXT;
	else if (!strcmp(s, "json"))
		*out = TS_FMT_JSON;
	else if (!strcmp(s, "junit"))
		*out = TS_FMT_JUNIT;
	else if (!strcmp(s, "markdown") || !strcmp(s, "md"))
		*out = TS_FMT_MARKDOWN;
	else if (!strcmp(s, "html"))
		*out = TS_FMT_HTML;
	else
		return ts_error_set(TS_EXIT_USAGE,
				    "unknown report format \"%s\" (expected text, json, junit, markdown or html)", s);
	return 0;
}

/* ---- JSON: the model written out, and read back ---- */

static json_t *jstr(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *to_json(const struct ts_report *r)
{
	json_t *o = json_object(), *a;

	json_object_set_new(o, "run_id", jstr(r->run_id));
	json_object_set_new(o, "project", jstr(r->project));
	json_object_set_new(o, "started", jstr(r->started));
	json_object_set_new(o, "backend", jstr(r->backend));
	json_object_set_new(o, "clone", jstr(r->clone));
	json_object_set_new(o, "clone_source", jstr(r->clone_source));
	json_object_set_new(o, "clone_dev_ms", json_real(r->clone_dev_ms));
	json_object_set_new(o, "clone_note", jstr(r->clone_note));
	json_object_set_new(o, "ports", json_pack("{s:i, s:i}", "prod", r->prod_port, "dev", r->dev_port));
	if (r->prod_booted || r->dev_booted)
		json_object_set_new(o, "booted", json_pack("{s:o, s:o}", "prod", jstr(r->prod_booted), "dev",
							   jstr(r->dev_booted)));
	json_object_set_new(o, "tracking", json_pack("{s:o, s:o, s:o, s:o, s:o}",
						     "tool", jstr(r->tracking), "table", jstr(r->tracking_table),
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
		json_array_append_new(a, json_pack("{s:s, s:o, s:o, s:s?, s:b, s:f, s:o, s:o, s:o}",
						   "file", m->file, "version", jstr(m->version),
						   "description", jstr(m->description),
						   "status", m->status, "transactional", m->transactional,
						   "ms", m->ms, "error", jstr(m->error), "phase", jstr(m->phase),
						   "statements", st));
	}
	json_object_set_new(o, "migrations", a);

	a = json_array();
	for (size_t i = 0; i < r->n_checks; i++) {
		const struct ts_report_check *c = &r->checks[i];
		json_t *cases = json_array();

		for (size_t j = 0; j < c->n_cases; j++) {
			const struct ts_report_case *k = &c->cases[j];

			json_array_append_new(cases, json_pack("{s:s?, s:s?, s:i, s:s?, s:s?, s:s?, s:b}",
							       "file", k->file, "name", k->name,
							       "line", k->line, "sql", k->sql,
							       "expected", k->expected, "got", k->got,
							       "pass", k->pass));
		}
		json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:b, s:b, s:o, s:f, s:i, s:o, s:o, s:o}",
						   "app", c->app, "side", c->side,
						   "role", ts_check_role_name(c->role),
						   "gating", c->gating, "ran", c->ran,
						   "skip", jstr(c->skip), "ms", c->ms,
						   "failed", (int)c->failed, "output", jstr(c->output),
						   "phase", jstr(c->phase), "cases", cases));
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
	r->prod_port = jint(json_object_get(o, "ports"), "prod");
	r->dev_port = jint(json_object_get(o, "ports"), "dev");
	r->prod_booted = jget(json_object_get(o, "booted"), "prod");
	r->dev_booted = jget(json_object_get(o, "booted"), "dev");
	{
		json_t *tr = json_object_get(o, "tracking");

		r->tracking = jget(tr, "tool");
		r->tracking_table = jget(tr, "table");
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
		json_array_foreach(json_object_get(v, "cases"), j, w) {
			struct ts_report_case *k = ts_report_case_add(c);

			k->file = jget(w, "file");
			k->name = jget(w, "name");
			k->line = jint(w, "line");
			k->sql = jget(w, "sql");
			k->expected = jget(w, "expected");
			k->got = jget(w, "got");
			k->pass = json_is_true(json_object_get(w, "pass"));
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

/* ---- text, Markdown, JUnit ---- */

static const struct ts_report_check *find_check(const struct ts_report *r, const char *app,
						const char *side)
{
	for (size_t i = 0; i < r->n_checks; i++)
		if (!strcmp(r->checks[i].app, app) && !strcmp(r->checks[i].side, side) &&
		    ts_check_in_matrix(&r->checks[i]))
			return &r->checks[i];
	return NULL;
}

static char *cell(const struct ts_report_check *c, int markdown)
{
	const char *why;

	if (!c)
		return xstrdup("-");
	if (!c->ran)
		return xstrfmt("not run%s%s%s", c->skip ? " (" : "", c->skip ? c->skip : "",
			       c->skip ? ")" : "");
	why = c->role == TS_CHECK_BASELINE ? "baseline" :
	      c->role == TS_CHECK_FORWARD ? (c->gating ? "forward, gate" : "forward, warn only") :
	      "gate";
	if (c->failed)
		return xstrfmt("%s %zu/%zu (%s)", markdown ? "**FAIL**" : "FAIL",
			       c->n_cases - c->failed, c->n_cases, why);
	return xstrfmt("pass %zu/%zu (%s)", c->n_cases, c->n_cases, why);
}

/* The apps of the matrix, in order: current, then next, then any other. */
static size_t matrix_apps(const struct ts_report *r, const char **apps, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < r->n_checks && n < max; i++) {
		int seen = 0;

		for (size_t j = 0; j < n; j++)
			seen |= !strcmp(apps[j], r->checks[i].app);
		if (!seen)
			apps[n++] = r->checks[i].app;
	}
	return n;
}

static const char *app_label(const struct ts_report *r, const char *app)
{
	if (r->current && !strcmp(app, r->current))
		return "current";
	if (r->next && !strcmp(app, r->next))
		return "next";
	return "";
}


/* A check shown only in the rollout matrix: a version that is not live there. */
static int informational(const struct ts_report *r, const struct ts_report_check *c)
{
	return r->phases && !c->gating && c->role != TS_CHECK_BASELINE;
}

/* ---- phases: the rollout matrix and what each phase did ---- */

static const struct ts_report_check *find_phase_check(const struct ts_report *r, const char *app,
						      const char *phase)
{
	for (size_t i = 0; i < r->n_checks; i++) {
		const struct ts_report_check *c = &r->checks[i];

		if (!strcmp(c->app, app) && ts_check_in_matrix(c) && same_phase(phase, c->phase) &&
		    (phase || !strcmp(c->side, "prod")))
			return c;
	}
	return NULL;
}

/* "pass 5/5", "FAIL 2/3: "name"", or in parentheses where the version is not live. */
static char *phase_cell(const struct ts_report_check *c, int markdown)
{
	const struct ts_report_case *k;

	if (!c)
		return xstrdup("-");
	if (!c->ran)
		return xstrdup("not run");
	if (!c->gating)
		return xstrfmt("(%s %zu/%zu)", c->failed ? "fail" : "pass", c->n_cases - c->failed, c->n_cases);
	if (!c->failed)
		return xstrfmt("pass %zu/%zu", c->n_cases, c->n_cases);
	k = first_failure(c);
	return xstrfmt("%s %zu/%zu: \"%s\"", markdown ? "**FAIL**" : "FAIL", c->n_cases - c->failed,
		       c->n_cases, k->name ? k->name : k->file);
}

/* "after phase 2 (backfill)", or "production clone" for NULL. */
static char *phase_label(json_t *ph)
{
	char *title, *label;

	if (!ph)
		return xstrdup("production clone");
	title = phase_title(ph);
	label = xstrfmt("after %s", title);
	free(title);
	return label;
}

/*
 * What a phase did, in one line: its migrations, batches, and the
 * longest lock that kept the application from writing.
 */
static char *phase_summary(const struct ts_report *r, json_t *ph)
{
	struct strbuf sb = STRBUF_INIT;
	const char *name = ts_json_str(ph, "name");
	json_t *worst = NULL, *l;
	size_t n = 0, stmts = 0, k;
	long long batches = 0, rows = 0;
	double ms = 0;

	for (size_t i = 0; i < r->n_migrations; i++) {
		const struct ts_report_migration *m = &r->migrations[i];

		if (!same_phase(name, m->phase))
			continue;
		n++;
		ms += m->ms;
		stmts += m->n_stmts;
		for (size_t j = 0; j < m->n_stmts; j++) {
			json_t *b = json_object_get(m->stmts[j].facts, "batch");

			batches += json_integer_value(json_object_get(b, "batches"));
			rows += json_integer_value(json_object_get(b, "rows"));
			json_array_foreach(json_object_get(m->stmts[j].facts, "locks"), k, l)
				if (json_is_true(json_object_get(l, "blocking")) &&
				    (!worst || json_number_value(json_object_get(l, "held_ms")) >
						       json_number_value(json_object_get(worst, "held_ms"))))
					worst = l;
		}
	}
	strbuf_addf(&sb, "%zu migration%s, %zu statement%s, %.0f ms", n, n == 1 ? "" : "s", stmts,
		    stmts == 1 ? "" : "s", ms);
	if (batches)
		strbuf_addf(&sb, ", %lld rows in %lld batch%s", rows, batches, batches == 1 ? "" : "es");
	if (worst)
		strbuf_addf(&sb, "; longest lock that blocks writes: %s on %s, %.0f ms", ts_json_str(worst, "mode"),
			    ts_json_str(worst, "relation"), json_number_value(json_object_get(worst, "held_ms")));
	else if (n)
		strbuf_addstr(&sb, "; no lock that blocks writes");
	return strbuf_detach(&sb);
}

/* The phase x version matrix, as text or a Markdown table. */
static void render_phases(const struct ts_report *r, const char **apps, size_t n_apps, int markdown,
			  FILE *out)
{
	json_t *ph;
	size_t i;
	int w = (int)strlen("production clone");

	json_array_foreach(r->phases, i, ph) {
		char *label = phase_label(ph);

		if ((int)strlen(label) > w)
			w = (int)strlen(label);
		free(label);
	}
	if (markdown) {
		fprintf(out, "| state |");
		for (size_t a = 0; a < n_apps; a++) {
			fputc(' ', out);
			ts_md_escape(out, apps[a]);
			fprintf(out, " |");
		}
		fprintf(out, "\n|---|");
		for (size_t a = 0; a < n_apps; a++)
			fprintf(out, "---|");
		fputc('\n', out);
	} else {
		fprintf(out, "\nrollout: each version after each phase (in parentheses: not live then, not gating)\n  %-*s", w, "state");
		for (size_t a = 0; a < n_apps; a++)
			fprintf(out, " %-24s", apps[a]);
		fputc('\n', out);
	}
	for (i = 0; i <= json_array_size(r->phases); i++) {
		json_t *p = i ? json_array_get(r->phases, i - 1) : NULL;
		char *label = phase_label(p);

		if (markdown) {
			fprintf(out, "| ");
			ts_md_escape(out, label);
			fprintf(out, " |");
		} else {
			fprintf(out, "  %-*s", w, label);
		}
		for (size_t a = 0; a < n_apps; a++) {
			char *c = phase_cell(find_phase_check(r, apps[a], p ? ts_json_str(p, "name") : NULL),
					     markdown);

			if (markdown)
				fprintf(out, " %s |", c);
			else
				fprintf(out, " %-24s", c);
			free(c);
		}
		fputc('\n', out);
		free(label);
	}
	if (markdown)
		fputc('\n', out);
	json_array_foreach(r->phases, i, ph) {
		char *sum = phase_summary(r, ph), *title = phase_title(ph);

		if (markdown) {
			fprintf(out, "- ");
			ts_md_escape(out, title);
			fprintf(out, ": ");
			ts_md_escape(out, sum);
			fputc('\n', out);
		} else {
			fprintf(out, "  %s: %s\n", title, sum);
		}
		free(sum);
		free(title);
	}
	if (markdown)
		fputc('\n', out);
}

/* One line for a schema change: "breaking: column x dropped: why [file:line]". */
static char *change_line(json_t *c)
{
	struct strbuf sb = STRBUF_INIT;
	json_t *ev = json_object_get(c, "evidence"), *e;
	size_t i;

	strbuf_addf(&sb, "%-8s %s %s %s", ts_json_str(c, "class"), ts_json_str(c, "kind"), ts_json_str(c, "name"), ts_json_str(c, "change"));
	if (*ts_json_str(c, "detail"))
		strbuf_addf(&sb, ": %s", ts_json_str(c, "detail"));
	if (*ts_json_str(c, "file"))
		strbuf_addf(&sb, " [%s:%d]", ts_json_str(c, "file"), (int)json_integer_value(json_object_get(c, "line")));
	json_array_foreach(ev, i, e)
		strbuf_addf(&sb, "%s%s", i ? "; " : " - fails ", json_string_value(e));
	return strbuf_detach(&sb);
}

/* What was seen of one statement, a line per fact. */
static void stmt_facts(const struct ts_report *r, const struct ts_report_migration *m,
		       const struct ts_report_stmt *st, struct strvec *out)
{
	json_t *f = st->facts, *v;
	size_t i;

	json_array_foreach(json_object_get(f, "locks"), i, v)
		strvec_pushf(out, "lock %s on %s held %.0f ms%s%s", ts_json_str(v, "mode"), ts_json_str(v, "relation"),
			     json_number_value(json_object_get(v, "held_ms")),
			     json_is_true(json_object_get(v, "blocking")) ? " (blocks writes)" : " (non-blocking)",
			     json_is_true(json_object_get(v, "over_gate")) ? ", over gate.max_lock_ms" : "");
	if ((v = json_object_get(f, "batch")))
		strvec_pushf(out, "ran in %lld batches of %lld: %lld rows, %.0f rows/s, longest batch %.0f ms",
			     (long long)json_integer_value(json_object_get(v, "batches")),
			     (long long)json_integer_value(json_object_get(v, "size")),
			     (long long)json_integer_value(json_object_get(v, "rows")),
			     json_number_value(json_object_get(v, "rows_per_s")),
			     json_number_value(json_object_get(v, "max_ms")));
	json_array_foreach(json_object_get(f, "rewrites"), i, v)
		strvec_pushf(out, "rewrote %s", json_string_value(v));
	json_array_foreach(json_object_get(f, "scans"), i, v)
		strvec_pushf(out, "scanned all of %s", json_string_value(v));
	json_array_foreach(json_object_get(f, "lint"), i, v)
		strvec_pushf(out, "lint %s [%s] %s", ts_json_str(v, "level"), ts_json_str(v, "rule"), ts_json_str(v, "message"));
	json_array_foreach(r->schema, i, v)
		if (!strcmp(ts_json_str(v, "file"), m->file) &&
		    json_integer_value(json_object_get(v, "line")) == st->line)
			strvec_pushf(out, "%s: %s %s %s", ts_json_str(v, "class"), ts_json_str(v, "kind"), ts_json_str(v, "name"),
				     ts_json_str(v, "change"));
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

static void render_schema_text(const struct ts_report *r, FILE *out)
{
	size_t n[3];
	json_t *v;
	size_t i;

	ts_report_schema_counts(r, n);
	fprintf(out, "schema changes, production clone -> dev side: %zu breaking, %zu risky, %zu additive\n",
		n[0], n[1], n[2]);
	json_array_foreach(r->schema, i, v) {
		char *line = change_line(v);

		fprintf(out, "  %s\n", line);
		free(line);
	}
}

/* "passed   double dump test of the dev side (4 tables, 1004 rows, 0.8 s)" */
static char *data_line(json_t *v)
{
	struct strbuf sb = STRBUF_INIT;
	json_t *t = json_object_get(v, "tables"), *ms = json_object_get(v, "ms");

	strbuf_addf(&sb, "%-7s %s", ts_json_str(v, "status"), ts_json_str(v, "name"));
	if (!strcmp(ts_json_str(v, "status"), "failed"))
		strbuf_addf(&sb, "%s: %s", json_is_true(json_object_get(v, "gating")) ? "" : " (warning)",
			    ts_json_str(v, "failure"));
	else if (*ts_json_str(v, "detail"))
		strbuf_addf(&sb, ": %s", ts_json_str(v, "detail"));
	if (t || ms) {
		strbuf_addstr(&sb, " (");
		if (t)
			strbuf_addf(&sb, "%lld table%s, %lld rows%s", (long long)json_integer_value(t),
				    json_integer_value(t) == 1 ? "" : "s",
				    (long long)json_integer_value(json_object_get(v, "rows")), ms ? ", " : "");
		if (ms)
			strbuf_addf(&sb, "%.1f s", json_number_value(ms) / 1000.0);
		strbuf_addch(&sb, ')');
	}
	return strbuf_detach(&sb);
}

static void render_data_text(const struct ts_report *r, FILE *out)
{
	json_t *v, *e;
	size_t i, j;

	fprintf(out, "data safety\n");
	json_array_foreach(r->data, i, v) {
		char *line = data_line(v);

		fprintf(out, "  %s\n", line);
		json_array_foreach(json_object_get(v, "excerpt"), j, e)
			fprintf(out, "          %s\n", json_string_value(e));
		free(line);
	}
}

/* One section of the report alone: its JSON as stored, or its text. */
static void render_section(const struct ts_report *r, json_t *section, enum ts_report_format f,
			   void (*text)(const struct ts_report *, FILE *), FILE *out)
{
	if (f == TS_FMT_JSON) {
		json_dumpf(section, out, JSON_INDENT(2) | JSON_ENCODE_ANY);
		fputc('\n', out);
	} else {
		text(r, out);
	}
}

void ts_report_render_data(const struct ts_report *r, enum ts_report_format f, FILE *out)
{
	render_section(r, r->data, f, render_data_text, out);
}

void ts_report_render_schema(const struct ts_report *r, enum ts_report_format f, FILE *out)
{
	render_section(r, r->schema, f, render_schema_text, out);
}

static void render_text(const struct ts_report *r, FILE *out)
{
	const char *apps[64];
	size_t n_apps = matrix_apps(r, apps, 64);
	int failures = 0;
	char *place;

	fprintf(out, "twinstage rehearsal of %s (run %s)\n", r->project, r->run_id);
	if (r->backend) {
		fprintf(out, "backend %s, clone %s", r->backend, r->clone ? r->clone : "-");
		if (r->clone_source)
			fprintf(out, " (dev side in %.2f s; production clone from %s)", r->clone_dev_ms / 1000.0,
				r->clone_source);
		fprintf(out, ", production clone on 127.0.0.1:%d, dev side on 127.0.0.1:%d\n",
			r->prod_port, r->dev_port);
		if (r->clone_note)
			fprintf(out, "note: %s\n", r->clone_note);
		if (r->prod_booted)
			fprintf(out, "production clone booted the %s\n", r->prod_booted);
		if (r->dev_booted)
			fprintf(out, "dev side booted the %s\n", r->dev_booted);
	}
	fprintf(out, "\nstages\n");
	for (size_t i = 0; i < r->n_stages; i++) {
		const struct ts_report_stage *s = &r->stages[i];

		fprintf(out, "  %-10s %8.2f s  %s%s%s%s\n", s->name, s->ms / 1000.0,
			s->status ? s->status : "?", s->detail ? " (" : "", s->detail ? s->detail : "",
			s->detail ? ")" : "");
	}
	fprintf(out, "\nmigrations on the dev side");
	if (r->tracking)
		fprintf(out, " (tracked in %s's table %s: production clone at %s, dev side %s -> %s)",
			r->tracking, r->tracking_table, r->prod_version ? r->prod_version : "none",
			r->dev_before ? r->dev_before : "none", r->dev_after ? r->dev_after : "none");
	fputc('\n', out);
	if (!r->n_migrations)
		fprintf(out, "  none pending\n");
	for (size_t i = 0; i < r->n_migrations; i++) {
		const struct ts_report_migration *m = &r->migrations[i];

		fprintf(out, "  %-8s %s", m->status ? m->status : "?", m->file);
		if (m->phase)
			fprintf(out, " [phase %s]", m->phase);
		if (m->status && strcmp(m->status, "not run"))
			fprintf(out, "  (%zu statement%s, %.0f ms%s)", m->n_stmts, m->n_stmts == 1 ? "" : "s",
				m->ms, m->transactional ? "" : ", no transaction");
		fputc('\n', out);
		if (m->error)
			fprintf(out, "           %s\n", m->error);
		for (size_t j = 0; j < m->n_stmts; j++) {
			struct strvec facts = STRVEC_INIT;

			stmt_facts(r, m, &m->stmts[j], &facts);
			fprintf(out, "    line %-4d %7.1f ms  %s\n", m->stmts[j].line, m->stmts[j].ms,
				m->stmts[j].sql);
			for (size_t k = 0; k < facts.nr; k++)
				fprintf(out, "                         %s\n", facts.v[k]);
			strvec_clear(&facts);
		}
	}
	if (r->schema) {
		fputc('\n', out);
		render_schema_text(r, out);
	}
	if (r->data) {
		fputc('\n', out);
		render_data_text(r, out);
	}
	ts_report_render_load(r, 0, out);
	if (n_apps && r->phases) {
		render_phases(r, apps, n_apps, 0, out);
	} else if (n_apps) {
		fprintf(out, "\ncompatibility matrix\n  %-18s %-34s %s\n", "version",
			"production clone (old schema)", "dev side (migrated)");
		for (size_t i = 0; i < n_apps; i++) {
			char *p = cell(find_check(r, apps[i], "prod"), 0);
			char *d = cell(find_check(r, apps[i], "dev"), 0);
			char *label = xstrfmt("%s %s%s%s", apps[i], *app_label(r, apps[i]) ? "(" : "",
					      app_label(r, apps[i]), *app_label(r, apps[i]) ? ")" : "");

			fprintf(out, "  %-18s %-34s %s\n", label, p, d);
			free(label);
			free(p);
			free(d);
		}
	}
	for (size_t i = 0; i < r->n_checks; i++) {
		const struct ts_report_check *c = &r->checks[i];

		for (size_t j = 0; j < c->n_cases; j++) {
			const struct ts_report_case *k = &c->cases[j];

			if (k->pass || informational(r, c))
				continue;
			if (!failures++)
				fprintf(out, "\nfailures\n");
			place = check_place(c);
			fprintf(out, "  %s on %s%s: %s:%d \"%s\"\n    %s\n    expected %s, got %s\n",
				c->app, place, c->gating ? "" : " (warning)", k->file, k->line,
				k->name, k->sql ? k->sql : "", k->expected, k->got);
			free(place);
		}
		if (c->failed && c->output)
			fprintf(out, "    output (last lines):\n%s\n", c->output);
	}
	for (size_t i = 0; i < r->n_notes; i++)
		fprintf(out, "%snote: %s\n", i ? "" : "\n", r->notes[i]);
	fprintf(out, "\nverdict: %s", r->verdict ? r->verdict : "?");
	if (r->reason)
		fprintf(out, " - %s", r->reason);
	fprintf(out, "\nexit code %d\n", r->exit_code);
}

void ts_md_escape(FILE *out, const char *s)
{
	for (; s && *s; s++) {
		if (*s == '|' || *s == '`' || *s == '*' || *s == '_' || *s == '<' || *s == '>')
			fputc('\\', out);
		fputc(*s == '\n' ? ' ' : *s, out);
	}
}

static void render_markdown(const struct ts_report *r, FILE *out)
{
	const char *apps[64];
	size_t n_apps = matrix_apps(r, apps, 64);
	int failures = 0;
	char *place;
	const char *icon = r->exit_code == 0 ? "PASS" : "FAIL";

	fprintf(out, "## twinstage: %s: ", icon);
	ts_md_escape(out, r->project);
	fprintf(out, " is %s\n\n", r->verdict ? r->verdict : "?");
	if (r->reason) {
		ts_md_escape(out, r->reason);
		fprintf(out, "\n\n");
	}
	if (n_apps && r->phases) {
		render_phases(r, apps, n_apps, 1, out);
	} else if (n_apps) {
		fprintf(out, "| version | production clone (old schema) | dev side (migrated) |\n|---|---|---|\n");
		for (size_t i = 0; i < n_apps; i++) {
			char *p = cell(find_check(r, apps[i], "prod"), 1);
			char *d = cell(find_check(r, apps[i], "dev"), 1);

			fprintf(out, "| ");
			ts_md_escape(out, apps[i]);
			fprintf(out, " %s | %s | %s |\n", app_label(r, apps[i]), p, d);
			free(p);
			free(d);
		}
		fputc('\n', out);
	}
	if (r->tracking)
		fprintf(out, "Tracking table `%s` (%s): production clone at %s, dev side %s → %s.\n\n",
			r->tracking_table, r->tracking, r->prod_version ? r->prod_version : "none",
			r->dev_before ? r->dev_before : "none", r->dev_after ? r->dev_after : "none");
	if (r->n_migrations) {
		fprintf(out, "| migration | status | statements | time |\n|---|---|---|---|\n");
		for (size_t i = 0; i < r->n_migrations; i++) {
			const struct ts_report_migration *m = &r->migrations[i];

			fprintf(out, "| ");
			ts_md_escape(out, m->file);
			fprintf(out, " | %s", m->status ? m->status : "?");
			if (m->error) {
				fprintf(out, ": ");
				ts_md_escape(out, m->error);
			}
			fprintf(out, " | %zu | %.0f ms |\n", m->n_stmts, m->ms);
		}
		fputc('\n', out);
		for (size_t i = 0; i < r->n_migrations; i++) {
			const struct ts_report_migration *m = &r->migrations[i];

			for (size_t j = 0; j < m->n_stmts; j++) {
				struct strvec facts = STRVEC_INIT;

				stmt_facts(r, m, &m->stmts[j], &facts);
				if (facts.nr) {
					fprintf(out, "- `%s:%d` ", m->file, m->stmts[j].line);
					ts_md_escape(out, m->stmts[j].sql);
					fputc('\n', out);
				}
				for (size_t k = 0; k < facts.nr; k++) {
					fprintf(out, "  - ");
					ts_md_escape(out, facts.v[k]);
					fputc('\n', out);
				}
				strvec_clear(&facts);
			}
		}
		fputc('\n', out);
	}
	if (r->schema && json_array_size(r->schema)) {
		json_t *v;
		size_t i;

		fprintf(out, "### Schema changes\n\n");
		json_array_foreach(r->schema, i, v) {
			char *line = change_line(v);

			fprintf(out, "- ");
			ts_md_escape(out, line);
			fputc('\n', out);
			free(line);
		}
		fputc('\n', out);
	}
	if (r->data && json_array_size(r->data)) {
		json_t *v, *e;
		size_t i, j;

		fprintf(out, "### Data safety\n\n");
		json_array_foreach(r->data, i, v) {
			char *line = data_line(v);

			fprintf(out, "- ");
			ts_md_escape(out, line);
			fputc('\n', out);
			json_array_foreach(json_object_get(v, "excerpt"), j, e) {
				fprintf(out, "  - `");
				for (const char *p = json_string_value(e); p && *p; p++)
					fputc(*p == '`' ? '\'' : *p, out);
				fprintf(out, "`\n");
			}
			free(line);
		}
		fputc('\n', out);
	}
	ts_report_render_load(r, 1, out);
	for (size_t i = 0; i < r->n_checks; i++) {
		const struct ts_report_check *c = &r->checks[i];

		for (size_t j = 0; j < c->n_cases; j++) {
			const struct ts_report_case *k = &c->cases[j];

			if (k->pass || informational(r, c))
				continue;
			if (!failures++)
				fprintf(out, "### Failures\n\n");
			fprintf(out, "- **");
			ts_md_escape(out, c->app);
			place = check_place(c);
			fprintf(out, "** on %s%s, `%s:%d` ", place, c->gating ? "" : " (warning)", k->file, k->line);
			free(place);
			ts_md_escape(out, k->name);
			fprintf(out, ": expected `%s`, got `%s`\n", k->expected, k->got);
		}
	}
	if (failures)
		fputc('\n', out);
	for (size_t i = 0; i < r->n_notes; i++) {
		fprintf(out, "> ");
		ts_md_escape(out, r->notes[i]);
		fprintf(out, "\n\n");
	}
	fprintf(out, "<details><summary>stages</summary>\n\n| stage | time | status |\n|---|---|---|\n");
	for (size_t i = 0; i < r->n_stages; i++)
		fprintf(out, "| %s | %.2f s | %s |\n", r->stages[i].name, r->stages[i].ms / 1000.0,
			r->stages[i].status ? r->stages[i].status : "?");
	fprintf(out, "\n</details>\n\nExit code %d, run `%s`.\n", r->exit_code, r->run_id);
}

void ts_xml_escape(FILE *out, const char *s)
{
	struct strbuf sb = STRBUF_INIT;

	strbuf_add_xml(&sb, s);
	fputs(sb.buf, out);
	strbuf_release(&sb);
}

static void render_junit(const struct ts_report *r, FILE *out)
{
	size_t tests = 0, failures = 0;

	for (size_t i = 0; i < r->n_checks; i++) {
		tests += r->checks[i].n_cases ? r->checks[i].n_cases : 1;
		if (r->checks[i].gating || r->checks[i].role == TS_CHECK_BASELINE)
			failures += r->checks[i].failed;
	}
	{
		json_t *v;
		size_t i;

		json_array_foreach(r->data, i, v) {
			tests++;
			failures += data_fails(v);
		}
	}
	for (size_t i = 0; i < r->n_migrations; i++) {
		char *why = gate_failure(r, &r->migrations[i]);

		tests++;
		failures += (r->migrations[i].status && !strcmp(r->migrations[i].status, "failed")) || why;
		free(why);
	}
	fprintf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"twinstage ");
	ts_xml_escape(out, r->project);
	fprintf(out, "\" tests=\"%zu\" failures=\"%zu\" errors=\"%d\">\n", tests, failures, r->error ? 1 : 0);
	fprintf(out, "  <testsuite name=\"migrations\" tests=\"%zu\">\n", r->n_migrations);
	for (size_t i = 0; i < r->n_migrations; i++) {
		const struct ts_report_migration *m = &r->migrations[i];
		char *why = gate_failure(r, m);

		fprintf(out, "    <testcase classname=\"migrations\" name=\"");
		ts_xml_escape(out, m->file);
		fprintf(out, "\" time=\"%.3f\">", m->ms / 1000.0);
		if ((m->status && !strcmp(m->status, "failed")) || why) {
			fprintf(out, "<failure message=\"");
			ts_xml_escape(out, why ? why : m->error);
			fprintf(out, "\"/>");
		} else if (m->status && !strcmp(m->status, "not run")) {
			fprintf(out, "<skipped message=\"an earlier migration failed\"/>");
		}
		free(why);
		fprintf(out, "</testcase>\n");
	}
	fprintf(out, "  </testsuite>\n");
	for (size_t i = 0; i < r->n_checks; i++) {
		const struct ts_report_check *c = &r->checks[i];
		int counts = c->gating || c->role == TS_CHECK_BASELINE;

		fprintf(out, "  <testsuite name=\"");
		ts_xml_escape(out, c->app);
		fprintf(out, " on %s%s%s (%s)\" tests=\"%zu\" failures=\"%zu\" time=\"%.3f\">\n", c->side,
			c->phase ? " after phase " : "", c->phase ? c->phase : "", ts_check_role_name(c->role), c->n_cases ? c->n_cases : 1, counts ? c->failed : 0,
			c->ms / 1000.0);
		if (!c->ran) {
			fprintf(out, "    <testcase classname=\"%s\" name=\"", c->side);
			ts_xml_escape(out, c->app);
			fprintf(out, "\"><skipped message=\"");
			ts_xml_escape(out, c->skip);
			fprintf(out, "\"/></testcase>\n");
		}
		for (size_t j = 0; j < c->n_cases; j++) {
			const struct ts_report_case *k = &c->cases[j];

			fprintf(out, "    <testcase classname=\"");
			ts_xml_escape(out, c->app);
			fprintf(out, ".%s.", c->side);
			ts_xml_escape(out, k->file);
			fprintf(out, "\" name=\"");
			ts_xml_escape(out, k->name);
			fprintf(out, " (line %d)\">", k->line);
			if (!k->pass) {
				fprintf(out, counts ? "<failure message=\"expected " : "<skipped message=\"warning only: expected ");
				ts_xml_escape(out, k->expected);
				fprintf(out, ", got ");
				ts_xml_escape(out, k->got);
				fprintf(out, "\">");
				ts_xml_escape(out, k->sql);
				if (c->output) {
					fputc('\n', out);
					ts_xml_escape(out, c->output);
				}
				fprintf(out, counts ? "</failure>" : "</skipped>");
			}
			fprintf(out, "</testcase>\n");
		}
		fprintf(out, "  </testsuite>\n");
	}
	if (r->data) {
		json_t *v, *e;
		size_t i, j, nf = 0;

		json_array_foreach(r->data, i, v)
			nf += data_fails(v);
		fprintf(out, "  <testsuite name=\"data safety\" tests=\"%zu\" failures=\"%zu\">\n",
			json_array_size(r->data), nf);
		json_array_foreach(r->data, i, v) {
			int failed = !strcmp(ts_json_str(v, "status"), "failed");

			fprintf(out, "    <testcase classname=\"data.%s\" name=\"", ts_json_str(v, "check"));
			ts_xml_escape(out, ts_json_str(v, "name"));
			fprintf(out, "\" time=\"%.3f\">", json_number_value(json_object_get(v, "ms")) / 1000.0);
			if (failed || !strcmp(ts_json_str(v, "status"), "skipped")) {
				const char *tag = !failed ? "skipped" : data_fails(v) ? "failure" : "skipped";

				fprintf(out, "<%s message=\"%s", tag, failed && !data_fails(v) ? "warning only: " : "");
				ts_xml_escape(out, ts_json_str(v, "failure"));
				fprintf(out, "\">");
				json_array_foreach(json_object_get(v, "excerpt"), j, e) {
					ts_xml_escape(out, json_string_value(e));
					fputc('\n', out);
				}
				fprintf(out, "</%s>", tag);
			}
			fprintf(out, "</testcase>\n");
		}
		fprintf(out, "  </testsuite>\n");
	}
	if (r->error) {
		fprintf(out, "  <testsuite name=\"rehearsal\" tests=\"1\" errors=\"1\">\n"
			     "    <testcase classname=\"rehearsal\" name=\"run\"><error message=\"");
		ts_xml_escape(out, r->error);
		fprintf(out, "\"/></testcase>\n  </testsuite>\n");
	}
	fprintf(out, "</testsuites>\n");
}

void ts_report_render(const struct ts_report *r, enum ts_report_format f, FILE *out)
{
	switch (f) {
	case TS_FMT_TEXT:
		render_text(r, out);
		break;
	case TS_FMT_MARKDOWN:
		render_markdown(r, out);
		break;
	case TS_FMT_JUNIT:
		render_junit(r, out);
		break;
	case TS_FMT_HTML:
		ts_report_render_html(r, out);
		break;
	case TS_FMT_JSON: {
		json_t *o = to_json(r);

		json_dumpf(o, out, JSON_INDENT(2));
		fputc('\n', out);
		json_decref(o);
		break;
	}
	}
}

/* Writes one format, or (entry set) the timeline of one load entry. */
static int write_one(const struct ts_report *r, const char *dir, const char *name,
		     enum ts_report_format f, json_t *entry)
{
	char *path = path_join(dir, name);
	char *buf = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&buf, &len);
	int rc;

	if (entry)
		ts_report_timeline_svg(r, entry, mem);
	else
		ts_report_render(r, f, mem);
	fclose(mem);
	rc = write_file(path, buf, len);
	free(buf);
	free(path);
	return rc;
}

int ts_report_write(const struct ts_report *r, const char *reports, char **out_dir)
{
	char *dir = path_join(reports, r->run_id);
	char *latest = path_join(reports, "latest");
	int rc = mkdir_p(dir, 0755);

	if (!rc)
		rc = write_one(r, dir, "report.json", TS_FMT_JSON, NULL) ||
		     write_one(r, dir, "report.txt", TS_FMT_TEXT, NULL) ||
		     write_one(r, dir, "report.md", TS_FMT_MARKDOWN, NULL) ||
		     write_one(r, dir, "report.html", TS_FMT_HTML, NULL) ||
		     write_one(r, dir, "junit.xml", TS_FMT_JUNIT, NULL) ? -1 : 0;
	for (size_t i = 0; !rc && i < json_array_size(r->load); i++) {
		char *name = ts_report_timeline_name(json_array_get(r->load, i));

		rc = write_one(r, dir, name, TS_FMT_TEXT, json_array_get(r->load, i));
		free(name);
	}
	if (!rc) {
		unlink(latest);
		if (symlink(r->run_id, latest))
			rc = ts_error_set(TS_EXIT_ENV, "could not link \"%s\": %s", latest, strerror(errno));
	}
	free(latest);
	if (out_dir && !rc)
		*out_dir = dir;
	else
		free(dir);
	return rc;
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
	from_json(r, o);
	json_decref(o);
	free(path);
	return 0;
}
