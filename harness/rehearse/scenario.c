/*
 * scenario.c: annotated scenario files read: statements, annotations,
 * expectations, and the files of an app (its scenarios, its captured
 * workload). Running them is scenario_run.c.
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
#include "core/strbuf.h"
#include "core/util.h"
#include "core/wrapper.h"
#include "migrate/query.h"
#include "migrate/sql.h"
#include "pg/pg.h"

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

int ts_scenario_differential(const struct ts_scenario_stmt *st)
{
	return st->expect == TS_EXPECT_PREPARES || st->expect == TS_EXPECT_SAME;
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
