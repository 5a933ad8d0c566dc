/*
 * tool.c: the team's migration tool run on the dev side, watched from the
 * server: its statement log and its sessions' locks. See tool.h.
 */
#include "rehearse/tool.h"
#include "core/error.h"
#include "core/progress.h"
#include "core/run_command.h"
#include "core/strbuf.h"
#include "core/strvec.h"
#include "core/util.h"
#include "core/wrapper.h"
#include "migrate/tools.h"
#include "migrate/tracking.h"
#include "pg/pg.h"
#include "pg/statement_log.h"
#include "rehearse/load.h"
#include "rehearse/load_judge.h"
#include "rehearse/run.h"
#include "rehearse/scenario.h"
#include "rehearse/scenario_run.h"
#include "rehearse/tool_log.h"
#include "rehearse/tool_watch.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The application_name of the tool's sessions (libpq reads PGAPPNAME). */
#define TOOL_APP_SUFFIX " (rehearsed by twinstage)"
static off_t file_end(const char *path)
{
	struct stat st;

	return stat(path, &st) ? 0 : st.st_size;
}

/* ---- running it ---- */

/* The names of the migrations the tool recorded during the command, in order. */
static void new_rows(const struct ts_tracking_state *before, const struct ts_tracking_state *after,
		     struct strvec *out)
{
	for (size_t i = 0; i < after->n; i++) {
		int was = 0;

		for (size_t k = 0; k < before->n && !was; k++)
			was = !strcmp(before->rows[k].version, after->rows[i].version);
		if (!was)
			strvec_push(out, after->rows[i].version);
	}
}

/* Whether the child would find its program: on the PATH it gets ([migrate] env may set one), else ours. */
static int program_found(const struct child_process *cp)
{
	const char *path = getenv("PATH");
	char *found;

	for (size_t i = 0; i < cp->env.nr; i++)
		if (!strncmp(cp->env.v[i], "PATH=", 5))
			path = cp->env.v[i] + 5;
	found = find_program(cp->args.v[0], path);
	free(found);
	return found != NULL;
}

static const char *install_hint(enum ts_tool t)
{
	switch (t) {
	case TS_TOOL_ALEMBIC: return "on Debian: apt-get install alembic python3-psycopg2";
	case TS_TOOL_DJANGO: return "on Debian: apt-get install python3-django python3-psycopg2 (and run Debian's /usr/bin/python3)";
	case TS_TOOL_RAILS: return "on Debian: apt-get install rails ruby-pg";
	case TS_TOOL_SQITCH: return "on Debian: apt-get install sqitch libdbd-pg-perl";
	default: return "install it, or give [migrate] command the path of the program";
	}
}

/*
 * Runs a command line of the tool on the dev side: PG* for it, its own
 * application_name, and PGOPTIONS asking the server to log its statements
 * (log = 1) and to stop one after migration_timeout. Its output goes to
 * log_path. Returns its exit status, or -1 (TS_EXIT_ENV: not installed).
 */
static int run_tool(struct ts_run *run, const char *command, const char *origin, int log, const char *log_path)
{
	struct child_process cp = CHILD_PROCESS_INIT;
	char *what = xstrfmt("[migrate] (tool = %s)", ts_tool_name(run->cfg.tool));
	int status;

	status = ts_command_prepare(&run->env, &run->env.dev, command, origin, what, &cp);
	free(what);
	if (status)
		return -1;
	cp.dir = run->cfg.mig_cwd;
	strvec_pushf(&cp.env, "PGAPPNAME=%s%s", ts_tool_name(run->cfg.tool), TOOL_APP_SUFFIX);
	strvec_pushf(&cp.env, "PGOPTIONS=-c statement_timeout=%d%s", run->cfg.migration_timeout_ms,
		     log ? " -c log_min_duration_statement=0 -c log_lock_waits=on" : "");
	if (run->cfg.tool == TS_TOOL_SQITCH)
		strvec_pushf(&cp.env, "SQITCH_TARGET=db:pg://%s@127.0.0.1:%d/%s", TS_DB_USER, run->env.dev.port,
			     run->cfg.dbname);
	for (size_t i = 0; i < run->cfg.mig_env.nr; i++)
		strvec_push(&cp.env, run->cfg.mig_env.v[i]);
	if (!program_found(&cp)) {
		ts_error_set(TS_EXIT_ENV, "%s: %s's command \"%s\" is not installed here (not found on PATH)", origin,
			     ts_tool_name(run->cfg.tool), cp.args.v[0]);
		ts_error_hint("%s", install_hint(run->cfg.tool));
		child_process_clear(&cp);
		return -1;
	}
	cp.out_path = log_path;
	cp.no_stdin = 1;
	unlink(log_path);
	status = run_command(&cp);
	child_process_clear(&cp);
	return status;
}

/* Runs a statement of ours the log records, and reads the tool's statements up to it. */
static int read_log(struct ts_run *run, PGconn *conn, const char *path, off_t from, struct ts_statement_log *log)
{
	char mark[64], *sql;
	int r;

	snprintf(mark, sizeof(mark), "twinstage statement log mark %d-%.0f", (int)getpid(), now_ms());
	sql = xstrfmt("SELECT '%s'", mark);
	r = ts_pg_exec(conn, "SET log_min_duration_statement = 0") || ts_pg_exec(conn, sql) ||
	    ts_pg_exec(conn, "RESET log_min_duration_statement") ? -1 : 0;
	free(sql);
	if (!r)
		r = ts_statement_log_read(path, from, mark, 30000, "twinstage", log);
	return r;
}

static char *log_path_for(struct ts_run *run, const char *what)
{
	char *dir = path_join(run->cfg.workdir, "logs"), *p;

	mkdir_p(dir, 0755);
	p = xstrfmt("%s/%s%s%s.log", dir, what, run->phase ? "-phase-" : "", run->phase ? run->phase : "");
	free(dir);
	return p;
}

int ts_tool_migrate(struct ts_run *run, const char *command, double *ran_ms)
{
	struct ts_env *env = &run->env;
	struct ts_tracking_state before, after;
	struct ts_statement_log log = { 0 };
	struct ts_tool_watch s;
	struct ts_load *load = NULL;
	struct ts_report_migration *last = NULL;
	struct strvec recorded = STRVEC_INIT;
	size_t first = run->rep.n_migrations;
	char *lpath = NULL, *out = log_path_for(run, "migrate");
	json_t *files0 = NULL, *files1 = NULL;
	double delta, m0, m1;
	off_t from;
	int status, r = -1;
	PGconn *conn;

	if (!env->ops->statement_log || !(lpath = env->ops->statement_log(env, &env->dev))) {
		free(out);
		return ts_error_set(TS_EXIT_USAGE, "backend %s cannot hand twinstage the dev side's statement log (tool = %s needs backend = instance)",
				    env->ops->name, ts_tool_name(run->cfg.tool));
	}
	if (!(conn = ts_env_connect(env, &env->dev, NULL))) {
		free(lpath);
		free(out);
		return -1;
	}
	if (ts_tool_read_state(conn, run->cfg.tool, run->cfg.tracking_table, &before)) {
		PQfinish(conn);
		free(lpath);
		free(out);
		return -1;
	}
	/* where the way back leads: the tool's table before this command */
	ts_tracking_state_free(&run->tool_before);
	ts_tracking_state_copy(&run->tool_before, &before);
	if (!run->dev_before_read) {
		free(run->rep.dev_before);
		run->rep.dev_before = before.latest ? xstrdup(before.latest) : NULL;
		run->dev_before_read = 1;
	}
	files0 = ts_tool_table_files(conn);
	delta = ts_tool_clock_delta(conn);
	from = file_end(lpath);
	{
		char *app = xstrfmt("%s%s", ts_tool_name(run->cfg.tool), TOOL_APP_SUFFIX);
		struct ts_load_ctx lctx = { env, &run->rep, run->phase, run->quiet };

		if (run->load)
			load = ts_load_start(&lctx, run->live, 0);
		ts_tool_watch_start(&s, env, &run->rep, load, app);
		free(app);
	}
	ts_run_say(run, "migrate: %s, on the dev side (127.0.0.1:%d)", command, env->dev.port);
	m0 = now_ms();
	status = run_tool(run, command, run->cfg.tool_origin, 1, out);
	m1 = now_ms();
	*ran_ms = m1 - m0;
	ts_tool_watch_stop(&s);
	if (status < 0) {
		char *saved = xstrdup(ts_error_message()), *hint = xstrdup(ts_error_hint_text());
		enum ts_exit cls = ts_error_class();

		if (load)
			ts_load_finish(load, first, m0, m1);
		ts_error_set(cls, "%s", saved);
		if (*hint)
			ts_error_hint("%s", hint);
		free(saved);
		free(hint);
		goto out;
	}
	if (read_log(run, conn, lpath, from, &log)) {
		if (load)
			ts_load_finish(load, first, m0, m1);
		goto out;
	}
	if (ts_tool_read_state(conn, run->cfg.tool, run->cfg.tracking_table, &after)) {
		if (load)
			ts_load_finish(load, first, m0, m1);
		goto out;
	}
	new_rows(&before, &after, &recorded);
	files1 = ts_tool_table_files(conn);
	ts_tool_log_report(run, &log, &s, files0, files1, &recorded, status != 0, command, delta, &last);
	/* what the failure took back with it: migrations of its transaction the table no longer lists */
	for (size_t i = first; status && i < run->rep.n_migrations; i++) {
		struct ts_report_migration *m = &run->rep.migrations[i];
		int kept = 0;

		for (size_t k = 0; k < after.n && !kept; k++)
			kept = !strcmp(after.rows[k].version, m->file);
		if (m != last && ts_tool_table(run->cfg.tool, run->cfg.tracking_table) && !kept) {
			free(m->status);
			m->status = xstrdup("rolled back");
		}
	}
	/* the load is judged on the statements just recorded, as for files */
	if (load)
		ts_load_finish(load, first, m0, m1);
	free(run->rep.dev_after);
	run->rep.dev_after = after.latest ? xstrdup(after.latest) : NULL;
	ts_tracking_state_free(&after);
	if (!run->quiet)
		for (size_t i = first; i < run->rep.n_migrations; i++)
			fprintf(stderr, "    %s: %zu statement%s, %.0f ms\n", run->rep.migrations[i].file,
				run->rep.migrations[i].n_stmts, run->rep.migrations[i].n_stmts == 1 ? "" : "s",
				run->rep.migrations[i].ms);
	if (status) {
		/* the migration failed: the server's word, and the tool's */
		struct ts_logged *err = NULL;
		char *tail = ts_tail_lines(out, 12), *msg;

		for (size_t i = 0; i < log.n; i++)
			if (log.v[i].state)
				err = &log.v[i];
		if (err) {
			char *sql = ts_oneline(err->sql);

			msg = xstrfmt("%s: %s: %s (the statement: %s; %s exited with %d)", last->file, err->state,
				      err->message, sql, command, status);
			free(sql);
		} else {
			msg = xstrfmt("%s: %s exited with %d%s%s", last->file, command, status, tail ? ": " : "",
				      tail ? tail : "");
		}
		free(last->status);
		last->status = xstrdup("failed");
		last->error = msg;
		if (tail) {
			ts_report_note(&run->rep, "the last lines %s printed:\n%s", command, tail);
			free(tail);
		}
		ts_error_set(TS_EXIT_GATE, "%s", msg);
		goto out;
	}
	r = (int)(run->rep.n_migrations - first);
out:
	ts_statement_log_free(&log);
	ts_tool_watch_free(&s);
	strvec_clear(&recorded);
	json_decref(files0);
	json_decref(files1);
	ts_tracking_state_free(&before);
	PQfinish(conn);
	free(lpath);
	free(out);
	return r;
}

int ts_tool_reapply(struct ts_run *run, const char *command)
{
	char *out = log_path_for(run, "reapply");
	int status = run_tool(run, command, run->cfg.tool_origin, 0, out);

	if (status > 0) {
		char *tail = ts_tail_lines(out, 6);

		ts_error_set(TS_EXIT_GATE, "%s exited with %d%s%s", command, status, tail ? ": " : "", tail ? tail : "");
		free(tail);
	}
	free(out);
	return status ? -1 : 0;
}

int ts_tool_down(struct ts_run *run, const char *down, const struct ts_tracking_state *to, double *ms)
{
	struct strvec cmds = STRVEC_INIT;
	struct ts_tracking_state now;
	PGconn *conn;
	double t0 = now_ms();
	int r = 0;

	*ms = 0;
	if (down) {
		strvec_push(&cmds, down);
	} else {
		if (!(conn = ts_env_connect(&run->env, &run->env.dev, NULL)))
			return -1;
		r = ts_tool_read_state(conn, run->cfg.tool, run->cfg.tracking_table, &now);
		PQfinish(conn);
		if (r)
			return -1;
		r = ts_tool_default_down(run->cfg.tool, run->cfg.mig_command, to, &now, &cmds);
		ts_tracking_state_free(&now);
		if (r) {
			strvec_clear(&cmds);
			return -1;
		}
	}
	for (size_t i = 0; i < cmds.nr && !r; i++) {
		char *out = log_path_for(run, "down");
		int status;

		if (!run->quiet)
			fprintf(stderr, "    %s ...", cmds.v[i]);
		status = run_tool(run, cmds.v[i], run->cfg.tool_origin, 0, out);
		if (status > 0) {
			char *tail = ts_tail_lines(out, 6);

			r = ts_error_set(TS_EXIT_GATE, "the way back, %s, exited with %d%s%s", cmds.v[i], status,
					 tail ? ": " : "", tail ? tail : "");
			free(tail);
		} else if (status < 0) {
			r = -1;
		}
		if (!run->quiet)
			fprintf(stderr, r ? " failed\n" : " done\n");
		free(out);
	}
	strvec_clear(&cmds);
	*ms = now_ms() - t0;
	return r;
}
