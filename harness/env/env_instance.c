/*
 * env_instance.c: the embedded default backend. Each side is a PostgreSQL
 * cluster made with initdb and run with pg_ctl on its own port of
 * 127.0.0.1, with no Unix socket (paths under a deep workdir overflow the
 * 107-byte socket limit, and TCP is what the applications use anyway).
 *
 * Settings live in <data>/twinstage.conf, rewritten at every start, so a
 * cluster copied from the other side takes its own port. The servers run
 * with fsync off: a rehearsal never needs to survive a power cut, and it
 * makes seeding and restoring several times faster.
 *
 * As root, the servers run as [environments] user (postgres). When that
 * user cannot reach the workdir (a project under /root, mode 0700), the data
 * folder lives under /var/tmp and <workdir>/<side>/data links to it.
 */
#include "core/error.h"
#include "core/progress.h"
#include "core/run_command.h"
#include "core/strbuf.h"
#include "core/util.h"
#include "core/wrapper.h"
#include "env/env.h"
#include "env/tool.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *data_dir(const struct ts_side *side)
{
	return path_join(side->dir, "data");
}

static int give_to_server_user(struct ts_env *env, const char *path)
{
	if (env->home.as_user && chown(path, env->home.uid, env->home.gid))
		return ts_error_set(TS_EXIT_ENV, "could not change owner of \"%s\": %s",
				    path, strerror(errno));
	return 0;
}

/* Appends text to a file of the data folder, owned by the server user. */
static int append_conf(struct ts_env *env, const char *data, const char *name, const char *text,
		       const char *mode)
{
	char *path = path_join(data, name);
	FILE *fp = fopen(path, mode);
	int r = !fp || fputs(text, fp) < 0;

	if (fp && fclose(fp))
		r = 1;
	if (r)
		ts_error_set(TS_EXIT_ENV, "could not write \"%s\": %s", path, strerror(errno));
	else
		r = give_to_server_user(env, path);
	free(path);
	return r ? -1 : 0;
}

static const char include_line[] =
	"\n# added by twinstage: per-side settings, rewritten at each start\n"
	"include_if_exists = 'twinstage.conf'\n";

/*
 * Makes <side>/data ready to receive a cluster: a folder owned by the
 * server user, or a link to one in the data home (the pool, or /var/tmp
 * when the workdir is out of that user's reach). *out is the folder the
 * server is handed: the link's target, which the server user can reach
 * when it cannot reach the link.
 */
static int prepare_data_dir(struct ts_env *env, struct ts_side *side, char **out)
{
	char *data = data_dir(side), *home = ts_env_data_home(env, side);
	int r = -1;

	if (mkdir_p(side->dir, 0755))
		goto out;
	if (home) {
		char *elsewhere = path_join(home, side->name);
		char *parent = path_dirname(elsewhere);

		/* the folders above it stay open to the server user, the data does not */
		r = mkdir_p(parent, 0755) || mkdir_p(elsewhere, 0700) ||
		    give_to_server_user(env, elsewhere) ? -1 : 0;
		if (!r && symlink(elsewhere, data) && errno != EEXIST)
			r = ts_error_set(TS_EXIT_ENV, "could not link \"%s\": %s", data, strerror(errno));
		free(parent);
		free(data);
		data = elsewhere;
	} else {
		r = mkdir_p(data, 0700) || give_to_server_user(env, data) ? -1 : 0;
	}
out:
	free(home);
	if (r)
		free(data);
	else
		*out = data;
	return r;
}

static int fail_with_log(const char *what, const char *log)
{
	struct strbuf sb = STRBUF_INIT;
	const char *tail;

	ts_error_set(TS_EXIT_ENV, "%s", what);
	if (log && !strbuf_read_file(&sb, log) && sb.len) {
		strbuf_rtrim(&sb);
		tail = sb.buf + (sb.len > 600 ? sb.len - 600 : 0);
		ts_error_hint("last lines of %s:\n%s", log, tail);
	}
	strbuf_release(&sb);
	return -1;
}

static int instance_create(struct ts_env *env, struct ts_side *side)
{
	struct child_process cp = CHILD_PROCESS_INIT;
	char *data = NULL, *log;
	int r;

	if (ts_env_find_pg_bin(env) || prepare_data_dir(env, side, &data))
		return -1;
	log = path_join(side->dir, "initdb.log");
	unlink(log);
	ts_env_side_tool(env, side, &cp, "initdb");
	strvec_pushl(&cp.args, "-D", data, "--auth=trust", "--no-sync", NULL);
	for (size_t i = 0; i < env->initdb_args.nr; i++)
		strvec_push(&cp.args, env->initdb_args.v[i]);
	if (!env->initdb_args.nr)
		strvec_pushl(&cp.args, "-U", TS_DB_USER, "--encoding=UTF8", "--locale=C.UTF-8", NULL);
	ts_env_run_as_server(env, &cp);
	cp.out_path = log;
	r = run_command(&cp);
	child_process_clear(&cp);
	if (r) {
		char *what = xstrfmt("could not create the %s cluster in \"%s\" (initdb exited with %d)",
				     side->name, data, r);

		if (r > 0)
			fail_with_log(what, log);
		free(what);
		free(log);
		free(data);
		return -1;
	}
	r = append_conf(env, data, "postgresql.conf", include_line, "a");
	free(log);
	free(data);
	return r ? -1 : 0;
}

static int write_side_conf(struct ts_env *env, struct ts_side *side, const char *data)
{
	char *path = path_join(data, "twinstage.conf");
	char *text = xstrfmt("port = %d\n"
			     "listen_addresses = '127.0.0.1'\n"
			     "unix_socket_directories = ''\n"
			     "fsync = off\n"
			     "synchronous_commit = off\n"
			     "full_page_writes = off\n"
			     "max_connections = 100\n"
			     "%s"
			     "log_line_prefix = '%%m [%%p] %%q%%a '\n"
			     "cluster_name = 'twinstage-%s'\n"
			     "%s%s",
			     side->port, side == &env->dev && env->cfg->tool ? "" : "logging_collector = off\n",
			     side->name,
			     /*
			      * the dev side of a tool's rehearsal logs what the tool's
			      * sessions run (they ask for it: log_min_duration_statement),
			      * as JSON, which twinstage reads back (statement_log.h)
			      */
			     side == &env->dev && env->cfg->tool ?
			     "logging_collector = on\nlog_destination = 'stderr,jsonlog'\n"
			     "log_directory = 'log'\nlog_filename = 'twinstage.log'\n"
			     "log_rotation_age = 0\nlog_rotation_size = 0\nlog_timezone = 'UTC'\n" : "",
			     /* a restore target that is thrown away: no WAL for its loads */
			     side == &env->scratch ? "wal_level = minimal\nmax_wal_senders = 0\n"
						     "maintenance_work_mem = '256MB'\n"
						     "max_wal_size = '4GB'\nautovacuum = off\n" : "");
	int r = write_file(path, text, strlen(text));

	if (!r)
		r = give_to_server_user(env, path);
	free(text);
	free(path);
	return r;
}

/*
 * What postmaster.pid says: the pid (initdb's standalone backend writes it
 * negated), and on its 8th line the state, "ready" once the server accepts
 * connections. pid 0: no file.
 */
static pid_t postmaster_state(const struct ts_side *side, char *state, size_t len)
{
	char *data = data_dir(side);
	char *pidf = path_join(data, "postmaster.pid");
	struct strbuf sb = STRBUF_INIT;
	pid_t pid = 0;

	if (state)
		*state = '\0';
	if (!strbuf_read_file(&sb, pidf)) {
		const char *line = sb.buf;

		pid = (pid_t)abs(atoi(sb.buf));
		for (int i = 1; i < 8 && line; i++)
			if ((line = strchr(line, '\n')))
				line++;
		if (state && line)
			snprintf(state, len, "%.*s", (int)strcspn(line, " \n"), line);
	}
	strbuf_release(&sb);
	free(pidf);
	free(data);
	return pid;
}

static pid_t postmaster_pid(const struct ts_side *side)
{
	return postmaster_state(side, NULL, 0);
}

/*
 * 1 while pid runs. A postmaster that exited stays a zombie until whoever
 * adopted it reaps it (in a container, that can take seconds): that is
 * gone, too.
 */
static int alive(pid_t pid)
{
	char path[64], buf[256], *p;
	FILE *fp;
	int zombie = 0;

	if (pid <= 0 || (kill(pid, 0) && errno != EPERM))
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((fp = fopen(path, "r"))) {
		/* "pid (comm) S ...": the state follows the last ')' */
		if (fgets(buf, sizeof(buf), fp) && (p = strrchr(buf, ')')) && p[1] == ' ')
			zombie = p[2] == 'Z';
		fclose(fp);
	}
	return !zombie;
}

static int instance_running(struct ts_env *env, struct ts_side *side)
{
	pid_t pid = postmaster_pid(side);

	(void)env;
	return alive(pid);
}

/* 1 when the log grew a FATAL or PANIC line after offset `from`. */
static int log_says_fatal(const char *log, off_t from)
{
	struct strbuf sb = STRBUF_INIT;
	int fatal = 0;

	if (!strbuf_read_file(&sb, log) && (size_t)from <= sb.len)
		fatal = strstr(sb.buf + from, "FATAL:") || strstr(sb.buf + from, "PANIC:");
	strbuf_release(&sb);
	return fatal;
}

/*
 * Waits until the server says "ready" in postmaster.pid, looking every few
 * milliseconds (pg_ctl -w looks every 100 ms, which is most of the start
 * of a small cluster). 1 when it failed (its log says why), 0 when ready.
 */
static int wait_until_ready(struct ts_side *side, const char *log, off_t log_at)
{
	double t0 = now_ms();
	char state[32];

	while (now_ms() - t0 < 120000) {
		pid_t pid = postmaster_state(side, state, sizeof(state));

		if (pid && !strcmp(state, "ready"))
			return 0;
		if ((pid && !alive(pid)) || (!pid && log_says_fatal(log, log_at)))
			return 1;
		usleep(3000);
	}
	return 1;
}

static int instance_start(struct ts_env *env, struct ts_side *side)
{
	struct child_process cp = CHILD_PROCESS_INIT;
	char *data = ts_env_side_data(side), *log = path_join(side->dir, "server.log");
	off_t log_at;
	int r = -1;

	if (ts_env_find_pg_bin(env))
		goto out;
	if (instance_running(env, side)) {
		r = 0;
		goto out;
	}
	/* a port picked a while ago may have been taken since (by a client's socket, say) */
	if (port_in_use(side->port) && ts_env_repick_port(env, side)) {
		ts_error_set(TS_EXIT_ENV, "port %d for the %s side is already in use", side->port,
			     side->name);
		ts_error_hint("another server took it; run \"twinstage down\" and start again, or set [environments] %s_port",
			      side->name);
		goto out;
	}
	if (write_side_conf(env, side, data))
		goto out;
	/* the log may have been made by root in an earlier life of this side */
	if (!is_file(log)) {
		FILE *fp = fopen(log, "a");

		if (fp)
			fclose(fp);
	}
	give_to_server_user(env, log);
	log_at = file_size(log);
	/*
	 * The server's output goes to pg_ctl's, which is the log opened here
	 * (as root, before the drop to the server user): pg_ctl -l would open
	 * it as the server user, who may not reach the workdir.
	 */
	ts_env_side_tool(env, side, &cp, "pg_ctl");
	strvec_pushl(&cp.args, "-D", data, "-W", "start", NULL);
	ts_env_run_as_server(env, &cp);
	cp.out_path = log;
	r = run_command(&cp);
	if (!r)
		r = wait_until_ready(side, log, log_at);
	if (r > 0) {
		char *what = xstrfmt("could not start the %s server on port %d", side->name, side->port);

		fail_with_log(what, log);
		free(what);
		r = -1;
	}
out:
	child_process_clear(&cp);
	free(data);
	free(log);
	return r;
}

static int pg_ctl_stop(struct ts_env *env, struct ts_side *side, const char *mode)
{
	struct child_process cp = CHILD_PROCESS_INIT;
	char *data = ts_env_side_data(side);
	int r;

	pid_t pid = postmaster_pid(side);

	ts_env_side_tool(env, side, &cp, "pg_ctl");
	strvec_pushl(&cp.args, "-D", data, "-m", mode, "-W", "stop", NULL);
	ts_env_run_as_server(env, &cp);
	cp.quiet = 1;
	r = run_command(&cp);
	/* gone when its pid file is (a shutdown checkpoint first, with fast) */
	for (double t0 = now_ms(); !r && alive(pid) && postmaster_pid(side) == pid; usleep(3000))
		if (now_ms() - t0 > 60000)
			r = 1;
	child_process_clear(&cp);
	free(data);
	return r;
}

static int instance_stop(struct ts_env *env, struct ts_side *side)
{
	if (!instance_running(env, side))
		return 0;
	if (ts_env_find_pg_bin(env))
		return -1;
	if (pg_ctl_stop(env, side, "fast"))
		return ts_error_set(TS_EXIT_ENV, "could not stop the %s server", side->name);
	return 0;
}

static int instance_destroy(struct ts_env *env, struct ts_side *side)
{
	char *real;
	int r;

	if (instance_running(env, side)) {
		pid_t pid = postmaster_pid(side);

		if (ts_env_find_pg_bin(env) || pg_ctl_stop(env, side, "immediate")) {
			/* pg_ctl is gone or failed: the postmaster still has to go */
			ts_error_clear();
			kill(pid, SIGKILL);
		}
		for (int i = 0; i < 200 && alive(pid); i++)
			usleep(50000);
	}
	real = ts_env_side_data(side);
	/* a process that just died may still have had a file being written */
	for (int i = 0; (r = rm_rf(real)) && i < 5; i++)
		usleep(200000);
	if (!r) {
		/* the folders above it in the data home, once they are empty */
		char *home = ts_env_data_home(env, side);
		char *parent = path_dirname(real);

		while (home && strlen(parent) >= strlen(home) && !strncmp(parent, home, strlen(home)) &&
		       !rmdir(parent)) {
			char *up = path_dirname(parent);

			free(parent);
			parent = up;
		}
		free(parent);
		free(home);
	}
	if (!r)
		r = rm_rf(side->dir);
	free(real);
	return r;
}

/*
 * cp -a of a folder's contents: --reflink=always for a copy-on-write copy
 * (it fails where the filesystem cannot), else --reflink=auto, with
 * progress (a full copy is O(size)).
 */
static int copy_tree(struct ts_env *env, const char *from, const char *to, int cow, const char *what)
{
	struct child_process cp = CHILD_PROCESS_INIT;
	struct ts_progress p = { .what = what, .probe = ts_progress_dir_probe, .arg = (void *)to,
				 .quiet = env->quiet };
	char *from_dot = path_join(from, ".");
	char *msg = xstrfmt("could not copy \"%s\" to \"%s\"", from, to);
	int r;

	strvec_pushl(&cp.args, "cp", "-a", cow ? "--reflink=always" : "--reflink=auto", from_dot, to, NULL);
	if (!cow)
		p.total = ts_dir_bytes(from);
	r = ts_tool_start(env, &cp, "copy.log");
	if (!r) {
		ts_progress_watch(&p, &cp);
		r = ts_tool_finish(&cp, TS_EXIT_ENV, msg);
	}
	if (r && cow)
		ts_error_hint("the copy-on-write copy needs XFS with reflink=1 or btrfs; set clone = physical for a full copy");
	free(from_dot);
	free(msg);
	return r;
}

static int instance_snapshot(struct ts_env *env, struct ts_side *from, struct ts_side *to, int cow)
{
	char *src = NULL, *dst = NULL;
	int r = -1, was_running = instance_running(env, from);

	if (instance_stop(env, from))
		return -1;
	if (instance_destroy(env, to) || prepare_data_dir(env, to, &dst))
		goto out;
	src = ts_env_side_data(from);
	if (!is_dir(src)) {
		ts_error_set(TS_EXIT_ENV, "the %s side has no data to copy (\"%s\")", from->name, src);
		goto out;
	}
	{
		/* copy the contents, keeping to's folder (or link target) */
		char *real_dst = ts_env_side_data(to);
		char *what = xstrfmt("copying %s to %s", from->name, to->name);

		r = copy_tree(env, src, real_dst, cow, what);
		free(what);
		free(real_dst);
	}
out:
	if (was_running && instance_start(env, from))
		r = -1;
	free(src);
	free(dst);
	return r;
}

/*
 * A physical copy of a running server: pg_basebackup into an empty data
 * folder, as the server user, with no WAL sent on after it (no -R). Then
 * the settings of a side: the include of twinstage.conf (a server packaged
 * by Debian keeps postgresql.conf in /etc, so there may be none) and a
 * pg_hba.conf that lets the local superuser in, as initdb --auth=trust does.
 */
static int instance_receive(struct ts_env *env, struct ts_side *side, struct child_process *cp,
			    uint64_t total)
{
	struct ts_progress p = { .what = "copying the source's server (pg_basebackup)", .total = total,
				 .probe = ts_progress_dir_probe, .quiet = env->quiet };
	char *data = NULL, *real = NULL;
	int r = -1;

	if (ts_env_find_pg_bin(env) || instance_destroy(env, side) || prepare_data_dir(env, side, &data)) {
		child_process_clear(cp);
		goto out;
	}
	real = ts_env_side_data(side);
	p.arg = real;
	ts_env_side_tool(env, side, cp, "pg_basebackup");
	strvec_pushl(&cp->args, "-D", real, "-Fp", "-X", "stream", "-c", "fast", "--no-sync", NULL);
	ts_env_run_as_server(env, cp);
	if (ts_tool_start(env, cp, "basebackup.log"))
		goto out;
	ts_progress_watch(&p, cp);
	if (ts_tool_finish(cp, TS_EXIT_ENV, "pg_basebackup of the source failed"))
		goto out;
	{
		char *sig = path_join(real, "standby.signal");

		unlink(sig);
		free(sig);
	}
	r = append_conf(env, real, "postgresql.conf", include_line, "a") ||
	    append_conf(env, real, "pg_hba.conf",
			"# written by twinstage: the superuser from this machine only\n"
			"local all all trust\n"
			"host all all 127.0.0.1/32 trust\n"
			"host all all ::1/128 trust\n", "w") ? -1 : 0;
out:
	free(real);
	free(data);
	return r;
}

static char *instance_statement_log(struct ts_env *env, struct ts_side *side)
{
	char *data = ts_env_side_data(side), *p = xstrfmt("%s/log/twinstage.json", data);

	(void)env;
	free(data);
	return p;
}

const struct ts_env_ops ts_env_instance_ops = {
	.statement_log = instance_statement_log,
	.name = "instance",
	.create = instance_create,
	.start = instance_start,
	.stop = instance_stop,
	.destroy = instance_destroy,
	.running = instance_running,
	.snapshot = instance_snapshot,
	.receive = instance_receive,
};
