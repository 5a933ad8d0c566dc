/*
 * scenario_run.c: an app's scenario files (or its command) run against one
 * side. prepares and same are judged against the production clone: its
 * outcome first, in a transaction of its own beside the side's, then the
 * side's. See scenario_run.h.
 */
#include "rehearse/scenario_run.h"
#include "config/config.h"
#include "core/error.h"
#include "core/progress.h"
#include "core/run_command.h"
#include "core/strbuf.h"
#include "core/util.h"
#include "core/wrapper.h"
#include "env/env.h"
#include "pg/pg.h"
#include "rehearse/execute.h"
#include "rehearse/scenario.h"
#include "report/report.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * The relation locks this session holds and `held` did not list yet (then
 * added to it): what the statement that just ran took, in the order a
 * transaction of the application takes them (lockorder.h reads them).
 */
static json_t *new_locks(PGconn *conn, json_t *held)
{
	PGresult *res = PQexec(conn, "SELECT n.nspname || '.' || c.relname || ':' || l.mode FROM pg_locks l"
				     " JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace"
				     " WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted"
				     "   AND c.relkind IN ('r', 'p', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')");
	json_t *mine = json_array(), *v;
	size_t k;

	if (PQresultStatus(res) == PGRES_TUPLES_OK)
		for (int i = 0; i < PQntuples(res); i++) {
			int seen = 0;

			json_array_foreach(held, k, v)
				seen |= !strcmp(json_string_value(v), PQgetvalue(res, i, 0));
			if (!seen) {
				json_array_append_new(mine, json_string(PQgetvalue(res, i, 0)));
				json_array_append_new(held, json_string(PQgetvalue(res, i, 0)));
			}
		}
	PQclear(res);
	return mine;
}

/* The statement was stopped by statement_timeout (57014 is also a cancel). */
static int timed_out(const PGresult *res)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

	return state && !strcmp(state, "57014") && msg && strstr(msg, "statement timeout");
}

/* A session a file runs in: the side under test, or the production clone beside it. */
struct session {
	PGconn *conn;
	struct ts_role_state roles;
};

static int begin(struct session *s, int timeout_ms)
{
	char *set = xstrfmt("SET LOCAL statement_timeout = %d", timeout_ms);
	int r = ts_pg_exec(s->conn, "BEGIN") || ts_pg_exec(s->conn, set) ? -1 : 0;

	free(set);
	return r;
}

/*
 * Runs st under a savepoint; *o gets what it gave. A differential
 * statement's effects are always undone (each is checked on its own);
 * another's are kept for the statements after it when it worked.
 */
static int run_one(struct session *s, const struct ts_scenario_stmt *st, size_t sample,
		   struct ts_outcome *o, PGresult **keep)
{
	PGresult *res;
	int prepared, failed;

	if (ts_role_switch(s->conn, &s->roles, st->role) || ts_pg_exec(s->conn, "SAVEPOINT twinstage_scenario"))
		return -1;
	prepared = ts_execute(s->conn, st->sql, st->expect == TS_EXPECT_PREPARES, st->nparams,
			      st->params.nr ? st->params.v[sample] : NULL, &res);
	failed = PQresultStatus(res) == PGRES_FATAL_ERROR;
	if (o)
		ts_outcome_read(res, o);
	if (keep)
		*keep = res;
	else
		PQclear(res);
	return (failed ? 1 : 0) | (prepared ? 2 : 0);
}

static int end_one(struct session *s, const struct ts_scenario_stmt *st, int ran)
{
	int undo = (ran & 1) || ts_scenario_differential(st);

	return PQstatus(s->conn) != CONNECTION_OK ? -1 :
	       ts_execute_end(s->conn, "twinstage_scenario", undo, ran & 2);
}

/*
 * The production clone's side of a differential statement: its outcome,
 * and for same whether a second run gives it again (now(), random() and
 * sequences do not: then only the shape is compared). -1 when the session failed.
 */
static int reference(struct session *ref, const struct ts_scenario_stmt *st, size_t sample,
		     struct ts_outcome *o, int *varies)
{
	struct ts_outcome again;
	int ran = run_one(ref, st, sample, o, NULL);

	*varies = 0;
	if (ran < 0 || end_one(ref, st, ran))
		return -1;
	if (!o->ok || st->expect != TS_EXPECT_SAME)
		return 0;
	if ((ran = run_one(ref, st, sample, &again, NULL)) < 0 || end_one(ref, st, ran)) {
		ts_outcome_free(&again);
		return -1;
	}
	*varies = !ts_outcome_alike(o, &again, st->ordered);
	ts_outcome_free(&again);
	return 0;
}

/*
 * Judges a differential statement against the production clone's outcome
 * (one that worked there); with none, in the baseline run on the
 * production clone (on_prod), whether it is checkable at all, and
 * elsewhere (the next version, on either side) that it works.
 */
static int judge_differential(const struct ts_scenario_stmt *st, const struct ts_outcome *prod, int varies,
			      const struct ts_outcome *got, int on_prod, struct ts_report_case *c)
{
	char *why = NULL;

	if (!got->ok && !prod && on_prod) {
		c->uncheckable = xstrfmt("it fails on the production clone, before any migration: error %s",
					 got->error ? got->error : got->sqlstate);
		c->got = xstrdup("not checkable");
		return 1;
	}
	if (st->expect == TS_EXPECT_PREPARES || !prod) {
		c->got = got->ok ? xstrdup(st->expect == TS_EXPECT_PREPARES ? "prepared, generic plan made" : "ok") :
				   xstrfmt("error %s", got->error ? got->error : got->sqlstate);
		return got->ok;
	}
	if (ts_outcome_same(prod, got, st->ordered, varies, &why)) {
		c->got = xstrdup(varies ? "the same columns and row count (its rows differ between two runs on the production clone, so only its shape is compared)" :
				 "the same");
		return 1;
	}
	c->got = why;
	return 0;
}

/*
 * The baseline's case of a statement (file and line), looked for from
 * *at on: the baseline ran the same files in the same order.
 */
static const struct ts_report_case *baseline_case(const struct ts_report_check *b, size_t *at,
						  const char *file, int line)
{
	for (size_t n = 0; b && n < b->n_cases; n++) {
		size_t i = (*at + n) % b->n_cases;

		if (b->cases[i].line == line && !strcmp(b->cases[i].file, file)) {
			*at = i;
			return &b->cases[i];
		}
	}
	return NULL;
}

static int run_file(struct session *s, struct session *ref, const struct ts_scenario *sc,
		    const struct ts_report_check *baseline, size_t *at, struct ts_report_check *check,
		    int timeout_ms, struct strvec *as_superuser)
{
	int r = begin(s, timeout_ms) || (ref && begin(ref, timeout_ms)) ? -1 : 0;
	json_t *held;

	if (r)
		return ts_error_prefix("could not start the transaction of scenario \"%s\"", sc->file);
	held = json_array();
	for (size_t i = 0; i < sc->n && !r; i++) {
		const struct ts_scenario_stmt *st = &sc->stmts[i];
		size_t samples = st->params.nr ? st->params.nr : 1;

		for (size_t j = 0; j < samples && !r; j++) {
			struct ts_outcome prod, got;
			const struct ts_report_case *known;
			struct ts_report_case *c;
			PGresult *res;
			int ran, ok, varies = 0, diff = ts_scenario_differential(st);

			if (ts_interrupted) {
				r = ts_error_set(TS_EXIT_ENV, "interrupted");
				break;
			}
			memset(&prod, 0, sizeof(prod));
			memset(&got, 0, sizeof(got));
			known = ref && st->expect == TS_EXPECT_PREPARES ? baseline_case(baseline, at, sc->file, st->line) : NULL;
			if (known) {
				/* the production clone prepared it before migrating, or could not */
				prod.ok = !known->uncheckable;
			} else if (ref && diff && reference(ref, st, j, &prod, &varies)) {
				/* the production clone first: what the dev side must give, and whether it can be checked */
				r = ts_error_prefix("scenario \"%s\" on the production clone", sc->file);
				break;
			}
			if (ref && !diff) {
				/* kept in step with the side under test */
				if ((ran = run_one(ref, st, j, NULL, NULL)) < 0 || end_one(ref, st, ran)) {
					r = ts_error_prefix("scenario \"%s\" on the production clone", sc->file);
					break;
				}
			}
			c = ts_report_case_add(check);
			c->file = xstrdup(sc->file);
			c->name = xstrdup(st->name);
			c->line = st->line;
			c->text = xstrdup(st->sql);
			c->expected = ts_scenario_expect_text(st);
			c->calls = st->calls;
			c->captured = sc->captured;
			if (st->params.nr) {
				char *one = ts_oneline(st->sql);

				c->sql = xstrfmt("%s -- with (%s)", one, st->params.v[j]);
				free(one);
			} else {
				c->sql = ts_oneline(st->sql);
			}
			if (ref && diff && !prod.ok) {
				/* not the migration's doing: the side under test is not asked */
				c->uncheckable = known ? xstrdup(known->uncheckable) :
					xstrfmt("it fails on the production clone too: error %s",
						prod.error ? prod.error : prod.sqlstate);
				c->got = xstrdup("not checkable");
				c->pass = 1;
				ts_outcome_free(&prod);
				continue;
			}
			if ((ran = run_one(s, st, j, diff ? &got : NULL, &res)) < 0) {
				ts_outcome_free(&prod);
				r = ts_error_prefix("scenario \"%s\"", sc->file);
				break;
			}
			if (st->role && !s->roles.role)
				strvec_pushf(as_superuser, "%s:%d (@role %s)", sc->file, st->line, st->role);
			else if (st->role)
				c->role = xstrdup(st->role);
			/* what it locked (a failed one's locks go with its savepoint) */
			c->locks = !(ran & 1) && !diff ? new_locks(s->conn, held) : NULL;
			if (diff)
				ok = judge_differential(st, ref ? &prod : NULL, varies, &got, check->role == TS_CHECK_BASELINE, c);
			else
				ok = ts_scenario_judge(st, res, &c->got);
			if (!ok && timed_out(res) && timeout_ms) {
				char b[32], *g = xstrfmt("%s (stopped after [gate] statement_timeout = %s)", c->got,
							 ts_human_ms(timeout_ms, b, sizeof(b)));

				free(c->got);
				c->got = g;
			}
			PQclear(res);
			ts_outcome_free(&prod);
			ts_outcome_free(&got);
			c->pass = ok;
			if (!ok)
				check->failed++;
			if (PQstatus(s->conn) != CONNECTION_OK)
				r = ts_error_set(TS_EXIT_ENV, "lost the connection to the %s side during scenario \"%s\"",
						 check->side, sc->file);
			/* keep what a statement did for the ones after it; undo a failed one */
			else if (end_one(s, st, ran))
				r = ts_error_prefix("scenario \"%s\"", sc->file);
		}
	}
	json_decref(held);
	if (ref && PQstatus(ref->conn) == CONNECTION_OK)
		PQclear(PQexec(ref->conn, "ROLLBACK"));
	return r ? r : ts_pg_exec(s->conn, "ROLLBACK");
}

static int has_differential(const struct ts_scenario *sc, size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < sc[i].n; k++)
			if (ts_scenario_differential(&sc[i].stmts[k]))
				return 1;
	return 0;
}

static int run_sql_app(struct ts_env *env, struct ts_side *side, const struct ts_app *app,
		       const struct ts_report_check *baseline, struct ts_report_check *check)
{
	size_t at = 0;
	struct ts_scenario *sc;
	struct session s = { 0 }, ref = { 0 };
	struct strvec as_superuser = STRVEC_INIT;
	size_t n;
	int r = 0;

	if (ts_scenario_load_app(app, &sc, &n))
		return -1;
	/* kept for the next check of this stage: a guest's new session is slow to warm */
	if (!(s.conn = ts_env_session(env, side)))
		r = -1;
	/*
	 * on the dev side, a live version's prepares and same are judged
	 * against the production clone; the next version's are not there yet
	 */
	if (!r && strcmp(side->name, "prod") && check->role != TS_CHECK_NEXT && has_differential(sc, n) &&
	    !(ref.conn = ts_env_session(env, &env->prod)))
		r = -1;
	for (size_t i = 0; i < n && !r; i++) {
		r = run_file(&s, ref.conn ? &ref : NULL, &sc[i], baseline, &at, check,
			     env->cfg->statement_timeout_ms, &as_superuser);
		/* a file's role and settings end with its transaction */
		ts_role_state_ended(&s.roles);
		ts_role_state_ended(&ref.roles);
	}
	if (!r && as_superuser.nr) {
		struct strbuf sb = STRBUF_INIT;

		strbuf_addstr(&sb, s.roles.missing.nr == 1 ? "role " : "roles ");
		for (size_t i = 0; i < s.roles.missing.nr; i++)
			strbuf_addf(&sb, "%s%s", i ? ", " : "", s.roles.missing.v[i]);
		strbuf_addf(&sb, " not on the %s side: %zu statement%s ran as the superuser instead (", side->name,
			    as_superuser.nr, as_superuser.nr == 1 ? "" : "s");
		for (size_t i = 0; i < as_superuser.nr && i < 5; i++)
			strbuf_addf(&sb, "%s%s", i ? ", " : "", as_superuser.v[i]);
		strbuf_addstr(&sb, as_superuser.nr > 5 ? ", ...)" : ")");
		check->role_note = strbuf_detach(&sb);
	}
	strvec_clear(&as_superuser);
	ts_role_state_free(&s.roles);
	ts_role_state_free(&ref.roles);
	ts_env_session_done(env, side, s.conn);
	ts_env_session_done(env, &env->prod, ref.conn);
	ts_scenario_free_all(sc, n);
	return r;
}

char *ts_tail_lines(const char *path, int lines)
{
	struct strbuf sb = STRBUF_INIT;
	char *tail = strbuf_read_file(&sb, path) ? NULL : strbuf_tail_lines(&sb, lines);

	strbuf_release(&sb);
	return tail;
}

int ts_command_prepare(struct ts_env *env, struct ts_side *side, const char *command,
		       const char *origin, const char *what, struct child_process *cp)
{
	/* checked when the configuration was read, but a variable may have gone since */
	if (split_command(command, &cp->args))
		return ts_error_set(TS_EXIT_USAGE, "%s: cannot split command of %s into words: \"%s\"",
				    origin, what, command),
		       ts_error_hint(TS_COMMAND_HINT);
	/* ./script is relative to the configuration file, like every path */
	if (strchr(cp->args.v[0], '/') && cp->args.v[0][0] != '/') {
		char *abs = path_join(env->cfg->dir, cp->args.v[0]);

		free(cp->args.v[0]);
		cp->args.v[0] = abs;
	}
	ts_env_child_env(env, side, cp);
	cp->dir = env->cfg->dir;
	return 0;
}

static int run_command_app(struct ts_env *env, struct ts_side *side, const struct ts_app *app,
			   const char *log_dir, struct ts_report_check *check)
{
	struct child_process cp = CHILD_PROCESS_INIT;
	struct ts_report_case *c;
	char *log, *what = xstrfmt("[app %s]", app->name);
	int status;

	status = ts_command_prepare(env, side, app->command, app->origin, what, &cp);
	free(what);
	if (status)
		return -1;
	mkdir_p(log_dir, 0755);
	log = xstrfmt("%s/%s-on-%s.log", log_dir, app->name, side->name);
	unlink(log);
	cp.out_path = log;
	cp.no_stdin = 1;
	status = run_command(&cp);
	child_process_clear(&cp);
	if (status < 0) {
		free(log);
		return ts_error_prefix("[app %s]", app->name);
	}
	c = ts_report_case_add(check);
	c->file = xstrdup(app->command);
	c->name = xstrdup(app->command);
	c->sql = xstrdup(app->command);
	c->expected = xstrdup("exit 0");
	c->got = xstrfmt("exit %d", status);
	c->pass = status == 0;
	if (!c->pass)
		check->failed++;
	check->output = ts_tail_lines(log, 20);
	free(log);
	return 0;
}

int ts_scenario_run_app(struct ts_env *env, struct ts_side *side, const struct ts_app *app,
			const char *log_dir, const struct ts_report_check *baseline, struct ts_report_check *check)
{
	double t0 = now_ms();
	int r;

	check->ran = 1;
	if (app->command) {
		/*
		 * none open while an application's process runs (an idle one would
		 * stand in the way of its DROP DATABASE), none kept across it (it
		 * may change what a session starts with)
		 */
		ts_env_sessions_close(env);
		r = run_command_app(env, side, app, log_dir, check);
		ts_env_sessions_close(env);
	} else {
		r = 0;
	}
	/* a command's app may have a captured workload too */
	if (!r && (!app->command || (app->workload && is_dir(app->workload))))
		r = run_sql_app(env, side, app, baseline, check);
	check->ms = now_ms() - t0;
	return r;
}
