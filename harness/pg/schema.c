/*
 * schema.c: one catalog query for the snapshot, a merge for the diff, and
 * the rules that say what each change means for the application that is
 * live now.
 */
#include "pg/schema.h"
#include "core/error.h"
#include "core/strbuf.h"
#include "core/wrapper.h"
#include "pg/pg.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/*
 * Everything in one statement, so the snapshot is consistent and costs one
 * round trip whatever the size of the schema. Constraints and indexes are
 * compared by what they mean: their columns by name (a column dropped and
 * added again by a way back has another position, and is the same
 * column), expressions and predicates as PostgreSQL deparses them. Objects that belong to an
 * extension are the extension's business and are left out; so is the
 * table named by $1, with all that hangs on it.
 */
static const char snapshot_sql[] =
"WITH ns AS (\n"
"  SELECT oid, nspname FROM pg_namespace\n"
"  WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND nspname !~ '^pg_(toast|temp)'),\n"
"rel AS (\n"
"  SELECT c.oid, c.relkind, c.relpersistence, ns.nspname || '.' || c.relname AS qname\n"
"  FROM pg_class c JOIN ns ON ns.oid = c.relnamespace\n"
"  WHERE ns.nspname || '.' || c.relname IS DISTINCT FROM $1\n"
"    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass\n"
"                    AND d.objid = c.oid AND d.deptype = 'e'))\n"
"SELECT 'table', qname, qname,\n"
"       json_build_object('relkind', relkind, 'persistence', relpersistence, 'oid', oid)::text\n"
"  FROM rel WHERE relkind IN ('r', 'p', 'f')\n"
"UNION ALL\n"
"SELECT CASE relkind WHEN 'v' THEN 'view' ELSE 'materialized view' END, qname, qname,\n"
"       json_build_object('definition', pg_get_viewdef(oid))::text\n"
"  FROM rel WHERE relkind IN ('v', 'm')\n"
"UNION ALL\n"
"SELECT 'column', r.qname || '.' || a.attname, r.qname,\n"
"       json_build_object('type', format_type(a.atttypid, a.atttypmod), 'notnull', a.attnotnull,\n"
"                         'default', pg_get_expr(d.adbin, d.adrelid), 'generated', a.attgenerated,\n"
"                         'identity', a.attidentity, 'position', a.attnum)::text\n"
"  FROM rel r JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped\n"
"  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum\n"
"  WHERE r.relkind IN ('r', 'p', 'f', 'v', 'm')\n"
"UNION ALL\n"
"SELECT 'constraint', r.qname || '.' || co.conname, r.qname,\n"
"       json_build_object('type', co.contype, 'validated', co.convalidated, 'def_oid', co.oid::int8,\n"
"         'raw', concat_ws(' ',\n"
"           (SELECT string_agg(quote_ident(a.attname), ',' ORDER BY k.i)\n"
"              FROM unnest(co.conkey) WITH ORDINALITY k(n, i)\n"
"              JOIN pg_attribute a ON a.attrelid = co.conrelid AND a.attnum = k.n),\n"
"           co.confrelid::regclass::text,\n"
"           (SELECT string_agg(quote_ident(a.attname), ',' ORDER BY k.i)\n"
"              FROM unnest(co.confkey) WITH ORDINALITY k(n, i)\n"
"              JOIN pg_attribute a ON a.attrelid = co.confrelid AND a.attnum = k.n),\n"
"           co.confupdtype, co.confdeltype, co.confmatchtype, co.condeferrable, co.condeferred,\n"
"           CASE WHEN co.conbin IS NOT NULL THEN pg_get_constraintdef(co.oid) END))::text\n"
"  FROM pg_constraint co JOIN rel r ON r.oid = co.conrelid\n"
"UNION ALL\n"
"SELECT 'index', i.qname, t.qname,\n"
"       json_build_object('valid', x.indisvalid, 'unique', x.indisunique, 'def_oid', x.indexrelid::int8,\n"
"         'raw', concat_ws(' ',\n"
"           (SELECT string_agg(coalesce(quote_ident(a.attname), '(expression)'), ',' ORDER BY k.i)\n"
"              FROM unnest(x.indkey::int2[]) WITH ORDINALITY k(n, i)\n"
"              LEFT JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.n),\n"
"           x.indclass::text, x.indoption::text, am.amname,\n"
"           CASE WHEN x.indexprs IS NOT NULL OR x.indpred IS NOT NULL\n"
"             THEN pg_get_indexdef(x.indexrelid) END))::text\n"
"  FROM pg_index x JOIN rel i ON i.oid = x.indexrelid JOIN rel t ON t.oid = x.indrelid\n"
"  JOIN pg_class ic ON ic.oid = x.indexrelid JOIN pg_am am ON am.oid = ic.relam\n"
"UNION ALL\n"
"SELECT 'trigger', r.qname || '.' || tg.tgname, r.qname,\n"
"       json_build_object('definition', pg_get_triggerdef(tg.oid), 'enabled', tg.tgenabled)::text\n"
"  FROM pg_trigger tg JOIN rel r ON r.oid = tg.tgrelid WHERE NOT tg.tgisinternal\n"
"UNION ALL\n"
"SELECT 'sequence', r.qname, NULL,\n"
"       json_build_object('type', format_type(s.seqtypid, NULL), 'increment', s.seqincrement,\n"
"                         'min', s.seqmin, 'max', s.seqmax, 'cycle', s.seqcycle)::text\n"
"  FROM pg_sequence s JOIN rel r ON r.oid = s.seqrelid\n"
"  WHERE NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass\n"
"                    AND d.objid = s.seqrelid AND d.deptype IN ('a', 'i')\n"
"                    AND d.refobjid NOT IN (SELECT oid FROM rel))\n"
"UNION ALL\n"
"SELECT CASE p.prokind WHEN 'p' THEN 'procedure' ELSE 'function' END,\n"
"       ns.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',\n"
"       NULL,\n"
"       json_build_object('returns', pg_get_function_result(p.oid), 'volatility', p.provolatile,\n"
"                         'body', md5(p.prosrc))::text\n"
"  FROM pg_proc p JOIN ns ON ns.oid = p.pronamespace\n"
"  WHERE NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass\n"
"                    AND d.objid = p.oid AND d.deptype = 'e')\n"
"UNION ALL\n"
"SELECT 'enum', ns.nspname || '.' || t.typname, NULL,\n"
"       json_build_object('labels', (SELECT json_agg(e.enumlabel ORDER BY e.enumsortorder)\n"
"                                    FROM pg_enum e WHERE e.enumtypid = t.oid))::text\n"
"  FROM pg_type t JOIN ns ON ns.oid = t.typnamespace\n"
"  WHERE t.typtype = 'e' AND NOT EXISTS (SELECT 1 FROM pg_depend d\n"
"        WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e')\n"
"UNION ALL\n"
"SELECT 'extension', extname, NULL, json_build_object('version', extversion)::text\n"
"  FROM pg_extension WHERE extname <> 'plpgsql'";

/* The attributes, parsed from the snapshot's text on first use. */
static json_t *A(const struct ts_schema_obj *o)
{
	struct ts_schema_obj *w = (struct ts_schema_obj *)o;

	if (!w->attrs)
		w->attrs = json_loads(w->text, 0, NULL);
	if (!w->attrs)
		w->attrs = json_object();
	return w->attrs;
}

static int obj_cmp(const void *pa, const void *pb)
{
	const struct ts_schema_obj *a = pa, *b = pb;
	int c = strcmp(a->kind, b->kind);

	return c ? c : strcmp(a->name, b->name);
}

/* Starts the snapshot query on conn, in its own REPEATABLE READ transaction. */
static int snapshot_send(PGconn *conn, const char *skip)
{
	char *qualified = skip ? ts_pg_qualified(skip) : NULL;
	const char *params[1] = { qualified };
	int sent;

	if (ts_pg_exec(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")) {
		free(qualified);
		return -1;
	}
	sent = PQsendQueryParams(conn, snapshot_sql, 1, NULL, params, NULL, NULL, 0);
	free(qualified);
	if (!sent)
		return ts_error_set(TS_EXIT_ENV, "could not read the schema: %s", PQerrorMessage(conn));
	return 0;
}

static int snapshot_receive(PGconn *conn, struct ts_schema *out)
{
	PGresult *res, *last = NULL;
	int r = 0;

	memset(out, 0, sizeof(*out));
	while ((res = PQgetResult(conn))) {
		PQclear(last);
		last = res;
	}
	if (PQresultStatus(last) != PGRES_TUPLES_OK) {
		char *e = ts_pg_result_error(last);

		r = ts_error_set(TS_EXIT_ENV, "could not read the schema: %s", e);
		free(e);
	} else {
		int n = PQntuples(last);

		out->v = xcalloc((size_t)n + 1, sizeof(*out->v));
		for (int i = 0; i < n; i++) {
			struct ts_schema_obj *o = &out->v[out->n++];

			o->kind = xstrdup(PQgetvalue(last, i, 0));
			o->name = xstrdup(PQgetvalue(last, i, 1));
			o->table = PQgetisnull(last, i, 2) ? NULL : xstrdup(PQgetvalue(last, i, 2));
			o->text = xstrdup(PQgetvalue(last, i, 3));
		}
		if (out->n > 1)
			qsort(out->v, out->n, sizeof(*out->v), obj_cmp);
	}
	PQclear(last);
	PQclear(PQexec(conn, "COMMIT"));
	return r;
}

int ts_schema_snapshot(PGconn *conn, const char *skip, struct ts_schema *out)
{
	memset(out, 0, sizeof(*out));
	if (snapshot_send(conn, skip) || snapshot_receive(conn, out)) {
		ts_schema_free(out);
		return -1;
	}
	return 0;
}

/* Whether the object has a counterpart in other with the same definition. */
static int unchanged(const struct ts_schema_obj *o, const struct ts_schema *other)
{
	const struct ts_schema_obj *m = other ? bsearch(o, other->v, other->n, sizeof(*other->v), obj_cmp)
					      : NULL;

	return other && m && (!strcmp(o->text, m->text) ||
			      json_equal(json_object_get(A(o), "raw"), json_object_get(A(m), "raw")));
}

int ts_schema_describe(PGconn *conn, struct ts_schema *s, const struct ts_schema *other)
{
	struct strbuf oids = STRBUF_INIT;
	const char *params[1];
	PGresult *res;
	int r = 0;

	for (size_t i = 0; i < s->n; i++)
		if ((!strcmp(s->v[i].kind, "index") || !strcmp(s->v[i].kind, "constraint")) &&
		    !unchanged(&s->v[i], other))
			strbuf_addf(&oids, "%s%lld", oids.len ? "," : "{",
				    (long long)json_integer_value(json_object_get(A(&s->v[i]), "def_oid")));
	if (!oids.len)
		return 0;
	strbuf_addch(&oids, '}');
	params[0] = oids.buf;
	res = PQexecParams(conn,
			   "SELECT o::int8, CASE WHEN EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = o)"
			   " THEN pg_get_indexdef(o) ELSE pg_get_constraintdef(o) END"
			   " FROM unnest($1::oid[]) o", 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		char *e = ts_pg_result_error(res);

		r = ts_error_set(TS_EXIT_ENV, "could not read definitions: %s", e);
		free(e);
	} else {
		for (int row = 0; row < PQntuples(res); row++) {
			json_t *oid = json_integer(atoll(PQgetvalue(res, row, 0)));

			for (size_t i = 0; i < s->n; i++)
				if (s->v[i].attrs && json_equal(json_object_get(s->v[i].attrs, "def_oid"), oid))
					json_object_set_new(s->v[i].attrs, "definition",
							    json_string(PQgetvalue(res, row, 1)));
			json_decref(oid);
		}
	}
	PQclear(res);
	strbuf_release(&oids);
	return r;
}

void ts_schema_free(struct ts_schema *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->v[i].kind);
		free(s->v[i].name);
		free(s->v[i].table);
		json_decref(s->v[i].attrs);
		free(s->v[i].text);
	}
	free(s->v);
	memset(s, 0, sizeof(*s));
}

const char *ts_change_class_name(enum ts_change_class c)
{
	switch (c) {
	case TS_CHANGE_BREAKING: return "breaking";
	case TS_CHANGE_RISKY: return "risky";
	default: return "additive";
	}
}

const char *ts_schema_change_column(const struct ts_schema_change *c)
{
	if (strcmp(c->kind, "column") || !c->table || strncmp(c->name, c->table, strlen(c->table)))
		return NULL;
	return c->name + strlen(c->table) + 1;
}

static const char *attr_s(const struct ts_schema_obj *o, const char *key)
{
	return o ? json_string_value(json_object_get(A(o), key)) : NULL;
}

static int attr_b(const struct ts_schema_obj *o, const char *key)
{
	return o && json_is_true(json_object_get(A(o), key));
}

static int same_s(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

/* "character varying(20)" → base "character varying", modifier 20 (or -1). */
static void type_parts(const char *t, char *base, size_t len, long *mod)
{
	const char *paren = strchr(t, '(');
	size_t n = paren ? (size_t)(paren - t) : strlen(t);

	snprintf(base, len, "%.*s", (int)n, t);
	*mod = paren ? strtol(paren + 1, NULL, 10) : -1;
}

/* Whether every value of type `from` fits `to` unchanged (the application still reads it). */
static int widens(const char *from, const char *to)
{
	static const char *const ints[] = { "smallint", "integer", "bigint", "numeric" };
	char fb[64], tb[64];
	long fm, tm;
	int fi = -1, ti = -1;

	type_parts(from, fb, sizeof(fb), &fm);
	type_parts(to, tb, sizeof(tb), &tm);
	for (int i = 0; i < 4; i++) {
		if (!strcmp(fb, ints[i]) && fm < 0)
			fi = i;
		if (!strcmp(tb, ints[i]) && tm < 0)
			ti = i;
	}
	if (fi >= 0 && ti >= 0)
		return ti >= fi;
	if (!strcmp(tb, "text") && (!strcmp(fb, "character varying") || !strcmp(fb, "character")))
		return 1;
	if (!strcmp(fb, tb) && (!strcmp(fb, "character varying") || !strcmp(fb, "numeric")))
		return tm < 0 || (fm >= 0 && tm >= fm);
	return 0;
}

static void change_add(struct ts_schema_diff *d, enum ts_change_class cls,
		       const struct ts_schema_obj *o, const char *change, char *detail)
{
	struct ts_schema_change *c;

	d->v = xrealloc(d->v, (d->n + 1) * sizeof(*d->v));
	c = &d->v[d->n++];
	memset(c, 0, sizeof(*c));
	c->cls = cls;
	c->kind = xstrdup(o->kind);
	c->name = xstrdup(o->name);
	c->table = o->table ? xstrdup(o->table) : NULL;
	c->change = xstrdup(change);
	c->detail = detail;
	if (cls == TS_CHANGE_BREAKING)
		d->breaking++;
	else if (cls == TS_CHANGE_RISKY)
		d->risky++;
	else
		d->additive++;
}

static void classify_added(struct ts_schema_diff *d, const struct ts_schema_obj *o)
{
	const char *k = o->kind, *type = attr_s(o, "type");

	if (!strcmp(k, "column")) {
		int has_default = attr_s(o, "default") || (attr_s(o, "identity") && *attr_s(o, "identity")) ||
				  (attr_s(o, "generated") && *attr_s(o, "generated"));

		if (attr_b(o, "notnull") && !has_default)
			change_add(d, TS_CHANGE_BREAKING, o, "added",
				   xstrfmt("%s NOT NULL without a default: inserts of the current version that do not write it fail", type));
		else
			change_add(d, TS_CHANGE_ADDITIVE, o, "added",
				   xstrfmt("%s%s%s", type, attr_b(o, "notnull") ? " NOT NULL" : "",
					   attr_s(o, "default") ? " with a default" : ""));
	} else if (!strcmp(k, "constraint")) {
		const char *t = attr_s(o, "type");

		if (!attr_b(o, "validated"))
			change_add(d, TS_CHANGE_ADDITIVE, o, "added",
				   xstrfmt("%s NOT VALID: checked for new rows only", attr_s(o, "definition")));
		else
			change_add(d, TS_CHANGE_RISKY, o, "added",
				   xstrfmt("%s: %s", attr_s(o, "definition"),
					   t && (*t == 'u' || *t == 'p' || *t == 'x') ?
					   "builds an index and rejects writes that break it" :
					   "validated against every row, and rejects writes that break it"));
	} else if (!strcmp(k, "index") && !attr_b(o, "valid")) {
		change_add(d, TS_CHANGE_RISKY, o, "added",
			   xstrfmt("INVALID (a CONCURRENTLY build failed and left it): %s", attr_s(o, "definition")));
	} else if (!strcmp(k, "trigger")) {
		change_add(d, TS_CHANGE_RISKY, o, "added",
			   xstrfmt("runs on the current version's writes: %s", attr_s(o, "definition")));
	} else {
		change_add(d, TS_CHANGE_ADDITIVE, o, "added",
			   attr_s(o, "definition") ? xstrdup(attr_s(o, "definition")) : NULL);
	}
}

static void classify_dropped(struct ts_schema_diff *d, const struct ts_schema_obj *o)
{
	const char *k = o->kind;

	if (!strcmp(k, "constraint")) {
		const char *t = attr_s(o, "type");

		change_add(d, t && (*t == 'u' || *t == 'p') ? TS_CHANGE_RISKY : TS_CHANGE_ADDITIVE, o,
			   "dropped", xstrdup(attr_s(o, "definition")));
	} else if (!strcmp(k, "index") || !strcmp(k, "trigger")) {
		change_add(d, TS_CHANGE_RISKY, o, "dropped", xstrdup(attr_s(o, "definition")));
	} else {
		change_add(d, TS_CHANGE_BREAKING, o, "dropped",
			   xstrfmt("the current version may still use this %s", k));
	}
}

static void classify_changed(struct ts_schema_diff *d, const struct ts_schema_obj *a,
			     const struct ts_schema_obj *b)
{
	const char *k = a->kind;
	enum ts_change_class cls = TS_CHANGE_ADDITIVE;
	struct strbuf sb = STRBUF_INIT;
	const char *key;
	json_t *va;

#define WORSE(c) do { if ((c) > cls) cls = (c); } while (0)
#define SAY(...) do { if (sb.len) strbuf_addstr(&sb, "; "); strbuf_addf(&sb, __VA_ARGS__); } while (0)
	if (!strcmp(a->text, b->text))
		return;
	json_object_foreach(A(a), key, va) {
		json_t *vb = json_object_get(A(b), key);
		const char *sa = json_string_value(va), *sbv = json_string_value(vb);

		if (json_equal(va, vb) || !strcmp(key, "position") || !strcmp(key, "oid") ||
		    !strcmp(key, "def_oid"))
			continue;
		if (!strcmp(k, "column") && !strcmp(key, "type")) {
			int wide = widens(sa, sbv);

			WORSE(wide ? TS_CHANGE_RISKY : TS_CHANGE_BREAKING);
			SAY("type %s -> %s%s", sa, sbv, wide ? " (wider: rewrites the table)" : "");
		} else if (!strcmp(key, "notnull")) {
			if (json_is_true(vb)) {
				WORSE(TS_CHANGE_BREAKING);
				SAY("made NOT NULL: inserts of the current version that do not write it fail");
			} else {
				SAY("NOT NULL dropped");
			}
		} else if (!strcmp(k, "column") && !strcmp(key, "default")) {
			SAY("default %s -> %s", sa ? sa : "none", sbv ? sbv : "none");
		} else if (!strcmp(key, "validated") && json_is_true(vb)) {
			WORSE(TS_CHANGE_RISKY);
			SAY("validated: every row was scanned");
		} else if (!strcmp(key, "valid")) {
			WORSE(TS_CHANGE_RISKY);
			SAY("%s", json_is_true(vb) ? "became valid" : "became INVALID");
		} else if (!strcmp(k, "enum") && !strcmp(key, "labels")) {
			size_t i;
			json_t *l;

			json_array_foreach(va, i, l) {
				int kept = 0;
				size_t j;
				json_t *m;

				json_array_foreach(vb, j, m)
					kept |= json_equal(l, m);
				if (!kept) {
					WORSE(TS_CHANGE_BREAKING);
					SAY("label '%s' dropped", json_string_value(l));
				}
			}
			if (cls != TS_CHANGE_BREAKING)
				SAY("labels added");
		} else if (!strcmp(key, "returns")) {
			WORSE(TS_CHANGE_BREAKING);
			SAY("returns %s -> %s", sa, sbv);
		} else if (!strcmp(key, "raw")) {
			const char *da = attr_s(a, "definition"), *db = attr_s(b, "definition");

			if (da && db && !strcmp(da, db))
				continue;	/* the same, read by PostgreSQL itself */
			WORSE(TS_CHANGE_RISKY);
			SAY("definition %s -> %s", da ? da : sa, db ? db : sbv);
		} else if (!strcmp(key, "definition") && json_object_get(A(a), "raw")) {
			continue;	/* said with "raw" */
		} else if (!strcmp(key, "body")) {
			WORSE(TS_CHANGE_RISKY);
			SAY("body changed: the current version gets the new behaviour");
		} else {
			char *ta = json_dumps(va, JSON_ENCODE_ANY), *tb = json_dumps(vb, JSON_ENCODE_ANY);

			WORSE(TS_CHANGE_RISKY);
			SAY("%s %s -> %s", key, ta, tb);
			free(ta);
			free(tb);
		}
	}
#undef WORSE
#undef SAY
	if (sb.len)
		change_add(d, cls, b, "changed", strbuf_detach(&sb));
	strbuf_release(&sb);
}

/* "name type, name type, ..." of a table's columns: a table's signature. */
static char *columns_of(const struct ts_schema *s, const char *table)
{
	struct strbuf sb = STRBUF_INIT;

	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->v[i].kind, "column") && s->v[i].table && !strcmp(s->v[i].table, table))
			strbuf_addf(&sb, "%s %s,", s->v[i].name + strlen(table) + 1,
				    attr_s(&s->v[i], "type"));
	return strbuf_detach(&sb);
}

/* Whether the tables both snapshots have keep their oids: one data directory copied. */
static int same_lineage(const struct ts_schema *a, const struct ts_schema *b)
{
	size_t same = 0, differ = 0, i = 0, j = 0;

	while (i < a->n && j < b->n) {
		int c = obj_cmp(&a->v[i], &b->v[j]);

		if (!c && !strcmp(a->v[i].kind, "table")) {
			if (json_equal(json_object_get(A(&a->v[i]), "oid"),
				       json_object_get(A(&b->v[j]), "oid")))
				same++;
			else
				differ++;
		}
		i += c <= 0;
		j += c >= 0;
	}
	return same > differ;
}

struct pending {
	const struct ts_schema_obj **v;
	size_t n;
};

static void pending_add(struct pending *p, const struct ts_schema_obj *o)
{
	p->v = xrealloc(p->v, (p->n + 1) * sizeof(*p->v));
	p->v[p->n++] = o;
}

static int names_table(const struct pending *p, const char *table)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->v[i] && !strcmp(p->v[i]->kind, "table") && !strcmp(p->v[i]->name, table))
			return 1;
	return 0;
}

static void renamed(struct ts_schema_diff *d, const struct ts_schema_obj *from,
		    const struct ts_schema_obj *to)
{
	change_add(d, TS_CHANGE_BREAKING, to, "renamed",
		   xstrfmt("renamed from %s: the current version still uses the old name", from->name));
	d->v[d->n - 1].old_name = xstrdup(from->name);
}

void ts_schema_diff(const struct ts_schema *before, const struct ts_schema *after,
		    struct ts_schema_diff *out)
{
	struct pending added = { 0 }, dropped = { 0 }, gone = { 0 }, born = { 0 };
	size_t i = 0, j = 0;
	int lineage;

	memset(out, 0, sizeof(*out));
	while (i < before->n || j < after->n) {
		int c = i >= before->n ? 1 : j >= after->n ? -1 : obj_cmp(&before->v[i], &after->v[j]);

		if (c < 0) {
			pending_add(&dropped, &before->v[i++]);
		} else if (c > 0) {
			pending_add(&added, &after->v[j++]);
		} else {
			/* an object that moved with its renamed table: the rename says it */
			if (same_s(before->v[i].table, after->v[j].table))
				classify_changed(out, &before->v[i], &after->v[j]);
			i++;
			j++;
		}
	}
	/*
	 * A table dropped and one added that is the same relation (same oid,
	 * when both sides descend from one data directory) or, across a
	 * logical copy, has the same columns: renamed.
	 */
	lineage = -1;	/* computed when a rename is possible */
	for (size_t a = 0; a < dropped.n; a++) {
		char *sig;

		if (strcmp(dropped.v[a]->kind, "table"))
			continue;
		sig = columns_of(before, dropped.v[a]->name);
		for (size_t b = 0; b < added.n; b++) {
			char *sig2;
			int same;

			if (!added.v[b] || strcmp(added.v[b]->kind, "table"))
				continue;
			sig2 = columns_of(after, added.v[b]->name);
			if (lineage < 0)
				lineage = same_lineage(before, after);
			same = lineage ? json_equal(json_object_get(A(dropped.v[a]), "oid"),
						    json_object_get(A(added.v[b]), "oid"))
				       : !strcmp(sig, sig2);
			if (same) {
				renamed(out, dropped.v[a], added.v[b]);
				pending_add(&gone, dropped.v[a]);
				pending_add(&born, added.v[b]);
				dropped.v[a] = added.v[b] = NULL;
				free(sig2);
				break;
			}
			free(sig2);
		}
		free(sig);
	}
	/* what hangs on a dropped or added table goes with it */
	for (size_t a = 0; a < dropped.n; a++)
		if (dropped.v[a] && dropped.v[a]->table && strcmp(dropped.v[a]->kind, "table") &&
		    (names_table(&dropped, dropped.v[a]->table) || names_table(&gone, dropped.v[a]->table)))
			dropped.v[a] = NULL;
	for (size_t b = 0; b < added.n; b++)
		if (added.v[b] && added.v[b]->table && strcmp(added.v[b]->kind, "table") &&
		    (names_table(&added, added.v[b]->table) || names_table(&born, added.v[b]->table)))
			added.v[b] = NULL;
	/* a column dropped and one added in its place, of the same type: renamed */
	for (size_t a = 0; a < dropped.n; a++) {
		const struct ts_schema_obj *o = dropped.v[a];

		if (!o || strcmp(o->kind, "column"))
			continue;
		for (size_t b = 0; b < added.n; b++) {
			const struct ts_schema_obj *n = added.v[b];

			if (n && !strcmp(n->kind, "column") && !strcmp(n->table, o->table) &&
			    same_s(attr_s(o, "type"), attr_s(n, "type")) &&
			    json_equal(json_object_get(A(o), "position"),
				       json_object_get(A(n), "position"))) {
				renamed(out, o, n);
				dropped.v[a] = added.v[b] = NULL;
				break;
			}
		}
	}
	for (size_t a = 0; a < dropped.n; a++)
		if (dropped.v[a])
			classify_dropped(out, dropped.v[a]);
	for (size_t b = 0; b < added.n; b++)
		if (added.v[b])
			classify_added(out, added.v[b]);
	free(added.v);
	free(dropped.v);
	free(gone.v);
	free(born.v);
}

void ts_schema_diff_free(struct ts_schema_diff *d)
{
	for (size_t i = 0; i < d->n; i++) {
		free(d->v[i].kind);
		free(d->v[i].name);
		free(d->v[i].table);
		free(d->v[i].change);
		free(d->v[i].detail);
		free(d->v[i].old_name);
	}
	free(d->v);
	memset(d, 0, sizeof(*d));
}

int ts_schema_compare(PGconn *before_conn, PGconn *after_conn, const char *skip,
		      struct ts_schema_diff *out, size_t *n_objects)
{
	struct ts_schema before, after;
	int r;

	/* both sides at once: two servers, each reading its own catalogs */
	memset(&before, 0, sizeof(before));
	memset(&after, 0, sizeof(after));
	r = snapshot_send(before_conn, skip);
	if (!r && snapshot_send(after_conn, skip)) {
		snapshot_receive(before_conn, &before);
		r = -1;
	} else if (!r) {
		int rb = snapshot_receive(before_conn, &before);
		int ra = snapshot_receive(after_conn, &after);

		r = rb || ra ? -1 : 0;
	}
	if (!r)
		r = ts_schema_describe(before_conn, &before, &after);
	if (!r)
		r = ts_schema_describe(after_conn, &after, &before);
	if (!r)
		ts_schema_diff(&before, &after, out);
	*n_objects = after.n;
	ts_schema_free(&before);
	ts_schema_free(&after);
	return r;
}
