/*
 * trace.c: sampling pg_locks beside a running statement, and reading the
 * catalogs and the transaction's own statistics after it.
 */
#include "pg/trace.h"
#include "core/error.h"
#include "core/strbuf.h"
#include "core/util.h"
#include "core/wrapper.h"
#include "pg/pg.h"

#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SAMPLE_MS 5

static const char rels_sql[] =
	"SELECT c.oid::int8, n.nspname || '.' || c.relname, c.relkind, c.relfilenode::int8"
	" FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
	" WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')"
	"   AND n.nspname !~ '^pg_(toast|temp)' AND c.relkind IN ('r', 'p', 'm', 'i')"
	/* the tracking table, and its index: the tool's bookkeeping, not a finding */
	"   AND c.oid IS DISTINCT FROM to_regclass($1)"
	"   AND NOT EXISTS (SELECT 1 FROM pg_index x WHERE x.indexrelid = c.oid AND x.indrelid = to_regclass($1))"
	" ORDER BY c.oid";

static const char locks_sql[] =
	"SELECT relation::int8, mode FROM pg_locks"
	" WHERE pid = $1 AND locktype = 'relation' AND granted AND relation IS NOT NULL";

int ts_lock_blocks(const char *mode)
{
	return !strcmp(mode, "AccessExclusiveLock") || !strcmp(mode, "ExclusiveLock") ||
	       !strcmp(mode, "ShareRowExclusiveLock") || !strcmp(mode, "ShareLock");
}

static int rel_cmp(const void *key, const void *elem)
{
	unsigned k = *(const unsigned *)key, e = ((const struct ts_trace_rel *)elem)->oid;

	return k < e ? -1 : k > e;
}

static struct ts_trace_rel *rel_find(struct ts_trace *t, unsigned oid)
{
	return bsearch(&oid, t->rels, t->n_rels, sizeof(*t->rels), rel_cmp);
}

static PGresult *query(PGconn *conn, const char *sql, const char *param)
{
	const char *params[1] = { param };
	PGresult *res = PQexecParams(conn, sql, param ? 1 : 0, NULL, params, NULL, NULL, 0);

	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		PQclear(res);
		return NULL;
	}
	return res;
}

int ts_trace_start(struct ts_trace *t, PGconn *conn, PGconn *observer, double max_lock_ms,
		   const char *skip)
{
	PGresult *res;

	memset(t, 0, sizeof(*t));
	t->conn = conn;
	t->observer = observer;
	t->max_lock_ms = max_lock_ms;
	t->tx_fresh = 1;
	snprintf(t->pid, sizeof(t->pid), "%d", PQbackendPID(conn));
	{
		const char *params[1] = { skip };	/* NULL: nothing left out */

		res = PQexecParams(conn, rels_sql, 1, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			PQclear(res);
			res = NULL;
		}
	}
	if (!res) {
		ts_error_set(TS_EXIT_ENV, "dev side: could not read pg_class: %s", PQerrorMessage(conn));
		ts_trace_end(t);
		return -1;
	}
	t->rels = xcalloc((size_t)PQntuples(res) + 1, sizeof(*t->rels));
	for (int i = 0; i < PQntuples(res); i++) {
		struct ts_trace_rel *r = &t->rels[t->n_rels++];

		r->oid = (unsigned)strtoul(PQgetvalue(res, i, 0), NULL, 10);
		r->name = xstrdup(PQgetvalue(res, i, 1));
		r->kind = PQgetvalue(res, i, 2)[0];
		r->filenode = strtoul(PQgetvalue(res, i, 3), NULL, 10);
	}
	PQclear(res);
	{
		struct strbuf oids = STRBUF_INIT;

		strbuf_addch(&oids, '{');
		for (size_t i = 0; i < t->n_rels; i++)
			strbuf_addf(&oids, "%s%u", i ? "," : "", t->rels[i].oid);
		strbuf_addch(&oids, '}');
		t->oids = strbuf_detach(&oids);
	}
	return 0;
}

void ts_trace_end(struct ts_trace *t)
{
	for (size_t i = 0; i < t->n_rels; i++)
		free(t->rels[i].name);
	free(t->rels);
	free(t->oids);
	for (size_t i = 0; i < t->n_held; i++)
		free(t->held[i].mode);
	free(t->held);
	if (t->observer)
		PQfinish(t->observer);
	memset(t, 0, sizeof(*t));
}

/* The (relation, mode) pairs a statement was seen holding. */
struct seen {
	unsigned *oid;
	char **mode;
	size_t n;
};

static void seen_add(struct seen *s, unsigned oid, const char *mode)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->oid[i] == oid && !strcmp(s->mode[i], mode))
			return;
	s->oid = xrealloc(s->oid, (s->n + 1) * sizeof(*s->oid));
	s->mode = xrealloc(s->mode, (s->n + 1) * sizeof(*s->mode));
	s->oid[s->n] = oid;
	s->mode[s->n++] = xstrdup(mode);
}

static void seen_free(struct seen *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->mode[i]);
	free(s->oid);
	free(s->mode);
}

/* Adds the granted locks on pre-existing tables that `pid` holds. */
static void sample(struct ts_trace *t, PGconn *conn, const char *pid, struct seen *s)
{
	PGresult *res = query(conn, locks_sql, pid);

	if (!res)
		return;
	for (int i = 0; i < PQntuples(res); i++) {
		unsigned oid = (unsigned)strtoul(PQgetvalue(res, i, 0), NULL, 10);
		struct ts_trace_rel *r = rel_find(t, oid);

		if (r && r->kind != 'i')
			seen_add(s, oid, PQgetvalue(res, i, 1));
	}
	PQclear(res);
}

/*
 * Lists the pre-existing tables the statement scanned whole: their
 * sequential scans went up. pg_stat_xact_user_tables shows what the
 * session has not yet flushed to the shared statistics, which (since
 * PostgreSQL 15) may include earlier transactions; it is flushed only
 * between transactions, so the count read at the start of a transaction
 * holds for all of it. Only the traced statements run user SQL in the
 * transaction, so the count left by the previous one is the count before
 * this one. With scans NULL, only reads that count.
 */
static void read_scans(struct ts_trace *t, json_t *scans)
{
	PGresult *res = query(t->conn, "SELECT relid::int8, seq_scan FROM pg_stat_xact_user_tables", NULL);

	if (!res)
		return;
	for (int i = 0; i < PQntuples(res); i++) {
		struct ts_trace_rel *r = rel_find(t, (unsigned)strtoul(PQgetvalue(res, i, 0), NULL, 10));
		long long n = strtoll(PQgetvalue(res, i, 1), NULL, 10);

		if (!r)
			continue;
		if (scans && n > r->seq_scan)
			json_array_append_new(scans, json_string(r->name));
		r->seq_scan = n;
	}
	PQclear(res);
}

static void read_rewrites(struct ts_trace *t, json_t *rewrites)
{
	PGresult *res = query(t->conn,
			      "SELECT oid::int8, relfilenode::int8 FROM pg_class WHERE oid = ANY($1::oid[])",
			      t->oids);

	if (!res)
		return;
	for (int i = 0; i < PQntuples(res); i++) {
		struct ts_trace_rel *r = rel_find(t, (unsigned)strtoul(PQgetvalue(res, i, 0), NULL, 10));
		unsigned long fn = strtoul(PQgetvalue(res, i, 1), NULL, 10);

		if (r && fn != r->filenode) {
			json_array_append_new(rewrites, json_string(r->name));
			r->filenode = fn;
		}
	}
	PQclear(res);
}

static void lock_timed(struct ts_trace *t, json_t *lock, double held_ms)
{
	int blocking = json_is_true(json_object_get(lock, "blocking"));

	json_object_set_new(lock, "held_ms", json_real(held_ms));
	json_object_set_new(lock, "over_gate",
			    json_boolean(blocking && t->max_lock_ms > 0 && held_ms > t->max_lock_ms));
}

static int is_held(struct ts_trace *t, unsigned oid, const char *mode)
{
	for (size_t i = 0; i < t->n_held; i++)
		if (t->held[i].oid == oid && !strcmp(t->held[i].mode, mode))
			return 1;
	return 0;
}

PGresult *ts_trace_exec(struct ts_trace *t, const char *sql, int in_tx, json_t **facts)
{
	struct seen seen = { 0 };
	json_t *locks = json_array(), *rewrites = json_array(), *scans = json_array();
	PGresult *res = NULL, *r;
	double t0, ms;
	int ok, cancelled = 0;

	if (in_tx && t->tx_fresh) {
		/* the counts before the transaction's first statement */
		for (size_t i = 0; i < t->n_rels; i++)
			t->rels[i].seq_scan = 0;
		read_scans(t, NULL);
		t->tx_fresh = 0;
	}
	t0 = now_ms();
	if (!PQsendQuery(t->conn, sql)) {
		*facts = json_pack("{s:o, s:o, s:o}", "locks", locks, "rewrites", rewrites, "scans", scans);
		return PQmakeEmptyPGresult(t->conn, PGRES_FATAL_ERROR);
	}
	for (;;) {
		struct pollfd pfd = { .fd = PQsocket(t->conn), .events = POLLIN };

		if (poll(&pfd, 1, SAMPLE_MS) > 0 && !PQconsumeInput(t->conn))
			break;
		if (!PQisBusy(t->conn))
			break;
		if (ts_interrupted && !cancelled) {
			PGcancel *c = PQgetCancel(t->conn);
			char buf[256];

			if (c) {
				PQcancel(c, buf, sizeof(buf));
				PQfreeCancel(c);
			}
			cancelled = 1;
		}
		if (t->observer)
			sample(t, t->observer, t->pid, &seen);
	}
	while ((r = PQgetResult(t->conn))) {
		PQclear(res);
		res = r;
	}
	ms = now_ms() - t0;
	ok = res && (PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK ||
		     PQresultStatus(res) == PGRES_EMPTY_QUERY);
	if (ok && in_tx)
		sample(t, t->conn, t->pid, &seen);
	for (size_t i = 0; i < seen.n; i++) {
		json_t *lock;

		if (in_tx && is_held(t, seen.oid[i], seen.mode[i]))
			continue;
		lock = json_pack("{s:s, s:s, s:b}", "relation", rel_find(t, seen.oid[i])->name,
				 "mode", seen.mode[i], "blocking", ts_lock_blocks(seen.mode[i]));
		json_array_append_new(locks, lock);
		if (in_tx) {
			struct ts_trace_held *h;

			t->held = xrealloc(t->held, (t->n_held + 1) * sizeof(*t->held));
			h = &t->held[t->n_held++];
			h->oid = seen.oid[i];
			h->mode = xstrdup(seen.mode[i]);
			h->since = t0;
			h->lock = lock;
		} else {
			lock_timed(t, lock, ms);
		}
	}
	seen_free(&seen);
	if (ok) {
		read_rewrites(t, rewrites);
		if (in_tx)
			read_scans(t, scans);
	}
	*facts = json_pack("{s:o, s:o, s:o}", "locks", locks, "rewrites", rewrites, "scans", scans);
	return res ? res : PQmakeEmptyPGresult(t->conn, PGRES_FATAL_ERROR);
}

void ts_trace_tx_end(struct ts_trace *t)
{
	double now = now_ms();

	for (size_t i = 0; i < t->n_held; i++) {
		lock_timed(t, t->held[i].lock, now - t->held[i].since);
		free(t->held[i].mode);
	}
	t->n_held = 0;
	t->tx_fresh = 1;
}

int ts_trace_mark(PGconn *conn, struct ts_trace_mark *m)
{
	PGresult *res = ts_pg_rows(conn,
		"SELECT pg_current_wal_lsn()::text, n.nspname || '.' || c.relname, pg_table_size(c.oid),"
		" pg_indexes_size(c.oid)"
		" FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
		" WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
		" AND n.nspname !~ '^pg_(toast|temp)'"
		" UNION ALL SELECT pg_current_wal_lsn()::text, NULL, NULL, NULL", "read the sizes of the tables");
	unsigned hi = 0, lo = 0;

	memset(m, 0, sizeof(*m));
	if (!res)
		return -1;
	m->sizes = json_object();
	for (int i = 0; i < PQntuples(res); i++) {
		if (PQgetisnull(res, i, 1)) {
			if (sscanf(PQgetvalue(res, i, 0), "%X/%X", &hi, &lo) == 2)
				m->lsn = (unsigned long long)hi << 32 | lo;
			continue;
		}
		json_object_set_new(m->sizes, PQgetvalue(res, i, 1),
				    json_pack("[I, I]", (json_int_t)strtoll(PQgetvalue(res, i, 2), NULL, 10),
					      (json_int_t)strtoll(PQgetvalue(res, i, 3), NULL, 10)));
	}
	PQclear(res);
	return 0;
}

static json_int_t size_at(json_t *sizes, const char *table, size_t k)
{
	return json_integer_value(json_array_get(json_object_get(sizes, table), k));
}

json_t *ts_trace_mark_diff(const struct ts_trace_mark *a, const struct ts_trace_mark *b)
{
	json_t *out = json_array(), *v;
	const char *table;

	json_object_foreach(b->sizes, table, v)
		if (size_at(a->sizes, table, 0) != size_at(b->sizes, table, 0) ||
		    size_at(a->sizes, table, 1) != size_at(b->sizes, table, 1) || !json_object_get(a->sizes, table))
			json_array_append_new(out, json_pack("{s:s, s:I, s:I, s:I, s:I}", "table", table,
							     "table_before", size_at(a->sizes, table, 0),
							     "table_after", size_at(b->sizes, table, 0),
							     "indexes_before", size_at(a->sizes, table, 1),
							     "indexes_after", size_at(b->sizes, table, 1)));
	json_object_foreach(a->sizes, table, v)
		if (!json_object_get(b->sizes, table))
			json_array_append_new(out, json_pack("{s:s, s:I, s:I, s:I, s:I}", "table", table,
							     "table_before", size_at(a->sizes, table, 0),
							     "table_after", (json_int_t)0,
							     "indexes_before", size_at(a->sizes, table, 1),
							     "indexes_after", (json_int_t)0));
	return json_pack("{s:I, s:o}", "wal_bytes", (json_int_t)(b->lsn >= a->lsn ? b->lsn - a->lsn : 0),
			 "sizes", out);
}

void ts_trace_mark_free(struct ts_trace_mark *m)
{
	json_decref(m->sizes);
	memset(m, 0, sizeof(*m));
}
