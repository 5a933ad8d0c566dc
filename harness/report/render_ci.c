/*
 * render_ci.c: GitHub Actions annotations and the pull-request comment.
 * See render_ci.h.
 */
#include "report/render_ci.h"
#include "core/strbuf.h"
#include "core/strvec.h"
#include "core/util.h"
#include "core/version.h"
#include "core/wrapper.h"
#include "report/format.h"
#include "report/render_load.h"
#include "report/report.h"

#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * A path as the annotation names it: relative to the workspace GitHub
 * checked out (GITHUB_WORKSPACE, else the current folder) when under it.
 */
static char *annotation_path(const char *dir, const char *file)
{
	char *joined = dir && file[0] != '/' ? path_join(dir, file) : xstrdup(file), cwd[PATH_MAX];
	char *full = path_canonical(joined);
	const char *ws = getenv("GITHUB_WORKSPACE");
	size_t n;

	if (!full)
		full = joined;
	else
		free(joined);
	if (!ws || !*ws)
		ws = getcwd(cwd, sizeof(cwd));
	n = ws ? strlen(ws) : 0;
	if (n && !strncmp(full, ws, n) && full[n] == '/') {
		char *rel = xstrdup(full + n + 1);

		free(full);
		return rel;
	}
	return full;
}

/* One workflow command: ::level file=F,line=L,title=T::message */
static void annotate(FILE *out, const char *level, const char *dir, const char *file, int line,
		     const char *title, const char *msg)
{
	fprintf(out, "::%s ", level);
	if (file) {
		char *p = annotation_path(dir, file);

		fprintf(out, "file=");
		ts_github_escape(out, p, 1);
		if (line > 0)
			fprintf(out, ",line=%d", line);
		fputc(',', out);
		free(p);
	}
	fprintf(out, "title=");
	ts_github_escape(out, title, 1);
	fprintf(out, "::");
	ts_github_escape(out, msg, 0);
	fputc('\n', out);
}

/* "V3__x.sql:4: 42703: ..." → file and line of the error */
static int error_line(const char *error, const char *file)
{
	size_t n = strlen(file);

	return error && !strncmp(error, file, n) && error[n] == ':' ? atoi(error + n + 1) : 0;
}

static void migration_annotations(const struct ts_report *r, FILE *out)
{
	for (size_t i = 0; i < r->n_migrations; i++) {
		const struct ts_report_migration *m = &r->migrations[i];
		char *gate = ts_report_gate_failure(r, m);

		if (m->error)
			annotate(out, "error", r->migrations_dir, m->file, error_line(m->error, m->file),
				 "twinstage: the migration failed on the dev side", m->error);
		for (size_t j = 0; j < m->n_stmts; j++) {
			json_t *f = m->stmts[j].facts, *v;
			size_t k;

			json_array_foreach(json_object_get(f, "lint"), k, v) {
				int err = !strcmp(ts_json_str(v, "level"), "error");
				char *title = xstrfmt("twinstage lint: %s", ts_json_str(v, "rule"));
				char *msg = xstrfmt("%s; %s", ts_json_str(v, "message"), ts_json_str(v, "recipe"));

				annotate(out, err && r->lint_fails ? "error" : "warning", r->migrations_dir, m->file,
					 (int)json_integer_value(json_object_get(v, "line")), title, msg);
				free(title);
				free(msg);
			}
			json_array_foreach(json_object_get(f, "locks"), k, v)
				if (json_is_true(json_object_get(v, "over_gate"))) {
					char *msg = xstrfmt("%s on %s held %.0f ms, over gate.max_lock_ms = %.0f: writes wait that long",
							    ts_json_str(v, "mode"), ts_json_str(v, "relation"),
							    ts_json_num(v, "held_ms"), r->max_lock_ms);

					annotate(out, "error", r->migrations_dir, m->file, m->stmts[j].line,
						 "twinstage: a lock that blocks writes, held too long", msg);
					free(msg);
				}
		}
		if (gate && !strstr(gate, "max_lock_ms"))
			annotate(out, "error", r->migrations_dir, m->file, m->n_stmts ? m->stmts[0].line : 0,
				 "twinstage: the gate failed on this migration", gate);
		free(gate);
	}
	{
		json_t *v;
		size_t i;

		json_array_foreach(r->schema, i, v) {
			char *msg;

			if (strcmp(ts_json_str(v, "class"), "breaking") || !*ts_json_str(v, "file"))
				continue;
			msg = xstrfmt("%s %s %s: %s", ts_json_str(v, "kind"), ts_json_str(v, "name"),
				      ts_json_str(v, "change"), ts_json_str(v, "detail"));
			annotate(out, "warning", r->migrations_dir, ts_json_str(v, "file"),
				 (int)json_integer_value(json_object_get(v, "line")),
				 "twinstage: a breaking change for the live version", msg);
			free(msg);
		}
	}
}

static void case_annotations(const struct ts_report *r, FILE *out)
{
	for (size_t i = 0; i < r->n_checks; i++) {
		const struct ts_report_check *c = &r->checks[i];
		char *place = ts_report_check_place(c);

		for (size_t j = 0; j < c->n_cases; j++) {
			const struct ts_report_case *k = &c->cases[j];
			char *title, *msg;

			if (k->pass || ts_report_informational(r, c))
				continue;
			title = xstrfmt("twinstage: %s on %s%s", c->app, place, c->gating ? "" : " (a warning)");
			msg = xstrfmt("%s: expected %s, got %s", k->name ? k->name : "statement",
				      k->expected ? k->expected : "?", k->got ? k->got : "?");
			annotate(out, c->gating ? "error" : "warning", c->dir, c->dir ? k->file : NULL, k->line, title,
				 msg);
			free(title);
			free(msg);
		}
		free(place);
	}
}

void ts_report_render_github(const struct ts_report *r, FILE *out)
{
	char *msg;

	migration_annotations(r, out);
	case_annotations(r, out);
	msg = xstrfmt("%s: %s (exit code %d)", r->verdict ? r->verdict : "?", r->reason ? r->reason : "",
		      r->exit_code);
	annotate(out, r->exit_code ? "error" : "notice", NULL, NULL, 0, "twinstage rehearse", msg);
	free(msg);
}

/* ---- the pull-request comment ---- */

static void bytes(struct strbuf *sb, long long n)
{
	const char *unit[] = { "B", "kB", "MB", "GB", "TB" };
	double v = (double)(n < 0 ? -n : n);
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	strbuf_addf(sb, "%s%.*f %s", n < 0 ? "-" : "", u ? 1 : 0, v, unit[u]);
}

/* "AccessExclusiveLock on public.orders: blocked writes 1.2 s", the longest of each table and mode. */
static void migration_locks(const struct ts_report_migration *m, struct strbuf *sb)
{
	json_t *seen = json_object();
	const char *key;
	json_t *v;

	for (size_t j = 0; j < m->n_stmts; j++) {
		json_t *l;
		size_t k;

		json_array_foreach(json_object_get(m->stmts[j].facts, "locks"), k, l) {
			char *id = xstrfmt("%s on %s", ts_json_str(l, "mode"), ts_json_str(l, "relation"));
			json_t *was = json_object_get(seen, id);
			double ms = ts_json_num(l, "held_ms");

			if (!was || json_number_value(json_array_get(was, 0)) < ms)
				json_object_set_new(seen, id, json_pack("[f, b]", ms,
									json_is_true(json_object_get(l, "blocking"))));
			free(id);
		}
	}
	json_object_foreach(seen, key, v) {
		if (sb->len)
			strbuf_addstr(sb, "<br>");
		strbuf_addf(sb, "%s", key);
		if (json_is_true(json_array_get(v, 1)))
			strbuf_addf(sb, ": **blocked writes %.0f ms**", json_number_value(json_array_get(v, 0)));
		else
			strbuf_addf(sb, " (%.0f ms, writes go on)", json_number_value(json_array_get(v, 0)));
	}
	json_decref(seen);
}

static void migration_sizes(const struct ts_report *r, const struct ts_report_migration *m, struct strbuf *sb)
{
	json_t *v;
	size_t i;

	json_array_foreach(json_object_get(m->facts, "sizes"), i, v) {
		if (r->tracking_table && !strcmp(ts_json_str(v, "table"), r->tracking_table))
			continue;	/* the tool's bookkeeping */
		long long dt = (long long)(ts_json_num(v, "table_after") - ts_json_num(v, "table_before"));
		long long di = (long long)(ts_json_num(v, "indexes_after") - ts_json_num(v, "indexes_before"));

		if (sb->len)
			strbuf_addstr(sb, "<br>");
		strbuf_addf(sb, "%s: table %s", ts_json_str(v, "table"), dt >= 0 ? "+" : "");
		bytes(sb, dt);
		strbuf_addf(sb, ", indexes %s", di >= 0 ? "+" : "");
		bytes(sb, di);
	}
}

static void md(FILE *out, const char *s)
{
	ts_md_escape(out, s ? s : "");
}

void ts_report_render_comment(const struct ts_report *r, FILE *out)
{
	size_t n[3];

	fprintf(out, "### twinstage: `%s` is **%s**\n\n", r->project ? r->project : "?",
		r->verdict ? r->verdict : "?");
	fprintf(out, "> ");
	md(out, r->reason);
	fprintf(out, " (exit code %d)\n\n", r->exit_code);
	if (r->n_migrations) {
		fprintf(out, "| migration | status | time | locks | WAL | sizes |\n|---|---|---|---|---|---|\n");
		for (size_t i = 0; i < r->n_migrations; i++) {
			const struct ts_report_migration *m = &r->migrations[i];
			struct strbuf locks = STRBUF_INIT, sizes = STRBUF_INIT, wal = STRBUF_INIT;

			migration_locks(m, &locks);
			migration_sizes(r, m, &sizes);
			if (json_object_get(m->facts, "wal_bytes"))
				bytes(&wal, (long long)ts_json_num(m->facts, "wal_bytes"));
			fprintf(out, "| `%s`%s%s%s | %s | %.0f ms | %s | %s | %s |\n", m->file, m->phase ? " (phase " : "",
				m->phase ? m->phase : "", m->phase ? ")" : "", m->status ? m->status : "?", m->ms,
				locks.len ? locks.buf : "none", wal.len ? wal.buf : "", sizes.len ? sizes.buf : "");
			strbuf_release(&locks);
			strbuf_release(&sizes);
			strbuf_release(&wal);
		}
		fputc('\n', out);
	}
	/* the live version against the next schema: the question of the rehearsal */
	for (size_t i = 0; i < r->n_checks; i++) {
		const struct ts_report_check *c = &r->checks[i];
		const struct ts_report_case *k;
		char *place;

		if (c->role != TS_CHECK_BACKWARD && c->role != TS_CHECK_DURING)
			continue;
		place = ts_report_check_place(c);
		fprintf(out, "- **%s** (live now) on %s: ", c->app, place);
		if (!c->ran)
			fprintf(out, "not run (%s)\n", c->skip ? c->skip : "skipped");
		else if (!c->failed)
			fprintf(out, "passed, %zu statement%s\n", c->n_cases, c->n_cases == 1 ? "" : "s");
		else if ((k = ts_report_first_failure(c))) {
			fprintf(out, "**%zu of %zu failed**, first `%s:%d` ", c->failed, c->n_cases, k->file, k->line);
			md(out, k->name);
			fprintf(out, ": expected `%s`, got `%s`\n", k->expected ? k->expected : "?", k->got ? k->got : "?");
		}
		free(place);
	}
	{
		json_t *e;
		size_t i;

		json_array_foreach(r->load, i, e) {
			json_t *s = json_object_get(e, "stall");
			char *title = ts_report_load_title(e);

			fprintf(out, "- ");
			md(out, title);
			if (json_is_object(s)) {
				char *line = ts_report_stall_line(r, s);

				fprintf(out, ": longest stall ");
				md(out, line);
				fputc('\n', out);
				free(line);
			} else {
				fprintf(out, ": no application statement waited on the migration\n");
			}
			free(title);
		}
	}
	ts_report_schema_counts(r, n);
	fprintf(out, "- schema: %zu breaking, %zu risky, %zu additive change%s\n", n[0], n[1], n[2],
		n[0] + n[1] + n[2] == 1 ? "" : "s");
	fprintf(out, "\n<sub>twinstage %s, run `%s`; the whole report is in the run's artifacts.</sub>\n",
		TS_VERSION, r->run_id ? r->run_id : "");
}
