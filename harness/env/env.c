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
#include <signal.h>
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
	return ts_env_use_backend(env, cfg->backend);
}

/* The server user of ops' servers (its name, uid, gid) in h; h->workdir is left as it is. */
static int backend_home(const struct ts_env *env, const struct ts_env_ops *ops, struct ts_home *h)
{
	const struct ts_config *cfg = env->cfg;

	h->user = cfg->os_user;
	h->as_user = 0;
	if (ops == &ts_env_vm_ops || ops == &ts_env_dualboot_ops) {
		/* the guests' disks are opened by libvirt's qemu user, under qemu:///system */
		struct passwd *pw = geteuid() == 0 && strstr(cfg->vm_uri, "/system") ?
				    getpwnam("libvirt-qemu") : NULL;

		if (pw) {
			h->user = "libvirt-qemu";
			h->as_user = 1;
			h->uid = pw->pw_uid;
			h->gid = pw->pw_gid;
		}
	} else if (geteuid() == 0) {
		struct passwd *pw = getpwnam(cfg->os_user);

		if (!pw)
			return ts_error_set(TS_EXIT_ENV,
					    "running as root, and user \"%s\" to run PostgreSQL as does not exist",
					    cfg->os_user),
			       ts_error_hint("PostgreSQL refuses to run as root; install postgresql (it creates the user \"postgres\") or set [environments] user");
		h->as_user = 1;
		h->uid = pw->pw_uid;
		h->gid = pw->pw_gid;
	}
	return 0;
}

int ts_env_use_backend(struct ts_env *env, const char *name)
{
	const struct ts_env_ops *ops = !strcmp(name, "instance") ? &ts_env_instance_ops :
				       !strcmp(name, "vm") ? &ts_env_vm_ops :
				       !strcmp(name, "dualboot") ? &ts_env_dualboot_ops : NULL;

	if (!ops)
		return ts_error_set(TS_EXIT_USAGE, "backend \"%s\" is not available", name);
	if (env->ops == ops)
		return 0;
	if (env->ops && env->ops->release)
		env->ops->release(env);
	env->ops = ops;
	return backend_home(env, ops, &env->home);
}

void ts_env_release(struct ts_env *env)
{
	ts_env_sessions_close(env);
	free(env->prod.dir);
	free(env->dev.dir);
	free(env->scratch.dir);
	free(env->pg_bin);
	ts_stack_free(&env->stack);
	strvec_clear(&env->initdb_args);
	free(env->state_path);
	free(env->clone);
	free(env->pool.dir);
	free(env->pool.image);
	free(env->emulated_why);
	free(env->images[0]);
	free(env->images[1]);
	if (env->ops && env->ops->release)
		env->ops->release(env);
	if (env->lock_fd >= 0)
		close(env->lock_fd);
	memset(env, 0, sizeof(*env));
	env->lock_fd = -1;
}

/*
 * What a run makes in its workdir: every name, so that a folder holding
 * only these is one twinstage made (before the marker existed), and `down`
 * removes each one a run can leave. `keep` names survive `down` (the logs
 * and reports a user reads afterwards, the pool's image until --purge).
 */
static const struct { const char *name; int prefix, keep; } made[] = {
	{ TS_WORKDIR_MARKER, 0, 1 }, { "lock", 0, 1 }, { "logs", 0, 1 }, { "reports", 0, 1 },
	{ "pool.img", 0, 1 }, { "env.json", 0, 0 }, { "env.json.tmp.", 1, 0 }, { "prod", 0, 0 },
	{ "dev", 0, 0 }, { "scratch", 0, 0 }, { "snapshots", 0, 0 }, { "pool", 0, 0 },
	{ "vm", 0, 0 }, { "prod.dump", 0, 0 }, { "dev.dump", 0, 0 }, { "ddt-", 1, 0 },
};

/* The entry of `made` that name is, or -1. */
static int made_by_us(const char *name)
{
	for (size_t i = 0; i < sizeof(made) / sizeof(made[0]); i++)
		if (made[i].prefix ? !strncmp(name, made[i].name, strlen(made[i].name))
				   : !strcmp(name, made[i].name))
			return (int)i;
	return -1;
}

/*
 * Makes the workdir twinstage's, or refuses it: a new folder, an empty one,
 * or one that holds only what twinstage makes gets the marker; a folder
 * with anything else in it is someone else's, and twinstage, which removes
 * what it makes there, will not use it.
 */
static int claim_workdir(const char *wd)
{
	char *marker = path_join(wd, TS_WORKDIR_MARKER);
	struct strvec names = STRVEC_INIT;
	int r = 0;

	if (is_file(marker))
		goto out;
	if (is_dir(wd)) {
		DIR *d = opendir(wd);
		struct dirent *de;

		while (d && (de = readdir(d)))
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") && made_by_us(de->d_name) < 0)
				strvec_push(&names, de->d_name);
		if (d)
			closedir(d);
		if (names.nr) {
			r = ts_error_set(TS_EXIT_USAGE,
					 "workdir \"%s\" is not twinstage's: it holds \"%s\"%s, which twinstage did not make",
					 wd, names.v[0], names.nr > 1 ? " and more" : "");
			ts_error_hint("twinstage removes what it makes in its workdir; name a new or empty folder ([project] workdir; the default is .twinstage)");
			goto out;
		}
	} else if (mkdir_p(wd, 0755)) {
		r = -1;
		goto out;
	}
	{
		static const char text[] = "twinstage workdir: twinstage makes and removes what is in it\n";

		r = write_file(marker, text, sizeof(text) - 1);
	}
out:
	strvec_clear(&names);
	free(marker);
	return r;
}

int ts_env_purge(const struct ts_env *env)
{
	char *marker = path_join(env->cfg->workdir, TS_WORKDIR_MARKER);
	int r;

	if (!is_file(marker))
		r = ts_error_set(TS_EXIT_USAGE, "workdir \"%s\" has no %s: twinstage did not make it, and will not remove it",
				 env->cfg->workdir, TS_WORKDIR_MARKER);
	else
		r = rm_rf(env->cfg->workdir);
	free(marker);
	return r;
}

int ts_env_lock(struct ts_env *env)
{
	char *path, pid[32], other[32] = "";
	ssize_t n;

	if (env->lock_fd >= 0)
		return 0;
	if (claim_workdir(env->cfg->workdir))
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
		/*
		 * The run that holds it is gone (killed): a child it forked a moment
		 * before holds the lock until it runs its program or dies with it.
		 */
		if (atoi(other) > 0 && kill(atoi(other), 0) && errno == ESRCH)
			for (int i = 0; i < 500 && flock(env->lock_fd, LOCK_EX | LOCK_NB); i++)
				usleep(10000);
	}
	if (flock(env->lock_fd, LOCK_EX | LOCK_NB)) {
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

/* The guests' image recipes, the configuration's. */
static void images_from_config(struct ts_env *env)
{
	const char *cfg[2] = { env->cfg->vm_image, env->cfg->dev_image };

	for (int i = 0; i < 2; i++) {
		free(env->images[i]);
		env->images[i] = cfg[i] ? xstrdup(cfg[i]) : NULL;
	}
}

int ts_env_save(struct ts_env *env)
{
	json_t *o = json_pack("{s:s, s:s?, s:s, s:s?, s:s?, s:s?, s:{s:i, s:b}, s:{s:i, s:b}, s:{s:i, s:b, s:b}}",
			      "backend", env->ops->name,
			      "pg_bin", env->pg_bin,
			      "database", env->cfg->dbname,
			      "clone", env->clone,
			      "pool", env->pool.dir,
			      "pool_image", env->pool.image,
			      "prod", "port", env->prod.port, "on_stack", env->prod.on_stack,
			      "dev", "port", env->dev.port, "on_stack", env->dev.on_stack,
			      "scratch", "port", env->scratch.port, "on_stack", env->scratch.on_stack,
			      "on_host", env->scratch.on_host);
	char *text;
	int r;

	if (o && env->images[0])
		json_object_set_new(o, "image", json_string(env->images[0]));
	if (o && env->images[1])
		json_object_set_new(o, "dev_image", json_string(env->images[1]));
	if (o && env->emulated)
		json_object_set_new(o, "emulated", json_string(env->emulated_why ? env->emulated_why : ""));
	if (o && env->probe_ms[0] > 0)
		json_object_set_new(o, "probe_ms", json_pack("{s:f, s:f}", "guest", env->probe_ms[0], "host",
							     env->probe_ms[1]));
	if (o && env->stack.root)
		json_object_set_new(o, "stack", json_pack("{s:s, s:s, s:s, s:s, s:s}", "root", env->stack.root,
							  "version", env->stack.version, "bin", env->stack.bin,
							  "old_bin", env->stack.old_bin, "suite", env->stack.suite));
	text = o ? json_dumps(o, JSON_INDENT(2)) : NULL;

	if (!text)	/* a path that is not UTF-8: the configuration refuses those */
		r = ts_error_set(TS_EXIT_ENV, "could not write environment state \"%s\": a path in it is not UTF-8",
				 env->state_path);
	else
		r = write_file(env->state_path, text, strlen(text));
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
	/* the environments are removed (and reached) by the backend that made them */
	if ((v = json_object_get(o, "backend")) && json_is_string(v) &&
	    ts_env_use_backend(env, json_string_value(v))) {
		json_decref(o);
		return -1;
	}
	{
		struct ts_side *sides[] = { &env->prod, &env->dev, &env->scratch };

		for (size_t i = 0; i < 3; i++) {
			json_t *s = json_object_get(o, sides[i]->name);

			sides[i]->port = (int)json_integer_value(json_object_get(s, "port"));
			sides[i]->on_stack = json_is_true(json_object_get(s, "on_stack"));
			sides[i]->on_host = json_is_true(json_object_get(s, "on_host"));
		}
	}
	if (!json_object_get(o, "image"))	/* a workdir of an earlier version: the configuration's */
		images_from_config(env);
	for (int i = 0; i < 2; i++)
		if ((v = json_object_get(o, i ? "dev_image" : "image")) && json_is_string(v)) {
			free(env->images[i]);
			env->images[i] = xstrdup(json_string_value(v));
		}
	if ((v = json_object_get(o, "emulated")) && json_is_string(v)) {
		env->emulated = 1;
		free(env->emulated_why);
		env->emulated_why = xstrdup(json_string_value(v));
	}
	if ((v = json_object_get(o, "probe_ms")) && json_is_number(json_object_get(v, "guest")) &&
	    json_is_number(json_object_get(v, "host"))) {
		env->probe_ms[0] = json_number_value(json_object_get(v, "guest"));
		env->probe_ms[1] = json_number_value(json_object_get(v, "host"));
	}
	if ((v = json_object_get(o, "stack")) && json_is_object(v)) {
		static const size_t slots[] = { offsetof(struct ts_stack, root), offsetof(struct ts_stack, version),
						offsetof(struct ts_stack, bin), offsetof(struct ts_stack, old_bin),
						offsetof(struct ts_stack, suite) };
		static const char *const keys[] = { "root", "version", "bin", "old_bin", "suite" };

		ts_stack_free(&env->stack);
		for (size_t i = 0; i < 5; i++) {
			const char *str = json_string_value(json_object_get(v, keys[i]));

			*(char **)((char *)&env->stack + slots[i]) = xstrdup(str ? str : "");
		}
	}
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

	images_from_config(env);
	env->prod.port = cfg->prod_port;
	env->dev.port = cfg->dev_port;
	if (mkdir_p(cfg->workdir, 0755) || choose_port(env, &env->prod, cfg->prod_port, "prod_port") ||
	    choose_port(env, &env->dev, cfg->dev_port, "dev_port"))
		return -1;
	return ts_env_save(env);
}

enum scratch_op { SCRATCH_CREATE, SCRATCH_START, SCRATCH_DESTROY, SCRATCH_RUNNING };

/*
 * An operation on the scratch server, by the backend that serves it: the
 * instance backend, as its own server user, when scratch.on_host; else the
 * environments' own.
 */
static int scratch_do(struct ts_env *env, enum scratch_op op, int on_host)
{
	const struct ts_env_ops *ops = on_host ? &ts_env_instance_ops : env->ops;
	struct ts_home saved = env->home;
	struct ts_side *s = &env->scratch;
	int r;

	if (ops != env->ops && backend_home(env, ops, &env->home))
		return -1;
	r = op == SCRATCH_CREATE ? ops->create(env, s) : op == SCRATCH_START ? ops->start(env, s) :
	    op == SCRATCH_DESTROY ? ops->destroy(env, s) : ops->running(env, s);
	env->home = saved;
	return r;
}

/*
 * For guests: can the scratch server be a cluster on this machine? When
 * ddt_server is not guest and this machine's server programs are the major
 * `like` runs (read from it). *why says which, for the progress line.
 */
static int scratch_here(struct ts_env *env, const struct ts_side *like, char **why)
{
	PGconn *c;
	int theirs = 0, ours;

	*why = NULL;
	if (env->ops == &ts_env_instance_ops)
		return 0;
	if (env->cfg->ddt_in_guest) {
		*why = xstrdup("in a guest of the image (ddt_server = guest)");
		return 0;
	}
	if ((c = ts_env_connect(env, like, "postgres")))
		theirs = PQserverVersion(c) / 10000;
	PQfinish(c);
	ts_error_clear();
	ours = ts_env_find_pg_bin(env) ? 0 : ts_pg_bin_major(NULL, env->pg_bin);
	ts_error_clear();
	if (theirs && theirs == ours) {
		struct ts_home h = env->home;

		/* as root, a cluster here runs as the server user: none, no cluster here */
		if (backend_home(env, &ts_env_instance_ops, &h)) {
			*why = xstrfmt("in a guest of the image (%s)", ts_error_message());
			ts_error_clear();
			return 0;
		}
		*why = xstrfmt("on this machine (its PostgreSQL %d is the guests' major)", ours);
		return 1;
	}
	*why = xstrfmt("in a guest of the image (the guests run PostgreSQL %d, this machine %d)", theirs, ours);
	return 0;
}

/*
 * The scratch server up for `like`: 1 on this machine, 0 in a guest (with
 * host_only: 0 and nothing made, when it would be one), -1 (error set).
 */
static int scratch_up(struct ts_env *env, const struct ts_side *like, int host_only)
{
	struct ts_side *s = &env->scratch;
	char *why = NULL;
	int here, r = -1;

	/* on this machine already, for this major: where it belongs whenever it can be there */
	if (s->port && s->on_host && s->on_stack == like->on_stack && scratch_do(env, SCRATCH_RUNNING, 1))
		return 1;
	here = scratch_here(env, like, &why);
	if (host_only && !here) {
		free(why);
		return 0;
	}
	if (s->port && s->on_stack == like->on_stack && s->on_host == here &&
	    scratch_do(env, SCRATCH_RUNNING, here)) {
		free(why);
		return here;
	}
	/* a scratch server of the other major, or elsewhere, is made again */
	if (s->port && scratch_do(env, SCRATCH_DESTROY, s->on_host))
		goto out;
	s->on_stack = like->on_stack;
	s->on_host = here;
	if (!s->port)
		s->port = free_port(env, s);
	if (!s->port) {
		ts_error_set(TS_EXIT_ENV, "could not find a free port for the scratch server");
		free(why);
		return -1;
	}
	if (why && !env->quiet)
		fprintf(stderr, "twinstage: the scratch server of the double dump test: %s\n", why);
	/* saved first, so that `down` finds it even if the run is killed now */
	r = ts_env_save(env) || scratch_do(env, SCRATCH_DESTROY, here) || scratch_do(env, SCRATCH_CREATE, here) ||
	    scratch_do(env, SCRATCH_START, here) ? -1 : 0;
out:
	free(why);
	return r ? ts_error_prefix("the scratch server of the double dump test") : here;
}

int ts_env_scratch_up(struct ts_env *env, const struct ts_side *like)
{
	return scratch_up(env, like, 0) < 0 ? -1 : 0;
}

int ts_env_scratch_up_here(struct ts_env *env, const struct ts_side *like)
{
	return scratch_up(env, like, 1);
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

/* The PostgreSQL programs a run starts; one left running after the run was killed is an orphan. */
static int ours_to_stop(const char *arg0)
{
	static const char *const tools[] = { "postgres", "pg_dump", "pg_restore", "pg_basebackup", "psql",
					     "initdb", "pg_ctl", NULL };
	const char *base = strrchr(arg0, '/') ? strrchr(arg0, '/') + 1 : arg0;

	for (size_t i = 0; tools[i]; i++)
		if (!strcmp(base, tools[i]))
			return 1;
	return 0;
}

/* 1 for a postmaster ("postgres -D DATA") that DATA/postmaster.pid names: it is a side's. */
static int listed_server(const char *args, size_t len, int pid)
{
	for (const char *a = args; a < args + len; a += strlen(a) + 1)
		if (!strcmp(a, "-D") && a + 3 < args + len) {
			char *pidf = path_join(a + 3, "postmaster.pid");
			struct strbuf sb = STRBUF_INIT;
			int listed = !strbuf_read_file(&sb, pidf) && atoi(sb.buf) == pid;

			strbuf_release(&sb);
			free(pidf);
			return listed;
		}
	return 0;
}

/*
 * A run killed with SIGKILL leaves what its children had started: a server
 * pg_ctl started a moment before (no postmaster.pid names it yet), pg_dump's
 * parallel workers still writing a dump. Each PostgreSQL program whose
 * arguments name a folder of this workdir (in it, outside it, on its pool)
 * is stopped first, but a server its postmaster.pid names: the backend
 * stops that one cleanly.
 */
static void stop_orphans(const struct ts_env *env)
{
	char *places[3] = { xstrfmt("%s/", env->cfg->workdir), ts_home_outside(&env->home, "/var/tmp"),
			    env->pool.named ? ts_home_outside(&env->home, env->pool.named) : NULL };
	DIR *d = opendir("/proc");
	struct dirent *de;
	pid_t found[64];
	size_t n = 0;

	while (d && (de = readdir(d)) && n < sizeof(found) / sizeof(found[0])) {
		char path[300], buf[8192];
		ssize_t len;
		int fd, hit = 0;

		if (de->d_name[0] < '1' || de->d_name[0] > '9' || atoi(de->d_name) == (int)getpid())
			continue;
		snprintf(path, sizeof(path), "/proc/%s/cmdline", de->d_name);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
			continue;
		len = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (len <= 0)
			continue;
		buf[len] = '\0';
		if (!ours_to_stop(buf) || listed_server(buf, (size_t)len, atoi(de->d_name)))
			continue;
		for (const char *a = buf; a < buf + len && !hit; a += strlen(a) + 1)
			for (size_t k = 0; k < 3 && !hit; k++)
				hit = places[k] && strstr(a, places[k]);
		if (hit) {
			found[n] = (pid_t)atoi(de->d_name);
			kill(found[n++], SIGKILL);
		}
	}
	if (d)
		closedir(d);
	for (size_t i = 0; i < n; i++)
		for (int k = 0; k < 300 && !kill(found[i], 0); k++)
			usleep(10000);
	for (size_t k = 0; k < 3; k++)
		free(places[k]);
}

/*
 * What a killed run may leave beside its sides once they are gone: dumps,
 * the double dump test's files, a half-written state file. Only names
 * twinstage makes, and not the kept ones.
 */
static int sweep(const char *wd)
{
	struct strvec names = STRVEC_INIT;
	int r = 0;

	list_names(wd, "", &names);
	for (size_t i = 0; i < names.nr && !r; i++) {
		int k = made_by_us(names.v[i]);

		if (k >= 0 && !made[k].keep && strcmp(names.v[i], "env.json")) {
			char *p = path_join(wd, names.v[i]);

			r = rm_rf(p);
			free(p);
		}
	}
	strvec_clear(&names);
	return r;
}

int ts_env_down(struct ts_env *env)
{
	struct strvec snaps = STRVEC_INIT;
	char *snapdir = path_join(env->cfg->workdir, "snapshots");
	int r = 0;

	stop_orphans(env);
	/* where env.json says it is: that is saved before it is made */
	if (scratch_do(env, SCRATCH_DESTROY, env->scratch.on_host))
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
	if (!r)
		r = sweep(env->cfg->workdir);
	if (!r && unlink(env->state_path) && errno != ENOENT)
		r = ts_error_set(TS_EXIT_ENV, "could not remove \"%s\": %s", env->state_path,
				 strerror(errno));
	if (!r) {
		/*
		 * What env.json said of the environments went with them: the
		 * next ones (another backend, another image) are the
		 * configuration's, their speed measured again.
		 */
		env->emulated = 0;
		free(env->emulated_why);
		env->emulated_why = NULL;
		env->probe_ms[0] = env->probe_ms[1] = 0;
		images_from_config(env);
	}
	return r;
}

PGconn *ts_env_connect_app(const struct ts_env *env, const struct ts_side *side, const char *dbname,
			   const char *app)
{
	char port[16];
	/*
	 * No TLS: every side is on this machine's loopback (a guest's port
	 * forward, a remote host's ssh tunnel), and under software emulation a
	 * guest's TLS handshake doubled the cost of each connection.
	 */
	const char *const keys[] = { "host", "port", "dbname", "user", "connect_timeout",
				     "application_name", "sslmode", NULL };
	const char *const vals[] = { "127.0.0.1", port, dbname ? dbname : env->cfg->dbname, TS_DB_USER,
				     "10", app ? app : "twinstage", "disable", NULL };
	char *what = xstrfmt("the %s side (127.0.0.1:%d)", side->name, side->port);
	PGconn *conn;

	snprintf(port, sizeof(port), "%d", side->port);
	/* keywords, not a connection string: a database name may hold spaces and quotes */
	conn = ts_pg_connected(PQconnectdbParams(keys, vals, 0), what);
	free(what);
	return conn;
}

PGconn *ts_env_connect(const struct ts_env *env, const struct ts_side *side, const char *dbname)
{
	return ts_env_connect_app(env, side, dbname, NULL);
}

#define N_KEPT (sizeof(((struct ts_env *)0)->kept) / sizeof(struct ts_env_kept))

PGconn *ts_env_session(struct ts_env *env, const struct ts_side *side)
{
	for (size_t i = 0; i < N_KEPT; i++) {
		struct ts_env_kept *k = &env->kept[i];

		if (k->conn && k->side == side) {
			PGconn *c = k->conn;

			k->conn = NULL;
			return c;
		}
	}
	return ts_env_connect(env, side, NULL);
}

void ts_env_session_done(struct ts_env *env, const struct ts_side *side, PGconn *conn)
{
	if (!conn)
		return;
	if (PQstatus(conn) == CONNECTION_OK && PQtransactionStatus(conn) == PQTRANS_IDLE) {
		PGresult *res = PQexec(conn, "DISCARD ALL");
		int ok = PQresultStatus(res) == PGRES_COMMAND_OK;

		PQclear(res);
		for (size_t i = 0; ok && i < N_KEPT; i++)
			if (!env->kept[i].conn) {
				env->kept[i].side = side;
				env->kept[i].conn = conn;
				return;
			}
	}
	PQfinish(conn);
}

void ts_env_sessions_close(struct ts_env *env)
{
	for (size_t i = 0; i < N_KEPT; i++) {
		PQfinish(env->kept[i].conn);
		env->kept[i].conn = NULL;
	}
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
	strvec_push(&cp->env, "PGSSLMODE=disable");	/* loopback, as in ts_env_connect_app */
	{
		char *db = url_encode(env->cfg->dbname);

		strvec_pushf(&cp->env, "DATABASE_URL=postgresql://%s@127.0.0.1:%d/%s", TS_DB_USER,
			     side->port, db);
		free(db);
	}
	strvec_push(&cp->env, "PGPASSWORD");
	strvec_push(&cp->env, "PGSERVICE");
	strvec_push(&cp->env, "PGOPTIONS");
	/* twinstage's own: a migration tool's statement log and lock sampling leave them out */
	strvec_push(&cp->env, "PGAPPNAME=twinstage command");
}

void ts_env_run_as_server(const struct ts_env *env, struct child_process *cp)
{
	if (env->home.as_user) {
		cp->run_as_user = 1;
		cp->uid = env->home.uid;
		cp->gid = env->home.gid;
	}
	cp->no_stdin = 1;
	strvec_push(&cp->env, "LC_ALL=C.UTF-8");
}

char *ts_env_side_data(const struct ts_side *side)
{
	char *data = path_join(side->dir, "data");
	char buf[4096];
	ssize_t n = readlink(data, buf, sizeof(buf) - 1);

	if (n > 0) {
		free(data);
		return xstrndup(buf, (size_t)n);
	}
	return data;
}

void ts_env_side_tool(const struct ts_env *env, const struct ts_side *side, struct child_process *cp,
		      const char *tool)
{
	if (side->on_stack && env->stack.root) {
		strvec_pushf(&cp->args, "%s/%s", env->stack.bin, tool);
		cp->usr_root = env->stack.root;
	} else {
		ts_env_push_tool(env, &cp->args, tool);
	}
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
