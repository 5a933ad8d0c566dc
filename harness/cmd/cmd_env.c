/*
 * cmd_env.c: `twinstage up`, `status` and `down`, for people who iterate by
 * hand: build the environments once, then migrate and replay at will.
 */
#include "cmd/cmd.h"
#include "core/error.h"
#include "core/util.h"
#include "core/wrapper.h"
#include "migrate/migrations.h"
#include "migrate/tools.h"
#include "migrate/tracking.h"
#include "pg/pg.h"
#include "rehearse/run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char up_usage[] =
"usage: twinstage up [-c twinstage.ini] [--env FILE] [-q]\n"
"\n"
"Builds the production clone and the dev side and leaves them running.\n"
"A second \"up\" reuses running environments.\n";

static const char status_usage[] =
"usage: twinstage status [-c twinstage.ini]\n"
"\n"
"Shows the environments, whether they run, and the migrations applied on\n"
"the dev side. Exit code 3 when there are none or one is down.\n";

static const char down_usage[] =
"usage: twinstage down [-c twinstage.ini] [--purge]\n"
"\n"
"Stops and removes both environments and their snapshots, whatever state\n"
"a run left them in (also after a run killed with SIGKILL), and unmounts\n"
"the copy-on-write pool twinstage made. --purge also removes the whole\n"
"workdir: logs, reports and the pool's image file.\n";

static void print_sides(struct ts_run *run)
{
	struct ts_side *sides[] = { &run->env.prod, &run->env.dev };

	for (int i = 0; i < 2; i++) {
		int up = run->env.ops->running(&run->env, sides[i]);

		printf("%-5s %-8s postgresql://%s@127.0.0.1:%d/%s\n", sides[i]->name,
		       up ? "running" : "stopped", TS_DB_USER, sides[i]->port, run->cfg.dbname);
	}
}

/* Each side's tracking table: the version it is at, and what it lists. */
static int show_tracking(struct ts_run *run)
{
	struct ts_side *sides[] = { &run->env.prod, &run->env.dev };

	if (ts_run_plan(run))
		return ts_error_print();
	if (run->cfg.tool) {
		/* a tool decides what is pending: its table says where each side is */
		printf("migrations: run by %s (%s), tracked in %s\n", ts_tool_name(run->cfg.tool), run->cfg.mig_command,
		       ts_tool_table(run->cfg.tool, run->cfg.tracking_table) ?: "no table");
		for (int i = 0; i < 2; i++) {
			PGconn *conn = ts_env_connect(&run->env, sides[i], NULL);
			struct ts_tracking_state st;

			if (!conn || ts_tool_read_state(conn, run->cfg.tool, run->cfg.tracking_table, &st)) {
				if (conn)
					PQfinish(conn);
				return ts_error_print();
			}
			printf("%-5s at %s, %zu recorded\n", sides[i]->name, st.latest ? st.latest : "none", st.n);
			ts_tracking_state_free(&st);
			PQfinish(conn);
		}
		return 0;
	}
	for (int i = 0; i < 2; i++) {
		PGconn *conn = ts_env_connect(&run->env, sides[i], NULL);

		/* the production clone says where the table is, for both */
		if (conn && i == 0 && ts_run_resolve_tracking(run, conn)) {
			PQfinish(conn);
			return ts_error_print();
		}
		if (i == 0)
			printf("migrations: %zu file%s (%s), tracked in %s's table %s\n", run->set.n,
			       run->set.n == 1 ? "" : "s", ts_mig_format_name(run->set.format),
			       ts_tracking_tool_name(run->tracker.tool), run->tracker.table);
		struct ts_tracking_state st;
		size_t pending = 0;

		if (!conn || ts_tracking_read(conn, &run->tracker, &st)) {
			if (conn)
				PQfinish(conn);
			return ts_error_print();
		}
		for (size_t j = 0; j < run->set.n; j++) {
			char *rec;

			pending += !ts_tracking_applied(&run->tracker, &st, &run->set.v[j], &rec);
			free(rec);
		}
		printf("%-5s at version %s%s, %zu pending\n", sides[i]->name, st.latest ? st.latest : "none",
		       st.dirty ? " (dirty)" : "", pending);
		for (size_t j = 0; i == 1 && j < st.n; j++)
			printf("        applied %s %s\n", st.rows[j].version ? st.rows[j].version : "R",
			       st.rows[j].description ? st.rows[j].description : "");
		ts_tracking_state_free(&st);
		PQfinish(conn);
	}
	return 0;
}

int cmd_up(int argc, char **argv)
{
	struct ts_opts o;
	struct ts_run run;
	int done, code, loaded;

	code = cmd_parse_options(argc, argv, "up", up_usage, "config env quiet help", &o, &done);
	if (done)
		return code;
	if (ts_run_open(&run, o.config, o.env_file))
		goto fail;
	run.quiet = o.quiet;
	loaded = ts_env_load(&run.env);
	if (loaded > 0) {
		if (ts_env_ensure_running(&run.env))
			goto fail;
		ts_run_say(&run, "environments already up");
	} else if (loaded < 0 || ts_run_provision(&run)) {
		int c = ts_error_print();

		ts_env_down(&run.env);
		ts_run_close(&run);
		return c;
	}
	print_sides(&run);
	if (loaded <= 0 && run.rep.clone) {
		printf("clone %s: dev side in %.2f s; production clone from %s\n", run.rep.clone,
		       run.rep.clone_dev_ms / 1000.0, run.rep.clone_source ? run.rep.clone_source : "-");
		if (run.rep.clone_note)
			printf("note: %s\n", run.rep.clone_note);
	}
	ts_run_close(&run);
	return 0;
fail:
	return ts_run_fail(&run);
}

int cmd_status(int argc, char **argv)
{
	struct ts_opts o;
	struct ts_run run;
	int done, code, loaded;

	code = cmd_parse_options(argc, argv, "status", status_usage, "config env help", &o, &done);
	if (done)
		return code;
	if (ts_run_open(&run, o.config, o.env_file)) {
		return ts_run_fail(&run);
	}
	loaded = ts_env_load(&run.env);
	if (loaded <= 0) {
		code = loaded < 0 ? ts_error_print() : TS_EXIT_ENV;
		if (!loaded)
			printf("no environments in %s; \"twinstage up\" builds them\n", run.cfg.workdir);
		ts_run_close(&run);
		return code;
	}
	printf("project %s, backend %s, workdir %s\n", run.cfg.name, run.env.ops->name,
	       run.cfg.workdir);
	if (run.env.clone)
		printf("clone %s%s%s\n", run.env.clone, run.env.pool.dir ? ", on the pool " : "",
		       run.env.pool.dir ? run.env.pool.dir : "");
	print_sides(&run);
	code = 0;
	if (!run.env.ops->running(&run.env, &run.env.prod) ||
	    !run.env.ops->running(&run.env, &run.env.dev)) {
		code = TS_EXIT_ENV;
	} else {
		code = show_tracking(&run);
	}
	ts_run_close(&run);
	return code;
}

int cmd_down(int argc, char **argv)
{
	struct ts_opts o;
	struct ts_run run;
	int done, code;

	code = cmd_parse_options(argc, argv, "down", down_usage, "config env purge quiet help", &o, &done);
	if (done)
		return code;
	if (ts_run_open(&run, o.config, o.env_file)) {
		return ts_run_fail(&run);
	}
	run.quiet = o.quiet;
	/* a broken state file must not stop the cleanup: the folders are known */
	if (ts_env_load(&run.env) < 0)
		ts_error_clear();
	if (ts_env_down(&run.env)) {
		return ts_run_fail(&run);
	}
	if (o.purge) {
		char *wd = xstrdup(run.cfg.workdir);

		if (ts_env_purge(&run.env)) {
			free(wd);
			return ts_run_fail(&run);
		}
		ts_run_close(&run);
		printf("removed %s\n", wd);
		free(wd);
		return 0;
	}
	printf("environments removed (reports kept in %s/reports)\n", run.cfg.workdir);
	ts_run_close(&run);
	return 0;
}
