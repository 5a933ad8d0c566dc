/*
 * test_load.c: the live version runs while the dev side migrates, on real
 * clusters with a table of 400,000 rows, and the report says who waited:
 * a rewrite under ACCESS EXCLUSIVE stalls the application for about as
 * long as it runs, naming the statement; the safe variant (the column
 * without a default, backfilled in batches) stalls no one over the gate; a
 * migration queued behind an open application transaction is a lock-queue
 * stall; a version that fails only while migrating fails the gate.
 */
#include "config/config.h"
#include "core/error.h"
#include "core/strbuf.h"
#include "core/util.h"
#include "report/report.h"
#include "helpers.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

TH_PROJECT_SUITE(load);

#define ASSERT_HAS TH_ASSERT_HAS

static const char seed[] =
	"CREATE TABLE events (id bigserial PRIMARY KEY, kind text NOT NULL, payload text);\n"
	"INSERT INTO events (kind, payload)\n"
	"SELECT 'k' || (g % 10), repeat('x', 60) FROM generate_series(1, 400000) g;\n"
	"ANALYZE events;\n";

static const char app_writes[] =
	"-- @name record an event\n"
	"-- @expect rows 1\n"
	"INSERT INTO events (kind, payload) VALUES ('click', 'p') RETURNING id;\n"
	"\n"
	"-- @name read an event\n"
	"-- @expect rows 1\n"
	"SELECT id, kind FROM events WHERE id = 42;\n";

/* A project over `events`, its v1 replayed on two clients, and the gate's stall limit. */
static void load_project(const char *extra_ini, const char *extra_app)
{
	char *ini = xstrfmt("[project]\nname = loadproj\nmigrations = migrations\n\n"
			    "[source]\nseed = seed.sql\n\n"
			    "[app v1]\nscenarios = apps/v1\n\n"
			    "[rehearsal]\ncurrent = v1\n\n"
			    "[gate]\nddt = off\nrollback = off\nmax_lock_ms = 0\nmax_stall_ms = 200\n\n"
			    "[load]\nclients = 2\nbefore_ms = 300\nafter_ms = 200\n%s",
			    extra_ini ? extra_ini : "");

	th_write(dir, "twinstage.ini", ini);
	th_write(dir, "seed.sql", seed);
	th_write(dir, "apps/v1/01_events.sql", app_writes);
	if (extra_app)
		th_write(dir, "apps/v1/02_report.sql", extra_app);
	free(ini);
}

static json_t *load_entry(json_t *rep)
{
	json_t *load = json_object_get(rep, "load");

	cr_assert(json_is_array(load) && json_array_size(load) == 1, "report.json has no load entry");
	return json_array_get(load, 0);
}

static double jnum(json_t *o, const char *key)
{
	return json_number_value(json_object_get(o, key));
}

Test(load, a_rewrite_under_access_exclusive_stalls_the_application_for_about_as_long)
{
	json_t *rep, *e, *stall, *stmt;
	char *wd, *svg, *md, *html;
	double rewrite_ms;
	int code;

	load_project(NULL, NULL);
	th_write(dir, "migrations/1_add_seen_at.up.sql",
		 "ALTER TABLE events ADD COLUMN seen_at timestamptz DEFAULT clock_timestamp();\n");
	code = th_twinstage(dir, &out, &err, "rehearse", NULL);
	cr_assert_eq(code, 1, "exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(out, "verdict: incompatible - 1_add_seen_at.up.sql:1 kept v1 01_events.sql:");
	ASSERT_HAS(out, "over gate.max_stall_ms = 200: users would have waited that long");
	ASSERT_HAS(out, "load during the migration: v1 on 2 clients, locks sampled every 10 ms");
	ASSERT_HAS(err, "load: v1 on 2 clients");

	wd = path_join(dir, ".twinstage");
	rep = th_latest_report(wd);
	e = load_entry(rep);
	stall = json_object_get(e, "stall");
	cr_assert(json_is_object(stall), "no stall recorded:\n%s", out.buf);
	cr_assert_str_eq(ts_json_str(stall, "migration"), "1_add_seen_at.up.sql:1");
	cr_assert_str_eq(ts_json_str(stall, "app"), "v1");
	stmt = json_array_get(json_object_get(json_array_get(json_object_get(rep, "migrations"), 0), "statements"), 0);
	rewrite_ms = jnum(stmt, "ms");
	/* of the order of the rewrite: the application waited most of it */
	cr_assert(jnum(stall, "ms") > 0.5 * rewrite_ms && jnum(stall, "ms") < rewrite_ms + 1000,
		  "stall %.0f ms, rewrite %.0f ms", jnum(stall, "ms"), rewrite_ms);
	cr_assert(jnum(json_object_get(e, "during"), "max_ms") >= jnum(stall, "ms") - 1);
	cr_assert(jnum(json_object_get(e, "before"), "statements") > 0);

	/* the picture: its own file, linked from the Markdown, inline in the HTML */
	svg = th_read(wd, "reports/latest/timeline.svg");
	md = th_read(wd, "reports/latest/report.md");
	html = th_read(wd, "reports/latest/report.html");
	cr_assert(svg && strstr(svg, "<svg") && strstr(svg, "stall "), "timeline.svg: %s", svg ? svg : "missing");
	cr_assert(strstr(svg, "1_add_seen_at.up.sql:1"));
	cr_assert(md && strstr(md, "![timeline of the migration and the application](timeline.svg)"));
	cr_assert(html && strstr(html, "<svg") && strstr(html, "is <span class=\"fail\">incompatible"));
	free(svg);
	free(md);
	free(html);
	json_decref(rep);
	free(wd);

	/* read back from report.json, every format says it again */
	strbuf_reset(&out);
	cr_assert_eq(th_twinstage(dir, &out, &err, "report", "--format", "markdown", NULL), 1);
	ASSERT_HAS(out, "### load during the migration: v1 on 2 clients");
	ASSERT_HAS(out, "longest stall: 1\\_add\\_seen\\_at.up.sql:1 kept v1");
	strbuf_reset(&out);
	cr_assert_eq(th_twinstage(dir, &out, &err, "report", "--format", "junit", NULL), 1);
	ASSERT_HAS(out, "over gate.max_stall_ms = 200");
}

Test(load, the_applications_own_load_generator_is_watched_the_same_way)
{
	json_t *rep, *stall;
	char *wd;
	int code;

	load_project("command = ./load.sh\n", NULL);
	th_write(dir, "load.sh",
		 "#!/bin/sh\n"
		 "# the application's own load: one insert after another, each its own psql\n"
		 "while :; do psql -qAtX -c \"INSERT INTO events (kind) VALUES ('load')\" >/dev/null || exit 1; done\n");
	{
		char *p = path_join(dir, "load.sh");

		cr_assert(!chmod(p, 0755));
		free(p);
	}
	th_write(dir, "migrations/1_add_seen_at.up.sql",
		 "ALTER TABLE events ADD COLUMN seen_at timestamptz DEFAULT clock_timestamp();\n");
	code = th_twinstage(dir, &out, &err, "rehearse", NULL);
	cr_assert_eq(code, 1, "exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(out, "load during the migration: ./load.sh, locks sampled every 10 ms");
	ASSERT_HAS(out, "1_add_seen_at.up.sql:1 kept a session of the load command (INSERT INTO events (kind) VALUES ('load')) waiting");
	wd = path_join(dir, ".twinstage");
	rep = th_latest_report(wd);
	stall = json_object_get(load_entry(rep), "stall");
	cr_assert(json_is_object(stall) && jnum(stall, "ms") > 200, "%s", out.buf);
	json_decref(rep);
	free(wd);
}

Test(load, the_safe_variant_stalls_no_one_over_the_gate)
{
	json_t *rep, *e, *stall;
	char *wd;
	int code;

	load_project(NULL, NULL);
	th_write(dir, "migrations/1_add_seen_at.up.sql", "ALTER TABLE events ADD COLUMN seen_at timestamptz;\n");
	th_write(dir, "migrations/2_backfill_seen_at.up.sql",
		 "-- twinstage:batch 20000\nUPDATE events SET seen_at = now() WHERE seen_at IS NULL;\n");
	code = th_twinstage(dir, &out, &err, "rehearse", NULL);
	cr_assert_eq(code, 0, "exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(out, "verdict: compatible");
	ASSERT_HAS(out, "errors during the migration: none");
	wd = path_join(dir, ".twinstage");
	rep = th_latest_report(wd);
	e = load_entry(rep);
	stall = json_object_get(e, "stall");
	cr_assert(!json_is_object(stall) || jnum(stall, "ms") <= 200, "stall %.0f ms:\n%s",
		  jnum(stall, "ms"), out.buf);
	/* the application ran all along: before, during and after */
	cr_assert(jnum(json_object_get(e, "during"), "statements") > 10, "%s", out.buf);
	cr_assert(jnum(json_object_get(e, "after"), "statements") > 0);
	cr_assert(jnum(e, "samples") > 10);
	json_decref(rep);
	free(wd);
}

Test(load, a_migration_queued_behind_an_open_transaction_is_a_lock_queue_stall)
{
	json_t *rep, *e, *q;
	char *wd;
	int code;

	/*
	 * Client 1's report keeps its transaction (and its read lock on events)
	 * open until the migration waits behind it, then half a second more:
	 * a rendezvous on the lock itself, whatever the machine's speed.
	 */
	load_project("clients = 4\n",
		     "-- @name count the events\n-- @expect rows 1\n"
		     "SELECT count(*) FROM events WHERE id < 10;\n\n"
		     "-- @name the long report of client 1\n-- @expect ok\n"
		     "DO $$ BEGIN\n"
		     "  IF current_setting('application_name') = 'twinstage load 1' THEN\n"
		     "    FOR i IN 1..4000 LOOP\n"
		     "      EXIT WHEN EXISTS (SELECT 1 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation\n"
		     "                        WHERE c.relname = 'events' AND NOT l.granted);\n"
		     "      PERFORM pg_sleep(0.005);\n"
		     "    END LOOP;\n"
		     "    PERFORM pg_sleep(0.5);\n"
		     "  END IF;\n"
		     "END $$;\n");
	th_write(dir, "migrations/1_add_note.up.sql", "ALTER TABLE events ADD COLUMN note text;\n");
	code = th_twinstage(dir, &out, &err, "rehearse", NULL);
	cr_assert_eq(code, 1, "exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(out, "lock-queue stall: 1_add_note.up.sql:1 waited ");
	ASSERT_HAS(out, "for its lock behind v1's transaction (at 02_report.sql:7 \"the long report of client 1\")");
	ASSERT_HAS(out, "Set lock_timeout before it");
	ASSERT_HAS(out, "verdict: incompatible - 1_add_note.up.sql:1 kept v1");
	wd = path_join(dir, ".twinstage");
	rep = th_latest_report(wd);
	e = load_entry(rep);
	q = json_array_get(json_object_get(e, "lock_queues"), 0);
	cr_assert(q, "no lock queue recorded:\n%s", out.buf);
	cr_assert(jnum(q, "waited_ms") > 200, "the ALTER waited %.0f ms", jnum(q, "waited_ms"));
	cr_assert(json_integer_value(json_object_get(q, "queued")) >= 1);
	cr_assert(jnum(q, "max_queued_ms") > 200);
	json_decref(rep);
	free(wd);
}

Test(load, a_version_that_fails_only_while_migrating_fails_the_gate)
{
	int code;

	/*
	 * Between the two migrations, events does not exist; after them, a
	 * view stands in. The second waits until v1 has failed in between (the
	 * dev server logs the error): a rendezvous on the failure itself.
	 */
	load_project(NULL, NULL);
	th_write(dir, "migrations/1_rename_events.up.sql", "ALTER TABLE events RENAME TO event_log;\n");
	{
		char *sql = xstrfmt("DO $$ BEGIN\n"
				    "  FOR i IN 1..4000 LOOP\n"
				    "    EXIT WHEN strpos(pg_read_file('%s/.twinstage/dev/server.log'),\n"
				    "                     'relation \"events\" does not exist') > 0;\n"
				    "    PERFORM pg_sleep(0.005);\n"
				    "  END LOOP;\n"
				    "END $$;\n"
				    "CREATE VIEW events AS SELECT * FROM event_log;\n", dir);

		th_write(dir, "migrations/2_events_view.up.sql", sql);
		free(sql);
	}
	code = th_twinstage(dir, &out, &err, "rehearse", NULL);
	cr_assert_eq(code, 1, "exit %d\n%s\n%s", code, out.buf, err.buf);
	/* the matrix passes: only the load saw it */
	ASSERT_HAS(out, "pass 2/2 (gate)");
	ASSERT_HAS(out, "verdict: incompatible - v1 fails on the dev side while it migrated: 01_events.sql:3 \"record an event\"");
	ASSERT_HAS(out, "relation \"events\" does not exist in ");
	ASSERT_HAS(out, "v1 on dev while migrating: 01_events.sql:3");
}

Test(load, off_or_unsampled_as_configured)
{
	json_t *rep;
	char *wd;
	int code;

	load_project("sample_ms = 0\n", NULL);
	th_write(dir, "migrations/1_add_note.up.sql", "ALTER TABLE events ADD COLUMN note text;\n");
	code = th_twinstage(dir, &out, &err, "rehearse", NULL);
	cr_assert_eq(code, 0, "exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(out, "no application statement waited on the migration (not sampled: sample_ms = 0)");

	load_project("enabled = false\n", NULL);
	code = th_twinstage(dir, &out, &err, "rehearse", NULL);
	cr_assert_eq(code, 0, "exit %d\n%s\n%s", code, out.buf, err.buf);
	wd = path_join(dir, ".twinstage");
	rep = th_latest_report(wd);
	cr_assert(!json_object_get(rep, "load"), "a load ran with enabled = false");
	json_decref(rep);
	free(wd);
}

Test(load, bad_settings_name_the_line)
{
	static const struct {
		const char *ini, *message;
	} cases[] = {
		{ "clients = 0\n", "twinstage.ini:24: invalid value for clients: \"0\" (a whole number from 1 to 64)" },
		{ "sample_ms = often\n", "twinstage.ini:24: invalid value for sample_ms: \"often\"" },
		{ "enabled = maybe\n", "twinstage.ini:24: invalid value for enabled: \"maybe\" (expected true or false)" },
		{ "sampling = 10\n", "twinstage.ini:24: unknown key \"sampling\" in [load]; did you mean \"sample_ms\"?" },
		{ "command = ./load.sh \"unclosed\n", "twinstage.ini:24: cannot split command into words: \"./load.sh \"unclosed\"" },
		{ "[app v2]\ncommand = ./test.sh $(date)\n", "twinstage.ini:25: cannot split command into words: \"./test.sh $(date)\"" },
	};
	char *path = path_join(dir, "twinstage.ini");
	struct ts_config cfg;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		load_project(cases[i].ini, NULL);
		cr_assert_eq(ts_config_load(&cfg, path, NULL), -1, "accepted %s", cases[i].ini);
		cr_assert_eq(ts_error_class(), TS_EXIT_USAGE);
		cr_assert(strstr(ts_error_message(), cases[i].message), "%s", ts_error_message());
	}
	th_write(dir, "twinstage.ini", "[gate]\nmax_stall_ms = soon\n");
	cr_assert_eq(ts_config_load(&cfg, path, NULL), -1);
	cr_assert(strstr(ts_error_message(),
			 "twinstage.ini:2: invalid value for max_stall_ms: \"soon\" (milliseconds, or 0 for no limit)"),
		  "%s", ts_error_message());
	free(path);
}
