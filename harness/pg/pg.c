/* pg.c: see pg.h. */
#include "pg/pg.h"
#include "core/error.h"
#include "core/strbuf.h"
#include "core/util.h"
#include "core/wrapper.h"

#include <poll.h>
#include <stdlib.h>
#include <string.h>

static void quiet_notice(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

PGconn *ts_pg_connected(PGconn *conn, const char *what)
{
	if (PQstatus(conn) != CONNECTION_OK) {
		struct strbuf msg = STRBUF_INIT;

		strbuf_addstr(&msg, PQerrorMessage(conn));
		strbuf_rtrim(&msg);
		ts_error_set(TS_EXIT_ENV, "could not connect to %s: %s", what, msg.buf);
		strbuf_release(&msg);
		PQfinish(conn);
		return NULL;
	}
	PQsetNoticeProcessor(conn, quiet_notice, NULL);
	return conn;
}

/* A fresh connection attempt, given up on after ms (pg.h says why). */
int ts_pg_answers_within(const char *conninfo, int ms)
{
	PGconn *c = PQconnectStart(conninfo);
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	double until = now_ms() + ms;

	if (!c || PQstatus(c) == CONNECTION_BAD) {
		PQfinish(c);
		return 1;	/* the caller's own attempt says why */
	}
	while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
		struct pollfd p = { PQsocket(c), st == PGRES_POLLING_READING ? POLLIN : POLLOUT, 0 };
		int left = (int)(until - now_ms());

		if (left <= 0 || poll(&p, 1, left) <= 0)
			break;
		st = PQconnectPoll(c);
	}
	PQfinish(c);
	return st == PGRES_POLLING_OK ? 2 : st == PGRES_POLLING_FAILED;
}

PGconn *ts_pg_connect(const char *conninfo, const char *what)
{
	return ts_pg_connected(PQconnectdb(conninfo), what);
}

PGconn *ts_pg_connect_readonly(const char *dsn, const char *what)
{
	static const char *const keys[] = { "dbname", "options", "fallback_application_name", NULL };
	const char *vals[] = { dsn, "-c default_transaction_read_only=on", "twinstage (read-only)", NULL };
	PGconn *conn = ts_pg_connected(PQconnectdbParams(keys, vals, 1), what);
	PGresult *res;

	if (!conn)
		return NULL;
	/* the server's word, not ours: a pooler may drop startup options */
	res = PQexec(conn, "SHOW default_transaction_read_only");
	if (PQresultStatus(res) != PGRES_TUPLES_OK || strcmp(PQgetvalue(res, 0, 0), "on")) {
		ts_error_set(TS_EXIT_ENV, "could not open a read-only session on %s (default_transaction_read_only is not on)",
			     what);
		PQclear(res);
		PQfinish(conn);
		return NULL;
	}
	PQclear(res);
	return conn;
}

int ts_pg_exec(PGconn *conn, const char *sql)
{
	PGresult *res = PQexec(conn, sql);
	int ok = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK;

	if (!ok) {
		char *e = ts_pg_result_error(res);

		ts_error_set(TS_EXIT_ENV, "%s", e);
		free(e);
	}
	PQclear(res);
	return ok ? 0 : -1;
}

PGresult *ts_pg_rows(PGconn *conn, const char *sql, const char *what)
{
	PGresult *res = PQexec(conn, sql);

	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		char *e = ts_pg_result_error(res);

		ts_error_set(TS_EXIT_ENV, "could not %s: %s", what, e);
		free(e);
		PQclear(res);
		return NULL;
	}
	return res;
}

int ts_pg_table_exists(PGconn *conn, const char *table, const char *what, int *exists)
{
	const char *params[1] = { table };
	PGresult *res = PQexecParams(conn, "SELECT to_regclass($1) IS NOT NULL", 1, NULL, params, NULL, NULL, 0);

	*exists = 0;
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		char *e = ts_pg_result_error(res);

		ts_error_set(TS_EXIT_ENV, "could not look for %s \"%s\": %s", what, table, e);
		free(e);
		PQclear(res);
		return -1;
	}
	*exists = PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	return 0;
}

char *ts_pg_result_error(const PGresult *res)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	struct strbuf sb = STRBUF_INIT;

	if (!msg)
		msg = PQresultErrorMessage(res);
	strbuf_addf(&sb, "%s: %s", state ? state : "XX000", msg && *msg ? msg : "unknown error");
	strbuf_rtrim(&sb);
	return strbuf_detach(&sb);
}

char *ts_pg_ident(PGconn *conn, const char *name)
{
	char *q = PQescapeIdentifier(conn, name, strlen(name));
	char *r = xstrdup(q);

	PQfreemem(q);
	return r;
}

char *ts_pg_qualified(const char *name)
{
	return strchr(name, '.') ? xstrdup(name) : xstrfmt("public.%s", name);
}

char *ts_pg_dbname_arg(const char *dbname)
{
	struct strbuf sb = STRBUF_INIT;

	strbuf_addstr(&sb, "dbname='");
	for (const char *p = dbname; *p; p++) {
		if (*p == '\'' || *p == '\\')
			strbuf_addch(&sb, '\\');
		strbuf_addch(&sb, *p);
	}
	strbuf_addch(&sb, '\'');
	return strbuf_detach(&sb);
}
