/*
 * equal: do two tables hold the same rows?
 *
 * Two tables of one shape are first streamed in binary in their physical
 * order, which a physical clone and a restored dump keep, so equal tables
 * are known equal without a sort. (A server-side sum of row hashes,
 * hash_record_extended, was measured: it costs twice the CPU of the
 * stream.) Where they differ, or the tables do not have one shape, both sides are read at
 * once, each as one COPY in the same order (the primary key, or the whole
 * row where there is none), and compared row by row as they stream in:
 * nothing is held in memory but the current row of each side, and the
 * first difference is known by its key.
 *
 * The same comparison serves the double dump test (a side against its
 * restored dump), the tables a migration did not touch (production clone
 * against dev side), and `[equal OLD NEW]` (a table against the one that
 * replaces it, with a column mapping).
 */
#ifndef TS_EQUAL_H
#define TS_EQUAL_H

#include <libpq-fe.h>
#include <stddef.h>

#include "core/strvec.h"

/* A table as one side's catalog describes it. */
struct ts_rel {
	char *shown;		/* schema.name, as people read it */
	char *schema, *name;
	char kind;		/* 'r', 'p' (partitioned: all its partitions), 'm' */
	struct strvec cols;	/* column names, in order */
	struct strvec types;	/* their types, as format_type writes them */
	struct strvec key;	/* primary key columns, in key order (may be empty) */
	int *collatable;	/* per column */
};

struct ts_rels {
	struct ts_rel *v;
	size_t n;		/* sorted by shown */
};

/*
 * Reads the tables of conn's database that hold data: ordinary,
 * partitioned (not their partitions) and populated materialized views,
 * outside the system schemas and extensions. `skip` ("schema.table")
 * leaves one out: the migration tool's tracking table.
 */
int ts_rels_read(PGconn *conn, const char *skip, struct ts_rels *out);
void ts_rels_free(struct ts_rels *rs);
/* The table named "schema.name" (or "name" in public), or NULL. */
const struct ts_rel *ts_rels_find(const struct ts_rels *rs, const char *name);
/* The position of a column in rel, or -1. */
int ts_rel_col(const struct ts_rel *rel, const char *col);

/* What a comparison found. */
struct ts_cmp {
	long long rows[2];	/* rows on each side */
	long long at;		/* 0-based position of the first difference, -1: equal */
	char *key;		/* "id=42", or "row 17" without a key */
	char *row[2];		/* that row on each side ("id=42, amount=10"), NULL: none there */
};

/*
 * Compares table a (on conn_a) with table b (on conn_b). cols_a and cols_b
 * (n each) map a's columns to b's, NULL for all of a's columns under the
 * same names; b's are cast to a's types where they differ. The order is
 * a's primary key when all of it is mapped, else the whole row. -1 with an
 * error (naming the table) when a side cannot be read.
 */
int ts_table_compare(PGconn *conn_a, const struct ts_rel *a, PGconn *conn_b,
		     const struct ts_rel *b, const char *const *cols_a,
		     const char *const *cols_b, size_t n, struct ts_cmp *out);
void ts_cmp_free(struct ts_cmp *c);

#endif
