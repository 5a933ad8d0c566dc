/*
 * promote.c: the rehearsed migrations applied to production, and a record
 * of it. See promote.h.
 */
#include "release/promote.h"
#include "core/error.h"
#include "core/progress.h"
#include "core/strbuf.h"
#include "core/util.h"
#include "core/version.h"
#include "core/wrapper.h"
#include "migrate/migrate.h"
#include "pg/fingerprint.h"
#include "pg/pg.h"
#include "release/manifest.h"
#include "report/report.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *jstr(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* The only session on production that may write. */
static PGconn *connect_writable(const char *dsn, const char *shown)
{
	static const char *const keys[] = { "dbname", "fallback_application_name", NULL };
	const char *vals[] = { dsn, "twinstage promote", NULL };
	char *what = xstrfmt("production (%s)", shown);
	PGconn *conn = ts_pg_connected(PQconnectdbParams(keys, vals, 1), what);

	free(what);
	return conn;
}

/* The manifest's migrations of this promotion, in the folder's order; their guarded statements. */
static void plan(const struct ts_verify *v, const char *phase, struct ts_migrations *sub,
		 struct strvec *guarded)
{
	json_t *migs = json_object_get(v->manifest, "migrations");

	memset(sub, 0, sizeof(*sub));
	sub->format = v->set.format;
	sub->v = xcalloc(v->set.n + 1, sizeof(*sub->v));
	for (size_t k = 0; k < v->set.n; k++) {
		json_t *e, *line;
		size_t i, j;

		json_array_foreach(migs, i, e) {
			if (strcmp(jstr(e, "name") ?: "", v->set.v[k].file))
				continue;
			if (phase && strcmp(jstr(e, "phase") ?: "", phase))
				continue;
			sub->v[sub->n++] = v->set.v[k];	/* shared with v->set: freed there */
			json_array_foreach(json_object_get(e, "guarded"), j, line)
				strvec_pushf(guarded, "%s:%lld", v->set.v[k].file, (long long)json_integer_value(line));
		}
	}
}

static void print_plan(const struct ts_promote_opts *o, const struct ts_verify *v,
		       const struct ts_migrations *sub, const struct strvec *guarded, const char *shown)
{
	char b[32];

	printf("promote%s: %zu migration%s to production (%s), tracked in %s's table %s%s%s:\n",
	       o->dry_run ? " --dry-run" : "", sub->n, sub->n == 1 ? "" : "s", shown,
	       ts_tracking_tool_name(v->tracker.tool), v->tracker.table, o->verify.phase ? ", phase " : "",
	       o->verify.phase ? o->verify.phase : "");
	for (size_t i = 0; i < sub->n; i++) {
		struct strbuf lines = STRBUF_INIT;
		size_t nl = strlen(sub->v[i].file);

		for (size_t g = 0; g < guarded->nr; g++)
			if (!strncmp(guarded->v[g], sub->v[i].file, nl) && guarded->v[g][nl] == ':')
				strbuf_addf(&lines, "%s%s", lines.len ? ", " : "", guarded->v[g] + nl + 1);
		printf("  %s%s%s%s\n", sub->v[i].file, lines.len ? " (line " : "", lines.len ? lines.buf : "",
		       lines.len ? " under lock_timeout)" : "");
		strbuf_release(&lines);
	}
	printf("lock_timeout %s for the statements that blocked writes when rehearsed, each retried up to %d time%s;",
	       ts_human_ms(o->lock_timeout_ms, b, sizeof(b)), o->retries, o->retries == 1 ? "" : "s");
	if (o->statement_timeout_ms > 0)
		printf(" statement_timeout %s\n", ts_human_ms(o->statement_timeout_ms, b, sizeof(b)));
	else
		printf(" no statement_timeout\n");
	if (o->dry_run)
		printf("nothing written (--dry-run)\n");
	fflush(stdout);
}

/* promotion-<time>.json beside the manifest: what ran, when, how long, against which manifest. */
static void write_record(const struct ts_promote_opts *o, const struct ts_verify *v, const char *shown,
			 const char *started, double ms, const struct ts_report *rep, const char *result,
			 const char *after_sha, int matches)
{
	char stamp[32], finished[32], msum[65], *dir = path_dirname(o->verify.manifest), *path;
	struct strbuf sb = STRBUF_INIT;
	time_t now = time(NULL);
	json_t *rec, *migs = json_array();

	strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", gmtime(&now));
	iso_time(finished, sizeof(finished));
	if (strbuf_read_file(&sb, o->verify.manifest) >= 0)
		sha256_hex(sb.buf ? sb.buf : "", sb.len, msum);
	else
		strcpy(msum, "");
	for (size_t i = 0; i < rep->n_migrations; i++) {
		const struct ts_report_migration *m = &rep->migrations[i];

		json_array_append_new(migs, json_pack("{s:s, s:s, s:f, s:i, s:s?}", "name", m->file, "status",
						      m->status ? m->status : "not run", "ms", m->ms, "retries",
						      m->retries, "error", m->error));
	}
	rec = json_pack("{s:i, s:s, s:s, s:{s:s, s:s, s:s?}, s:s?, s:s, s:s, s:s, s:f, s:s, s:i, s:i, s:i, s:o, s:{s:s?, s:b}}",
			"format", 1, "kind", "twinstage-promotion", "twinstage", TS_VERSION,
			"manifest", "file", o->verify.manifest, "sha256", msum, "run_id", jstr(v->manifest, "run_id"),
			"phase", o->verify.phase, "target", shown, "started", started, "finished", finished, "ms", ms,
			"result", result, "lock_timeout_ms", o->lock_timeout_ms, "retries", o->retries,
			"statement_timeout_ms", o->statement_timeout_ms, "migrations", migs,
			"production_after", "schema_sha256", after_sha, "matches_rehearsal", matches);
	path = xstrfmt("%s/promotion-%s%s%s.json", dir, stamp, o->verify.phase ? "-phase-" : "",
		       o->verify.phase ? o->verify.phase : "");
	if (json_dump_file(rec, path, JSON_INDENT(2) | JSON_SORT_KEYS))
		fprintf(stderr, "twinstage: warning: could not write the promotion record \"%s\"\n", path);
	else if (!o->quiet)
		fprintf(stderr, "twinstage: promote: record in %s\n", path);
	json_decref(rec);
	free(path);
	free(dir);
	strbuf_release(&sb);
}

/* Production after the promotion against the rehearsal's dev side at the same point. */
static int check_after(PGconn *conn, const struct ts_verify *v, char **sha)
{
	json_t *s = json_array_get(json_object_get(v->manifest, "states"), (size_t)v->done);
	struct ts_fingerprint now, was;
	int same = 0;

	*sha = NULL;
	if (ts_fingerprint_read(conn, v->tracker.table, &now)) {
		fprintf(stderr, "twinstage: warning: %s\n", ts_error_message());
		ts_error_clear();
		return 0;
	}
	*sha = xstrdup(now.schema_sha256);
	if (!ts_fingerprint_from_json(json_object_get(s, "fingerprint"), &was)) {
		struct strvec d = STRVEC_INIT;

		same = ts_fingerprint_same_schema(&was, &now);
		if (same) {
			printf("production's schema is now the rehearsal's dev side's (%zu objects)\n", now.objects);
		} else {
			ts_fingerprint_changes(&was, &now, &d);
			printf("production's schema differs from the rehearsal's dev side after the same migrations:\n");
			for (size_t i = 0; i < d.nr; i++)
				printf("  - %s\n", d.v[i]);
		}
		strvec_clear(&d);
		ts_fingerprint_free(&was);
	}
	ts_fingerprint_free(&now);
	return same;
}

int ts_promote(const struct ts_promote_opts *opts)
{
	struct ts_promote_opts eff = *opts, *o = &eff;
	struct ts_verify v;
	struct ts_migrations sub = { 0 };
	struct strvec guarded = STRVEC_INIT;
	struct ts_report rep;
	const char *dsn = NULL, *from = NULL;
	char started[32], *shown = NULL, *after_sha = NULL;
	int code, matches = 0, applied;
	double t0;
	PGconn *conn;

	code = ts_verify_run(&o->verify, &v);
	if (code == TS_EXIT_USAGE || code == TS_EXIT_ENV) {
		code = ts_error_print();
		goto out;
	}
	/* the source stays read-only: promote writes only where it is told to */
	if (ts_release_target(&v.cfg, o->verify.dsn, &dsn, &from)) {
		code = ts_error_print();
		goto out;
	}
	if (!dsn) {
		ts_error_set(TS_EXIT_USAGE, "promote needs production's connection string, to write there");
		ts_error_hint("give it as [target] dsn, --dsn or TWINSTAGE_TARGET_DSN; [source] dsn is only ever read");
		code = ts_error_print();
		goto out;
	}
	if (json_array_size(json_object_get(v.manifest, "phases")) && !o->verify.phase) {
		ts_error_set(TS_EXIT_USAGE, "the rehearsal is a rollout in %zu phases: promote one at a time, with --phase NAME",
			     json_array_size(json_object_get(v.manifest, "phases")));
		ts_error_hint("each phase is a release: promote it, deploy its application version, then the next");
		code = ts_error_print();
		goto out;
	}
	if (json_object_get(json_object_get(v.manifest, "tool"), "runner")) {
		/* what ran was the tool's code, not files twinstage applies */
		ts_error_set(TS_EXIT_USAGE, "the rehearsal ran %s's own command (%s): promote applies migration files",
			     jstr(json_object_get(v.manifest, "tool"), "runner"),
			     jstr(json_object_get(v.manifest, "tool"), "command") ?: "?");
		ts_error_hint("once \"twinstage verify\" says the manifest holds, run that command against production: it is where the rehearsal found it, and the code is the rehearsed code");
		code = ts_error_print();
		goto out;
	}
	ts_verify_print(&v, o->verify.manifest);
	if (strcmp(jstr(v.manifest, "verdict") ?: "", "compatible") ||
	    json_integer_value(json_object_get(v.manifest, "exit_code")) != 0) {
		fprintf(stderr, "twinstage: promote refused: the rehearsal did not pass (%s%s%s)\n",
			jstr(v.manifest, "verdict") ?: "no verdict", jstr(v.manifest, "reason") ? ": " : "",
			jstr(v.manifest, "reason") ?: "");
		code = TS_EXIT_GATE;
		goto out;
	}
	if (code) {
		fprintf(stderr, "twinstage: promote refused: the manifest no longer holds (%zu reason%s above); rehearse again\n",
			v.problems.nr, v.problems.nr == 1 ? "" : "s");
		goto out;
	}
	if (v.at == v.done) {
		printf("nothing to promote: production already has %s\n",
		       o->verify.phase ? "this phase's migrations" : "every rehearsed migration");
		code = 0;
		goto out;
	}
	if (o->statement_timeout_ms < 0)
		o->statement_timeout_ms = v.cfg.migration_timeout_ms;
	shown = conninfo_redact(dsn);
	plan(&v, o->verify.phase, &sub, &guarded);
	print_plan(o, &v, &sub, &guarded, shown);
	if (o->dry_run) {
		code = 0;
		goto out;
	}
	iso_time(started, sizeof(started));
	if (!(conn = connect_writable(dsn, shown))) {
		code = ts_error_print();
		goto out;
	}
	{
		char *sql = xstrfmt("SET statement_timeout = %d", o->statement_timeout_ms > 0 ? o->statement_timeout_ms : 0);

		if (ts_pg_exec(conn, sql)) {
			free(sql);
			PQfinish(conn);
			code = ts_error_print();
			goto out;
		}
		free(sql);
	}
	ts_report_init(&rep, v.cfg.name);
	t0 = now_ms();
	{
		struct ts_apply_opts ao = { o->lock_timeout_ms, o->retries, &guarded, !o->quiet };

		if (!o->quiet)
			fprintf(stderr, "twinstage: promote: applying to production\n");
		applied = ts_migrations_apply_opts(conn, &sub, &v.tracker, NULL, &rep, NULL, &ao);
	}
	if (applied < 0) {
		char *why = xstrdup(ts_error_message());
		enum ts_exit cls = ts_error_class();
		struct ts_tracking_state st;

		/* where it stopped, as the tool's table says now */
		if (!ts_tracking_read(conn, &v.tracker, &st)) {
			printf("promote stopped: %s\nproduction's %s table is at version %s%s; nothing after it ran\n", why,
			       ts_tracking_tool_name(v.tracker.tool), st.latest ? st.latest : "none",
			       st.dirty ? " (dirty, as golang-migrate leaves a migration that failed)" : "");
			ts_tracking_state_free(&st);
		} else {
			printf("promote stopped: %s\n", why);
		}
		ts_error_clear();
		write_record(o, &v, shown, started, now_ms() - t0, &rep, "failed", NULL, 0);
		code = cls == TS_EXIT_GATE || cls == TS_EXIT_USAGE ? TS_EXIT_GATE : TS_EXIT_ENV;
		free(why);
	} else {
		matches = check_after(conn, &v, &after_sha);
		printf("promoted: %d migration%s applied in %.1f s\n", applied, applied == 1 ? "" : "s",
		       (now_ms() - t0) / 1000.0);
		write_record(o, &v, shown, started, now_ms() - t0, &rep, "promoted", after_sha, matches);
		code = matches ? 0 : TS_EXIT_GATE;
	}
	PQfinish(conn);
	ts_report_free(&rep);
out:
	fflush(stdout);
	free(sub.v);
	free(shown);
	free(after_sha);
	strvec_clear(&guarded);
	ts_verify_free(&v);
	return code;
}
