/*
 * cmd: the subcommands. Each cmd_<name> parses its own options, calls the
 * stages, and returns the exit code; main.c is only a table of them.
 */
#ifndef TS_CMD_H
#define TS_CMD_H

#include "core/version.h"

int cmd_rehearse(int argc, char **argv);
int cmd_init(int argc, char **argv);
int cmd_up(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_migrate(int argc, char **argv);
int cmd_replay(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_down(int argc, char **argv);
int cmd_lint(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_ddt(int argc, char **argv);
int cmd_equal(int argc, char **argv);
int cmd_snapshot(int argc, char **argv);
int cmd_reset(int argc, char **argv);
int cmd_image(int argc, char **argv);
int cmd_dualboot(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_promote(int argc, char **argv);
int cmd_capture(int argc, char **argv);

/* The options every command shares, parsed by cmd_parse_options. */
struct ts_opts {
	const char *config;
	const char *env_file;
	const char *format;
	int keep, quiet, force, purge, reuse;
	int load;		/* --load 1, --no-load -1 */
	const char *run_id;
	/* verify and promote */
	const char *manifest, *phase, *dsn;
	int dry_run;
	int lock_timeout_ms, retries, statement_timeout_ms;	/* -1 when not given */
	char **args;		/* operands, when "ARGS" is allowed */
	int n_args;
};

/*
 * Parses the options every command shares (-c, --env, --format, --keep,
 * --quiet, --force, --purge, --run, --help; verify's and promote's
 * --manifest, --phase, --dsn, --dry-run, --lock-timeout, --retries,
 * --statement-timeout), accepting only those named in
 * `allowed` (their long names, space-separated; "ARGS" lets
 * operands through to o->args). Returns 0 to go on, or an
 * exit code (0 after --help, 2 on a usage error) with *done set.
 */
int cmd_parse_options(int argc, char **argv, const char *cmd, const char *usage,
		      const char *allowed, struct ts_opts *o, int *done);

#endif
