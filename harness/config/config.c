/*
 * config.c: twinstage.ini through inih.
 *
 * inih calls a handler per "name = value" and, as built by Debian, does not
 * pass the line number. We feed it through our own reader (an fgets that
 * counts lines), so the handler always knows the line it is looking at and
 * every message can name file:line. Values are checked twice: shape here,
 * while reading (a port is a number); meaning in config_check.c, after
 * the whole file is read (`current` names an [app] section, the
 * migrations folder exists).
 */
#include "config/config.h"
#include "config/config_impl.h"
#include "config/ini.h"
#include "core/error.h"
#include "core/strbuf.h"
#include "core/strvec.h"
#include "core/util.h"
#include "core/wrapper.h"
#include "migrate/tools.h"
#include "migrate/tracking.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *const project_keys[] = { "name", "migrations", "workdir", "database", "tracking",
					    "tracking_table", "tool", NULL };
static const char *const migrate_keys[] = { "command", "down", "cwd", "env", NULL };
static const char *const source_keys[] = { "seed", "dsn", NULL };
static const char *const target_keys[] = { "dsn", NULL };
static const char *const env_keys[] = { "backend", "prod_port", "dev_port", "include",
					"clone", "pool", "pg_bin", "user", "uri", "image",
					"memory", "vcpus", "accel", "boot_timeout", "remote_dir", "dev_stack", "dev_image",
					"upgrade", "ddt_server", NULL };
static const char *const app_keys[] = { "scenarios", "command", "workload", "role", NULL };
static const char *const rehearsal_keys[] = { "current", "next", NULL };
static const char *const gate_keys[] = { "forward_compat", "lint", "max_lock_ms", "ddt",
					 "rollback", "max_stall_ms", "statement_timeout",
					 "migration_timeout", "undeclared", "max_slowdown", NULL };
static const char *const load_keys[] = { "enabled", "clients", "sample_ms", "before_ms",
					 "after_ms", "command", NULL };
static const char *const equal_keys[] = { "columns", NULL };
static const char *const phase_keys[] = { "migrations", "apps", "equal", "title", "command", "down", NULL };

static const struct section_schema {
	const char *name;	/* "app" takes a NAME after it */
	int named;
	const char *const *keys;
} sections[] = {
	{ "project", 0, project_keys },
	{ "source", 0, source_keys },
	{ "target", 0, target_keys },
	{ "migrate", 0, migrate_keys },
	{ "environments", 0, env_keys },
	{ "app", 1, app_keys },
	{ "rehearsal", 0, rehearsal_keys },
	{ "gate", 0, gate_keys },
	{ "equal", 1, equal_keys },
	{ "phase", 1, phase_keys },
	{ "load", 0, load_keys },
};

struct parse_ctx {
	struct ts_ini ini;	/* the file, and the line being read */
	struct ts_config *cfg;
	const char *file;	/* as shown in messages */
	char *dir;		/* relative paths in this file start here */
	int env_only;		/* an environment file: only [environments] */
	int depth;		/* include nesting */
	int env_sections;	/* [environments] headers seen */
	struct strvec *origins;	/* "section.key\tfile:line" */
};

static void keyless_section(struct parse_ctx *ctx, const char *line);
static struct ts_phase *phase_get(struct parse_ctx *ctx, const char *name);

/* The first error is the one to fix: kept, with the line being read; returns 0. */
#define fail(ctx, ...) ts_ini_fail(&(ctx)->ini, __VA_ARGS__)

static const struct section_schema *find_section(const char *section, const char **arg)
{
	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
		size_t n = strlen(sections[i].name);

		if (strncmp(section, sections[i].name, n))
			continue;
		if (!sections[i].named && !section[n]) {
			*arg = NULL;
			return &sections[i];
		}
		if (sections[i].named && section[n] == ' ') {
			const char *a = section + n;

			while (*a == ' ')
				a++;
			if (!*a)
				return NULL;
			*arg = a;
			return &sections[i];
		}
	}
	return NULL;
}

static int unknown_section(struct parse_ctx *ctx, const char *section)
{
	const char *names[sizeof(sections) / sizeof(sections[0]) + 1];
	char first[64];
	const char *s;
	size_t i;

	for (i = 0; i < sizeof(sections) / sizeof(sections[0]); i++)
		names[i] = sections[i].name;
	names[i] = NULL;
	snprintf(first, sizeof(first), "%s", section);
	first[strcspn(first, " ")] = '\0';
	s = nearest_word(first, names);
	if (!strcmp(first, "app"))
		return fail(ctx, "section [app] needs a version name, as in [app v1]");
	if (s && !strcmp(s, "app"))
		return fail(ctx, "unknown section [%s]; did you mean [app%s]?", section,
			    section + strlen(first));
	if (s)
		return fail(ctx, "unknown section [%s]; did you mean [%s]?", section, s);
	return fail(ctx, "unknown section [%s]", section);
}

static char *rel_path(struct parse_ctx *ctx, const char *value)
{
	return path_join(ctx->dir, value);
}

static void set_str(char **slot, char *v)
{
	free(*slot);
	*slot = v;
}

static int parse_port(struct parse_ctx *ctx, const char *key, const char *value, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(value, &end, 10);
	if (errno || end == value || *end || v < 0 || v > 65535)
		return fail(ctx, "invalid value for %s: \"%s\" (a port number 1-65535, or 0 to pick a free one)",
			    key, value);
	*out = (int)v;
	return 1;
}

static struct ts_app *app_get(struct ts_config *cfg, const char *name, const char *origin)
{
	for (size_t i = 0; i < cfg->n_apps; i++)
		if (!strcmp(cfg->apps[i].name, name))
			return &cfg->apps[i];
	cfg->apps = xrealloc(cfg->apps, (cfg->n_apps + 1) * sizeof(*cfg->apps));
	memset(&cfg->apps[cfg->n_apps], 0, sizeof(*cfg->apps));
	cfg->apps[cfg->n_apps].name = xstrdup(name);
	cfg->apps[cfg->n_apps].origin = xstrdup(origin);
	return &cfg->apps[cfg->n_apps++];
}

static int parse_file(struct ts_config *cfg, const char *path, const char *shown,
		      int env_only, int depth, struct strvec *origins);

static int handle_environments(struct parse_ctx *ctx, const char *name, const char *value)
{
	struct ts_config *cfg = ctx->cfg;

	if (!strcmp(name, "backend"))
		set_str(&cfg->backend, xstrdup(value));
	else if (!strcmp(name, "prod_port"))
		return parse_port(ctx, name, value, &cfg->prod_port);
	else if (!strcmp(name, "dev_port"))
		return parse_port(ctx, name, value, &cfg->dev_port);
	else if (!strcmp(name, "clone"))
		set_str(&cfg->clone, xstrdup(value));
	else if (!strcmp(name, "pool"))
		set_str(&cfg->pool, rel_path(ctx, value));
	else if (!strcmp(name, "pg_bin"))
		set_str(&cfg->pg_bin, rel_path(ctx, value));
	else if (!strcmp(name, "user"))
		set_str(&cfg->os_user, xstrdup(value));
	else if (!strcmp(name, "uri"))
		set_str(&cfg->vm_uri, xstrdup(value));
	else if (!strcmp(name, "image"))
		set_str(&cfg->vm_image, rel_path(ctx, value));
	else if (!strcmp(name, "dev_stack"))
		set_str(&cfg->dev_stack, rel_path(ctx, value));
	else if (!strcmp(name, "dev_image"))
		set_str(&cfg->dev_image, rel_path(ctx, value));
	else if (!strcmp(name, "upgrade")) {
		if (strcmp(value, "pg_upgrade") && strcmp(value, "dump"))
			return fail(ctx, "invalid value for upgrade: \"%s\" (expected pg_upgrade or dump)", value);
		set_str(&cfg->upgrade, xstrdup(value));
	}
	else if (!strcmp(name, "ddt_server")) {
		if (strcmp(value, "host") && strcmp(value, "guest"))
			return fail(ctx, "invalid value for ddt_server: \"%s\" (expected host or guest)", value);
		cfg->ddt_in_guest = !strcmp(value, "guest");
	}
	else if (!strcmp(name, "accel"))
		set_str(&cfg->vm_accel, xstrdup(value));
	else if (!strcmp(name, "remote_dir")) {
		if (value[0] != '/')
			return fail(ctx, "invalid value for remote_dir: \"%s\" (an absolute folder on the libvirt host)",
				    value);
		set_str(&cfg->vm_remote_dir, xstrdup(value));
	}
	else if (!strcmp(name, "memory") || !strcmp(name, "vcpus") || !strcmp(name, "boot_timeout")) {
		int *slot = !strcmp(name, "memory") ? &cfg->vm_memory : !strcmp(name, "vcpus") ? &cfg->vm_vcpus :
			    &cfg->vm_boot_timeout;
		int lo = !strcmp(name, "memory") ? 256 : !strcmp(name, "vcpus") ? 1 : 0;
		char *end;
		long v;

		errno = 0;
		v = strtol(value, &end, 10);
		if (errno || end == value || *end || v < lo || v > 1048576)
			return fail(ctx, "invalid value for %s: \"%s\" (%s)", name, value,
				    !strcmp(name, "memory") ? "MiB of guest memory, at least 256" :
				    !strcmp(name, "vcpus") ? "a number of virtual CPUs" :
				    "seconds, 0 for the default");
		*slot = (int)v;
	}
	else if (!strcmp(name, "include")) {
		char *p = rel_path(ctx, value);
		char *shown = xstrfmt("%s", value[0] == '/' ? value : p);
		int r;

		if (ctx->depth > 4) {
			free(p);
			free(shown);
			return fail(ctx, "include nested too deeply at \"%s\"", value);
		}
		r = parse_file(cfg, p, shown, 1, ctx->depth + 1, ctx->origins);
		free(p);
		free(shown);
		if (r) {
			ctx->ini.failed = 1;
			return 0;
		}
	}
	return 1;
}

/* [equal OLD NEW] (or [equal TABLE]): one per section, the mapping from `columns`. */
static struct ts_equal *equal_get(struct parse_ctx *ctx, const char *arg)
{
	struct ts_config *cfg = ctx->cfg;
	struct ts_equal *e;
	char *words = xstrdup(arg), *save = NULL, *a, *b;

	a = strtok_r(words, " \t", &save);
	b = strtok_r(NULL, " \t", &save);
	if (!b)
		b = a;
	if (strtok_r(NULL, " \t", &save)) {
		free(words);
		fail(ctx, "section [equal %s] names more than two tables (expected [equal OLD NEW])", arg);
		return NULL;
	}
	for (size_t i = 0; i < cfg->n_equal; i++)
		if (!strcmp(cfg->equal[i].old_table, a) && !strcmp(cfg->equal[i].new_table, b)) {
			free(words);
			return &cfg->equal[i];
		}
	cfg->equal = xrealloc(cfg->equal, (cfg->n_equal + 1) * sizeof(*cfg->equal));
	e = &cfg->equal[cfg->n_equal++];
	memset(e, 0, sizeof(*e));
	e->old_table = xstrdup(a);
	e->new_table = xstrdup(b);
	e->origin = xstrfmt("%s:%d", ctx->file, ctx->ini.line);
	free(words);
	return e;
}

static void equal_free_cols(struct ts_equal *e)
{
	for (size_t i = 0; i < e->n_cols; i++) {
		free(e->old_cols[i]);
		free(e->new_cols[i]);
	}
	free(e->old_cols);
	free(e->new_cols);
	e->old_cols = e->new_cols = NULL;
	e->n_cols = 0;
}

/*
 * A section header ([equal OLD NEW] needs no key: its header alone
 * declares it).
 */
static void keyless_section(struct parse_ctx *ctx, const char *section)
{
	const struct section_schema *sec;
	const char *arg = NULL;

	if (!strcmp(section, "environments"))
		ctx->env_sections++;
	if (ctx->env_only)
		return;
	sec = find_section(section, &arg);
	if (sec && !strcmp(sec->name, "equal"))
		equal_get(ctx, arg);
	else if (sec && !strcmp(sec->name, "phase"))
		phase_get(ctx, arg);
}

/* columns = customer:customer_name, amount */
static int handle_equal(struct parse_ctx *ctx, const char *arg, const char *value)
{
	struct ts_equal *e = equal_get(ctx, arg);
	char *list, *save = NULL;

	if (!e)
		return 0;
	equal_free_cols(e);
	list = xstrdup(value);
	for (char *item = strtok_r(list, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *colon, *from, *to;

		while (*item == ' ' || *item == '\t')
			item++;
		for (char *end = item + strlen(item); end > item && (end[-1] == ' ' || end[-1] == '\t');)
			*--end = '\0';
		colon = strchr(item, ':');
		from = colon ? xstrndup(item, (size_t)(colon - item)) : xstrdup(item);
		to = xstrdup(colon ? colon + 1 : item);
		for (char *p = from + strlen(from); p > from && p[-1] == ' ';)
			*--p = '\0';
		if (!*from || !*to || strchr(to, ':')) {
			fail(ctx, "invalid column mapping \"%s\" in [equal %s] (expected OLD:NEW or NAME, separated by commas)",
			     item, arg);
			free(from);
			free(to);
			free(list);
			return 0;
		}
		{
			char *t = to;

			while (*t == ' ')
				t++;
			memmove(to, t, strlen(t) + 1);
		}
		e->old_cols = xrealloc(e->old_cols, (e->n_cols + 1) * sizeof(char *));
		e->new_cols = xrealloc(e->new_cols, (e->n_cols + 1) * sizeof(char *));
		e->old_cols[e->n_cols] = from;
		e->new_cols[e->n_cols++] = to;
	}
	free(list);
	return 1;
}

/* [phase NAME]: one per name, in the order of the file. */
static struct ts_phase *phase_get(struct parse_ctx *ctx, const char *name)
{
	struct ts_config *cfg = ctx->cfg;
	struct ts_phase *ph;

	for (size_t i = 0; i < cfg->n_phases; i++)
		if (!strcmp(cfg->phases[i].name, name))
			return &cfg->phases[i];
	cfg->phases = xrealloc(cfg->phases, (cfg->n_phases + 1) * sizeof(*cfg->phases));
	ph = &cfg->phases[cfg->n_phases++];
	memset(ph, 0, sizeof(*ph));
	ph->name = xstrdup(name);
	ph->origin = xstrfmt("%s:%d", ctx->file, ctx->ini.line);
	return ph;
}

static int set_command(struct parse_ctx *ctx, char **slot, const char *value);

static int handle_phase(struct parse_ctx *ctx, const char *arg, const char *name, const char *value)
{
	struct ts_phase *ph = phase_get(ctx, arg);
	struct strvec words = STRVEC_INIT;

	if (!strcmp(name, "title")) {
		set_str(&ph->title, xstrdup(value));
	} else if (!strcmp(name, "migrations")) {
		strvec_clear(&ph->migrations);
		strvec_split(&ph->migrations, value, ",");
		set_str(&ph->migrations_origin, xstrfmt("%s:%d", ctx->file, ctx->ini.line));
	} else if (!strcmp(name, "apps")) {
		strvec_clear(&ph->apps);
		strvec_split(&ph->apps, value, ", \t");
	} else if (!strcmp(name, "command") || !strcmp(name, "down")) {
		return set_command(ctx, !strcmp(name, "command") ? &ph->command : &ph->down, value);
	} else {
		struct ts_equal *e;

		strvec_split(&words, value, " \t");
		if (words.nr != 2) {
			strvec_clear(&words);
			return fail(ctx, "invalid value for equal in [phase %s]: \"%s\" (expected two tables: equal = OLD NEW)",
				    arg, value);
		}
		ph->equal = xrealloc(ph->equal, (ph->n_equal + 1) * sizeof(*ph->equal));
		e = &ph->equal[ph->n_equal++];
		memset(e, 0, sizeof(*e));
		e->old_table = xstrdup(words.v[0]);
		e->new_table = xstrdup(words.v[1]);
		e->origin = xstrfmt("%s:%d", ctx->file, ctx->ini.line);
		strvec_clear(&words);
	}
	return 1;
}

/* An application's command: refused here, with its line, when it cannot be split into words. */
static int set_command(struct parse_ctx *ctx, char **slot, const char *value)
{
	if (split_command(value, NULL)) {
		fail(ctx, "cannot split command into words: \"%s\"", value);
		ts_error_hint(TS_COMMAND_HINT);
		return 0;
	}
	set_str(slot, xstrdup(value));
	return 1;
}

/* [load]: what runs against the dev side while it migrates. */
static int handle_load(struct parse_ctx *ctx, const char *name, const char *value)
{
	struct ts_config *cfg = ctx->cfg;
	const struct {
		const char *key;
		long min, max;
		int *slot;
	} ints[] = { { "clients", 1, 64, &cfg->load_clients }, { "sample_ms", 0, 1000, &cfg->load_sample_ms },
		     { "before_ms", 0, 60000, &cfg->load_before_ms }, { "after_ms", 0, 60000, &cfg->load_after_ms } };

	if (!strcmp(name, "command"))
		return set_command(ctx, &cfg->load_command, value);
	if (!strcmp(name, "enabled")) {
		if (!strcmp(value, "true") || !strcmp(value, "yes") || !strcmp(value, "on"))
			cfg->load = 1;
		else if (!strcmp(value, "false") || !strcmp(value, "no") || !strcmp(value, "off"))
			cfg->load = 0;
		else
			return fail(ctx, "invalid value for enabled: \"%s\" (expected true or false)", value);
		return 1;
	}
	for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
		char *end;
		long v;

		if (strcmp(name, ints[i].key))
			continue;
		v = strtol(value, &end, 10);
		if (end == value || *end || v < ints[i].min || v > ints[i].max)
			return fail(ctx, "invalid value for %s: \"%s\" (a whole number from %ld to %ld%s)",
				    name, value, ints[i].min, ints[i].max,
				    !strcmp(name, "sample_ms") ? "; 0: no sampling" : "");
		*ints[i].slot = (int)v;
	}
	return 1;
}

static int handler(struct ts_ini *ini, const char *section, const char *name, const char *value)
{
	struct parse_ctx *ctx = ini->user;
	struct ts_config *cfg = ctx->cfg;
	const struct section_schema *sec;
	const char *arg = NULL;
	const char *near;

	if (ctx->ini.failed)
		return 0;
	if (!name) {
		keyless_section(ctx, section);
		return !ctx->ini.failed;
	}
	if (!*section)
		return fail(ctx, "\"%s\" is outside any section", name);
	sec = find_section(section, &arg);
	if (!sec)
		return unknown_section(ctx, section);
	if (ctx->env_only && strcmp(sec->name, "environments"))
		return fail(ctx, "section [%s] does not belong in an environment file (only [environments] does)",
			    section);
	{
		int known = 0;

		for (size_t i = 0; sec->keys[i]; i++)
			if (!strcmp(sec->keys[i], name))
				known = 1;
		if (!known) {
			near = nearest_word(name, sec->keys);
			if (near)
				return fail(ctx, "unknown key \"%s\" in [%s]; did you mean \"%s\"?",
					    name, section, near);
			return fail(ctx, "unknown key \"%s\" in [%s]", name, section);
		}
	}
	strvec_pushf(ctx->origins, "%s.%s\t%s:%d", sec->name, name, ctx->file, ctx->ini.line);
	if (!*value && strcmp(name, "include"))
		return 1;	/* "key =" leaves the default */

	if (!strcmp(sec->name, "project")) {
		if (!strcmp(name, "name"))
			set_str(&cfg->name, xstrdup(value));
		else if (!strcmp(name, "migrations"))
			set_str(&cfg->migrations, rel_path(ctx, value));
		else if (!strcmp(name, "workdir"))
			set_str(&cfg->workdir, rel_path(ctx, value));
		else if (!strcmp(name, "database"))
			set_str(&cfg->dbname, xstrdup(value));
		else if (!strcmp(name, "tracking")) {
			enum ts_tracking_tool t;

			if (ts_tracking_tool_parse(value, &t))
				return fail(ctx, "invalid value for tracking: \"%s\" (expected auto, golang-migrate, dbmate, flyway, prisma or twinstage)",
					    value);
			set_str(&cfg->tracking, xstrdup(value));
		} else if (!strcmp(name, "tracking_table")) {
			set_str(&cfg->tracking_table, xstrdup(value));
		} else if (!strcmp(name, "tool")) {
			if (ts_tool_parse(value, &cfg->tool))
				return fail(ctx, "invalid value for tool: \"%s\" (expected alembic, django, rails, sqitch or command; leave it out for migration files)",
					    value);
		}
	} else if (!strcmp(sec->name, "source")) {
		if (!strcmp(name, "seed"))
			set_str(&cfg->seed, rel_path(ctx, value));
		else
			set_str(&cfg->dsn, xstrdup(value));
	} else if (!strcmp(sec->name, "migrate")) {
		if (!strcmp(name, "command"))
			return set_command(ctx, &cfg->mig_command, value);
		if (!strcmp(name, "down"))
			return set_command(ctx, &cfg->mig_down, value);
		if (!strcmp(name, "cwd"))
			set_str(&cfg->mig_cwd, rel_path(ctx, value));
		else if (!strchr(value, '=') || value[0] == '=')
			return fail(ctx, "invalid value for env: \"%s\" (expected NAME=VALUE)", value);
		else
			strvec_push(&cfg->mig_env, value);
	} else if (!strcmp(sec->name, "target")) {
		set_str(&cfg->target_dsn, xstrdup(value));
	} else if (!strcmp(sec->name, "environments")) {
		if (!cfg->env_origin || ctx->env_only)
			set_str(&cfg->env_origin, xstrdup(ctx->file));
		return handle_environments(ctx, name, value);
	} else if (!strcmp(sec->name, "app")) {
		char *origin = xstrfmt("%s:%d", ctx->file, ctx->ini.line);
		struct ts_app *app = app_get(cfg, arg, origin);

		free(origin);
		if (!strcmp(name, "scenarios")) {
			set_str(&app->scenarios, rel_path(ctx, value));
		} else if (!strcmp(name, "workload")) {
			set_str(&app->workload, rel_path(ctx, value));
			app->workload_given = 1;
		} else if (!strcmp(name, "role")) {
			if (!*value)
				return fail(ctx, "role = needs a role name");
			set_str(&app->role, xstrdup(value));
		} else {
			return set_command(ctx, &app->command, value);
		}
	} else if (!strcmp(sec->name, "equal")) {
		return handle_equal(ctx, arg, value);
	} else if (!strcmp(sec->name, "phase")) {
		return handle_phase(ctx, arg, name, value);
	} else if (!strcmp(sec->name, "load")) {
		return handle_load(ctx, name, value);
	} else if (!strcmp(sec->name, "rehearsal")) {
		set_str(!strcmp(name, "current") ? &cfg->current : &cfg->next, xstrdup(value));
	} else if (!strcmp(sec->name, "gate")) {
		enum ts_gate_level *level = !strcmp(name, "lint") ? &cfg->lint :
					    !strcmp(name, "ddt") ? &cfg->ddt :
					    !strcmp(name, "undeclared") ? &cfg->undeclared :
					    !strcmp(name, "rollback") ? &cfg->rollback : &cfg->forward_compat;
		char *end;

		if (!strcmp(name, "statement_timeout") || !strcmp(name, "migration_timeout")) {
			if (parse_duration_ms(value, !strcmp(name, "statement_timeout") ? &cfg->statement_timeout_ms :
						     &cfg->migration_timeout_ms))
				return fail(ctx, "invalid value for %s: \"%s\" (%s; 0: no limit)", name, value,
					    TS_DURATION_FORMS);
		} else if (!strcmp(name, "max_slowdown")) {
			double v = strtod(value, &end);

			if (end == value || *end || !isfinite(v) || (v != 0 && v < 1))
				return fail(ctx, "invalid value for max_slowdown: \"%s\" (a ratio of at least 1, as in 2.0, or 0 for no limit)",
					    value);
			cfg->max_slowdown = v;
		} else if (!strcmp(name, "max_lock_ms") || !strcmp(name, "max_stall_ms")) {
			double v = strtod(value, &end);

			if (end == value || *end || !isfinite(v) || v < 0)
				return fail(ctx, "invalid value for %s: \"%s\" (milliseconds, or 0 for no limit)",
					    name, value);
			*(!strcmp(name, "max_lock_ms") ? &cfg->max_lock_ms : &cfg->max_stall_ms) = v;
		} else if (!strcmp(value, "fail"))
			*level = TS_GATE_FAIL;
		else if (!strcmp(value, "warn"))
			*level = TS_GATE_WARN;
		else if (!strcmp(value, "off"))
			*level = TS_GATE_OFF;
		else
			return fail(ctx, "invalid value for %s: \"%s\" (expected fail, warn or off)",
				    name, value);
	}
	return 1;
}

static int parse_file(struct ts_config *cfg, const char *path, const char *shown,
		      int env_only, int depth, struct strvec *origins)
{
	struct parse_ctx ctx;
	int r;

	memset(&ctx, 0, sizeof(ctx));
	ctx.ini.file = shown;
	ctx.ini.what = "configuration file";
	ctx.ini.expected = env_only ? "an [environments] section, as envs/local.ini holds"
				    : "twinstage.ini's sections, such as [project] and [source]";
	ctx.ini.hint = depth ? "include = and --env name a file holding [environments], such as envs/local.ini"
			     : "-c names the twinstage.ini file, not its folder";
	ctx.ini.handler = handler;
	ctx.ini.user = &ctx;
	ctx.cfg = cfg;
	ctx.file = shown;
	ctx.dir = path_dirname(path);
	ctx.env_only = env_only;
	ctx.depth = depth;
	ctx.origins = origins;
	r = ts_ini_parse(&ctx.ini, path);
	free(ctx.dir);
	if (!r)
		strvec_push(&cfg->files_read, path);
	if (r && !depth && !is_file(path) && !is_dir(path))
		ts_error_hint("\"twinstage init\" writes a commented one; -c FILE names another");
	if (!r && env_only && !ctx.env_sections)
		r = ts_error_set(TS_EXIT_USAGE, "%s: no [environments] section (an environment file holds one, as envs/local.ini does)",
				 shown);
	return r;
}

int ts_config_read(struct ts_config *cfg, const char *path, const char *env_file, struct strvec *origins)
{
	int r;

	memset(cfg, 0, sizeof(*cfg));
	cfg->forward_compat = TS_GATE_WARN;
	cfg->lint = TS_GATE_WARN;
	cfg->max_lock_ms = 1000;
	cfg->max_stall_ms = 1000;
	cfg->max_slowdown = 2.0;
	cfg->statement_timeout_ms = 60000;
	cfg->migration_timeout_ms = 3600000;
	cfg->load = 1;
	cfg->load_clients = 4;
	cfg->load_sample_ms = 10;
	cfg->load_before_ms = 500;
	cfg->load_after_ms = 500;
	cfg->ddt = TS_GATE_FAIL;
	cfg->rollback = TS_GATE_FAIL;
	cfg->undeclared = TS_GATE_WARN;
	cfg->path = path_absolute(path);
	cfg->dir = path_dirname(cfg->path);

	r = parse_file(cfg, cfg->path, path, 0, 0, origins);
	if (!r && env_file) {
		char *abs = path_absolute(env_file);

		r = parse_file(cfg, abs, env_file, 1, 1, origins);
		if (!r)
			set_str(&cfg->env_origin, xstrdup(env_file));
		free(abs);
	}
	return r;
}

void ts_config_free(struct ts_config *cfg)
{
	free(cfg->mig_command);
	free(cfg->mig_down);
	free(cfg->mig_cwd);
	free(cfg->tool_origin);
	strvec_clear(&cfg->mig_env);
	strvec_clear(&cfg->files_read);
	free(cfg->target_dsn);
	free(cfg->path);
	free(cfg->dir);
	free(cfg->name);
	free(cfg->migrations);
	free(cfg->workdir);
	free(cfg->dbname);
	free(cfg->tracking);
	free(cfg->tracking_table);
	free(cfg->seed);
	free(cfg->dsn);
	free(cfg->backend);
	free(cfg->clone);
	free(cfg->pool);
	free(cfg->vm_uri);
	free(cfg->vm_image);
	free(cfg->dev_stack);
	free(cfg->dev_image);
	free(cfg->upgrade);
	free(cfg->vm_accel);
	free(cfg->vm_remote_dir);
	free(cfg->pg_bin);
	free(cfg->os_user);
	free(cfg->env_origin);
	for (size_t i = 0; i < cfg->n_apps; i++) {
		free(cfg->apps[i].name);
		free(cfg->apps[i].scenarios);
		free(cfg->apps[i].command);
		free(cfg->apps[i].origin);
		free(cfg->apps[i].workload);
		free(cfg->apps[i].role);
	}
	free(cfg->apps);
	for (size_t i = 0; i < cfg->n_equal; i++) {
		equal_free_cols(&cfg->equal[i]);
		free(cfg->equal[i].old_table);
		free(cfg->equal[i].new_table);
		free(cfg->equal[i].origin);
	}
	free(cfg->equal);
	for (size_t i = 0; i < cfg->n_phases; i++) {
		struct ts_phase *ph = &cfg->phases[i];

		free(ph->name);
		free(ph->title);
		free(ph->command);
		free(ph->down);
		strvec_clear(&ph->migrations);
		free(ph->migrations_origin);
		strvec_clear(&ph->apps);
		for (size_t j = 0; j < ph->n_equal; j++) {
			free(ph->equal[j].old_table);
			free(ph->equal[j].new_table);
			free(ph->equal[j].origin);
		}
		free(ph->equal);
		free(ph->origin);
	}
	free(cfg->phases);
	free(cfg->current);
	free(cfg->next);
	free(cfg->load_command);
	memset(cfg, 0, sizeof(*cfg));
}

const struct ts_app *ts_config_app(const struct ts_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_apps; i++)
		if (!strcmp(cfg->apps[i].name, name))
			return &cfg->apps[i];
	return NULL;
}
