/*
 * manifest.c: manifest.json written at the end of every rehearsal, and
 * read back for verify and promote. See manifest.h.
 */
#include "release/manifest.h"
#include "core/error.h"
#include "core/strbuf.h"
#include "core/util.h"
#include "core/version.h"
#include "core/wrapper.h"
#include "migrate/tools.h"
#include "migrate/tracking.h"
#include "pg/fingerprint.h"
#include "rehearse/clone.h"
#include "rehearse/run.h"
#include "rehearse/scenario.h"

#include <dirent.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

char *ts_manifest_rel(const struct ts_config *cfg, const char *path)
{
	size_t n = strlen(cfg->dir);

	if (!strncmp(path, cfg->dir, n) && path[n] == '/')
		return xstrdup(path + n + 1);
	return xstrdup(path);
}

/* SHA-256 of a file's bytes into out; -1 and an error naming it when it cannot be read. */
static int file_sha256(const char *path, char out[65])
{
	struct strbuf sb = STRBUF_INIT;

	if (strbuf_read_file(&sb, path) < 0) {
		strbuf_release(&sb);
		return ts_error_set(TS_EXIT_USAGE, "could not read \"%s\"", path);
	}
	sha256_hex(sb.buf ? sb.buf : "", sb.len, out);
	strbuf_release(&sb);
	return 0;
}

static int add_input(json_t *a, const struct ts_config *cfg, const char *path, const char *role)
{
	char sum[65], *rel;

	if (file_sha256(path, sum))
		return -1;
	rel = ts_manifest_rel(cfg, path);
	json_array_append_new(a, json_pack("{s:s, s:s, s:s}", "file", rel, "role", role, "sha256", sum));
	free(rel);
	return 0;
}

/* A tool's migration code: every file of the folder and below (caches and dot files aside), in name order. */
static int add_folder(json_t *a, const struct ts_config *cfg, const char *dir)
{
	struct dirent **names;
	int n = scandir(dir, &names, NULL, alphasort), r = 0;

	if (n < 0)
		return ts_error_set(TS_EXIT_USAGE, "could not read the migrations folder \"%s\"", dir);
	for (int i = 0; i < n; i++) {
		char *p = path_join(dir, names[i]->d_name);

		if (!r && names[i]->d_name[0] != '.' && strcmp(names[i]->d_name, "__pycache__")) {
			if (is_dir(p))
				r = add_folder(a, cfg, p);
			else if (is_file(p))
				r = add_input(a, cfg, p, "migration");
		}
		free(p);
		free(names[i]);
	}
	free(names);
	return r;
}

int ts_manifest_inputs(const struct ts_config *cfg, json_t **out)
{
	json_t *a = json_array();
	int r = 0;

	for (size_t i = 0; i < cfg->files_read.nr && !r; i++)
		r = add_input(a, cfg, cfg->files_read.v[i], "configuration");
	if (!r && cfg->seed)
		r = add_input(a, cfg, cfg->seed, "seed");
	if (!r && cfg->tool && is_dir(cfg->migrations))
		r = add_folder(a, cfg, cfg->migrations);
	for (size_t i = 0; i < cfg->n_apps && !r; i++) {
		struct ts_scenario *sc;
		size_t n;

		if (!ts_app_has_sql(&cfg->apps[i]))
			continue;
		if ((r = ts_scenario_load_app(&cfg->apps[i], &sc, &n)))
			break;
		for (size_t k = 0; k < n && !r; k++)
			r = add_input(a, cfg, sc[k].path, "scenario");
		ts_scenario_free_all(sc, n);
	}
	if (r) {
		json_decref(a);
		return -1;
	}
	*out = a;
	return 0;
}

int ts_manifest_migration_files(const struct ts_config *cfg, const struct ts_migration *m, json_t *entry)
{
	char sum[65], *rel;

	if (file_sha256(m->path, sum))
		return -1;
	rel = ts_manifest_rel(cfg, m->path);
	json_object_set_new(entry, "file", json_string(rel));
	json_object_set_new(entry, "sha256", json_string(sum));
	free(rel);
	/* a down part of its own file (golang-migrate's .down.sql, Flyway's U file) */
	if (m->down_file && strcmp(m->down_file, m->file)) {
		char *dir = path_dirname(m->path), *path = path_join(dir, m->down_file);
		int r = file_sha256(path, sum);

		if (!r) {
			rel = ts_manifest_rel(cfg, path);
			json_object_set_new(entry, "down_file", json_string(rel));
			json_object_set_new(entry, "down_sha256", json_string(sum));
			free(rel);
		}
		free(path);
		free(dir);
		if (r)
			return -1;
	}
	return 0;
}

static const struct ts_migration *find_migration(const struct ts_migrations *set, const char *file)
{
	for (size_t i = 0; i < set->n; i++)
		if (!strcmp(set->v[i].file, file))
			return &set->v[i];
	return NULL;
}

/* The lines of m's statements that took a lock blocking writes when rehearsed. */
static json_t *guarded_lines(const struct ts_report_migration *rm)
{
	json_t *a = json_array();

	for (size_t j = 0; j < rm->n_stmts; j++) {
		json_t *locks = json_object_get(rm->stmts[j].facts, "locks"), *l;
		size_t k;
		int blocks = 0;

		json_array_foreach(locks, k, l)
			blocks |= json_is_true(json_object_get(l, "blocking"));
		/* a batched statement is recorded once per batch: its line once */
		if (blocks && (!json_array_size(a) ||
			       json_integer_value(json_array_get(a, json_array_size(a) - 1)) != rm->stmts[j].line))
			json_array_append_new(a, json_integer(rm->stmts[j].line));
	}
	return a;
}

static json_t *migrations_json(struct ts_run *run)
{
	json_t *a = json_array();

	/* a tool's migrations, as it named them: what it ran is code, checked as inputs */
	for (size_t i = 0; run->cfg.tool && i < run->rep.n_migrations; i++) {
		const struct ts_report_migration *rm = &run->rep.migrations[i];

		json_array_append_new(a, json_pack("{s:s, s:s?, s:s, s:o}", "name", rm->file, "phase", rm->phase,
						   "status", rm->status ? rm->status : "not run", "guarded",
						   guarded_lines(rm)));
	}
	if (run->cfg.tool)
		return a;

	for (size_t i = 0; i < run->rep.n_migrations; i++) {
		const struct ts_report_migration *rm = &run->rep.migrations[i];
		const struct ts_migration *m = find_migration(&run->set, rm->file);
		json_t *e;
		char *sum;

		if (!m)
			continue;
		sum = ts_tracking_checksum(&run->tracker, m);
		e = json_pack("{s:s, s:s?, s:s, s:b, s:s, s:s?, s:s, s:b, s:o}", "name", m->file,
			      "version", m->version, "description", m->description, "repeatable", m->repeatable,
			      "checksum", sum, "phase", rm->phase, "status", rm->status ? rm->status : "not run",
			      "transactional", rm->transactional, "guarded", guarded_lines(rm));
		free(sum);
		if (ts_manifest_migration_files(&run->cfg, m, e)) {
			json_decref(e);
			json_decref(a);
			return NULL;
		}
		json_array_append_new(a, e);
	}
	return a;
}

static json_t *states_json(const struct ts_run *run)
{
	json_t *a = json_array();

	for (size_t i = 0; i < run->n_states; i++) {
		const struct ts_run_state *s = &run->states[i];

		json_array_append_new(a, json_pack("{s:s, s:s?, s:o, s:o}",
						   "side", s->after ? "dev side" : "production clone",
						   "after_phase", s->after ? s->phase : NULL,
						   "fingerprint", ts_fingerprint_to_json(&s->fp),
						   "tracking", ts_tracking_state_to_json(&s->tracking)));
	}
	return a;
}

static json_t *phases_json(const struct ts_run *run)
{
	json_t *a = json_array();

	for (size_t p = 0; p < run->cfg.n_phases; p++) {
		const struct ts_phase *ph = &run->cfg.phases[p];
		json_t *files = json_array();

		for (size_t i = 0; i < run->rep.n_migrations; i++)
			if (run->rep.migrations[i].phase && !strcmp(run->rep.migrations[i].phase, ph->name))
				json_array_append_new(files, json_string(run->rep.migrations[i].file));
		json_array_append_new(a, json_pack("{s:s, s:s?, s:o}", "name", ph->name, "title", ph->title,
						   "migrations", files));
	}
	return a;
}

int ts_manifest_write(struct ts_run *run)
{
	char when[32], *path, *rel;
	json_t *m, *inputs, *migs;
	int r;

	if (!run->report_dir)
		return 0;
	if (ts_manifest_inputs(&run->cfg, &inputs))
		return -1;
	if (!(migs = migrations_json(run))) {
		json_decref(inputs);
		return -1;
	}
	iso_time(when, sizeof(when));
	rel = ts_manifest_rel(&run->cfg, run->cfg.migrations);
	m = json_pack("{s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:s?, s:i, s:s?}",
		      "format", TS_MANIFEST_FORMAT, "kind", "twinstage-manifest", "twinstage", TS_VERSION,
		      "written", when, "run_id", run->rep.run_id, "project", run->cfg.name,
		      "verdict", run->rep.verdict ? run->rep.verdict : "error", "reason", run->rep.reason,
		      "exit_code", run->rep.exit_code, "database", run->cfg.dbname);
	json_object_set_new(m, "source", json_string(ts_clone_source_kind(&run->cfg)));
	json_object_set_new(m, "tool", json_pack("{s:s, s:s, s:s, s:s}", "folder", rel, "format",
						 run->cfg.tool ? "code" : ts_mig_format_name(run->set.format), "tracking",
						 run->cfg.tool ? ts_tool_name(run->cfg.tool) : ts_tracking_tool_name(run->tracker.tool),
						 "table", run->tracker.table));
	if (run->cfg.tool) {
		json_object_set_new(json_object_get(m, "tool"), "runner", json_string(ts_tool_name(run->cfg.tool)));
		json_object_set_new(json_object_get(m, "tool"), "command", json_string(run->cfg.mig_command));
	}
	json_object_set_new(m, "migrations", migs);
	json_object_set_new(m, "inputs", inputs);
	json_object_set_new(m, "phases", phases_json(run));
	json_object_set_new(m, "states", states_json(run));
	free(rel);
	path = path_join(run->report_dir, TS_MANIFEST_NAME);
	r = json_dump_file(m, path, JSON_INDENT(2) | JSON_SORT_KEYS);
	if (r)
		ts_error_set(TS_EXIT_ENV, "could not write \"%s\"", path);
	free(path);
	json_decref(m);
	return r ? -1 : 0;
}

int ts_manifest_state(json_t *manifest, size_t i, struct ts_fingerprint *fp, struct ts_tracking_state *st)
{
	json_t *s = json_array_get(json_object_get(manifest, "states"), i);

	if (ts_fingerprint_from_json(json_object_get(s, "fingerprint"), fp))
		return -1;
	if (ts_tracking_state_from_json(json_object_get(s, "tracking"), st)) {
		ts_fingerprint_free(fp);
		return -1;
	}
	return 0;
}

int ts_manifest_load(const char *path, json_t **out)
{
	json_error_t jerr;
	json_t *m, *f, *s;
	size_t i;

	*out = NULL;
	if (check_text_file(path, "a manifest.json that twinstage rehearse wrote"))
		return -1;
	if (!(m = json_load_file(path, 0, &jerr)))
		return ts_error_set(TS_EXIT_USAGE, "%s:%d: not a manifest: %s", path, jerr.line, jerr.text);
	f = json_object_get(m, "format");
	if (!json_is_object(m) || strcmp(json_string_value(json_object_get(m, "kind")) ?: "", "twinstage-manifest")) {
		json_decref(m);
		return ts_error_set(TS_EXIT_USAGE, "%s: not a twinstage manifest (no \"kind\": \"twinstage-manifest\")",
				    path);
	}
	if (!json_is_integer(f) || json_integer_value(f) != TS_MANIFEST_FORMAT) {
		ts_error_set(TS_EXIT_USAGE, "%s: a manifest of format %s; this twinstage (%s) reads format %d", path,
			     json_is_integer(f) ? "another" : "unknown", TS_VERSION, TS_MANIFEST_FORMAT);
		json_decref(m);
		return -1;
	}
	if (!json_is_array(json_object_get(m, "migrations")) || !json_is_array(json_object_get(m, "inputs")) ||
	    !json_is_array(json_object_get(m, "states")) || !json_array_size(json_object_get(m, "states")) ||
	    !json_is_object(json_object_get(m, "tool"))) {
		json_decref(m);
		return ts_error_set(TS_EXIT_USAGE, "%s: a manifest without its migrations, inputs, tool or states", path);
	}
	json_array_foreach(json_object_get(m, "states"), i, s) {
		struct ts_fingerprint fp;
		struct ts_tracking_state st;

		if (ts_manifest_state(m, i, &fp, &st)) {
			json_decref(m);
			return ts_error_set(TS_EXIT_USAGE,
					    "%s: state %zu is damaged (its schema does not match its SHA-256)", path,
					    i + 1);
		}
		ts_fingerprint_free(&fp);
		ts_tracking_state_free(&st);
	}
	*out = m;
	return 0;
}
