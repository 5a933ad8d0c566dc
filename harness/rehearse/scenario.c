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
#include "migrate/sql.h"
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

	if (!strcmp(v, "ok")) {
		st->expect = TS_EXPECT_OK;
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
			    "%s:%d: invalid @expect \"%s\" (expected ok, rows N, error SQLSTATE or columns a,b,c)",
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
				} else {
					r = ts_error_set(TS_EXIT_USAGE,
							 "%s:%d: unknown annotation \"%.*s\" (expected @name or @expect)",
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
				strvec_clear(&st->columns);
				memset(st, 0, sizeof(*st));
				out->n--;
			} else if (controls_transaction(name, sql, st->line)) {
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
		if (!r && (tail.name || tail.expect != TS_EXPECT_OK))
			r = ts_error_set(TS_EXIT_USAGE, "%s:%d: annotation with no statement after it",
					 name, tail.line - 1);
		free(tail.name);
		strvec_clear(&tail.columns);
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
		strvec_clear(&sc->stmts[i].columns);
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

static int run_file(PGconn *conn, const struct ts_scenario *sc, struct ts_report_check *check,
		    int timeout_ms)
{
	char *set = xstrfmt("SET LOCAL statement_timeout = %d", timeout_ms);
	int r = ts_pg_exec(conn, "BEGIN") || ts_pg_exec(conn, set);
	json_t *held;

	free(set);
	if (r)
		return ts_error_prefix("could not start the transaction of scenario \"%s\"", sc->file);
	held = json_array();
	for (size_t i = 0; i < sc->n && !r; i++) {
		const struct ts_scenario_stmt *st = &sc->stmts[i];
		struct ts_report_case *c;
		PGresult *res;
		int ok, ok_status;

		if (ts_interrupted) {
			r = ts_error_set(TS_EXIT_ENV, "interrupted");
			break;
		}
		if (ts_pg_exec(conn, "SAVEPOINT twinstage_scenario")) {
			r = ts_error_prefix("scenario \"%s\"", sc->file);
			break;
		}
		res = PQexec(conn, st->sql);
		ok_status = PQresultStatus(res) != PGRES_FATAL_ERROR;
		c = ts_report_case_add(check);
		/* what it locked (a failed one's locks go with its savepoint) */
		c->locks = ok_status ? new_locks(conn, held) : NULL;
		c->file = xstrdup(sc->file);
		c->name = xstrdup(st->name);
		c->line = st->line;
		c->sql = ts_oneline(st->sql);
		c->text = xstrdup(st->sql);
		c->expected = ts_scenario_expect_text(st);
		ok = ts_scenario_judge(st, res, &c->got);
		if (!ok && timed_out(res) && timeout_ms) {
			char b[32], *got = xstrfmt("%s (stopped after [gate] statement_timeout = %s)", c->got,
						   ts_human_ms(timeout_ms, b, sizeof(b)));

			free(c->got);
			c->got = got;
		}
		PQclear(res);
		c->pass = ok;
		if (!ok)
			check->failed++;
		if (PQstatus(conn) != CONNECTION_OK)
			r = ts_error_set(TS_EXIT_ENV, "lost the connection to the %s side during scenario \"%s\"",
					 check->side, sc->file);
		/* keep what a statement did for the ones after it; undo a failed one */
		else if (ts_pg_exec(conn, !ok_status ? "ROLLBACK TO SAVEPOINT twinstage_scenario" :
						       "RELEASE SAVEPOINT twinstage_scenario"))
			r = ts_error_prefix("scenario \"%s\"", sc->file);
	}
	json_decref(held);
	return r ? r : ts_pg_exec(conn, "ROLLBACK");
}

int ts_scenario_load_app(const struct ts_app *app, struct ts_scenario **out, size_t *n)
{
	struct strvec files = STRVEC_INIT;
	struct ts_scenario *sc;
	int r = 0;

	*out = NULL;
	*n = 0;
	if (list_sql_files(app->scenarios, "scenarios", &files))
		return -1;
	if (!files.nr) {
		strvec_clear(&files);
		return ts_error_set(TS_EXIT_USAGE, "%s: scenarios folder \"%s\" of [app %s] has no .sql files",
				    app->origin, app->scenarios, app->name);
	}
	sc = xcalloc(files.nr, sizeof(*sc));
	for (size_t i = 0; i < files.nr && !r; i++) {
		char *p = path_join(app->scenarios, files.v[i]);

		r = ts_scenario_parse(p, &sc[i]);
		free(p);
	}
	*out = sc;
	*n = files.nr;
	strvec_clear(&files);
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

static int run_sql_app(struct ts_env *env, struct ts_side *side, const struct ts_app *app,
		       struct ts_report_check *check)
{
	struct ts_scenario *sc;
	size_t n;
	PGconn *conn;
	int r = 0;

	if (ts_scenario_load_app(app, &sc, &n))
		return -1;
	if (!(conn = ts_env_connect(env, side, NULL)))
		r = -1;
	for (size_t i = 0; i < n && !r; i++)
		r = run_file(conn, &sc[i], check, env->cfg->statement_timeout_ms);
	if (conn)
		PQfinish(conn);
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
	double t0 = now_ms();
	int r;

	check->ran = 1;
	if (app->command)
		r = run_command_app(env, side, app, log_dir, check);
	else
		r = run_sql_app(env, side, app, check);
	check->ms = now_ms() - t0;
	return r;
}
