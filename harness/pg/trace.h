/*
 * trace: what each migration statement did to the tables that were there
 * before, observed on the dev side while it ran.
 *
 * A statement is sent asynchronously; while it runs, a second session
 * samples pg_locks for the migration's backend (the only way to see the
 * locks of a statement that runs outside a transaction, such as CREATE
 * INDEX CONCURRENTLY). Inside a transaction, the migration's own session
 * then reads its granted locks, the relfilenodes (a changed one is a
 * rewrite) and pg_stat_xact_user_tables (a sequential scan during DDL is
 * a validation). A lock is held until the transaction ends, so its time
 * is counted from the statement that took it to COMMIT.
 */
#ifndef TS_TRACE_H
#define TS_TRACE_H

#include <libpq-fe.h>
#include <stddef.h>

struct json_t;

struct ts_trace_rel {
	unsigned oid;
	char *name;
	char kind;		/* pg_class.relkind */
	unsigned long filenode;
	long long seq_scan;	/* pending in the session's statistics, after the last statement */
};

struct ts_trace_held {
	unsigned oid;
	char *mode;
	double since;		/* start of the statement that took it */
	struct json_t *lock;	/* its entry in the statement's facts, to time */
};

struct ts_trace {
	PGconn *conn;		/* the migration's session */
	PGconn *observer;	/* a second session, for sampling; may be NULL */
	char pid[16];		/* conn's backend pid, as text */
	double max_lock_ms;	/* gate.max_lock_ms; 0: no gate */
	struct ts_trace_rel *rels;	/* relations that existed before */
	size_t n_rels;
	char *oids;		/* their oids, as an array literal "{1,2,...}" */
	struct ts_trace_held *held;	/* taken in the open transaction */
	size_t n_held;
	int tx_fresh;		/* no statement of the open transaction has run yet */
};

/*
 * Reads the relations that exist now, and opens the observer session on
 * observer (NULL: no sampling), which the trace then owns: ts_trace_end
 * closes it. `skip` names a table ("schema.table", or as the search_path
 * finds it) left out with its indexes: the migration tool's tracking table,
 * which every migration writes. -1 and an error on failure.
 */
int ts_trace_start(struct ts_trace *t, PGconn *conn, PGconn *observer, double max_lock_ms,
		   const char *skip);
void ts_trace_end(struct ts_trace *t);

/*
 * Runs sql on the migration's session and returns its result (as PQexec
 * would); *facts gets {"locks": [...], "rewrites": [...], "scans": [...]}.
 * in_tx: the statement runs inside a transaction that COMMIT will end.
 */
PGresult *ts_trace_exec(struct ts_trace *t, const char *sql, int in_tx, struct json_t **facts);
/* The transaction ended (committed or rolled back) now: times its locks. */
void ts_trace_tx_end(struct ts_trace *t);

/*
 * The side as a whole between two migrations: where its WAL is, and each
 * table's size (and its indexes'). ts_trace_mark_diff says what changed
 * from a to b: {"wal_bytes": N, "sizes": [{table, table_before,
 * table_after, indexes_before, indexes_after}]} for the tables whose size
 * changed (a new reference).
 */
struct ts_trace_mark {
	unsigned long long lsn;
	struct json_t *sizes;	/* {"schema.table": [table_bytes, index_bytes]} */
};
int ts_trace_mark(PGconn *conn, struct ts_trace_mark *m);
struct json_t *ts_trace_mark_diff(const struct ts_trace_mark *a, const struct ts_trace_mark *b);
void ts_trace_mark_free(struct ts_trace_mark *m);

/* 1 when mode keeps the application from writing (or reading) a table. */
int ts_lock_blocks(const char *mode);

#endif
