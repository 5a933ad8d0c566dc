/*
 * migrations.c: discovering migrations by their file names (POSIX regular
 * expressions), splitting dbmate's up and down parts, and ordering
 * versions. See migrations.h.
 */
#include "migrate/migrations.h"
#include "core/error.h"
#include "core/strbuf.h"
#include "core/strvec.h"
#include "core/util.h"
#include "core/wrapper.h"

#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *ts_mig_format_name(enum ts_mig_format f)
{
	switch (f) {
	case TS_FMT_FLYWAY: return "flyway";
	case TS_FMT_GOLANG: return "golang-migrate";
	case TS_FMT_DBMATE: return "dbmate";
	case TS_FMT_PLAIN: return "numbered files";
	case TS_FMT_PRISMA: return "prisma";
	default: return "none";
	}
}

/*
 * Compares dotted/underscored numeric versions segment by segment, as
 * numbers of any length (a 14-digit dbmate timestamp does not overflow);
 * a missing segment counts as 0, so 1 and 1.0 are the same version.
 */
int ts_version_cmp(const char *a, const char *b)
{
	while (*a || *b) {
		size_t la, lb;
		int c;

		while (*a == '0')
			a++;
		while (*b == '0')
			b++;
		la = strspn(a, "0123456789");
		lb = strspn(b, "0123456789");
		if (la != lb)
			return la < lb ? -1 : 1;
		c = strncmp(a, b, la);
		if (c)
			return c < 0 ? -1 : 1;
		a += la;
		b += lb;
		if (*a && !strchr("._", *a))
			return strcmp(a, b);	/* not a version: keep the order total */
		if (*b && !strchr("._", *b))
			return strcmp(a, b);
		if (*a)
			a++;
		if (*b)
			b++;
	}
	return 0;
}

static int migration_cmp(const void *pa, const void *pb)
{
	const struct ts_migration *a = pa, *b = pb;

	if (a->repeatable != b->repeatable)
		return a->repeatable ? 1 : -1;
	if (a->repeatable)
		return strcmp(a->description, b->description);
	return ts_version_cmp(a->version, b->version);
}

static char *describe(const char *s, size_t n)
{
	char *d = xstrndup(s, n);

	for (char *p = d; *p; p++)
		if (*p == '_')
			*p = ' ';
	return d;
}

static char *sub(const char *s, const regmatch_t *m)
{
	if (m->rm_so < 0)
		return NULL;
	return xstrndup(s + m->rm_so, (size_t)(m->rm_eo - m->rm_so));
}

/* Finds "-- migrate:up" / "-- migrate:down" marker lines (dbmate's own rule). */
static int dbmate_split(struct ts_migration *m, const char *text)
{
	regex_t re;
	regmatch_t g[3];
	const char *up = NULL, *down = NULL, *p = text;
	int line = 1, up_line = 0, down_line = 0;

	regcomp(&re, "^--[[:space:]]*migrate:(up|down)(.*)$", REG_EXTENDED | REG_NEWLINE);
	while (*p) {
		const char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) : strlen(p);
		char *l = xstrndup(p, len);

		if (!regexec(&re, l, 3, g, 0)) {
			const char *next = eol ? eol + 1 : p + len;

			if (l[g[1].rm_so] == 'u') {
				up = next;
				up_line = line + 1;
				if (strstr(l + g[2].rm_so, "transaction:false"))
					m->no_transaction = 1;
			} else {
				down = next;
				down_line = line + 1;
			}
		}
		free(l);
		line++;
		p = eol ? eol + 1 : p + len;
	}
	regfree(&re);
	if (!up)
		return ts_error_set(TS_EXIT_USAGE, "migration \"%s\" has no \"-- migrate:up\" line",
				    m->file);
	/* the up part ends where the down part's marker line begins */
	if (down && down > up) {
		const char *end = down - 1;

		while (end > up && end[-1] != '\n')
			end--;
		m->up = xstrndup(up, (size_t)(end - up));
	} else {
		m->up = xstrdup(up);
	}
	m->up_line = up_line;
	if (down) {
		const char *end = up > down ? up : NULL;

		if (end)
			while (end > down && end[-1] != '\n')
				end--;
		m->down = end ? xstrndup(down, (size_t)(end - down)) : xstrdup(down);
		m->down_file = xstrdup(m->file);
		m->down_line = down_line;
	}
	return 0;
}

/* The file name patterns, compiled once per process (lint reads thousands of files). */
struct patterns {
	regex_t flyway, repeatable, golang, numbered, dbmate_up;
};

static struct patterns *patterns(void)
{
	static struct patterns p;
	static int compiled;

	if (!compiled) {
		regcomp(&p.flyway, "^([VU])([0-9]+([._][0-9]+)*)__(.+)\\.sql$", REG_EXTENDED);
		regcomp(&p.repeatable, "^R__(.+)\\.sql$", REG_EXTENDED);
		regcomp(&p.golang, "^([0-9]+)_(.+)\\.(up|down)\\.sql$", REG_EXTENDED);
		regcomp(&p.numbered, "^([0-9]+)([_.-](.*))?\\.sql$", REG_EXTENDED);
		regcomp(&p.dbmate_up, "^--[[:space:]]*migrate:up", REG_EXTENDED | REG_NEWLINE | REG_NOSUB);
		compiled = 1;
	}
	return &p;
}

static struct ts_migration *find_version(struct ts_migrations *set, const char *version)
{
	for (size_t i = 0; i < set->n; i++)
		if (set->v[i].version && !ts_version_cmp(set->v[i].version, version))
			return &set->v[i];
	return NULL;
}

static struct ts_migration *add(struct ts_migrations *set)
{
	set->v = xrealloc(set->v, (set->n + 1) * sizeof(*set->v));
	memset(&set->v[set->n], 0, sizeof(*set->v));
	return &set->v[set->n++];
}

static int set_format(struct ts_migrations *set, enum ts_mig_format f, const char *file,
		      const char **first_file)
{
	if (set->format == TS_FMT_NONE || set->format == f) {
		if (set->format == TS_FMT_NONE)
			*first_file = file;
		set->format = f;
		return 0;
	}
	return ts_error_set(TS_EXIT_USAGE,
			    "migrations folder mixes formats: \"%s\" is %s, \"%s\" is %s",
			    *first_file, ts_mig_format_name(set->format), file,
			    ts_mig_format_name(f));
}

/*
 * Adds the up or down part of a versioned migration; `m` gets its version
 * and description on first sight. Used by all formats but dbmate, whose
 * parts share one file.
 */
static int add_part(struct ts_migrations *set, const char *file, const char *path,
		    char *version, char *desc, int down, struct strbuf *text)
{
	struct ts_migration *m = find_version(set, version);

	if (m && (down ? m->down != NULL : m->up != NULL)) {
		ts_error_set(TS_EXIT_USAGE, "two migrations have version %s: \"%s\" and \"%s\"",
			     version, down ? m->down_file : m->file, file);
		free(version);
		free(desc);
		return -1;
	}
	if (!m) {
		m = add(set);
		m->version = version;
		m->description = desc;
	} else {
		free(version);
		if (!down) {
			free(m->description);
			m->description = desc;
		} else {
			free(desc);
		}
	}
	if (down) {
		m->down = xstrdup(text->buf);
		m->down_file = xstrdup(file);
		m->down_line = 1;
	} else {
		m->up = xstrdup(text->buf);
		m->up_line = 1;
		m->file = xstrdup(file);
		m->path = xstrdup(path);
	}
	return 0;
}

/*
 * Adds file to set by its name's format. A name of no format is an error,
 * or, with any_name (a file named on the command line), a plain file.
 */
static int classify(struct ts_migrations *set, struct patterns *pt, const char *dir,
		    const char *file, const char **first_file, int any_name)
{
	regmatch_t g[5];
	char *path = path_join(dir, file);
	struct strbuf text = STRBUF_INIT;
	int r = -1;

	if (utf8_invalid_at(file, strlen(file)) < strlen(file)) {
		char *shown = quote_bytes(path);

		ts_error_set(TS_EXIT_USAGE, "the name of migration file \"%s\" is not UTF-8 text", shown);
		ts_error_hint("rename it: its name goes into the tracking table and the reports");
		free(shown);
		goto out;
	}
	if (read_text_file(&text, path, "a migration: SQL text"))
		goto out;
	if (!regexec(&pt->flyway, file, 5, g, 0)) {
		if (set_format(set, TS_FMT_FLYWAY, file, first_file))
			goto out;
		r = add_part(set, file, path, sub(file, &g[2]),
			     describe(file + g[4].rm_so, (size_t)(g[4].rm_eo - g[4].rm_so)),
			     file[0] == 'U', &text);
	} else if (!regexec(&pt->repeatable, file, 2, g, 0)) {
		struct ts_migration *m;

		if (set_format(set, TS_FMT_FLYWAY, file, first_file))
			goto out;
		m = add(set);
		m->repeatable = 1;
		m->description = describe(file + g[1].rm_so, (size_t)(g[1].rm_eo - g[1].rm_so));
		m->file = xstrdup(file);
		m->path = xstrdup(path);
		m->up = strbuf_detach(&text);
		m->up_line = 1;
		r = 0;
	} else if (!regexec(&pt->golang, file, 4, g, 0)) {
		if (set_format(set, TS_FMT_GOLANG, file, first_file))
			goto out;
		r = add_part(set, file, path, sub(file, &g[1]),
			     describe(file + g[2].rm_so, (size_t)(g[2].rm_eo - g[2].rm_so)),
			     file[g[3].rm_so] == 'd', &text);
	} else if (!regexec(&pt->numbered, file, 4, g, 0)) {
		int dbmate = !regexec(&pt->dbmate_up, text.buf, 0, NULL, 0);

		if (set_format(set, dbmate ? TS_FMT_DBMATE : TS_FMT_PLAIN, file, first_file))
			goto out;
		if (dbmate) {
			struct ts_migration *m;
			char *version = sub(file, &g[1]);

			if ((m = find_version(set, version))) {
				ts_error_set(TS_EXIT_USAGE, "two migrations have version %s: \"%s\" and \"%s\"",
					     version, m->file, file);
				free(version);
				goto out;
			}
			m = add(set);
			m->version = version;
			m->description = g[3].rm_so >= 0 ?
				describe(file + g[3].rm_so, (size_t)(g[3].rm_eo - g[3].rm_so)) : xstrdup("");
			m->file = xstrdup(file);
			m->path = xstrdup(path);
			r = dbmate_split(m, text.buf);
		} else {
			r = add_part(set, file, path, sub(file, &g[1]),
				     g[3].rm_so >= 0 ? describe(file + g[3].rm_so,
								(size_t)(g[3].rm_eo - g[3].rm_so))
						     : xstrdup(""),
				     0, &text);
		}
	} else if (any_name) {
		struct ts_migration *m;

		if (set_format(set, TS_FMT_PLAIN, file, first_file))
			goto out;
		m = add(set);
		m->description = xstrdup("");
		m->file = xstrdup(file);
		m->path = xstrdup(path);
		m->up = strbuf_detach(&text);
		m->up_line = 1;
		r = 0;
	} else {
		ts_error_set(TS_EXIT_USAGE, "cannot tell the version of migration file \"%s\"", path);
		ts_error_hint("name it like V3__add_x.sql (Flyway), 3_add_x.up.sql (golang-migrate), 20240101120000_add_x.sql (dbmate) or 3_add_x.sql");
	}
out:
	strbuf_release(&text);
	free(path);
	return r;
}

int ts_migrations_read_file(const char *path, struct ts_migrations *out)
{
	char *dir = path_dirname(path);
	const char *file = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	const char *first_file = NULL;
	int r;

	memset(out, 0, sizeof(*out));
	r = classify(out, patterns(), dir, file, &first_file, 1);
	free(dir);
	if (r)
		ts_migrations_free(out);
	return r;
}

/*
 * Prisma's layout: a folder per migration, named <timestamp>_<name>, its
 * migration.sql inside (and migration_lock.toml beside them). The version is
 * the timestamp; the folders run in name order, which is Prisma's.
 */
static int read_prisma(struct ts_migrations *set, const char *dir, const struct strvec *folders)
{
	for (size_t i = 0; i < folders->nr; i++) {
		const char *name = folders->v[i];
		size_t digits = strspn(name, "0123456789");
		char *path = xstrfmt("%s/%s/migration.sql", dir, name);
		struct strbuf text = STRBUF_INIT;
		struct ts_migration *m;

		if (!digits || name[digits] != '_' || !name[digits + 1]) {
			ts_error_set(TS_EXIT_USAGE, "Prisma migration folder \"%s\" is not named <timestamp>_<name>",
				     name);
			free(path);
			return -1;
		}
		if (read_text_file(&text, path, "a migration: SQL text")) {
			strbuf_release(&text);
			free(path);
			return -1;
		}
		m = add(set);
		m->version = xstrndup(name, digits);
		m->description = describe(name + digits + 1, strlen(name + digits + 1));
		m->file = xstrfmt("%s/migration.sql", name);
		m->path = path;
		m->up = strbuf_detach(&text);
		m->up_line = 1;
	}
	set->format = TS_FMT_PRISMA;
	return 0;
}

int ts_migrations_discover(const char *dir, struct ts_migrations *out)
{
	struct strvec names = STRVEC_INIT, all = STRVEC_INIT, folders = STRVEC_INIT;
	const char *first_file = NULL;
	int r;

	memset(out, 0, sizeof(*out));
	if (list_sql_files(dir, "migrations", &names))
		return -1;
	list_names(dir, "", &all);
	for (size_t i = 0; i < all.nr; i++) {
		char *sub = xstrfmt("%s/%s/migration.sql", dir, all.v[i]);

		if (is_file(sub))
			strvec_push(&folders, all.v[i]);
		free(sub);
	}
	r = 0;
	if (folders.nr && names.nr)
		r = ts_error_set(TS_EXIT_USAGE,
				 "migrations folder \"%s\" mixes layouts: Prisma's folders (\"%s/migration.sql\") and files (\"%s\")",
				 dir, folders.v[0], names.v[0]);
	else if (folders.nr)
		r = read_prisma(out, dir, &folders);
	else if (!names.nr && all.nr) {
		/* something is there, and none of it is a migration twinstage reads: say so */
		size_t k = 0;
		char *first;

		while (k + 1 < all.nr && !strcmp(all.v[k], "migration_lock.toml"))
			k++;
		first = path_join(dir, all.v[k]);
		r = ts_error_set(TS_EXIT_USAGE,
				 "migrations folder \"%s\" holds no migration twinstage can read: it has \"%s\"%s%s",
				 dir, all.v[k], is_dir(first) ? " (a folder with no migration.sql)" : "",
				 all.nr > 1 ? " and more" : "");
		free(first);
		ts_error_hint("expected *.sql files (Flyway V3__x.sql, golang-migrate 3_x.up.sql, dbmate 20240101120000_x.sql, 3_x.sql) or Prisma's <timestamp>_<name>/migration.sql folders");
	}
	for (size_t i = 0; i < names.nr && !r; i++)
		r = classify(out, patterns(), dir, names.v[i], &first_file, 0);
	strvec_clear(&names);
	strvec_clear(&all);
	strvec_clear(&folders);
	for (size_t i = 0; i < out->n && !r; i++) {
		struct ts_migration *m = &out->v[i];

		if (!m->up) {
			r = ts_error_set(TS_EXIT_USAGE, "migration %s has a down part \"%s\" but no up part",
					 m->version, m->down_file);
			break;
		}
		crc32_hex(m->up, strlen(m->up), m->checksum);
	}
	if (r) {
		ts_migrations_free(out);
		return -1;
	}
	if (out->n > 1)
		qsort(out->v, out->n, sizeof(*out->v), migration_cmp);
	return 0;
}

void ts_migrations_free(struct ts_migrations *set)
{
	for (size_t i = 0; i < set->n; i++) {
		struct ts_migration *m = &set->v[i];

		free(m->version);
		free(m->description);
		free(m->file);
		free(m->path);
		free(m->up);
		free(m->down);
		free(m->down_file);
	}
	free(set->v);
	memset(set, 0, sizeof(*set));
}
