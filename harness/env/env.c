/*
 * env.c: what every backend shares: choosing ports, the workdir lock, the
 * state file, and tearing down whatever a run left, even half made.
 *
 * The state file is written before a side is created, not after, so that a
 * run killed in the middle of initdb still leaves enough for `down`; and
 * `down` also looks for side folders that no state file mentions.
 */
#include "env/env.h"
#include "core/error.h"
#include "core/run_command.h"
#include "core/strbuf.h"
#include "core/strvec.h"
#include "core/util.h"
#include "core/wrapper.h"
#include "env/pool.h"
#include "pg/pg.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pwd.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

int ts_env_init(struct ts_env *env, const struct ts_config *cfg)
{
	memset(env, 0, sizeof(*env));
	env->cfg = cfg;
	env->lock_fd = -1;
	env->prod.name = "prod";
	env->dev.name = "dev";
	env->scratch.name = "scratch";
	env->prod.dir = path_join(cfg->workdir, "prod");
	env->dev.dir = path_join(cfg->workdir, "dev");
	env->scratch.dir = path_join(cfg->workdir, "scratch");
	env->state_path = path_join(cfg->workdir, "env.json");
	env->home.workdir = cfg->workdir;
	env->home.user = cfg->os_user;
	env->pool.home = &env->home;
	env->pool.named = cfg->pool;
	if (!strcmp(cfg->backend, "instance"))
		env->ops = &ts_env_instance_ops;
	else if (!strcmp(cfg->backend, "vm"))
		env->ops = &ts_env_vm_ops;
	else if (!strcmp(cfg->backend, "dualboot"))
		env->ops = &ts_env_dualboot_ops;
	else
		return ts_error_set(TS_EXIT_USAGE, "backend \"%s\" is not available", cfg->backend);
	if (env->ops == &ts_env_vm_ops || env->ops == &ts_env_dualboot_ops) {
		/* the guests' disks are opened by libvirt's qemu user, under qemu:///system */
		struct passwd *pw = geteuid() == 0 && strstr(cfg->vm_uri, "/system") ?
				    getpwnam("libvirt-qemu") : NULL;

		if (pw) {
			env->home.user = "libvirt-qemu";
			env->home.as_user = 1;
			env->home.uid = pw->pw_uid;
			env->home.gid = pw->pw_gid;
		}
	} else if (geteuid() == 0) {
		struct passwd *pw = getpwnam(cfg->os_user);

		if (!pw)
			return ts_error_set(TS_EXIT_ENV,
					    "running as root, and user \"%s\" to run PostgreSQL as does not exist",
					    cfg->os_user),
			       ts_error_hint("PostgreSQL refuses to run as root; install postgresql (it creates the user \"postgres\") or set [environments] user");
		env->home.as_user = 1;
		env->home.uid = pw->pw_uid;
		env->home.gid = pw->pw_gid;
	}
	return 0;
}

void ts_env_release(struct ts_env *env)
{
	free(env->prod.dir);
	free(env->dev.dir);
	free(env->scratch.dir);
	free(env->pg_bin);
	free(env->state_path);
	free(env->clone);
	free(env->pool.dir);
	free(env->pool.image);
	if (env->ops && env->ops->release)
		env->ops->release(env);
	if (env->lock_fd >= 0)
		close(env->lock_fd);
	memset(env, 0, sizeof(*env));
	env->lock_fd = -1;
}

int ts_env_lock(struct ts_env *env)
{
	char *path, pid[32], other[32] = "";
	ssize_t n;

	if (env->lock_fd >= 0)
		return 0;
	if (mkdir_p(env->cfg->workdir, 0755))
		return -1;
	path = path_join(env->cfg->workdir, "lock");
	env->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (env->lock_fd < 0) {
		ts_error_set(TS_EXIT_ENV, "could not open lock file \"%s\": %s", path, strerror(errno));
		free(path);
		return -1;
	}
	if (flock(env->lock_fd, LOCK_EX | LOCK_NB)) {
		n = pread(env->lock_fd, other, sizeof(other) - 1, 0);
		other[n > 0 ? n : 0] = '\0';
		other[strcspn(other, "\n")] = '\0';
		close(env->lock_fd);
		env->lock_fd = -1;
		ts_error_set(TS_EXIT_USAGE, "workdir \"%s\" is in use by another twinstage run (pid %s)",
			     env->cfg->workdir, *other ? other : "unknown");
		ts_error_hint("wait for it to finish, or set [project] workdir to another folder");
		free(path);
		return -1;
	}
	n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(env->lock_fd, 0) || pwrite(env->lock_fd, pid, (size_t)n, 0) != n) {
		/* the lock itself holds; the pid is only for the message */
	}
	free(path);
	return 0;
}

char *ts_env_data_home(const struct ts_env *env, const struct ts_side *side)
{
	if (env->pool.dir && side != &env->scratch)
		return env->pool.image ? xstrdup(env->pool.dir) : ts_home_outside(&env->home, env->pool.dir);
	if (!ts_home_reachable(&env->home, env->cfg->workdir))
		return ts_home_outside(&env->home, "/var/tmp");
	return NULL;
}

void ts_env_snapshot_side(const struct ts_env *env, const char *name, struct ts_side *side)
{
	char *rel = xstrfmt("snapshots/%s", name);

	memset(side, 0, sizeof(*side));
	side->name = rel;
	side->dir = path_join(env->cfg->workdir, rel);
}

void ts_env_side_release(struct ts_side *side)
{
	free((char *)side->name);
	free(side->dir);
	memset(side, 0, sizeof(*side));
}

int ts_env_snapshot_name_ok(const char *name)
{
	size_t n = strlen(name);

	if (!n || n > 64 || name[0] == '.' || strspn(name, "abcdefghijklmnopqrstuvwxyz"
						   "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != n)
		return ts_error_set(TS_EXIT_USAGE, "invalid snapshot name \"%s\"", name),
		       ts_error_hint("use letters, digits, '.', '_' and '-' (up to 64, not starting with '.')");
	return 0;
}

void ts_env_snapshots(const struct ts_env *env, struct strvec *names)
{
	char *dir = path_join(env->cfg->workdir, "snapshots");

	list_names(dir, "", names);	/* none yet: no folder */
	free(dir);
}

int ts_env_save(struct ts_env *env)
{
	json_t *o = json_pack("{s:s, s:s?, s:s, s:s?, s:s?, s:s?, s:{s:i}, s:{s:i}, s:{s:i}}",
			      "backend", env->ops->name,
			      "pg_bin", env->pg_bin,
			      "database", env->cfg->dbname,
			      "clone", env->clone,
			      "pool", env->pool.dir,
			      "pool_image", env->pool.image,
			      "prod", "port", env->prod.port,
			      "dev", "port", env->dev.port,
			      "scratch", "port", env->scratch.port);
	char *text = json_dumps(o, JSON_INDENT(2));
	int r = write_file(env->state_path, text, strlen(text));

	free(text);
	json_decref(o);
	return r;
}

int ts_env_load(struct ts_env *env)
{
	json_error_t jerr;
	json_t *o, *v;

	if (!is_file(env->state_path))
		return 0;
	o = json_load_file(env->state_path, 0, &jerr);
	if (!o)
		return ts_error_set(TS_EXIT_ENV, "could not read environment state \"%s\": %s",
				    env->state_path, jerr.text),
		       ts_error_hint("run \"twinstage down\" to remove what is left");
	{
		static const size_t slots[] = { offsetof(struct ts_env, pg_bin), offsetof(struct ts_env, clone),
						offsetof(struct ts_env, pool.dir), offsetof(struct ts_env, pool.image) };
		static const char *const keys[] = { "pg_bin", "clone", "pool", "pool_image" };

		for (size_t i = 0; i < 4; i++) {
			char **slot = (char **)((char *)env + slots[i]);

			if ((v = json_object_get(o, keys[i])) && json_is_string(v)) {
				free(*slot);
				*slot = xstrdup(json_string_value(v));
			}
		}
	}
	env->prod.port = (int)json_integer_value(json_object_get(json_object_get(o, "prod"), "port"));
	env->dev.port = (int)json_integer_value(json_object_get(json_object_get(o, "dev"), "port"));
	env->scratch.port = (int)json_integer_value(json_object_get(json_object_get(o, "scratch"), "port"));
	json_decref(o);
	return 1;
}

/* A free port for side that no other side of env has; 0 when none was found. */
static int free_port(const struct ts_env *env, const struct ts_side *side)
{
	for (int i = 0; i < 20; i++) {
		int p = port_pick_free();

		if (p && (side == &env->prod || p != env->prod.port) &&
		    (side == &env->dev || p != env->dev.port) &&
		    (side == &env->scratch || p != env->scratch.port))
			return p;
	}
	return 0;
}

static int choose_port(struct ts_env *env, struct ts_side *side, int wanted, const char *key)
{
	if (wanted) {
		if (port_in_use(wanted))
			return ts_error_set(TS_EXIT_ENV, "port %d for the %s side is already in use",
					    wanted, side->name),
			       ts_error_hint("set [environments] %s to a free port, or to 0 to pick one", key);
		side->port = wanted;
		return 0;
	}
	if (!(side->port = free_port(env, side)))
		return ts_error_set(TS_EXIT_ENV, "could not find a free port for the %s side", side->name);
	return 0;
}

int ts_env_repick_port(struct ts_env *env, struct ts_side *side)
{
	int fixed = side == &env->prod ? env->cfg->prod_port : side == &env->dev ? env->cfg->dev_port : 0;
	int p;

	if (fixed || !(p = free_port(env, side)))
		return -1;
	side->port = p;
	return ts_env_save(env);
}

int ts_env_up(struct ts_env *env)
{
	const struct ts_config *cfg = env->cfg;

	env->prod.port = cfg->prod_port;
	env->dev.port = cfg->dev_port;
	if (mkdir_p(cfg->workdir, 0755) || choose_port(env, &env->prod, cfg->prod_port, "prod_port") ||
	    choose_port(env, &env->dev, cfg->dev_port, "dev_port"))
		return -1;
	return ts_env_save(env);
}

int ts_env_scratch_up(struct ts_env *env)
{
	struct ts_side *s = &env->scratch;

	if (s->port && env->ops->running(env, s))
		return 0;
	if (!s->port)
		s->port = free_port(env, s);
	if (!s->port)
		return ts_error_set(TS_EXIT_ENV, "could not find a free port for the scratch server");
	/* saved first, so that `down` finds it even if the run is killed now */
	if (ts_env_save(env) || env->ops->destroy(env, s) || env->ops->create(env, s) ||
	    env->ops->start(env, s))
		return ts_error_prefix("the scratch server of the double dump test");
	return 0;
}

int ts_env_ensure_running(struct ts_env *env)
{
	struct ts_side *sides[] = { &env->prod, &env->dev };

	if (ts_pool_mount(&env->pool))
		return -1;
	for (size_t i = 0; i < 2; i++)
		if (!env->ops->running(env, sides[i]) && env->ops->start(env, sides[i]))
			return -1;
	return 0;
}

int ts_env_down(struct ts_env *env)
{
	struct strvec snaps = STRVEC_INIT;
	char *snapdir = path_join(env->cfg->workdir, "snapshots");
	int r = 0;

	if (env->ops->destroy(env, &env->scratch))
		r = -1;
	ts_env_snapshots(env, &snaps);
	for (size_t i = 0; i < snaps.nr; i++) {
		struct ts_side snap;

		ts_env_snapshot_side(env, snaps.v[i], &snap);
		if (env->ops->destroy(env, &snap))
			r = -1;
		ts_env_side_release(&snap);
	}
	strvec_clear(&snaps);
	rmdir(snapdir);
	free(snapdir);
	if (env->ops->destroy(env, &env->dev))
		r = -1;
	if (env->ops->destroy(env, &env->prod))
		r = -1;
	if (!r && ts_pool_release(&env->pool))
		r = -1;
	if (!r && env->ops->cleanup && env->ops->cleanup(env))
		r = -1;
	if (!r && unlink(env->state_path) && errno != ENOENT)
		r = ts_error_set(TS_EXIT_ENV, "could not remove \"%s\": %s", env->state_path,
				 strerror(errno));
	return r;
}

char *ts_env_conninfo(const struct ts_env *env, const struct ts_side *side, const char *dbname)
{
	(void)env;
	return xstrfmt("host=127.0.0.1 port=%d dbname=%s user=%s connect_timeout=10 application_name=twinstage",
		       side->port, dbname, TS_DB_USER);
}

PGconn *ts_env_connect(const struct ts_env *env, const struct ts_side *side, const char *dbname)
{
	char *ci = ts_env_conninfo(env, side, dbname ? dbname : env->cfg->dbname);
	char *what = xstrfmt("the %s side (127.0.0.1:%d)", side->name, side->port);
	PGconn *conn = ts_pg_connect(ci, what);

	free(ci);
	free(what);
	return conn;
}

int ts_env_create_database(const struct ts_env *env, const struct ts_side *side, int replace)
{
	PGconn *conn = ts_env_connect(env, side, "postgres");
	char *id, *sql;
	int r;

	if (!conn)
		return -1;
	id = ts_pg_ident(conn, env->cfg->dbname);
	sql = xstrfmt("DROP DATABASE IF EXISTS %s WITH (FORCE)", id);
	r = replace ? ts_pg_exec(conn, sql) : 0;
	free(sql);
	sql = xstrfmt("CREATE DATABASE %s", id);
	if (!r)
		r = ts_pg_exec(conn, sql);
	if (r)
		ts_error_prefix("could not create database \"%s\" on the %s side", env->cfg->dbname,
				side->name);
	free(sql);
	free(id);
	PQfinish(conn);
	return r;
}

void ts_env_child_env(const struct ts_env *env, const struct ts_side *side,
		      struct child_process *cp)
{
	strvec_push(&cp->env, "PGHOST=127.0.0.1");
	strvec_pushf(&cp->env, "PGPORT=%d", side->port);
	strvec_pushf(&cp->env, "PGDATABASE=%s", env->cfg->dbname);
	strvec_pushf(&cp->env, "PGUSER=%s", TS_DB_USER);
	strvec_pushf(&cp->env, "DATABASE_URL=postgresql://%s@127.0.0.1:%d/%s", TS_DB_USER,
		     side->port, env->cfg->dbname);
	strvec_push(&cp->env, "PGPASSWORD");
	strvec_push(&cp->env, "PGSERVICE");
	strvec_push(&cp->env, "PGOPTIONS");
}

void ts_env_push_tool(const struct ts_env *env, struct strvec *args, const char *tool)
{
	char *p = env->pg_bin ? path_join(env->pg_bin, tool) : NULL;

	strvec_push(args, p && access(p, X_OK) == 0 ? p : tool);	/* else from PATH */
	free(p);
}

static int version_cmp(const char *a, const char *b)
{
	return atoi(a) - atoi(b);
}

/* pg_config --bindir, else the newest /usr/lib/postgresql/N/bin, else PATH. */
int ts_env_find_pg_bin(struct ts_env *env)
{
	struct child_process cp = CHILD_PROCESS_INIT;
	struct strbuf out = STRBUF_INIT;
	char *candidate = NULL, *initdb;
	DIR *d;
	struct dirent *de;
	char best[300] = "";

	if (env->pg_bin)
		return 0;
	if (env->cfg->pg_bin) {
		initdb = path_join(env->cfg->pg_bin, "initdb");
		if (access(initdb, X_OK)) {
			free(initdb);
			return ts_error_set(TS_EXIT_ENV, "no initdb in pg_bin folder \"%s\"",
					    env->cfg->pg_bin);
		}
		free(initdb);
		env->pg_bin = xstrdup(env->cfg->pg_bin);
		return 0;
	}
	if ((d = opendir("/usr/lib/postgresql"))) {
		while ((de = readdir(d))) {
			char *p;

			if (de->d_name[0] == '.')
				continue;
			p = xstrfmt("/usr/lib/postgresql/%s/bin/initdb", de->d_name);
			if (!access(p, X_OK) && (!*best || version_cmp(de->d_name, best) > 0))
				snprintf(best, sizeof(best), "%s", de->d_name);
			free(p);
		}
		closedir(d);
	}
	if (*best) {
		env->pg_bin = xstrfmt("/usr/lib/postgresql/%s/bin", best);
		return 0;
	}
	strvec_pushl(&cp.args, "pg_config", "--bindir", NULL);
	cp.capture = &out;
	cp.no_stdin = 1;
	if (run_command(&cp) == 0) {
		strbuf_rtrim(&out);
		candidate = path_join(out.buf, "initdb");
		if (!access(candidate, X_OK))
			env->pg_bin = xstrdup(out.buf);
		free(candidate);
	}
	ts_error_clear();
	child_process_clear(&cp);
	strbuf_release(&out);
	if (!env->pg_bin)
		return ts_error_set(TS_EXIT_ENV, "could not find the PostgreSQL server programs (initdb, pg_ctl)"),
		       ts_error_hint("install them (apt-get install postgresql) or set [environments] pg_bin");
	return 0;
}
