/*
 * tool.c: running pg_dump, pg_restore and psql with their output in a log.
 */
#include "env/tool.h"
#include "core/strbuf.h"
#include "core/util.h"
#include "core/wrapper.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *ts_tool_log(const struct ts_env *env, const char *name)
{
	char *dir = path_join(env->cfg->workdir, "logs");
	char *p;

	mkdir_p(dir, 0755);
	p = path_join(dir, name);
	free(dir);
	unlink(p);
	return p;
}

char *ts_tool_log_error(const char *log)
{
	struct strbuf sb = STRBUF_INIT;
	char *r, *e;

	if (strbuf_read_file(&sb, log) || !sb.len) {
		strbuf_release(&sb);
		return xstrdup("(no output)");
	}
	e = strstr(sb.buf, "ERROR:");
	if (!e)
		e = strstr(sb.buf, "error:");
	if (e) {
		while (e > sb.buf && e[-1] != '\n')
			e--;
		r = xstrndup(e, strcspn(e, "\n"));
	} else {
		strbuf_rtrim(&sb);
		r = xstrdup(sb.buf + (sb.len > 300 ? sb.len - 300 : 0));
	}
	strbuf_release(&sb);
	return r;
}

int ts_tool_start(const struct ts_env *env, struct child_process *cp, const char *logname)
{
	/* out_path is the child's: it stays set until ts_tool_finish frees it */
	cp->out_path = ts_tool_log(env, logname);
	if (start_command(cp)) {
		free((char *)cp->out_path);
		cp->out_path = NULL;
		child_process_clear(cp);
		return -1;
	}
	return 0;
}

int ts_tool_finish(struct child_process *cp, enum ts_exit cls, const char *what)
{
	char *log = (char *)cp->out_path;
	int r = finish_command(cp);

	if (r > 0) {
		char *e = ts_tool_log_error(log);

		ts_error_set(cls, "%s: %s", what, e);
		ts_error_hint("the whole output is in %s", log);
		free(e);
		r = -1;
	}
	child_process_clear(cp);
	free(log);
	return r;
}

int ts_tool_run(const struct ts_env *env, struct child_process *cp, const char *logname,
		enum ts_exit cls, const char *what)
{
	if (ts_tool_start(env, cp, logname))
		return -1;
	return ts_tool_finish(cp, cls, what);
}

int ts_tool_copy_roles(const struct ts_env *env, struct child_process *from, const char *database,
		       struct ts_side *to, const char *name)
{
	struct child_process cp = CHILD_PROCESS_INIT;
	char *dir = path_join(env->cfg->workdir, "logs");
	char *file = xstrfmt("%s/%s-roles.sql", dir, name), *log = xstrfmt("%s-roles.log", name);
	char *applied = xstrfmt("%s-roles-apply.log", name), *what = xstrfmt("could not read the roles for %s", name);
	int r;

	ts_env_side_tool(env, to, from, "pg_dumpall");
	strvec_pushl(&from->args, "--roles-only", "--no-role-passwords", "-l", database, "-f", file, NULL);
	r = ts_tool_run(env, from, log, TS_EXIT_ENV, what);
	if (!r) {
		free(what);
		what = xstrfmt("could not make the roles on the %s side", to->name);
		ts_env_side_tool(env, to, &cp, "psql");
		/* the roles the side has already (its superuser) say so and stay */
		strvec_pushl(&cp.args, "-X", "-q", "-v", "ON_ERROR_STOP=0", "-d", "postgres", "-f", file, NULL);
		ts_env_child_env(env, to, &cp);
		r = ts_tool_run(env, &cp, applied, TS_EXIT_ENV, what);
	}
	unlink(file);
	free(file);
	free(dir);
	free(log);
	free(applied);
	free(what);
	return r;
}
