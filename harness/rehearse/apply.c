/*
 * apply.c: the dev side migrated, by twinstage from the files or by the
 * team's tool, watched. See apply.h.
 */
#include "rehearse/apply.h"
#include "core/error.h"
#include "core/progress.h"
#include "core/strbuf.h"
#include "core/util.h"
#include "core/wrapper.h"
#include "migrate/migrate.h"
#include "migrate/tools.h"
#include "migrate/tracking.h"
#include "pg/pg.h"
#include "pg/trace.h"
#include "rehearse/load.h"
#include "rehearse/load_judge.h"
#include "rehearse/lockorder.h"
#include "rehearse/run.h"
#include "rehearse/tool.h"

#include <stdlib.h>
#include <string.h>

int ts_run_migrate(struct ts_run *run)
{
	if (ts_run_plan(run))
		return -1;
	return ts_run_migrate_set(run, &run->set);
}

/* The command of the phase being rehearsed, or the [migrate] one. */
static const struct ts_phase *current_phase(const struct ts_run *run)
{
	for (size_t i = 0; run->phase && i < run->cfg.n_phases; i++)
		if (!strcmp(run->cfg.phases[i].name, run->phase))
			return &run->cfg.phases[i];
	return NULL;
}

/* Appends "(stopped after [gate] migration_timeout = ...)" to a migration stopped by it. */
static void timeout_messages(struct ts_run *run, size_t first, int failed)
{
	for (size_t i = first; i < run->rep.n_migrations; i++) {
		struct ts_report_migration *m = &run->rep.migrations[i];

		if (run->phase && !m->phase)
			m->phase = xstrdup(run->phase);
		if (m->error && strstr(m->error, ": 57014: ") && strstr(m->error, "statement timeout")) {
			char b[32], *e = xstrfmt("%s (stopped after [gate] migration_timeout = %s)", m->error,
						 ts_human_ms(run->cfg.migration_timeout_ms, b, sizeof(b)));

			free(m->error);
			m->error = e;
			if (failed)
				ts_error_set(TS_EXIT_GATE, "%s", e);
		}
	}
}

/*
 * The stage's end, files or tool: the state production will be in once
 * these are promoted, and a migration that failed is a finding for the
 * report (0), not a crash.
 */
static int migrate_end(struct ts_run *run, struct ts_report_stage *st, double t0, int r)
{
	if (r >= 0 && ts_run_take_state(run, &run->env.dev, 1))
		r = -1;
	if (r < 0 && ts_error_class() == TS_EXIT_GATE) {
		ts_run_say(run, "migrate: %s", ts_error_message());
		ts_run_stage_end(run, st, t0, -1);
		return 0;
	}
	return ts_run_stage_end(run, st, t0, r < 0 ? -1 : 0);
}

/* The tool's migrations: its command on the dev side, watched (tool.h). */
static int migrate_tool(struct ts_run *run, struct ts_report_stage *st, double t0, size_t first)
{
	const struct ts_phase *ph = current_phase(run);
	const char *command = ph && ph->command ? ph->command : run->cfg.mig_command;
	double ran = 0;
	int r;

	if (ts_run_plan(run))
		return ts_run_stage_end(run, st, t0, -1);
	r = ts_tool_migrate(run, command, &ran);
	/* how long the tool ran, and the rest: its state read, what it sent read back */
	st->detail = xstrfmt("%s: %s (the command ran %.2f s, twinstage around it %.2f s)", ts_tool_name(run->cfg.tool),
			     command, ran / 1000, (now_ms() - t0 - ran) / 1000);
	if (ran > 0)
		ts_run_say(run, "migrate: the command ran %.3f s; reading back what it sent and the rest, %.3f s",
			   ran / 1000, (now_ms() - t0 - ran) / 1000);
	timeout_messages(run, first, r < 0);
	return migrate_end(run, st, t0, r);
}

int ts_run_migrate_set(struct ts_run *run, const struct ts_migrations *set)
{
	struct ts_report_stage *st;
	PGconn *conn;
	double t0 = now_ms();
	size_t first = run->rep.n_migrations;
	char *what = run->phase ? xstrfmt("phase %s: applying its migrations on the dev side", run->phase)
				: xstrdup("applying pending migrations on the dev side");
	int r;

	st = ts_run_stage(run, "migrate", what);
	free(what);
	if (run->cfg.tool)
		return migrate_tool(run, st, t0, first);
	if (ts_run_plan(run) || !(conn = ts_env_connect(&run->env, &run->env.dev, NULL)))
		return ts_run_stage_end(run, st, t0, -1);
	{
		/* a migration's own SET statement_timeout wins, as in production */
		char *set_timeout = xstrfmt("SET statement_timeout = %d", run->cfg.migration_timeout_ms);

		r = ts_pg_exec(conn, set_timeout);
		free(set_timeout);
		if (r) {
			PQfinish(conn);
			return ts_run_stage_end(run, st, t0, -1);
		}
	}
	st->detail = xstrfmt("%zu file%s, %s, %s table", set->n, set->n == 1 ? "" : "s",
			     ts_mig_format_name(set->format), ts_tracking_tool_name(run->tracker.tool));
	r = 0;
	if (!run->dev_before_read) {	/* a rollout's later phases start where the first did */
		free(run->rep.dev_before);
		r = ts_run_side_version(run, conn, &run->rep.dev_before);
		run->dev_before_read = 1;
	}
	if (!r) {
		struct ts_trace trace;
		/* sampling locks is a bonus: the trace goes on without its observer */
		PGconn *observer = ts_env_connect(&run->env, &run->env.dev, NULL);

		if (!observer)
			ts_error_clear();
		r = ts_trace_start(&trace, conn, observer, run->cfg.max_lock_ms, run->tracker.table);
		if (!r) {
			struct ts_load_ctx lctx = { &run->env, &run->rep, run->phase, run->quiet };
			struct ts_load *load = run->load ? ts_load_start(&lctx, run->live, PQbackendPID(conn)) : NULL;
			double m0 = now_ms();

			r = ts_migrations_apply(conn, set, &run->tracker,
						run->have_prod_state ? &run->prod_state : NULL, &run->rep,
						&trace, !run->quiet);
			if (load)	/* leaves the error slot (a failed migration's) as it is */
				ts_load_finish(load, first, m0, now_ms());
			/* what the load may or may not have hit: opposite lock orders, every time */
			if (run->live) {
				ts_lock_order_judge(&run->rep, run->phase, first, run->live);
			} else if (run->cfg.current) {
				struct strvec current = STRVEC_INIT;

				strvec_push(&current, run->cfg.current);
				ts_lock_order_judge(&run->rep, run->phase, first, &current);
				strvec_clear(&current);
			}
			ts_trace_end(&trace);
		}
	}
	timeout_messages(run, first, r < 0);
	if (r >= 0 || ts_error_class() == TS_EXIT_GATE) {
		char *saved = r < 0 ? xstrdup(ts_error_message()) : NULL;

		free(run->rep.dev_after);
		ts_run_side_version(run, conn, &run->rep.dev_after);
		if (saved) {
			ts_error_set(TS_EXIT_GATE, "%s", saved);
			free(saved);
		}
	}
	PQfinish(conn);
	return migrate_end(run, st, t0, r);
}
