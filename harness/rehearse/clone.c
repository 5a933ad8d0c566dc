/*
 * clone.c: source → production clone, production clone → dev side.
 *
 * A seed script runs through psql (it may hold COPY ... FROM stdin and psql
 * meta-commands, as a pg_dump of production does). A real source is copied
 * with pg_basebackup where it allows it and the method is not logical (the
 * whole server, files as they are: no index to rebuild), else with
 * pg_dump -Fd -j | pg_restore -j. Its connection options travel as PG*
 * environment variables of the child, never on a command line where `ps`
 * would show a password.
 */
#include "rehearse/clone.h"
#include "rehearse/upgrade.h"
#include "core/error.h"
#include "core/progress.h"
#include "core/run_command.h"
#include "core/strbuf.h"
#include "core/util.h"
#include "core/wrapper.h"
#include "env/pool.h"
#include "env/tool.h"
#include "pg/fingerprint.h"
#include "pg/pg.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define MIB (1024ull * 1024)
#define GIB (1024 * MIB)

void ts_clone_info_free(struct ts_clone_info *info)
{
	json_decref(info->upgrade);
	free(info->source);
	free(info->note);
	free(info->source_version);
	free(info->source_sysid);
	memset(info, 0, sizeof(*info));
}

static void add_note(struct ts_clone_info *info, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void add_note(struct ts_clone_info *info, const char *fmt, ...)
{
	struct strbuf sb = STRBUF_INIT;
	va_list ap;

	if (info->note) {
		strbuf_addstr(&sb, info->note);
		strbuf_addstr(&sb, "; ");
	}
	va_start(ap, fmt);
	strbuf_vaddf(&sb, fmt, ap);
	va_end(ap);
	free(info->note);
	info->note = strbuf_detach(&sb);
}

static int is_cow(const struct ts_env *env)
{
	return env->clone && !strcmp(env->clone, "cow");
}

/* Parallel jobs of pg_dump and pg_restore: the cores, 2 to 4. */
static int jobs(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 2 ? 2 : n > 4 ? 4 : (int)n;
}

/* Room a cluster holding `data` bytes needs: the data, its WAL, the cluster's own files. */
static uint64_t room_for(uint64_t data)
{
	return data + (data < GIB ? data : GIB) + 64 * MIB;
}

int ts_clone_plan(struct ts_env *env, struct ts_clone_info *info)
{
	const char *method = env->cfg->clone;
	int want_cow = !strcmp(method, "cow"), is_auto = !strcmp(method, "auto");
	char *home;

	free(env->clone);
	env->clone = NULL;
	if (env->ops->overlays) {
		/* a qcow2 overlay costs nothing whatever the size: no pool to find */
		env->clone = xstrdup(is_auto ? "cow" : method);
		return 0;
	}
	if (env->cfg->pool && ts_pool_open_named(&env->pool, want_cow || is_auto))
		return -1;
	if (!want_cow && !is_auto) {
		env->clone = xstrdup(method);
		return 0;
	}
	if (env->pool.dir) {
		env->clone = xstrdup("cow");
		return 0;
	}
	/* where the data would live anyway may give reflinks already (XFS, btrfs) */
	home = ts_env_data_home(env, &env->prod);
	if (!home)
		home = xstrdup(env->cfg->workdir);
	if (!mkdir_p(home, 0755) && ts_reflink_works(home)) {
		free(home);
		env->clone = xstrdup("cow");
		return 0;
	}
	free(home);
	ts_error_clear();
	if (!ts_pool_make(&env->pool, GIB)) {
		env->clone = xstrdup("cow");
		return 0;
	}
	if (want_cow)
		return -1;
	add_note(info, "no copy-on-write pool (%s): the dev side is a full file copy", ts_error_message());
	ts_error_clear();
	env->clone = xstrdup("physical");
	return 0;
}

static int make_side(struct ts_env *env, struct ts_side *side)
{
	return env->ops->create(env, side) || env->ops->start(env, side) ||
	       ts_env_create_database(env, side, 0) ? -1 : 0;
}

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

/*
 * Sets the child's PG* variables from a connection string (password
 * included: never on a command line), with a read-only session when asked.
 */
static int source_env(const char *dsn, int read_only, struct child_process *cp)
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
	if (read_only)
		strvec_push(&cp->env, "PGOPTIONS=-c default_transaction_read_only=on");
	return 0;
}

/* What the source is, read in one read-only session. */
struct source_facts {
	uint64_t db_bytes, cluster_bytes, table_bytes;
	int version, in_recovery, can_replicate, tablespaces, name_taken;
	char *superuser, *dbname;
	struct ts_fingerprint server;	/* its version and system identifier only */
	struct strvec settings;	/* ALTER DATABASE ... SET of the source's database */
};

static const char facts_sql[] =
	"SELECT pg_database_size(current_database()),"
	" (SELECT sum(pg_database_size(oid)) FROM pg_database"
	"   WHERE datallowconn AND has_database_privilege(oid, 'CONNECT')),"
	" (SELECT coalesce(sum(pg_table_size(oid)), 0) FROM pg_class"
	"   WHERE relkind IN ('r', 'm') AND relpersistence = 'p'),"
	" current_setting('server_version_num')::int, pg_is_in_recovery()::int,"
	" (SELECT (rolsuper OR rolreplication)::int FROM pg_roles WHERE rolname = current_user),"
	" (SELECT count(*) FROM pg_tablespace WHERE spcname NOT IN ('pg_default', 'pg_global')),"
	" (SELECT count(*) FROM pg_database WHERE datname = $1 AND datname <> current_database()),"
	" (SELECT rolname FROM pg_roles WHERE oid = 10), current_database()";

/*
 * The database's own settings (ALTER DATABASE ... SET, as "name=value"):
 * a dump leaves them out (they belong to the database, not its contents),
 * and a search_path set there decides which tables the application and the
 * migration tool see.
 */
static int read_settings(PGconn *conn, struct strvec *out)
{
	PGresult *res = ts_pg_rows(conn, "SELECT unnest(setconfig) FROM pg_db_role_setting"
					 " WHERE setrole = 0 AND setdatabase ="
					 " (SELECT oid FROM pg_database WHERE datname = current_database())",
				   "read the database's settings");

	if (!res)
		return -1;
	for (int i = 0; i < PQntuples(res); i++)
		strvec_push(out, PQgetvalue(res, i, 0));
	PQclear(res);
	return 0;
}

/*
 * The settings again on `to`'s database. A list (search_path, DateStyle,
 * the *_libraries, temp_tablespaces) is given as PostgreSQL stored it, its
 * elements already quoted where they need it; any other value as a string.
 */
static int apply_settings(struct ts_env *env, struct ts_side *to, const struct strvec *settings)
{
	static const char *const lists[] = { "search_path", "datestyle", "temp_tablespaces",
					     "session_preload_libraries", "local_preload_libraries", NULL };
	PGconn *conn;
	int r = 0;

	if (!settings->nr)
		return 0;
	if (!(conn = ts_env_connect(env, to, NULL)))
		return -1;
	for (size_t i = 0; i < settings->nr && !r; i++) {
		const char *eq = strchr(settings->v[i], '=');
		char *name, *db, *sql, *val;
		int list = 0;

		if (!eq)
			continue;
		name = xstrndup(settings->v[i], (size_t)(eq - settings->v[i]));
		for (size_t k = 0; lists[k]; k++)
			list |= !strcasecmp(name, lists[k]);
		db = ts_pg_ident(conn, env->cfg->dbname);
		val = list ? xstrdup(eq + 1) : PQescapeLiteral(conn, eq + 1, strlen(eq + 1));
		sql = xstrfmt("ALTER DATABASE %s SET %s TO %s", db, name, val);
		if ((r = ts_pg_exec(conn, sql)))
			ts_error_prefix("could not set %s of the %s side's database as production has it", name,
					to->name);
		if (list)
			free(val);
		else
			PQfreemem(val);
		free(sql);
		free(db);
		free(name);
	}
	PQfinish(conn);
	return r;
}

static int read_source(struct ts_env *env, struct source_facts *f)
{
	const char *params[] = { env->cfg->dbname };
	char *shown = conninfo_redact(env->cfg->dsn);
	char *what = xstrfmt("the source database (%s)", shown);
	PGconn *conn = ts_pg_connect_readonly(env->cfg->dsn, what);
	PGresult *res = NULL;
	int r = -1;

	memset(f, 0, sizeof(*f));
	free(what);
	if (!conn)
		goto out;
	res = PQexecParams(conn, facts_sql, 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		char *e = ts_pg_result_error(res);

		ts_error_set(TS_EXIT_ENV, "could not read the size of the source database (%s): %s", shown, e);
		free(e);
		goto out;
	}
	f->db_bytes = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
	f->cluster_bytes = strtoull(PQgetvalue(res, 0, 1), NULL, 10);
	f->table_bytes = strtoull(PQgetvalue(res, 0, 2), NULL, 10);
	f->version = atoi(PQgetvalue(res, 0, 3));
	f->in_recovery = atoi(PQgetvalue(res, 0, 4));
	f->can_replicate = atoi(PQgetvalue(res, 0, 5));
	f->tablespaces = atoi(PQgetvalue(res, 0, 6));
	f->name_taken = atoi(PQgetvalue(res, 0, 7));
	f->superuser = xstrdup(PQgetvalue(res, 0, 8));
	f->dbname = xstrdup(PQgetvalue(res, 0, 9));
	if (read_settings(conn, &f->settings) || ts_fingerprint_read_server(conn, &f->server))
		goto out;
	if (f->cluster_bytes < f->db_bytes)
		f->cluster_bytes = f->db_bytes;
	r = 0;
out:
	PQclear(res);
	PQfinish(conn);
	free(shown);
	return r;
}

/* The major version of the server programs here (15), or 0. */
static int local_major(struct ts_env *env)
{
	if (ts_env_find_pg_bin(env)) {
		ts_error_clear();
		return 0;
	}
	return ts_pg_bin_major(NULL, env->pg_bin);
}

/* Why pg_basebackup cannot copy this source here (new string), or NULL when it can. */
static char *basebackup_refusal(struct ts_env *env, const struct source_facts *f)
{
	int here;
	char b1[32], b2[32];

	if (!env->ops->receive)
		return xstrfmt("the %s backend fills its production clone over the forwarded port", env->ops->name);
	here = local_major(env);
	if (f->version / 10000 != here)
		return xstrfmt("the source runs PostgreSQL %d and the servers here are %d",
			       f->version / 10000, here);
	if (!f->can_replicate)
		return xstrdup("the source's user may not open a replication connection (it needs SUPERUSER or REPLICATION)");
	if (f->tablespaces)
		return xstrdup("the source has tablespaces of its own");
	if (strcmp(f->superuser, TS_DB_USER))
		return xstrfmt("the source's bootstrap superuser is \"%s\", not \"%s\"", f->superuser, TS_DB_USER);
	if (f->name_taken)
		return xstrfmt("the source's server has a database \"%s\" besides \"%s\"", env->cfg->dbname,
			       f->dbname);
	if (f->cluster_bytes > 2 * f->db_bytes + 64 * MIB)
		return xstrfmt("the source's server holds %s, the database only %s",
			       ts_human_bytes(f->cluster_bytes, b1, sizeof(b1)),
			       ts_human_bytes(f->db_bytes, b2, sizeof(b2)));
	return NULL;
}

static int rename_database(struct ts_env *env, const char *from)
{
	PGconn *conn = ts_env_connect(env, &env->prod, "template1");
	char *a, *b, *sql;
	int r;

	if (!conn)
		return -1;
	a = ts_pg_ident(conn, from);
	b = ts_pg_ident(conn, env->cfg->dbname);
	sql = xstrfmt("ALTER DATABASE %s RENAME TO %s", a, b);
	r = ts_pg_exec(conn, sql);
	free(sql);
	free(a);
	free(b);
	PQfinish(conn);
	return r;
}

static int fill_by_basebackup(struct ts_env *env, const struct source_facts *f)
{
	struct child_process cp = CHILD_PROCESS_INIT;

	if (source_env(env->cfg->dsn, 0, &cp))
		return -1;
	if (env->ops->receive(env, &env->prod, &cp, f->cluster_bytes) ||
	    env->ops->start(env, &env->prod))
		return -1;
	if (strcmp(f->dbname, env->cfg->dbname))
		return rename_database(env, f->dbname);
	return 0;
}

/* Bytes of the database a connection is in: what a restore has written so far. */
static uint64_t database_bytes(void *arg)
{
	PGresult *res = PQexec(arg, "SELECT pg_database_size(current_database())");
	uint64_t n = PQresultStatus(res) == PGRES_TUPLES_OK ? strtoull(PQgetvalue(res, 0, 0), NULL, 10) : 0;

	PQclear(res);
	return n;
}

static uint64_t side_bytes(struct ts_env *env, struct ts_side *side)
{
	PGconn *conn = ts_env_connect(env, side, NULL);
	uint64_t n = conn ? database_bytes(conn) : 0;

	ts_error_clear();
	PQfinish(conn);
	return n;
}

/* A table at least this big is piped on its own (pg_dump -t | pg_restore) while pg_dump -j does the rest. */
#define PIPED_MIN_BYTES (8 * MIB)

/*
 * For a copy that streams: the snapshot every dump of the source reads
 * (pg_export_snapshot in a read-only repeatable-read transaction that *src
 * holds open until the copy ends), and in big the patterns (pg_dump's, of
 * one table each) of the biggest tables of at least PIPED_MIN_BYTES, one
 * per job at most. NULL (no error set) when the source cannot export a
 * snapshot or has no such table: the copy goes through a dump folder.
 */
static char *stream_plan(struct ts_env *env, const char *dsn, int max, PGconn **src, struct strvec *big)
{
	PGconn *c = dsn ? ts_pg_connect_readonly(dsn, "the source database") : ts_env_connect(env, &env->prod, NULL);
	PGresult *res;
	char *snap = NULL, *sql;

	*src = NULL;
	if (!c || ts_pg_exec(c, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")) {
		PQfinish(c);
		ts_error_clear();
		return NULL;
	}
	sql = xstrfmt("SELECT format('%%I.%%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON"
		      " n.oid = c.relnamespace WHERE c.relkind = 'r' AND c.relpersistence = 'p'"
		      " AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND NOT EXISTS (SELECT FROM"
		      " pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')"
		      " AND pg_total_relation_size(c.oid) >= %llu ORDER BY pg_total_relation_size(c.oid) DESC LIMIT %d",
		      (unsigned long long)PIPED_MIN_BYTES, max);
	res = PQexec(c, sql);
	free(sql);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0) {
		for (int i = 0; i < PQntuples(res); i++)
			strvec_push(big, PQgetvalue(res, i, 0));
		PQclear(res);
		res = PQexec(c, "SELECT pg_export_snapshot()");
		if (PQresultStatus(res) == PGRES_TUPLES_OK)
			snap = xstrdup(PQgetvalue(res, 0, 0));
	}
	PQclear(res);
	if (!snap) {	/* a standby before 10, say: no snapshot to share */
		strvec_clear(big);
		PQfinish(c);
		return NULL;
	}
	*src = c;
	return snap;
}

/* pg_dump of the source (dump's environment) reading snapshot `snap`, its arguments to come. */
static void dump_at(struct ts_env *env, const struct child_process *dump, struct ts_side *to, const char *snap,
		    struct child_process *cp)
{
	for (size_t i = 0; i < dump->env.nr; i++)
		strvec_push(&cp->env, dump->env.v[i]);
	ts_env_side_tool(env, to, cp, "pg_dump");
	strvec_pushf(&cp->args, "--snapshot=%s", snap);
}

/* pg_restore into `to`'s database, its arguments to come. */
static void restore_into(struct ts_env *env, struct ts_side *to, struct child_process *cp)
{
	char *db = ts_pg_dbname_arg(env->cfg->dbname);

	ts_env_side_tool(env, to, cp, "pg_restore");
	strvec_pushl(&cp->args, "--exit-on-error", "-d", db, NULL);
	ts_env_child_env(env, to, cp);
	free(db);
}

/* pg_restore -j N of one section of the archive at path into `to`, its output in clone-<to>-restore<log>.log. */
static int restore_section(struct ts_env *env, struct ts_side *to, const char *path, const char *section,
			   const char *log, const char *into)
{
	struct child_process cp = CHILD_PROCESS_INIT;
	char *name = xstrfmt("clone-%s-restore%s.log", to->name, log);
	int r;

	restore_into(env, to, &cp);
	strvec_pushf(&cp.args, "--jobs=%d", jobs());
	strvec_pushf(&cp.args, "--section=%s", section);
	strvec_push(&cp.args, path);
	r = ts_tool_run(env, &cp, name, TS_EXIT_ENV, into);
	free(name);
	return r;
}

/*
 * The copy that streams, from one snapshot of the source: the schema
 * without its indexes and constraints first (pre-data); then at once each
 * big table piped straight from pg_dump into pg_restore, and pg_dump -Fd -j
 * of the rest of the data and of the post-data into a folder, restored
 * with -j once it is whole; then the indexes, constraints and triggers
 * (post-data, pg_restore -j) when every table is loaded.
 */
static int stream_restore(struct ts_env *env, struct child_process *dump, const char *from, const char *snap,
			  const struct strvec *big, struct ts_side *to)
{
	size_t n = big->nr;
	struct child_process pre = CHILD_PROCESS_INIT, rest = CHILD_PROCESS_INIT;
	struct child_process *pd = xcalloc(n, sizeof(*pd)), *pr = xcalloc(n, sizeof(*pr));
	char *dir = xstrfmt("%s/%s.dump", env->cfg->workdir, to->name), *pre_file = xstrfmt("%s.pre", dir);
	char *fail = xstrfmt("could not dump %s", from), *into = xstrfmt("could not restore into the %s side", to->name);
	char *log;
	int r, started = 0, rest_started = 0;

	rm_rf(dir);
	unlink(pre_file);
	/* 1. the tables, types, functions: what the data goes into */
	dump_at(env, dump, to, snap, &pre);
	strvec_pushl(&pre.args, "--section=pre-data", "-Fc", "-f", pre_file, NULL);
	log = xstrfmt("clone-%s-dump-pre.log", to->name);
	r = ts_tool_run(env, &pre, log, TS_EXIT_ENV, fail);
	free(log);
	if (!r)
		r = restore_section(env, to, pre_file, "pre-data", "-pre", into);
	/* 2. each big table through a pipe, the rest dumped to a folder meanwhile */
	for (size_t i = 0; i < n && !r; i++) {
		int fds[2];

		if (pipe2(fds, O_CLOEXEC)) {
			r = ts_error_set(TS_EXIT_ENV, "could not create a pipe: %s", strerror(errno));
			break;
		}
		pd[i] = (struct child_process)CHILD_PROCESS_INIT;
		pr[i] = (struct child_process)CHILD_PROCESS_INIT;
		dump_at(env, dump, to, snap, &pd[i]);
		strvec_pushl(&pd[i].args, "--section=data", "-Fc", "-Z", "0", "-t", big->v[i], NULL);
		pd[i].pipe_out = fds[1];
		restore_into(env, to, &pr[i]);
		strvec_push(&pr[i].args, "--section=data");
		pr[i].pipe_in = fds[0];
		log = xstrfmt("clone-%s-dump-%zu.log", to->name, i + 1);
		r = ts_tool_start(env, &pd[i], log);
		free(log);
		if (!r) {
			log = xstrfmt("clone-%s-restore-%zu.log", to->name, i + 1);
			if (ts_tool_start(env, &pr[i], log)) {
				/* its dump stops on a closed pipe */
				close(fds[0]);
				close(fds[1]);
				ts_tool_finish(&pd[i], TS_EXIT_ENV, fail);
				free(log);
				r = -1;
				break;
			}
			free(log);
			started++;
		}
		close(fds[0]);
		close(fds[1]);
	}
	if (!r) {
		dump_at(env, dump, to, snap, &rest);
		strvec_pushl(&rest.args, "--section=data", "--section=post-data", "-Fd", "-Z", "0", "-f", dir, NULL);
		strvec_pushf(&rest.args, "--jobs=%d", jobs());
		for (size_t i = 0; i < n; i++)
			strvec_pushf(&rest.args, "--exclude-table-data=%s", big->v[i]);
		log = xstrfmt("clone-%s-dump.log", to->name);
		r = ts_tool_start(env, &rest, log);
		free(log);
		rest_started = !r;
	}
	if (rest_started && !(r = ts_tool_finish(&rest, TS_EXIT_ENV, fail)))
		r = restore_section(env, to, dir, "data", "", into);
	/* every pipe to its end, whatever failed: nothing may go on writing */
	for (int i = 0; i < started; i++) {
		int a = ts_tool_finish(&pd[i], TS_EXIT_ENV, fail), b = ts_tool_finish(&pr[i], TS_EXIT_ENV, into);

		r = r || a || b ? -1 : 0;
	}
	/* 3. the indexes, constraints, triggers, on the whole data */
	if (!r) {
		if (!env->quiet)
			fprintf(stderr, "twinstage: indexes and constraints of the %s side (pg_restore -j %d)\n", to->name,
				jobs());
		r = restore_section(env, to, dir, "post-data", "-post", into);
	}
	rm_rf(dir);
	unlink(pre_file);
	free(pd);
	free(pr);
	free(dir);
	free(pre_file);
	free(fail);
	free(into);
	return r;
}

/*
 * pg_dump -Fd -j of the database `dump`'s environment points at (`from`
 * names it in messages), and pg_restore -j of it into `to`, which is made
 * and started while the dump runs. The roles of the cluster `roles`
 * reaches (its database roles_db) are made on `to` first, so that owners
 * and grants restore as they are: the application's role then has on
 * each side the privileges it has in production.
 */
static int folder_restore(struct ts_env *env, struct child_process *dump, const char *from, const char *compress,
			  int dump_jobs, uint64_t table_bytes, uint64_t db_bytes, struct ts_side *to,
			  struct child_process *roles, const char *roles_db)
{
	struct child_process restore = CHILD_PROCESS_INIT;
	char *dir = xstrfmt("%s/%s.dump", env->cfg->workdir, to->name);
	char *what = xstrfmt("dumping %s", from);
	char *fail = xstrfmt("could not dump %s", from);
	struct ts_progress p = { .what = what, .total = table_bytes, .probe = ts_progress_dir_probe,
				 .arg = dir, .quiet = env->quiet };
	char *log = xstrfmt("clone-%s-dump.log", to->name);
	PGconn *watch = NULL;
	int r;

	rm_rf(dir);
	ts_env_side_tool(env, to, dump, "pg_dump");
	strvec_pushl(&dump->args, "-Fd", "-Z", compress, "-f", dir, NULL);
	strvec_pushf(&dump->args, "--jobs=%d", dump_jobs);
	r = ts_tool_start(env, dump, log);
	if (!r) {
		int made = make_side(env, to);

		ts_progress_watch(&p, dump);
		r = ts_tool_finish(dump, TS_EXIT_ENV, fail);
		if (!r)
			r = made;
	}
	if (!r) {
		char *name = xstrfmt("clone-%s", to->name);

		r = ts_tool_copy_roles(env, roles, roles_db, to, name);
		free(name);
	}
	free(log);
	free(what);
	free(fail);
	if (!r) {
		char *db = ts_pg_dbname_arg(env->cfg->dbname);

		what = xstrfmt("restoring into the %s side", to->name);
		fail = xstrfmt("could not restore into the %s side", to->name);
		log = xstrfmt("clone-%s-restore.log", to->name);
		ts_env_side_tool(env, to, &restore, "pg_restore");
		strvec_pushl(&restore.args, "--exit-on-error", "-d", db, NULL);
		free(db);
		strvec_pushf(&restore.args, "--jobs=%d", jobs());
		strvec_push(&restore.args, dir);
		ts_env_child_env(env, to, &restore);
		watch = ts_env_connect(env, to, NULL);
		p = (struct ts_progress){ .what = what, .total = db_bytes, .probe = database_bytes,
					  .arg = watch, .quiet = env->quiet || !watch };
		ts_error_clear();
		r = ts_tool_start(env, &restore, log);
		if (!r) {
			ts_progress_watch(&p, &restore);
			r = ts_tool_finish(&restore, TS_EXIT_ENV, fail);
		}
		PQfinish(watch);
		free(log);
		free(what);
		free(fail);
	}
	rm_rf(dir);
	free(dir);
	return r;
}

/*
 * The copy of the database `dump`'s environment points at (the source's
 * dsn, or the production clone when dsn is NULL) into `to`: streamed
 * (stream_restore) when it has a big table and can share a snapshot, else
 * through a dump folder (folder_restore). *piped: the tables piped.
 */
static int dump_restore(struct ts_env *env, struct child_process *dump, const char *from, const char *dsn,
			const char *compress, int dump_jobs, uint64_t table_bytes, uint64_t db_bytes,
			struct ts_side *to, struct child_process *roles, const char *roles_db, size_t *piped)
{
	PGconn *src = NULL;
	struct strvec big = STRVEC_INIT;
	char *snap = dump_jobs > 1 ? stream_plan(env, dsn, jobs(), &src, &big) : NULL, *name;
	int r;

	*piped = big.nr;
	if (!snap)
		return folder_restore(env, dump, from, compress, dump_jobs, table_bytes, db_bytes, to, roles, roles_db);
	if (!env->quiet)
		fprintf(stderr, "twinstage: copying %s: its %zu biggest table%s piped straight into the %s side, "
			"the rest with pg_dump -j %d\n", from, big.nr, big.nr > 1 ? "s" : "", to->name, jobs());
	name = xstrfmt("clone-%s", to->name);
	r = make_side(env, to) || ts_tool_copy_roles(env, roles, roles_db, to, name) ||
	    stream_restore(env, dump, from, snap, &big, to) ? -1 : 0;
	PQfinish(src);	/* the snapshot's transaction: held until every dump has read it */
	strvec_clear(&big);
	child_process_clear(dump);
	free(name);
	free(snap);
	return r;
}

static int fill_from_source(struct ts_env *env, struct ts_clone_info *info)
{
	struct child_process cp = CHILD_PROCESS_INIT;
	struct source_facts f;
	char *shown, *from, *why = NULL;
	int r, dump_jobs;
	size_t piped = 0;

	if (read_source(env, &f))
		return -1;
	info->source_version_num = f.server.server_version_num;
	info->source_version = xstrdup(f.server.server_version);
	info->source_sysid = f.server.system_identifier ? xstrdup(f.server.system_identifier) : NULL;
	if (strcmp(env->clone, "logical") && !(why = basebackup_refusal(env, &f))) {
		if ((r = ts_pool_ensure(&env->pool, room_for(f.cluster_bytes), "the production clone", env->quiet)))
			goto out;
		if (!(r = fill_by_basebackup(env, &f))) {
			info->source = xstrdup("pg_basebackup");
			goto out;
		}
		add_note(info, "pg_basebackup of the source failed (%s); it was dumped instead",
			 ts_error_message());
		ts_error_clear();
		if (env->ops->destroy(env, &env->prod)) {
			r = -1;
			goto out;
		}
	} else if (why) {
		add_note(info, "the source was dumped, not copied with pg_basebackup: %s", why);
	}
	r = ts_pool_ensure(&env->pool, room_for(f.db_bytes), "the production clone", env->quiet);
	if (r || source_env(env->cfg->dsn, 1, &cp)) {
		r = -1;
		goto out;
	}
	/* parallel dump needs synchronized snapshots: 9.2, and 10 on a standby */
	dump_jobs = f.version >= (f.in_recovery ? 100000 : 90200) ? jobs() : 1;
	shown = conninfo_redact(env->cfg->dsn);
	from = xstrfmt("the source database (%s)", shown);
	{
		struct child_process roles = CHILD_PROCESS_INIT;

		/* its roles, read-only too (the dsn was read above) */
		source_env(env->cfg->dsn, 1, &roles);
		r = dump_restore(env, &cp, from, env->cfg->dsn, "1", dump_jobs, f.table_bytes, f.db_bytes, &env->prod,
				 &roles, f.dbname, &piped) ||
		    apply_settings(env, &env->prod, &f.settings) ? -1 : 0;
		child_process_clear(&roles);
	}
	if (!r)
		info->source = piped ? xstrfmt("pg_dump | pg_restore of its %zu biggest table%s, pg_dump -Fd -j %d, "
					       "pg_restore -j %d of the rest", piped, piped > 1 ? "s" : "", jobs(), jobs()) :
				       xstrfmt("pg_dump -Fd -j %d, pg_restore -j %d", dump_jobs, jobs());
	free(from);
	free(shown);
out:
	child_process_clear(&cp);
	free(why);
	free(f.superuser);
	free(f.dbname);
	ts_fingerprint_free(&f.server);
	strvec_clear(&f.settings);
	return r;
}

const char *ts_clone_source_kind(const struct ts_config *cfg)
{
	return cfg->dsn ? "dsn" : cfg->seed ? "seed" : "empty";
}

int ts_clone_source(struct ts_env *env, struct ts_clone_info *info)
{
	double t0 = now_ms();
	int r;

	/* a dev side that ts_clone_dev makes a cow copy of the clone: what of it can start, now */
	if (env->ops->early && !env->cfg->dev_next && is_cow(env)) {
		if ((r = env->ops->early(env, &env->dev)) < 0)
			return -1;
		info->early = r;
	}
	if (env->cfg->dsn) {
		r = fill_from_source(env, info);
	} else {
		/* a seed script's tables, indexes and WAL: a few times its size */
		uint64_t seed = env->cfg->seed ? (uint64_t)file_size(env->cfg->seed) : 0;

		r = ts_pool_ensure(&env->pool, room_for(4 * seed), "the production clone", env->quiet) ||
		    make_side(env, &env->prod) ? -1 : 0;
		if (!r && env->cfg->seed)
			r = run_seed(env);
		if (!r)
			info->source = xstrdup(env->cfg->seed ? "seed script" : "empty");
	}
	if (!r && is_cow(env)) {
		/*
		 * The production clone's pages reach the disk now, as part of
		 * making it: a reflink copy writes out the dirty pages of what it
		 * copies first, and would take as long as they are many.
		 */
		char *data = path_join(env->prod.dir, "data");
		int fd = open(data, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (fd >= 0) {
			syncfs(fd);
			close(fd);
		}
		free(data);
	}
	info->prod_ms = now_ms() - t0;
	return r;
}

/* The dev side, a copy of the clone, started; on a pool kept as the snapshot "base" first. */
static int dev_start(struct ts_env *env, int cow)
{
	int r = 0;

	if (cow) {
		/* the state before migrating, for `reset`: free on a pool */
		struct ts_side base;

		ts_env_snapshot_side(env, TS_SNAPSHOT_BASE, &base);
		r = env->ops->snapshot(env, &env->dev, &base, 1);
		ts_env_side_release(&base);
	}
	return r || env->ops->start(env, &env->dev) ? -1 : 0;
}

int ts_clone_dev_ready(struct ts_env *env)
{
	return dev_start(env, is_cow(env));
}

int ts_clone_dev(struct ts_env *env, struct ts_clone_info *info)
{
	uint64_t prod = side_bytes(env, &env->prod);
	double t0 = now_ms();
	json_t *up = NULL;
	int r;

	if (env->cfg->dev_next) {
		if (ts_upgrade_prepare(env, &up))
			return -1;
		json_decref(info->upgrade);
		info->upgrade = up;
		t0 = now_ms();
	}
	if (up && !strcmp(env->cfg->upgrade, "pg_upgrade")) {
		r = ts_upgrade_run(env, up);
	} else if (up || !strcmp(env->clone, "logical")) {
		struct child_process cp = CHILD_PROCESS_INIT, roles = CHILD_PROCESS_INIT;
		struct strvec settings = STRVEC_INIT;
		PGconn *conn = ts_env_connect(env, &env->prod, NULL);
		size_t piped = 0;

		r = !conn || read_settings(conn, &settings) ? -1 : 0;
		if (conn)
			PQfinish(conn);
		ts_env_child_env(env, &env->prod, &cp);
		ts_env_child_env(env, &env->prod, &roles);
		if (!r)
			r = dump_restore(env, &cp, "the production clone", NULL, "0", jobs(), prod, prod, &env->dev, &roles,
					 env->cfg->dbname, &piped) ||
			    apply_settings(env, &env->dev, &settings) ? -1 : 0;
		child_process_clear(&cp);
		child_process_clear(&roles);
		strvec_clear(&settings);
	} else {
		int cow = is_cow(env);

		/* the migration writes on the dev side: a rewrite of every table at worst */
		if (cow && env->pool.image) {
			if (ts_pool_ensure(&env->pool, room_for(prod), "the dev side's migrations", env->quiet))
				return -1;
		} else if (cow && env->pool.dir && ts_pool_free(&env->pool) < room_for(prod)) {
			char b1[32], b2[32];

			add_note(info, "the pool has %s free: a migration that rewrites more than that fills it (the production clone holds %s)",
				 ts_human_bytes(ts_pool_free(&env->pool), b1, sizeof(b1)),
				 ts_human_bytes(prod, b2, sizeof(b2)));
		}
		t0 = now_ms();
		r = env->ops->snapshot(env, &env->prod, &env->dev, cow);
		if (!r && info->early && info->defer)
			info->pending = 1;
		else if (!r)
			r = dev_start(env, cow);
	}
	if (!r && up)
		r = ts_upgrade_finish(env, up);
	if (!r && up && is_cow(env)) {
		/* the upgraded state with its statistics, for `reset`: free on a pool */
		struct ts_side base;

		ts_env_snapshot_side(env, TS_SNAPSHOT_BASE, &base);
		r = env->ops->snapshot(env, &env->dev, &base, 1);
		ts_env_side_release(&base);
	}
	info->dev_ms = now_ms() - t0;
	return r;
}

int ts_clone_snapshot(struct ts_env *env, const char *name)
{
	struct ts_side snap;
	int r;

	if (ts_env_snapshot_name_ok(name))
		return -1;
	if (!strcmp(name, TS_SNAPSHOT_BASE))
		return ts_error_set(TS_EXIT_USAGE, "\"%s\" is the snapshot the clone made (the dev side before migrating)",
				    name),
		       ts_error_hint("choose another name; \"twinstage reset\" returns to \"%s\"", name);
	ts_env_snapshot_side(env, name, &snap);
	r = env->ops->snapshot(env, &env->dev, &snap, is_cow(env));
	ts_env_side_release(&snap);
	return r;
}

int ts_clone_reset(struct ts_env *env, const char *name, struct ts_clone_info *info)
{
	struct ts_side snap;
	double t0 = now_ms();
	int r;

	if (name && ts_env_snapshot_name_ok(name))
		return -1;
	ts_env_snapshot_side(env, name ? name : TS_SNAPSHOT_BASE, &snap);
	if (is_dir(snap.dir)) {
		r = env->ops->snapshot(env, &snap, &env->dev, is_cow(env)) ||
		    env->ops->start(env, &env->dev) ? -1 : 0;
		info->dev_ms = now_ms() - t0;
	} else if (name) {
		struct strvec names = STRVEC_INIT;
		struct strbuf list = STRBUF_INIT;

		ts_env_snapshots(env, &names);
		for (size_t i = 0; i < names.nr; i++)
			strbuf_addf(&list, "%s%s", i ? ", " : "", names.v[i]);
		r = ts_error_set(TS_EXIT_USAGE, "no snapshot named \"%s\"", name);
		ts_error_hint(names.nr ? "the snapshots are: %s" : "there is none; \"twinstage snapshot NAME\" saves one",
			      list.buf);
		strvec_clear(&names);
		strbuf_release(&list);
	} else {
		/* no snapshot of the start: the production clone still is it */
		r = env->ops->destroy(env, &env->dev) || ts_clone_dev(env, info) ? -1 : 0;
	}
	ts_env_side_release(&snap);
	return r;
}
