/*
 * cmd_capture.c: `twinstage capture --app NAME [--log FILE ...]`, the
 * statements production ran, written as the app's workload.
 */
#include "cmd/cmd.h"
#include "config/config.h"
#include "core/error.h"
#include "core/strbuf.h"
#include "core/strvec.h"
#include "core/util.h"
#include "core/wrapper.h"
#include "workload/capture.h"
#include "workload/pglog.h"
#include "workload/pgss.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char capture_usage[] =
"usage: twinstage capture --app NAME [--log FILE ...] [options]\n"
"\n"
"Writes the statements the live version runs in production as scenario\n"
"files of its workload folder ([app NAME] workload =, default\n"
"workload/NAME beside the configuration): workload/NAME/captured.sql, made\n"
"or replaced whole. `twinstage rehearse` then runs each one on the\n"
"production clone and on the dev side: with its parameters it must give\n"
"the same rows on both (@expect same); without them it must be prepared\n"
"and planned (@expect prepares). Statements of one shape (libpg_query's\n"
"fingerprint) are one, with production's calls (@calls) and role (@role).\n"
"\n"
"Without --log it reads pg_stat_statements of [source] dsn, in a read-only\n"
"session. With --log it reads server logs: csvlog (.csv), jsonlog (.json)\n"
"or stderr with --log-prefix, from log_statement = all or\n"
"log_min_duration_statement = 0, the simple and the extended protocol.\n"
"\n"
"@params are production's values: review the file before committing it,\n"
"or use --no-params to keep only the normalized statements.\n"
"\n"
"  -c, --config FILE       configuration (default: twinstage.ini)\n"
"      --app NAME          the version whose statements these are (an [app NAME])\n"
"      --log FILE          a server log (repeatable); without it, pg_stat_statements\n"
"      --log-prefix P      log_line_prefix of a stderr log (default '%m [%p] %q%u@%d ')\n"
"      --user ROLE         only statements of this role\n"
"      --application NAME  only statements of this application_name (logs)\n"
"      --database NAME     only this database's (default: [source] dsn's, or [project] database)\n"
"      --min-calls N       only statements run at least N times\n"
"      --since TIME        logs: only from TIME (YYYY-MM-DD HH:MM[:SS], the log's zone)\n"
"      --until TIME        logs: only until TIME\n"
"      --samples K         parameter sets kept per statement (default 3)\n"
"      --no-params         no production values in the files: normalized text only\n"
"  -o, --output DIR        write into DIR instead of the app's workload folder\n"
"  -q, --quiet             no summary\n"
"\n"
"exit codes: 0 written, 2 usage error or a file that is not a server log,\n"
"3 the source could not be reached or has no pg_stat_statements\n";

static int bad_value(const char *opt, const char *v, const char *want)
{
	fprintf(stderr, "twinstage capture: %s \"%s\": %s\n", opt, v, want);
	return TS_EXIT_USAGE;
}

static int parse_count(const char *opt, const char *v, long min, long *out)
{
	char *end;
	long n = strtol(v, &end, 10);

	if (end == v || *end || n < min)
		return bad_value(opt, v, min ? "expected a whole number of at least 1" : "expected a whole number");
	*out = n;
	return 0;
}

int cmd_capture(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "env", required_argument, NULL, 'e' },
		{ "app", required_argument, NULL, 'a' },
		{ "log", required_argument, NULL, 'l' },
		{ "log-prefix", required_argument, NULL, 'P' },
		{ "user", required_argument, NULL, 'u' },
		{ "application", required_argument, NULL, 'A' },
		{ "database", required_argument, NULL, 'd' },
		{ "min-calls", required_argument, NULL, 'M' },
		{ "since", required_argument, NULL, 's' },
		{ "until", required_argument, NULL, 'U' },
		{ "samples", required_argument, NULL, 'K' },
		{ "no-params", no_argument, NULL, 'N' },
		{ "output", required_argument, NULL, 'o' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ts_capture_opts co = { .samples = 3 };
	struct strvec logs = STRVEC_INIT;
	const char *config = "twinstage.ini", *env_file = NULL, *app_name = NULL, *out_dir = NULL;
	struct ts_config cfg;
	struct ts_capture cap;
	const struct ts_app *app;
	char *dir = NULL, *written = NULL, *source = NULL, *database = NULL;
	long n, kept;
	int c, quiet = 0, code = 0;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:o:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': config = optarg; break;
		case 'e': env_file = optarg; break;
		case 'a': app_name = optarg; break;
		case 'l': strvec_push(&logs, optarg); break;
		case 'P': co.log_prefix = optarg; break;
		case 'u': co.user = optarg; break;
		case 'A': co.application = optarg; break;
		case 'd': co.database = optarg; break;
		case 'M': code = parse_count("--min-calls", optarg, 0, &co.min_calls); break;
		case 'K':
			code = parse_count("--samples", optarg, 0, &n);
			co.samples = (int)(n > 1000 ? 1000 : n);
			break;
		case 's':
		case 'U':
			if (ts_capture_time(optarg) < 0)
				code = bad_value(c == 's' ? "--since" : "--until", optarg,
						 "expected YYYY-MM-DD HH:MM[:SS]");
			else if (c == 's')
				co.since = ts_capture_time(optarg);
			else
				co.until = ts_capture_time(optarg);
			break;
		case 'N': co.no_params = 1; break;
		case 'o': out_dir = optarg; break;
		case 'q': quiet = 1; break;
		case 'h':
			printf("%s", capture_usage);
			strvec_clear(&logs);
			return 0;
		case ':':
			fprintf(stderr, "twinstage capture: option \"%s\" needs a value\n%s", argv[optind - 1], capture_usage);
			code = TS_EXIT_USAGE;
			break;
		default:
			fprintf(stderr, "twinstage capture: unknown option \"%s\"\n%s", argv[optind - 1], capture_usage);
			code = TS_EXIT_USAGE;
			break;
		}
		if (code) {
			strvec_clear(&logs);
			return code;
		}
	}
	if (optind < argc || !app_name) {
		fprintf(stderr, "twinstage capture: %s\n%s", !app_name ? "name the version with --app NAME" :
			"unexpected operand; logs are given with --log FILE", capture_usage);
		strvec_clear(&logs);
		return TS_EXIT_USAGE;
	}
	if (!logs.nr && (co.application || co.since || co.until)) {
		fprintf(stderr, "twinstage capture: %s needs --log FILE: pg_stat_statements keeps neither application names nor times\n",
			co.application ? "--application" : co.since ? "--since" : "--until");
		strvec_clear(&logs);
		return TS_EXIT_USAGE;
	}
	if (co.no_params && co.samples != 3)
		fprintf(stderr, "twinstage capture: --samples does not matter with --no-params (no values are kept)\n");
	if (ts_config_load(&cfg, config, env_file)) {
		strvec_clear(&logs);
		return ts_error_print();
	}
	if (!(app = ts_config_app(&cfg, app_name))) {
		ts_error_set(TS_EXIT_USAGE, "%s: no [app %s] to capture for", cfg.path, app_name);
		ts_error_hint("add a section [app %s] (workload = FOLDER is where its statements go)", app_name);
		code = ts_error_print();
		goto out;
	}
	dir = out_dir ? path_absolute(out_dir) : xstrdup(app->workload);
	/* a log holds every database's statements: the source's are kept */
	database = logs.nr && !co.database ? ts_pgss_source_database(&cfg) : NULL;
	ts_capture_init(&cap, &co, logs.nr ? (co.database ? co.database : database) : co.database);
	if (!logs.nr) {
		code = ts_pgss_capture(&cfg, &cap, &source) ? ts_error_print() : 0;
		if (!code) {
			char *from = xstrfmt("pg_stat_statements of %s", source);

			free(source);
			source = from;
		}
	} else {
		for (size_t i = 0; i < logs.nr && !code; i++)
			if (ts_pglog_capture(logs.v[i], &cap))
				code = ts_error_print();
		if (!code) {
			char *from = xstrfmt("the server log%s %s%s", logs.nr == 1 ? "" : "s", logs.v[0],
					     logs.nr > 1 ? " and more" : "");

			source = from;
		}
	}
	if (!code) {
		kept = ts_capture_write(&cap, dir, app_name, source, &written);
		if (kept < 0) {
			code = ts_error_print();
		} else if (!quiet) {
			fprintf(stderr, "twinstage capture: %s from %s: %ld statement%s written to %s\n", app_name,
				source, kept, kept == 1 ? "" : "s", written);
			ts_capture_summary(&cap, kept, stderr);
			if (!co.no_params)
				fprintf(stderr, "  @params are production's values: review the file before committing it (--no-params keeps none)\n");
		}
	}
	ts_capture_free(&cap);
out:
	free(written);
	free(source);
	free(database);
	free(dir);
	strvec_clear(&logs);
	ts_config_free(&cfg);
	return code;
}
