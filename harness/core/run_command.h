/*
 * run_command: child processes described by a struct and started without a
 * shell (git's run-command.h). initdb, pg_ctl, psql, pg_dump and the
 * applications' own test commands all go through here.
 *
 *	struct child_process cp = CHILD_PROCESS_INIT;
 *	strvec_pushl(&cp.args, "pg_ctl", "-D", dir, "status", NULL);
 *	if (run_command(&cp) != 0) ...
 *
 * run_command returns the child's exit status (0..255), 128+N when it was
 * killed by signal N, or -1 (error slot set) when it could not be started.
 */
#ifndef TS_RUN_COMMAND_H
#define TS_RUN_COMMAND_H

#include <sys/types.h>
#include "core/strbuf.h"
#include "core/strvec.h"

struct child_process {
	struct strvec args;	/* argv; args.v[0] is looked up in PATH */
	struct strvec env;	/* "NAME=value" added, "NAME" removed */
	const char *dir;	/* working directory, or NULL */
	const char *out_path;	/* stdout+stderr appended to this file, or NULL */
	struct strbuf *capture;	/* stdout (and stderr) collected here, or NULL */
	const char *err_path;	/* stderr to this file instead (overrides the above) */
	/*
	 * stdin from / stdout to a pipe's end (a descriptor over 2, made
	 * O_CLOEXEC; 0: none), for one child's output read by another; the
	 * caller closes its own copy once both are started. stdout to a pipe
	 * leaves stderr where out_path says.
	 */
	int pipe_in, pipe_out;
	int no_stdin;		/* stdin from /dev/null */
	int quiet;		/* stdout and stderr to /dev/null */
	uid_t uid;		/* when run_as_user: drop to this user */
	gid_t gid;
	int run_as_user;
	/*
	 * A root folder of another system (a stack, stack.h), or NULL: the
	 * child runs in a mount namespace of its own where /usr (and with it
	 * /bin, /lib, the loader) and /etc/ld.so.cache are that root's, and
	 * every other path is the machine's. As another user than root, in a
	 * user namespace that maps that user to itself.
	 */
	const char *usr_root;
	pid_t pid;
	int capture_fd;
	int own_group;		/* a process group of its own, to signal it with its children */
	int outlive;		/* a session of its own, and it outlives twinstage (a tunnel) */
	int exited;		/* poll_command reaped it; status holds how */
	int status;
};

#define CHILD_PROCESS_INIT { .args = STRVEC_INIT, .env = STRVEC_INIT, .pid = -1, .capture_fd = -1 }

int start_command(struct child_process *cp);
int finish_command(struct child_process *cp);
/* 1 while the child runs, 0 once it has exited (finish_command then returns at once). */
int poll_command(struct child_process *cp);
int run_command(struct child_process *cp);
void child_process_clear(struct child_process *cp);
/*
 * The file a child runs for `name` with PATH `path` (NULL: a default):
 * a name with a slash when it may be run, else the first regular,
 * executable file of that name on the path; NULL when there is none.
 */
char *find_program(const char *name, const char *path);
/* "initdb -D /x" for messages: the argv joined with spaces. */
char *child_process_describe(const struct child_process *cp);

#endif
