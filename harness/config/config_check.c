/*
 * config_check.c: ts_config_load (config.h): the files read (config.c),
 * then what must hold once every file is read: the defaults, and each
 * value checked against the others, named by its file:line.
 */
#include "config/config_impl.h"
#include "config/config.h"
#include "core/error.h"
#include "core/strbuf.h"
#include "core/strvec.h"
#include "core/util.h"
#include "core/wrapper.h"
#include "migrate/tools.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* "file:line" where section.key was set, or the file when it was not. */
static const char *origin_of(const struct ts_config *cfg, const struct strvec *origins,
			     const char *key)
{
	size_t kl = strlen(key);

	for (size_t i = origins->nr; i-- > 0;)
		if (!strncmp(origins->v[i], key, kl) && origins->v[i][kl] == '\t')
			return origins->v[i] + kl + 1;
	return cfg->path;
}

/*
 * The paths the reports, env.json and the tracking tables carry: JSON and
 * the tools' tables hold text, so a path that is not UTF-8 is refused here
 * (shown with its odd bytes escaped), not half-way through a run.
 */
static int check_paths(const struct ts_config *cfg, const struct strvec *origins)
{
	const char *keys[] = { NULL, "project.workdir", "project.migrations", "source.seed" };
	const char *paths[] = { cfg->path, cfg->workdir, cfg->migrations, cfg->seed };

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		char *shown;

		if (!paths[i] || utf8_invalid_at(paths[i], strlen(paths[i])) == strlen(paths[i]))
			continue;
		shown = quote_bytes(paths[i]);
		ts_error_set(TS_EXIT_USAGE, "%s: the path \"%s\" is not UTF-8 text",
			     keys[i] ? origin_of(cfg, origins, keys[i]) : shown, shown);
		ts_error_hint("twinstage writes its paths into JSON reports and state files, which hold UTF-8 text: rename it");
		free(shown);
		return -1;
	}
	for (size_t i = 0; i < cfg->n_apps; i++) {
		const char *sc = cfg->apps[i].scenarios;

		if (sc && utf8_invalid_at(sc, strlen(sc)) < strlen(sc)) {
			char *shown = quote_bytes(sc);

			ts_error_set(TS_EXIT_USAGE, "%s: the scenarios folder \"%s\" is not a UTF-8 path",
				     cfg->apps[i].origin, shown);
			free(shown);
			return -1;
		}
	}
	return 0;
}

/*
 * The workdir is twinstage's to fill and to empty (`down`, `down --purge`):
 * it must not be, or hold, anything the configuration reads.
 */
static int check_workdir(const struct ts_config *cfg, const struct strvec *origins)
{
	const char *what[6] = { "the configuration file", "the migrations folder", "the seed file" };
	const char *paths[6] = { cfg->path, cfg->migrations, cfg->seed };
	size_t n = 3;

	for (size_t i = 0; i < 2 * cfg->n_apps; i++) {
		const struct ts_app *a = &cfg->apps[i / 2];
		const char *folder = i % 2 ? (a->workload_given ? a->workload : NULL) : a->scenarios;

		if (folder && path_within(folder, cfg->workdir))
			return ts_error_set(TS_EXIT_USAGE, "%s: workdir \"%s\" holds the %s folder of [app %s] (\"%s\")",
					    origin_of(cfg, origins, "project.workdir"), cfg->workdir,
					    i % 2 ? "workload" : "scenarios", a->name, folder),
			       ts_error_hint("twinstage removes what it makes in its workdir: name a folder of its own (the default is .twinstage)");
	}
	if (cfg->vm_image) {
		what[n] = "the image recipe";
		paths[n++] = cfg->vm_image;
	}
	if (cfg->dev_stack) {
		what[n] = "the stack recipe";
		paths[n++] = cfg->dev_stack;
	}
	if (cfg->dev_image) {
		what[n] = "the dev image's recipe";
		paths[n++] = cfg->dev_image;
	}
	for (size_t i = 0; i < n; i++)
		if (paths[i] && path_within(paths[i], cfg->workdir))
			return ts_error_set(TS_EXIT_USAGE, "%s: workdir \"%s\" holds %s (\"%s\")",
					    origin_of(cfg, origins, "project.workdir"), cfg->workdir, what[i],
					    paths[i]),
			       ts_error_hint("twinstage removes what it makes in its workdir: name a folder of its own (the default is .twinstage)");
	return 0;
}

/*
 * The defaults of what the files left out, then each value checked
 * against the others (a folder that must exist, a backend a tool needs, a
 * phase's apps). An error names where the value was written.
 */
static int check(struct ts_config *cfg, const struct strvec *origins)
{
	if (!cfg->name)
		cfg->name = xstrdup("twinstage");
	if (!cfg->dbname) {
		struct strbuf sb = STRBUF_INIT;

		for (const char *p = cfg->name; *p; p++)
			strbuf_addch(&sb, isalnum((unsigned char)*p) ? tolower((unsigned char)*p) : '_');
		cfg->dbname = strbuf_detach(&sb);
	}
	if (!cfg->migrations)
		cfg->migrations = path_join(cfg->dir, "migrations");
	if (!cfg->workdir)
		cfg->workdir = path_join(cfg->dir, ".twinstage");
	if (!cfg->backend)
		cfg->backend = xstrdup("instance");
	if (!cfg->clone)
		cfg->clone = xstrdup("auto");
	if (!cfg->tracking)
		cfg->tracking = xstrdup("auto");
	if (!cfg->os_user)
		cfg->os_user = xstrdup("postgres");

	if (check_paths(cfg, origins))
		return -1;
	/* a tool's migrations are code: the folder is only linted, when there is one */
	if (!is_dir(cfg->migrations) && (!cfg->tool || origin_of(cfg, origins, "project.migrations") != cfg->path))
		return ts_error_set(TS_EXIT_USAGE, "%s: migrations folder \"%s\" does not exist",
				    origin_of(cfg, origins, "project.migrations"), cfg->migrations);
	if (cfg->tool) {
		if (!cfg->mig_command && cfg->tool == TS_TOOL_COMMAND)
			return ts_error_set(TS_EXIT_USAGE, "%s: tool = command needs [migrate] command, the command that migrates",
					    origin_of(cfg, origins, "project.tool"));
		if (!cfg->mig_command)
			cfg->mig_command = xstrdup(ts_tool_default_command(cfg->tool));
		if (!cfg->mig_cwd)
			cfg->mig_cwd = xstrdup(cfg->dir);
		else if (!is_dir(cfg->mig_cwd))
			return ts_error_set(TS_EXIT_USAGE, "%s: [migrate] cwd \"%s\" is not a folder",
					    origin_of(cfg, origins, "migrate.cwd"), cfg->mig_cwd);
		cfg->tool_origin = xstrdup(origin_of(cfg, origins, "project.tool"));
	} else if (cfg->mig_command) {
		return ts_error_set(TS_EXIT_USAGE, "%s: [migrate] command runs only with [project] tool = alembic, django, rails, sqitch or command",
				    origin_of(cfg, origins, "migrate.command"));
	}
	if (check_workdir(cfg, origins))
		return -1;
	if (cfg->seed && cfg->dsn)
		return ts_error_set(TS_EXIT_USAGE, "%s: [source] names both seed and dsn; keep one",
				    origin_of(cfg, origins, "source.dsn"));
	if (cfg->seed && !is_file(cfg->seed) && !is_dir(cfg->seed))
		return ts_error_set(TS_EXIT_USAGE, "%s: seed file \"%s\" does not exist",
				    origin_of(cfg, origins, "source.seed"), cfg->seed);
	if (cfg->seed && check_text_file(cfg->seed, "a seed: SQL that psql runs"))
		return ts_error_prefix("%s: [source] seed", origin_of(cfg, origins, "source.seed"));
	if (!cfg->vm_uri)
		cfg->vm_uri = xstrdup("qemu:///system");
	if (!cfg->vm_accel)
		cfg->vm_accel = xstrdup("auto");
	if (!cfg->vm_remote_dir)
		cfg->vm_remote_dir = xstrdup("/var/lib/libvirt/images/twinstage");
	if (!cfg->vm_memory)
		cfg->vm_memory = 1024;
	if (!cfg->vm_vcpus)
		cfg->vm_vcpus = 2;
	if (strcmp(cfg->backend, "instance") && strcmp(cfg->backend, "vm") && strcmp(cfg->backend, "dualboot")) {
		static const char *const backends[] = { "instance", "vm", "dualboot", NULL };
		const char *n = nearest_word(cfg->backend, backends);

		return ts_error_set(TS_EXIT_USAGE, "%s: unknown backend \"%s\"%s%s%s",
				    origin_of(cfg, origins, "environments.backend"), cfg->backend,
				    n ? "; did you mean \"" : "", n ? n : "", n ? "\"?" : "");
	}
	if (cfg->tool && strcmp(cfg->backend, "instance"))
		return ts_error_set(TS_EXIT_USAGE, "%s: tool = %s needs backend = instance: what the tool sends is read from the dev side's statement log, which twinstage reads from the dev cluster's folder",
				    cfg->tool_origin, ts_tool_name(cfg->tool));
	if (strcmp(cfg->clone, "auto") && strcmp(cfg->clone, "cow") && strcmp(cfg->clone, "logical") &&
	    strcmp(cfg->clone, "physical"))
		return ts_error_set(TS_EXIT_USAGE,
				    "%s: invalid value for clone: \"%s\" (expected auto, cow, physical or logical)",
				    origin_of(cfg, origins, "environments.clone"), cfg->clone);
	if (strcmp(cfg->vm_accel, "auto") && strcmp(cfg->vm_accel, "kvm") && strcmp(cfg->vm_accel, "tcg"))
		return ts_error_set(TS_EXIT_USAGE, "%s: invalid value for accel: \"%s\" (expected auto, kvm or tcg)",
				    origin_of(cfg, origins, "environments.accel"), cfg->vm_accel);
	if (cfg->dev_stack && strcmp(cfg->backend, "instance") && !(cfg->dev_image && !strcmp(cfg->backend, "vm")))
		return ts_error_set(TS_EXIT_USAGE, "%s: dev_stack needs backend = instance (the dev side's server runs from the stack's root on this machine)",
				    origin_of(cfg, origins, "environments.dev_stack")),
		       ts_error_hint(!strcmp(cfg->backend, "vm") ? "on vm, dev_image = images/debian13-pg17.ini gives the dev guest its own system" :
				     "the station's two roots are made from one image");
	if (cfg->dev_stack && !is_file(cfg->dev_stack))
		return ts_error_set(TS_EXIT_USAGE, "%s: stack recipe \"%s\" does not exist",
				    origin_of(cfg, origins, "environments.dev_stack"), cfg->dev_stack);
	if (cfg->dev_image && strcmp(cfg->backend, "vm"))
		return ts_error_set(TS_EXIT_USAGE, "%s: dev_image needs backend = vm (%s)",
				    origin_of(cfg, origins, "environments.dev_image"),
				    !strcmp(cfg->backend, "dualboot") ? "the station's two roots are made from one image" :
				    "on instance, dev_stack gives the dev side its system");
	if (cfg->dev_image && !is_file(cfg->dev_image))
		return ts_error_set(TS_EXIT_USAGE, "%s: image recipe \"%s\" does not exist",
				    origin_of(cfg, origins, "environments.dev_image"), cfg->dev_image);
	/* on vm with dev_image, a dev_stack is only the new major's programs on this machine */
	cfg->dev_next = cfg->dev_image ? cfg->dev_image : cfg->dev_stack;
	if (cfg->upgrade && !cfg->dev_next)
		return ts_error_set(TS_EXIT_USAGE, "%s: upgrade = %s needs dev_stack (the system the dev side is upgraded to)",
				    origin_of(cfg, origins, "environments.upgrade"), cfg->upgrade);
	if (cfg->dev_image && cfg->upgrade && strcmp(cfg->upgrade, "dump"))
		return ts_error_set(TS_EXIT_USAGE, "%s: upgrade = %s with dev_image: the dev guest is filled with pg_dump of its major (upgrade = dump)",
				    origin_of(cfg, origins, "environments.upgrade"), cfg->upgrade),
		       ts_error_hint("pg_upgrade needs both majors' programs and both clusters on one system; the two guests are two systems");
	if (!cfg->upgrade)
		cfg->upgrade = xstrdup(cfg->dev_image ? "dump" : "pg_upgrade");
	if (strcmp(cfg->backend, "instance") && !cfg->vm_image)
		return ts_error_set(TS_EXIT_USAGE, "%s: backend %s needs image = RECIPE (as in images/debian-pg15.ini)",
				    origin_of(cfg, origins, "environments.backend"), cfg->backend);
	if (strcmp(cfg->backend, "instance") && !is_file(cfg->vm_image))
		return ts_error_set(TS_EXIT_USAGE, "%s: image recipe \"%s\" does not exist",
				    origin_of(cfg, origins, "environments.image"), cfg->vm_image);
	if (cfg->prod_port && cfg->prod_port == cfg->dev_port)
		return ts_error_set(TS_EXIT_USAGE, "%s: prod_port and dev_port are both %d; they must differ",
				    origin_of(cfg, origins, "environments.dev_port"), cfg->dev_port);
	for (size_t i = 0; i < cfg->n_apps; i++) {
		struct ts_app *a = &cfg->apps[i];

		if (!a->workload) {
			char *w = path_join(cfg->dir, "workload");

			a->workload = path_join(w, a->name);
			free(w);
		}
		/* an app with neither yet is checked where it runs: `capture` is how it gets a workload */
		if (a->scenarios && a->command)
			return ts_error_set(TS_EXIT_USAGE, "%s: [app %s] names both scenarios and command; keep one",
					    a->origin, a->name);
		if (a->scenarios && !is_dir(a->scenarios))
			return ts_error_set(TS_EXIT_USAGE, "%s: scenarios folder \"%s\" of [app %s] does not exist",
					    a->origin, a->scenarios, a->name);
	}
	for (size_t i = 0; i < cfg->n_phases; i++) {
		struct ts_phase *ph = &cfg->phases[i];

		if (cfg->tool && !ph->command)
			return ts_error_set(TS_EXIT_USAGE, "%s: [phase %s] needs command = the %s command of this release (tool = %s runs commands, not files)",
					    ph->origin, ph->name, ts_tool_name(cfg->tool), ts_tool_name(cfg->tool));
		if (cfg->tool && ph->migrations.nr)
			return ts_error_set(TS_EXIT_USAGE, "%s: [phase %s] names migrations =, but tool = %s runs commands: give command = instead",
					    ph->migrations_origin, ph->name, ts_tool_name(cfg->tool));
		if (!cfg->tool && ph->command)
			return ts_error_set(TS_EXIT_USAGE, "%s: [phase %s] has a command, which only a tool runs: set [project] tool, or name migrations =",
					    ph->origin, ph->name);
		if (!ph->apps.nr)
			return ts_error_set(TS_EXIT_USAGE,
					    "%s: [phase %s] needs apps = the versions that must work after it",
					    ph->origin, ph->name);
		for (size_t j = 0; j < ph->apps.nr; j++)
			if (!ts_config_app(cfg, ph->apps.v[j]))
				return ts_error_set(TS_EXIT_USAGE, "%s: [phase %s] names version %s, but there is no section [app %s]",
						    ph->origin, ph->name, ph->apps.v[j], ph->apps.v[j]);
	}
	/* with phases, the version live now is the first phase's first, unless named */
	if (!cfg->current && cfg->n_phases)
		cfg->current = xstrdup(cfg->phases[0].apps.v[0]);
	if (!cfg->current) {
		if (cfg->n_apps)
			return ts_error_set(TS_EXIT_USAGE,
					    "%s: [rehearsal] current is not set: name the version live in production now",
					    cfg->path);
	} else if (!ts_config_app(cfg, cfg->current)) {
		return ts_error_set(TS_EXIT_USAGE, "%s: current = %s, but there is no section [app %s]",
				    origin_of(cfg, origins, "rehearsal.current"), cfg->current, cfg->current);
	}
	if (cfg->next && !ts_config_app(cfg, cfg->next))
		return ts_error_set(TS_EXIT_USAGE, "%s: next = %s, but there is no section [app %s]",
				    origin_of(cfg, origins, "rehearsal.next"), cfg->next, cfg->next);
	return 0;
}

int ts_config_load(struct ts_config *cfg, const char *path, const char *env_file)
{
	struct strvec origins = STRVEC_INIT;	/* "section.key\tfile:line" of each key set */
	int r = ts_config_read(cfg, path, env_file, &origins);

	if (!r)
		r = check(cfg, &origins);
	strvec_clear(&origins);
	if (r)
		ts_config_free(cfg);
	return r;
}
