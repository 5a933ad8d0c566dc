/*
 * main.c: a table from subcommand to cmd_* function (git's git.c), and
 * the signal handling every command shares. Nothing else.
 */
#include "cmd/cmd.h"
#include "core/error.h"
#include "core/util.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

static const struct cmd {
	const char *name;
	int (*fn)(int, char **);
	const char *summary;
} commands[] = {
	{ "rehearse", cmd_rehearse, "the whole rehearsal: build, migrate, check, report, tear down" },
	{ "init", cmd_init, "write a commented twinstage.ini" },
	{ "up", cmd_up, "build the production clone and the dev side, and keep them" },
	{ "status", cmd_status, "show the environments and what the dev side has applied" },
	{ "migrate", cmd_migrate, "apply the pending migrations on the dev side" },
	{ "replay", cmd_replay, "run each version's scenarios against both sides" },
	{ "report", cmd_report, "print the latest report again, in any format" },
	{ "capture", cmd_capture, "write the statements production runs as the live version's workload" },
	{ "lint", cmd_lint, "read migrations for what breaks or blocks the live version (no database)" },
	{ "diff", cmd_diff, "the schema changes between the production clone and the dev side" },
	{ "ddt", cmd_ddt, "the double dump test of a side: dump, restore, dump again, compare" },
	{ "equal", cmd_equal, "the data of both sides: untouched tables and each [equal OLD NEW]" },
	{ "snapshot", cmd_snapshot, "save the dev side as it is, by name (O(1) on a copy-on-write pool)" },
	{ "reset", cmd_reset, "return the dev side to before migrating, or to a snapshot" },
	{ "down", cmd_down, "stop and remove the environments" },
	{ "verify", cmd_verify, "does a rehearsal's manifest still hold for the files and production as they are?" },
	{ "promote", cmd_promote, "apply exactly what a passing rehearsal rehearsed to production" },
	{ "image", cmd_image, "build a guest image from a recipe, or inspect a disk (vm backend)" },
	{ "dualboot", cmd_dualboot, "a dual-boot station disk: build, select, show, write, grub-entries" },
};

static void usage(FILE *out)
{
	fprintf(out, "usage: twinstage <command> [options]\n\n"
		     "twinstage rehearses a database migration before it reaches production:\n"
		     "a production clone and a dev side, the migrations on the dev side only,\n"
		     "each application version against each schema, and an exit code to gate on.\n\n"
		     "commands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(out, "\n\"twinstage <command> --help\" describes a command's options.\n"
		     "exit codes: 0 compatible, 1 the gate failed, 2 usage or configuration error,\n"
		     "3 an environment could not be provisioned or reached\n");
}

static void on_signal(int sig)
{
	(void)sig;
	ts_interrupted = 1;
}

int main(int argc, char **argv)
{
	struct sigaction sa;
	const char *best = NULL;
	int bestd = 99;

	if (argc < 2) {
		usage(stderr);
		return TS_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
		printf("twinstage %s\n", TS_VERSION);
		return 0;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		int d;

		if (!strcmp(argv[1], commands[i].name))
			return commands[i].fn(argc - 1, argv + 1);
		d = edit_distance(argv[1], commands[i].name);
		if (d < bestd) {
			bestd = d;
			best = commands[i].name;
		}
	}
	fprintf(stderr, "twinstage: \"%s\" is not a command", argv[1]);
	if (bestd <= 3)
		fprintf(stderr, "; did you mean \"%s\"?", best);
	fprintf(stderr, "\n\"twinstage --help\" lists the commands\n");
	return TS_EXIT_USAGE;
}
