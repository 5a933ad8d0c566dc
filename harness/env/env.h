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

#include "config/config.h"
#include "env/home.h"
#include "env/pool.h"
#include "env/stack.h"

#include <libpq-fe.h>
#include <stdint.h>

struct child_process;

struct ts_env;

struct ts_side {
	const char *name;	/* "prod" or "dev" */
	int port;		/* on 127.0.0.1 */
	char *dir;		/* <workdir>/<name> */
	/*
	 * Its server runs on env->stack (the dev side with dev_stack, and the
	 * scratch server while it stands in for it), not this machine's.
	 */
	int on_stack;
	/*
	 * The scratch server of a vm or dualboot run, on this machine (the
	 * instance backend's cluster) instead of a third guest: the guests'
	 * major is this machine's, and [environments] ddt_server is not guest.
	 */
	int on_host;
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
	/*
	 * Makes `to` a copy of `from` at the file level, `from` cleanly stopped
	 * for the copy and started again if it ran. cow: a copy-on-write copy
	 * (reflink), O(1) in the size of the data, or an error where the
	 * filesystem cannot; else a full copy (reflink where it can).
	 */
	int (*snapshot)(struct ts_env *env, struct ts_side *from, struct ts_side *to, int cow);
	/*
	 * Before the production clone is made, when the dev side will be
	 * snapshot(prod, dev, cow) of it: starts what of the dev side can be
	 * started without it: 1 it did, 0 nothing to start (NULL: never), -1
	 * (error set). That snapshot then gives it what it waits for, and
	 * start waits for it to be up. The dualboot backend boots the dev
	 * guest as far as its initrd, beside the clone's.
	 */
	int (*early)(struct ts_env *env, struct ts_side *side);
	/*
	 * Makes the side (not created yet) a physical copy of a running server
	 * with pg_basebackup: cp's env holds the server's connection (PG*
	 * variables), total the bytes expected (for progress).
	 */
	int (*receive)(struct ts_env *env, struct ts_side *side, struct child_process *cp,
		       uint64_t total);
	/* After down removed every side: what the backend shares between them (NULL: nothing). */
	int (*cleanup)(struct ts_env *env);
	/* Frees what the backend keeps in env->backend (NULL: nothing). */
	void (*release)(struct ts_env *env);
	/*
	 * What the running side's server says it runs on, asked from inside
	 * (new string: "root twinstage-dev, marker dev, hostname x"), or NULL:
	 * the backend has nothing to prove. Errors: the side is not the one it
	 * should be.
	 */
	int (*booted)(struct ts_env *env, struct ts_side *side, char **out);
	/*
	 * Where the side's statement log is (jsonlog, new string), or NULL: the
	 * backend cannot hand it to twinstage. A side keeps one only when the
	 * configuration runs a migration tool ([project] tool).
	 */
	char *(*statement_log)(struct ts_env *env, struct ts_side *side);
	/* snapshot(cow) works wherever the backend runs (qcow2 overlays): no pool needed */
	int overlays;
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
	/* the dev side's system with dev_stack (root NULL: none), saved in env.json */
	struct ts_stack stack;
	/* initdb's locale and encoding options for the next create (empty: C.UTF-8, UTF8) */
	struct strvec initdb_args;
	char *state_path;	/* <workdir>/env.json */
	/*
	 * The workdir and the server user: as root the servers run as
	 * home.uid/gid; instance drops to it for its server tools, both
	 * backends check that it can reach their files (home.h).
	 */
	struct ts_home home;
	int lock_fd;
	int quiet;		/* no progress lines */
	/* how the dev side is made: cow, physical or logical (NULL: not chosen yet) */
	char *clone;
	/*
	 * The copy-on-write pool the two sides live on (pool.dir NULL: none):
	 * a folder the user named ([environments] pool), or the mount point
	 * of an XFS image twinstage made (pool.image) as root.
	 */
	struct ts_pool pool;
	void *backend;		/* the backend's own state (a libvirt connection, say) */
	/*
	 * The servers run under software emulation (guests where KVM does not
	 * work), many times slower than the hardware they stand for: set by
	 * the backend once it knows, with the reason; kept in env.json.
	 */
	int emulated;
	char *emulated_why;
	/*
	 * The timing probe's medians in ms (rehearse/timing.h), measured once
	 * for these environments and kept in env.json, so that each later step
	 * scales its gates alike without running the probe again: probe_ms[0]
	 * on the production clone (0: not measured yet), [1] on this machine
	 * (-1: no server here to compare with).
	 */
	double probe_ms[2];
	/*
	 * The guests' image recipes, [0] both sides', [1] the dev guest's
	 * (dev_image; NULL: none): the configuration's at `up`, then env.json's,
	 * so that a step without --env reaches the guests it made.
	 */
	char *images[2];
	/*
	 * Sessions kept between the checks of one stage (ts_env_session): a
	 * guest's new backend starts with cold caches, its first catalog
	 * lookups many times a host's.
	 */
	struct ts_env_kept {
		const struct ts_side *side;
		PGconn *conn;
	} kept[4];
};

/* Picks the backend of cfg and fills env; nothing is created yet. */
int ts_env_init(struct ts_env *env, const struct ts_config *cfg);
/*
 * Uses the backend `name` ("instance", "vm", "dualboot") from now on: the
 * one env.json records for kept environments (ts_env_load does), or the
 * configured one again for new ones.
 */
int ts_env_use_backend(struct ts_env *env, const char *name);
void ts_env_release(struct ts_env *env);

/* Marks a folder as a workdir twinstage made (and may empty). */
#define TS_WORKDIR_MARKER ".twinstage-workdir"

/*
 * Takes the workdir for this run: made (with the marker) when it does not
 * exist; an existing folder without the marker is refused (TS_EXIT_USAGE)
 * unless it is empty or holds only what twinstage makes. A workdir in use
 * by another twinstage process is refused (TS_EXIT_USAGE). The lock lasts
 * until release or exit.
 */
int ts_env_lock(struct ts_env *env);

/* `down --purge`: removes the whole workdir, which must carry the marker. */
int ts_env_purge(const struct ts_env *env);

/*
 * Loads env.json, and takes the backend it records (kept environments are
 * reached and removed by the backend that made them, whatever the
 * configuration says now). Returns 1 when environments exist, 0 when none do.
 */
int ts_env_load(struct ts_env *env);
int ts_env_save(struct ts_env *env);

/*
 * Chooses the ports of both sides and writes the state file; the clone
 * stage creates them.
 */
int ts_env_up(struct ts_env *env);
/*
 * A side whose port was picked (not set in the configuration) found it
 * taken when it started: another free port, saved. -1 when it was set.
 */
int ts_env_repick_port(struct ts_env *env, struct ts_side *side);
/*
 * Makes and starts the scratch server on the PostgreSQL of side `like`
 * (the one whose dump it restores), unless it runs already on it. For
 * guests it is a cluster on this machine when this machine's PostgreSQL is
 * the major `like` runs (scratch.on_host; progress says which).
 */
int ts_env_scratch_up(struct ts_env *env, const struct ts_side *like);
/*
 * The same, only where it is a cluster on this machine: 1 up here, 0 when
 * it would be a guest (nothing is made), -1 (error set).
 */
int ts_env_scratch_up_here(struct ts_env *env, const struct ts_side *like);
/* Mounts the pool and starts kept sides that are not running (after a reboot, say). */
int ts_env_ensure_running(struct ts_env *env);
/*
 * Removes both sides, their snapshots, the scratch server and env.json,
 * whatever state they are in, and unmounts the pool twinstage made.
 */
int ts_env_down(struct ts_env *env);

/*
 * A saved state of a side: a side that never runs, <workdir>/snapshots/NAME,
 * its data beside the sides' (on the pool), so a copy-on-write copy can
 * make it. Fill with ts_env_snapshot_side, free with ts_env_side_release.
 */
void ts_env_snapshot_side(const struct ts_env *env, const char *name, struct ts_side *side);
void ts_env_side_release(struct ts_side *side);
/* The names of the saved snapshots, sorted. */
struct strvec;
void ts_env_snapshots(const struct ts_env *env, struct strvec *names);
/* 0 when name can name a snapshot, else an error (TS_EXIT_USAGE). */
int ts_env_snapshot_name_ok(const char *name);

/*
 * The folder the side's data lives in when it is not <side>/data: on the
 * pool, or under /var/tmp when the server user cannot reach the workdir.
 * NULL when in place. The scratch server is never on the pool.
 */
char *ts_env_data_home(const struct ts_env *env, const struct ts_side *side);

/*
 * Connects to a side's database (dbname NULL: the project's) as the
 * superuser, with application_name app (NULL: "twinstage"), or sets an
 * error naming the side and returns NULL.
 */
PGconn *ts_env_connect_app(const struct ts_env *env, const struct ts_side *side, const char *dbname,
			   const char *app);
PGconn *ts_env_connect(const struct ts_env *env, const struct ts_side *side, const char *dbname);
/*
 * A session on side's project database for work that ends each transaction
 * it begins (the checks): one kept since the last ts_env_sessions_close, or a
 * new one (NULL, error set, when it cannot connect). ts_env_session_done
 * hands it back: kept when it is idle and DISCARD ALL resets it (settings,
 * role, prepared statements, temporary tables, advisory locks), else closed.
 * ts_env_sessions_close closes the kept ones: whatever runs next (a
 * migration, ALTER DATABASE ... SET) may change what a session starts with.
 */
PGconn *ts_env_session(struct ts_env *env, const struct ts_side *side);
void ts_env_session_done(struct ts_env *env, const struct ts_side *side, PGconn *conn);
void ts_env_sessions_close(struct ts_env *env);
/* Creates the project's database on a side; replace: drop it first if it is there. */
int ts_env_create_database(const struct ts_env *env, const struct ts_side *side, int replace);
/* Fills cp with the env of a side: PGHOST, PGPORT, PGDATABASE, PGUSER, DATABASE_URL. */
void ts_env_child_env(const struct ts_env *env, const struct ts_side *side,
		      struct child_process *cp);
/* Finds the server programs here (initdb, pg_ctl, ...): sets env->pg_bin. */
int ts_env_find_pg_bin(struct ts_env *env);
/* Makes cp run as the server user (as root: [environments] user), stdin closed, in the C.UTF-8 locale. */
void ts_env_run_as_server(const struct ts_env *env, struct child_process *cp);
/* The folder a side's cluster is in: <side>/data, or the folder it links to (new string). */
char *ts_env_side_data(const struct ts_side *side);
/* Pushes the path of a server tool (psql, pg_dump, ...) in env->pg_bin, else its name. */
void ts_env_push_tool(const struct ts_env *env, struct strvec *args, const char *tool);
/*
 * The same for the PostgreSQL of a side: on a stack, the stack's program,
 * and cp runs with the stack's /usr (run_command.h). A tool between two
 * sides (a dump of one restored into the other) is the target's: the
 * newer major reads the older.
 */
void ts_env_side_tool(const struct ts_env *env, const struct ts_side *side, struct child_process *cp,
		      const char *tool);

/* The superuser both sides are created with. */
#define TS_DB_USER "postgres"

extern const struct ts_env_ops ts_env_instance_ops;
extern const struct ts_env_ops ts_env_vm_ops;
extern const struct ts_env_ops ts_env_dualboot_ops;

#endif
