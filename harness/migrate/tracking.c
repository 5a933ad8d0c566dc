/*
 * tracking.c: each tool's tracking table, as that tool keeps it.
 *
 * The statements mirror what the tools run against PostgreSQL:
 * golang-migrate's SetVersion (truncate, then one row, dirty while the
 * migration runs, so a failure leaves it dirty), dbmate's one insert per
 * version in the migration's transaction, Flyway's history row with
 * installed_rank, its CRC-32 checksum, installed_by and execution_time.
 */
#include "migrate/tracking.h"
#include "core/error.h"
#include "core/strbuf.h"
#include "core/util.h"
#include "core/wrapper.h"
#include "pg/pg.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static const struct {
	const char *name;
	enum ts_tracking_tool tool;
	const char *table;
} tools[] = {
	{ "auto", TS_TRACK_AUTO, NULL },
	{ "twinstage", TS_TRACK_TWINSTAGE, TS_TRACKING_TABLE },
	{ "golang-migrate", TS_TRACK_GOLANG, "schema_migrations" },
	{ "dbmate", TS_TRACK_DBMATE, "schema_migrations" },
	{ "flyway", TS_TRACK_FLYWAY, "flyway_schema_history" },
	{ "prisma", TS_TRACK_PRISMA, "_prisma_migrations" },
};

int ts_tracking_tool_parse(const char *s, enum ts_tracking_tool *out)
{
	for (size_t i = 0; i < sizeof(tools) / sizeof(tools[0]); i++)
		if (!strcmp(s, tools[i].name)) {
			*out = tools[i].tool;
			return 0;
		}
	return -1;
}

const char *ts_tracking_tool_name(enum ts_tracking_tool t)
{
	return tools[t].name;
}

enum ts_tracking_tool ts_tracking_for_format(enum ts_mig_format f)
{
	switch (f) {
	case TS_FMT_FLYWAY: return TS_TRACK_FLYWAY;
	case TS_FMT_GOLANG: return TS_TRACK_GOLANG;
	case TS_FMT_DBMATE: return TS_TRACK_DBMATE;
	case TS_FMT_PRISMA: return TS_TRACK_PRISMA;
	default: return TS_TRACK_TWINSTAGE;
	}
}

void ts_tracker_init(struct ts_tracker *t, enum ts_tracking_tool tool, const char *table)
{
	t->tool = tool;
	t->table = xstrdup(table ? table : tools[tool].table);
}

void ts_tracker_release(struct ts_tracker *t)
{
	free(t->table);
	t->table = NULL;
}

int ts_flyway_checksum(const char *text, size_t len)
{
	uLong c = crc32(0L, Z_NULL, 0);
	size_t i = 0;

	/* a UTF-8 byte order mark at the start is not content */
	if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3))
		i = 3;
	while (i < len) {
		size_t start = i;

		while (i < len && text[i] != '\n' && text[i] != '\r')
			i++;
		c = crc32(c, (const Bytef *)text + start, (uInt)(i - start));
		/* a line ends at \n, \r or \r\n, as Java's readLine says */
		if (i < len && text[i] == '\r')
			i++;
		if (i < len && text[i] == '\n')
			i++;
	}
	return (int)(int32_t)(uint32_t)c;
}

char *ts_tracking_checksum(const struct ts_tracker *t, const struct ts_migration *m)
{
	if (t->tool == TS_TRACK_FLYWAY)
		return xstrfmt("%d", ts_flyway_checksum(m->up, strlen(m->up)));
	if (t->tool == TS_TRACK_TWINSTAGE)
		return xstrdup(m->checksum);
	if (t->tool == TS_TRACK_PRISMA) {
		char hex[65];

		sha256_hex(m->up, strlen(m->up), hex);
		return xstrdup(hex);
	}
	return xstrdup("");
}

/* The table's name as SQL: each dotted part quoted. */
static char *qualified(PGconn *conn, const struct ts_tracker *t)
{
	struct strbuf sb = STRBUF_INIT;
	char *copy = xstrdup(t->table), *save = NULL;

	for (char *p = strtok_r(copy, ".", &save); p; p = strtok_r(NULL, ".", &save)) {
		char *q = ts_pg_ident(conn, p);

		strbuf_addf(&sb, "%s%s", sb.len ? "." : "", q);
		free(q);
	}
	free(copy);
	return strbuf_detach(&sb);
}

/* Runs sql with the table's quoted name wherever it says {t}. */
static PGresult *exec_on(PGconn *conn, const struct ts_tracker *t, const char *sql, int n,
			 const char *const *params)
{
	char *tbl = qualified(conn, t);
	struct strbuf sb = STRBUF_INIT;
	PGresult *res;

	for (const char *p = sql; *p; p++) {
		if (!strncmp(p, "{t}", 3)) {
			strbuf_addstr(&sb, tbl);
			p += 2;
		} else {
			strbuf_addch(&sb, *p);
		}
	}
	res = PQexecParams(conn, sb.buf, n, NULL, params, NULL, NULL, 0);
	strbuf_release(&sb);
	free(tbl);
	return res;
}

static int exec_ok(PGconn *conn, const struct ts_tracker *t, const char *sql, int n,
		   const char *const *params)
{
	PGresult *res = exec_on(conn, t, sql, n, params);
	ExecStatusType s = PQresultStatus(res);
	int ok = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;

	if (!ok) {
		char *e = ts_pg_result_error(res);

		ts_error_set(TS_EXIT_ENV, "tracking table \"%s\": %s", t->table, e);
		free(e);
	}
	PQclear(res);
	return ok ? 0 : -1;
}

/* Keeps st->latest the newest version applied successfully, as rows are read. */
static void note_latest(struct ts_tracking_state *st, const struct ts_applied *a)
{
	if (a->version && a->success && (!st->latest || ts_version_cmp(a->version, st->latest) > 0)) {
		free(st->latest);
		st->latest = xstrdup(a->version);
	}
}

static void add_row(struct ts_tracking_state *st, const char *version, const char *description,
		    const char *checksum, int success)
{
	struct ts_applied *a;

	st->rows = xrealloc(st->rows, (st->n + 1) * sizeof(*st->rows));
	a = &st->rows[st->n++];
	a->version = version ? xstrdup(version) : NULL;
	a->description = description ? xstrdup(description) : NULL;
	a->checksum = checksum ? xstrdup(checksum) : NULL;
	a->success = success;
	note_latest(st, a);
}

/* Forgets the rows of a version that was undone, and finds the latest again. */
static void undo_row(struct ts_tracking_state *st, const char *version)
{
	size_t k = 0;

	free(st->latest);
	st->latest = NULL;
	for (size_t i = 0; i < st->n; i++) {
		struct ts_applied *a = &st->rows[i];

		if (a->version && !ts_version_cmp(a->version, version)) {
			free(a->version);
			free(a->description);
			free(a->checksum);
			continue;
		}
		st->rows[k++] = *a;
		note_latest(st, a);
	}
	st->n = k;
}

int ts_tracking_resolve(PGconn *conn, struct ts_tracker *t)
{
	const char *params[1] = { t->table };
	PGresult *res;

	if (strchr(t->table, '.'))
		return 0;
	/* where the search_path finds it, as the tool's unqualified statements do; else where it would make it */
	res = PQexecParams(conn, "SELECT coalesce((SELECT n.nspname FROM pg_class c"
				 " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass($1)),"
				 " current_schema())", 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQgetisnull(res, 0, 0)) {
		char *e = ts_pg_result_error(res);

		ts_error_set(TS_EXIT_ENV, "could not find tracking table \"%s\": %s", t->table,
			     PQresultStatus(res) == PGRES_TUPLES_OK ? "the search_path names no schema that exists" : e);
		free(e);
		PQclear(res);
		return -1;
	}
	{
		char *q = xstrfmt("%s.%s", PQgetvalue(res, 0, 0), t->table);

		free(t->table);
		t->table = q;
	}
	PQclear(res);
	return 0;
}

int ts_tracking_read(PGconn *conn, const struct ts_tracker *t, struct ts_tracking_state *st)
{
	static const char *const queries[] = {
		[TS_TRACK_TWINSTAGE] = "SELECT version, description, checksum, success, false FROM {t} ORDER BY installed_on, key",
		[TS_TRACK_GOLANG] = "SELECT version::text, NULL, NULL, NOT dirty, false FROM {t}",
		[TS_TRACK_DBMATE] = "SELECT version, NULL, NULL, true, false FROM {t} ORDER BY version",
		/* an undo (Teams edition) takes its version back out */
		[TS_TRACK_FLYWAY] = "SELECT version, description, checksum::text, success, type = 'UNDO_SQL' FROM {t} ORDER BY installed_rank",
		/* a row rolled back (prisma migrate resolve --rolled-back) is no longer applied */
		[TS_TRACK_PRISMA] = "SELECT substring(migration_name from '^[0-9]+'),"
				    " replace(substring(migration_name from '^[0-9]+_(.*)$'), '_', ' '), checksum,"
				    " finished_at IS NOT NULL, rolled_back_at IS NOT NULL"
				    " FROM {t} ORDER BY started_at, migration_name",
	};
	PGresult *res;

	memset(st, 0, sizeof(*st));
	if (ts_pg_table_exists(conn, t->table, "tracking table", &st->exists))
		return -1;
	if (!st->exists)
		return 0;
	res = exec_on(conn, t, queries[t->tool], 0, NULL);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		char *e = ts_pg_result_error(res);

		ts_error_set(TS_EXIT_USAGE, "could not read tracking table \"%s\" as %s keeps it: %s",
			     t->table, ts_tracking_tool_name(t->tool), e);
		ts_error_hint("set [project] tracking to the tool that made it, or tracking_table to its name");
		free(e);
		PQclear(res);
		return -1;
	}
	for (int i = 0; i < PQntuples(res); i++) {
		int ok = PQgetvalue(res, i, 3)[0] == 't';

		if (PQgetvalue(res, i, 4)[0] == 't') {
			if (ok && t->tool == TS_TRACK_FLYWAY)
				undo_row(st, PQgetvalue(res, i, 0));
			continue;	/* Prisma: a migration marked rolled back counts for nothing */
		}

		add_row(st, PQgetisnull(res, i, 0) ? NULL : PQgetvalue(res, i, 0),
			PQgetisnull(res, i, 1) ? NULL : PQgetvalue(res, i, 1),
			PQgetisnull(res, i, 2) ? NULL : PQgetvalue(res, i, 2), ok);
		if (t->tool == TS_TRACK_GOLANG && !ok) {
			st->dirty = 1;
			free(st->latest);
			st->latest = xstrdup(PQgetvalue(res, i, 0));
		}
	}
	PQclear(res);
	return 0;
}

void ts_tracking_state_free(struct ts_tracking_state *st)
{
	for (size_t i = 0; i < st->n; i++) {
		free(st->rows[i].version);
		free(st->rows[i].description);
		free(st->rows[i].checksum);
	}
	free(st->rows);
	free(st->latest);
	memset(st, 0, sizeof(*st));
}

int ts_tracking_check(const struct ts_tracker *t, const struct ts_tracking_state *st,
		      const char *side)
{
	if (st->dirty)
		return ts_error_set(TS_EXIT_USAGE,
				    "the %s's %s table \"%s\" is dirty at version %s: that migration did not finish",
				    side, ts_tracking_tool_name(t->tool), t->table, st->latest),
		       ts_error_hint("fix the database and clear the flag as golang-migrate says (migrate force VERSION) before rehearsing");
	for (size_t i = 0; i < st->n; i++)
		if (!st->rows[i].success)
			return ts_error_set(TS_EXIT_USAGE,
					    "the %s's table \"%s\" records a failed migration: version %s (%s)",
					    side, t->table,
					    st->rows[i].version ? st->rows[i].version : "repeatable",
					    st->rows[i].description ? st->rows[i].description : "?"),
			       ts_error_hint(t->tool == TS_TRACK_FLYWAY ?
					     "repair it first (flyway repair) so that production is in a known state" :
					     t->tool == TS_TRACK_PRISMA ?
					     "resolve it first (prisma migrate resolve --rolled-back or --applied) so that production is in a known state" :
					     "start from a fresh clone: \"twinstage down\", then \"twinstage up\"");
	return 0;
}

static const struct ts_migration *find(const struct ts_migrations *set, const char *version)
{
	for (size_t i = 0; i < set->n; i++)
		if (set->v[i].version && !ts_version_cmp(set->v[i].version, version))
			return &set->v[i];
	return NULL;
}

void ts_tracking_drift(const struct ts_tracker *t, const struct ts_tracking_state *st,
		       const struct ts_migrations *set, struct strvec *out)
{
	if (t->tool == TS_TRACK_GOLANG) {
		/* one row: only the version it names can be checked */
		if (st->latest && !find(set, st->latest))
			strvec_pushf(out, "version %s is applied in production but has no file in the migrations folder",
				     st->latest);
		return;
	}
	for (size_t i = 0; i < st->n; i++) {
		const struct ts_applied *a = &st->rows[i];
		const struct ts_migration *m;
		char *sum;

		if (!a->version && a->success && a->description && t->tool == TS_TRACK_FLYWAY) {
			int known = 0, said = 0;

			for (size_t k = 0; k < set->n; k++)
				known |= set->v[k].repeatable && !strcmp(set->v[k].description, a->description);
			for (size_t k = 0; k < i; k++)	/* a repeatable re-run has a row each time */
				said |= !st->rows[k].version && st->rows[k].description &&
					!strcmp(st->rows[k].description, a->description);
			if (!known && !said)
				strvec_pushf(out, "repeatable migration \"%s\" is applied in production but has no file in the migrations folder",
					     a->description);
			continue;
		}
		if (!a->version || !a->success)
			continue;
		if (!(m = find(set, a->version))) {
			strvec_pushf(out, "version %s (%s) is applied in production but has no file in the migrations folder",
				     a->version, a->description ? a->description : "no description");
			continue;
		}
		if ((t->tool != TS_TRACK_FLYWAY && t->tool != TS_TRACK_PRISMA) || !a->checksum)
			continue;
		sum = ts_tracking_checksum(t, m);
		if (strcmp(sum, a->checksum))
			strvec_pushf(out, "%s differs from what production applied (checksum %s there, %s in the file)",
				     m->file, a->checksum, sum);
		free(sum);
	}
}

int ts_tracking_applied(const struct ts_tracker *t, const struct ts_tracking_state *st,
			const struct ts_migration *m, char **recorded)
{
	const struct ts_applied *hit = NULL;

	*recorded = NULL;
	if (t->tool == TS_TRACK_GOLANG)
		return m->version && st->latest && !st->dirty && ts_version_cmp(m->version, st->latest) <= 0;
	for (size_t i = 0; i < st->n; i++) {
		const struct ts_applied *a = &st->rows[i];

		if (!a->success)
			continue;
		if (m->repeatable ? (!a->version && a->description && !strcmp(a->description, m->description))
				  : (a->version && !ts_version_cmp(a->version, m->version)))
			hit = a;	/* the last row wins: a repeatable re-run adds one */
	}
	if (!hit)
		return 0;
	if (hit->checksum)
		*recorded = xstrdup(hit->checksum);
	if (m->repeatable) {
		char *now = ts_tracking_checksum(t, m);
		int same = hit->checksum && !strcmp(now, hit->checksum);

		free(now);
		return same;
	}
	return 1;
}

int ts_tracking_prepare(PGconn *conn, const struct ts_tracker *t)
{
	switch (t->tool) {
	case TS_TRACK_TWINSTAGE:
		return exec_ok(conn, t, "CREATE TABLE IF NOT EXISTS {t} ("
				   " key text PRIMARY KEY, version text, description text NOT NULL,"
				   " script text NOT NULL, checksum text NOT NULL,"
				   " installed_on timestamptz NOT NULL DEFAULT now(),"
				   " execution_ms integer NOT NULL, success boolean NOT NULL)", 0, NULL);
	case TS_TRACK_GOLANG:
		return exec_ok(conn, t, "CREATE TABLE IF NOT EXISTS {t} (version bigint NOT NULL PRIMARY KEY,"
				   " dirty boolean NOT NULL)", 0, NULL);
	case TS_TRACK_DBMATE:
		return exec_ok(conn, t, "CREATE TABLE IF NOT EXISTS {t} (version varchar(255) PRIMARY KEY)",
			       0, NULL);
	case TS_TRACK_FLYWAY: {
		struct ts_tracking_state st;
		int r;

		if (ts_tracking_read(conn, t, &st))
			return -1;
		r = st.exists ? 0 :
			exec_ok(conn, t, "CREATE TABLE {t} (installed_rank integer NOT NULL,"
				" version varchar(50), description varchar(200) NOT NULL,"
				" type varchar(20) NOT NULL, script varchar(1000) NOT NULL, checksum integer,"
				" installed_by varchar(100) NOT NULL, installed_on timestamp NOT NULL DEFAULT now(),"
				" execution_time integer NOT NULL, success boolean NOT NULL,"
				" PRIMARY KEY (installed_rank))", 0, NULL);
		ts_tracking_state_free(&st);
		return r;
	}
	case TS_TRACK_PRISMA:
		/* as Prisma Migrate makes it on PostgreSQL */
		return exec_ok(conn, t, "CREATE TABLE IF NOT EXISTS {t} ("
				   " id varchar(36) PRIMARY KEY NOT NULL, checksum varchar(64) NOT NULL,"
				   " finished_at timestamptz, migration_name varchar(255) NOT NULL, logs text,"
				   " rolled_back_at timestamptz, started_at timestamptz NOT NULL DEFAULT now(),"
				   " applied_steps_count integer NOT NULL DEFAULT 0)", 0, NULL);
	default:
		return ts_error_set(TS_EXIT_USAGE, "no tracking tool chosen");
	}
}

/* Prisma's migration_name: the folder's name, "<timestamp>_<name>" ("20240101120000_add_note"). */
static char *prisma_name(const struct ts_migration *m)
{
	const char *slash = strchr(m->file, '/');

	return slash ? xstrndup(m->file, (size_t)(slash - m->file)) : xstrdup(m->file);
}

/* golang-migrate's SetVersion: the table holds exactly one row. */
static int golang_set(PGconn *conn, const struct ts_tracker *t, const char *version, int dirty)
{
	const char *params[2] = { version, dirty ? "t" : "f" };

	return exec_ok(conn, t, "TRUNCATE {t}", 0, NULL) ||
	       exec_ok(conn, t, "INSERT INTO {t} (version, dirty) VALUES ($1::bigint, $2)", 2, params);
}

int ts_tracking_begin(PGconn *conn, const struct ts_tracker *t, const struct ts_migration *m)
{
	int r;

	if (t->tool == TS_TRACK_PRISMA) {
		/* started before it runs, finished after: a failure stays a started, unfinished row */
		char *name = prisma_name(m), *sum = ts_tracking_checksum(t, m);
		const char *p[2] = { name, sum };

		r = exec_ok(conn, t, "INSERT INTO {t} (id, checksum, migration_name, started_at, applied_steps_count)"
			    " VALUES (gen_random_uuid()::text, $2, $1, now(), 0)", 2, p);
		free(name);
		free(sum);
		return r;
	}
	if (t->tool != TS_TRACK_GOLANG)
		return 0;
	/* in its own transaction, so that a failed migration leaves it dirty, as the tool does */
	if (ts_pg_exec(conn, "BEGIN"))
		return -1;
	r = golang_set(conn, t, m->version, 1);
	if (r) {
		PQclear(PQexec(conn, "ROLLBACK"));
		return -1;
	}
	return ts_pg_exec(conn, "COMMIT");
}

int ts_tracking_record(PGconn *conn, const struct ts_tracker *t, const struct ts_migration *m,
		       double ms, int success)
{
	char msbuf[32];
	char *sum = ts_tracking_checksum(t, m);
	int r = 0;

	snprintf(msbuf, sizeof(msbuf), "%d", (int)(ms + 0.5));
	switch (t->tool) {
	case TS_TRACK_TWINSTAGE: {
		char *key = m->repeatable ? xstrfmt("R__%s", m->description) : xstrdup(m->version);
		const char *p[7] = { key, m->version, m->description, m->file, sum, msbuf,
				     success ? "t" : "f" };

		r = exec_ok(conn, t, "INSERT INTO {t} (key, version, description, script, checksum,"
			    " execution_ms, success) VALUES ($1, $2, $3, $4, $5, $6, $7)"
			    " ON CONFLICT (key) DO UPDATE SET checksum = EXCLUDED.checksum,"
			    " script = EXCLUDED.script, installed_on = now(),"
			    " execution_ms = EXCLUDED.execution_ms, success = EXCLUDED.success", 7, p);
		free(key);
		break;
	}
	case TS_TRACK_GOLANG:
		/* a failed migration stays dirty */
		r = success ? golang_set(conn, t, m->version, 0) : 0;
		break;
	case TS_TRACK_DBMATE: {
		const char *p[1] = { m->version };

		r = success ? exec_ok(conn, t, "INSERT INTO {t} (version) VALUES ($1)", 1, p) : 0;
		break;
	}
	case TS_TRACK_PRISMA: {
		char *name = prisma_name(m);
		const char *p[1] = { name };

		r = success ? exec_ok(conn, t, "UPDATE {t} SET finished_at = now(), applied_steps_count = 1"
				      " WHERE migration_name = $1 AND finished_at IS NULL AND rolled_back_at IS NULL", 1, p)
			    : exec_ok(conn, t, "UPDATE {t} SET logs = 'failed during a twinstage rehearsal'"
				      " WHERE migration_name = $1 AND finished_at IS NULL AND rolled_back_at IS NULL", 1, p);
		free(name);
		break;
	}
	case TS_TRACK_FLYWAY: {
		char *version = m->version ? xstrdup(m->version) : NULL;
		const char *p[6];

		/* Flyway shows 1_1 as 1.1 */
		for (char *c = version; c && *c; c++)
			if (*c == '_')
				*c = '.';
		p[0] = version;
		p[1] = m->description;
		p[2] = m->file;
		p[3] = sum;
		p[4] = msbuf;
		p[5] = success ? "t" : "f";
		r = exec_ok(conn, t, "INSERT INTO {t} (installed_rank, version, description, type, script,"
			    " checksum, installed_by, execution_time, success)"
			    " SELECT coalesce(max(installed_rank), 0) + 1, $1, $2, 'SQL', $3, $4::integer,"
			    " current_user, $5::integer, $6 FROM {t}", 6, p);
		free(version);
		break;
	}
	default:
		break;
	}
	free(sum);
	return r;
}

int ts_tracking_unrecord(PGconn *conn, const struct ts_tracker *t, const struct ts_migration *m,
			 const char *prev, double ms)
{
	const char *p[1] = { m->version };

	switch (t->tool) {
	case TS_TRACK_TWINSTAGE:
		return exec_ok(conn, t, "DELETE FROM {t} WHERE key = $1", 1, p);
	case TS_TRACK_GOLANG:
		return prev ? golang_set(conn, t, prev, 0) : exec_ok(conn, t, "TRUNCATE {t}", 0, NULL);
	case TS_TRACK_DBMATE:
		return exec_ok(conn, t, "DELETE FROM {t} WHERE version = $1", 1, p);
	case TS_TRACK_PRISMA: {
		/* as prisma migrate resolve --rolled-back marks it */
		char *name = prisma_name(m);
		const char *q[1] = { name };
		int r = exec_ok(conn, t, "UPDATE {t} SET rolled_back_at = now() WHERE migration_name = $1"
				" AND rolled_back_at IS NULL", 1, q);

		free(name);
		return r;
	}
	case TS_TRACK_FLYWAY: {
		char msbuf[32], *version = xstrdup(m->version);
		const char *q[4];
		int r;

		for (char *c = version; *c; c++)
			if (*c == '_')
				*c = '.';
		snprintf(msbuf, sizeof(msbuf), "%d", (int)(ms + 0.5));
		q[0] = version;
		q[1] = m->description;
		q[2] = m->down_file ? m->down_file : m->file;
		q[3] = msbuf;
		r = exec_ok(conn, t, "INSERT INTO {t} (installed_rank, version, description, type, script,"
			    " checksum, installed_by, execution_time, success)"
			    " SELECT coalesce(max(installed_rank), 0) + 1, $1, $2, 'UNDO_SQL', $3, NULL,"
			    " current_user, $4::integer, true FROM {t}", 4, q);
		free(version);
		return r;
	}
	default:
		return 0;
	}
}

json_t *ts_tracking_state_to_json(const struct ts_tracking_state *st)
{
	json_t *rows = json_array();

	for (size_t i = 0; i < st->n; i++)
		json_array_append_new(rows, json_pack("{s:s?, s:s?, s:s?, s:b}", "version", st->rows[i].version,
						      "description", st->rows[i].description, "checksum",
						      st->rows[i].checksum, "success", st->rows[i].success));
	return json_pack("{s:b, s:b, s:s?, s:o}", "exists", st->exists, "dirty", st->dirty, "latest",
			 st->latest, "rows", rows);
}

int ts_tracking_state_from_json(json_t *j, struct ts_tracking_state *st)
{
	json_t *rows = json_object_get(j, "rows"), *r;
	size_t i;

	memset(st, 0, sizeof(*st));
	if (!json_is_object(j) || !json_is_array(rows))
		return -1;
	st->exists = json_is_true(json_object_get(j, "exists"));
	json_array_foreach(rows, i, r) {
		if (!json_is_object(r)) {
			ts_tracking_state_free(st);
			return -1;
		}
		add_row(st, json_string_value(json_object_get(r, "version")),
			json_string_value(json_object_get(r, "description")),
			json_string_value(json_object_get(r, "checksum")),
			json_is_true(json_object_get(r, "success")));
	}
	/* the table's own word on where it is: golang-migrate's one row */
	if (json_string_value(json_object_get(j, "latest"))) {
		free(st->latest);
		st->latest = xstrdup(json_string_value(json_object_get(j, "latest")));
	}
	st->dirty = json_is_true(json_object_get(j, "dirty"));
	return 0;
}

static int same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

/* The row of b that records what a records (same version, or same repeatable), or NULL. */
static const struct ts_applied *row_like(const struct ts_tracking_state *b, const struct ts_applied *a)
{
	for (size_t i = 0; i < b->n; i++)
		if (a->version ? b->rows[i].version && !ts_version_cmp(a->version, b->rows[i].version)
			       : !b->rows[i].version && same_str(a->description, b->rows[i].description) &&
				 same_str(a->checksum, b->rows[i].checksum))
			return &b->rows[i];
	return NULL;
}

void ts_tracking_compare(const struct ts_tracker *t, const struct ts_tracking_state *was,
			 const struct ts_tracking_state *now, const char *who, struct strvec *out)
{
	if (!same_str(was->latest, now->latest) || was->dirty != now->dirty)
		strvec_pushf(out, "%s is at version %s%s, the rehearsal was against %s%s", who,
			     now->latest ? now->latest : "none", now->dirty ? " (dirty)" : "",
			     was->latest ? was->latest : "none", was->dirty ? " (dirty)" : "");
	if (t->tool == TS_TRACK_GOLANG)
		return;	/* one row: the version is all it keeps */
	for (size_t i = 0; i < now->n; i++) {
		const struct ts_applied *a = &now->rows[i], *w = row_like(was, a);
		const char *name = a->version ? a->version : a->description ? a->description : "?";

		if (!w)
			strvec_pushf(out, "%s lists %s%s (%s), which the rehearsal's did not", who,
				     a->version ? "version " : "repeatable ", name,
				     a->description ? a->description : "no description");
		else if (!same_str(w->checksum, a->checksum) || w->success != a->success)
			strvec_pushf(out, "%s's row of %s%s differs (checksum %s, %s; the rehearsal's: %s, %s)", who,
				     a->version ? "version " : "repeatable ", name,
				     a->checksum ? a->checksum : "none", a->success ? "succeeded" : "failed",
				     w->checksum ? w->checksum : "none", w->success ? "succeeded" : "failed");
	}
	for (size_t i = 0; i < was->n; i++)
		if (!row_like(now, &was->rows[i]))
			strvec_pushf(out, "%s no longer lists %s%s, which the rehearsal's did", who,
				     was->rows[i].version ? "version " : "repeatable ",
				     was->rows[i].version ? was->rows[i].version :
				     was->rows[i].description ? was->rows[i].description : "?");
}

void ts_tracking_state_copy(struct ts_tracking_state *to, const struct ts_tracking_state *from)
{
	memset(to, 0, sizeof(*to));
	to->exists = from->exists;
	for (size_t i = 0; i < from->n; i++)
		add_row(to, from->rows[i].version, from->rows[i].description, from->rows[i].checksum,
			from->rows[i].success);
	free(to->latest);
	to->latest = from->latest ? xstrdup(from->latest) : NULL;
	to->dirty = from->dirty;
}
