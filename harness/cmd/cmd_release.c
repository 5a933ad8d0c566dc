/*
 * cmd_release.c: `twinstage verify` and `twinstage promote`, the two
 * commands between a rehearsal and production.
 */
#include "cmd/cmd.h"
#include "core/error.h"
#include "release/promote.h"
#include "release/verify.h"

#include <stdio.h>

static const char verify_usage[] =
"usage: twinstage verify --manifest FILE [-c twinstage.ini] [--env FILE] [--dsn DSN] [--phase NAME]\n"
"\n"
"Says whether a rehearsal's manifest (<workdir>/reports/<run>/manifest.json,\n"
"written by every rehearsal) still holds: every file it names is as it was\n"
"(the migrations, the configuration and what it includes, the seed, the\n"
"scenarios), no migration was added, and production is as the rehearsal\n"
"found it: its tracking table, its schema, its server. Production is read in\n"
"a read-only session; it is the target promote writes ([target] dsn, --dsn or\n"
"TWINSTAGE_TARGET_DSN), else [source] dsn. Without either, only the files\n"
"are checked.\n"
"\n"
"  -m, --manifest FILE   the manifest (e.g. .twinstage/reports/latest/manifest.json)\n"
"  -c, --config FILE     configuration (default: twinstage.ini)\n"
"      --env FILE        take [environments] from FILE, as the rehearsal did\n"
"      --dsn DSN         production, without its password (TWINSTAGE_TARGET_DSN,\n"
"                        PGPASSWORD or ~/.pgpass hold that)\n"
"      --phase NAME      production must be where this phase of the rollout starts\n"
"\n"
"exit codes: 0 the manifest holds, 1 it does not (each reason is listed),\n"
"2 usage error or an unreadable manifest, 3 production could not be reached\n";

static const char promote_usage[] =
"usage: twinstage promote --manifest FILE [-c twinstage.ini] [--dsn DSN] [--phase NAME]\n"
"                         [--dry-run] [--lock-timeout 2s] [--retries 5] [--statement-timeout 1h] [-q]\n"
"\n"
"Applies to production exactly the migrations the rehearsal of FILE\n"
"rehearsed, and nothing else, as the rehearsal ran them: the tool's table\n"
"kept as the tool keeps it, batched backfills batch by batch. Refused unless\n"
"the rehearsal passed and its manifest still holds (see \"twinstage verify\").\n"
"Each statement that took a lock blocking writes when rehearsed runs under\n"
"lock_timeout and is tried again after a wait (250 ms, doubling) when it\n"
"times out; a transactional migration is rolled back and tried from its\n"
"start. It stops at the first failure and says where the tool's table is.\n"
"A record (promotion-<time>.json) is written beside the manifest.\n"
"\n"
"Production's connection string comes from --dsn, TWINSTAGE_TARGET_DSN or\n"
"[target] dsn, in that order; [source] dsn is only ever read.\n"
"\n"
"  -m, --manifest FILE       the manifest of a passing rehearsal\n"
"  -c, --config FILE         configuration (default: twinstage.ini)\n"
"      --dsn DSN             production, without its password\n"
"      --phase NAME          one release of a rollout; the phases before it must be in production\n"
"      --dry-run             print the plan, write nothing\n"
"      --lock-timeout T      how long a statement may wait for its lock (default 2s)\n"
"      --retries N           how often it is tried again (default 5)\n"
"      --statement-timeout T stop a statement after T (default: [gate] migration_timeout; 0: never)\n"
"  -q, --quiet               no progress lines\n"
"\n"
"exit codes: 0 promoted (or nothing to promote), 1 refused, or a migration\n"
"failed on production, 2 usage error, 3 production could not be reached\n";

static int need_manifest(const struct ts_opts *o, const char *cmd, const char *usage)
{
	if (o->manifest)
		return 0;
	fprintf(stderr, "twinstage %s: name the rehearsal's manifest with --manifest FILE\n%s", cmd, usage);
	return TS_EXIT_USAGE;
}

int cmd_verify(int argc, char **argv)
{
	struct ts_opts o;
	struct ts_verify v;
	struct ts_verify_opts vo;
	int done, code;

	code = cmd_parse_options(argc, argv, "verify", verify_usage, "config env manifest dsn phase help", &o,
				 &done);
	if (done)
		return code;
	if ((code = need_manifest(&o, "verify", verify_usage)))
		return code;
	vo = (struct ts_verify_opts){ o.manifest, o.config, o.env_file, o.dsn, o.phase };
	code = ts_verify_run(&vo, &v);
	if (code == TS_EXIT_USAGE || code == TS_EXIT_ENV)
		code = ts_error_print();
	else
		ts_verify_print(&v, o.manifest);
	ts_verify_free(&v);
	return code;
}

int cmd_promote(int argc, char **argv)
{
	struct ts_opts o;
	struct ts_promote_opts po;
	int done, code;

	code = cmd_parse_options(argc, argv, "promote", promote_usage,
				 "config env manifest dsn phase dry-run lock-timeout retries statement-timeout quiet help",
				 &o, &done);
	if (done)
		return code;
	if ((code = need_manifest(&o, "promote", promote_usage)))
		return code;
	po = (struct ts_promote_opts){
		.verify = { o.manifest, o.config, o.env_file, o.dsn, o.phase },
		.dry_run = o.dry_run,
		.lock_timeout_ms = o.lock_timeout_ms >= 0 ? o.lock_timeout_ms : 2000,
		.retries = o.retries >= 0 ? o.retries : 5,
		.statement_timeout_ms = o.statement_timeout_ms,
		.quiet = o.quiet,
	};
	return ts_promote(&po);
}
