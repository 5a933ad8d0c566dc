/*
 * migrate.c: discovery, splitting, and applying.
 *
 * Statements are split and parsed by libpg_query, the parser of PostgreSQL
 * itself, so comments, string literals and dollar-quoted bodies are never
 * mistaken for statement boundaries, and whether a statement can run in a
 * transaction block (CREATE INDEX CONCURRENTLY, VACUUM, ...) is read from
 * its parse tree rather than guessed from its text.
 *
 * Each migration runs in one transaction when it can, statement by
 * statement so each one's duration and line are known; the tracking row is
 * written in the same transaction, so a migration is recorded if and only
 * if it applied.
 */
#include "migrate.h"
#include "batch.h"
#include "error.h"
#include "lint.h"
#include "trace.h"
#include "pg.h"
#include "report.h"
#include "tracking.h"
#include "strbuf.h"
#include "strvec.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <pg_query.h>
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
	default: return "none";
	}
}

int ts_line_at(const char *text, size_t offset, int first_line)
{
	int line = first_line;

	for (size_t i = 0; i < offset && text[i]; i++)
		if (text[i] == '\n')
			line++;
	return line;
}

int ts_col_at(const char *text, size_t offset)
{
	size_t i = offset;

	while (i > 0 && text[i - 1] != '\n')
		i--;
	return (int)(offset - i) + 1;
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

	if (strbuf_read_file(&text, path)) {
		ts_error_set(TS_EXIT_USAGE, "could not read migration file \"%s\": %s", path,
			     strerror(errno));
		goto out;
	}
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

int ts_migrations_discover(const char *dir, struct ts_migrations *out)
{
	struct strvec names = STRVEC_INIT;
	const char *first_file = NULL;
	int r;

	memset(out, 0, sizeof(*out));
	if (list_sql_files(dir, "migrations", &names))
		return -1;
	r = 0;
	for (size_t i = 0; i < names.nr && !r; i++)
		r = classify(out, patterns(), dir, names.v[i], &first_file, 0);
	strvec_clear(&names);
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

size_t ts_skip_comments(const char *s)
{
	size_t i = 0;

	for (;;) {
		while (s[i] && isspace((unsigned char)s[i]))
			i++;
		if (s[i] == '-' && s[i + 1] == '-') {
			while (s[i] && s[i] != '\n')
				i++;
		} else if (s[i] == '/' && s[i + 1] == '*') {
			int depth = 0;

			do {
				if (s[i] == '/' && s[i + 1] == '*') {
					depth++;
					i += 2;
				} else if (s[i] == '*' && s[i + 1] == '/') {
					depth--;
					i += 2;
				} else {
					i++;
				}
			} while (s[i] && depth > 0);
		} else {
			return i;
		}
	}
}

static int is_true(json_t *o, const char *key)
{
	return json_is_true(json_object_get(o, key));
}

static void classify_stmt(struct ts_stmt *st, json_t *stmt)
{
	const char *kind;
	json_t *node;

	json_object_foreach(stmt, kind, node) {
		st->kind = xstrdup(kind);
		if (!strcmp(kind, "TransactionStmt"))
			st->transaction_control = 1;
		else if (!strcmp(kind, "IndexStmt") || !strcmp(kind, "DropStmt"))
			st->no_transaction = is_true(node, "concurrent");
		else if (!strcmp(kind, "ReindexStmt")) {
			size_t i;
			json_t *p;

			json_array_foreach(json_object_get(node, "params"), i, p) {
				const char *n = json_string_value(json_object_get(
					json_object_get(p, "DefElem"), "defname"));

				if (n && !strcmp(n, "concurrently"))
					st->no_transaction = 1;
			}
		} else if (!strcmp(kind, "VacuumStmt") || !strcmp(kind, "CreatedbStmt") ||
			   !strcmp(kind, "DropdbStmt") || !strcmp(kind, "AlterSystemStmt") ||
			   !strcmp(kind, "CreateTableSpaceStmt") || !strcmp(kind, "DropTableSpaceStmt"))
			st->no_transaction = 1;
		break;
	}
}

int ts_stmts_parse(const char *file, const char *sql, int first_line,
		   struct ts_stmt **out, size_t *n)
{
	PgQueryParseResult pr = pg_query_parse(sql);
	json_error_t jerr;
	json_t *tree, *stmts, *item;
	size_t i, len = strlen(sql);

	*out = NULL;
	*n = 0;
	if (pr.error) {
		int pos = pr.error->cursorpos > 0 ? pr.error->cursorpos - 1 : 0;

		ts_error_set(TS_EXIT_GATE, "%s:%d: %s", file,
			     ts_line_at(sql, (size_t)pos, first_line), pr.error->message);
		pg_query_free_parse_result(pr);
		return -1;
	}
	tree = json_loads(pr.parse_tree, 0, &jerr);
	pg_query_free_parse_result(pr);
	if (!tree)
		return ts_error_set(TS_EXIT_GATE, "%s: could not read the parse tree: %s", file,
				    jerr.text);
	stmts = json_object_get(tree, "stmts");
	*out = xcalloc(json_array_size(stmts) + 1, sizeof(**out));
	json_array_foreach(stmts, i, item) {
		struct ts_stmt *st = &(*out)[*n];
		size_t loc = (size_t)json_integer_value(json_object_get(item, "stmt_location"));
		size_t slen = (size_t)json_integer_value(json_object_get(item, "stmt_len"));

		if (loc > len)
			loc = len;
		if (!slen || loc + slen > len)
			slen = len - loc;
		st->sql = xstrndup(sql + loc, slen);
		st->offset = loc;
		st->node = json_incref(json_object_get(item, "stmt"));
		st->text_line = ts_line_at(sql, loc, first_line);
		st->line = ts_line_at(st->sql, ts_skip_comments(st->sql), st->text_line);
		classify_stmt(st, json_object_get(item, "stmt"));
		(*n)++;
		if ((st->batch = ts_batch_size(file, st)) < 0) {
			json_decref(tree);
			ts_stmts_free(*out, *n);
			*out = NULL;
			*n = 0;
			return -1;
		}
	}
	json_decref(tree);
	return 0;
}

void ts_sql_names(struct json_t *node, struct strvec *out)
{
	static const char *const keys[] = { "relname", "colname", "name", "newname", "subname",
					     "idxname", "conname", "sval", NULL };
	const char *key;
	json_t *v;
	size_t i;

	if (json_is_array(node)) {
		json_array_foreach(node, i, v)
			ts_sql_names(v, out);
		return;
	}
	json_object_foreach(node, key, v) {
		if (json_is_string(v)) {
			for (i = 0; keys[i]; i++)
				if (!strcmp(key, keys[i]) && strvec_find(out, json_string_value(v)) < 0)
					strvec_push(out, json_string_value(v));
		} else {
			ts_sql_names(v, out);
		}
	}
}

void ts_sql_names_text(const char *sql, struct strvec *out)
{
	PgQueryParseResult pr = pg_query_parse(sql);
	json_t *tree = pr.error ? NULL : json_loads(pr.parse_tree, 0, NULL);

	pg_query_free_parse_result(pr);
	if (tree)
		ts_sql_names(tree, out);
	json_decref(tree);
}

void ts_stmts_free(struct ts_stmt *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].sql);
		free(v[i].kind);
		json_decref(v[i].node);
	}
	free(v);
}

static char *first_line_of(const char *sql)
{
	const char *s = sql + ts_skip_comments(sql);
	size_t n = strcspn(s, "\n");

	if (n > 100)
		return xstrfmt("%.97s...", s);
	return xstrndup(s, n);
}

/* The lint findings of a migration about the statement on `line`, as JSON. */
static json_t *findings_at(const struct ts_lint *l, int line)
{
	json_t *a = json_array();

	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].stmt_line == line)
			json_array_append_new(a, ts_lint_finding_json(&l->v[i]));
	return a;
}

/* Runs one statement (traced when trace is set); on failure sets a TS_EXIT_GATE error "file:line: ...". */
static int run_stmt(PGconn *conn, const char *file, const struct ts_stmt *st,
		    struct ts_report_migration *rm, struct ts_trace *trace, int in_tx,
		    const struct ts_lint *lint, int verbose)
{
	double t0 = now_ms();
	json_t *facts = NULL;
	PGresult *res = st->batch ? ts_batch_exec(conn, st, trace, verbose, &facts) :
			trace ? ts_trace_exec(trace, st->sql, in_tx, &facts) : PQexec(conn, st->sql);
	ExecStatusType s = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	char *excerpt = first_line_of(st->sql);
	struct ts_report_stmt *rs = ts_report_stmt_add(rm, st->line, now_ms() - t0, excerpt);

	rs->at = t0;
	free(excerpt);
	rs->facts = facts ? facts : json_object();
	json_object_set_new(rs->facts, "lint", findings_at(lint, st->line));
	{
		struct strvec names = STRVEC_INIT;
		json_t *a = json_array();

		ts_sql_names(st->node, &names);
		for (size_t i = 0; i < names.nr; i++)
			json_array_append_new(a, json_string(names.v[i]));
		json_object_set_new(rs->facts, "names", a);
		strvec_clear(&names);
	}
	if (!res) {	/* could not be batched: the reason is in the error slot */
		char *why = xstrdup(ts_error_message());

		ts_error_set(TS_EXIT_GATE, "%s:%d: %s", file, st->line, why);
		free(why);
		return -1;
	}
	if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK && s != PGRES_EMPTY_QUERY) {
		/* a batch runs rewritten text: its positions are not the file's */
		const char *pos = st->batch ? NULL : PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION);
		int line = pos ? ts_line_at(st->sql, (size_t)(atoi(pos) - 1), st->text_line) : st->line;
		char *e = ts_pg_result_error(res);

		ts_error_set(TS_EXIT_GATE, "%s:%d: %s", file, line, e);
		free(e);
		PQclear(res);
		return -1;
	}
	PQclear(res);
	return 0;
}

static int in_production(const struct ts_tracker *t, const struct ts_tracking_state *prod,
			 const struct ts_migration *m)
{
	char *sum;
	int r;

	if (!prod)
		return 0;
	r = ts_tracking_applied(t, prod, m, &sum);
	free(sum);
	return r;
}

/*
 * Applies one part of m: its up part (traced, linted, recorded in t's
 * table), or with `prev` set, its down part (un-recorded, back to version
 * *prev, which may be NULL).
 */
static int apply_part(PGconn *conn, const struct ts_tracker *t, const struct ts_migration *m,
		      enum ts_mig_format fmt, struct ts_report_migration *rm, struct ts_trace *trace,
		      const char *const *prev, int verbose)
{
	struct ts_stmt *stmts;
	struct ts_lint lint = { 0 };
	const char *file = prev && m->down_file ? m->down_file : m->file;
	const char *sql = prev ? m->down : m->up;
	size_t n;
	int tx = !m->no_transaction, r = 0;
	double t0 = now_ms();

	if (ts_stmts_parse(file, sql, prev ? m->down_line : m->up_line, &stmts, &n))
		return -1;
	if (!prev)
		ts_lint_stmts(&lint, m->file, m->up, m->up_line, stmts, n, fmt, m->no_transaction);
	/* each batch commits on its own, as on a live table */
	for (size_t i = 0; i < n; i++)
		if (stmts[i].no_transaction || stmts[i].transaction_control || stmts[i].batch)
			tx = 0;
	rm->transactional = tx;
	if ((!prev && ts_tracking_begin(conn, t, m)) || (tx && ts_pg_exec(conn, "BEGIN"))) {
		ts_stmts_free(stmts, n);
		return -1;
	}
	for (size_t i = 0; i < n && !r; i++) {
		if (ts_interrupted)
			r = ts_error_set(TS_EXIT_ENV, "interrupted");
		else
			r = run_stmt(conn, file, &stmts[i], rm, trace, tx, &lint, verbose);
	}
	ts_lint_free(&lint);
	rm->ms = now_ms() - t0;
	if (r) {
		char *saved = xstrdup(ts_error_message());
		enum ts_exit cls = ts_error_class();

		if (tx)
			PQclear(PQexec(conn, "ROLLBACK"));
		else if (!prev)
			ts_tracking_record(conn, t, m, rm->ms, 0);	/* partly applied: say so */
		ts_error_set(cls, "%s", saved);
		free(saved);
	} else {
		r = prev ? ts_tracking_unrecord(conn, t, m, *prev, rm->ms)
			 : ts_tracking_record(conn, t, m, rm->ms, 1);
		if (tx)
			r = r ? (PQclear(PQexec(conn, "ROLLBACK")), -1) : ts_pg_exec(conn, "COMMIT");
	}
	if (trace)
		ts_trace_tx_end(trace);
	ts_stmts_free(stmts, n);
	return r;
}

int ts_migrations_apply(PGconn *conn, const struct ts_migrations *set, const struct ts_tracker *t,
			const struct ts_tracking_state *prod, struct ts_report *rep,
			struct ts_trace *trace, int verbose)
{
	struct ts_tracking_state st;
	int applied = 0, r = 0;

	if (ts_tracking_prepare(conn, t) || ts_tracking_read(conn, t, &st))
		return ts_error_prefix("dev side");
	if (ts_tracking_check(t, &st, "dev side")) {
		ts_tracking_state_free(&st);
		return -1;
	}
	for (size_t i = 0; i < set->n && !r; i++) {
		const struct ts_migration *m = &set->v[i];
		struct ts_report_migration *rm;
		char *recorded, *now;
		int done = ts_tracking_applied(t, &st, m, &recorded);

		now = ts_tracking_checksum(t, m);
		/*
		 * A file applied on the dev side whose checksum changed since was
		 * edited after applying. When production applied it too, that is
		 * drift, reported on its own: production's history stands.
		 */
		if (done && !m->repeatable && recorded && *now && strcmp(recorded, now) &&
		    !in_production(t, prod, m)) {
			r = ts_error_set(TS_EXIT_USAGE,
					 "migration \"%s\" was changed after it was applied (checksum %s recorded, %s now)",
					 m->file, recorded, now);
			ts_error_hint("restore the file, or start from a fresh clone with \"twinstage down\" and \"twinstage up\"");
		}
		free(recorded);
		free(now);
		if (done || r)
			continue;
		rm = ts_report_migration_add(rep, m->file);
		rm->version = m->version ? xstrdup(m->version) : NULL;
		rm->description = xstrdup(m->description);
		if (verbose) {
			fprintf(stderr, "    %s ...", m->file);
			fflush(stderr);
		}
		if (apply_part(conn, t, m, set->format, rm, trace, NULL, verbose)) {
			rm->status = xstrdup("failed");
			rm->error = xstrdup(ts_error_message());
			if (verbose)
				fprintf(stderr, " failed\n");
			for (size_t j = i + 1; j < set->n; j++) {
				struct ts_report_migration *nr = ts_report_migration_add(rep, set->v[j].file);

				nr->status = xstrdup("not run");
			}
			r = -1;
			break;
		}
		rm->status = xstrdup("applied");
		if (verbose)
			fprintf(stderr, " %.0f ms\n", rm->ms);
		applied++;
	}
	ts_tracking_state_free(&st);
	return r ? -1 : applied;
}

int ts_migrations_down(PGconn *conn, const struct ts_migrations *set, const struct ts_tracker *t,
		       const struct ts_migration *m, double *ms)
{
	const char *prev = NULL;
	struct ts_report scratch;
	struct ts_report_migration *rm;
	int r;

	for (size_t i = 0; i < set->n && &set->v[i] != m; i++)
		if (set->v[i].version)
			prev = set->v[i].version;
	/* the statements are not reported one by one: only the outcome is */
	ts_report_init(&scratch, "rollback");
	rm = ts_report_migration_add(&scratch, m->file);
	r = apply_part(conn, t, m, set->format, rm, NULL, &prev, 0);
	*ms = rm->ms;
	ts_report_free(&scratch);
	return r;
}
