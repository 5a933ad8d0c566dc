/*
 * upgrade.c: the dev side upgraded to the stack's major with pg_upgrade,
 * or prepared for clone.c's dump and restore into it; then the statistics
 * and the settings.
 */
#include "rehearse/upgrade.h"
#include "core/error.h"
#include "core/run_command.h"
#include "core/strbuf.h"
#include "core/util.h"
#include "core/wrapper.h"
#include "env/tool.h"
#include "pg/pg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* initdb's options for a cluster pg_upgrade accepts: template0's encoding and locale, the install user, checksums. */
static int initdb_like(PGconn *conn, struct strvec *args)
{
	PGresult *res = ts_pg_rows(conn,
				   "SELECT pg_encoding_to_char(d.encoding), d.datcollate, d.datctype, d.datlocprovider::text,"
				   " coalesce(d.daticulocale, ''), (SELECT rolname FROM pg_authid WHERE oid = 10),"
				   " current_setting('data_checksums')"
				   " FROM pg_database d WHERE d.datname = 'template0'",
				   "read how the production clone was made");

	if (!res)
		return -1;
	strvec_pushf(args, "--username=%s", PQgetvalue(res, 0, 5));
	strvec_pushf(args, "--encoding=%s", PQgetvalue(res, 0, 0));
	strvec_pushf(args, "--lc-collate=%s", PQgetvalue(res, 0, 1));
	strvec_pushf(args, "--lc-ctype=%s", PQgetvalue(res, 0, 2));
	if (!strcmp(PQgetvalue(res, 0, 3), "i")) {
		strvec_push(args, "--locale-provider=icu");
		strvec_pushf(args, "--icu-locale=%s", PQgetvalue(res, 0, 4));
	}
	if (!strcmp(PQgetvalue(res, 0, 6), "on"))
		strvec_push(args, "--data-checksums");
	PQclear(res);
	return 0;
}

int ts_upgrade_prepare(struct ts_env *env, json_t **info)
{
	struct ts_recipe r;
	PGconn *conn = ts_env_connect(env, &env->prod, NULL);
	int major, ret;

	*info = NULL;
	if (!conn)
		return -1;
	major = PQserverVersion(conn) / 10000;
	strvec_clear(&env->initdb_args);
	ret = initdb_like(conn, &env->initdb_args);
	PQfinish(conn);
	/* the new major's programs here: dev_stack's, or a stack of dev_image's suite and major */
	if (ret || ts_stack_recipe_load_next(&r, env->cfg->dev_stack ? env->cfg->dev_stack : env->cfg->dev_image,
					     !env->cfg->dev_stack))
		return -1;
	ts_stack_free(&env->stack);
	ret = ts_stack_ensure(&r, major, &env->stack, env->quiet);
	if (!ret && atoi(env->stack.version) < major) {
		ret = ts_error_set(TS_EXIT_USAGE, "%s: stack %s runs PostgreSQL %s, older than the production clone's %d",
				   r.path, r.name, env->stack.version, major);
		ts_error_hint("a dev_stack is the next major (as in version = 17); pg_upgrade goes only forward");
	}
	if (!ret && env->cfg->dev_image && env->cfg->dev_stack) {
		struct ts_recipe img;

		if (!(ret = ts_recipe_load(&img, env->cfg->dev_image))) {
			if (strcmp(img.pg_version, env->stack.version)) {
				ret = ts_error_set(TS_EXIT_USAGE, "dev_image %s runs PostgreSQL %s, dev_stack %s %s",
						   env->cfg->dev_image, img.pg_version, r.path, env->stack.version);
				ts_error_hint("the programs that fill the dev guest are its own major's: a dev_stack of version = %s, or none (one is built from the image's suite)",
					      img.pg_version);
			}
			ts_recipe_free(&img);
		}
	}
	if (!ret) {
		env->dev.on_stack = 1;
		ret = ts_env_save(env);
		*info = json_pack("{s:s, s:s, s:s, s:b, s:i, s:i, s:s, s:{}}", "stack", r.name, "recipe", r.path,
				  "suite", env->stack.suite, "stack_cached", env->stack.cached, "from", major,
				  "to", atoi(env->stack.version), "method", env->cfg->upgrade, "steps");
		if (!env->stack.cached)
			json_object_set_new(json_object_get(*info, "steps"), "stack_build_ms",
					    json_real(env->stack.build_ms));
		if (env->cfg->dev_image)	/* the dev guest's system; the stack holds the programs that filled it */
			json_object_set_new(*info, "image", json_string(env->cfg->dev_image));
	}
	ts_recipe_free(&r);
	return ret;
}

static void step_ms(json_t *info, const char *name, double t0)
{
	json_object_set_new(json_object_get(info, "steps"), name, json_real(now_ms() - t0));
}

/* The lines of pg_upgrade's output worth a user's eyes: its verdicts, its advice, not its progress. */
static json_t *output_lines(const char *log)
{
	struct strbuf sb = STRBUF_INIT;
	json_t *a = json_array();
	char *line, *save = NULL;

	if (!strbuf_read_file(&sb, log))
		for (line = strtok_r(sb.buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
			size_t n = strlen(line);

			while (n && (line[n - 1] == ' ' || line[n - 1] == '\r'))
				line[--n] = '\0';
			if (*line && strncmp(line, "Performing ", 11) && strspn(line, "-") != strlen(line))
				json_array_append_new(a, json_string(line));
		}
	strbuf_release(&sb);
	return a;
}

/*
 * Why pg_upgrade stopped: its last lines, with the report file it names
 * ("A list of ... is in the file:\n    /path/x.txt") read out.
 */
static void upgrade_failed(const char *what, const char *log)
{
	struct strbuf sb = STRBUF_INIT, hint = STRBUF_INIT, first = STRBUF_INIT;
	char *step = NULL;
	const char *p, *fatal;

	strbuf_read_file(&sb, log);
	strbuf_rtrim(&sb);
	/* "Checking for presence of required libraries                   fatal" */
	if ((fatal = strstr(sb.buf, " fatal\n")) || (fatal = strstr(sb.buf, " fatal"))) {
		const char *bol = fatal, *eol;

		while (bol > sb.buf && bol[-1] != '\n')
			bol--;
		for (eol = fatal; eol > bol && eol[-1] == ' '; eol--)
			;
		step = xstrndup(bol, (size_t)(eol - bol));
	}
	p = sb.buf + (sb.len > 900 ? sb.len - 900 : 0);
	strbuf_addf(&hint, "last lines of %s:\n%s", log, p);
	for (const char *f = strstr(sb.buf, "in the file:"); f; f = strstr(f + 1, "in the file:")) {
		const char *path = f + strlen("in the file:");
		char *file;
		struct strbuf list = STRBUF_INIT;

		path += strspn(path, " \n\t");
		file = xstrndup(path, strcspn(path, "\n"));
		if (!strbuf_read_file(&list, file) && list.len) {
			strbuf_rtrim(&list);
			strbuf_addf(&hint, "\n%s:\n%.*s", file, (int)(list.len > 1500 ? 1500 : list.len), list.buf);
			if (!first.len)
				strbuf_add(&first, list.buf, strcspn(list.buf, "\n"));
		}
		strbuf_release(&list);
		free(file);
	}
	if (strstr(sb.buf, "loadable libraries"))
		strbuf_addstr(&hint, "\nan extension production uses is not in the stack: add its package for the new major to the recipe's packages (as in postgresql-17-postgis-3), or drop the extension from production");
	ts_error_set(TS_EXIT_ENV, "%s%s%s%s%s%s", what, step ? " (" : "", step ? step : "", step ? ")" : "",
		     first.len ? ": " : "", first.buf);
	strbuf_release(&first);
	ts_error_hint("%s", hint.buf);
	strbuf_release(&hint);
	strbuf_release(&sb);
	free(step);
}

static int pg_upgrade(struct ts_env *env, const char *work, const char *old_data, const char *new_data,
		      int check, const char *log)
{
	struct child_process cp = CHILD_PROCESS_INIT;
	int r;

	ts_env_side_tool(env, &env->dev, &cp, "pg_upgrade");
	strvec_pushl(&cp.args, "-b", env->stack.old_bin, "-B", env->stack.bin, "-d", old_data, "-D", new_data,
		     "-s", work, NULL);
	strvec_pushf(&cp.args, "--old-port=%d", env->prod.port);
	strvec_pushf(&cp.args, "--new-port=%d", env->dev.port);
	for (size_t i = 0; i < env->initdb_args.nr; i++)
		if (!strncmp(env->initdb_args.v[i], "--username=", 11))
			strvec_pushf(&cp.args, "--username=%s", env->initdb_args.v[i] + 11);
	if (check)
		strvec_push(&cp.args, "--check");
	else
		strvec_pushl(&cp.args, env->pool.dir ? "--clone" : "--copy", "--no-sync", NULL);
	cp.dir = work;
	cp.out_path = log;
	ts_env_run_as_server(env, &cp);
	unlink(log);
	r = run_command(&cp);
	child_process_clear(&cp);
	return r;
}

int ts_upgrade_run(struct ts_env *env, json_t *info)
{
	/* the sockets pg_upgrade's servers listen on, and its scripts: a short path the server user owns, this workdir's */
	char *work = ts_home_outside(&env->home, "/tmp");
	char *old_data = ts_env_side_data(&env->prod), *new_data = NULL;
	char *check_log = ts_tool_log(env, "upgrade-check.log"), *log = ts_tool_log(env, "upgrade.log");
	double t;
	int r = -1, stopped = 0;

	rm_rf(work);	/* a killed run's */
	if (mkdir(work, 0700)) {
		ts_error_set(TS_EXIT_ENV, "could not make a folder for pg_upgrade: %s", strerror(errno));
		goto out;
	}
	if (env->home.as_user && chown(work, env->home.uid, env->home.gid)) {
		ts_error_set(TS_EXIT_ENV, "could not change owner of \"%s\": %s", work, strerror(errno));
		goto out;
	}
	if (!env->quiet)
		fprintf(stderr, "twinstage: upgrade: a new PostgreSQL %s cluster for the dev side (%s)\n",
			env->stack.version, env->stack.suite);
	t = now_ms();
	if (env->ops->create(env, &env->dev))
		goto out;
	step_ms(info, "initdb_ms", t);
	new_data = ts_env_side_data(&env->dev);
	/* pg_upgrade reads a cleanly stopped cluster; the production clone is started again after */
	if (env->ops->stop(env, &env->prod))
		goto out;
	stopped = 1;
	if (!env->quiet)
		fprintf(stderr, "twinstage: upgrade: pg_upgrade --check (%d to %s)\n",
			(int)json_integer_value(json_object_get(info, "from")), env->stack.version);
	t = now_ms();
	r = pg_upgrade(env, work, old_data, new_data, 1, check_log);
	step_ms(info, "check_ms", t);
	json_object_set_new(info, "check", output_lines(check_log));
	if (r) {
		upgrade_failed("pg_upgrade --check refused the production clone", check_log);
		r = -1;
		goto out;
	}
	if (!env->quiet)
		fprintf(stderr, "twinstage: upgrade: pg_upgrade %s\n", env->pool.dir ? "--clone" : "--copy");
	t = now_ms();
	r = pg_upgrade(env, work, old_data, new_data, 0, log);
	step_ms(info, "upgrade_ms", t);
	json_object_set_new(info, "mode", json_string(env->pool.dir ? "clone" : "copy"));
	json_object_set_new(info, "output", output_lines(log));
	if (r) {
		upgrade_failed("pg_upgrade of the production clone failed", log);
		r = -1;
		goto out;
	}
	{
		/* what it leaves for the user: kept beside the logs; its script that deletes the old cluster, not */
		char *ext = path_join(work, "update_extensions.sql"), *del = path_join(work, "delete_old_cluster.sh");
		json_t *left = json_array();

		if (is_file(ext)) {
			char *kept = ts_tool_log(env, "upgrade-update_extensions.sql");
			struct strbuf sb = STRBUF_INIT;

			if (!strbuf_read_file(&sb, ext) && !write_file(kept, sb.buf, sb.len))
				json_array_append_new(left, json_string(kept));
			strbuf_release(&sb);
			free(kept);
		}
		unlink(del);
		json_object_set_new(info, "left", left);
		free(ext);
		free(del);
	}
	t = now_ms();
	r = env->ops->start(env, &env->dev);
	step_ms(info, "start_ms", t);
out:
	if (stopped && env->ops->start(env, &env->prod) && !r)
		r = -1;
	rm_rf(work);
	free(work);
	free(old_data);
	free(new_data);
	free(check_log);
	free(log);
	return r;
}

static int analyze(const struct ts_env *env, const struct ts_side *side)
{
	PGconn *conn = ts_env_connect(env, side, NULL);
	int r = !conn || ts_pg_exec(conn, "ANALYZE") ? -1 : 0;

	if (r)
		ts_error_prefix("could not ANALYZE the %s side", side->name);
	if (conn)
		PQfinish(conn);
	return r;
}

/*
 * The settings the production clone sets (not at their default) that the
 * new major does not know, or whose default it changed.
 */
static int compare_settings(const struct ts_env *env, json_t *info)
{
	PGconn *a = ts_env_connect(env, &env->prod, NULL), *b = a ? ts_env_connect(env, &env->dev, NULL) : NULL;
	static const char q[] = "SELECT name, setting, coalesce(boot_val, ''), source FROM pg_settings"
				" ORDER BY name";
	PGresult *ra = NULL, *rb = NULL;
	json_t *out = json_array();
	int r = -1;

	if (!a || !b || !(ra = ts_pg_rows(a, q, "read the production clone's settings")) ||
	    !(rb = ts_pg_rows(b, q, "read the dev side's settings")))
		goto out;
	for (int i = 0, j = 0; i < PQntuples(ra); i++) {
		const char *name = PQgetvalue(ra, i, 0), *source = PQgetvalue(ra, i, 3);
		int c = 1;

		/* what twinstage sets itself, and what every server has set for it */
		if (!strcmp(source, "default") || !strcmp(source, "override") || !strcmp(source, "client") ||
		    !strcmp(source, "session") || !strcmp(source, "environment variable"))
			continue;
		while (j < PQntuples(rb) && (c = strcmp(PQgetvalue(rb, j, 0), name)) < 0)
			j++;
		if (c)
			json_array_append_new(out, json_pack("{s:s, s:s, s:s, s:s}", "name", name, "set",
							     PQgetvalue(ra, i, 1), "source", source, "change",
							     "removed"));
		else if (strcmp(PQgetvalue(ra, i, 2), PQgetvalue(rb, j, 2)))
			json_array_append_new(out, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "name", name, "set",
							     PQgetvalue(ra, i, 1), "source", source, "change",
							     "default changed", "old_default", PQgetvalue(ra, i, 2),
							     "new_default", PQgetvalue(rb, j, 2)));
	}
	json_object_set(info, "settings", out);
	r = 0;
out:
	json_decref(out);
	PQclear(ra);
	PQclear(rb);
	if (a)
		PQfinish(a);
	if (b)
		PQfinish(b);
	return r;
}

int ts_upgrade_finish(struct ts_env *env, json_t *info)
{
	double t = now_ms();

	/* pg_upgrade carries no statistics: the planner's, as production would have them after its ANALYZE */
	if (!env->quiet)
		fprintf(stderr, "twinstage: upgrade: ANALYZE on both sides\n");
	if (analyze(env, &env->dev) || analyze(env, &env->prod))
		return -1;
	step_ms(info, "analyze_ms", t);
	return compare_settings(env, info);
}
