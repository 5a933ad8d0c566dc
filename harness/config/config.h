/*
 * config: twinstage.ini, read with inih.
 *
 * The file names the project, the source of production, the environment
 * backend, the application versions and the gate. Every error names
 * file:line; an unknown section or key suggests the nearest known name.
 * Paths in a file are relative to that file. The [environments] section
 * may come from another file (`include = envs/local.ini`, or `--env`).
 */
#ifndef TS_CONFIG_H
#define TS_CONFIG_H

#include <stddef.h>

#include "core/strvec.h"
#include "migrate/tools.h"

enum ts_gate_level { TS_GATE_OFF, TS_GATE_WARN, TS_GATE_FAIL };

struct ts_app {
	char *name;
	char *scenarios;	/* absolute folder, or NULL */
	char *command;		/* command line (split into words, no shell), or NULL */
	char *origin;		/* "file:line" of the section */
	/*
	 * workload = FOLDER: the statements `twinstage capture` wrote from
	 * production (absolute). Left out, workload/<name> beside the
	 * configuration, used when it exists; workload_given says it was set.
	 */
	char *workload;
	int workload_given;
	char *role;		/* role = NAME: the default @role of its statements, or NULL */
};

/* [equal OLD NEW]: OLD on the production clone holds the rows NEW holds on the dev side. */
struct ts_equal {
	char *old_table, *new_table;
	char **old_cols, **new_cols;	/* `columns = a:b, c`: the mapping, or NULL for all of OLD's */
	size_t n_cols;
	char *origin;		/* "file:line" of the section */
};

/*
 * [phase NAME]: one release of a multi-phase rollout (the four part
 * migration), in the order of the file.
 */
struct ts_phase {
	char *name;
	char *title;		/* title = ..., or NULL */
	struct strvec migrations;	/* as written: "1-2", "3", "V3__x.sql" */
	char *migrations_origin;	/* "file:line" of `migrations =` */
	char *command, *down;	/* with [project] tool: this release's command and its way back */
	struct strvec apps;	/* the versions that must work after it */
	struct ts_equal *equal;	/* equal = OLD NEW: must hold after it */
	size_t n_equal;
	char *origin;		/* "file:line" of the section */
};

struct ts_config {
	char *path;		/* absolute path of the main file */
	char *dir;		/* its folder: relative paths start here */

	char *name;		/* [project] name */
	char *migrations;	/* absolute folder */
	char *workdir;		/* absolute folder */
	char *dbname;		/* database name on both sides */
	char *tracking;		/* auto | golang-migrate | dbmate | flyway | twinstage */
	char *tracking_table;	/* the tool's table, when not its default name */
	/*
	 * [project] tool: migrations that are code, run by the team's own tool
	 * on the dev side ([migrate] command, its default when left out), and
	 * the way back ([migrate] down, NULL: the tool's default).
	 */
	enum ts_tool tool;
	char *tool_origin;	/* "file:line" of `tool =` */
	char *mig_command, *mig_down;
	char *mig_cwd;		/* where they run (absolute; default the configuration's folder) */
	struct strvec mig_env;	/* NAME=VALUE, more environment for them */

	char *seed;		/* [source] seed: absolute path, or NULL */
	char *dsn;		/* [source] dsn, or NULL: never printed as is */
	char *target_dsn;	/* [target] dsn: where `promote` writes, or NULL; never printed */
	struct strvec files_read;	/* this file, its includes and --env, as read (absolute) */

	char *backend;		/* [environments] backend */
	int prod_port, dev_port;	/* 0 = pick a free port */
	char *clone;		/* auto | cow | physical | logical */
	char *pool;		/* a copy-on-write folder the clusters live on, or NULL */
	char *pg_bin;		/* folder of initdb/pg_ctl, or NULL to find */
	char *os_user;		/* user that runs the servers when we are root */
	/* backend = vm */
	char *vm_uri;		/* libvirt connection URI */
	char *vm_image;		/* recipe of the guests' image (absolute) */
	char *vm_accel;		/* auto | kvm | tcg */
	/*
	 * ddt_server = guest: the double dump test restores into a third guest
	 * of the image; by default (host) into a cluster on this machine when
	 * its PostgreSQL is the guests' major.
	 */
	int ddt_in_guest;
	char *vm_remote_dir;	/* a remote libvirt host's folder for disks and images */
	int vm_memory;		/* MiB per guest */
	int vm_vcpus;
	int vm_boot_timeout;	/* seconds until PostgreSQL answers; 0: by accel */
	/*
	 * The dev side on another system (instance only): a stack recipe
	 * (absolute; stack.h), and how production's data reaches its major:
	 * "pg_upgrade" (the default) or "dump". NULL: the dev side runs on
	 * this machine's PostgreSQL, as production's clone does.
	 */
	char *dev_stack;
	/*
	 * The same on the vm backend: the dev guest's own image (absolute), a
	 * recipe of the next major; the dev guest is filled with the new
	 * major's pg_dump, run on this machine from dev_stack when it is set,
	 * else from a stack built from the image's suite and major.
	 */
	char *dev_image;
	/* dev_image, else dev_stack (not owned): the dev side runs the next major */
	const char *dev_next;
	char *upgrade;
	char *env_origin;	/* where [environments] came from, for messages */

	struct ts_app *apps;
	size_t n_apps;
	struct ts_equal *equal;
	size_t n_equal;
	struct ts_phase *phases;
	size_t n_phases;

	char *current, *next;	/* [rehearsal] */
	enum ts_gate_level forward_compat;	/* [gate] */
	enum ts_gate_level lint;	/* error-level lint findings: fail or only warn */
	double max_lock_ms;	/* blocking lock on an existing table held longer fails; 0: off */
	enum ts_gate_level ddt;	/* the double dump test (off: not run) */
	enum ts_gate_level rollback;	/* the down migrations (off: not run) */
	enum ts_gate_level undeclared;	/* rows a migration's UPDATE changed in columns it does not assign */
	double max_slowdown;	/* with dev_stack: a statement this many times slower on the dev side fails; 0: off */
	double max_stall_ms;	/* an application statement kept waiting longer by the migration fails; 0: off */
	int statement_timeout_ms;	/* a scenario statement is stopped after it (default 60 s); 0: none */
	int migration_timeout_ms;	/* a migration statement is stopped after it (default 1 h); 0: none */

	/* [load]: the live versions' scenarios run on the dev side while it migrates */
	int load;		/* enabled */
	int load_clients;
	int load_sample_ms;	/* 0: no sampling */
	int load_before_ms, load_after_ms;
	char *load_command;	/* the application's own load generator, or NULL */
};

/*
 * Reads path (and env_file over it when not NULL) into cfg. Returns 0, or
 * -1 with a TS_EXIT_USAGE error of the form "FILE:LINE: message".
 */
int ts_config_load(struct ts_config *cfg, const char *path, const char *env_file);
void ts_config_free(struct ts_config *cfg);
const struct ts_app *ts_config_app(const struct ts_config *cfg, const char *name);

#endif
