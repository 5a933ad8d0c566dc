/*
 * pgss.c: pg_stat_statements, read-only. See pgss.h.
 */
#include "workload/pgss.h"
#include "config/config.h"
#include "core/error.h"
#include "core/strbuf.h"
#include "core/util.h"
#include "core/wrapper.h"
#include "pg/pg.h"
#include "workload/capture.h"

#include <stdlib.h>
#include <string.h>

#define ENABLE_HINT \
	"on the source: shared_preload_libraries = 'pg_stat_statements' in postgresql.conf, a restart, then CREATE EXTENSION pg_stat_statements; in its database"

int ts_pgss_capture(const struct ts_config *cfg, struct ts_capture *c, char **shown)
{
	PGconn *conn;
	PGresult *res;
	char *schema, *q, *what;
	int r = 0;

	*shown = NULL;
	if (!cfg->dsn)
		return ts_error_set(TS_EXIT_USAGE, "%s: no [source] dsn to read pg_stat_statements from", cfg->path),
		       ts_error_hint("give [source] dsn = the production database (read-only), or capture from its logs with --log FILE");
	*shown = conninfo_redact(cfg->dsn);
	what = xstrfmt("the source (%s)", *shown);
	conn = ts_pg_connect_readonly(cfg->dsn, what);
	free(what);
	if (!conn)
		return -1;
	res = PQexec(conn, "SELECT quote_ident(n.nspname) FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
			   " WHERE e.extname = 'pg_stat_statements'");
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		PQclear(res);
		PQfinish(conn);
		return ts_error_set(TS_EXIT_ENV, "the source (%s) has no pg_stat_statements extension in its database", *shown),
		       ts_error_hint(ENABLE_HINT);
	}
	schema = xstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	/* every database's: those of others are counted as skipped */
	q = xstrfmt("SELECT s.query, s.calls, r.rolname, d.datname FROM %s.pg_stat_statements s"
		    " LEFT JOIN pg_roles r ON r.oid = s.userid LEFT JOIN pg_database d ON d.oid = s.dbid"
		    " WHERE s.calls > 0", schema);
	free(schema);
	res = PQexec(conn, q);
	free(q);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		char *e = ts_pg_result_error(res);

		r = ts_error_set(TS_EXIT_ENV, "could not read pg_stat_statements of the source (%s): %s", *shown, e);
		if (strstr(e, "shared_preload_libraries"))
			ts_error_hint(ENABLE_HINT);
		free(e);
	} else {
		if (!c->database) {
			/* the database the source's dsn names */
			c->database_read = xstrdup(PQdb(conn));
			c->database = c->database_read;
		}
		for (int i = 0; i < PQntuples(res); i++) {
			struct ts_capture_rec rec = {
				.sql = PQgetvalue(res, i, 0),
				.calls = atol(PQgetvalue(res, i, 1)),
				.role = PQgetisnull(res, i, 2) ? NULL : PQgetvalue(res, i, 2),
				.database = PQgetisnull(res, i, 3) ? NULL : PQgetvalue(res, i, 3),
				.normalized = 1,
			};

			ts_capture_add(c, &rec);
		}
	}
	PQclear(res);
	PQfinish(conn);
	return r;
}

char *ts_pgss_source_database(const struct ts_config *cfg)
{
	PQconninfoOption *opts = cfg->dsn ? PQconninfoParse(cfg->dsn, NULL) : NULL;
	char *db = NULL;

	for (PQconninfoOption *o = opts; o && o->keyword; o++)
		if (!strcmp(o->keyword, "dbname") && o->val && *o->val && !strchr(o->val, '='))
			db = xstrdup(o->val);
	PQconninfoFree(opts);
	return db ? db : xstrdup(cfg->dbname);
}
