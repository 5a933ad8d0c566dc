/*
 * run_command.c: fork + execvp with an argv array, never a shell, so no
 * value from a config file can ever be interpreted as shell syntax.
 *
 * When twinstage runs as root, PostgreSQL's tools refuse to run (initdb:
 * "cannot be run as root"), so a child may be asked to drop to another
 * user; the drop happens between fork and exec, in the child only.
 */
#include "core/run_command.h"
#include "core/error.h"
#include "core/strbuf.h"
#include "core/strvec.h"
#include "core/wrapper.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/*
 * Between fork and exec the child of a process with threads (the load's
 * clients, the samplers) may only make async-signal-safe calls: another
 * thread may have held malloc's lock at the fork, and the child would
 * wait for it forever. So the environment and the program's path are
 * made before the fork, and the child only opens, duplicates, changes
 * its user and directory, and execs.
 */
/* Appends s to the message at *len, as far as it fits (no allocation, no stdio). */
static void child_add(char *msg, size_t size, size_t *len, const char *s)
{
	while (*s && *len + 1 < size)
		msg[(*len)++] = *s++;
	msg[*len] = '\0';
}

/* "what: why", in one write: the parent reads the pipe once. */
static void child_die(int fd, const char *what)
{
	const char *why = strerrordesc_np(errno);
	char msg[512];
	size_t len = 0;

	child_add(msg, sizeof(msg), &len, what);
	child_add(msg, sizeof(msg), &len, ": ");
	child_add(msg, sizeof(msg), &len, why ? why : "error");
	if (write(fd, msg, len) < 0)
		_exit(127);
	_exit(127);
}

/* Whether entry "NAME=..." (or "NAME") names the variable of `e` ("NAME=value"). */
static int same_name(const char *entry, const char *e)
{
	size_t n = strcspn(entry, "=");

	return !strncmp(entry, e, n) && e[n] == '=';
}

/* Our environment with cp->env applied (NAME=VALUE sets, NAME alone unsets), into store. */
static void child_environ(const struct child_process *cp, struct strvec *store)
{
	for (char **e = environ; e && *e; e++) {
		int replaced = 0;

		for (size_t i = 0; i < cp->env.nr && !replaced; i++)
			replaced = same_name(cp->env.v[i], *e);
		if (!replaced)
			strvec_push(store, *e);
	}
	for (size_t i = 0; i < cp->env.nr; i++) {
		const char *eq = strchr(cp->env.v[i], '=');
		int later = 0;

		/* the last word on a name wins (a set or an unset), as setenv after setenv did */
		for (size_t k = i + 1; eq && k < cp->env.nr && !later; k++)
			later = strcspn(cp->env.v[k], "=") == (size_t)(eq - cp->env.v[i]) &&
				!strncmp(cp->env.v[k], cp->env.v[i], (size_t)(eq - cp->env.v[i]));
		if (eq && !later)
			strvec_push(store, cp->env.v[i]);
	}
}

char *find_program(const char *name, const char *path)
{
	if (strchr(name, '/'))
		return access(name, X_OK) ? NULL : xstrdup(name);
	if (!path)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (const char *p = path;;) {
		size_t n = strcspn(p, ":");
		char *full = n ? xstrfmt("%.*s/%s", (int)n, p, name) : xstrfmt("./%s", name);
		struct stat st;

		/* a regular file we may run (execvp passes over folders of that name too) */
		if (!stat(full, &st) && S_ISREG(st.st_mode) && !access(full, X_OK))
			return full;
		free(full);
		if (!p[n])
			break;
		p += n + 1;
	}
	return NULL;
}

static int write_proc(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	int r = fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text) ? -1 : 0;

	if (fd >= 0)
		close(fd);
	return r;
}

/* What a child with usr_root needs, made before the fork. */
struct usr_root {
	char *usr, *cache;	/* <root>/usr, <root>/etc/ld.so.cache */
	char *uid_map, *gid_map;	/* "uid uid 1": as another user than root, a user namespace */
};

/* Made before the fork: the child only calls what is async-signal-safe. */
static void usr_root_prepare(const char *root, struct usr_root *u)
{
	u->usr = xstrfmt("%s/usr", root);
	u->cache = xstrfmt("%s/etc/ld.so.cache", root);
	u->uid_map = geteuid() ? xstrfmt("%u %u 1\n", (unsigned)geteuid(), (unsigned)geteuid()) : NULL;
	u->gid_map = geteuid() ? xstrfmt("%u %u 1\n", (unsigned)getegid(), (unsigned)getegid()) : NULL;
}

static void usr_root_clear(struct usr_root *u)
{
	free(u->usr);
	free(u->cache);
	free(u->uid_map);
	free(u->gid_map);
	memset(u, 0, sizeof(*u));
}

/*
 * In the child: a mount namespace where root's /usr and ld.so.cache stand
 * in for the machine's (merged /usr: /bin, /lib and /lib64 are links into
 * it). The mounts are private, gone with the namespace's last process.
 */
static int enter_usr_root(const struct usr_root *u)
{
	if (u->uid_map) {
		if (unshare(CLONE_NEWUSER | CLONE_NEWNS) || write_proc("/proc/self/setgroups", "deny") ||
		    write_proc("/proc/self/uid_map", u->uid_map) || write_proc("/proc/self/gid_map", u->gid_map))
			return -1;
	} else if (unshare(CLONE_NEWNS)) {
		return -1;
	}
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
	    mount(u->usr, "/usr", NULL, MS_BIND | MS_REC, NULL) ||
	    mount(u->cache, "/etc/ld.so.cache", NULL, MS_BIND, NULL))
		return -1;
	return 0;
}

/*
 * The program execve runs: a name with a slash as it is, else the first
 * of that name on the child's PATH (its env's, else ours). A name found
 * nowhere is left as it is: execve then fails with ENOENT, and the child
 * says so.
 */
static char *child_program(const char *name, char *const *envp)
{
	const char *path = NULL;
	char *found;

	if (strchr(name, '/'))
		return xstrdup(name);
	for (char *const *e = envp; e && *e && !path; e++)
		if (!strncmp(*e, "PATH=", 5))
			path = *e + 5;
	found = find_program(name, path);
	return found ? found : xstrdup(name);
}

int start_command(struct child_process *cp)
{
	int errpipe[2], cap[2] = { -1, -1 };
	struct strvec envp = STRVEC_INIT;
	struct usr_root root = { 0 };
	char *program;
	pid_t parent;
	char buf[600];
	ssize_t n;

	if (!cp->args.nr)
		return ts_error_set(TS_EXIT_ENV, "no command to run");
	if (pipe2(errpipe, O_CLOEXEC))
		return ts_error_set(TS_EXIT_ENV, "could not create pipe: %s", strerror(errno));
	if (cp->capture && pipe2(cap, O_CLOEXEC)) {
		close(errpipe[0]);
		close(errpipe[1]);
		return ts_error_set(TS_EXIT_ENV, "could not create pipe: %s", strerror(errno));
	}
	child_environ(cp, &envp);
	program = child_program(cp->args.v[0], envp.v);
	if (cp->usr_root)
		usr_root_prepare(cp->usr_root, &root);
	fflush(NULL);
	parent = getpid();
	cp->pid = fork();
	if (cp->pid < 0) {
		close(errpipe[0]);
		close(errpipe[1]);
		free(program);
		strvec_clear(&envp);
		usr_root_clear(&root);
		return ts_error_set(TS_EXIT_ENV, "could not fork: %s", strerror(errno));
	}
	if (cp->pid == 0) {
		int fd;

		signal(SIGPIPE, SIG_DFL);
		if (cp->no_stdin || cp->quiet || cp->capture || cp->out_path) {
			fd = open("/dev/null", O_RDONLY);
			if (fd >= 0) {
				dup2(fd, 0);
				close(fd);
			}
		}
		if (cp->capture) {
			dup2(cap[1], 1);
			dup2(cap[1], 2);
		} else if (cp->out_path) {
			fd = open(cp->out_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
			if (fd < 0)
				child_die(errpipe[1], cp->out_path);
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		} else if (cp->quiet) {
			fd = open("/dev/null", O_WRONLY);
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		if (cp->pipe_in > 2)
			dup2(cp->pipe_in, 0);
		if (cp->pipe_out > 2)
			dup2(cp->pipe_out, 1);
		if (cp->err_path) {
			fd = open(cp->err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
			if (fd < 0)
				child_die(errpipe[1], cp->err_path);
			dup2(fd, 2);
			close(fd);
		}
		if (cp->usr_root && enter_usr_root(&root))
			child_die(errpipe[1], "could not enter the stack's root (a mount namespace)");
		if (cp->dir && chdir(cp->dir))
			child_die(errpipe[1], cp->dir);
		if (cp->run_as_user) {
			if (setgroups(0, NULL) || setgid(cp->gid) || setuid(cp->uid))
				child_die(errpipe[1], "could not drop privileges");
		}
		/*
		 * A child dies with twinstage: an initdb orphaned by a killed run
		 * would go on writing into a folder `down` is removing. (Set after
		 * the privilege drop, which clears it.) Servers are not affected:
		 * pg_ctl starts them in a session of their own.
		 */
		if (cp->outlive)
			setsid();
		else
			prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (cp->own_group && !cp->outlive)
			setpgid(0, 0);
		if (getppid() != parent)
			_exit(127);
		{
			static char *const no_env[] = { NULL };

			execve(program, cp->args.v, envp.v ? envp.v : no_env);
		}
		child_die(errpipe[1], cp->args.v[0]);
	}
	free(program);
	strvec_clear(&envp);
	usr_root_clear(&root);
	close(errpipe[1]);
	if (cp->capture) {
		close(cap[1]);
		cp->capture_fd = cap[0];
	}
	do
		n = read(errpipe[0], buf, sizeof(buf) - 1);
	while (n < 0 && errno == EINTR);
	close(errpipe[0]);
	if (n > 0) {
		int status;

		buf[n] = '\0';
		if (cp->capture_fd >= 0) {
			close(cp->capture_fd);
			cp->capture_fd = -1;
		}
		waitpid(cp->pid, &status, 0);
		cp->pid = -1;
		return ts_error_set(TS_EXIT_ENV, "could not run %s", buf);
	}
	return 0;
}

int finish_command(struct child_process *cp)
{
	int status;

	if (cp->capture_fd >= 0) {
		char buf[8192];
		ssize_t n;

		while ((n = read(cp->capture_fd, buf, sizeof(buf))) != 0) {
			if (n < 0) {
				if (errno == EINTR)
					continue;
				break;
			}
			strbuf_add(cp->capture, buf, (size_t)n);
		}
		close(cp->capture_fd);
		cp->capture_fd = -1;
	}
	if (cp->exited) {
		status = cp->status;
		cp->exited = 0;
	} else {
		while (waitpid(cp->pid, &status, 0) < 0) {
			if (errno != EINTR)
				return ts_error_set(TS_EXIT_ENV, "waitpid: %s", strerror(errno));
		}
	}
	cp->pid = -1;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 255;
}

int poll_command(struct child_process *cp)
{
	pid_t p;

	if (cp->exited || cp->pid <= 0)
		return 0;
	do
		p = waitpid(cp->pid, &cp->status, WNOHANG);
	while (p < 0 && errno == EINTR);
	if (p == 0)
		return 1;
	cp->exited = 1;
	if (p < 0)
		cp->status = 255 << 8;	/* gone without a status: a failure */
	return 0;
}

int run_command(struct child_process *cp)
{
	if (start_command(cp))
		return -1;
	return finish_command(cp);
}

void child_process_clear(struct child_process *cp)
{
	strvec_clear(&cp->args);
	strvec_clear(&cp->env);
}

char *child_process_describe(const struct child_process *cp)
{
	struct strbuf sb = STRBUF_INIT;

	for (size_t i = 0; i < cp->args.nr; i++) {
		if (i)
			strbuf_addch(&sb, ' ');
		strbuf_addstr(&sb, cp->args.v[i]);
	}
	return strbuf_detach(&sb);
}
