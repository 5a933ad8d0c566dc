/*
 * migrate.c: applying the pending migrations to the dev side.
 *
 * Each migration runs in one transaction when it can, statement by
 * statement so each one's duration and line are known; the tracking row is
 * written in the same transaction, so a migration is recorded if and only
 * if it applied. Each statement is linted, traced (its locks, rewrites and
 * scans) and recorded in the report as it runs.
 */
#include "migrate/migrate.h"
#include "core/error.h"
#include "core/progress.h"
#include "core/strbuf.h"
#include "core/strvec.h"
#include "core/util.h"
#include "core/wrapper.h"
#include "migrate/batch.h"
#include "migrate/lint.h"
#include "migrate/sql.h"
#include "migrate/tracking.h"
#include "pg/pg.h"
#include "pg/trace.h"
#include "report/report.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *first_line_of(const char *sql)
{
	const char *s = sql + ts_skip_comments(sql);
	size_t n = strcspn(s, "\n");

	if (n > 100)
		return xstrfmt("%.97s...", s);
	return xstrndup(s, n);
}

/* The lint findings of a migration about the statement on `line`, as JSON. */
static json_t *findings_at(const struct ts_lint *l, int line)
{
	json_t *a = json_array();

	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].stmt_line == line)
			json_array_append_new(a, ts_lint_finding_json(&l->v[i]));
	return a;
}

/* Runs one statement (traced when trace is set); on failure sets a TS_EXIT_GATE error "file:line: ...". */
static int run_stmt(PGconn *conn, const char *file, const struct ts_stmt *st,
		    struct ts_report_migration *rm, struct ts_trace *trace, int in_tx,
		    const struct ts_lint *lint, int verbose, char sqlstate[6])
{
	double t0 = now_ms();
	json_t *facts = NULL;

	sqlstate[0] = '\0';
	PGresult *res = st->batch ? ts_batch_exec(conn, st, trace, verbose, &facts) :
			trace ? ts_trace_exec(trace, st->sql, in_tx, &facts) : PQexec(conn, st->sql);
	ExecStatusType s = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	char *excerpt = first_line_of(st->sql);
	struct ts_report_stmt *rs = ts_report_stmt_add(rm, st->line, now_ms() - t0, excerpt);

	rs->at = t0;
	free(excerpt);
	rs->facts = facts ? facts : json_object();
	json_object_set_new(rs->facts, "lint", findings_at(lint, st->line));
	{
		struct strvec names = STRVEC_INIT, acts = STRVEC_INIT;
		json_t *a = json_array(), *b = json_array();

		ts_sql_names(st->node, &names);
		for (size_t i = 0; i < names.nr; i++)
			json_array_append_new(a, json_string(names.v[i]));
		json_object_set_new(rs->facts, "names", a);
		ts_sql_acts(st->node, &acts);
		for (size_t i = 0; i < acts.nr; i++)
			json_array_append_new(b, json_string(acts.v[i]));
		json_object_set_new(rs->facts, "acts", b);
		strvec_clear(&names);
		strvec_clear(&acts);
	}
	if (!res) {	/* could not be batched: the reason is in the error slot */
		char *why = xstrdup(ts_error_message());

		ts_error_set(TS_EXIT_GATE, "%s:%d: %s", file, st->line, why);
		free(why);
		return -1;
	}
	if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK && s != PGRES_EMPTY_QUERY) {
		/* a batch runs rewritten text: its positions are not the file's */
		const char *pos = st->batch ? NULL : PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION);
		int line = pos ? ts_line_at(st->sql, (size_t)(atoi(pos) - 1), st->text_line) : st->line;
		char *e = ts_pg_result_error(res);
		const char *code = PQresultErrorField(res, PG_DIAG_SQLSTATE);

		snprintf(sqlstate, 6, "%s", code ? code : "");
		ts_error_set(TS_EXIT_GATE, "%s:%d: %s", file, line, e);
		free(e);
		PQclear(res);
		return -1;
	}
	PQclear(res);
	return 0;
}

static int in_production(const struct ts_tracker *t, const struct ts_tracking_state *prod,
			 const struct ts_migration *m)
{
	char *sum;
	int r;

	if (!prod)
		return 0;
	r = ts_tracking_applied(t, prod, m, &sum);
	free(sum);
	return r;
}

/* Whether the statement on `line` of file is to run under lock_timeout. */
static int guarded(const struct ts_apply_opts *o, const char *file, int line)
{
	char *key;
	int hit;

	if (!o || o->lock_timeout_ms <= 0 || !o->guarded)
		return 0;
	key = xstrfmt("%s:%d", file, line);
	hit = strvec_find(o->guarded, key) >= 0;
	free(key);
	return hit;
}

/* Waits before try `attempt` (1, 2, ...): 250 ms, doubling, at most 8 s; 0 when interrupted. */
static int back_off(const struct ts_apply_opts *o, const char *file, int line, int attempt)
{
	double ms = 250.0 * (1 << (attempt - 1 < 5 ? attempt - 1 : 5)), until;
	char b[32];

	if (o->verbose) {
		fprintf(stderr, "\n      %s:%d: no lock within lock_timeout = %s (someone holds it); try %d of %d in %.2f s",
			file, line, ts_human_ms(o->lock_timeout_ms, b, sizeof(b)), attempt + 1, o->retries + 1,
			ms / 1000.0);
		fflush(stderr);
	}
	for (until = now_ms() + ms; now_ms() < until && !ts_interrupted;)
		usleep(20000);
	return !ts_interrupted;
}

/*
 * Runs statement i under lock_timeout when the options say so (the
 * migration's own SET lock_timeout wins: then nothing is set).
 */
static int run_guarded(PGconn *conn, const char *file, const struct ts_stmt *st,
		       struct ts_report_migration *rm, struct ts_trace *trace, int tx,
		       const struct ts_lint *lint, const struct ts_apply_opts *o, int own_timeout,
		       char sqlstate[6], int *was_guarded)
{
	int g = !own_timeout && guarded(o, file, st->line), r;

	*was_guarded = g;
	if (g) {
		char *set = xstrfmt("SET lock_timeout = %d", o->lock_timeout_ms);

		r = ts_pg_exec(conn, set);
		free(set);
		if (r)
			return -1;
	}
	r = run_stmt(conn, file, st, rm, trace, tx, lint, o ? o->verbose : 0, sqlstate);
	if (g && !r)
		r = ts_pg_exec(conn, "RESET lock_timeout");
	return r;
}

/*
 * Applies one part of m: its up part (traced, linted, recorded in t's
 * table), or with `prev` set, its down part (un-recorded, back to version
 * *prev, which may be NULL). With options, the statements they name run
 * under lock_timeout, and one stopped by it is tried again after a wait:
 * the whole transaction of a transactional file (rolled back first, so
 * nothing is half-applied), the statement alone in a file that commits
 * each statement.
 */
static int apply_part(PGconn *conn, const struct ts_tracker *t, const struct ts_migration *m,
		      enum ts_mig_format fmt, struct ts_report_migration *rm, struct ts_trace *trace,
		      const char *const *prev, const struct ts_apply_opts *o)
{
	struct ts_stmt *stmts;
	struct ts_lint lint = { 0 };
	const char *file = prev && m->down_file ? m->down_file : m->file;
	const char *sql = prev ? m->down : m->up;
	size_t n;
	int tx = !m->no_transaction, r = 0, own_timeout = 0, attempt = 0;
	double t0 = now_ms();
	char sqlstate[6] = "";

	if (ts_stmts_parse(file, sql, prev ? m->down_line : m->up_line, &stmts, &n))
		return -1;
	if (!prev)
		ts_lint_stmts(&lint, m->file, m->up, m->up_line, stmts, n, fmt, m->no_transaction);
	/* each batch commits on its own, as on a live table */
	for (size_t i = 0; i < n; i++) {
		const char *sets = ts_sql_sets(stmts[i].node);

		if (stmts[i].no_transaction || stmts[i].transaction_control || stmts[i].batch)
			tx = 0;
		own_timeout |= sets && !strcmp(sets, "lock_timeout");
	}
	rm->transactional = tx;
	if (!prev && ts_tracking_begin(conn, t, m)) {
		ts_stmts_free(stmts, n);
		return -1;
	}
	for (;;) {
		int timed_out = 0, g = 0;

		if (tx && ts_pg_exec(conn, "BEGIN")) {
			r = -1;
			break;
		}
		for (size_t i = 0; i < n && !r; i++) {
			if (ts_interrupted) {
				r = ts_error_set(TS_EXIT_ENV, "interrupted");
				break;
			}
			r = run_guarded(conn, file, &stmts[i], rm, trace, tx, &lint, o, own_timeout, sqlstate, &g);
			/* in a file that commits each statement, only this one is tried again */
			while (r && !tx && g && !strcmp(sqlstate, "55P03") && attempt < o->retries &&
			       back_off(o, file, stmts[i].line, ++attempt)) {
				rm->retries++;
				ts_error_clear();
				r = run_guarded(conn, file, &stmts[i], rm, trace, tx, &lint, o, own_timeout,
						sqlstate, &g);
			}
			timed_out = r && tx && g && !strcmp(sqlstate, "55P03");
		}
		if (!timed_out || attempt >= o->retries)
			break;
		/* the whole transaction again: rolled back, nothing of it stays */
		PQclear(PQexec(conn, "ROLLBACK"));
		if (trace)
			ts_trace_tx_end(trace);
		ts_report_stmts_clear(rm);
		if (!back_off(o, file, stmts[0].line, ++attempt))
			break;
		rm->retries++;
		ts_error_clear();
		r = 0;
	}
	ts_lint_free(&lint);
	rm->ms = now_ms() - t0;
	if (r) {
		char *saved = xstrdup(ts_error_message());
		enum ts_exit cls = ts_error_class();

		if (tx)
			PQclear(PQexec(conn, "ROLLBACK"));
		else if (!prev)
			ts_tracking_record(conn, t, m, rm->ms, 0);	/* partly applied: say so */
		if (rm->retries && !strcmp(sqlstate, "55P03"))
			ts_error_set(cls, "%s (tried %d times)", saved, rm->retries + 1);
		else
			ts_error_set(cls, "%s", saved);
		free(saved);
	} else {
		r = prev ? ts_tracking_unrecord(conn, t, m, *prev, rm->ms)
			 : ts_tracking_record(conn, t, m, rm->ms, 1);
		if (tx)
			r = r ? (PQclear(PQexec(conn, "ROLLBACK")), -1) : ts_pg_exec(conn, "COMMIT");
	}
	if (trace)
		ts_trace_tx_end(trace);
	ts_stmts_free(stmts, n);
	return r;
}

int ts_migrations_apply(PGconn *conn, const struct ts_migrations *set, const struct ts_tracker *t,
			const struct ts_tracking_state *prod, struct ts_report *rep,
			struct ts_trace *trace, int verbose)
{
	struct ts_apply_opts o = { .verbose = verbose };

	return ts_migrations_apply_opts(conn, set, t, prod, rep, trace, &o);
}

int ts_migrations_apply_opts(PGconn *conn, const struct ts_migrations *set, const struct ts_tracker *t,
			     const struct ts_tracking_state *prod, struct ts_report *rep,
			     struct ts_trace *trace, const struct ts_apply_opts *o)
{
	int verbose = o->verbose;

	struct ts_tracking_state st;
	struct ts_trace_mark mark[2] = { { 0 }, { 0 } };
	int applied = 0, r = 0;

	if (ts_tracking_prepare(conn, t) || ts_tracking_read(conn, t, &st))
		return ts_error_prefix("dev side");
	if (ts_tracking_check(t, &st, "dev side")) {
		ts_tracking_state_free(&st);
		return -1;
	}
	for (size_t i = 0; i < set->n && !r; i++) {
		const struct ts_migration *m = &set->v[i];
		struct ts_report_migration *rm;
		char *recorded, *now;
		int done = ts_tracking_applied(t, &st, m, &recorded);

		now = ts_tracking_checksum(t, m);
		/*
		 * A file applied on the dev side whose checksum changed since was
		 * edited after applying. When production applied it too, that is
		 * drift, reported on its own: production's history stands.
		 */
		if (done && !m->repeatable && recorded && *now && strcmp(recorded, now) &&
		    !in_production(t, prod, m)) {
			r = ts_error_set(TS_EXIT_USAGE,
					 "migration \"%s\" was changed after it was applied (checksum %s recorded, %s now)",
					 m->file, recorded, now);
			ts_error_hint("restore the file, or start from a fresh clone with \"twinstage down\" and \"twinstage up\"");
		}
		free(recorded);
		free(now);
		if (done || r)
			continue;
		rm = ts_report_migration_add(rep, m->file);
		rm->version = m->version ? xstrdup(m->version) : NULL;
		rm->description = xstrdup(m->description);
		if (verbose) {
			fprintf(stderr, "    %s ...", m->file);
			fflush(stderr);
		}
		/* the rehearsal measures what each migration cost the side: WAL, sizes */
		if (trace && ts_trace_mark(conn, &mark[0])) {
			r = -1;
			break;
		}
		if (apply_part(conn, t, m, set->format, rm, trace, NULL, o)) {
			ts_trace_mark_free(&mark[0]);
			rm->status = xstrdup("failed");
			rm->error = xstrdup(ts_error_message());
			if (verbose)
				fprintf(stderr, " failed\n");
			for (size_t j = i + 1; j < set->n; j++) {
				struct ts_report_migration *nr = ts_report_migration_add(rep, set->v[j].file);

				nr->status = xstrdup("not run");
			}
			r = -1;
			break;
		}
		rm->status = xstrdup("applied");
		if (trace && !ts_trace_mark(conn, &mark[1]))
			rm->facts = ts_trace_mark_diff(&mark[0], &mark[1]);
		ts_error_clear();	/* a measure missing is no failure */
		ts_trace_mark_free(&mark[0]);
		ts_trace_mark_free(&mark[1]);
		if (verbose && rm->retries)
			fprintf(stderr, "\n      %s: applied in %.0f ms, on try %d\n", m->file, rm->ms, rm->retries + 1);
		else if (verbose)
			fprintf(stderr, " %.0f ms\n", rm->ms);
		applied++;
	}
	ts_tracking_state_free(&st);
	return r ? -1 : applied;
}

int ts_migrations_down(PGconn *conn, const struct ts_migrations *set, const struct ts_tracker *t,
		       const struct ts_migration *m, double *ms)
{
	const char *prev = NULL;
	struct ts_report scratch;
	struct ts_report_migration *rm;
	int r;

	for (size_t i = 0; i < set->n && &set->v[i] != m; i++)
		if (set->v[i].version)
			prev = set->v[i].version;
	/* the statements are not reported one by one: only the outcome is */
	ts_report_init(&scratch, "rollback");
	rm = ts_report_migration_add(&scratch, m->file);
	r = apply_part(conn, t, m, set->format, rm, NULL, &prev, NULL);
	*ms = rm->ms;
	ts_report_free(&scratch);
	return r;
}
