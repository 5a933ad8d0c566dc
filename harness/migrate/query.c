/*
 * query.c: one application statement read by libpg_query. See query.h.
 */
#include "migrate/query.h"
#include "core/error.h"
#include "core/strbuf.h"
#include "core/strvec.h"
#include "core/wrapper.h"

#include <jansson.h>
#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The highest ParamRef number anywhere in the tree. */
static int max_param(json_t *node)
{
	int m = 0;

	if (json_is_object(node)) {
		const char *k;
		json_t *v;

		json_object_foreach(node, k, v) {
			int p;

			if (!strcmp(k, "ParamRef") && json_is_object(v)) {
				p = (int)json_integer_value(json_object_get(v, "number"));
				if (p > m)
					m = p;
			}
			p = max_param(v);
			if (p > m)
				m = p;
		}
	} else if (json_is_array(node)) {
		size_t i;
		json_t *v;

		json_array_foreach(node, i, v) {
			int p = max_param(v);

			if (p > m)
				m = p;
		}
	}
	return m;
}

/*
 * Counts the relations a tree reads and the functions it calls, and those
 * of them that are the system's (pg_catalog, information_schema, pg_*).
 */
static void relations(json_t *node, size_t *all, size_t *catalogs, size_t *funcs, size_t *system_funcs)
{
	const char *k;
	json_t *v;
	size_t i;

	if (json_is_object(node)) {
		json_object_foreach(node, k, v) {
			if (!strcmp(k, "RangeVar") && json_is_object(v)) {
				const char *schema = json_string_value(json_object_get(v, "schemaname"));
				const char *rel = json_string_value(json_object_get(v, "relname"));

				(*all)++;
				/* pg_stat_statements lives in the schema it was created in */
				if ((schema && (!strcmp(schema, "pg_catalog") || !strcmp(schema, "information_schema"))) ||
				    (!schema && rel && !strncmp(rel, "pg_", 3)) || (rel && !strncmp(rel, "pg_stat_statements", 18)))
					(*catalogs)++;
			} else if (!strcmp(k, "FuncCall") && json_is_object(v)) {
				json_t *names = json_object_get(v, "funcname");
				const char *first = json_string_value(json_object_get(json_object_get(json_array_get(names, 0),
												       "String"), "sval"));

				(*funcs)++;
				if (first && (!strcmp(first, "pg_catalog") || !strncmp(first, "pg_", 3)))
					(*system_funcs)++;
			}
			relations(v, all, catalogs, funcs, system_funcs);
		}
	} else if (json_is_array(node)) {
		json_array_foreach(node, i, v)
			relations(v, all, catalogs, funcs, system_funcs);
	}
}

/* The parse tree of sql, or NULL with the parser's message. */
static json_t *parse(const char *sql)
{
	PgQueryParseResult pr = pg_query_parse(sql);
	json_t *tree = NULL;

	if (pr.error)
		ts_error_set(TS_EXIT_USAGE, "%s", pr.error->message);
	else if (!(tree = json_loads(pr.parse_tree, 0, NULL)))
		ts_error_set(TS_EXIT_USAGE, "the parse tree could not be read");
	pg_query_free_parse_result(pr);
	return tree;
}

static json_t *first_stmt(json_t *tree)
{
	return json_object_get(json_array_get(json_object_get(tree, "stmts"), 0), "stmt");
}

int ts_query_shape(const char *sql, struct ts_query_shape *out)
{
	static const char *const queries[] = { "SelectStmt", "InsertStmt", "UpdateStmt", "DeleteStmt",
					       "MergeStmt", NULL };
	json_t *tree = parse(sql), *stmt, *v;
	const char *kind;

	memset(out, 0, sizeof(*out));
	if (!tree)
		return -1;
	stmt = first_stmt(tree);
	if (!stmt || !(kind = json_object_iter_key(json_object_iter(stmt)))) {
		json_decref(tree);
		return ts_error_set(TS_EXIT_USAGE, "no statement");
	}
	snprintf(out->kind, sizeof(out->kind), "%s", kind);
	v = json_object_get(stmt, kind);
	for (int i = 0; queries[i]; i++)
		out->query |= !strcmp(kind, queries[i]);
	out->ordered = !strcmp(kind, "SelectStmt") && json_array_size(json_object_get(v, "sortClause")) > 0;
	out->params = max_param(stmt);
	{
		size_t all = 0, catalogs = 0, funcs = 0, system_funcs = 0;

		/* reads only catalogs; or reads nothing and calls only the system's functions */
		relations(stmt, &all, &catalogs, &funcs, &system_funcs);
		out->catalog_only = all ? all == catalogs : funcs && funcs == system_funcs;
	}
	json_decref(tree);
	return 0;
}

/* A constant: A_Const, a cast of one, or minus one. */
static int is_constant(json_t *n)
{
	json_t *v;

	if (json_object_get(n, "A_Const"))
		return 1;
	if ((v = json_object_get(n, "TypeCast")))
		return is_constant(json_object_get(v, "arg"));
	if ((v = json_object_get(n, "A_Expr")) && !json_object_get(v, "lexpr") &&
	    !strcmp(json_string_value(json_object_get(json_object_get(json_array_get(json_object_get(v, "name"), 0),
								      "String"), "sval")) ?: "", "-"))
		return is_constant(json_object_get(v, "rexpr"));
	return 0;
}

int ts_query_constants(const char *list, size_t *n)
{
	char *sql = xstrfmt("SELECT %s", list);
	json_t *tree = parse(sql), *stmt, *targets, *t;
	size_t i;

	free(sql);
	*n = 0;
	if (!tree)
		return ts_error_prefix("@params \"%s\" is not a list of constants", list);
	stmt = json_object_get(first_stmt(tree), "SelectStmt");
	targets = json_object_get(stmt, "targetList");
	if (json_array_size(json_object_get(tree, "stmts")) != 1 || !stmt || json_object_size(stmt) > 3 ||
	    json_object_get(stmt, "fromClause") || json_object_get(stmt, "whereClause")) {
		json_decref(tree);
		return ts_error_set(TS_EXIT_USAGE, "@params \"%s\" is not a list of constants", list);
	}
	json_array_foreach(targets, i, t) {
		json_t *rt = json_object_get(t, "ResTarget");

		if (json_object_get(rt, "name") || !is_constant(json_object_get(rt, "val"))) {
			json_decref(tree);
			return ts_error_set(TS_EXIT_USAGE,
					    "@params \"%s\": value %zu is not a constant (a quoted string, a number, true, false or NULL)",
					    list, i + 1);
		}
	}
	*n = json_array_size(targets);
	json_decref(tree);
	return 0;
}

int ts_query_fingerprint(const char *sql, char out[17])
{
	PgQueryFingerprintResult f = pg_query_fingerprint(sql);
	int r = f.error ? -1 : 0;

	if (!r)
		snprintf(out, 17, "%s", f.fingerprint_str);
	pg_query_free_fingerprint_result(f);
	return r;
}

/* Byte offset where the token starting at or after `at` ends: a '-' and the number it negates count as one. */
static long token_end(const PgQuery__ScanResult *scan, size_t at, const char *sql)
{
	for (size_t i = 0; i < scan->n_tokens; i++) {
		const PgQuery__ScanToken *t = scan->tokens[i];

		if ((size_t)t->start < at)
			continue;
		if ((size_t)t->start != at)
			return -1;
		if (sql[at] == '-' && t->end - t->start == 1 && i + 1 < scan->n_tokens)
			return scan->tokens[i + 1]->end;
		/* a typed literal such as interval '1 day' is replaced from its string */
		return t->end;
	}
	return -1;
}

int ts_query_normalize(const char *sql, char **normalized, struct strvec *constants)
{
	PgQueryNormalizeResult nr = pg_query_normalize(sql);
	PgQueryScanResult sr;
	PgQuery__ScanResult *scan = NULL;
	char **found = NULL;	/* by $n, counted from the first new one */
	size_t n_found = 0, cap = 0;
	const char *o = sql, *m;
	int r = 0, before = 0;
	struct ts_query_shape shape;

	if (nr.error) {
		pg_query_free_normalize_result(nr);
		return -1;
	}
	/* $n the statement had already are not constants of its own */
	if (!ts_query_shape(sql, &shape))
		before = shape.params;
	else
		ts_error_clear();
	sr = pg_query_scan(sql);
	if (!sr.error)
		scan = pg_query__scan_result__unpack(NULL, sr.pbuf.len, (void *)sr.pbuf.data);
	m = nr.normalized_query;
	/* the normalized text is the statement with each constant's token(s) replaced by $n (not in text order) */
	while (scan && *m && !r) {
		char *end;
		long k, e;
		size_t rest, at;

		if (*o == *m) {
			o++;
			m++;
			continue;
		}
		if (*m != '$' || !(m[1] >= '0' && m[1] <= '9')) {
			r = -1;
			break;
		}
		k = strtol(m + 1, &end, 10);
		e = token_end(scan, (size_t)(o - sql), sql);
		rest = strcspn(end, "$");
		if (k <= before || k > before + 10000 || e < 0 || strncmp(sql + e, end, rest > 32 ? 32 : rest)) {
			r = -1;
			break;
		}
		at = (size_t)(k - before - 1);
		if (at >= cap) {
			size_t grow = at + 16;

			found = xrealloc(found, grow * sizeof(*found));
			memset(found + cap, 0, (grow - cap) * sizeof(*found));
			cap = grow;
		}
		if (found[at]) {
			r = -1;
			break;
		}
		found[at] = xstrndup(o, (size_t)(sql + e - o));
		if (at + 1 > n_found)
			n_found = at + 1;
		o = sql + e;
		m = end;
	}
	if (!scan || *m || *o)
		r = -1;
	for (size_t i = 0; i < n_found && !r; i++)
		if (!found[i])
			r = -1;
	if (!r) {
		*normalized = xstrdup(nr.normalized_query);
		for (size_t i = 0; i < n_found; i++)
			strvec_push(constants, found[i]);
	}
	for (size_t i = 0; i < cap; i++)
		free(found[i]);
	free(found);
	if (scan)
		pg_query__scan_result__free_unpacked(scan, NULL);
	pg_query_free_scan_result(sr);
	pg_query_free_normalize_result(nr);
	return r;
}

int ts_query_log_params(const char *text, struct strvec *values)
{
	PgQueryScanResult sr = pg_query_scan(text);
	PgQuery__ScanResult *scan;
	int r = 0;
	size_t i = 0;

	if (sr.error) {
		pg_query_free_scan_result(sr);
		return -1;
	}
	scan = pg_query__scan_result__unpack(NULL, sr.pbuf.len, (void *)sr.pbuf.data);
	/* $n = value [, $n = value ...] */
	while (scan && i < scan->n_tokens && !r) {
		size_t from, to;

		if (i + 2 >= scan->n_tokens || scan->tokens[i]->token != PG_QUERY__TOKEN__PARAM ||
		    scan->tokens[i + 1]->token != PG_QUERY__TOKEN__ASCII_61 ||
		    atoi(text + scan->tokens[i]->start + 1) != (int)values->nr + 1) {
			r = -1;
			break;
		}
		from = i + 2;
		to = from;
		/* the value runs to a ',' that a $n follows */
		while (to + 1 < scan->n_tokens &&
		       !(scan->tokens[to + 1]->token == PG_QUERY__TOKEN__ASCII_44 && to + 2 < scan->n_tokens &&
			 scan->tokens[to + 2]->token == PG_QUERY__TOKEN__PARAM))
			to++;
		{
			char *v = xstrndup(text + scan->tokens[from]->start,
					   (size_t)(scan->tokens[to]->end - scan->tokens[from]->start));

			strvec_push(values, v);
			free(v);
		}
		i = to + 2;
	}
	if (!scan)
		r = -1;
	else
		pg_query__scan_result__free_unpacked(scan, NULL);
	pg_query_free_scan_result(sr);
	return r;
}
