/*
 * scenario.c: parsing annotated scenario files and running them.
 *
 * Statements are split by libpg_query's scanner (so a ';' inside a string
 * or a dollar-quoted body never splits one), and the annotations are read
 * from the comment lines each split statement starts with. The scanner
 * split, unlike the parser's, accepts statements that do not parse: a
 * scenario may check that a syntax error is still one.
 */
#include "rehearse/scenario.h"
#include "config/config.h"
#include "core/error.h"
#include "core/progress.h"
#include "core/run_command.h"
#include "core/strbuf.h"
#include "core/util.h"
#include "core/wrapper.h"
#include "env/env.h"
#include "migrate/query.h"
#include "migrate/sql.h"
#include "rehearse/execute.h"
#include "pg/pg.h"
#include "report/report.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <pg_query.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *trim(const char *s, size_t n)
{
	while (n && isspace((unsigned char)*s)) {
		s++;
		n--;
	}
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	return xstrndup(s, n);
}

static int parse_expect(const char *file, int line, const char *v, struct ts_scenario_stmt *st)
{
	char *end;

	if (!strcmp(v, "ok") || !strcmp(v, "prepares") || !strcmp(v, "same")) {
		st->expect = *v == 'o' ? TS_EXPECT_OK : *v == 'p' ? TS_EXPECT_PREPARES : TS_EXPECT_SAME;
		return 0;
	}
	if (!strncmp(v, "rows ", 5)) {
		long n = strtol(v + 5, &end, 10);

		if (end != v + 5 && !*end && n >= 0) {
			st->expect = TS_EXPECT_ROWS;
			st->rows = n;
			return 0;
		}
	} else if (!strncmp(v, "error ", 6)) {
		const char *s = v + 6;
		int ok = strlen(s) == 5;

		for (int i = 0; ok && i < 5; i++)
			ok = isdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]);
		if (ok) {
			st->expect = TS_EXPECT_ERROR;
			memcpy(st->sqlstate, s, 6);
			return 0;
		}
		return ts_error_set(TS_EXIT_USAGE,
				    "%s:%d: invalid SQLSTATE \"%s\" in @expect (five digits or capital letters, like 42703)",
				    file, line, s);
	} else if (!strncmp(v, "columns ", 8)) {
		char *list = xstrdup(v + 8), *save = NULL;

		for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
			char *c = trim(tok, strlen(tok));

			if (*c)
				strvec_push(&st->columns, c);
			free(c);
		}
		free(list);
		if (st->columns.nr) {
			st->expect = TS_EXPECT_COLUMNS;
			return 0;
		}
	}
	return ts_error_set(TS_EXIT_USAGE,
			    "%s:%d: invalid @expect \"%s\" (expected ok, rows N, error SQLSTATE, columns a,b,c, prepares or same)",
			    file, line, v);
}

/*
 * Reads the annotations on the leading comment lines of one split
 * statement; returns the offset where the statement itself begins.
 */
static int read_annotations(const char *file, const char *chunk, int chunk_line,
			    struct ts_scenario_stmt *st, size_t *body)
{
	const char *p = chunk;
	int line = chunk_line, expect_line = 0;

	for (;;) {
		const char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) : strlen(p);
		char *l = trim(p, len);

		if (*l && strncmp(l, "--", 2)) {
			free(l);
			break;
		}
		if (!strncmp(l, "--", 2)) {
			const char *a = l + 2;

			while (*a == ' ' || *a == '\t')
				a++;
			if (*a == '@') {
				size_t kw = strcspn(a, " \t");
				char *val = trim(a + kw, strlen(a + kw));
				int r = 0;

				if (kw == 5 && !strncmp(a, "@name", 5)) {
					free(st->name);
					st->name = xstrdup(val);
				} else if (kw == 7 && !strncmp(a, "@expect", 7)) {
					if (expect_line)
						r = ts_error_set(TS_EXIT_USAGE,
								 "%s:%d: a second @expect for one statement (the first is on line %d)",
								 file, line, expect_line);
					else
						r = parse_expect(file, line, val, st);
					expect_line = line;
				} else if (kw == 5 && !strncmp(a, "@role", 5)) {
					if (!*val)
						r = ts_error_set(TS_EXIT_USAGE, "%s:%d: @role needs a role name", file, line);
					free(st->role);
					st->role = xstrdup(val);
				} else if (kw == 6 && !strncmp(a, "@calls", 6)) {
					char *end;
					long n = strtol(val, &end, 10);

					if (end == val || *end || n < 0)
						r = ts_error_set(TS_EXIT_USAGE, "%s:%d: @calls \"%s\" is not a count",
								 file, line, val);
					st->calls = n;
				} else if (kw == 7 && !strncmp(a, "@params", 7)) {
					size_t n;

					if (ts_query_constants(val, &n))
						r = ts_error_prefix("%s:%d", file, line);
					else
						strvec_push(&st->params, val);
				} else {
					r = ts_error_set(TS_EXIT_USAGE,
							 "%s:%d: unknown annotation \"%.*s\" (expected @name, @expect, @role, @calls or @params)",
							 file, line, (int)kw, a);
				}
				free(val);
				if (r) {
					free(l);
					return -1;
				}
			}
		}
		free(l);
		if (!eol) {
			p += len;
			break;
		}
		p = eol + 1;
		line++;
	}
	*body = (size_t)(p - chunk);
	st->line = line;
	return 0;
}

/*
 * A statement that ends or splits the transaction a scenario file runs in
 * (COMMIT, ROLLBACK, SAVEPOINT, ...) would make its writes stay on the
 * side it ran on: refused when the file is read. One that does not parse
 * is fine here: a scenario may expect a syntax error.
 */
static int controls_transaction(const char *file, const char *sql, int line)
{
	struct ts_stmt *stmts;
	size_t n;
	int r = 0;

	if (ts_stmts_parse(file, sql, line, &stmts, &n)) {
		ts_error_clear();
		return 0;
	}
	for (size_t i = 0; i < n && !r; i++)
		if (stmts[i].transaction_control)
			r = ts_error_set(TS_EXIT_USAGE,
					 "%s:%d: a scenario may not control its transaction (%.*s): each file runs in a transaction twinstage rolls back, each statement under a savepoint",
					 file, stmts[i].line, (int)strcspn(stmts[i].sql + ts_skip_comments(stmts[i].sql), " ;\n"),
					 stmts[i].sql + ts_skip_comments(stmts[i].sql));
	ts_stmts_free(stmts, n);
	if (r)
		ts_error_hint("leave COMMIT, ROLLBACK and SAVEPOINT out: whatever a scenario writes is undone after it");
	return r;
}

/*
 * The scanner's split keeps only statements with an SQL keyword before
 * their ';' ("SELEC 1;" would vanish, never run, never judged): text
 * between two statements that is not blank, a comment or a ';' is refused.
 */
static int skipped_text(const char *file, const char *text, size_t from, size_t to)
{
	size_t i = from;

	while (i < to) {
		size_t skip = ts_skip_comments(text + i);

		if (i + skip >= to)
			return 0;
		i += skip;
		if (text[i] != ';')
			return ts_error_set(TS_EXIT_USAGE,
					    "%s:%d: \"%.*s\" is not a statement PostgreSQL's scanner can tell (no SQL keyword before its ';')",
					    file, ts_line_at(text, i, 1), (int)strcspn(text + i, ";\n"), text + i),
			       ts_error_hint("a scenario statement starts with a keyword (SELECT, INSERT, ...); to expect a syntax error, write one that has one, such as SELECT 1 +");
		i++;
	}
	return 0;
}

/*
 * What @params, prepares and same ask of the statement, read from its
 * parse tree: a query PREPARE takes, and one value for each $n.
 */
static int check_shape(const char *file, const char *sql, struct ts_scenario_stmt *st)
{
	struct ts_query_shape q;
	size_t n;

	if (!st->params.nr && st->expect != TS_EXPECT_PREPARES && st->expect != TS_EXPECT_SAME)
		return 0;
	if (ts_query_shape(sql, &q)) {
		if (!st->params.nr && st->expect == TS_EXPECT_SAME) {
			/* a syntax error is an outcome too: both sides must give it */
			ts_error_clear();
			return 0;
		}
		return ts_error_prefix("%s:%d: the statement does not parse", file, st->line);
	}
	st->ordered = q.ordered;
	st->nparams = q.params;
	if ((st->params.nr || st->expect == TS_EXPECT_PREPARES) && !q.query)
		return ts_error_set(TS_EXIT_USAGE,
				    "%s:%d: %s needs a query (SELECT, INSERT, UPDATE, DELETE, MERGE), not a %s",
				    file, st->line, st->params.nr ? "@params" : "@expect prepares", q.kind);
	if (st->expect == TS_EXPECT_SAME && q.params && !st->params.nr)
		return ts_error_set(TS_EXIT_USAGE,
				    "%s:%d: @expect same on a statement with $%d needs @params (its values), or @expect prepares",
				    file, st->line, q.params);
	for (size_t i = 0; i < st->params.nr; i++) {
		ts_query_constants(st->params.v[i], &n);
		if (n != (size_t)q.params)
			return ts_error_set(TS_EXIT_USAGE,
					    "%s:%d: @params \"%s\" has %zu value%s; the statement takes %d",
					    file, st->line, st->params.v[i], n, n == 1 ? "" : "s", q.params);
	}
	return 0;
}

int ts_scenario_parse_text(const char *name, const char *text, struct ts_scenario *out)
{
	PgQuerySplitResult sr = pg_query_split_with_scanner(text);
	size_t end_of_last = 0;
	int r = 0;

	memset(out, 0, sizeof(*out));
	out->file = xstrdup(name);
	if (sr.error) {
		int pos = sr.error->cursorpos > 0 ? sr.error->cursorpos - 1 : 0;

		ts_error_set(TS_EXIT_USAGE, "%s:%d: %s", name, ts_line_at(text, (size_t)pos, 1),
			     sr.error->message);
		pg_query_free_split_result(sr);
		ts_scenario_free(out);
		return -1;
	}
	out->stmts = xcalloc((size_t)sr.n_stmts + 1, sizeof(*out->stmts));
	for (int i = 0; i <= sr.n_stmts && !r; i++) {
		size_t loc = i < sr.n_stmts ? (size_t)sr.stmts[i]->stmt_location : strlen(text);
		size_t len = i < sr.n_stmts ? (size_t)sr.stmts[i]->stmt_len : 0;
		char *chunk;
		struct ts_scenario_stmt *st = &out->stmts[out->n];
		size_t body;

		if ((r = skipped_text(name, text, end_of_last, loc)) || i == sr.n_stmts)
			break;
		chunk = xstrndup(text + loc, len);
		r = read_annotations(name, chunk, ts_line_at(text, loc, 1), st, &body);
		out->n++;
		if (!r) {
			char *sql = trim(chunk + body, strlen(chunk + body));

			if (!*sql) {
				/* only comments before a stray ';' */
				free(sql);
				free(st->name);
				free(st->role);
				strvec_clear(&st->columns);
				strvec_clear(&st->params);
				memset(st, 0, sizeof(*st));
				out->n--;
			} else if (controls_transaction(name, sql, st->line)) {
				free(sql);
				r = -1;
			} else if (check_shape(name, sql, st)) {
				free(sql);
				r = -1;
			} else {
				st->sql = sql;
				if (!st->name) {
					size_t n = strcspn(sql, "\n");

					st->name = n > 60 ? xstrfmt("%.57s...", sql) : xstrndup(sql, n);
				}
			}
		}
		end_of_last = loc + len;
		free(chunk);
	}
	pg_query_free_split_result(sr);
	if (!r) {
		/* annotations after the last statement annotate nothing */
		struct ts_scenario_stmt tail;
		size_t body;
		const char *rest = text + end_of_last;

		if (*rest == ';')
			rest++;
		memset(&tail, 0, sizeof(tail));
		r = read_annotations(name, rest, ts_line_at(text, (size_t)(rest - text), 1), &tail, &body);
		if (!r && (tail.name || tail.expect != TS_EXPECT_OK || tail.role || tail.calls || tail.params.nr))
			r = ts_error_set(TS_EXIT_USAGE, "%s:%d: annotation with no statement after it",
					 name, tail.line - 1);
		free(tail.name);
		free(tail.role);
		strvec_clear(&tail.columns);
		strvec_clear(&tail.params);
	}
	if (r) {
		ts_scenario_free(out);
		return -1;
	}
	return 0;
}

int ts_scenario_parse(const char *path, struct ts_scenario *out)
{
	struct strbuf text = STRBUF_INIT;
	const char *base = strrchr(path, '/');
	int r;

	if (read_text_file(&text, path, "a scenario file: annotated SQL")) {
		memset(out, 0, sizeof(*out));
		strbuf_release(&text);
		return -1;
	}
	r = ts_scenario_parse_text(base ? base + 1 : path, text.buf, out);
	if (!r)
		out->path = xstrdup(path);
	strbuf_release(&text);
	return r;
}

void ts_scenario_free(struct ts_scenario *sc)
{
	for (size_t i = 0; i < sc->n; i++) {
		free(sc->stmts[i].name);
		free(sc->stmts[i].sql);
		free(sc->stmts[i].role);
		strvec_clear(&sc->stmts[i].columns);
		strvec_clear(&sc->stmts[i].params);
	}
	free(sc->stmts);
	free(sc->file);
	free(sc->path);
	memset(sc, 0, sizeof(*sc));
}

char *ts_scenario_expect_text(const struct ts_scenario_stmt *st)
{
	struct strbuf sb = STRBUF_INIT;

	switch (st->expect) {
	case TS_EXPECT_OK:
		return xstrdup("ok");
	case TS_EXPECT_ROWS:
		return xstrfmt("rows %ld", st->rows);
	case TS_EXPECT_ERROR:
		return xstrfmt("error %s", st->sqlstate);
	case TS_EXPECT_PREPARES:
		return xstrdup("prepares");
	case TS_EXPECT_SAME:
		return xstrdup("same as on the production clone");
	case TS_EXPECT_COLUMNS:
		strbuf_addstr(&sb, "columns ");
		for (size_t i = 0; i < st->columns.nr; i++)
			strbuf_addf(&sb, "%s%s", i ? "," : "", st->columns.v[i]);
		return strbuf_detach(&sb);
	}
	return xstrdup("?");
}

int ts_scenario_judge(const struct ts_scenario_stmt *st, PGresult *res, char **got)
{
	ExecStatusType s = PQresultStatus(res);
	int ok = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK || s == PGRES_EMPTY_QUERY;
	long count = 0;

	if (!ok) {
		char *e = ts_pg_result_error(res);
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

		*got = xstrfmt("error %s", e);
		free(e);
		return st->expect == TS_EXPECT_ERROR && state && !strcmp(state, st->sqlstate);
	}
	if (s == PGRES_TUPLES_OK)
		count = PQntuples(res);
	else if (*PQcmdTuples(res))
		count = atol(PQcmdTuples(res));
	switch (st->expect) {
	case TS_EXPECT_OK:
	case TS_EXPECT_PREPARES:
	case TS_EXPECT_SAME:
		*got = xstrdup("ok");
		return 1;
	case TS_EXPECT_ROWS:
		*got = xstrfmt("rows %ld", count);
		return count == st->rows;
	case TS_EXPECT_ERROR:
		*got = xstrfmt("ok (no error), rows %ld", count);
		return 0;
	case TS_EXPECT_COLUMNS: {
		struct strbuf sb = STRBUF_INIT, missing = STRBUF_INIT;

		strbuf_addstr(&sb, "columns ");
		for (int i = 0; i < PQnfields(res); i++)
			strbuf_addf(&sb, "%s%s", i ? "," : "", PQfname(res, i));
		for (size_t i = 0; i < st->columns.nr; i++)
			if (PQfnumber(res, st->columns.v[i]) < 0)
				strbuf_addf(&missing, "%s%s", missing.len ? "," : "", st->columns.v[i]);
		if (missing.len)
			strbuf_addf(&sb, " (missing %s)", missing.buf);
		*got = strbuf_detach(&sb);
		ok = !missing.len;
		strbuf_release(&missing);
		return ok;
	}
	}
	return 0;
}

char *ts_oneline(const char *sql)
{
	struct strbuf sb = STRBUF_INIT;

	/* one line, for reports */
	for (const char *p = sql; *p && sb.len < 200; p++) {
		if (isspace((unsigned char)*p)) {
			if (sb.len && sb.buf[sb.len - 1] != ' ')
				strbuf_addch(&sb, ' ');
		} else {
			strbuf_addch(&sb, *p);
		}
	}
	strbuf_rtrim(&sb);
	return strbuf_detach(&sb);
}

/*
 * The relation locks this session holds and `held` did not list yet (then
 * added to it): what the statement that just ran took, in the order a
 * transaction of the application takes them (lockorder.h reads them).
 */
static json_t *new_locks(PGconn *conn, json_t *held)
{
	PGresult *res = PQexec(conn, "SELECT n.nspname || '.' || c.relname || ':' || l.mode FROM pg_locks l"
				     " JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace"
				     " WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted"
				     "   AND c.relkind IN ('r', 'p', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')");
	json_t *mine = json_array(), *v;
	size_t k;

	if (PQresultStatus(res) == PGRES_TUPLES_OK)
		for (int i = 0; i < PQntuples(res); i++) {
			int seen = 0;

			json_array_foreach(held, k, v)
				seen |= !strcmp(json_string_value(v), PQgetvalue(res, i, 0));
			if (!seen) {
				json_array_append_new(mine, json_string(PQgetvalue(res, i, 0)));
				json_array_append_new(held, json_string(PQgetvalue(res, i, 0)));
			}
		}
	PQclear(res);
	return mine;
}

/* The statement was stopped by statement_timeout (57014 is also a cancel). */
static int timed_out(const PGresult *res)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

	return state && !strcmp(state, "57014") && msg && strstr(msg, "statement timeout");
}

/* A session a file runs in: the side under test, or the production clone beside it. */
struct session {
	PGconn *conn;
	struct ts_role_state roles;
};

static int begin(struct session *s, int timeout_ms)
{
	char *set = xstrfmt("SET LOCAL statement_timeout = %d", timeout_ms);
	int r = ts_pg_exec(s->conn, "BEGIN") || ts_pg_exec(s->conn, set) ? -1 : 0;

	free(set);
	return r;
}

static int differential(const struct ts_scenario_stmt *st)
{
	return st->expect == TS_EXPECT_PREPARES || st->expect == TS_EXPECT_SAME;
}

/*
 * Runs st under a savepoint; *o gets what it gave. A differential
 * statement's effects are always undone (each is checked on its own);
 * another's are kept for the statements after it when it worked.
 */
static int run_one(struct session *s, const struct ts_scenario_stmt *st, size_t sample,
		   struct ts_outcome *o, PGresult **keep)
{
	PGresult *res;
	int prepared, failed;

	if (ts_role_switch(s->conn, &s->roles, st->role) || ts_pg_exec(s->conn, "SAVEPOINT twinstage_scenario"))
		return -1;
	prepared = ts_execute(s->conn, st->sql, st->expect == TS_EXPECT_PREPARES, st->nparams,
			      st->params.nr ? st->params.v[sample] : NULL, &res);
	failed = PQresultStatus(res) == PGRES_FATAL_ERROR;
	if (o)
		ts_outcome_read(res, o);
	if (keep)
		*keep = res;
	else
		PQclear(res);
	return (failed ? 1 : 0) | (prepared ? 2 : 0);
}

static int end_one(struct session *s, const struct ts_scenario_stmt *st, int ran)
{
	int undo = (ran & 1) || differential(st);

	return PQstatus(s->conn) != CONNECTION_OK ? -1 :
	       ts_execute_end(s->conn, "twinstage_scenario", undo, ran & 2);
}

/*
 * The production clone's side of a differential statement: its outcome,
 * and for same whether a second run gives it again (now(), random() and
 * sequences do not: then only the shape is compared). -1 when the session failed.
 */
static int reference(struct session *ref, const struct ts_scenario_stmt *st, size_t sample,
		     struct ts_outcome *o, int *varies)
{
	struct ts_outcome again;
	int ran = run_one(ref, st, sample, o, NULL);

	*varies = 0;
	if (ran < 0 || end_one(ref, st, ran))
		return -1;
	if (!o->ok || st->expect != TS_EXPECT_SAME)
		return 0;
	if ((ran = run_one(ref, st, sample, &again, NULL)) < 0 || end_one(ref, st, ran)) {
		ts_outcome_free(&again);
		return -1;
	}
	*varies = !ts_outcome_alike(o, &again, st->ordered);
	ts_outcome_free(&again);
	return 0;
}

/*
 * Judges a differential statement against the production clone's outcome;
 * with none, in the baseline run on the production clone (on_prod),
 * whether it is checkable at all, and elsewhere (the next version, on
 * either side) that it works.
 */
static int judge_differential(const struct ts_scenario_stmt *st, const struct ts_outcome *prod, int varies,
			      const struct ts_outcome *got, int on_prod, struct ts_report_case *c)
{
	char *why = NULL;

	if (prod && !prod->ok) {
		c->uncheckable = xstrfmt("it fails on the production clone too: error %s",
					 prod->error ? prod->error : prod->sqlstate);
		c->got = xstrdup("not checkable");
		return 1;
	}
	if (!got->ok && !prod && on_prod) {
		c->uncheckable = xstrfmt("it fails on the production clone, before any migration: error %s",
					 got->error ? got->error : got->sqlstate);
		c->got = xstrdup("not checkable");
		return 1;
	}
	if (st->expect == TS_EXPECT_PREPARES || !prod) {
		c->got = got->ok ? xstrdup(st->expect == TS_EXPECT_PREPARES ? "prepared, generic plan made" : "ok") :
				   xstrfmt("error %s", got->error ? got->error : got->sqlstate);
		return got->ok;
	}
	if (ts_outcome_same(prod, got, st->ordered, varies, &why)) {
		c->got = xstrdup(varies ? "the same columns and row count (its rows differ between two runs on the production clone, so only its shape is compared)" :
				 "the same");
		return 1;
	}
	c->got = why;
	return 0;
}

/*
 * The baseline's case of a statement (file and line), looked for from
 * *at on: the baseline ran the same files in the same order.
 */
static const struct ts_report_case *baseline_case(const struct ts_report_check *b, size_t *at,
						  const char *file, int line)
{
	for (size_t n = 0; b && n < b->n_cases; n++) {
		size_t i = (*at + n) % b->n_cases;

		if (b->cases[i].line == line && !strcmp(b->cases[i].file, file)) {
			*at = i;
			return &b->cases[i];
		}
	}
	return NULL;
}

static int run_file(struct session *s, struct session *ref, const struct ts_scenario *sc,
		    const struct ts_report_check *baseline, size_t *at, struct ts_report_check *check,
		    int timeout_ms, struct strvec *as_superuser)
{
	int r = begin(s, timeout_ms) || (ref && begin(ref, timeout_ms)) ? -1 : 0;
	json_t *held;

	if (r)
		return ts_error_prefix("could not start the transaction of scenario \"%s\"", sc->file);
	held = json_array();
	for (size_t i = 0; i < sc->n && !r; i++) {
		const struct ts_scenario_stmt *st = &sc->stmts[i];
		size_t samples = st->params.nr ? st->params.nr : 1;

		for (size_t j = 0; j < samples && !r; j++) {
			struct ts_outcome prod, got;
			const struct ts_report_case *known;
			struct ts_report_case *c;
			PGresult *res;
			int ran, ok, varies = 0, diff = differential(st);

			if (ts_interrupted) {
				r = ts_error_set(TS_EXIT_ENV, "interrupted");
				break;
			}
			memset(&prod, 0, sizeof(prod));
			memset(&got, 0, sizeof(got));
			known = ref && st->expect == TS_EXPECT_PREPARES ? baseline_case(baseline, at, sc->file, st->line) : NULL;
			if (known) {
				/* the production clone prepared it before migrating, or could not */
				prod.ok = !known->uncheckable;
				if (known->uncheckable)
					prod.error = xstrdup(known->uncheckable);
			} else if (ref && diff && reference(ref, st, j, &prod, &varies)) {
				/* the production clone first: what the dev side must give, and whether it can be checked */
				r = ts_error_prefix("scenario \"%s\" on the production clone", sc->file);
				break;
			}
			if (ref && !diff) {
				/* kept in step with the side under test */
				if ((ran = run_one(ref, st, j, NULL, NULL)) < 0 || end_one(ref, st, ran)) {
					r = ts_error_prefix("scenario \"%s\" on the production clone", sc->file);
					break;
				}
			}
			c = ts_report_case_add(check);
			c->file = xstrdup(sc->file);
			c->name = xstrdup(st->name);
			c->line = st->line;
			c->text = xstrdup(st->sql);
			c->expected = ts_scenario_expect_text(st);
			c->calls = st->calls;
			c->captured = sc->captured;
			if (st->params.nr) {
				char *one = ts_oneline(st->sql);

				c->sql = xstrfmt("%s -- with (%s)", one, st->params.v[j]);
				free(one);
			} else {
				c->sql = ts_oneline(st->sql);
			}
			if (known && !prod.ok) {
				c->uncheckable = xstrdup(known->uncheckable);
				c->got = xstrdup("not checkable");
				ts_outcome_free(&prod);
				c->pass = 1;
				continue;
			}
			if (ref && diff && !prod.ok) {
				/* not the migration's doing: the side under test is not asked */
				ok = judge_differential(st, &prod, 0, NULL, 0, c);
				ts_outcome_free(&prod);
				c->pass = ok;
				continue;
			}
			if ((ran = run_one(s, st, j, diff ? &got : NULL, &res)) < 0) {
				ts_outcome_free(&prod);
				r = ts_error_prefix("scenario \"%s\"", sc->file);
				break;
			}
			if (st->role && !s->roles.role)
				strvec_pushf(as_superuser, "%s:%d (@role %s)", sc->file, st->line, st->role);
			else if (st->role)
				c->role = xstrdup(st->role);
			/* what it locked (a failed one's locks go with its savepoint) */
			c->locks = !(ran & 1) && !diff ? new_locks(s->conn, held) : NULL;
			if (diff)
				ok = judge_differential(st, ref ? &prod : NULL, varies, &got, check->role == TS_CHECK_BASELINE, c);
			else
				ok = ts_scenario_judge(st, res, &c->got);
			if (!ok && timed_out(res) && timeout_ms) {
				char b[32], *g = xstrfmt("%s (stopped after [gate] statement_timeout = %s)", c->got,
							 ts_human_ms(timeout_ms, b, sizeof(b)));

				free(c->got);
				c->got = g;
			}
			PQclear(res);
			ts_outcome_free(&prod);
			ts_outcome_free(&got);
			c->pass = ok;
			if (!ok)
				check->failed++;
			if (PQstatus(s->conn) != CONNECTION_OK)
				r = ts_error_set(TS_EXIT_ENV, "lost the connection to the %s side during scenario \"%s\"",
						 check->side, sc->file);
			/* keep what a statement did for the ones after it; undo a failed one */
			else if (end_one(s, st, ran))
				r = ts_error_prefix("scenario \"%s\"", sc->file);
		}
	}
	json_decref(held);
	if (ref && PQstatus(ref->conn) == CONNECTION_OK)
		PQclear(PQexec(ref->conn, "ROLLBACK"));
	return r ? r : ts_pg_exec(s->conn, "ROLLBACK");
}

int ts_app_has_sql(const struct ts_app *app)
{
	return app->scenarios || app->workload_given || (app->workload && is_dir(app->workload));
}

/* The .sql files of one folder, parsed, added to *sc. */
static int load_folder(const struct ts_app *app, const char *dir, const char *what, int captured,
		       struct ts_scenario **sc, size_t *n)
{
	struct strvec files = STRVEC_INIT;
	int r = 0;

	if (list_sql_files(dir, what, &files))
		return -1;
	*sc = xrealloc(*sc, (*n + files.nr + 1) * sizeof(**sc));
	for (size_t i = 0; i < files.nr && !r; i++) {
		char *p = path_join(dir, files.v[i]);
		struct ts_scenario *one = &(*sc)[*n];

		r = ts_scenario_parse(p, one);
		free(p);
		if (r)
			break;
		(*n)++;
		one->captured = captured;
		for (size_t k = 0; k < one->n && app->role; k++)
			if (!one->stmts[k].role)
				one->stmts[k].role = xstrdup(app->role);
	}
	strvec_clear(&files);
	return r;
}

int ts_scenario_load_app(const struct ts_app *app, struct ts_scenario **out, size_t *n)
{
	int r = 0;

	*out = NULL;
	*n = 0;
	if (app->scenarios)
		r = load_folder(app, app->scenarios, "scenarios", 0, out, n);
	if (!r && app->workload_given && !is_dir(app->workload))
		r = ts_error_set(TS_EXIT_USAGE, "%s: workload folder \"%s\" of [app %s] does not exist",
				 app->origin, app->workload, app->name),
		ts_error_hint("twinstage capture --app %s writes it from production's statements", app->name);
	if (!r && app->workload && is_dir(app->workload))
		r = load_folder(app, app->workload, "workload", 1, out, n);
	if (!r && !*n && app->scenarios)
		r = ts_error_set(TS_EXIT_USAGE, "%s: scenarios folder \"%s\" of [app %s] has no .sql files%s%s",
				 app->origin, app->scenarios, app->name, is_dir(app->workload) ? ", nor its workload " : "",
				 is_dir(app->workload) ? app->workload : "");
	else if (!r && !*n)
		r = ts_error_set(TS_EXIT_USAGE, "%s: [app %s] needs scenarios = FOLDER, command = COMMAND or a captured workload (%s)",
				 app->origin, app->name, app->workload),
		ts_error_hint("twinstage capture --app %s writes the workload from production's statements", app->name);
	if (r) {
		ts_scenario_free_all(*out, *n);
		*out = NULL;
		*n = 0;
	}
	return r;
}

void ts_scenario_free_all(struct ts_scenario *sc, size_t n)
{
	for (size_t i = 0; sc && i < n; i++)
		ts_scenario_free(&sc[i]);
	free(sc);
}

static int has_differential(const struct ts_scenario *sc, size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < sc[i].n; k++)
			if (differential(&sc[i].stmts[k]))
				return 1;
	return 0;
}

static int run_sql_app(struct ts_env *env, struct ts_side *side, const struct ts_app *app,
		       const struct ts_report_check *baseline, struct ts_report_check *check)
{
	size_t at = 0;
	struct ts_scenario *sc;
	struct session s = { 0 }, ref = { 0 };
	struct strvec as_superuser = STRVEC_INIT;
	size_t n;
	int r = 0;

	if (ts_scenario_load_app(app, &sc, &n))
		return -1;
	if (!(s.conn = ts_env_connect(env, side, NULL)))
		r = -1;
	/*
	 * on the dev side, a live version's prepares and same are judged
	 * against the production clone; the next version's are not there yet
	 */
	if (!r && strcmp(side->name, "prod") && check->role != TS_CHECK_NEXT && has_differential(sc, n) &&
	    !(ref.conn = ts_env_connect(env, &env->prod, NULL)))
		r = -1;
	for (size_t i = 0; i < n && !r; i++) {
		r = run_file(&s, ref.conn ? &ref : NULL, &sc[i], baseline, &at, check,
			     env->cfg->statement_timeout_ms, &as_superuser);
		/* a file's role and settings end with its transaction */
		free(s.roles.role);
		s.roles.role = NULL;
		strvec_clear(&s.roles.names);
		strvec_clear(&s.roles.saved);
		free(ref.roles.role);
		ref.roles.role = NULL;
		strvec_clear(&ref.roles.names);
		strvec_clear(&ref.roles.saved);
	}
	if (!r && as_superuser.nr) {
		struct strbuf sb = STRBUF_INIT;

		for (size_t i = 0; i < s.roles.missing.nr; i++)
			strbuf_addf(&sb, "%s%s", i ? ", " : "", s.roles.missing.v[i]);
		strbuf_addf(&sb, " not on the %s side: %zu statement%s ran as the superuser instead (", side->name,
			    as_superuser.nr, as_superuser.nr == 1 ? "" : "s");
		for (size_t i = 0; i < as_superuser.nr && i < 5; i++)
			strbuf_addf(&sb, "%s%s", i ? ", " : "", as_superuser.v[i]);
		strbuf_addstr(&sb, as_superuser.nr > 5 ? ", ...)" : ")");
		check->role_note = xstrfmt("role%s %s", s.roles.missing.nr == 1 ? "" : "s", sb.buf);
		strbuf_release(&sb);
	}
	strvec_clear(&as_superuser);
	ts_role_state_free(&s.roles);
	ts_role_state_free(&ref.roles);
	if (s.conn)
		PQfinish(s.conn);
	if (ref.conn)
		PQfinish(ref.conn);
	ts_scenario_free_all(sc, n);
	return r;
}

char *ts_tail_lines(const char *path, int lines)
{
	struct strbuf sb = STRBUF_INIT;
	char *tail = strbuf_read_file(&sb, path) ? NULL : strbuf_tail_lines(&sb, lines);

	strbuf_release(&sb);
	return tail;
}

int ts_command_prepare(struct ts_env *env, struct ts_side *side, const char *command,
		       const char *origin, const char *what, struct child_process *cp)
{
	/* checked when the configuration was read, but a variable may have gone since */
	if (split_command(command, &cp->args))
		return ts_error_set(TS_EXIT_USAGE, "%s: cannot split command of %s into words: \"%s\"",
				    origin, what, command),
		       ts_error_hint(TS_COMMAND_HINT);
	/* ./script is relative to the configuration file, like every path */
	if (strchr(cp->args.v[0], '/') && cp->args.v[0][0] != '/') {
		char *abs = path_join(env->cfg->dir, cp->args.v[0]);

		free(cp->args.v[0]);
		cp->args.v[0] = abs;
	}
	ts_env_child_env(env, side, cp);
	cp->dir = env->cfg->dir;
	return 0;
}

static int run_command_app(struct ts_env *env, struct ts_side *side, const struct ts_app *app,
			   const char *log_dir, struct ts_report_check *check)
{
	struct child_process cp = CHILD_PROCESS_INIT;
	struct ts_report_case *c;
	char *log, *what = xstrfmt("[app %s]", app->name);
	int status;

	status = ts_command_prepare(env, side, app->command, app->origin, what, &cp);
	free(what);
	if (status)
		return -1;
	mkdir_p(log_dir, 0755);
	log = xstrfmt("%s/%s-on-%s.log", log_dir, app->name, side->name);
	unlink(log);
	cp.out_path = log;
	cp.no_stdin = 1;
	status = run_command(&cp);
	child_process_clear(&cp);
	if (status < 0) {
		free(log);
		return ts_error_prefix("[app %s]", app->name);
	}
	c = ts_report_case_add(check);
	c->file = xstrdup(app->command);
	c->name = xstrdup(app->command);
	c->sql = xstrdup(app->command);
	c->expected = xstrdup("exit 0");
	c->got = xstrfmt("exit %d", status);
	c->pass = status == 0;
	if (!c->pass)
		check->failed++;
	check->output = ts_tail_lines(log, 20);
	free(log);
	return 0;
}

int ts_scenario_run_app(struct ts_env *env, struct ts_side *side, const struct ts_app *app,
			const char *log_dir, struct ts_report_check *check)
{
	return ts_scenario_run_app_after(env, side, app, log_dir, NULL, check);
}

int ts_scenario_run_app_after(struct ts_env *env, struct ts_side *side, const struct ts_app *app,
			      const char *log_dir, const struct ts_report_check *baseline,
			      struct ts_report_check *check)
{
	double t0 = now_ms();
	int r;

	check->ran = 1;
	r = app->command ? run_command_app(env, side, app, log_dir, check) : 0;
	/* a command's app may have a captured workload too */
	if (!r && (!app->command || (app->workload && is_dir(app->workload))))
		r = run_sql_app(env, side, app, baseline, check);
	check->ms = now_ms() - t0;
	return r;
}
