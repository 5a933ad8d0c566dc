/*
 * env: the two isolated environments of a rehearsal, behind one small
 * interface so the pipeline never asks which backend it has.
 *
 * A side ("prod", the production clone, or "dev", the development side) is
 * a PostgreSQL server somewhere that twinstage created and will remove.
 * Its state lives under <workdir>/<side>/ and in <workdir>/env.json, so a
 * later command (`migrate`, `down`) finds it again, also after a run that
 * was killed with SIGKILL.
 */
#ifndef TS_ENV_H
#define TS_ENV_H

#include "config.h"

#include <libpq-fe.h>

struct ts_env;

struct ts_side {
	const char *name;	/* "prod" or "dev" */
	int port;		/* on 127.0.0.1 */
	char *dir;		/* <workdir>/<name> */
};

struct ts_env_ops {
	const char *name;
	/* Makes an empty server for the side (initdb) and its database folder. */
	int (*create)(struct ts_env *env, struct ts_side *side);
	/* Starts it and waits until it accepts connections. */
	int (*start)(struct ts_env *env, struct ts_side *side);
	/* Stops it cleanly (fast shutdown); a stopped side is fine. */
	int (*stop)(struct ts_env *env, struct ts_side *side);
	/* Stops it however it can and removes everything it had. */
	int (*destroy)(struct ts_env *env, struct ts_side *side);
	/* 1 when the side's server is running. */
	int (*running)(struct ts_env *env, struct ts_side *side);
	/* Makes `to` a copy of `from` at the file level (O(size) at worst). */
	int (*snapshot)(struct ts_env *env, struct ts_side *from, struct ts_side *to);
};

struct ts_env {
	const struct ts_config *cfg;
	const struct ts_env_ops *ops;
	struct ts_side prod, dev;
	/*
	 * A third server, made only when needed: the double dump test restores
	 * into it, a fresh cluster with no role but the superuser, as a backup
	 * is restored on a new machine.
	 */
	struct ts_side scratch;
	char *pg_bin;		/* folder holding initdb, pg_ctl, psql, pg_dump */
	char *state_path;	/* <workdir>/env.json */
	int as_user;		/* drop to uid/gid for server tools (we are root) */
	unsigned uid, gid;
	int lock_fd;
};

/* Picks the backend of cfg and fills env; nothing is created yet. */
int ts_env_init(struct ts_env *env, const struct ts_config *cfg);
void ts_env_release(struct ts_env *env);

/*
 * Takes the workdir for this run. A workdir in use by another twinstage
 * process is refused (TS_EXIT_USAGE). The lock lasts until release or exit.
 */
int ts_env_lock(struct ts_env *env);

/* Loads env.json. Returns 1 when environments exist, 0 when none do. */
int ts_env_load(struct ts_env *env);
int ts_env_save(struct ts_env *env);

/* Chooses ports and creates + starts both sides, empty. */
int ts_env_up(struct ts_env *env);
/* Makes and starts the scratch server, unless it runs already. */
int ts_env_scratch_up(struct ts_env *env);
/* Starts kept sides that are not running (after a reboot, say). */
int ts_env_ensure_running(struct ts_env *env);
/* Removes both sides (and the scratch server) and env.json, whatever state they are in. */
int ts_env_down(struct ts_env *env);

/* libpq connection string of a side (no secrets in it). */
char *ts_env_conninfo(const struct ts_env *env, const struct ts_side *side, const char *dbname);
/*
 * Connects to a side's database (dbname NULL: the project's), or sets an
 * error naming the side and returns NULL.
 */
PGconn *ts_env_connect(const struct ts_env *env, const struct ts_side *side, const char *dbname);
/* Creates the project's database on a side; replace: drop it first if it is there. */
int ts_env_create_database(const struct ts_env *env, const struct ts_side *side, int replace);
/* Fills cp with the env of a side: PGHOST, PGPORT, PGDATABASE, PGUSER, DATABASE_URL. */
struct child_process;
void ts_env_child_env(const struct ts_env *env, const struct ts_side *side,
		      struct child_process *cp);
/* Pushes the path of a server tool (psql, pg_dump, ...) in env->pg_bin, else its name. */
struct strvec;
void ts_env_push_tool(const struct ts_env *env, struct strvec *args, const char *tool);

/* The superuser both sides are created with. */
#define TS_DB_USER "postgres"

extern const struct ts_env_ops ts_env_instance_ops;

#endif
