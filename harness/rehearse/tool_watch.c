/*
 * tool_watch.c: what twinstage reads on the dev side while the tool runs:
 * its sessions' locks, sampled; the tables' files; the server's clock.
 * See tool_watch.h.
 */
#include "rehearse/tool_watch.h"
#include "core/error.h"
#include "core/util.h"
#include "core/wrapper.h"
#include "env/env.h"
#include "pg/pg.h"
#include "rehearse/load.h"
#include "report/report.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How often the tool's locks are read: a lock is held to its transaction's end, so seen. */
#define SAMPLE_MS 10
#define SAMPLE_MAX_MS 25

/* ---- the sampler: the relation locks of every session not twinstage's own ---- */

/*
 * Once the tool's session is known: only the locks of the tables, of every
 * session but this one. Those of sessions that sent nothing to the log
 * (twinstage's own, the load's) are dropped when each lock is tied to its
 * statement (tool_log.c), so pg_stat_activity need not be read each time.
 */
static const char locks_sql[] =
	"SELECT (extract(epoch FROM clock_timestamp()) * 1000)::float8, l.pid, n.nspname || '.' || c.relname,"
	"  l.mode, false"
	" FROM pg_locks l JOIN pg_class c ON c.oid = l.relation AND c.relkind IN ('r', 'p', 'm')"
	" JOIN pg_namespace n ON n.oid = c.relnamespace"
	"   AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp)'"
	" WHERE l.locktype = 'relation' AND l.granted AND l.pid <> pg_backend_pid()"
	"   AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
	"   AND $1::text IS NOT NULL";

static const char sample_sql[] =
	"SELECT (extract(epoch FROM clock_timestamp()) * 1000)::float8, a.pid, n.nspname || '.' || c.relname,"
	"  l.mode, a.application_name = $1"
	" FROM pg_stat_activity a"
	" LEFT JOIN pg_locks l ON l.pid = a.pid AND l.locktype = 'relation' AND l.granted"
	" LEFT JOIN pg_class c ON c.oid = l.relation AND c.relkind IN ('r', 'p', 'm')"
	" LEFT JOIN pg_namespace n ON n.oid = c.relnamespace"
	"   AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp)'"
	" WHERE a.backend_type = 'client backend' AND a.datname = current_database()"
	"   AND a.pid <> pg_backend_pid() AND coalesce(a.application_name, '') NOT LIKE 'twinstage%'";

/* How strong a relation lock is, in PostgreSQL's order (0: not one). */
static int lock_rank(const char *mode)
{
	static const char *const modes[] = { "AccessShareLock", "RowShareLock", "RowExclusiveLock",
		"ShareUpdateExclusiveLock", "ShareLock", "ShareRowExclusiveLock", "ExclusiveLock",
		"AccessExclusiveLock" };

	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (!strcmp(mode, modes[i]))
			return (int)i + 1;
	return 0;
}

static int pid_in(const int *v, size_t n, int pid)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == pid)
			return 1;
	return 0;
}

static void pid_add(int **v, size_t *n, int pid)
{
	*v = xrealloc(*v, (*n + 1) * sizeof(**v));
	(*v)[(*n)++] = pid;
}

/* Whether session pid is one of the tool's (its application_name), asked once per session. */
static int is_tool(struct ts_tool_watch *s, int pid, const char *told)
{
	char p[16];
	const char *params[2] = { s->app, p };
	PGresult *res;
	int yes;

	if (pid_in(s->tool, s->n_tool, pid))
		return 1;
	if (pid_in(s->other, s->n_other, pid))
		return 0;
	if (told) {
		yes = told[0] == 't';
	} else {
		snprintf(p, sizeof(p), "%d", pid);
		res = PQexecParams(s->conn, "SELECT coalesce(application_name = $1, false) FROM pg_stat_activity"
				   " WHERE pid = $2::int", 2, NULL, params, NULL, NULL, 0);
		yes = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) && PQgetvalue(res, 0, 0)[0] == 't';
		PQclear(res);
	}
	if (yes)
		pid_add(&s->tool, &s->n_tool, pid);
	else
		pid_add(&s->other, &s->n_other, pid);
	return yes;
}

static void sample(struct ts_tool_watch *s)
{
	const char *params[1] = { s->app };
	PGresult *res = PQexecPrepared(s->conn, s->watched ? "twinstage_tool_locks" : "twinstage_tool_sample", 1,
				       params, NULL, NULL, 0);
	int best = 0, best_rank = 0, watched_rank = -1;

	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		PQclear(res);
		return;
	}
	s->samples++;
	for (int i = 0; i < PQntuples(res); i++) {
		double ts = atof(PQgetvalue(res, i, 0));
		int pid = atoi(PQgetvalue(res, i, 1)), rank;
		const char *rel = PQgetvalue(res, i, 2), *mode = PQgetvalue(res, i, 3);
		size_t k;

		if (!is_tool(s, pid, s->watched ? NULL : PQgetvalue(res, i, 4)))
			continue;	/* twinstage's load, or anyone else: not the tool's */
		rank = PQgetisnull(res, i, 3) ? 0 : lock_rank(mode);
		if (pid == s->watched && rank > watched_rank)
			watched_rank = rank;
		if (!best || rank > best_rank) {
			best = pid;
			best_rank = rank;
		}
		if (PQgetisnull(res, i, 2) || PQgetisnull(res, i, 3))
			continue;
		for (k = 0; k < s->n; k++)
			if (s->v[k].pid == pid && !strcmp(s->v[k].rel, rel) && !strcmp(s->v[k].mode, mode) &&
			    ts - s->v[k].last < 250)
				break;
		if (k < s->n) {
			s->v[k].last = ts;
			continue;
		}
		s->v = xrealloc(s->v, (s->n + 1) * sizeof(*s->v));
		s->v[s->n++] = (struct ts_seen_lock){ pid, xstrdup(rel), xstrdup(mode), ts, ts };
	}
	PQclear(res);
	/*
	 * The load's waits are judged against one of the tool's sessions: the
	 * one holding the strongest lock. A tool may open several, one after
	 * the other (Django checks, then migrates) or side by side (Sqitch's
	 * registry and psql): the watch moves when the one watched holds no
	 * lock now, or a weaker one than another.
	 */
	if (best && best != s->watched && (!s->watched || watched_rank < best_rank)) {
		ts_load_watch(s->load, best);
		s->watched = best;
	}
}

static void *sampler_main(void *arg)
{
	struct ts_tool_watch *s = arg;

	while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
		double t0 = now_ms(), took;

		sample(s);
		if (PQstatus(s->conn) != CONNECTION_OK)
			break;
		/*
		 * Reading pg_locks takes every lock partition's lock: the tool's
		 * sessions wait on it. The pause keeps that near a twentieth of
		 * the time, between SAMPLE_MS and SAMPLE_MAX_MS (a lock held
		 * longer than that is seen).
		 */
		took = (now_ms() - t0) * 19;
		poll(NULL, 0, took < SAMPLE_MS ? SAMPLE_MS : took > SAMPLE_MAX_MS ? SAMPLE_MAX_MS : (int)took);
	}
	return NULL;
}

void ts_tool_watch_start(struct ts_tool_watch *s, struct ts_env *env, struct ts_report *rep, struct ts_load *load,
			 const char *app)
{
	PGresult *res;

	memset(s, 0, sizeof(*s));
	s->load = load;
	s->app = xstrdup(app);
	if (!(s->conn = ts_env_connect_app(env, &env->dev, NULL, "twinstage tool sampler"))) {
		/* the locks are a bonus: the rehearsal goes on without them */
		ts_report_note(rep, "the tool's locks were not sampled: %s", ts_error_message());
		ts_error_clear();
		return;
	}
	res = PQprepare(s->conn, "twinstage_tool_sample", sample_sql, 1, NULL);
	if (PQresultStatus(res) == PGRES_COMMAND_OK) {
		PQclear(res);
		res = PQprepare(s->conn, "twinstage_tool_locks", locks_sql, 1, NULL);
		if (PQresultStatus(res) == PGRES_COMMAND_OK)
			s->running = !pthread_create(&s->th, NULL, sampler_main, s);
	}
	PQclear(res);
}

void ts_tool_watch_stop(struct ts_tool_watch *s)
{
	__atomic_store_n(&s->stop, 1, __ATOMIC_RELEASE);
	if (s->running)
		pthread_join(s->th, NULL);
	s->running = 0;
	if (s->conn)
		PQfinish(s->conn);
	s->conn = NULL;
}

void ts_tool_watch_free(struct ts_tool_watch *s)
{
	free(s->tool);
	free(s->other);
	for (size_t i = 0; i < s->n; i++) {
		free(s->v[i].rel);
		free(s->v[i].mode);
	}
	free(s->v);
	free(s->app);
}

/* ---- the side around the command: tables and their files, the clock ---- */

/* ---- the side around the command: tables and their files, the clock ---- */

/* {"schema.table": relfilenode} of the tables that exist now. */
json_t *ts_tool_table_files(PGconn *conn)
{
	PGresult *res = ts_pg_rows(conn,
		"SELECT n.nspname || '.' || c.relname, c.relfilenode FROM pg_class c"
		" JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'm')"
		" AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp)'",
		"read the dev side's tables");
	json_t *o = json_object();

	for (int i = 0; res && i < PQntuples(res); i++)
		json_object_set_new(o, PQgetvalue(res, i, 0), json_string(PQgetvalue(res, i, 1)));
	PQclear(res);
	return o;
}

/* The server's clock minus ours (now_ms), to put the log's times on ours. */
double ts_tool_clock_delta(PGconn *conn)
{
	double t0 = now_ms();
	PGresult *res = PQexec(conn, "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::float8");
	double t1 = now_ms(), d = 0;

	if (PQresultStatus(res) == PGRES_TUPLES_OK)
		d = atof(PQgetvalue(res, 0, 0)) - (t0 + t1) / 2;
	PQclear(res);
	return d;
}

