/*
 * cmd_options.c: the options all subcommands share, parsed in one place so
 * that -c means the same thing everywhere.
 */
#include "cmd/cmd.h"
#include "core/error.h"
#include "core/util.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int allowed_opt(const char *allowed, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = allowed; (p = strstr(p, name)); p += n)
		if ((p == allowed || p[-1] == ' ') && (p[n] == ' ' || !p[n]))
			return 1;
	return 0;
}

int cmd_parse_options(int argc, char **argv, const char *cmd, const char *usage,
		      const char *allowed, struct ts_opts *o, int *done)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "env", required_argument, NULL, 'e' },
		{ "format", required_argument, NULL, 'f' },
		{ "keep", no_argument, NULL, 'k' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "force", no_argument, NULL, 'F' },
		{ "purge", no_argument, NULL, 'P' },
		{ "reuse", no_argument, NULL, 'R' },
		{ "run", required_argument, NULL, 'r' },
		{ "load", no_argument, NULL, 'L' },
		{ "no-load", no_argument, NULL, 'N' },
		{ "manifest", required_argument, NULL, 'm' },
		{ "phase", required_argument, NULL, 'p' },
		{ "dsn", required_argument, NULL, 'D' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "lock-timeout", required_argument, NULL, 'T' },
		{ "retries", required_argument, NULL, 'Y' },
		{ "statement-timeout", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(o, 0, sizeof(*o));
	o->lock_timeout_ms = o->retries = o->statement_timeout_ms = -1;
	*done = 0;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:f:qh", longopts, NULL)) != -1) {
		const char *name = NULL;

		for (const struct option *lo = longopts; lo->name; lo++)
			if (lo->val == c)
				name = lo->name;
		if (c == 'h') {
			printf("%s", usage);
			*done = 1;
			return 0;
		}
		if (c == '?' || c == ':' || !name || !allowed_opt(allowed, name)) {
			const char *bad = argv[optind - 1];

			if (c == ':')
				fprintf(stderr, "twinstage %s: option \"%s\" needs a value\n", cmd, bad);
			else
				fprintf(stderr, "twinstage %s: unknown option \"%s\"\n", cmd, bad);
			fprintf(stderr, "%s", usage);
			*done = 1;
			return TS_EXIT_USAGE;
		}
		switch (c) {
		case 'c': o->config = optarg; break;
		case 'e': o->env_file = optarg; break;
		case 'f': o->format = optarg; break;
		case 'k': o->keep = 1; break;
		case 'q': o->quiet = 1; break;
		case 'F': o->force = 1; break;
		case 'P': o->purge = 1; break;
		case 'R': o->reuse = 1; break;
		case 'r': o->run_id = optarg; break;
		case 'L': o->load = 1; break;
		case 'N': o->load = -1; break;
		case 'm': o->manifest = optarg; break;
		case 'p': o->phase = optarg; break;
		case 'D': o->dsn = optarg; break;
		case 'n': o->dry_run = 1; break;
		case 'T':
		case 'S':
			if (parse_duration_ms(optarg, c == 'T' ? &o->lock_timeout_ms : &o->statement_timeout_ms)) {
				fprintf(stderr, "twinstage %s: invalid value for --%s: \"%s\" (%s)\n", cmd, name, optarg,
					TS_DURATION_FORMS);
				*done = 1;
				return TS_EXIT_USAGE;
			}
			break;
		case 'Y': {
			char *end;
			long v = strtol(optarg, &end, 10);

			if (end == optarg || *end || v < 0 || v > 100) {
				fprintf(stderr, "twinstage %s: invalid value for --retries: \"%s\" (0 to 100)\n", cmd, optarg);
				*done = 1;
				return TS_EXIT_USAGE;
			}
			o->retries = (int)v;
			break;
		}
		}
	}
	if (allowed_opt(allowed, "ARGS")) {
		o->args = argv + optind;
		o->n_args = argc - optind;
	} else if (optind < argc) {
		fprintf(stderr, "twinstage %s: unexpected argument \"%s\"\n%s", cmd, argv[optind], usage);
		*done = 1;
		return TS_EXIT_USAGE;
	}
	return 0;
}
