/*
 * clone.c: source → production clone, production clone → dev side.
 *
 * A seed script runs through psql (it may hold COPY ... FROM stdin and psql
 * meta-commands, as a pg_dump of production does). A real source is dumped
 * with pg_dump: its connection options travel as PG* environment variables
 * of the child, never on a command line where `ps` would show a password.
 */
#include "clone.h"
#include "error.h"
#include "pg.h"
#include "run_command.h"
#include "strbuf.h"
#include "tool.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int run_seed(struct ts_env *env)
{
	struct child_process cp = CHILD_PROCESS_INIT;

	ts_env_push_tool(env, &cp.args, "psql");
	strvec_pushl(&cp.args, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", env->cfg->seed, NULL);
	ts_env_child_env(env, &env->prod, &cp);
	cp.dir = env->cfg->dir;
	/* psql names the file and line: "psql:seed.sql:12: ERROR: ..." */
	return ts_tool_run(env, &cp, "seed.log", TS_EXIT_USAGE, "seed script failed");
}

/* Sets the child's PG* variables from a connection string (password included). */
static int source_env(const char *dsn, struct child_process *cp)
{
	char *err = NULL;
	PQconninfoOption *opts = PQconninfoParse(dsn, &err);

	if (!opts) {
		ts_error_set(TS_EXIT_USAGE, "invalid [source] dsn: %s", err ? err : "cannot parse");
		PQfreemem(err);
		return -1;
	}
	for (PQconninfoOption *o = opts; o->keyword; o++)
		if (o->val && *o->val && o->envvar)
			strvec_pushf(&cp->env, "%s=%s", o->envvar, o->val);
	PQconninfoFree(opts);
	return 0;
}

static int restore(struct ts_env *env, struct ts_side *side, const char *dump, const char *logname)
{
	struct child_process cp = CHILD_PROCESS_INIT;
	char *what = xstrfmt("could not restore into the %s side", side->name);
	int r;

	ts_env_push_tool(env, &cp.args, "pg_restore");
	strvec_pushl(&cp.args, "--no-owner", "--no-privileges", "--exit-on-error", "-j", "2",
		     "-d", env->cfg->dbname, dump, NULL);
	ts_env_child_env(env, side, &cp);
	r = ts_tool_run(env, &cp, logname, TS_EXIT_ENV, what);
	free(what);
	return r;
}

static int dump_source(struct ts_env *env, const char *dump)
{
	struct child_process cp = CHILD_PROCESS_INIT;
	char *shown = conninfo_redact(env->cfg->dsn);
	char *what = xstrfmt("the source database (%s)", shown);
	PGconn *probe;
	int r = -1;

	/* a clear message first, before pg_dump's own */
	probe = ts_pg_connect(env->cfg->dsn, what);
	if (probe) {
		PQfinish(probe);
		if (!source_env(env->cfg->dsn, &cp)) {
			strvec_push(&cp.env, "PGOPTIONS=-c default_transaction_read_only=on");
			ts_env_push_tool(env, &cp.args, "pg_dump");
			strvec_pushl(&cp.args, "-Fc", "-Z", "1", "-f", dump, NULL);
			free(what);
			what = xstrfmt("could not dump the source database (%s)", shown);
			r = ts_tool_run(env, &cp, "source-dump.log", TS_EXIT_ENV, what);
		}
	}
	child_process_clear(&cp);
	free(what);
	free(shown);
	return r;
}

int ts_clone_source(struct ts_env *env)
{
	char *dump;
	int r;

	if (ts_env_create_database(env, &env->prod, 0))
		return -1;
	if (env->cfg->seed)
		return run_seed(env);
	if (!env->cfg->dsn)
		return 0;	/* an empty production: a project's first migration */
	dump = path_join(env->cfg->workdir, "source.dump");
	r = dump_source(env, dump);
	if (!r)
		r = restore(env, &env->prod, dump, "source-restore.log");
	unlink(dump);
	free(dump);
	return r;
}

static int clone_logical(struct ts_env *env)
{
	struct child_process cp = CHILD_PROCESS_INIT;
	char *dump = path_join(env->cfg->workdir, "prod.dump");
	int r;

	r = env->ops->create(env, &env->dev) || env->ops->start(env, &env->dev) ||
	    ts_env_create_database(env, &env->dev, 0) ? -1 : 0;
	if (!r) {
		ts_env_push_tool(env, &cp.args, "pg_dump");
		strvec_pushl(&cp.args, "-Fc", "-Z", "0", "-f", dump, NULL);
		ts_env_child_env(env, &env->prod, &cp);
		r = ts_tool_run(env, &cp, "clone-dump.log", TS_EXIT_ENV,
			     "could not dump the production clone");
	}
	if (!r)
		r = restore(env, &env->dev, dump, "clone-restore.log");
	unlink(dump);
	child_process_clear(&cp);
	free(dump);
	return r;
}

int ts_clone_dev(struct ts_env *env, const char *method, const char **used)
{
	if (!strcmp(method, "logical")) {
		*used = "logical";
		return clone_logical(env);
	}
	/* auto and physical: a file copy of the cleanly stopped cluster */
	*used = "physical";
	if (env->ops->snapshot(env, &env->prod, &env->dev))
		return -1;
	return env->ops->start(env, &env->dev);
}
