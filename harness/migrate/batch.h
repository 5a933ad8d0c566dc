/*
 * batch: a backfill run as one would run it on a live table, in batches.
 *
 * A migration statement annotated on a comment line before it
 *
 *	-- twinstage:batch 5000
 *
 * is rerun, each time in its own transaction and limited to N rows, until
 * it affects none. The statement is written as the migration tool would
 * run it in one go; twinstage limits it, reading its tokens with
 * PostgreSQL's own scanner (libpg_query):
 *
 *	UPDATE t SET ... WHERE cond	 → ... WHERE (cond) AND t.ctid = ANY
 *					   (ARRAY(SELECT t.ctid FROM t WHERE cond LIMIT N))
 *	DELETE FROM t WHERE cond	 → the same
 *	INSERT INTO t ... SELECT ...	 → the SELECT gets LIMIT N
 *
 * So cond (or the SELECT) must leave out the rows already done, as a
 * backfill's must: `WHERE new_col IS NULL`, `WHERE NOT EXISTS (...)`. A
 * statement that keeps affecting rows past the number that matched at the
 * start does not converge, and is stopped with an error.
 */
#ifndef TS_BATCH_H
#define TS_BATCH_H

#include <libpq-fe.h>

struct ts_stmt;
struct ts_trace;
struct json_t;

/*
 * The statement limited to n rows (*out), and the query that counts the
 * rows it would touch (*count), both new strings; -1 with an error
 * (TS_EXIT_USAGE) when st has no shape to batch.
 */
int ts_batch_rewrite(const struct ts_stmt *st, long n, char **out, char **count);

/*
 * Runs st in batches on conn (autocommit), traced when trace is set.
 * Returns the last result: the server's error, or the empty last batch;
 * NULL with an error set when the statement has no shape to batch or does
 * not converge. *facts gets the traced facts of all batches and "batch":
 * {size, batches, rows, ms, max_ms, rows_per_s}. Progress goes to stderr
 * when verbose.
 */
PGresult *ts_batch_exec(PGconn *conn, const struct ts_stmt *st, struct ts_trace *trace,
			int verbose, struct json_t **facts);

#endif
