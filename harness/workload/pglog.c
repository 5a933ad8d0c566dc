/*
 * pglog.c: server logs read for their statements. See pglog.h.
 */
#include "workload/pglog.h"
#include "core/error.h"
#include "core/strbuf.h"
#include "core/strvec.h"
#include "core/util.h"
#include "core/wrapper.h"
#include "workload/capture.h"

#include <csv.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One log entry, whatever the format. */
struct entry {
	const char *when, *user, *db, *app, *severity, *message, *detail;
};

static int starts(const char *s, const char *prefix)
{
	return !strncmp(s, prefix, strlen(prefix));
}

/* What one entry says: a statement the application ran, or nothing. */
static void take(struct ts_capture *c, const struct entry *e)
{
	struct ts_capture_rec r = { .role = e->user, .database = e->db, .application = e->app, .calls = 1 };
	const char *m = e->message;
	time_t when;

	c->entries_read++;
	if (!m || !e->severity || strcmp(e->severity, "LOG"))
		return;
	if (starts(m, "duration: ")) {
		const char *rest = strstr(m, " ms  ");

		if (!rest)
			return;		/* the duration of a statement logged before */
		m = rest + 5;
	}
	if (starts(m, "statement: ")) {
		r.sql = m + 11;
	} else if (starts(m, "execute ")) {
		const char *colon = strstr(m, ": ");

		if (!colon)
			return;
		r.sql = colon + 2;
		if (e->detail && starts(e->detail, "parameters: "))
			r.params = e->detail + 12;
	} else {
		return;		/* parse, bind, and what is not a statement */
	}
	when = e->when && *e->when ? ts_capture_time(e->when) : 0;
	r.when = when > 0 ? when : 0;
	ts_capture_add(c, &r);
}

static const char *nonempty(const char *s)
{
	return s && *s ? s : NULL;
}

/* ---- csvlog ---- */

struct csv_state {
	struct ts_capture *c;
	const char *file;
	struct strvec fields;
	long line, record_line;
};

static void csv_field(void *s, size_t len, void *data)
{
	struct csv_state *st = data;
	char *v = xstrndup(s ? s : "", s ? len : 0);

	strvec_push(&st->fields, v);
	free(v);
}

static void csv_record(int ch, void *data)
{
	struct csv_state *st = data;
	struct strvec *f = &st->fields;

	/* PostgreSQL 13 writes 23 columns, 14 and later 26 */
	if (f->nr >= 23 && f->nr <= 26 && ts_capture_time(f->v[0]) > 0) {
		struct entry e = { .when = f->v[0], .user = nonempty(f->v[1]), .db = nonempty(f->v[2]),
				   .severity = f->v[11], .message = f->v[13], .detail = f->v[14],
				   .app = nonempty(f->v[22]) };

		take(st->c, &e);
	} else if (f->nr > 1 || (f->nr == 1 && *f->v[0])) {
		ts_capture_unreadable(st->c, st->file, st->record_line);
	}
	strvec_clear(f);
	st->record_line = st->line + 1;
}

static int read_csv(FILE *fp, const char *file, struct ts_capture *c)
{
	struct csv_parser p;
	struct csv_state st = { .c = c, .file = file, .fields = STRVEC_INIT, .line = 0, .record_line = 1 };
	char *buf = NULL;
	size_t cap = 0;
	ssize_t n;
	int r = 0;

	if (csv_init(&p, CSV_APPEND_NULL))
		return ts_error_set(TS_EXIT_ENV, "could not start the CSV reader");
	while ((n = getline(&buf, &cap, fp)) > 0) {
		st.line++;
		if (csv_parse(&p, buf, (size_t)n, csv_field, csv_record, &st) != (size_t)n) {
			ts_capture_unreadable(c, file, st.line);
			/* start again at the next line */
			csv_free(&p);
			strvec_clear(&st.fields);
			csv_init(&p, CSV_APPEND_NULL);
			st.record_line = st.line + 1;
		}
	}
	if (csv_fini(&p, csv_field, csv_record, &st))
		ts_capture_unreadable(c, file, st.record_line);
	csv_free(&p);
	strvec_clear(&st.fields);
	free(buf);
	return r;
}

/* ---- jsonlog ---- */

static int read_json(FILE *fp, const char *file, struct ts_capture *c)
{
	char *buf = NULL;
	size_t cap = 0;
	ssize_t n;
	long line = 0;

	while ((n = getline(&buf, &cap, fp)) > 0) {
		json_t *o;

		line++;
		if (n == 1 && buf[0] == '\n')
			continue;
		o = json_loadb(buf, (size_t)n, JSON_DISABLE_EOF_CHECK, NULL);
		if (!json_is_object(o) || !json_is_string(json_object_get(o, "timestamp"))) {
			ts_capture_unreadable(c, file, line);
		} else {
			struct entry e = {
				.when = json_string_value(json_object_get(o, "timestamp")),
				.user = json_string_value(json_object_get(o, "user")),
				.db = json_string_value(json_object_get(o, "dbname")),
				.app = nonempty(json_string_value(json_object_get(o, "application_name"))),
				.severity = json_string_value(json_object_get(o, "error_severity")),
				.message = json_string_value(json_object_get(o, "message")),
				.detail = json_string_value(json_object_get(o, "detail")),
			};

			take(c, &e);
		}
		json_decref(o);
	}
	free(buf);
	return 0;
}

/* ---- stderr, with a log_line_prefix ---- */

/* The prefix's parts: literal text, or one escape ('m', 'p', 'u', ... ; 'q' marks where a session's part starts). */
struct part {
	char esc;
	char *text;
};

static size_t prefix_parts(const char *prefix, struct part *parts, size_t max)
{
	size_t n = 0;
	struct strbuf lit = STRBUF_INIT;

	for (const char *p = prefix; *p && n + 2 < max; p++) {
		if (*p == '%' && p[1] && p[1] != '%') {
			if (lit.len)
				parts[n++] = (struct part){ 0, strbuf_detach(&lit) };
			/* %-10u: a padded value, read the same */
			while (p[1] == '-' || (p[1] >= '0' && p[1] <= '9'))
				p++;
			parts[n++] = (struct part){ p[1], NULL };
			p++;
		} else {
			strbuf_addch(&lit, *p == '%' ? *++p : *p);
		}
	}
	if (lit.len)
		parts[n++] = (struct part){ 0, strbuf_detach(&lit) };
	strbuf_release(&lit);
	return n;
}

struct fields {
	char *when, *user, *db, *app, *pid;
};

static void fields_free(struct fields *f)
{
	free(f->when);
	free(f->user);
	free(f->db);
	free(f->app);
	free(f->pid);
	memset(f, 0, sizeof(*f));
}

/* Matches parts[0..n) at the start of line; the offset past them, or -1. */
static long match(const char *line, const struct part *parts, size_t n, struct fields *f)
{
	const char *p = line;

	for (size_t i = 0; i < n; i++) {
		const struct part *pt = &parts[i];
		const char *end;
		char **slot = NULL;

		if (!pt->esc) {
			if (strncmp(p, pt->text, strlen(pt->text)))
				return -1;
			p += strlen(pt->text);
			continue;
		}
		if (pt->esc == 'q')
			continue;
		if (i + 1 < n && !parts[i + 1].esc)
			end = strstr(p, parts[i + 1].text);
		else if (pt->esc == 'p' || pt->esc == 'l')
			for (end = p; *end >= '0' && *end <= '9'; end++)
				;
		else
			end = NULL;
		if (!end)
			return -1;
		switch (pt->esc) {
		case 'm': case 't': case 'n': slot = &f->when; break;
		case 'u': slot = &f->user; break;
		case 'd': slot = &f->db; break;
		case 'a': slot = &f->app; break;
		case 'p': slot = &f->pid; break;
		}
		if ((pt->esc == 'p' || pt->esc == 'l') && end == p)
			return -1;
		if (slot) {
			free(*slot);
			*slot = xstrndup(p, (size_t)(end - p));
		}
		p = end;
	}
	return p - line;
}

struct pending {
	struct fields f;
	char *severity;
	struct strbuf message, detail;
	int in_detail;		/* continuation lines go to the detail */
	int open;
};

static void flush(struct ts_capture *c, struct pending *pe)
{
	if (pe->open) {
		struct entry e = { .when = pe->f.when, .user = nonempty(pe->f.user), .db = nonempty(pe->f.db),
				   .app = nonempty(pe->f.app), .severity = pe->severity, .message = pe->message.buf,
				   .detail = pe->detail.len ? pe->detail.buf : NULL };

		take(c, &e);
	}
	fields_free(&pe->f);
	free(pe->severity);
	pe->severity = NULL;
	strbuf_reset(&pe->message);
	strbuf_reset(&pe->detail);
	pe->in_detail = pe->open = 0;
}

static int read_stderr(FILE *fp, const char *file, const char *prefix, struct ts_capture *c)
{
	struct part parts[64];
	size_t n = prefix_parts(prefix, parts, 64), q = n;
	struct pending pe = { .message = STRBUF_INIT, .detail = STRBUF_INIT };
	char *buf = NULL;
	size_t cap = 0;
	ssize_t len;
	long line = 0;

	for (size_t i = 0; i < n; i++)
		if (parts[i].esc == 'q')
			q = i;
	while ((len = getline(&buf, &cap, fp)) > 0) {
		struct fields f = { 0 };
		long at;
		char *sev, *colon;

		line++;
		if (buf[len - 1] == '\n')
			buf[--len] = 0;
		if (buf[0] == '\t' && pe.open) {
			struct strbuf *to = pe.in_detail ? &pe.detail : &pe.message;

			strbuf_addch(to, '\n');
			strbuf_addstr(to, buf + 1);
			continue;
		}
		if (!len)
			continue;
		at = match(buf, parts, n, &f);
		/* a process that is not a session writes only the part before %q */
		if (at < 0 && q < n) {
			fields_free(&f);
			at = match(buf, parts, q, &f);
		}
		colon = at >= 0 ? strstr(buf + at, ":  ") : NULL;
		if (!colon) {
			fields_free(&f);
			ts_capture_unreadable(c, file, line);
			continue;
		}
		sev = xstrndup(buf + at, (size_t)(colon - buf - at));
		if (pe.open && !strcmp(sev, "DETAIL") &&
		    (!f.pid || !pe.f.pid || !strcmp(f.pid, pe.f.pid))) {
			strbuf_addstr(&pe.detail, colon + 3);
			pe.in_detail = 1;
			free(sev);
			fields_free(&f);
			continue;
		}
		if (pe.open && (!strcmp(sev, "HINT") || !strcmp(sev, "CONTEXT") || !strcmp(sev, "STATEMENT") ||
				!strcmp(sev, "LOCATION"))) {
			pe.in_detail = 2;	/* its continuation lines are not the message's */
			free(sev);
			fields_free(&f);
			continue;
		}
		flush(c, &pe);
		pe.f = f;
		pe.severity = sev;
		strbuf_addstr(&pe.message, colon + 3);
		pe.open = 1;
	}
	flush(c, &pe);
	strbuf_release(&pe.message);
	strbuf_release(&pe.detail);
	for (size_t i = 0; i < n; i++)
		free(parts[i].text);
	free(buf);
	return 0;
}

/* ---- the file ---- */

int ts_pglog_capture(const char *path, struct ts_capture *c)
{
	return ts_pglog_capture_as(path, NULL, c);
}

int ts_pglog_capture_as(const char *path, const char *kind, struct ts_capture *c)
{
	FILE *fp;
	int ch, r;
	size_t before = c->entries_read, unreadable = c->unreadable;

	if (is_dir(path))
		return ts_error_set(TS_EXIT_USAGE, "%s: is a folder, not a server log", path);
	if (!(fp = fopen(path, "r")))
		return ts_error_set(TS_EXIT_USAGE, "cannot read the log %s: %s", path, strerror(errno));
	while ((ch = getc(fp)) == ' ' || ch == '\n' || ch == '\r' || ch == '\t')
		;
	if (ch == EOF) {
		fclose(fp);
		return ts_error_set(TS_EXIT_USAGE, "%s: the log is empty", path);
	}
	rewind(fp);
	if (!kind)
		kind = ch == '{' || ends_with(path, ".json") ? "jsonlog" : ends_with(path, ".csv") ? "csvlog" : "stderr";
	if (!strcmp(kind, "jsonlog"))
		r = read_json(fp, path, c);
	else if (!strcmp(kind, "csvlog"))
		r = read_csv(fp, path, c);
	else
		r = read_stderr(fp, path, c->opts->log_prefix ? c->opts->log_prefix : TS_PGLOG_DEFAULT_PREFIX, c);
	fclose(fp);
	if (!r && c->entries_read == before) {
		/* its lines are not a log's: they were counted, but none read */
		c->unreadable = unreadable;
		while (c->unreadable_at.nr && !strncmp(c->unreadable_at.v[c->unreadable_at.nr - 1], path, strlen(path)))
		{
			free(c->unreadable_at.v[--c->unreadable_at.nr]);
			c->unreadable_at.v[c->unreadable_at.nr] = NULL;
		}
		r = ts_error_set(TS_EXIT_USAGE, "%s: not a PostgreSQL server log (read as %s%s%s%s)", path, kind,
				 strcmp(kind, "stderr") ? "" : " with log_line_prefix '",
				 strcmp(kind, "stderr") ? "" : (c->opts->log_prefix ? c->opts->log_prefix : TS_PGLOG_DEFAULT_PREFIX),
				 strcmp(kind, "stderr") ? "" : "'");
		ts_error_hint("twinstage reads csvlog (.csv), jsonlog (.json) and stderr logs; for stderr, --log-prefix gives the server's log_line_prefix");
	}
	return r;
}
