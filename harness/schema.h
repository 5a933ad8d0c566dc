/*
 * schema: a snapshot of a database's schema read from pg_catalog, and the
 * classified difference between two snapshots (the production clone and
 * the migrated dev side).
 *
 * A snapshot is a flat list of objects, each a kind, a name unique within
 * its kind, the table it belongs to, and its attributes as JSON (built by
 * PostgreSQL itself in one query), so that two snapshots compare object by
 * object and attribute by attribute.
 */
#ifndef TS_SCHEMA_H
#define TS_SCHEMA_H

#include <libpq-fe.h>
#include <stddef.h>

struct ts_schema_obj {
	char *kind;		/* "table", "column", "constraint", "index", "view", ... */
	char *name;		/* "public.invoices", "public.invoices.amount", ... */
	char *table;		/* the table or view it belongs to, or NULL */
	struct json_t *attrs;
};

struct ts_schema {
	struct ts_schema_obj *v;
	size_t n;		/* sorted by kind, then name */
};

enum ts_change_class {
	TS_CHANGE_ADDITIVE,	/* safe for the current application */
	TS_CHANGE_RISKY,	/* safe to read, but costly or surprising to run */
	TS_CHANGE_BREAKING,	/* the current application may fail */
};

struct ts_schema_change {
	enum ts_change_class cls;
	char *kind;
	char *name;
	char *table;		/* or NULL */
	char *change;		/* "added", "dropped", "renamed", "changed" */
	char *detail;		/* what changed, for a person */
	char *old_name;		/* for "renamed" */
};

struct ts_schema_diff {
	struct ts_schema_change *v;
	size_t n;
	size_t breaking, risky, additive;
};

/*
 * Reads the schema of conn's database in one REPEATABLE READ transaction.
 * `skip` names a table ("schema.table") left out with everything on it:
 * the migration tool's tracking table. -1 and an error on failure.
 */
int ts_schema_snapshot(PGconn *conn, const char *skip, struct ts_schema *out);
void ts_schema_free(struct ts_schema *s);

/* What changed from `before` to `after`, each change classified. */
void ts_schema_diff(const struct ts_schema *before, const struct ts_schema *after,
		    struct ts_schema_diff *out);
void ts_schema_diff_free(struct ts_schema_diff *d);

const char *ts_change_class_name(enum ts_change_class c);
/* The column part of a column change's name ("amount"), or NULL. */
const char *ts_schema_change_column(const struct ts_schema_change *c);

#endif
