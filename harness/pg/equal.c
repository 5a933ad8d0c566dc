/*
 * equal.c: tables compared row by row as both sides stream them.
 */
#include "pg/equal.h"
#include "core/error.h"
#include "core/strbuf.h"
#include "core/wrapper.h"
#include "pg/pg.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const char rels_sql[] =
	"SELECT n.nspname, c.relname, c.relkind,"
	" (SELECT json_agg(json_build_array(a.attname, format_type(a.atttypid, a.atttypmod),"
	"   t.typcollation <> 0) ORDER BY a.attnum)"
	"  FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid"
	"  WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),"
	" (SELECT json_agg(a.attname ORDER BY k.ord)"
	"  FROM pg_index i, unnest(i.indkey) WITH ORDINALITY k(attnum, ord)"
	"  JOIN pg_attribute a ON a.attnum = k.attnum"
	"  WHERE i.indrelid = c.oid AND i.indisprimary AND a.attrelid = c.oid)"
	" FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
	" WHERE c.relkind IN ('r', 'p', 'm') AND NOT c.relispartition"
	"  AND (c.relkind <> 'm' OR c.relispopulated)"
	"  AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
	"  AND n.nspname !~ '^pg_(toast|temp_)'"
	"  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass"
	"   AND d.objid = c.oid AND d.deptype = 'e')"
	" ORDER BY 1, 2";

static int rel_cmp(const void *a, const void *b)
{
	return strcmp(((const struct ts_rel *)a)->shown, ((const struct ts_rel *)b)->shown);
}

int ts_rels_read(PGconn *conn, const char *skip, struct ts_rels *out)
{
	PGresult *res = PQexec(conn, rels_sql);
	char *skipped = skip ? ts_pg_qualified(skip) : NULL;

	memset(out, 0, sizeof(*out));
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		char *e = ts_pg_result_error(res);

		ts_error_set(TS_EXIT_ENV, "could not list the tables of %s: %s", PQdb(conn), e);
		free(e);
		free(skipped);
		PQclear(res);
		return -1;
	}
	out->v = xcalloc((size_t)PQntuples(res) + 1, sizeof(*out->v));
	for (int i = 0; i < PQntuples(res); i++) {
		struct ts_rel *r = &out->v[out->n];
		json_t *cols = json_loads(PQgetvalue(res, i, 3), JSON_DECODE_ANY, NULL);
		json_t *key = json_loads(PQgetvalue(res, i, 4), JSON_DECODE_ANY, NULL);
		json_t *v;
		size_t j;

		r->shown = xstrfmt("%s.%s", PQgetvalue(res, i, 0), PQgetvalue(res, i, 1));
		if (skipped && !strcmp(r->shown, skipped)) {
			free(r->shown);
			memset(r, 0, sizeof(*r));
			json_decref(cols);
			json_decref(key);
			continue;
		}
		r->schema = xstrdup(PQgetvalue(res, i, 0));
		r->name = xstrdup(PQgetvalue(res, i, 1));
		r->kind = PQgetvalue(res, i, 2)[0];
		r->collatable = xcalloc(json_array_size(cols) + 1, sizeof(int));
		json_array_foreach(cols, j, v) {
			strvec_push(&r->cols, json_string_value(json_array_get(v, 0)));
			strvec_push(&r->types, json_string_value(json_array_get(v, 1)));
			r->collatable[j] = json_is_true(json_array_get(v, 2));
		}
		json_array_foreach(key, j, v)
			strvec_push(&r->key, json_string_value(v));
		json_decref(cols);
		json_decref(key);
		out->n++;
	}
	PQclear(res);
	free(skipped);
	if (out->n > 1)
		qsort(out->v, out->n, sizeof(*out->v), rel_cmp);
	return 0;
}

void ts_rels_free(struct ts_rels *rs)
{
	for (size_t i = 0; i < rs->n; i++) {
		struct ts_rel *r = &rs->v[i];

		free(r->shown);
		free(r->schema);
		free(r->name);
		strvec_clear(&r->cols);
		strvec_clear(&r->types);
		strvec_clear(&r->key);
		free(r->collatable);
	}
	free(rs->v);
	memset(rs, 0, sizeof(*rs));
}

const struct ts_rel *ts_rels_find(const struct ts_rels *rs, const char *name)
{
	char *full = ts_pg_qualified(name);
	struct ts_rel probe = { .shown = full };
	const struct ts_rel *r = bsearch(&probe, rs->v, rs->n, sizeof(*rs->v), rel_cmp);

	free(full);
	return r;
}

int ts_rel_col(const struct ts_rel *rel, const char *col)
{
	return strvec_find(&rel->cols, col);
}

/* One side of a comparison: its COPY query, built from the column mapping. */
static char *copy_sql(PGconn *conn, const struct ts_rel *rel, const char *const *cols,
		      const struct ts_rel *typed_as, const char *const *typed_cols,
		      const int *key, size_t n_key, size_t n)
{
	struct strbuf sb = STRBUF_INIT, order = STRBUF_INIT;
	char *schema = ts_pg_ident(conn, rel->schema), *name = ts_pg_ident(conn, rel->name);
	char **expr = xcalloc(n, sizeof(*expr));

	for (size_t i = 0; i < n; i++) {
		char *q = ts_pg_ident(conn, cols[i]);
		int mine = ts_rel_col(rel, cols[i]), theirs = ts_rel_col(typed_as, typed_cols[i]);
		const char *type = typed_as->types.v[theirs];

		/* read as the reference side's type, so that equal values print alike */
		if (rel != typed_as && strcmp(rel->types.v[mine], type))
			expr[i] = xstrfmt("%s::%s", q, type);
		else
			expr[i] = xstrdup(q);
		free(q);
		if (!typed_as->collatable[theirs])
			continue;
		q = expr[i];
		expr[i] = xstrfmt("%s COLLATE \"C\"", q);
		free(q);
	}
	strbuf_addstr(&sb, "COPY (SELECT ");
	for (size_t i = 0; i < n; i++) {
		/* COLLATE does not change the text COPY writes */
		strbuf_addf(&sb, "%s%s", i ? ", " : "", expr[i]);
	}
	strbuf_addf(&sb, " FROM %s.%s ORDER BY ", schema, name);
	if (n_key) {
		for (size_t i = 0; i < n_key; i++)
			strbuf_addf(&order, "%s%s", i ? ", " : "", expr[key[i]]);
	} else {
		strbuf_addstr(&order, "ROW(");
		for (size_t i = 0; i < n; i++)
			strbuf_addf(&order, "%s%s", i ? ", " : "", expr[i]);
		strbuf_addstr(&order, ")::text COLLATE \"C\"");
	}
	strbuf_addf(&sb, "%s) TO STDOUT", order.buf);
	for (size_t i = 0; i < n; i++)
		free(expr[i]);
	free(expr);
	free(schema);
	free(name);
	strbuf_release(&order);
	return strbuf_detach(&sb);
}

/* The field i of a COPY text line (tab separated, escapes kept). */
static char *field(const char *line, size_t len, size_t i)
{
	const char *p = line, *end = line + len;
	size_t n;

	while (i-- && p < end) {
		const char *t = memchr(p, '\t', (size_t)(end - p));

		p = t ? t + 1 : end;
	}
	n = strcspn(p, "\t\n");
	if (p + n > end)
		n = (size_t)(end - p);
	if (n == 2 && !strncmp(p, "\\N", 2))
		return xstrdup("NULL");
	if (n > 60)
		return xstrfmt("%.57s...", p);
	return xstrndup(p, n);
}

static char *show_row(const char *line, size_t len, const char *const *cols, size_t n)
{
	struct strbuf sb = STRBUF_INIT;

	for (size_t i = 0; i < n && sb.len < 240; i++) {
		char *f = field(line, len, i);

		strbuf_addf(&sb, "%s%s=%s", i ? ", " : "", cols[i], f);
		free(f);
	}
	return strbuf_detach(&sb);
}

static char *show_key(const char *line, size_t len, const char *const *cols, const int *key,
		      size_t n_key)
{
	struct strbuf sb = STRBUF_INIT;

	for (size_t i = 0; i < n_key; i++) {
		char *f = field(line, len, (size_t)key[i]);

		strbuf_addf(&sb, "%s%s=%s", i ? ", " : "", cols[key[i]], f);
		free(f);
	}
	return strbuf_detach(&sb);
}

/* Sends the COPY and waits for it to start; -1 and an error naming the table. */
static int copy_start(PGconn *conn, const char *sql, const struct ts_rel *rel)
{
	PGresult *res;
	int r = 0;

	if (!PQsendQuery(conn, sql))
		return ts_error_set(TS_EXIT_ENV, "could not read table %s: %s", rel->shown,
				    PQerrorMessage(conn));
	res = PQgetResult(conn);
	if (PQresultStatus(res) != PGRES_COPY_OUT) {
		char *e = ts_pg_result_error(res);

		r = ts_error_set(TS_EXIT_ENV, "could not read table %s on %s: %s", rel->shown,
				 PQdb(conn), e);
		free(e);
		PQclear(res);
		while ((res = PQgetResult(conn)))
			PQclear(res);
		return r;
	}
	PQclear(res);
	return 0;
}

/* Stops a COPY still streaming, and reads what is left of it. */
static void copy_abort(PGconn *conn)
{
	PGcancel *cancel = PQgetCancel(conn);
	char errbuf[256], *buf;

	if (cancel) {
		PQcancel(cancel, errbuf, sizeof(errbuf));
		PQfreeCancel(cancel);
	}
	while (PQgetCopyData(conn, &buf, 0) >= 0)
		PQfreemem(buf);
}

/* After the last row: the COPY's own outcome. */
static int copy_end(PGconn *conn, const struct ts_rel *rel, int r)
{
	PGresult *res;

	while ((res = PQgetResult(conn))) {
		if (!r && PQresultStatus(res) != PGRES_COMMAND_OK) {
			char *e = ts_pg_result_error(res);

			r = ts_error_set(TS_EXIT_ENV, "could not read table %s: %s", rel->shown, e);
			free(e);
		}
		PQclear(res);
	}
	return r;
}

/* How two COPY streams compared. */
struct streams {
	long long msgs[2];	/* messages of each */
	long long at;		/* the first that differs, -1: none */
	char *line[2];		/* those two (NULL: that side had ended) */
	int len[2];
};

/*
 * Runs sql_a on a and sql_b on b at once and compares what they stream,
 * message by message (a row each), keeping only the first difference.
 * stop_at_diff: stop reading there (the caller will look again).
 */
static int stream_compare(PGconn *conn_a, const struct ts_rel *a, const char *sql_a,
			  PGconn *conn_b, const struct ts_rel *b, const char *sql_b,
			  int stop_at_diff, struct streams *st)
{
	int started = 0, r = 0, done_a = 0, done_b = 0;

	memset(st, 0, sizeof(*st));
	st->at = -1;
	/* both queries run before either is read: the two servers work at once */
	if (copy_start(conn_a, sql_a, a))
		return -1;
	started = 1;
	if (copy_start(conn_b, sql_b, b))
		r = -1;
	else
		started = 2;
	while (started == 2 && !(done_a && done_b)) {
		char *la = NULL, *lb = NULL;
		int na = done_a ? -1 : PQgetCopyData(conn_a, &la, 0);
		int nb = done_b ? -1 : PQgetCopyData(conn_b, &lb, 0);

		if (na == -2 || nb == -2) {
			r = ts_error_set(TS_EXIT_ENV, "could not read table %s: %s", a->shown,
					 PQerrorMessage(na == -2 ? conn_a : conn_b));
			PQfreemem(la);
			PQfreemem(lb);
			break;
		}
		done_a |= na < 0;
		done_b |= nb < 0;
		if (st->at < 0 && (na >= 0 || nb >= 0) && (na != nb || memcmp(la, lb, (size_t)na))) {
			st->at = st->msgs[na >= 0 ? 0 : 1];
			st->line[0] = la;
			st->line[1] = lb;
			st->len[0] = na;
			st->len[1] = nb;
			la = lb = NULL;
		}
		st->msgs[0] += na >= 0;
		st->msgs[1] += nb >= 0;
		PQfreemem(la);
		PQfreemem(lb);
		if (st->at >= 0 && stop_at_diff)
			break;
	}
	if (started >= 1) {
		if (!done_a)
			copy_abort(conn_a);
		r = copy_end(conn_a, a, r);
	}
	if (started == 2) {
		if (!done_b)
			copy_abort(conn_b);
		r = copy_end(conn_b, b, r);
	}
	return r;
}

static void streams_free(struct streams *st)
{
	PQfreemem(st->line[0]);
	PQfreemem(st->line[1]);
}

/*
 * The fast path, for two tables of the same shape: each read whole in its
 * physical order, in binary. A physical clone keeps that order, and so
 * does a restore of a dump (it loads rows in the order they were dumped),
 * so equal tables stream identical bytes and are known equal without a
 * sort or an index scan. 1: identical; 0: not known (look in key order).
 */
static int same_stream(PGconn *conn_a, const struct ts_rel *a, PGconn *conn_b,
		       const struct ts_rel *b, long long *rows)
{
	char *sa = ts_pg_ident(conn_a, a->schema), *na = ts_pg_ident(conn_a, a->name);
	char *sb = ts_pg_ident(conn_b, b->schema), *nb = ts_pg_ident(conn_b, b->name);
	char *qa = xstrfmt("COPY %s.%s TO STDOUT (FORMAT binary)", sa, na);
	char *qb = xstrfmt("COPY %s.%s TO STDOUT (FORMAT binary)", sb, nb);
	struct streams st;
	int same;

	same = !stream_compare(conn_a, a, qa, conn_b, b, qb, 1, &st) && st.at < 0;
	/* a type with no binary form is an error here, not a difference */
	ts_error_clear();
	if (same)
		*rows = st.msgs[0] > 1 ? st.msgs[0] - 1 : 0;	/* the trailer is a message of its own */
	streams_free(&st);
	free(qa);
	free(qb);
	free(sa);
	free(na);
	free(sb);
	free(nb);
	return same;
}

int ts_table_compare(PGconn *conn_a, const struct ts_rel *a, PGconn *conn_b,
		     const struct ts_rel *b, const char *const *cols_a,
		     const char *const *cols_b, size_t n, struct ts_cmp *out)
{
	const char *const *ca = cols_a ? cols_a : (const char *const *)a->cols.v;
	const char *const *cb = cols_b ? cols_b : ca;
	int *key = xcalloc(a->key.nr + 1, sizeof(*key));
	size_t n_key = 0;
	char *sql_a, *sql_b;
	struct streams st;
	long long rows;
	int r;

	memset(out, 0, sizeof(*out));
	out->at = -1;
	if (!cols_a)
		n = a->cols.nr;
	/* a's primary key, when all of it is read */
	for (size_t i = 0; i < a->key.nr; i++) {
		for (size_t j = 0; j < n; j++)
			if (!strcmp(ca[j], a->key.v[i]))
				key[n_key++] = (int)j;
		if (n_key != i + 1) {
			n_key = 0;
			break;
		}
	}
	for (size_t i = 0; i < n; i++)
		if (ts_rel_col(a, ca[i]) < 0 || ts_rel_col(b, cb[i]) < 0) {
			const struct ts_rel *t = ts_rel_col(a, ca[i]) < 0 ? a : b;

			free(key);
			return ts_error_set(TS_EXIT_USAGE, "table %s has no column \"%s\"", t->shown,
					    t == a ? ca[i] : cb[i]);
		}
	if (!cols_a && a->cols.nr == b->cols.nr && same_stream(conn_a, a, conn_b, b, &rows)) {
		out->rows[0] = out->rows[1] = rows;
		free(key);
		return 0;
	}
	sql_a = copy_sql(conn_a, a, ca, a, ca, key, n_key, n);
	sql_b = copy_sql(conn_b, b, cb, a, ca, key, n_key, n);
	r = stream_compare(conn_a, a, sql_a, conn_b, b, sql_b, 0, &st);
	if (!r) {
		out->rows[0] = st.msgs[0];
		out->rows[1] = st.msgs[1];
		out->at = st.at;
	}
	if (!r && st.at >= 0) {
		int ia = st.line[0] != NULL;

		out->key = n_key ? show_key(ia ? st.line[0] : st.line[1], (size_t)st.len[!ia],
					    ia ? ca : cb, key, n_key)
				 : xstrfmt("row %lld", st.at + 1);
		out->row[0] = ia ? show_row(st.line[0], (size_t)st.len[0], ca, n) : NULL;
		out->row[1] = st.line[1] ? show_row(st.line[1], (size_t)st.len[1], cb, n) : NULL;
	}
	streams_free(&st);
	free(sql_a);
	free(sql_b);
	free(key);
	return r;
}

void ts_cmp_free(struct ts_cmp *c)
{
	free(c->key);
	free(c->row[0]);
	free(c->row[1]);
	memset(c, 0, sizeof(*c));
}
