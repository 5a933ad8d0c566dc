/*
 * load.c: client threads that replay the live versions, a sampler thread
 * that reads who waits on whom, or the application's own load command;
 * started before the migration and stopped after it. What they saw is
 * judged in load_judge.c.
 */
#include "rehearse/load.h"
#include "core/error.h"
#include "core/progress.h"
#include "core/run_command.h"
#include "core/strbuf.h"
#include "core/util.h"
#include "core/wrapper.h"
#include "env/env.h"
#include "pg/pg.h"
#include "rehearse/execute.h"
#include "rehearse/load_impl.h"
#include "rehearse/scenario.h"
#include "rehearse/scenario_run.h"
#include "report/report.h"

#include <jansson.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

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

/*
 * One statement under a savepoint, recorded; run as its annotations say
 * (execute.h): as its role, with its parameters, an EXPLAIN of its
 * generic plan for prepares. A failed or differential statement is undone.
 * -1 when the client must stop.
 */
static int client_stmt(struct client *c, struct ts_role_state *roles, unsigned f, unsigned i)
{
	struct ts_load *l = c->l;
	const struct ts_scenario_stmt *st = &c->app->sc[f].stmts[i];
	struct rec r = { .sc = f, .st = i };
	size_t sample = st->params.nr > 1 ? (size_t)rand_r(&c->seed) % st->params.nr : 0;
	PGresult *res;
	const char *state;
	int failed, prepared;

	if (ts_role_switch(c->conn, roles, st->role)) {
		if (!c->lost)
			c->lost = xstrdup(ts_error_message());
		ts_error_clear();
		return -1;
	}
	if (client_exec(c, "SAVEPOINT twinstage_load"))
		return -1;
	r.t0 = now_ms();
	prepared = ts_execute(c->conn, st->sql, st->expect == TS_EXPECT_PREPARES, st->nparams,
			      st->params.nr ? st->params.v[sample] : NULL, &res);
	r.t1 = now_ms();
	state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	failed = PQresultStatus(res) == PGRES_FATAL_ERROR;
	/* cancelled because the load is over: not the application's doing */
	if (stopped(l) && state && !strcmp(state, "57014")) {
		PQclear(res);
		return -1;
	}
	r.ok = ts_scenario_judge(st, res, &r.got);
	if (r.ok) {
		free(r.got);
		r.got = NULL;
	}
	PQclear(res);
	client_record(c, &r);
	if (PQstatus(c->conn) != CONNECTION_OK) {
		c->lost = xstrdup("lost the connection");
		return -1;
	}
	if (ts_execute_end(c->conn, "twinstage_load", failed || ts_scenario_differential(st), prepared)) {
		if (!c->lost)
			c->lost = xstrdup(ts_error_message());
		ts_error_clear();
		return -1;
	}
	return 0;
}

/* A statement of production's mix, picked with a chance in proportion to its calls. */
static void mix_pick(struct client *c, unsigned *f, unsigned *i)
{
	const struct app_load *a = c->app;
	double x = (double)rand_r(&c->seed) / ((double)RAND_MAX + 1.0) * a->mix_sum[a->n_mix - 1];
	size_t lo = 0, hi = a->n_mix - 1;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (a->mix_sum[mid] > x)
			hi = mid;
		else
			lo = mid + 1;
	}
	*f = a->mix_sc[lo];
	*i = a->mix_st[lo];
}

/*
 * Each scenario file in a transaction rolled back, each statement under a
 * savepoint; with production's mix, transactions of a few statements
 * picked by their calls.
 */
static void *client_main(void *arg)
{
	struct client *c = arg;
	struct ts_load *l = c->l;
	struct ts_role_state roles = { 0 };
	size_t f = c->idx % c->app->n;

	while (!stopped(l) && !c->lost) {
		const struct ts_scenario *sc = &c->app->sc[f];
		int r = 0;

		if (client_exec(c, "BEGIN"))
			break;
		if (c->app->n_mix) {
			for (int k = 0; k < 10 && !stopped(l) && !r; k++) {
				unsigned pf, pi;

				mix_pick(c, &pf, &pi);
				r = client_stmt(c, &roles, pf, pi);
			}
		} else {
			for (size_t i = 0; i < sc->n && !stopped(l) && !r; i++)
				r = client_stmt(c, &roles, (unsigned)f, (unsigned)i);
		}
		if (PQstatus(c->conn) == CONNECTION_OK)
			PQclear(PQexec(c->conn, "ROLLBACK"));
		/* the transaction's end undid the role and its settings */
		ts_role_state_ended(&roles);
		if (r)
			break;
		f = (f + 1) % c->app->n;
	}
	ts_role_state_free(&roles);
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

	snprintf(pid, sizeof(pid), "%d", __atomic_load_n(&l->mig_pid, __ATOMIC_ACQUIRE));
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

void ts_load_watch(struct ts_load *l, int pid)
{
	if (l)
		__atomic_store_n(&l->mig_pid, pid, __ATOMIC_RELEASE);
}

void ts_load_free(struct ts_load *l)
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
	for (size_t i = 0; i < l->n_apps; i++) {
		ts_scenario_free_all(l->apps[i].sc, l->apps[i].n);
		free(l->apps[i].mix_sc);
		free(l->apps[i].mix_st);
		free(l->apps[i].mix_sum);
	}
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

/* Production's mix: every statement with @calls, weighed by them. */
static void mix_build(struct app_load *a)
{
	double sum = 0;

	for (size_t f = 0; f < a->n; f++)
		for (size_t i = 0; i < a->sc[f].n; i++) {
			if (a->sc[f].stmts[i].calls <= 0)
				continue;
			a->mix_sc = xrealloc(a->mix_sc, (a->n_mix + 1) * sizeof(*a->mix_sc));
			a->mix_st = xrealloc(a->mix_st, (a->n_mix + 1) * sizeof(*a->mix_st));
			a->mix_sum = xrealloc(a->mix_sum, (a->n_mix + 1) * sizeof(*a->mix_sum));
			sum += (double)a->sc[f].stmts[i].calls;
			a->mix_sc[a->n_mix] = (unsigned)f;
			a->mix_st[a->n_mix] = (unsigned)i;
			a->mix_sum[a->n_mix++] = sum;
		}
}

/* The versions to replay: those live while migrating that have scenarios. */
static int pick_apps(struct ts_load *l, const struct strvec *live)
{
	size_t n = live ? live->nr : l->cfg->current ? 1 : 0;

	l->apps = xcalloc(n + 1, sizeof(*l->apps));
	for (size_t i = 0; i < n; i++) {
		const char *name = live ? live->v[i] : l->cfg->current;
		const struct ts_app *app = ts_config_app(l->cfg, name);

		if (!app)
			continue;
		if (!ts_app_has_sql(app)) {
			ts_report_note(l->rep, "load: %s runs a command, not scenarios, so it was not replayed during the migration; [load] command = ... runs the application's own load generator",
				       name);
			continue;
		}
		if (ts_scenario_load_app(app, &l->apps[l->n_apps].sc, &l->apps[l->n_apps].n))
			return -1;
		mix_build(&l->apps[l->n_apps]);
		l->apps[l->n_apps++].app = app;
	}
	return 0;
}

static int start_clients(struct ts_load *l)
{
	char *set;
	int r;

	l->n_clients = (size_t)l->cfg->load_clients;
	l->clients = xcalloc(l->n_clients, sizeof(*l->clients));
	for (size_t i = 0; i < l->n_clients; i++) {
		struct client *c = &l->clients[i];
		char *name = xstrfmt("twinstage load %zu", i + 1);

		c->l = l;
		c->idx = i / l->n_apps;
		c->seed = (unsigned)(i + 1) * 2654435761u;
		c->app = &l->apps[i % l->n_apps];
		c->conn = ts_env_connect_app(l->env, &l->env->dev, NULL, name);
		free(name);
		set = xstrfmt("SET statement_timeout = %d", l->cfg->statement_timeout_ms);
		r = !c->conn || ts_pg_exec(c->conn, set);
		free(set);
		if (r)
			return -1;
		c->pid = PQbackendPID(c->conn);
		c->cancel = PQgetCancel(c->conn);
	}
	for (size_t i = 0; i < l->n_clients; i++)
		l->clients[i].started = !pthread_create(&l->clients[i].th, NULL, client_main, &l->clients[i]);
	return 0;
}

static int start_load_command(struct ts_load *l)
{
	int r;

	if (ts_command_prepare(l->env, &l->env->dev, l->cfg->load_command, l->cfg->path, "[load]",
			       &l->cp))
		return -1;
	{
		char *logs = path_join(l->cfg->workdir, "logs");

		mkdir_p(logs, 0755);
		l->log = xstrfmt("%s/load%s%s.log", logs, l->phase ? "-phase-" : "",
				 l->phase ? l->phase : "");
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

struct ts_load *ts_load_start(const struct ts_load_ctx *ctx, const struct strvec *live, int migration_pid)
{
	struct ts_load *l;

	l = xcalloc(1, sizeof(*l));
	l->env = ctx->env;
	l->rep = ctx->rep;
	l->phase = ctx->phase;
	l->quiet = ctx->quiet;
	l->cfg = ctx->env->cfg;
	l->cp = (struct child_process)CHILD_PROCESS_INIT;
	l->mig_pid = migration_pid;
	l->sample_ms = l->cfg->load_sample_ms;
	if (!l->cfg->load_command && pick_apps(l, live)) {
		ts_report_note(l->rep, "load: not run: %s", ts_error_message());
		ts_load_free(l);
		return NULL;
	}
	if (!l->cfg->load_command && !l->n_apps) {
		ts_load_free(l);
		return NULL;
	}
	l->t0 = now_ms();
	if (l->sample_ms) {
		l->sconn = ts_env_connect_app(l->env, &l->env->dev, NULL, "twinstage load sampler");
		if (l->sconn) {
			PGresult *res = PQprepare(l->sconn, "twinstage_sample", sample_sql, 1, NULL);

			if (PQresultStatus(res) == PGRES_COMMAND_OK)
				l->sampling = !pthread_create(&l->sth, NULL, sampler_main, l);
			PQclear(res);
		}
	}
	if (l->cfg->load_command ? start_load_command(l) : start_clients(l)) {
		ts_report_note(l->rep, "load: not run: %s", ts_error_message());
		__atomic_store_n(&l->stop, 1, __ATOMIC_RELEASE);
		for (size_t i = 0; i < l->n_clients; i++)
			if (l->clients[i].started)
				pthread_join(l->clients[i].th, NULL);
		if (l->sampling)
			pthread_join(l->sth, NULL);
		ts_load_free(l);
		return NULL;
	}
	if (l->command) {
		ts_say(l->quiet, "load: %s, sampling every %d ms", l->cfg->load_command, l->sample_ms);
	} else {
		struct strbuf names = STRBUF_INIT;

		for (size_t i = 0; i < l->n_apps; i++)
			strbuf_addf(&names, "%s%s", i ? ", " : "", l->apps[i].app->name);
		ts_say(l->quiet, "load: %s on %zu client%s%s", names.buf, l->n_clients,
			   l->n_clients == 1 ? "" : "s",
			   l->sample_ms ? "" : ", not sampled (sample_ms = 0)");
		strbuf_release(&names);
	}
	pause_ms(l, l->cfg->load_before_ms);
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

void ts_load_stop(struct ts_load *l)
{
	pause_ms(l, l->cfg->load_after_ms);
	stop(l);
}
