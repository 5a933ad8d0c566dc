/*
 * pg: the few libpq helpers every stage needs, with errors that go to the
 * error slot and never carry a password.
 */
#ifndef TS_PG_H
#define TS_PG_H

#include <libpq-fe.h>

/* Connects; on failure sets a TS_EXIT_ENV error naming `what` and returns NULL. */
PGconn *ts_pg_connect(const char *conninfo, const char *what);
/*
 * Tries a connection to conninfo for ms: 2 when it connected, 1 when
 * something answered otherwise (a refusal, a server starting up, an error
 * to be read from PQping), 0 when nothing answered. A guest's forwarded port is accepted at once by
 * qemu's user-mode network, which passes the connection on to the guest:
 * before the guest's network is up that goes unanswered for a second or
 * more (a retry's backoff), so that a PQping sent then waited up to 3 s for
 * a guest long ready. An attempt given up on is a fresh one the next time.
 */
int ts_pg_answers_within(const char *conninfo, int ms);
/* The same for a connection already attempted (PQconnectdbParams): it, or NULL (freed). */
PGconn *ts_pg_connected(PGconn *conn, const char *what);
/*
 * Connects to a database twinstage must never write (production, the
 * source): every transaction of the session is read-only
 * (default_transaction_read_only, checked once connected). The options of
 * dsn are replaced by that one.
 */
PGconn *ts_pg_connect_readonly(const char *dsn, const char *what);
/* Runs sql (no result rows wanted); -1 and an error on failure. */
int ts_pg_exec(PGconn *conn, const char *sql);
/*
 * Runs a query that returns rows: its result, or NULL with a TS_EXIT_ENV
 * error "could not <what>: SQLSTATE: message".
 */
PGresult *ts_pg_rows(PGconn *conn, const char *sql, const char *what);
/*
 * Whether `table` (as the search_path finds it, or qualified) exists:
 * *exists 0 or 1, or -1 with a TS_EXIT_ENV error "could not look for
 * <what> "table": ...".
 */
int ts_pg_table_exists(PGconn *conn, const char *table, const char *what, int *exists);
/* "SQLSTATE: message" of a failed result, as a new string. */
char *ts_pg_result_error(const PGresult *res);
/* Quotes an identifier for SQL text (new string). */
char *ts_pg_ident(PGconn *conn, const char *name);

/*
 * The --dbname argument of pg_dump, pg_restore or psql that names the
 * database dbname whatever it holds (spaces, quotes, an '='): the
 * connection-string form "dbname='...'" (new string).
 */
char *ts_pg_dbname_arg(const char *dbname);

/* "schema.name" as given, "public.name" for an unqualified name (new string). */
char *ts_pg_qualified(const char *name);

#endif
