/*
 * load.c: client threads that replay the live versions, a sampler thread
 * that reads who waits on whom, and the judgement of both afterwards.
 */
#include "load.h"
#include "error.h"
#include "pg.h"
#include "run.h"
#include "run_command.h"
#include "scenario.h"
#include "strbuf.h"
#include "util.h"

#include <jansson.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

/* One statement a client ran. */
struct rec {
	double t0, t1;
	unsigned sc, st;	/* scenario file and statement of the client's version */
	int ok;
	char *got;		/* what happened, when !ok */
};

struct app_load {
	const struct ts_app *app;
	struct ts_scenario *sc;
	size_t n;
};

struct client {
	struct ts_load *l;
	size_t idx;
	const struct app_load *app;
	PGconn *conn;
	PGcancel *cancel;
	int pid;
	struct rec *recs;
	size_t n, alloc;
	char *lost;		/* why it stopped before it was told to */
	pthread_t th;
	int started;
};

/* A session seen waiting for a lock, or (in the same sample) one it waited on. */
struct srow {
	double ts;
	int pid;
	int *blockers;		/* pg_blocking_pids(); NULL when it did not wait */
	size_t nb;
	char *relation;		/* "schema.table" it waited for, or NULL */
	double wait_ms;		/* since its statement started */
	char *state;
	char *query;
};

struct ts_load {
	struct app_load *apps;
	size_t n_apps;
	struct client *clients;
	size_t n_clients;
	int mig_pid;
	int sample_ms;
	int stop;		/* read and written with __atomic */
	double t0, stopped_at;

	PGconn *sconn;		/* the sampler's */
	pthread_t sth;
	int sampling;
	struct srow *rows;
	size_t n_rows, alloc_rows, n_samples;

	struct child_process cp;	/* [load] command */
	int command;
	char *log;
	int exited;		/* the command ended by itself: its status */
	int status;
};

static int stopped(struct ts_load *l)
{
	return __atomic_load_n(&l->stop, __ATOMIC_ACQUIRE) || ts_interrupted;
}

static void pause_ms(struct ts_load *l, double ms)
{
	double until = now_ms() + ms;

	while (!ts_interrupted && now_ms() < until) {
		double left = until - now_ms();

		poll(NULL, 0, left > 50 ? 50 : (int)left + 1);
		if (l->command && !l->exited && waitpid(l->cp.pid, &l->status, WNOHANG) == l->cp.pid) {
			l->exited = 1;
			l->stopped_at = now_ms();
		}
	}
}

/* ---- the clients ---- */

static int client_exec(struct client *c, const char *sql)
{
	PGresult *res = PQexec(c->conn, sql);
	int ok = PQresultStatus(res) == PGRES_COMMAND_OK;

	if (!ok && !c->lost)
		c->lost = ts_pg_result_error(res);
	PQclear(res);
	return ok ? 0 : -1;
}

static void client_record(struct client *c, const struct rec *r)
{
	if (c->n == c->alloc) {
		c->alloc = c->alloc ? 2 * c->alloc : 1024;
		c->recs = xrealloc(c->recs, c->alloc * sizeof(*c->recs));
	}
	c->recs[c->n++] = *r;
}

/* Each scenario file in a transaction rolled back, each statement under a savepoint. */
static void *client_main(void *arg)
{
	struct client *c = arg;
	struct ts_load *l = c->l;
	size_t f = c->idx % c->app->n;

	while (!stopped(l) && !c->lost) {
		const struct ts_scenario *sc = &c->app->sc[f];

		if (client_exec(c, "BEGIN"))
			break;
		for (size_t i = 0; i < sc->n && !stopped(l); i++) {
			struct rec r = { .sc = (unsigned)f, .st = (unsigned)i };
			PGresult *res;
			const char *state;
			int failed;

			if (client_exec(c, "SAVEPOINT twinstage_load"))
				break;
			r.t0 = now_ms();
			res = PQexec(c->conn, sc->stmts[i].sql);
			r.t1 = now_ms();
			state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
			failed = PQresultStatus(res) == PGRES_FATAL_ERROR;
			/* cancelled because the load is over: not the application's doing */
			if (stopped(l) && state && !strcmp(state, "57014")) {
				PQclear(res);
				break;
			}
			r.ok = ts_scenario_judge(&sc->stmts[i], res, &r.got);
			if (r.ok) {
				free(r.got);
				r.got = NULL;
			}
			PQclear(res);
			client_record(c, &r);
			if (PQstatus(c->conn) != CONNECTION_OK) {
				c->lost = xstrdup("lost the connection");
				break;
			}
			if (client_exec(c, failed ? "ROLLBACK TO SAVEPOINT twinstage_load" :
						    "RELEASE SAVEPOINT twinstage_load"))
				break;
		}
		if (PQstatus(c->conn) == CONNECTION_OK)
			PQclear(PQexec(c->conn, "ROLLBACK"));
		f = (f + 1) % c->app->n;
	}
	return NULL;
}

/* ---- the sampler ---- */

/*
 * Every session of the database, and for those waiting on a lock, whom
 * they wait for. pg_blocking_pids() reads the whole lock table, so it is
 * only asked while the migration's session ($1) is in a transaction: an
 * idle one holds no lock that anyone could wait for.
 */
static const char sample_sql[] =
	"WITH m AS (SELECT state <> 'idle' AS busy FROM pg_stat_activity WHERE pid = $1)"
	" SELECT a.pid, CASE WHEN a.wait_event_type = 'Lock' AND (SELECT busy FROM m)"
	"   THEN pg_blocking_pids(a.pid)::text END,"
	"  CASE WHEN a.wait_event_type = 'Lock' AND (SELECT busy FROM m) THEN"
	"    (SELECT n.nspname || '.' || c.relname FROM pg_locks l"
	"     JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace"
	"     WHERE l.pid = a.pid AND NOT l.granted LIMIT 1) END,"
	"  extract(epoch FROM clock_timestamp() - a.query_start) * 1000, a.state, left(a.query, 200)"
	" FROM pg_stat_activity a"
	" WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()"
	"   AND a.backend_type = 'client backend'";

static void parse_pids(const char *s, struct srow *row)
{
	char *end;

	for (const char *p = s; *p;) {
		long v;

		if (*p < '0' || *p > '9') {
			p++;
			continue;
		}
		v = strtol(p, &end, 10);
		row->blockers = xrealloc(row->blockers, (row->nb + 1) * sizeof(*row->blockers));
		row->blockers[row->nb++] = (int)v;
		p = end;
	}
}

/* Row i of a sample waited on someone: pg_blocking_pids() named a session. */
static int waited(const PGresult *res, int i)
{
	return !PQgetisnull(res, i, 1) && strcmp(PQgetvalue(res, i, 1), "{}");
}

/* Keeps a sample only when someone waited in it: then all its sessions, to describe them. */
static void take_sample(struct ts_load *l)
{
	char pid[16];
	const char *params[1] = { pid };
	PGresult *res;

	snprintf(pid, sizeof(pid), "%d", l->mig_pid);
	res = PQexecPrepared(l->sconn, "twinstage_sample", 1, params, NULL, NULL, 0);
	double ts = now_ms();
	int any = 0;

	l->n_samples++;
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		PQclear(res);
		return;
	}
	for (int i = 0; i < PQntuples(res); i++)
		any |= waited(res, i);
	for (int i = 0; any && i < PQntuples(res); i++) {
		struct srow *row;

		if (l->n_rows == l->alloc_rows) {
			l->alloc_rows = l->alloc_rows ? 2 * l->alloc_rows : 256;
			l->rows = xrealloc(l->rows, l->alloc_rows * sizeof(*l->rows));
		}
		row = &l->rows[l->n_rows++];
		memset(row, 0, sizeof(*row));
		row->ts = ts;
		row->pid = atoi(PQgetvalue(res, i, 0));
		if (waited(res, i))
			parse_pids(PQgetvalue(res, i, 1), row);
		row->relation = PQgetisnull(res, i, 2) ? NULL : xstrdup(PQgetvalue(res, i, 2));
		row->wait_ms = atof(PQgetvalue(res, i, 3));
		row->state = xstrdup(PQgetvalue(res, i, 4));
		row->query = xstrdup(PQgetvalue(res, i, 5));
	}
	PQclear(res);
}

static void *sampler_main(void *arg)
{
	struct ts_load *l = arg;

	while (!stopped(l)) {
		double next = now_ms() + l->sample_ms;

		take_sample(l);
		if (PQstatus(l->sconn) != CONNECTION_OK)
			break;
		while (!stopped(l) && now_ms() < next)
			poll(NULL, 0, (int)(next - now_ms()) + 1);
	}
	return NULL;
}

/* ---- starting and stopping ---- */

static void load_free(struct ts_load *l)
{
	for (size_t i = 0; i < l->n_clients; i++) {
		struct client *c = &l->clients[i];

		for (size_t j = 0; j < c->n; j++)
			free(c->recs[j].got);
		free(c->recs);
		free(c->lost);
		if (c->cancel)
			PQfreeCancel(c->cancel);
		if (c->conn)
			PQfinish(c->conn);
	}
	free(l->clients);
	for (size_t i = 0; i < l->n_apps; i++)
		ts_scenario_free_all(l->apps[i].sc, l->apps[i].n);
	free(l->apps);
	for (size_t i = 0; i < l->n_rows; i++) {
		free(l->rows[i].blockers);
		free(l->rows[i].relation);
		free(l->rows[i].state);
		free(l->rows[i].query);
	}
	free(l->rows);
	if (l->sconn)
		PQfinish(l->sconn);
	child_process_clear(&l->cp);
	free(l->log);
	free(l);
}

/* The versions to replay: those live while migrating that have scenarios. */
static int pick_apps(struct ts_run *run, struct ts_load *l, const struct strvec *live)
{
	size_t n = live ? live->nr : run->cfg.current ? 1 : 0;

	l->apps = xcalloc(n + 1, sizeof(*l->apps));
	for (size_t i = 0; i < n; i++) {
		const char *name = live ? live->v[i] : run->cfg.current;
		const struct ts_app *app = ts_config_app(&run->cfg, name);

		if (!app)
			continue;
		if (!app->scenarios) {
			ts_report_note(&run->rep, "load: %s runs a command, not scenarios, so it was not replayed during the migration; [load] command = ... runs the application's own load generator",
				       name);
			continue;
		}
		if (ts_scenario_load_app(app, &l->apps[l->n_apps].sc, &l->apps[l->n_apps].n))
			return -1;
		l->apps[l->n_apps++].app = app;
	}
	return 0;
}

static int start_clients(struct ts_run *run, struct ts_load *l)
{
	char *ci = ts_env_conninfo(&run->env, &run->env.dev, run->cfg.dbname);

	l->n_clients = (size_t)run->cfg.load_clients;
	l->clients = xcalloc(l->n_clients, sizeof(*l->clients));
	for (size_t i = 0; i < l->n_clients; i++) {
		struct client *c = &l->clients[i];
		char *name = xstrfmt("%s application_name='twinstage load %zu'", ci, i + 1);

		c->l = l;
		c->idx = i / l->n_apps;
		c->app = &l->apps[i % l->n_apps];
		c->conn = ts_pg_connect(name, "the dev side (load)");
		free(name);
		if (!c->conn || ts_pg_exec(c->conn, "SET statement_timeout = '60s'")) {
			free(ci);
			return -1;
		}
		c->pid = PQbackendPID(c->conn);
		c->cancel = PQgetCancel(c->conn);
	}
	free(ci);
	for (size_t i = 0; i < l->n_clients; i++)
		l->clients[i].started = !pthread_create(&l->clients[i].th, NULL, client_main, &l->clients[i]);
	return 0;
}

static int start_load_command(struct ts_run *run, struct ts_load *l)
{
	int r;

	if (ts_command_prepare(&run->env, &run->env.dev, run->cfg.load_command, run->cfg.path, "[load]",
			       &l->cp))
		return -1;
	{
		char *logs = path_join(run->cfg.workdir, "logs");

		mkdir_p(logs, 0755);
		l->log = xstrfmt("%s/load%s%s.log", logs, run->phase ? "-phase-" : "",
				 run->phase ? run->phase : "");
		free(logs);
	}
	unlink(l->log);
	l->cp.out_path = l->log;
	l->cp.no_stdin = 1;
	l->cp.own_group = 1;
	r = start_command(&l->cp);
	l->command = !r;
	return r;
}

struct ts_load *ts_load_start(struct ts_run *run, const struct strvec *live, int migration_pid)
{
	struct ts_load *l;
	char *ci;

	if (!run->load)
		return NULL;
	l = xcalloc(1, sizeof(*l));
	l->cp = (struct child_process)CHILD_PROCESS_INIT;
	l->mig_pid = migration_pid;
	l->sample_ms = run->cfg.load_sample_ms;
	if (!run->cfg.load_command && pick_apps(run, l, live)) {
		ts_report_note(&run->rep, "load: not run: %s", ts_error_message());
		load_free(l);
		return NULL;
	}
	if (!run->cfg.load_command && !l->n_apps) {
		load_free(l);
		return NULL;
	}
	l->t0 = now_ms();
	if (l->sample_ms) {
		ci = ts_env_conninfo(&run->env, &run->env.dev, run->cfg.dbname);
		l->sconn = ts_pg_connect(ci, "the dev side (load sampler)");
		free(ci);
		if (l->sconn) {
			PGresult *res = PQprepare(l->sconn, "twinstage_sample", sample_sql, 1, NULL);

			if (PQresultStatus(res) == PGRES_COMMAND_OK)
				l->sampling = !pthread_create(&l->sth, NULL, sampler_main, l);
			PQclear(res);
		}
	}
	if (run->cfg.load_command ? start_load_command(run, l) : start_clients(run, l)) {
		ts_report_note(&run->rep, "load: not run: %s", ts_error_message());
		__atomic_store_n(&l->stop, 1, __ATOMIC_RELEASE);
		for (size_t i = 0; i < l->n_clients; i++)
			if (l->clients[i].started)
				pthread_join(l->clients[i].th, NULL);
		if (l->sampling)
			pthread_join(l->sth, NULL);
		load_free(l);
		return NULL;
	}
	if (l->command) {
		ts_run_say(run, "load: %s, sampling every %d ms", run->cfg.load_command, l->sample_ms);
	} else {
		struct strbuf names = STRBUF_INIT;

		for (size_t i = 0; i < l->n_apps; i++)
			strbuf_addf(&names, "%s%s", i ? ", " : "", l->apps[i].app->name);
		ts_run_say(run, "load: %s on %zu client%s%s", names.buf, l->n_clients,
			   l->n_clients == 1 ? "" : "s",
			   l->sample_ms ? "" : ", not sampled (sample_ms = 0)");
		strbuf_release(&names);
	}
	pause_ms(l, run->cfg.load_before_ms);
	return l;
}

static void stop(struct ts_load *l)
{
	struct timespec until;

	if (!l->stopped_at)
		l->stopped_at = now_ms();
	__atomic_store_n(&l->stop, 1, __ATOMIC_RELEASE);
	/* a statement still running (a long report) is cancelled after a grace second */
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 1;
	for (size_t i = 0; i < l->n_clients; i++) {
		struct client *c = &l->clients[i];

		if (!c->started)
			continue;
		if (pthread_timedjoin_np(c->th, NULL, &until)) {
			char buf[256];

			PQcancel(c->cancel, buf, sizeof(buf));
			pthread_join(c->th, NULL);
		}
	}
	if (l->command && !l->exited) {
		int status, reaped = 0;

		/* the generator and its children; one that ignores SIGTERM gets SIGKILL after 2 s */
		kill(-l->cp.pid, SIGTERM);
		for (int i = 0; i < 40 && !reaped; i++) {
			poll(NULL, 0, 50);
			reaped = waitpid(l->cp.pid, &status, WNOHANG) == l->cp.pid;
		}
		if (!reaped) {
			kill(-l->cp.pid, SIGKILL);
			waitpid(l->cp.pid, &status, 0);
		}
	}
	if (l->sampling)
		pthread_join(l->sth, NULL);
}

/* ---- judging what was seen ---- */

/* A statement of the migration, with when it ran. */
struct mstmt {
	const struct ts_report_migration *m;
	const struct ts_report_stmt *s;
};

struct judge {
	struct ts_load *l;
	struct ts_run *run;
	struct mstmt *ms;
	size_t n_ms;
	double mig_t0, mig_t1;
};

/* Which migration statement a wait at ts on `relation` is owed to. */
static const struct mstmt *owed_to(const struct judge *j, double ts, const char *relation)
{
	const struct mstmt *best = NULL;

	/* the latest statement before ts that took a blocking lock on that table ... */
	for (size_t i = 0; relation && i < j->n_ms; i++) {
		json_t *lk;
		size_t k;

		if (j->ms[i].s->at > ts)
			break;
		json_array_foreach(json_object_get(j->ms[i].s->facts, "locks"), k, lk)
			if (json_is_true(json_object_get(lk, "blocking")) &&
			    !strcmp(ts_json_str(lk, "relation"), relation))
				best = &j->ms[i];
	}
	if (best)
		return best;
	/* ... or the one running then */
	for (size_t i = 0; i < j->n_ms; i++)
		if (j->ms[i].s->at <= ts)
			best = &j->ms[i];
	return best;
}

static struct client *client_of(struct ts_load *l, int pid)
{
	for (size_t i = 0; i < l->n_clients; i++)
		if (l->clients[i].pid == pid)
			return &l->clients[i];
	return NULL;
}

/* The client's statement running at ts (or the last one before it), or NULL. */
static const struct rec *rec_at(const struct client *c, double ts, int running_only)
{
	size_t lo = 0, hi = c ? c->n : 0;
	const struct rec *best;

	/* a client appends in start order: the last record that started by ts */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (c->recs[mid].t0 <= ts)
			lo = mid + 1;
		else
			hi = mid;
	}
	best = lo ? &c->recs[lo - 1] : NULL;
	if (best && running_only && best->t1 < ts)
		return NULL;
	return best;
}

/* The scenario statement a record ran. */
static const struct ts_scenario_stmt *rec_stmt(const struct client *c, const struct rec *r)
{
	return &c->app->sc[r->sc].stmts[r->st];
}

static const char *rec_file(const struct client *c, const struct rec *r)
{
	return c->app->sc[r->sc].file;
}

/* "02_report.sql:4 \"slow report\"" */
static char *rec_where(const struct client *c, const struct rec *r)
{
	return xstrfmt("%s:%d \"%s\"", rec_file(c, r), rec_stmt(c, r)->line, rec_stmt(c, r)->name);
}

/* An application statement that waited on the migration. */
struct episode {
	int pid;
	double start, end;	/* its wait, as the sampler saw it (or the client timed it) */
	double ms;
	const struct mstmt *owed;
	const struct client *c;
	const struct rec *r;
	char *query;		/* for [load] command */
};

/* pids that wait on the migration in one sample (the rows [a, b)), directly or behind others. */
static int waits_on(const struct srow *rows, size_t a, size_t b, int pid, int target, int depth)
{
	for (size_t i = a; i < b; i++) {
		if (rows[i].pid != pid)
			continue;
		for (size_t k = 0; k < rows[i].nb; k++)
			if (rows[i].blockers[k] == target ||
			    (depth < 8 && rows[i].blockers[k] != pid &&
			     waits_on(rows, a, b, rows[i].blockers[k], target, depth + 1)))
				return 1;
	}
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static json_t *window_stats(struct ts_load *l, double from, double to, int (*in)(const struct rec *, double, double))
{
	double *lat = NULL;
	size_t n = 0, alloc = 0;
	json_t *o;

	for (size_t i = 0; i < l->n_clients; i++)
		for (size_t k = 0; k < l->clients[i].n; k++) {
			const struct rec *r = &l->clients[i].recs[k];

			if (!in(r, from, to))
				continue;
			if (n == alloc) {
				alloc = alloc ? 2 * alloc : 1024;
				lat = xrealloc(lat, alloc * sizeof(*lat));
			}
			lat[n++] = r->t1 - r->t0;
		}
	o = json_pack("{s:I, s:f}", "statements", (json_int_t)n,
		      "per_s", to > from ? (double)n * 1000.0 / (to - from) : 0.0);
	if (n) {
		qsort(lat, n, sizeof(*lat), cmp_double);
		json_object_set_new(o, "p50_ms", json_real(lat[(n - 1) / 2]));
		json_object_set_new(o, "p99_ms", json_real(lat[(size_t)ceil(0.99 * (double)n) - 1]));
		json_object_set_new(o, "max_ms", json_real(lat[n - 1]));
	}
	free(lat);
	return o;
}

static int in_before(const struct rec *r, double a, double b) { return r->t1 < b && r->t0 >= a; }
static int in_during(const struct rec *r, double a, double b) { return r->t1 >= a && r->t0 <= b; }
static int in_after(const struct rec *r, double a, double b) { return r->t0 > a && r->t0 <= b; }

static char *mstmt_where(const struct mstmt *m)
{
	return m ? xstrfmt("%s:%d", m->m->file, m->s->line) : xstrdup("?");
}

/* The application statements that waited on the migration, from the samples. */
static size_t find_episodes(struct judge *j, struct episode **out)
{
	struct ts_load *l = j->l;
	struct episode *e = NULL;
	size_t n = 0;

	for (size_t a = 0, b; a < l->n_rows; a = b) {
		for (b = a; b < l->n_rows && l->rows[b].ts == l->rows[a].ts; b++)
			;
		for (size_t i = a; i < b; i++) {
			const struct srow *row = &l->rows[i];
			double start = row->ts - row->wait_ms;
			struct client *c;
			const struct rec *r;
			size_t k;

			if (row->pid == l->mig_pid || !row->nb ||
			    !waits_on(l->rows, a, b, row->pid, l->mig_pid, 0))
				continue;
			c = client_of(l, row->pid);
			r = c ? rec_at(c, row->ts, 1) : NULL;
			for (k = 0; k < n; k++)
				if (e[k].pid == row->pid &&
				    (r ? e[k].r == r : fabs(e[k].start - start) < 2.0))
					break;
			if (k == n) {
				e = xrealloc(e, (n + 1) * sizeof(*e));
				memset(&e[n], 0, sizeof(*e));
				e[n].pid = row->pid;
				e[n].start = start;
				e[n].c = c;
				e[n].r = r;
				e[n].owed = owed_to(j, row->ts, row->relation);
				e[n].query = xstrdup(row->query);
				n++;
			}
			e[k].end = row->ts;
			e[k].ms = r ? r->t1 - r->t0 : row->wait_ms;
			if (r) {
				e[k].start = r->t0;
				e[k].end = r->t1;
			}
		}
	}
	*out = e;
	return n;
}

static json_t *episode_json(const struct episode *e, double t0, double max_stall_ms)
{
	json_t *o = json_object();
	char *where = mstmt_where(e->owed);

	json_object_set_new(o, "ms", json_real(e->ms));
	json_object_set_new(o, "start_ms", json_real(e->start - t0));
	json_object_set_new(o, "end_ms", json_real(e->end - t0));
	json_object_set_new(o, "migration", json_string(where));
	json_object_set_new(o, "sql", json_string(e->owed ? e->owed->s->sql : ""));
	if (e->r) {
		json_object_set_new(o, "app", json_string(e->c->app->app->name));
		json_object_set_new(o, "app_file", json_string(rec_file(e->c, e->r)));
		json_object_set_new(o, "app_line", json_integer(rec_stmt(e->c, e->r)->line));
		json_object_set_new(o, "name", json_string(rec_stmt(e->c, e->r)->name));
	} else {
		json_object_set_new(o, "app", json_string("[load] command"));
		json_object_set_new(o, "name", json_string(e->query ? e->query : ""));
	}
	json_object_set_new(o, "over_gate", json_boolean(max_stall_ms > 0 && e->ms > max_stall_ms));
	free(where);
	return o;
}

/* Per migration statement: the longest wait owed to it, and how many. */
static json_t *stalls_json(struct judge *j, struct episode *e, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < j->n_ms; i++) {
		const struct episode *worst = NULL;
		size_t waits = 0;
		json_t *o;

		for (size_t k = 0; k < n; k++)
			if (e[k].owed == &j->ms[i]) {
				waits++;
				if (!worst || e[k].ms > worst->ms)
					worst = &e[k];
			}
		if (!worst)
			continue;
		o = episode_json(worst, j->l->t0, j->run->cfg.max_stall_ms);
		json_object_set_new(o, "waits", json_integer((json_int_t)waits));
		json_array_append_new(a, o);
	}
	return a;
}

/*
 * The migration waited for a lock behind an application session while
 * others queued behind it: one entry per migration statement that did.
 */
static json_t *lock_queues_json(struct judge *j, struct episode *e, size_t n)
{
	struct ts_load *l = j->l;
	json_t *a = json_array();

	for (size_t i = 0; i < j->n_ms; i++) {
		const struct mstmt *m = &j->ms[i];
		double waited = 0, first = 0, last = 0, max_q = 0;
		char *behind = NULL;
		size_t queued = 0;
		struct tally { int pid, seen; double ts; } *tally = NULL;
		size_t n_tally = 0;
		const struct tally *who = NULL;

		for (size_t r = 0; r < l->n_rows; r++) {
			const struct srow *row = &l->rows[r];

			if (row->pid != l->mig_pid || !row->nb || row->ts < m->s->at ||
			    row->ts > m->s->at + m->s->ms + 1)
				continue;
			if (!first)
				first = row->ts;
			last = row->ts;
			if (row->wait_ms > waited)
				waited = row->wait_ms;
			for (size_t k = 0; k < row->nb; k++) {
				size_t t;

				for (t = 0; t < n_tally && tally[t].pid != row->blockers[k]; t++)
					;
				if (t == n_tally) {
					tally = xrealloc(tally, ++n_tally * sizeof(*tally));
					tally[t].pid = row->blockers[k];
					tally[t].seen = 0;
				}
				tally[t].seen++;
				tally[t].ts = row->ts;
			}
		}
		/* behind whom: the session that blocked it in the most samples */
		for (size_t t = 0; t < n_tally; t++)
			if (!who || tally[t].seen > who->seen)
				who = &tally[t];
		if (who) {
			struct client *c = client_of(l, who->pid);
			const struct rec *rc = c ? rec_at(c, who->ts, 0) : NULL;

			if (rc) {
				char *where = rec_where(c, rc);

				behind = xstrfmt("%s's transaction (at %s)", c->app->app->name, where);
				free(where);
			} else {
				const struct srow *br = NULL;

				for (size_t q = 0; q < l->n_rows; q++)
					if (l->rows[q].ts == who->ts && l->rows[q].pid == who->pid)
						br = &l->rows[q];
				behind = br ? xstrfmt("session %d (%s: %s)", who->pid, br->state, br->query)
					    : xstrfmt("session %d", who->pid);
			}
		}
		free(tally);
		if (!behind)
			continue;
		for (size_t k = 0; k < n; k++)
			if (e[k].owed == m && e[k].end >= first - waited && e[k].start <= last) {
				queued++;
				if (e[k].ms > max_q)
					max_q = e[k].ms;
			}
		{
			char *where = mstmt_where(m);

			json_array_append_new(a, json_pack("{s:s, s:s, s:f, s:s, s:I, s:f}", "migration", where,
							   "sql", m->s->sql, "waited_ms", waited, "behind", behind,
							   "queued", (json_int_t)queued, "max_queued_ms", max_q));
			free(where);
		}
		free(behind);
	}
	return a;
}

/* The picture's data: statements, latency per time bucket, waits per client. */
static json_t *timeline_json(struct judge *j, struct episode *e, size_t n)
{
	struct ts_load *l = j->l;
	double span = l->stopped_at - l->t0, width = span / 300 > 10 ? span / 300 : 10;
	size_t nb = (size_t)(span / width) + 1;
	double *max = xcalloc(nb, sizeof(*max));
	size_t *count = xcalloc(nb, sizeof(*count)), *errors = xcalloc(nb, sizeof(*errors));
	json_t *t = json_object(), *a = json_array(), *lat = json_array(), *waits = json_array();

	json_object_set_new(t, "span_ms", json_real(span));
	json_object_set_new(t, "migration_ms", json_pack("[f, f]", j->mig_t0 - l->t0, j->mig_t1 - l->t0));
	json_object_set_new(t, "lanes", json_integer((json_int_t)(l->n_clients ? l->n_clients : 1)));
	for (size_t i = 0; i < j->n_ms; i++) {
		char *where = mstmt_where(&j->ms[i]);

		json_array_append_new(a, json_pack("[f, f, s, s]", j->ms[i].s->at - l->t0,
						   j->ms[i].s->at - l->t0 + j->ms[i].s->ms, where,
						   j->ms[i].s->sql));
		free(where);
	}
	json_object_set_new(t, "statements", a);
	for (size_t i = 0; i < l->n_clients; i++)
		for (size_t k = 0; k < l->clients[i].n; k++) {
			const struct rec *r = &l->clients[i].recs[k];
			size_t b = (size_t)((r->t0 - l->t0) / width);

			if (b >= nb)
				continue;
			if (r->t1 - r->t0 > max[b])
				max[b] = r->t1 - r->t0;
			count[b]++;
			errors[b] += !r->ok;
		}
	for (size_t b = 0; b < nb; b++)
		if (count[b])
			json_array_append_new(lat, json_pack("[f, f, I, I]", (double)b * width, max[b],
							     (json_int_t)count[b], (json_int_t)errors[b]));
	json_object_set_new(t, "latency", lat);
	for (size_t k = 0; k < n; k++)	/* a command's sessions share one lane */
		json_array_append_new(waits, json_pack("[I, f, f]", (json_int_t)(e[k].c ? e[k].c - l->clients : 0),
						       e[k].start - l->t0, e[k].end - l->t0));
	json_object_set_new(t, "waits", waits);
	free(max);
	free(count);
	free(errors);
	return t;
}

/* One check per replayed version: each statement, and whether it failed while migrating. */
static void record_checks(struct judge *j, json_t *errors)
{
	struct ts_load *l = j->l;

	for (size_t a = 0; a < l->n_apps; a++) {
		const struct app_load *al = &l->apps[a];
		struct ts_report_check *chk =
			ts_report_check_add(&j->run->rep, al->app->name, "dev", TS_CHECK_DURING, 1);

		chk->ran = 1;
		chk->ms = l->stopped_at - l->t0;
		chk->phase = j->run->phase ? xstrdup(j->run->phase) : NULL;
		for (size_t f = 0; f < al->n; f++)
			for (size_t s = 0; s < al->sc[f].n; s++) {
				const struct ts_scenario_stmt *st = &al->sc[f].stmts[s];
				struct ts_report_case *k;
				const struct rec *bad = NULL;
				size_t runs = 0, failed = 0;
				int before = 0;

				for (size_t i = 0; i < l->n_clients; i++) {
					const struct client *c = &l->clients[i];

					if (c->app != al)
						continue;
					for (size_t q = 0; q < c->n; q++) {
						const struct rec *r = &c->recs[q];

						if (r->sc != f || r->st != s)
							continue;
						if (r->t0 < j->mig_t0) {
							before |= !r->ok;
							continue;
						}
						runs++;
						if (!r->ok && !failed++)
							bad = r;
					}
				}
				/* failing under load alone says nothing of the migration (a note says so) */
				if (before)
					continue;
				k = ts_report_case_add(chk);
				k->file = xstrdup(al->sc[f].file);
				k->name = xstrdup(st->name);
				k->line = st->line;
				k->sql = ts_oneline(st->sql);
				k->expected = ts_scenario_expect_text(st);
				if (!bad) {
					k->pass = 1;
					k->got = xstrfmt("%zu run%s, none failed", runs, runs == 1 ? "" : "s");
					continue;
				}
				{
					const struct mstmt *m = owed_to(j, bad->t0, NULL);
					char *where = mstmt_where(m);
					int during = bad->t0 <= j->mig_t1 && m;

					k->got = xstrfmt("%s in %zu of %zu runs, first %.0f ms after the migration started%s%s",
							 bad->got, failed, runs, bad->t0 - j->mig_t0,
							 during ? ", while " : "", during ? where : "");
					json_array_append_new(errors, json_pack("{s:s, s:s, s:i, s:s, s:s, s:f, s:I, s:I, s:s}",
						"app", al->app->name, "file", al->sc[f].file, "line", st->line,
						"name", st->name, "got", bad->got, "at_ms", bad->t0 - j->mig_t0,
						"failed", (json_int_t)failed, "runs", (json_int_t)runs,
						"migration", during ? where : ""));
					free(where);
					chk->failed++;
				}
			}
	}
}

static void note_errors_before(struct judge *j)
{
	struct ts_load *l = j->l;

	for (size_t i = 0; i < l->n_clients; i++) {
		const struct client *c = &l->clients[i];

		for (size_t q = 0; q < c->n; q++)
			if (!c->recs[q].ok && c->recs[q].t1 < j->mig_t0) {
				char *name = rec_where(c, &c->recs[q]);

				ts_report_note(&j->run->rep,
					       "load: %s %s failed before the migration started (%s): under load alone, whatever the migration does, so it was not judged while migrating; a scenario replayed on several clients must not depend on running alone",
					       c->app->app->name, name, c->recs[q].got);
				free(name);
				return;
			}
	}
}

void ts_load_finish(struct ts_load *l, struct ts_run *run, size_t first, double mig_t0,
		    double mig_t1)
{
	struct judge j = { .l = l, .run = run, .mig_t0 = mig_t0, .mig_t1 = mig_t1 };
	struct episode *e = NULL;
	size_t n_e;
	json_t *entry, *apps = json_array(), *errors = json_array(), *stalls, *worst = NULL;

	pause_ms(l, run->cfg.load_after_ms);
	stop(l);
	for (size_t i = first; i < run->rep.n_migrations; i++)
		for (size_t k = 0; k < run->rep.migrations[i].n_stmts; k++) {
			j.ms = xrealloc(j.ms, (j.n_ms + 1) * sizeof(*j.ms));
			j.ms[j.n_ms].m = &run->rep.migrations[i];
			j.ms[j.n_ms++].s = &run->rep.migrations[i].stmts[k];
		}
	n_e = find_episodes(&j, &e);
	for (size_t i = 0; i < l->n_apps; i++)
		json_array_append_new(apps, json_string(l->apps[i].app->name));
	entry = json_pack("{s:o, s:o, s:s, s:I, s:i, s:I, s:f, s:f, s:f}",
			  "phase", run->phase ? json_string(run->phase) : json_null(), "apps", apps,
			  "mode", l->command ? "command" : "scenarios", "clients", (json_int_t)l->n_clients,
			  "sample_ms", l->sample_ms, "samples", (json_int_t)l->n_samples,
			  "migration_ms", mig_t1 - mig_t0, "before_ms", mig_t0 - l->t0,
			  "after_ms", l->stopped_at - mig_t1);
	if (l->command) {
		json_object_set_new(entry, "command", json_string(run->cfg.load_command));
		if (l->exited) {
			int code = WIFEXITED(l->status) ? WEXITSTATUS(l->status) : 128 + WTERMSIG(l->status);
			char *out = ts_tail_lines(l->log, 10);

			if (code)
				json_array_append_new(errors, json_pack("{s:s, s:s, s:f}", "app", "[load] command",
									"got", out ? out : "", "at_ms",
									l->stopped_at - mig_t0));
			ts_report_note(&run->rep, "load: the command ended by itself (exit %d) %.0f ms %s the migration started; its log is %s",
				       code, fabs(l->stopped_at - mig_t0), l->stopped_at < mig_t0 ? "before" : "after", l->log);
			free(out);
		}
	} else {
		json_object_set_new(entry, "before", window_stats(l, l->t0, mig_t0, in_before));
		json_object_set_new(entry, "during", window_stats(l, mig_t0, mig_t1, in_during));
		json_object_set_new(entry, "after", window_stats(l, mig_t1, l->stopped_at, in_after));
		record_checks(&j, errors);
		note_errors_before(&j);
		for (size_t i = 0; i < l->n_clients; i++)
			if (l->clients[i].lost)
				ts_report_note(&run->rep, "load: client %zu stopped early: %s", i + 1, l->clients[i].lost);
	}
	json_object_set_new(entry, "errors", errors);
	stalls = stalls_json(&j, e, n_e);
	{
		json_t *v;
		size_t i;

		json_array_foreach(stalls, i, v)
			if (!worst || json_number_value(json_object_get(v, "ms")) >
					      json_number_value(json_object_get(worst, "ms")))
				worst = v;
	}
	json_object_set(entry, "stall", worst ? worst : json_null());
	json_object_set_new(entry, "stalls", stalls);
	json_object_set_new(entry, "lock_queues", lock_queues_json(&j, e, n_e));
	json_object_set_new(entry, "timeline", timeline_json(&j, e, n_e));
	if (!run->rep.load)
		run->rep.load = json_array();
	json_array_append_new(run->rep.load, entry);
	for (size_t i = 0; i < n_e; i++)
		free(e[i].query);
	free(e);
	free(j.ms);
	load_free(l);
}
