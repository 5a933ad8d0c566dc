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
	char *text;		/* its attributes as PostgreSQL wrote them (JSON) */
	struct json_t *attrs;	/* parsed on first use: equal texts never are */
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
/*
 * Index and constraint definitions are compared from the raw catalog
 * columns (deparsing thousands is the slow part of a snapshot); this
 * fetches the readable definition of those in s that differ from other
 * or are missing there (other NULL: of all of them, for a snapshot kept to
 * compare with later), for the diff to show. Call it before the diff, on
 * each side, with the connection s was read from.
 */
int ts_schema_describe(PGconn *conn, struct ts_schema *s, const struct ts_schema *other);

/* What changed from `before` to `after`, each change classified. */
void ts_schema_diff(const struct ts_schema *before, const struct ts_schema *after,
		    struct ts_schema_diff *out);
void ts_schema_diff_free(struct ts_schema_diff *d);
/* Snapshot, describe and diff, from before_conn's database to after_conn's. */
int ts_schema_compare(PGconn *before_conn, PGconn *after_conn, const char *skip,
		      struct ts_schema_diff *out, size_t *n_objects);

const char *ts_change_class_name(enum ts_change_class c);
/* The column part of a column change's name ("amount"), or NULL. */
const char *ts_schema_change_column(const struct ts_schema_change *c);

#endif
