/*
 * fingerprint.c: the catalog snapshot made portable (no oids, no column
 * positions: a logical copy of the same schema has the same fingerprint),
 * hashed, and compared back through the schema diff.
 */
#include "pg/fingerprint.h"
#include "core/error.h"
#include "core/strbuf.h"
#include "core/util.h"
#include "core/wrapper.h"
#include "pg/pg.h"
#include "pg/schema.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* Attributes that say where an object is, not what it is. */
static int local_key(const char *key)
{
	return !strcmp(key, "oid") || !strcmp(key, "def_oid") || !strcmp(key, "position");
}

/* The object's attributes without the local ones (a new reference). */
static json_t *portable_attrs(const char *text)
{
	json_t *a = json_loads(text, 0, NULL), *out = json_object();
	const char *key;
	json_t *v;

	json_object_foreach(a, key, v)
		if (!local_key(key))
			json_object_set(out, key, v);
	json_decref(a);
	return out;
}

/*
 * The hashed text: each object on its line, its attributes with sorted
 * keys and without the definitions, which are PostgreSQL's deparse of
 * `raw` and follow from it.
 */
static void hash_schema(struct ts_fingerprint *fp)
{
	struct strbuf sb = STRBUF_INIT;
	size_t i;
	json_t *o;

	json_array_foreach(fp->schema, i, o) {
		json_t *attrs = json_deep_copy(json_array_get(o, 3));
		char *a;

		json_object_del(attrs, "definition");
		a = json_dumps(attrs, JSON_SORT_KEYS | JSON_COMPACT);
		strbuf_addf(&sb, "%s\t%s\t%s\t%s\n", json_string_value(json_array_get(o, 0)),
			    json_string_value(json_array_get(o, 1)),
			    json_is_string(json_array_get(o, 2)) ? json_string_value(json_array_get(o, 2)) : "",
			    a ? a : "{}");
		free(a);
		json_decref(attrs);
	}
	sha256_hex(sb.buf ? sb.buf : "", sb.len, fp->schema_sha256);
	fp->objects = json_array_size(fp->schema);
	strbuf_release(&sb);
}

int ts_fingerprint_read_server(PGconn *conn, struct ts_fingerprint *fp)
{
	PGresult *res = ts_pg_rows(conn, "SELECT current_setting('server_version_num')::int,"
					 " current_setting('server_version')", "read the server's version");

	if (!res)
		return -1;
	fp->server_version_num = atoi(PQgetvalue(res, 0, 0));
	fp->server_version = xstrdup(PQgetvalue(res, 0, 1));
	PQclear(res);
	/* the system identifier, where the role may read pg_control (superusers, pg_monitor... ) */
	res = PQexec(conn, "SELECT system_identifier::text FROM pg_control_system()");
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		fp->system_identifier = xstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	return 0;
}

int ts_fingerprint_read(PGconn *conn, const char *skip, struct ts_fingerprint *fp)
{
	struct ts_schema s;

	memset(fp, 0, sizeof(*fp));
	/* qualified names print the same whatever the role's or database's search_path */
	if (ts_pg_exec(conn, "SET search_path = pg_catalog") || ts_fingerprint_read_server(conn, fp))
		goto fail;
	if (ts_schema_snapshot(conn, skip, &s))
		goto fail;
	if (ts_schema_describe(conn, &s, NULL)) {
		ts_schema_free(&s);
		goto fail;
	}
	fp->schema = json_array();
	for (size_t i = 0; i < s.n; i++) {
		json_t *attrs = portable_attrs(s.v[i].text);
		json_t *def = s.v[i].attrs ? json_object_get(s.v[i].attrs, "definition") : NULL;

		if (def)
			json_object_set(attrs, "definition", def);
		json_array_append_new(fp->schema, json_pack("[s, s, s?, o]", s.v[i].kind, s.v[i].name,
							     s.v[i].table, attrs));
	}
	ts_schema_free(&s);
	hash_schema(fp);
	return 0;
fail:
	ts_error_prefix("could not read the database's fingerprint");
	ts_fingerprint_free(fp);
	return -1;
}

void ts_fingerprint_free(struct ts_fingerprint *fp)
{
	json_decref(fp->schema);
	free(fp->server_version);
	free(fp->system_identifier);
	memset(fp, 0, sizeof(*fp));
}

json_t *ts_fingerprint_to_json(const struct ts_fingerprint *fp)
{
	return json_pack("{s:s, s:I, s:i, s:s, s:s?, s:O}", "schema_sha256", fp->schema_sha256,
			 "schema_objects", (json_int_t)fp->objects, "server_version_num",
			 fp->server_version_num, "server_version", fp->server_version ? fp->server_version : "",
			 "system_identifier", fp->system_identifier, "schema",
			 fp->schema ? fp->schema : json_array());
}

int ts_fingerprint_from_json(json_t *j, struct ts_fingerprint *fp)
{
	const char *sum = json_string_value(json_object_get(j, "schema_sha256"));
	json_t *schema = json_object_get(j, "schema");
	const char *sysid = json_string_value(json_object_get(j, "system_identifier"));
	size_t i;
	json_t *o;

	memset(fp, 0, sizeof(*fp));
	if (!sum || strlen(sum) != 64 || !json_is_array(schema))
		return -1;
	json_array_foreach(schema, i, o)
		if (!json_is_array(o) || json_array_size(o) != 4 || !json_is_string(json_array_get(o, 0)) ||
		    !json_is_string(json_array_get(o, 1)) || !json_is_object(json_array_get(o, 3)))
			return -1;
	fp->schema = json_incref(schema);
	/* what the file says is checked against what it holds */
	hash_schema(fp);
	if (strcmp(fp->schema_sha256, sum)) {
		ts_fingerprint_free(fp);
		return -1;
	}
	fp->server_version_num = (int)json_integer_value(json_object_get(j, "server_version_num"));
	fp->server_version = xstrdup(json_string_value(json_object_get(j, "server_version")) ?: "");
	fp->system_identifier = sysid ? xstrdup(sysid) : NULL;
	return 0;
}

int ts_fingerprint_same_schema(const struct ts_fingerprint *a, const struct ts_fingerprint *b)
{
	return !strcmp(a->schema_sha256, b->schema_sha256);
}

/* The kept objects as a snapshot the schema diff reads. */
static void to_schema(const struct ts_fingerprint *fp, struct ts_schema *s)
{
	size_t i;
	json_t *o;

	memset(s, 0, sizeof(*s));
	s->v = xcalloc(json_array_size(fp->schema) + 1, sizeof(*s->v));
	json_array_foreach(fp->schema, i, o) {
		struct ts_schema_obj *x = &s->v[s->n++];
		const char *table = json_string_value(json_array_get(o, 2));

		x->kind = xstrdup(json_string_value(json_array_get(o, 0)));
		x->name = xstrdup(json_string_value(json_array_get(o, 1)));
		x->table = table ? xstrdup(table) : NULL;
		x->text = json_dumps(json_array_get(o, 3), JSON_SORT_KEYS | JSON_COMPACT);
	}
}

void ts_fingerprint_changes(const struct ts_fingerprint *was, const struct ts_fingerprint *now,
			    struct strvec *out)
{
	struct ts_schema a, b;
	struct ts_schema_diff d = { 0 };

	to_schema(was, &a);
	to_schema(now, &b);
	ts_schema_diff(&a, &b, &d);
	for (size_t i = 0; i < d.n; i++) {
		const struct ts_schema_change *c = &d.v[i];

		if (c->old_name)
			strvec_pushf(out, "%s %s renamed from %s", c->kind, c->name, c->old_name);
		else
			strvec_pushf(out, "%s %s %s%s%s", c->kind, c->name, c->change,
				     c->detail ? ": " : "", c->detail ? c->detail : "");
	}
	/* the same objects, attributes the diff does not name: say that much */
	if (!d.n && !ts_fingerprint_same_schema(was, now))
		strvec_push(out, "the schema's attributes changed (no object added, dropped or renamed)");
	ts_schema_diff_free(&d);
	ts_schema_free(&a);
	ts_schema_free(&b);
}
