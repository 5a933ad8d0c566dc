/*
 * cmd_options.c: the options all subcommands share, parsed in one place so
 * that -c means the same thing everywhere.
 */
#include "cmd/cmd.h"
#include "core/error.h"

#include <getopt.h>
#include <stdio.h>
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
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(o, 0, sizeof(*o));
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
