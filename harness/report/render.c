/*
 * render.c: the report for people and for CI: text (the terminal), Markdown
 * (a CI summary), HTML (the timelines inline), JSON (the model as it is)
 * and JUnit (render_junit.c), and all of them written under the reports
 * folder. The load's section and pictures come from render_load.c.
 */
#include "report/render.h"
#include "core/error.h"
#include "core/strbuf.h"
#include "core/strvec.h"
#include "core/util.h"
#include "core/wrapper.h"
#include "report/format.h"
#include "report/render_ci.h"
#include "report/render_junit.h"
#include "report/render_load.h"
#include "report/render_upgrade.h"
#include "report/report.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
	else if (!strcmp(s, "github"))
		*out = TS_FMT_GITHUB;
	else if (!strcmp(s, "comment"))
		*out = TS_FMT_COMMENT;
	else
		return ts_error_set(TS_EXIT_USAGE,
				    "unknown report format \"%s\" (expected text, json, junit, markdown, html, github or comment)", s);
	return 0;
}

/* ---- text and Markdown ---- */

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

#define informational ts_report_informational

/* ---- phases: the rollout matrix and what each phase did ---- */

static const struct ts_report_check *find_phase_check(const struct ts_report *r, const char *app,
						      const char *phase)
{
	for (size_t i = 0; i < r->n_checks; i++) {
		const struct ts_report_check *c = &r->checks[i];

		if (!strcmp(c->app, app) && ts_check_in_matrix(c) && ts_report_same_phase(phase, c->phase) &&
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
	k = ts_report_first_failure(c);
	return xstrfmt("%s %zu/%zu: \"%s\"", markdown ? "**FAIL**" : "FAIL", c->n_cases - c->failed,
		       c->n_cases, k->name ? k->name : k->file);
}

/* "after phase 2 (backfill)", or "production clone" for NULL. */
static char *phase_label(json_t *ph)
{
	char *title, *label;

	if (!ph)
		return xstrdup("production clone");
	title = ts_report_phase_title(ph);
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

		if (!ts_report_same_phase(name, m->phase))
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
		char *sum = phase_summary(r, ph), *title = ts_report_phase_title(ph);

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
	if (*ts_json_str(c, "file") && json_integer_value(json_object_get(c, "line")))
		strbuf_addf(&sb, " [%s:%d]", ts_json_str(c, "file"), (int)json_integer_value(json_object_get(c, "line")));
	else if (*ts_json_str(c, "file"))	/* the file is known, not its statement */
		strbuf_addf(&sb, " [in %s]", ts_json_str(c, "file"));
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
	if ((v = json_object_get(f, "repeated")))
		strvec_pushf(out, "ran %lld times (the same statement with other values), longest %.1f ms",
			     (long long)json_integer_value(json_object_get(v, "times")),
			     json_number_value(json_object_get(v, "longest_ms")));
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


/* ---- the captured workload: each check's line, its failing statements heaviest first ---- */

static void render_workload(const struct ts_report *r, int markdown, FILE *out)
{
	int any = 0;

	for (size_t i = 0; i < r->n_checks; i++) {
		const struct ts_report_check *c = &r->checks[i];
		struct ts_report_workload w = { 0 };
		char *line, *place;

		/* the production clone's own run only says what is not checkable, which the dev side's line counts */
		if (informational(r, c) || c->role == TS_CHECK_BASELINE || !ts_report_workload(c, &w)) {
			ts_report_workload_free(&w);
			continue;
		}
		if (!any++)
			fprintf(out, markdown ? "### Captured workload\n\n" : "\ncaptured workload (production's statements)\n");
		line = ts_report_workload_line(c, &w);
		place = ts_report_check_place(c);
		if (markdown) {
			fprintf(out, "- **");
			ts_md_escape(out, c->app);
			fprintf(out, "** on %s%s: ", place, c->gating ? "" : " (warning)");
			ts_md_escape(out, line);
			fputc('\n', out);
		} else {
			fprintf(out, "  %s on %s%s: %s\n", c->app, place, c->gating ? "" : " (warning)", line);
		}
		for (size_t j = 0; j < w.n_failing; j++) {
			const struct ts_report_case *k = w.failing[j];

			if (markdown) {
				fprintf(out, "  - %ld calls, `%s:%d` ", k->calls, k->file, k->line);
				ts_md_escape(out, k->sql ? k->sql : "");
				fprintf(out, ": ");
				ts_md_escape(out, k->got ? k->got : "");
				fputc('\n', out);
			} else {
				fprintf(out, "    %8ld calls  %s:%d %s\n                  %s\n", k->calls, k->file, k->line,
					k->sql ? k->sql : "", k->got ? k->got : "");
			}
		}
		free(line);
		free(place);
		ts_report_workload_free(&w);
	}
	if (any && markdown)
		fputc('\n', out);
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
		if (r->timing)
			fprintf(out, "timing: %s\n", json_string_value(json_object_get(r->timing, "reason")));
	}
	ts_report_render_upgrade(r, 0, out);
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
			/* a tool's statements are numbered in the order it sent them, not lines of a file */
			fprintf(out, "    %s %-4d %7.1f ms  %s\n", m->numbered ? "   #" : "line", m->stmts[j].line,
				m->stmts[j].ms, m->stmts[j].sql);
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
	render_workload(r, 0, out);
	for (size_t i = 0; i < r->n_checks; i++) {
		const struct ts_report_check *c = &r->checks[i];

		for (size_t j = 0; j < c->n_cases; j++) {
			const struct ts_report_case *k = &c->cases[j];

			/* a captured statement's failure is in the workload's list, by calls */
			if (k->pass || informational(r, c) || k->captured)
				continue;
			if (!failures++)
				fprintf(out, "\nfailures\n");
			place = ts_report_check_place(c);
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
	if (r->timing) {
		fprintf(out, "Timing: ");
		ts_md_escape(out, json_string_value(json_object_get(r->timing, "reason")));
		fprintf(out, ".\n\n");
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
	ts_report_render_upgrade(r, 1, out);
	ts_report_render_load(r, 1, out);
	render_workload(r, 1, out);
	for (size_t i = 0; i < r->n_checks; i++) {
		const struct ts_report_check *c = &r->checks[i];

		for (size_t j = 0; j < c->n_cases; j++) {
			const struct ts_report_case *k = &c->cases[j];

			if (k->pass || informational(r, c) || k->captured)
				continue;
			if (!failures++)
				fprintf(out, "### Failures\n\n");
			fprintf(out, "- **");
			ts_md_escape(out, c->app);
			place = ts_report_check_place(c);
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

void ts_report_render_html(const struct ts_report *r, FILE *out)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&buf, &len);
	json_t *e;
	size_t i;

	ts_report_render(r, TS_FMT_TEXT, mem);
	fclose(mem);
	fprintf(out, "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>twinstage: ");
	ts_xml_escape(out, r->project);
	fprintf(out, "</title>\n<style>body{font-family:sans-serif;max-width:1000px;margin:1.5em auto;padding:0 1em}"
		     "pre{background:#f6f6f6;padding:1em;overflow-x:auto}.pass{color:#2e7d32}.fail{color:#c62828}</style>\n"
		     "</head><body>\n<h1>twinstage: ");
	ts_xml_escape(out, r->project);
	fprintf(out, " is <span class=\"%s\">%s</span></h1>\n<p>", r->exit_code ? "fail" : "pass",
		r->verdict ? r->verdict : "?");
	ts_xml_escape(out, r->reason);
	fprintf(out, " (exit code %d)</p>\n", r->exit_code);
	json_array_foreach(r->load, i, e) {
		struct strvec lines = STRVEC_INIT;
		char *title = ts_report_load_title(e);

		fprintf(out, "<h2>");
		ts_xml_escape(out, title);
		fprintf(out, "</h2>\n");
		ts_report_timeline_svg(r, e, out);
		ts_report_load_lines(r, e, &lines);
		fprintf(out, "<ul>\n");
		for (size_t k = 0; k < lines.nr; k++) {
			fprintf(out, "<li>");
			ts_xml_escape(out, lines.v[k]);
			fprintf(out, "</li>\n");
		}
		fprintf(out, "</ul>\n");
		strvec_clear(&lines);
		free(title);
	}
	fprintf(out, "<h2>Report</h2>\n<pre>");
	ts_xml_escape(out, buf);
	fprintf(out, "</pre>\n</body></html>\n");
	free(buf);
}

/* GitHub Actions shows the Markdown report on the run's page: appended to $GITHUB_STEP_SUMMARY. */
static void github_summary(const struct ts_report *r)
{
	const char *path = getenv("GITHUB_STEP_SUMMARY");
	FILE *f;

	if (!path || !*path)
		return;
	if (!(f = fopen(path, "a"))) {
		fprintf(stderr, "twinstage: warning: could not append to $GITHUB_STEP_SUMMARY (%s): %s\n", path,
			strerror(errno));
		return;
	}
	render_markdown(r, f);
	fclose(f);
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
		ts_report_render_junit(r, out);
		break;
	case TS_FMT_HTML:
		ts_report_render_html(r, out);
		break;
	case TS_FMT_GITHUB:
		ts_report_render_github(r, out);
		github_summary(r);
		break;
	case TS_FMT_COMMENT:
		ts_report_render_comment(r, out);
		break;
	case TS_FMT_JSON: {
		json_t *o = ts_report_to_json(r);

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
		     write_one(r, dir, "junit.xml", TS_FMT_JUNIT, NULL) ||
		     write_one(r, dir, "comment.md", TS_FMT_COMMENT, NULL) ? -1 : 0;
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
