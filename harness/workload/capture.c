/*
 * capture.c: statements gathered by shape and written as a workload. See
 * capture.h.
 */
#include "workload/capture.h"
#include "core/error.h"
#include "core/strbuf.h"
#include "core/util.h"
#include "core/wrapper.h"
#include "migrate/query.h"
#include "migrate/sql.h"

#include <errno.h>
#include <pg_query.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void ts_capture_init(struct ts_capture *c, const struct ts_capture_opts *o, const char *database)
{
	memset(c, 0, sizeof(*c));
	c->opts = o;
	c->database = database;
}

void ts_capture_free(struct ts_capture *c)
{
	for (size_t i = 0; i < c->n; i++) {
		free(c->v[i].sql);
		strvec_clear(&c->v[i].samples);
		strvec_clear(&c->v[i].roles);
		free(c->v[i].role_calls);
	}
	free(c->v);
	strvec_clear(&c->utility_kinds);
	strvec_clear(&c->unreadable_at);
	free(c->database_read);
	memset(c, 0, sizeof(*c));
}

time_t ts_capture_time(const char *s)
{
	struct tm tm;
	const char *end;

	memset(&tm, 0, sizeof(tm));
	if (!s || (!(end = strptime(s, "%Y-%m-%d %H:%M:%S", &tm)) && !(end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)) &&
		   !(end = strptime(s, "%Y-%m-%d %H:%M", &tm)) && !(end = strptime(s, "%Y-%m-%d", &tm))))
		return -1;
	return timegm(&tm);
}

void ts_capture_unreadable(struct ts_capture *c, const char *file, long line)
{
	c->unreadable++;
	if (c->unreadable_at.nr < 5)
		strvec_pushf(&c->unreadable_at, "%s:%ld", file, line);
}

static struct ts_captured *find_or_add(struct ts_capture *c, const char *fp, int params, int literal,
				       const char *sql)
{
	struct ts_captured *e;

	/* a workload of 10,000 shapes is read once: a linear scan from the newest is enough */
	for (size_t i = c->n; i-- > 0;)
		if (!strcmp(c->v[i].fp, fp) && c->v[i].params == params && c->v[i].literal == literal)
			return &c->v[i];
	if (c->n == c->alloc) {
		c->alloc = c->alloc ? 2 * c->alloc : 256;
		c->v = xrealloc(c->v, c->alloc * sizeof(*c->v));
	}
	e = &c->v[c->n++];
	memset(e, 0, sizeof(*e));
	memcpy(e->fp, fp, 17);
	e->sql = xstrdup(sql);
	e->params = params;
	e->literal = literal;
	return e;
}

static void add_role(struct ts_captured *e, const char *role, long calls)
{
	int at = strvec_find(&e->roles, role);

	if (at < 0) {
		strvec_push(&e->roles, role);
		e->role_calls = xrealloc(e->role_calls, e->roles.nr * sizeof(*e->role_calls));
		at = (int)e->roles.nr - 1;
		e->role_calls[at] = 0;
	}
	e->role_calls[at] += calls;
}

/* A statement's text trimmed, without its ';'. */
static char *trimmed(const char *s, size_t n)
{
	while (n && (s[n - 1] == ';' || s[n - 1] == ' ' || s[n - 1] == '\n' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		n--;
	while (n && (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r')) {
		s++;
		n--;
	}
	return xstrndup(s, n);
}

static void add_one(struct ts_capture *c, const struct ts_capture_rec *r, const char *sql)
{
	const struct ts_capture_opts *o = c->opts;
	struct ts_query_shape q;
	struct strvec values = STRVEC_INIT;
	struct ts_captured *e;
	char *normalized = NULL, fp[17];
	const char *text;
	int literal = 0;

	if (ts_query_shape(sql, &q)) {
		ts_error_clear();
		c->skipped[TS_SKIP_UNPARSED]++;
		return;
	}
	if (!q.query) {
		c->skipped[TS_SKIP_UTILITY]++;
		/* "VariableSetStmt" is shown as "VariableSet" */
		if (strlen(q.kind) > 4 && !strcmp(q.kind + strlen(q.kind) - 4, "Stmt"))
			q.kind[strlen(q.kind) - 4] = 0;
		if (strvec_find(&c->utility_kinds, q.kind) < 0 && c->utility_kinds.nr < 8)
			strvec_push(&c->utility_kinds, q.kind);
		return;
	}
	if (q.catalog_only) {
		c->skipped[TS_SKIP_CATALOG]++;
		return;
	}
	if (r->params && !o->no_params) {
		/* the extended protocol: the text has $n, the values come apart */
		if (ts_query_log_params(r->params, &values) || values.nr != (size_t)q.params)
			strvec_clear(&values);
	} else if (!r->normalized) {
		/*
		 * its constants become $n and their values @params (none kept
		 * with --no-params); when they cannot be told apart, or one only
		 * a literal may be (interval '1 day') leaves a $n that does not
		 * parse, it is kept as it ran
		 */
		if (ts_query_normalize(sql, &normalized, &values) || ts_query_shape(normalized, &q)) {
			ts_error_clear();
			free(normalized);
			normalized = NULL;
			strvec_clear(&values);
			literal = 1;
		}
		if (o->no_params)
			strvec_clear(&values);
	}
	text = normalized ? normalized : sql;
	if ((literal && o->no_params) || ts_query_fingerprint(text, fp)) {
		c->skipped[literal && o->no_params ? TS_SKIP_VALUES : TS_SKIP_UNPARSED]++;
		free(normalized);
		strvec_clear(&values);
		return;
	}
	e = find_or_add(c, fp, literal ? 0 : q.params, literal, text);
	e->calls += r->calls;
	add_role(e, r->role ? r->role : "", r->calls);
	if (values.nr && !o->no_params && e->samples.nr < (size_t)o->samples) {
		struct strbuf sb = STRBUF_INIT;

		for (size_t i = 0; i < values.nr; i++)
			strbuf_addf(&sb, "%s%s", i ? ", " : "", values.v[i]);
		if (strvec_find(&e->samples, sb.buf) < 0)
			strvec_push(&e->samples, sb.buf);
		strbuf_release(&sb);
	}
	free(normalized);
	strvec_clear(&values);
}

static int starts_twinstage(const char *app)
{
	return app && (!strncmp(app, "twinstage", 9) || strstr(app, "(rehearsed by twinstage)"));
}

void ts_capture_add(struct ts_capture *c, const struct ts_capture_rec *r)
{
	const struct ts_capture_opts *o = c->opts;
	const char *db = o->database ? o->database : c->database;
	PgQuerySplitResult sr;

	c->seen++;
	c->calls_seen += r->calls;
	if (starts_twinstage(r->application)) {
		c->skipped[TS_SKIP_TWINSTAGE]++;
		return;
	}
	/* a copy of the database (twinstage's own, or a backup's) is not the application */
	if (r->application && (!strcmp(r->application, "pg_dump") || !strcmp(r->application, "pg_dumpall") ||
			       !strcmp(r->application, "pg_basebackup"))) {
		c->skipped[TS_SKIP_TOOLS]++;
		return;
	}
	if (db && r->database && strcmp(db, r->database)) {
		c->skipped[TS_SKIP_DATABASE]++;
		return;
	}
	if (o->user && (!r->role || strcmp(o->user, r->role))) {
		c->skipped[TS_SKIP_USER]++;
		return;
	}
	if (o->application && (!r->application || strcmp(o->application, r->application))) {
		c->skipped[TS_SKIP_APPLICATION]++;
		return;
	}
	if (r->when && ((o->since && r->when < o->since) || (o->until && r->when > o->until))) {
		c->skipped[TS_SKIP_TIME]++;
		return;
	}
	if (!strcmp(r->sql, "<insufficient privilege>")) {
		c->skipped[TS_SKIP_HIDDEN]++;
		return;
	}
	/* a simple query may hold several statements: each is one */
	sr = pg_query_split_with_scanner(r->sql);
	if (sr.error || sr.n_stmts == 0) {
		c->skipped[TS_SKIP_UNPARSED]++;
	} else {
		for (int i = 0; i < sr.n_stmts; i++) {
			char *one = trimmed(r->sql + sr.stmts[i]->stmt_location, (size_t)sr.stmts[i]->stmt_len);
			/* its leading comments would stand among the file's annotations */
			size_t skip = ts_skip_comments(one);

			memmove(one, one + skip, strlen(one + skip) + 1);

			if (*one)
				add_one(c, r, one);
			free(one);
		}
	}
	pg_query_free_split_result(sr);
}

static int by_fingerprint(const void *a, const void *b)
{
	const struct ts_captured *x = a, *y = b;
	int d = strcmp(x->fp, y->fp);

	return d ? d : x->params != y->params ? x->params - y->params : x->literal - y->literal;
}

/* The role that ran it most (the first such in name order, for a stable file). */
static const char *main_role(const struct ts_captured *e)
{
	const char *best = NULL;
	long most = -1;

	for (size_t i = 0; i < e->roles.nr; i++)
		if (e->role_calls[i] > most || (e->role_calls[i] == most && strcmp(e->roles.v[i], best) < 0)) {
			best = e->roles.v[i];
			most = e->role_calls[i];
		}
	return best && *best ? best : NULL;
}

/* A name for the report: the statement's start on one line. */
static void add_name(struct strbuf *sb, const char *sql)
{
	size_t n = 0;

	strbuf_addstr(sb, "-- @name ");
	for (const char *p = sql; *p && n < 60; p++) {
		if (*p == '\n' || *p == '\r' || *p == '\t' || *p == ' ') {
			if (sb->len && sb->buf[sb->len - 1] != ' ') {
				strbuf_addch(sb, ' ');
				n++;
			}
			continue;
		}
		strbuf_addch(sb, *p);
		n++;
	}
	strbuf_rtrim(sb);
	if (n >= 60)
		strbuf_addstr(sb, "...");
	strbuf_addch(sb, '\n');
}

long ts_capture_write(struct ts_capture *c, const char *dir, const char *app, const char *source,
		      char **written)
{
	struct strbuf sb = STRBUF_INIT;
	char *path, *tmp, when[32];
	long kept = 0, calls = 0;
	int r;

	*written = NULL;
	if (c->n > 1)
		qsort(c->v, c->n, sizeof(*c->v), by_fingerprint);
	for (size_t i = 0; i < c->n; i++) {
		if (c->v[i].calls < c->opts->min_calls) {
			c->skipped[TS_SKIP_MIN_CALLS]++;
			continue;
		}
		kept++;
		calls += c->v[i].calls;
	}
	iso_time(when, sizeof(when));
	strbuf_addf(&sb, "-- The statements %s ran in production, captured by twinstage capture\n"
			 "-- from %s on %s: %ld statement%s, %ld call%s.\n"
			 "-- Each runs on the production clone and on the dev side: \"same\" must give\n"
			 "-- the same rows on both, \"prepares\" must be accepted (prepared and planned).\n",
		    app, source, when, kept, kept == 1 ? "" : "s", calls, calls == 1 ? "" : "s");
	if (!c->opts->no_params)
		strbuf_addstr(&sb, "-- The values after each params annotation are production's: review them\n"
				   "-- before committing this file, or capture again with --no-params.\n");
	for (size_t i = 0; i < c->n; i++) {
		const struct ts_captured *e = &c->v[i];
		const char *role = main_role(e);

		if (e->calls < c->opts->min_calls)
			continue;
		strbuf_addf(&sb, "\n-- fingerprint %s\n", e->fp);
		add_name(&sb, e->sql);
		if (role)
			strbuf_addf(&sb, "-- @role %s\n", role);
		strbuf_addf(&sb, "-- @calls %ld\n", e->calls);
		if (e->params && !e->samples.nr) {
			strbuf_addstr(&sb, "-- @expect prepares\n");
		} else {
			strbuf_addstr(&sb, "-- @expect same\n");
			for (size_t k = 0; k < e->samples.nr && e->params; k++)
				strbuf_addf(&sb, "-- @params %s\n", e->samples.v[k]);
		}
		strbuf_addf(&sb, "%s;\n", e->sql);
	}
	if (mkdir_p(dir, 0755)) {
		strbuf_release(&sb);
		return ts_error_set(TS_EXIT_USAGE, "could not make the workload folder %s: %s", dir, strerror(errno));
	}
	path = path_join(dir, "captured.sql");
	tmp = xstrfmt("%s.tmp-%d", path, (int)getpid());
	r = write_file(tmp, sb.buf, sb.len);
	if (!r && rename(tmp, path)) {
		r = ts_error_set(TS_EXIT_USAGE, "could not write %s: %s", path, strerror(errno));
		unlink(tmp);
	} else if (r) {
		unlink(tmp);
	}
	strbuf_release(&sb);
	free(tmp);
	if (r) {
		free(path);
		return -1;
	}
	*written = path;
	return kept;
}

void ts_capture_summary(const struct ts_capture *c, long kept, FILE *out)
{
	static const char *const why[TS_SKIP_N] = {
		[TS_SKIP_UTILITY] = "utility statements",
		[TS_SKIP_TWINSTAGE] = "of twinstage's own sessions",
		[TS_SKIP_DATABASE] = "of other databases",
		[TS_SKIP_USER] = "of other roles (--user)",
		[TS_SKIP_APPLICATION] = "of other applications (--application)",
		[TS_SKIP_TIME] = "outside --since/--until",
		[TS_SKIP_UNPARSED] = "that do not parse",
		[TS_SKIP_CATALOG] = "that read only the system catalogs",
		[TS_SKIP_HIDDEN] = "hidden from the capture's role (grant it pg_read_all_stats)",
		[TS_SKIP_MIN_CALLS] = "statements below --min-calls",
		[TS_SKIP_VALUES] = "whose values could not be taken out of their text (--no-params)",
		[TS_SKIP_TOOLS] = "of pg_dump, pg_dumpall and pg_basebackup",
	};
	int any = 0;

	fprintf(out, "  read %zu statement%s (%ld call%s); kept %ld distinct statement%s\n", c->seen,
		c->seen == 1 ? "" : "s", c->calls_seen, c->calls_seen == 1 ? "" : "s", kept, kept == 1 ? "" : "s");
	for (int i = 0; i < TS_SKIP_N; i++) {
		if (!c->skipped[i])
			continue;
		fprintf(out, "%s %zu ", any++ ? "," : "  skipped:", c->skipped[i]);
		fputs(why[i], out);
		if (i == TS_SKIP_UTILITY && c->utility_kinds.nr) {
			fprintf(out, " (");
			for (size_t k = 0; k < c->utility_kinds.nr; k++)
				fprintf(out, "%s%s", k ? ", " : "", c->utility_kinds.v[k]);
			fprintf(out, ")");
		}
	}
	if (any)
		fprintf(out, "\n");
	if (c->unreadable) {
		fprintf(out, "  unreadable log lines: %zu (", c->unreadable);
		for (size_t i = 0; i < c->unreadable_at.nr; i++)
			fprintf(out, "%s%s", i ? ", " : "", c->unreadable_at.v[i]);
		fprintf(out, "%s)\n", c->unreadable > c->unreadable_at.nr ? ", ..." : "");
	}
}
