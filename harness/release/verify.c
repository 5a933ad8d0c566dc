/*
 * verify.c: the manifest's files against the disk, and its states against
 * production, read-only. See verify.h.
 */
#include "release/verify.h"
#include "core/error.h"
#include "core/strbuf.h"
#include "core/util.h"
#include "core/wrapper.h"
#include "pg/fingerprint.h"
#include "pg/pg.h"
#include "migrate/tools.h"
#include "release/manifest.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int has_password(const char *dsn)
{
	PQconninfoOption *opts = PQconninfoParse(dsn, NULL);
	int has = 0;

	for (PQconninfoOption *o = opts; o && o->keyword; o++)
		if (!strcmp(o->keyword, "password") && o->val && *o->val)
			has = 1;
	PQconninfoFree(opts);
	return has;
}

int ts_release_target(const struct ts_config *cfg, const char *opt, const char **dsn, const char **from)
{
	const char *env = getenv("TWINSTAGE_TARGET_DSN");

	*dsn = NULL;
	*from = NULL;
	if (opt) {
		if (has_password(opt))
			return ts_error_set(TS_EXIT_USAGE,
					    "--dsn holds a password, and every process on this machine can read the command line"),
			       ts_error_hint("put the password in TWINSTAGE_TARGET_DSN, PGPASSWORD or ~/.pgpass, and give --dsn without it");
		*dsn = opt;
		*from = "--dsn";
	} else if (env && *env) {
		*dsn = env;
		*from = "TWINSTAGE_TARGET_DSN";
	} else if (cfg->target_dsn) {
		*dsn = cfg->target_dsn;
		*from = "[target] dsn";
	}
	return 0;
}

static const char *jstr(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* The manifest's inputs against the files as they are now. */
static void check_inputs(struct ts_verify *v)
{
	json_t *now, *was = json_object_get(v->manifest, "inputs"), *e, *f;
	size_t i, k;

	if (ts_manifest_inputs(&v->cfg, &now)) {
		strvec_pushf(&v->problems, "%s", ts_error_message());
		ts_error_clear();
		return;
	}
	json_array_foreach(was, i, e) {
		const char *file = jstr(e, "file"), *sum = jstr(e, "sha256");
		json_t *hit = NULL;

		json_array_foreach(now, k, f)
			if (file && !strcmp(jstr(f, "file"), file))
				hit = f;
		if (!hit)
			strvec_pushf(&v->problems, "%s (%s) is no longer read: it is gone, or the configuration no longer names it",
				     file ? file : "?", jstr(e, "role") ?: "input");
		else if (!sum || strcmp(sum, jstr(hit, "sha256")))
			strvec_pushf(&v->problems, "%s changed since the rehearsal", file);
	}
	json_array_foreach(now, k, f) {
		json_t *hit = NULL;

		json_array_foreach(was, i, e)
			if (jstr(e, "file") && !strcmp(jstr(f, "file"), jstr(e, "file")))
				hit = e;
		if (!hit)
			strvec_pushf(&v->problems, "%s (%s) is new since the rehearsal", jstr(f, "file"), jstr(f, "role"));
	}
	v->inputs = json_array_size(was);
	json_decref(now);
}

static json_t *manifest_migration(json_t *manifest, const char *name)
{
	json_t *e;
	size_t i;

	json_array_foreach(json_object_get(manifest, "migrations"), i, e)
		if (!strcmp(jstr(e, "name") ?: "", name))
			return e;
	return NULL;
}

/* The rehearsed migrations against the folder as it is now. */
static void check_migrations(struct ts_verify *v)
{
	json_t *tool = json_object_get(v->manifest, "tool"), *e;
	struct ts_tracking_state before;
	enum ts_tracking_tool t;
	size_t i;

	if (ts_migrations_discover(v->cfg.migrations, &v->set)) {
		strvec_pushf(&v->problems, "%s", ts_error_message());
		ts_error_clear();
		/* production is still read as the rehearsal read it */
		if (ts_tracking_tool_parse(jstr(tool, "tracking") ?: "", &t) || t == TS_TRACK_AUTO)
			t = TS_TRACK_TWINSTAGE;
		ts_tracker_init(&v->tracker, t, jstr(tool, "table"));
		v->have_tracker = 1;
		return;
	}
	v->have_set = 1;
	ts_tracking_tool_parse(v->cfg.tracking, &t);
	if (t == TS_TRACK_AUTO)
		t = ts_tracking_for_format(v->set.format);
	ts_tracker_init(&v->tracker, t, jstr(tool, "table"));
	v->have_tracker = 1;
	if (strcmp(ts_tracking_tool_name(t), jstr(tool, "tracking") ?: ""))
		strvec_pushf(&v->problems, "the migrations are now tracked in %s's table, the rehearsal used %s's",
			     ts_tracking_tool_name(t), jstr(tool, "tracking") ?: "?");
	json_array_foreach(json_object_get(v->manifest, "migrations"), i, e) {
		const struct ts_migration *m = NULL;
		json_t *now = json_object();

		for (size_t k = 0; k < v->set.n && !m; k++)
			if (!strcmp(v->set.v[k].file, jstr(e, "name") ?: ""))
				m = &v->set.v[k];
		if (!m) {
			strvec_pushf(&v->problems, "%s, rehearsed, is gone from the migrations folder", jstr(e, "file") ?: "?");
		} else if (ts_manifest_migration_files(&v->cfg, m, now)) {
			strvec_pushf(&v->problems, "%s", ts_error_message());
			ts_error_clear();
		} else {
			if (strcmp(jstr(now, "sha256"), jstr(e, "sha256") ?: ""))
				strvec_pushf(&v->problems, "%s changed since the rehearsal", jstr(now, "file"));
			if (jstr(e, "down_sha256") &&
			    (!jstr(now, "down_sha256") || strcmp(jstr(now, "down_sha256"), jstr(e, "down_sha256"))))
				strvec_pushf(&v->problems, "%s (its way back) changed since the rehearsal",
					     jstr(e, "down_file"));
		}
		json_decref(now);
	}
	v->migrations = json_array_size(json_object_get(v->manifest, "migrations"));
	/* a migration that was not pending then, and is not in the manifest: new */
	if (ts_tracking_state_from_json(json_object_get(json_array_get(json_object_get(v->manifest, "states"), 0),
							"tracking"), &before))
		return;
	for (size_t k = 0; k < v->set.n; k++) {
		char *rec;
		int applied = ts_tracking_applied(&v->tracker, &before, &v->set.v[k], &rec);

		free(rec);
		if (!applied && !manifest_migration(v->manifest, v->set.v[k].file)) {
			char *rel = ts_manifest_rel(&v->cfg, v->set.v[k].path);

			strvec_pushf(&v->problems, "%s was not rehearsed: it is new since the rehearsal", rel);
			free(rel);
		}
	}
	ts_tracking_state_free(&before);
}

static const char *state_name(json_t *manifest, int i, char *buf, size_t len)
{
	json_t *s = json_array_get(json_object_get(manifest, "states"), (size_t)i);
	const char *phase = jstr(s, "after_phase");

	if (i == 0)
		snprintf(buf, len, "as the rehearsal found it");
	else if (phase)
		snprintf(buf, len, "as the rehearsal's dev side was after phase %s", phase);
	else
		snprintf(buf, len, "as the rehearsal's dev side was after its migrations");
	return buf;
}

/* Which states --phase starts from and leads to; -1 and a usage error for a phase the manifest lacks. */
static int phase_states(struct ts_verify *v, const char *phase)
{
	json_t *states = json_object_get(v->manifest, "states"), *phases = json_object_get(v->manifest, "phases");
	size_t n = json_array_size(states), i;
	json_t *p;

	v->want = 0;
	v->done = (int)n - 1;
	if (!phase)
		return 0;
	if (!json_array_size(phases))
		return ts_error_set(TS_EXIT_USAGE, "--phase %s: the rehearsal had no [phase] sections", phase);
	v->phase = NULL;
	json_array_foreach(phases, i, p)
		if (!strcmp(jstr(p, "name") ?: "", phase))
			v->phase = p;
	if (!v->phase) {
		struct strbuf names = STRBUF_INIT;

		json_array_foreach(phases, i, p)
			strbuf_addf(&names, "%s%s", i ? ", " : "", jstr(p, "name") ?: "?");
		ts_error_set(TS_EXIT_USAGE, "--phase %s: the rehearsal has no such phase (its phases: %s)", phase,
			     names.buf);
		strbuf_release(&names);
		return -1;
	}
	v->done = -1;
	for (i = 1; i < n; i++)
		if (!strcmp(jstr(json_array_get(states, i), "after_phase") ?: "", phase))
			v->done = (int)i;
	if (v->done < 0)
		return ts_error_set(TS_EXIT_USAGE, "--phase %s was not rehearsed to its end (a migration of it or before it failed)",
				    phase);
	v->want = v->done - 1;
	return 0;
}

/* Production now, read-only, against the state it must be at. */
static int check_production(struct ts_verify *v)
{
	struct ts_fingerprint now, was0;
	struct ts_tracking_state st, st0;
	struct ts_tracker t;
	char *what = xstrfmt("production (%s)", v->shown);
	PGconn *conn = ts_pg_connect_readonly(v->dsn, what);
	size_t n = json_array_size(json_object_get(v->manifest, "states"));
	char buf[96];
	int r = 0;

	free(what);
	if (!conn)
		return -1;
	/* the tool's table, found the way the tool finds it, there */
	ts_tracker_init(&t, v->tracker.tool, v->cfg.tracking_table);
	if (v->cfg.tool) {
		if (ts_tool_read_state(conn, v->cfg.tool, v->cfg.tracking_table, &st)) {
			ts_tracker_release(&t);
			PQfinish(conn);
			return -1;
		}
		free(t.table);
		t.table = xstrdup(v->tracker.table);
	} else if (ts_tracking_resolve(conn, &t) || ts_tracking_read(conn, &v->tracker, &st)) {
		ts_tracker_release(&t);
		PQfinish(conn);
		return -1;
	}
	if (strcmp(t.table, v->tracker.table))
		strvec_pushf(&v->problems, "production's %s table is %s; the rehearsal's was %s",
			     ts_tracking_tool_name(t.tool), t.table, v->tracker.table);
	ts_tracker_release(&t);
	if (ts_fingerprint_read(conn, v->tracker.table, &now)) {
		ts_tracking_state_free(&st);
		PQfinish(conn);
		return -1;
	}
	PQfinish(conn);
	v->reached = 1;
	v->at = -1;
	for (size_t i = n; i-- > 0 && v->at < 0;) {
		struct ts_fingerprint fp;
		struct ts_tracking_state ts;
		struct strvec d = STRVEC_INIT;

		if (ts_manifest_state(v->manifest, i, &fp, &ts))
			continue;
		ts_tracking_compare(&v->tracker, &ts, &st, "production", &d);
		if (!d.nr && ts_fingerprint_same_schema(&fp, &now))
			v->at = (int)i;
		strvec_clear(&d);
		ts_fingerprint_free(&fp);
		ts_tracking_state_free(&ts);
	}
	if (ts_manifest_state(v->manifest, 0, &was0, &st0) == 0) {
		int major_now = now.server_version_num / (now.server_version_num >= 100000 ? 10000 : 100);
		int major_was = was0.server_version_num / (was0.server_version_num >= 100000 ? 10000 : 100);

		strvec_pushf(&v->notes, "production (%s, from %s): PostgreSQL %s", v->shown, v->dsn_from,
			     now.server_version);
		if (major_now != major_was)
			strvec_pushf(&v->problems, "production runs PostgreSQL %s; the rehearsal's production ran %s",
				     now.server_version, was0.server_version);
		else if (now.server_version_num != was0.server_version_num)
			strvec_pushf(&v->notes, "production runs PostgreSQL %s, the rehearsal's production %s (the same major)",
				     now.server_version, was0.server_version);
		if (now.system_identifier && was0.system_identifier &&
		    strcmp(now.system_identifier, was0.system_identifier))
			strvec_pushf(&v->problems, "production is another server: system identifier %s, the rehearsal's source %s",
				     now.system_identifier, was0.system_identifier);
		ts_fingerprint_free(&was0);
		ts_tracking_state_free(&st0);
	}
	if (v->at == v->done && v->done > 0) {
		strvec_pushf(&v->notes, "production is %s: nothing is pending", state_name(v->manifest, v->at, buf, sizeof(buf)));
	} else if (v->at == v->want) {
		strvec_pushf(&v->notes, "production is %s", state_name(v->manifest, v->at, buf, sizeof(buf)));
	} else if (v->at >= 0) {
		strvec_pushf(&v->problems, "production is %s, not %s", state_name(v->manifest, v->at, buf, sizeof(buf)),
			     v->want == 0 ? "as the rehearsal found it" : "where this phase starts");
		if (v->at < v->want)
			strvec_pushf(&v->problems, "promote the phases before it first");
	} else {
		/*
		 * What differs: from the state whose tracking table production's
		 * matches (its migrations are those, its schema is not), else
		 * from where it should be.
		 */
		struct ts_fingerprint fp;
		struct ts_tracking_state ts;
		size_t near = (size_t)v->want;

		for (size_t i = n; i-- > 0;) {
			struct strvec d = STRVEC_INIT;

			if (ts_manifest_state(v->manifest, i, &fp, &ts))
				continue;
			ts_tracking_compare(&v->tracker, &ts, &st, "production", &d);
			ts_fingerprint_free(&fp);
			ts_tracking_state_free(&ts);
			if (!d.nr) {
				near = i;
				strvec_clear(&d);
				break;
			}
			strvec_clear(&d);
		}
		if (near != (size_t)v->want)
			strvec_pushf(&v->problems, "production's tracking table is %s", state_name(v->manifest, (int)near, buf, sizeof(buf)));
		if (!ts_manifest_state(v->manifest, near, &fp, &ts)) {
			struct strvec d = STRVEC_INIT;

			ts_tracking_compare(&v->tracker, &ts, &st, "production", &d);
			for (size_t i = 0; i < d.nr; i++)
				strvec_push(&v->problems, d.v[i]);
			strvec_clear(&d);
			ts_fingerprint_changes(&fp, &now, &d);
			for (size_t i = 0; i < d.nr; i++)
				strvec_pushf(&v->problems, "production's schema changed since the rehearsal: %s", d.v[i]);
			strvec_clear(&d);
			ts_fingerprint_free(&fp);
			ts_tracking_state_free(&ts);
		}
		if (!v->problems.nr)
			strvec_push(&v->problems, "production is at none of the rehearsal's states");
	}
	ts_fingerprint_free(&now);
	ts_tracking_state_free(&st);
	return r;
}

int ts_verify_run(const struct ts_verify_opts *o, struct ts_verify *v)
{
	const char *project;

	memset(v, 0, sizeof(*v));
	v->at = v->want = v->done = -1;
	if (ts_manifest_load(o->manifest, &v->manifest))
		return TS_EXIT_USAGE;
	if (ts_config_load(&v->cfg, o->config ? o->config : "twinstage.ini", o->env_file))
		return TS_EXIT_USAGE;
	v->have_cfg = 1;
	project = jstr(v->manifest, "project");
	if (!project || strcmp(project, v->cfg.name)) {
		ts_error_set(TS_EXIT_USAGE, "%s is the manifest of project \"%s\"; %s is project \"%s\"", o->manifest,
			     project ? project : "?", v->cfg.path, v->cfg.name);
		return TS_EXIT_USAGE;
	}
	if (ts_release_target(&v->cfg, o->dsn, &v->dsn, &v->dsn_from))
		return TS_EXIT_USAGE;
	if (!v->dsn && v->cfg.dsn) {
		v->dsn = v->cfg.dsn;
		v->dsn_from = "[source] dsn";
	}
	if (phase_states(v, o->phase))
		return TS_EXIT_USAGE;
	check_inputs(v);
	if (v->cfg.tool) {
		/* a tool's migrations are code: the files of [project] migrations, when named, are inputs */
		json_t *tool = json_object_get(v->manifest, "tool");
		char *q = ts_pg_qualified(ts_tool_table(v->cfg.tool, v->cfg.tracking_table) ?: TS_TRACKING_TABLE);

		if (strcmp(jstr(tool, "runner") ?: "", ts_tool_name(v->cfg.tool)))
			strvec_pushf(&v->problems, "the project now migrates with %s; the rehearsal ran %s",
				     ts_tool_name(v->cfg.tool), jstr(tool, "runner") ?: "migration files");
		ts_tracker_init(&v->tracker, TS_TRACK_TWINSTAGE, q);
		v->have_tracker = 1;
		free(q);
		v->migrations = json_array_size(json_object_get(v->manifest, "migrations"));
	} else {
		check_migrations(v);
	}
	if (!v->dsn) {
		strvec_push(&v->notes, "production: none to compare with ([source] is not a dsn, and no [target] dsn, --dsn or TWINSTAGE_TARGET_DSN): only the files were checked");
	} else {
		v->shown = conninfo_redact(v->dsn);
		if (check_production(v))
			return ts_error_class() == TS_EXIT_USAGE ? TS_EXIT_USAGE : TS_EXIT_ENV;
	}
	return v->problems.nr ? TS_EXIT_GATE : 0;
}

void ts_verify_print(const struct ts_verify *v, const char *manifest_path)
{
	const char *verdict = jstr(v->manifest, "verdict");

	printf("manifest: %s (rehearsal %s of %s: %s)\n", manifest_path, jstr(v->manifest, "run_id") ?: "?",
	       jstr(v->manifest, "written") ?: "?", verdict ? verdict : "?");
	printf("files: %zu input%s and %zu migration%s checked\n", v->inputs, v->inputs == 1 ? "" : "s",
	       v->migrations, v->migrations == 1 ? "" : "s");
	for (size_t i = 0; i < v->notes.nr; i++)
		printf("%s\n", v->notes.v[i]);
	if (v->problems.nr) {
		printf("the manifest no longer holds:\n");
		for (size_t i = 0; i < v->problems.nr; i++)
			printf("  - %s\n", v->problems.v[i]);
	} else {
		printf("the manifest holds\n");
	}
	fflush(stdout);
}

void ts_verify_free(struct ts_verify *v)
{
	json_decref(v->manifest);
	if (v->have_cfg)
		ts_config_free(&v->cfg);
	if (v->have_set)
		ts_migrations_free(&v->set);
	if (v->have_tracker)
		ts_tracker_release(&v->tracker);
	strvec_clear(&v->problems);
	strvec_clear(&v->notes);
	free(v->shown);
	memset(v, 0, sizeof(*v));
}
