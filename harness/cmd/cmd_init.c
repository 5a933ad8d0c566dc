/*
 * cmd_init.c: `twinstage init` writes a commented twinstage.ini to start from.
 */
#include "cmd/cmd.h"
#include "core/error.h"
#include "core/util.h"

#include <stdio.h>
#include <string.h>

static const char usage[] =
"usage: twinstage init [-c twinstage.ini] [--force]\n"
"\n"
"Writes a commented configuration file to edit. Refuses to overwrite an\n"
"existing one unless --force is given.\n";

/* The commented twinstage.ini it writes. */
static const char ts_config_template[] =
"; twinstage.ini: what to rehearse, and where.\n"
"; Paths are relative to this file. Run `twinstage rehearse` next to it.\n"
"\n"
"[project]\n"
"name = myapp                   ; also the database name on both sides\n"
"migrations = migrations        ; Flyway, golang-migrate, dbmate, Prisma or numbered files\n"
"workdir = .twinstage           ; state, logs, reports: twinstage's own folder (never the project's)\n"
"; tracking = auto              ; whose tracking table: golang-migrate, dbmate, flyway, prisma, twinstage\n"
"; tool = django                 ; or the team's own migration tool runs: alembic | django | rails |\n"
";                              ; sqitch | command (then migrations = is only linted and hashed)\n"
"\n"
"; [migrate]                     ; with a tool: its commands, run on the dev side only\n"
"; command = python3 manage.py migrate --noinput   ; the tool's default when left out\n"
"; down = python3 manage.py migrate shop 0007       ; the way back (default: the tool's own, to\n"
";                              ; the state production is in)\n"
"; cwd = .                       ; where they run, relative to this file\n"
"; env = DJANGO_SETTINGS_MODULE=shop.settings       ; more environment (repeat the key)\n"
"\n"
"[source]\n"
"seed = seed.sql                ; SQL that builds a stand-in for production, or\n"
"; dsn = postgresql://user@host:5432/db   ; a real database, only ever read\n"
"\n"
"[environments]\n"
"backend = instance             ; two local PostgreSQL clusters\n"
"prod_port = 0                  ; 0 = pick a free port\n"
"dev_port = 0\n"
"; include = envs/local.ini      ; or take this section from a file\n"
"; dev_stack = stacks/debian13-pg17.ini   ; the dev side on the next PostgreSQL major, upgraded\n"
";                              ; from the production clone (upgrade = pg_upgrade | dump)\n"
"\n"
"[app v1]\n"
"scenarios = apps/v1            ; folder of annotated .sql files, or\n"
"; command = ./run-old-tests.sh ; the application's own tests, run with PGHOST, PGPORT,\n"
";                              ; PGDATABASE, PGUSER and DATABASE_URL set to the side under test\n"
"; role = app                   ; production's role: its statements run as it (SET ROLE)\n"
"; workload = workload/v1       ; what `twinstage capture --app v1` wrote (the default)\n"
"\n"
"[app v2]\n"
"scenarios = apps/v2\n"
"\n"
"[rehearsal]\n"
"current = v1                   ; the version live in production now\n"
"next = v2                      ; the version this release ships\n"
"\n"
"[gate]\n"
"forward_compat = warn          ; fail | warn | off: next version against the old schema\n"
"max_lock_ms = 1000             ; a lock that blocks writes to an existing table, held longer, fails\n"
"lint = warn                    ; fail: an error-level lint finding fails the gate by itself\n"
"ddt = fail                     ; fail | warn | off: the double dump test of the dev side\n"
"rollback = fail                ; fail | warn | off: down migrations must restore the old schema\n"
"max_stall_ms = 1000            ; an application statement kept waiting longer by the migration fails\n"
"statement_timeout = 60s        ; a scenario statement is stopped after this (0: never)\n"
"migration_timeout = 1h         ; a migration statement is stopped after this (0: never)\n"
"undeclared = warn              ; fail | warn | off: columns a migration's writes changed without naming them\n"
"; max_slowdown = 2.0           ; with dev_stack: a live statement this many times slower there fails\n"
"\n"
"; While the dev side migrates, the versions live then run their scenarios in a loop\n"
"; (writes rolled back), and pg_stat_activity is sampled to see who waited on whom.\n"
"[load]\n"
"enabled = true\n"
"clients = 4                    ; connections running the scenarios\n"
"sample_ms = 10                 ; how often pg_stat_activity / pg_blocking_pids() is read; 0: never\n"
"before_ms = 500                ; load before the migration starts (the latency to compare with)\n"
"after_ms = 500                 ; and after it ends\n"
"; command = ./load.sh           ; the application's own load generator instead, with the\n"
";                              ; same environment as app commands; stopped after after_ms\n"
"\n"
"; [equal inovices invoices]    ; after migrating, NEW (dev side) holds the rows OLD held\n"
"; columns = customer:customer_name, amount   ; OLD:NEW, or one name for both; default: all of OLD's\n"
"\n"
"; A rollout in several releases (the four part migration): one [phase] each,\n"
"; rehearsed in order; without them, one phase applies every pending migration.\n"
"; [phase 1]\n"
"; title = expand: create invoices, write twice\n"
"; migrations = 1-2              ; versions (or file names) applied in this phase\n"
"; apps = v1, v2                 ; versions that must work after it\n"
"; [phase 2]\n"
"; title = backfill\n"
"; migrations = 3\n"
"; apps = v2\n"
"; equal = inovices invoices     ; must hold after this phase\n";

int cmd_init(int argc, char **argv)
{
	struct ts_opts o;
	const char *path;
	int done, code;

	code = cmd_parse_options(argc, argv, "init", usage, "config force help", &o, &done);
	if (done)
		return code;
	path = o.config ? o.config : "twinstage.ini";
	if (!o.force && (is_file(path) || is_dir(path))) {
		ts_error_set(TS_EXIT_USAGE, "\"%s\" already exists", path);
		ts_error_hint("use --force to overwrite it");
		return ts_error_print();
	}
	if (write_file(path, ts_config_template, strlen(ts_config_template)))
		return ts_error_print();
	printf("wrote %s: edit [project], [source] and the [app] sections, then run \"twinstage rehearse\"\n",
	       path);
	return 0;
}
