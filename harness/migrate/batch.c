/*
 * batch.c: rewriting a backfill statement into a limited one, by its
 * tokens, and running it until it is done.
 */
#include "migrate/batch.h"
#include "core/error.h"
#include "core/strbuf.h"
#include "core/util.h"
#include "core/wrapper.h"
#include "migrate/sql.h"
#include "pg/trace.h"

#include <jansson.h>
#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The statement's tokens, as PostgreSQL's scanner reads them. */
struct tokens {
	PgQueryScanResult raw;
	PgQuery__ScanResult *scan;
};

static int tokens_read(const char *sql, struct tokens *t)
{
	t->raw = pg_query_scan(sql);
	t->scan = NULL;
	if (t->raw.error) {
		ts_error_set(TS_EXIT_GATE, "%s", t->raw.error->message);
		pg_query_free_scan_result(t->raw);
		return -1;
	}
	t->scan = pg_query__scan_result__unpack(NULL, t->raw.pbuf.len, (void *)t->raw.pbuf.data);
	return 0;
}

static void tokens_free(struct tokens *t)
{
	if (t->scan)
		pg_query__scan_result__free_unpacked(t->scan, NULL);
	pg_query_free_scan_result(t->raw);
}

/* The kind of the token before token i, comments skipped; 0 for none. */
static int prev_token(const struct tokens *t, size_t i)
{
	while (i-- > 0) {
		int k = (int)t->scan->tokens[i]->token;

		if (k != PG_QUERY__TOKEN__SQL_COMMENT && k != PG_QUERY__TOKEN__C_COMMENT)
			return k;
	}
	return 0;
}

/*
 * Index of the first token of kind `tok` outside parentheses, at or after
 * offset `from`, whose token before (comments skipped) `after` accepts;
 * or -1.
 */
static long top_level_token(const struct tokens *t, int tok, int from, int (*after)(int prev))
{
	int depth = 0;

	for (size_t i = 0; i < t->scan->n_tokens; i++) {
		const PgQuery__ScanToken *k = t->scan->tokens[i];

		if ((int)k->token == '(')
			depth++;
		else if ((int)k->token == ')')
			depth--;
		else if (!depth && (int)k->token == tok && k->start >= from && after(prev_token(t, i)))
			return (long)i;
	}
	return -1;
}

/* A keyword right after a '.' is a name (s."where", written s.where), not the keyword. */
static int not_qualified(int prev)
{
	return prev != '.';
}

static int after_on(int prev)
{
	return prev == PG_QUERY__TOKEN__ON;
}

/* Offset of the first keyword `tok` outside parentheses at or after `from`, or -1. */
static int top_level(const struct tokens *t, int tok, int from)
{
	long i = top_level_token(t, tok, from, not_qualified);

	return i < 0 ? -1 : t->scan->tokens[i]->start;
}

/* Offset of the ON of a top-level ON CONFLICT (not a join's ON, not a function named conflict), or -1. */
static int on_conflict(const struct tokens *t, int from)
{
	long i = top_level_token(t, PG_QUERY__TOKEN__CONFLICT, from, after_on);

	if (i < 0)
		return -1;
	while ((int)t->scan->tokens[--i]->token != PG_QUERY__TOKEN__ON)
		;	/* back over the comments to the ON */
	return t->scan->tokens[i]->start;
}

/* "name" with embedded quotes doubled. */
static void add_ident(struct strbuf *sb, const char *name)
{
	strbuf_addch(sb, '"');
	for (; *name; name++) {
		if (*name == '"')
			strbuf_addch(sb, '"');
		strbuf_addch(sb, *name);
	}
	strbuf_addch(sb, '"');
}

/* The target table as a FROM item ("s"."t" AS "a"), and how to name it (a or t). */
static void target(json_t *rel, struct strbuf *from, struct strbuf *ref)
{
	const char *schema = json_string_value(json_object_get(rel, "schemaname"));
	const char *name = json_string_value(json_object_get(rel, "relname"));
	const char *alias = json_string_value(json_object_get(json_object_get(rel, "alias"), "aliasname"));

	if (schema) {
		add_ident(from, schema);
		strbuf_addch(from, '.');
	}
	add_ident(from, name);
	if (alias) {
		strbuf_addstr(from, " AS ");
		add_ident(from, alias);
	}
	add_ident(ref, alias ? alias : name);
}

/*
 * The limited statement and the query that counts what it has to do, or
 * -1 with an error that says which shape is missing.
 */
int ts_batch_rewrite(const struct ts_stmt *st, long n, char **out, char **count)
{
	struct tokens t;
	char *sql = xstrdup(st->sql);
	size_t len = strlen(sql);
	json_t *node = json_object_get(st->node, st->kind);
	struct strbuf sb = STRBUF_INIT, from = STRBUF_INIT, ref = STRBUF_INIT;
	int r = 0;

	while (len && (sql[len - 1] == ';' || sql[len - 1] == ' ' || sql[len - 1] == '\n' ||
		       sql[len - 1] == '\t' || sql[len - 1] == '\r'))
		sql[--len] = '\0';
	if (tokens_read(sql, &t)) {
		free(sql);
		return -1;
	}
	/* a comment after the last token (-- to the end of its line) would swallow what is appended */
	for (size_t i = t.scan->n_tokens; i-- > 0;) {
		const PgQuery__ScanToken *k = t.scan->tokens[i];

		if ((int)k->token == PG_QUERY__TOKEN__SQL_COMMENT || (int)k->token == PG_QUERY__TOKEN__C_COMMENT ||
		    (int)k->token == ';')
			continue;
		if ((size_t)k->end < len)
			sql[len = (size_t)k->end] = '\0';
		break;
	}
	if (json_object_get(node, "withClause")) {
		r = ts_error_set(TS_EXIT_USAGE, "a batch statement cannot start with WITH");
	} else if (top_level(&t, PG_QUERY__TOKEN__RETURNING, 0) >= 0) {
		r = ts_error_set(TS_EXIT_USAGE, "a batch statement cannot have RETURNING");
	} else if (!strcmp(st->kind, "InsertStmt")) {
		json_t *sel = json_object_get(json_object_get(node, "selectStmt"), "SelectStmt");
		int at = top_level(&t, PG_QUERY__TOKEN__SELECT, 0), end;

		if (!sel || json_object_get(sel, "valuesLists") || at < 0) {
			r = ts_error_set(TS_EXIT_USAGE, "a batch INSERT takes its rows from a SELECT (INSERT INTO t ... SELECT ... WHERE NOT EXISTS ...)");
		} else if (top_level(&t, PG_QUERY__TOKEN__LIMIT, at) >= 0 ||
			   top_level(&t, PG_QUERY__TOKEN__FETCH, at) >= 0) {
			r = ts_error_set(TS_EXIT_USAGE, "the SELECT of a batch INSERT has a LIMIT already; twinstage adds one of N rows");
		} else {
			end = on_conflict(&t, at);
			if (end < 0)
				end = (int)len;
			strbuf_addf(&sb, "%.*s LIMIT %ld%s%s", end, sql, n, end < (int)len ? " " : "", sql + end);
			*count = xstrfmt("SELECT count(*) FROM (%.*s) AS twinstage_batch", end - at, sql + at);
		}
	} else {
		int where = top_level(&t, PG_QUERY__TOKEN__WHERE, 0);
		int other = top_level(&t, !strcmp(st->kind, "UpdateStmt") ? PG_QUERY__TOKEN__FROM
									   : PG_QUERY__TOKEN__USING, 0);

		if (where < 0 || !json_object_get(node, "whereClause")) {
			r = ts_error_set(TS_EXIT_USAGE, "a batch %s needs a WHERE that leaves out the rows already done",
					 !strcmp(st->kind, "UpdateStmt") ? "UPDATE" : "DELETE");
		} else if (other >= 0 && other < where && !strcmp(st->kind, "UpdateStmt")) {
			r = ts_error_set(TS_EXIT_USAGE, "a batch UPDATE reads one table: UPDATE ... FROM is not batched");
		} else if (other >= 0 && other < where) {
			r = ts_error_set(TS_EXIT_USAGE, "a batch DELETE reads one table: DELETE ... USING is not batched");
		} else {
			const char *cond = sql + where + strlen("WHERE");

			target(json_object_get(node, "relation"), &from, &ref);
			strbuf_addf(&sb, "%.*s WHERE (%s) AND %s.ctid = ANY (ARRAY(SELECT %s.ctid FROM %s WHERE %s LIMIT %ld))",
				    where, sql, cond, ref.buf, ref.buf, from.buf, cond, n);
			*count = xstrfmt("SELECT count(*) FROM %s WHERE %s", from.buf, cond);
		}
	}
	tokens_free(&t);
	free(sql);
	strbuf_release(&from);
	strbuf_release(&ref);
	if (r) {
		strbuf_release(&sb);
		return -1;
	}
	*out = strbuf_detach(&sb);
	return 0;
}

/* Folds one batch's facts into all's: each lock once, held as long as the longest. */
static void merge_facts(json_t *all, json_t *one)
{
	json_t *l, *m, *v;
	size_t i, j;

	json_array_foreach(json_object_get(one, "locks"), i, l) {
		json_t *same = NULL;

		json_array_foreach(json_object_get(all, "locks"), j, m)
			if (!strcmp(json_string_value(json_object_get(m, "relation")),
				    json_string_value(json_object_get(l, "relation"))) &&
			    !strcmp(json_string_value(json_object_get(m, "mode")),
				    json_string_value(json_object_get(l, "mode"))))
				same = m;
		if (!same) {
			json_array_append(json_object_get(all, "locks"), l);
		} else if (json_number_value(json_object_get(l, "held_ms")) >
			   json_number_value(json_object_get(same, "held_ms"))) {
			json_object_set(same, "held_ms", json_object_get(l, "held_ms"));
			json_object_set(same, "over_gate", json_object_get(l, "over_gate"));
		}
	}
	for (const char *const *key = (const char *const[]){ "rewrites", "scans", NULL }; *key; key++)
		json_array_foreach(json_object_get(one, *key), i, v) {
			int seen = 0;

			json_array_foreach(json_object_get(all, *key), j, m)
				seen |= json_equal(m, v);
			if (!seen)
				json_array_append(json_object_get(all, *key), v);
		}
}

/* Rows per second since t0. */
static double rate(long long rows, double t0)
{
	double s = (now_ms() - t0) / 1000.0;

	return s > 0 ? rows / s : 0.0;
}

static int ok(PGresult *res)
{
	return PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK;
}

PGresult *ts_batch_exec(PGconn *conn, const struct ts_stmt *st, struct ts_trace *trace,
			int verbose, json_t **facts)
{
	long n = st->batch;
	char *sql = NULL, *count = NULL;
	long long todo, rows = 0, batches = 0;
	double t0 = now_ms(), max_ms = 0, last_say = t0;
	int tty = isatty(2);
	PGresult *res;

	*facts = json_pack("{s:[], s:[], s:[]}", "locks", "rewrites", "scans");
	if (n <= 0 || ts_batch_rewrite(st, n, &sql, &count))
		return NULL;
	res = PQexec(conn, count);
	if (!ok(res)) {
		free(sql);
		free(count);
		return res;
	}
	todo = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	for (;;) {
		double b0 = now_ms(), ms;
		json_t *one = NULL;
		long long got;

		res = trace ? ts_trace_exec(trace, sql, 0, &one) : PQexec(conn, sql);
		ms = now_ms() - b0;
		if (one) {
			merge_facts(*facts, one);
			json_decref(one);
		}
		if (!ok(res))
			break;
		got = strtoll(PQcmdTuples(res), NULL, 10);
		if (!got)
			break;
		rows += got;
		batches++;
		if (ms > max_ms)
			max_ms = ms;
		if (rows > todo) {
			PQclear(res);
			res = NULL;
			ts_error_set(TS_EXIT_GATE, "the batch statement does not converge: %lld rows affected in %lld batches, but %lld matched at the start; its WHERE (or SELECT) must leave out the rows it has done",
				     rows, batches, todo);
			break;
		}
		if (verbose && (tty || now_ms() - last_say >= 5000)) {
			fprintf(stderr, "%s      batch %lld: %lld of %lld rows, %.0f rows/s%s", tty ? "\r" : "\n",
				batches, rows, todo, rate(rows, t0), tty ? "   " : "");
			last_say = now_ms();
		}
		PQclear(res);
		if (ts_interrupted) {
			res = NULL;
			ts_error_set(TS_EXIT_ENV, "interrupted");
			break;
		}
	}
	json_object_set_new(*facts, "batch",
			    json_pack("{s:I, s:I, s:I, s:f, s:f, s:f}", "size", (json_int_t)n,
				      "batches", (json_int_t)batches, "rows", (json_int_t)rows,
				      "ms", now_ms() - t0, "max_ms", max_ms, "rows_per_s", rate(rows, t0)));
	if (verbose)
		fprintf(stderr, "%s      %lld rows in %lld batch%s of %ld, %.0f rows/s, longest batch %.0f ms;",
			tty ? "\r" : "\n", rows, batches, batches == 1 ? "" : "es", n, rate(rows, t0), max_ms);
	free(sql);
	free(count);
	return res;
}
