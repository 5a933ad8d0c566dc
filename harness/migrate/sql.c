/*
 * sql.c: statements split and classified from libpg_query's parse tree
 * (as JSON, read with jansson), and positions in the text. See sql.h.
 */
#include "migrate/sql.h"
#include "core/error.h"
#include "core/strbuf.h"
#include "core/strvec.h"
#include "core/wrapper.h"

#include <ctype.h>
#include <jansson.h>
#include <pg_query.h>
#include <stdlib.h>
#include <string.h>

int ts_line_at(const char *text, size_t offset, int first_line)
{
	int line = first_line;

	for (size_t i = 0; i < offset && text[i]; i++)
		if (text[i] == '\n')
			line++;
	return line;
}

int ts_col_at(const char *text, size_t offset)
{
	size_t i = offset;

	while (i > 0 && text[i - 1] != '\n')
		i--;
	return (int)(offset - i) + 1;
}

size_t ts_skip_comments(const char *s)
{
	size_t i = 0;

	for (;;) {
		while (s[i] && isspace((unsigned char)s[i]))
			i++;
		if (s[i] == '-' && s[i + 1] == '-') {
			while (s[i] && s[i] != '\n')
				i++;
		} else if (s[i] == '/' && s[i + 1] == '*') {
			int depth = 0;

			do {
				if (s[i] == '/' && s[i + 1] == '*') {
					depth++;
					i += 2;
				} else if (s[i] == '*' && s[i + 1] == '/') {
					depth--;
					i += 2;
				} else {
					i++;
				}
			} while (s[i] && depth > 0);
		} else {
			return i;
		}
	}
}

static int is_true(json_t *o, const char *key)
{
	return json_is_true(json_object_get(o, key));
}

static void classify_stmt(struct ts_stmt *st, json_t *stmt)
{
	const char *kind;
	json_t *node;

	json_object_foreach(stmt, kind, node) {
		st->kind = xstrdup(kind);
		if (!strcmp(kind, "TransactionStmt"))
			st->transaction_control = 1;
		else if (!strcmp(kind, "IndexStmt") || !strcmp(kind, "DropStmt"))
			st->no_transaction = is_true(node, "concurrent");
		else if (!strcmp(kind, "ReindexStmt")) {
			size_t i;
			json_t *p;

			json_array_foreach(json_object_get(node, "params"), i, p) {
				const char *n = json_string_value(json_object_get(
					json_object_get(p, "DefElem"), "defname"));

				if (n && !strcmp(n, "concurrently"))
					st->no_transaction = 1;
			}
		} else if (!strcmp(kind, "VacuumStmt") || !strcmp(kind, "CreatedbStmt") ||
			   !strcmp(kind, "DropdbStmt") || !strcmp(kind, "AlterSystemStmt") ||
			   !strcmp(kind, "CreateTableSpaceStmt") || !strcmp(kind, "DropTableSpaceStmt"))
			st->no_transaction = 1;
		break;
	}
}

int ts_stmts_parse(const char *file, const char *sql, int first_line,
		   struct ts_stmt **out, size_t *n)
{
	PgQueryParseResult pr = pg_query_parse(sql);
	json_error_t jerr;
	json_t *tree, *stmts, *item;
	size_t i, len = strlen(sql);

	*out = NULL;
	*n = 0;
	if (pr.error) {
		int pos = pr.error->cursorpos > 0 ? pr.error->cursorpos - 1 : 0;

		ts_error_set(TS_EXIT_GATE, "%s:%d: %s", file,
			     ts_line_at(sql, (size_t)pos, first_line), pr.error->message);
		pg_query_free_parse_result(pr);
		return -1;
	}
	tree = json_loads(pr.parse_tree, 0, &jerr);
	pg_query_free_parse_result(pr);
	if (!tree)
		return ts_error_set(TS_EXIT_GATE, "%s: could not read the parse tree: %s", file,
				    jerr.text);
	stmts = json_object_get(tree, "stmts");
	*out = xcalloc(json_array_size(stmts) + 1, sizeof(**out));
	/* lines counted on from the statement before: a file of 20,000 statements is read once */
	size_t seen = 0;
	int seen_line = first_line;

	json_array_foreach(stmts, i, item) {
		struct ts_stmt *st = &(*out)[*n];
		size_t loc = (size_t)json_integer_value(json_object_get(item, "stmt_location"));
		size_t slen = (size_t)json_integer_value(json_object_get(item, "stmt_len"));

		if (loc > len)
			loc = len;
		if (!slen || loc + slen > len)
			slen = len - loc;
		st->sql = xstrndup(sql + loc, slen);
		st->offset = loc;
		st->node = json_incref(json_object_get(item, "stmt"));
		if (loc >= seen) {
			seen_line = ts_line_at(sql + seen, loc - seen, seen_line);
			seen = loc;
		} else {
			seen_line = ts_line_at(sql, loc, first_line);
			seen = loc;
		}
		st->text_line = seen_line;
		st->line = ts_line_at(st->sql, ts_skip_comments(st->sql), st->text_line);
		classify_stmt(st, json_object_get(item, "stmt"));
		(*n)++;
		if ((st->batch = ts_batch_size(file, st)) < 0) {
			json_decref(tree);
			ts_stmts_free(*out, *n);
			*out = NULL;
			*n = 0;
			return -1;
		}
	}
	json_decref(tree);
	return 0;
}

void ts_sql_names(struct json_t *node, struct strvec *out)
{
	static const char *const keys[] = { "relname", "colname", "name", "newname", "subname",
					     "idxname", "conname", "sval", NULL };
	const char *key;
	json_t *v;
	size_t i;

	if (json_is_array(node)) {
		json_array_foreach(node, i, v)
			ts_sql_names(v, out);
		return;
	}
	json_object_foreach(node, key, v) {
		if (json_is_string(v)) {
			for (i = 0; keys[i]; i++)
				if (!strcmp(key, keys[i]) && strvec_find(out, json_string_value(v)) < 0)
					strvec_push(out, json_string_value(v));
		} else {
			ts_sql_names(v, out);
		}
	}
}

void ts_sql_names_text(const char *sql, struct strvec *out)
{
	PgQueryParseResult pr = pg_query_parse(sql);
	json_t *tree = pr.error ? NULL : json_loads(pr.parse_tree, 0, NULL);

	pg_query_free_parse_result(pr);
	if (tree)
		ts_sql_names(tree, out);
	json_decref(tree);
}

const char *ts_sql_sets(struct json_t *node)
{
	json_t *set = json_object_get(node, "VariableSetStmt");

	return set ? json_string_value(json_object_get(set, "name")) : NULL;
}

void ts_stmts_free(struct ts_stmt *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].sql);
		free(v[i].kind);
		json_decref(v[i].node);
	}
	free(v);
}

long ts_batch_size(const char *file, const struct ts_stmt *st)
{
	size_t head = ts_skip_comments(st->sql);
	const char *p = st->sql, *end = st->sql + head;
	long n = 0;

	while ((p = strstr(p, TS_BATCH_MARK)) && p < end) {
		const char *a = p + strlen(TS_BATCH_MARK);
		char *e;

		n = strtol(a, &e, 10);
		while (*e == ' ' || *e == '\t' || *e == '\r')
			e++;
		if (a == e || n <= 0 || (*e && *e != '\n'))
			return ts_error_set(TS_EXIT_USAGE, "%s:%d: invalid annotation \"%.*s\" (expected \"-- " TS_BATCH_MARK " N\", N rows per batch)",
					    file, ts_line_at(st->sql, (size_t)(p - st->sql), st->text_line),
					    (int)strcspn(p, "\n"), p);
		p = a;
	}
	if (n && strcmp(st->kind, "UpdateStmt") && strcmp(st->kind, "DeleteStmt") &&
	    strcmp(st->kind, "InsertStmt"))
		return ts_error_set(TS_EXIT_USAGE,
				    "%s:%d: only UPDATE, DELETE and INSERT ... SELECT run in batches, not %s",
				    file, st->line, st->kind);
	return n;
}

/* The last name of a RangeVar ({"relname": ...}), or NULL. */
static const char *relname(json_t *rv)
{
	return json_string_value(json_object_get(json_object_get(rv, "RangeVar") ?: rv, "relname"));
}

/* The last part of a qualified name list ([{"String": {"sval": "s"}}, ...]), or NULL. */
static const char *last_name(json_t *list)
{
	json_t *last = json_array_get(list, json_array_size(list) ? json_array_size(list) - 1 : 0);

	return json_string_value(json_object_get(json_object_get(last, "String"), "sval"));
}

static void act(struct strvec *out, const char *what, const char *on, const char *name)
{
	if (on && name)
		strvec_pushf(out, "%s:%s:%s", what, on, name);
	else if (on || name)
		strvec_pushf(out, "%s:%s", what, on ? on : name);
}

void ts_sql_acts(struct json_t *node, struct strvec *out)
{
	const char *kind;
	json_t *body, *it;
	size_t i;

	json_object_foreach(node, kind, body) {
		const char *rel = relname(json_object_get(body, "relation"));

		if (!strcmp(kind, "AlterTableStmt")) {
			json_array_foreach(json_object_get(body, "cmds"), i, it) {
				json_t *cmd = json_object_get(it, "AlterTableCmd");
				const char *sub = json_string_value(json_object_get(cmd, "subtype")) ?: "";
				const char *name = json_string_value(json_object_get(cmd, "name"));
				json_t *def = json_object_get(cmd, "def");

				if (!strcmp(sub, "AT_AddColumn"))
					act(out, "add-column", rel,
					    json_string_value(json_object_get(json_object_get(def, "ColumnDef"), "colname")));
				else if (!strcmp(sub, "AT_DropColumn"))
					act(out, "drop-column", rel, name);
				else if (!strcmp(sub, "AT_AlterColumnType") || !strcmp(sub, "AT_SetNotNull") ||
					 !strcmp(sub, "AT_DropNotNull") || !strcmp(sub, "AT_ColumnDefault") ||
					 !strcmp(sub, "AT_AddIdentity") || !strcmp(sub, "AT_DropIdentity"))
					act(out, "alter-column", rel, name);
				else if (!strcmp(sub, "AT_AddConstraint"))
					act(out, "add-constraint", rel,
					    json_string_value(json_object_get(json_object_get(def, "Constraint"), "conname")));
				else if (!strcmp(sub, "AT_DropConstraint") || !strcmp(sub, "AT_ValidateConstraint"))
					act(out, !strcmp(sub, "AT_DropConstraint") ? "drop-constraint" : "validate-constraint",
					    rel, name);
				else if (!strcmp(sub, "AT_EnableTrig") || !strcmp(sub, "AT_DisableTrig"))
					act(out, "alter-trigger", rel, name);
				else
					act(out, "alter-table", rel, NULL);
			}
		} else if (!strcmp(kind, "RenameStmt")) {
			const char *type = json_string_value(json_object_get(body, "renameType")) ?: "";
			const char *sub = json_string_value(json_object_get(body, "subname"));
			const char *to = json_string_value(json_object_get(body, "newname"));

			if (!strcmp(type, "OBJECT_COLUMN"))
				strvec_pushf(out, "rename-column:%s:%s:%s", rel ?: "", sub ?: "", to ?: "");
			else if (!strcmp(type, "OBJECT_TABLE") || !strcmp(type, "OBJECT_VIEW") ||
				 !strcmp(type, "OBJECT_INDEX") || !strcmp(type, "OBJECT_MATVIEW") ||
				 !strcmp(type, "OBJECT_SEQUENCE"))
				strvec_pushf(out, "rename:%s:%s", rel ?: "", to ?: "");
			else if (!strcmp(type, "OBJECT_TABCONSTRAINT"))
				strvec_pushf(out, "rename-constraint:%s:%s:%s", rel ?: "", sub ?: "", to ?: "");
		} else if (!strcmp(kind, "UpdateStmt")) {
			struct strbuf cols = STRBUF_INIT;

			json_array_foreach(json_object_get(body, "targetList"), i, it) {
				const char *col = json_string_value(json_object_get(json_object_get(it, "ResTarget"), "name"));

				if (col)
					strbuf_addf(&cols, "%s%s", cols.len ? "," : "", col);
			}
			act(out, "update", rel, cols.buf);
			strbuf_release(&cols);
		} else if (!strcmp(kind, "InsertStmt") || !strcmp(kind, "DeleteStmt")) {
			act(out, !strcmp(kind, "InsertStmt") ? "insert" : "delete", rel, NULL);
		} else if (!strcmp(kind, "CreateStmt")) {
			act(out, "create-table", rel, NULL);
		} else if (!strcmp(kind, "CreateTableAsStmt")) {
			act(out, "create-table",
			    relname(json_object_get(json_object_get(json_object_get(body, "into"), "IntoClause"), "rel")),
			    NULL);
		} else if (!strcmp(kind, "IndexStmt")) {
			act(out, "create-index", rel, json_string_value(json_object_get(body, "idxname")));
		} else if (!strcmp(kind, "ViewStmt")) {
			act(out, "create-view", relname(json_object_get(body, "view")), NULL);
		} else if (!strcmp(kind, "CreateFunctionStmt")) {
			act(out, "create-function", NULL, last_name(json_object_get(body, "funcname")));
		} else if (!strcmp(kind, "CreateTrigStmt")) {
			act(out, "create-trigger", rel, json_string_value(json_object_get(body, "trigname")));
		} else if (!strcmp(kind, "CreateSeqStmt") || !strcmp(kind, "AlterSeqStmt")) {
			act(out, "sequence", relname(json_object_get(body, "sequence")), NULL);
		} else if (!strcmp(kind, "CreateEnumStmt") || !strcmp(kind, "AlterEnumStmt")) {
			act(out, "type", NULL, last_name(json_object_get(body, "typeName")));
		} else if (!strcmp(kind, "CreateExtensionStmt")) {
			act(out, "extension", NULL, json_string_value(json_object_get(body, "extname")));
		} else if (!strcmp(kind, "DropStmt")) {
			const char *type = json_string_value(json_object_get(body, "removeType")) ?: "";
			const char *what = !strcmp(type, "OBJECT_TABLE") ? "drop-table" :
					   !strcmp(type, "OBJECT_INDEX") ? "drop-index" :
					   !strcmp(type, "OBJECT_VIEW") || !strcmp(type, "OBJECT_MATVIEW") ? "drop-view" :
					   !strcmp(type, "OBJECT_FUNCTION") || !strcmp(type, "OBJECT_PROCEDURE") ? "drop-function" :
					   !strcmp(type, "OBJECT_TRIGGER") ? "drop-trigger" :
					   !strcmp(type, "OBJECT_SEQUENCE") ? "sequence" :
					   !strcmp(type, "OBJECT_TYPE") ? "type" :
					   !strcmp(type, "OBJECT_EXTENSION") ? "extension" : NULL;

			if (!what)
				continue;
			json_array_foreach(json_object_get(body, "objects"), i, it) {
				json_t *list = json_object_get(json_object_get(it, "List"), "items") ?: it;
				const char *name = json_is_array(list) ? last_name(list) :
						   json_string_value(json_object_get(json_object_get(it, "String"), "sval"));

				if (json_object_get(it, "ObjectWithArgs"))
					name = last_name(json_object_get(json_object_get(it, "ObjectWithArgs"), "objname"));
				if (!strcmp(what, "drop-trigger") && json_is_array(list) && json_array_size(list) >= 2)
					strvec_pushf(out, "drop-trigger:%s:%s",
						     json_string_value(json_object_get(json_object_get(
							     json_array_get(list, json_array_size(list) - 2), "String"), "sval")) ?: "",
						     name ?: "");
				else
					act(out, what, NULL, name);
			}
		}
	}
}
