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

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static void child_die(int fd, const char *what)
{
	char msg[512];
	int n = snprintf(msg, sizeof(msg), "%s: %s", what, strerror(errno));

	if (n > 0 && write(fd, msg, (size_t)n) < 0)
		_exit(127);
	_exit(127);
}

static void apply_env(struct child_process *cp)
{
	for (size_t i = 0; i < cp->env.nr; i++) {
		char *e = cp->env.v[i], *eq = strchr(e, '=');

		if (eq) {
			*eq = '\0';
			setenv(e, eq + 1, 1);
			*eq = '=';
		} else {
			unsetenv(e);
		}
	}
}

int start_command(struct child_process *cp)
{
	int errpipe[2], cap[2] = { -1, -1 };
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
	fflush(NULL);
	parent = getpid();
	cp->pid = fork();
	if (cp->pid < 0) {
		close(errpipe[0]);
		close(errpipe[1]);
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
		if (cp->err_path) {
			fd = open(cp->err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
			if (fd < 0)
				child_die(errpipe[1], cp->err_path);
			dup2(fd, 2);
			close(fd);
		}
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
		apply_env(cp);
		execvp(cp->args.v[0], cp->args.v);
		child_die(errpipe[1], cp->args.v[0]);
	}
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
