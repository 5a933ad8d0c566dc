/*
 * statement_log.c: the jsonlog of a server, read line by line with
 * jansson. See statement_log.h.
 */
#include "pg/statement_log.h"
#include "core/error.h"
#include "core/strbuf.h"
#include "core/util.h"
#include "core/wrapper.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double ts_log_time_ms(const char *s)
{
	struct tm tm;
	int ms = 0;
	char tz[16] = "";

	memset(&tm, 0, sizeof(tm));
	if (!s || sscanf(s, "%d-%d-%d %d:%d:%d.%d %15s", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
			 &tm.tm_min, &tm.tm_sec, &ms, tz) != 8 || (strcmp(tz, "UTC") && strcmp(tz, "GMT")))
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (double)timegm(&tm) * 1000.0 + ms;
}

static const char *jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/*
 * A "duration: 1.234 ms  statement: SQL" or "... execute NAME: SQL" line:
 * its duration and where its text starts. Parse and bind lines, and any
 * other message, are not statements that ran.
 */
static const char *statement_of(const char *msg, double *ms)
{
	char *end;
	const char *p;

	if (strncmp(msg, "duration: ", 10))
		return NULL;
	*ms = strtod(msg + 10, &end);
	if (end == msg + 10 || strncmp(end, " ms  ", 5))
		return NULL;
	p = end + 5;
	if (!strncmp(p, "statement: ", 11))
		return p + 11;
	if (!strncmp(p, "execute ", 8) && (p = strstr(p, ": ")))
		return p + 2;
	return NULL;
}

static void keep(struct ts_statement_log *out, json_t *o, const char *sql, double ms, int error)
{
	struct ts_logged *e;
	const char *detail = jstr(o, "detail");

	out->v = xrealloc(out->v, (out->n + 1) * sizeof(*out->v));
	e = &out->v[out->n++];
	memset(e, 0, sizeof(*e));
	e->pid = (int)json_integer_value(json_object_get(o, "pid"));
	e->end_ms = ts_log_time_ms(jstr(o, "timestamp"));
	e->ms = ms;
	e->sql = xstrdup(sql);
	if (detail && !strncmp(detail, "parameters: ", 12))
		e->params = xstrdup(detail + 12);
	if (jstr(o, "application_name"))
		e->app = xstrdup(jstr(o, "application_name"));
	if (error) {
		e->state = xstrdup(jstr(o, "state_code") ? jstr(o, "state_code") : "XX000");
		e->message = xstrdup(jstr(o, "message") ? jstr(o, "message") : "");
	}
}

int ts_statement_log_read(const char *path, off_t from, const char *marker, int wait_ms, const char *skip_app,
			  struct ts_statement_log *out)
{
	FILE *fp;
	char *line = NULL;
	size_t cap = 0, skip_len = skip_app ? strlen(skip_app) : 0;
	ssize_t len;
	double until = now_ms() + wait_ms;
	long lineno = 0;
	int found = 0, r = 0;

	memset(out, 0, sizeof(*out));
	if (!(fp = fopen(path, "r")))
		return ts_error_set(TS_EXIT_ENV, "could not read the dev side's statement log \"%s\"", path);
	if (from > 0 && fseeko(fp, from, SEEK_SET)) {
		fclose(fp);
		return ts_error_set(TS_EXIT_ENV, "could not read the dev side's statement log \"%s\"", path);
	}
	while (!found && !r) {
		json_error_t jerr;
		json_t *o;
		const char *msg, *sql, *app;
		double ms = 0;

		if ((len = getline(&line, &cap, fp)) < 0 || line[len - 1] != '\n') {
			/* the end for now: the rest is being written */
			if (len > 0)
				fseeko(fp, -(off_t)len, SEEK_CUR);
			clearerr(fp);
			if (now_ms() > until) {
				r = ts_error_set(TS_EXIT_ENV, "the dev side's statement log \"%s\" did not say that the tool's statements were all written (no mark after %d s)",
						 path, wait_ms / 1000);
				break;
			}
			usleep(10000);
			continue;
		}
		lineno++;
		out->lines++;
		if (!(o = json_loadb(line, (size_t)len, 0, &jerr))) {
			r = ts_error_set(TS_EXIT_ENV, "%s: line %ld after byte %lld is not JSON: %s", path, lineno,
					 (long long)from, jerr.text);
			break;
		}
		msg = jstr(o, "message");
		app = jstr(o, "application_name");
		if (msg && marker && strstr(msg, marker)) {
			found = 1;
		} else if (msg && (!skip_app || !app || strncmp(app, skip_app, skip_len)) &&
			   !strcmp(jstr(o, "backend_type") ? jstr(o, "backend_type") : "", "client backend")) {
			if ((sql = statement_of(msg, &ms)))
				keep(out, o, sql, ms, 0);
			else if (jstr(o, "statement") && !strcmp(jstr(o, "error_severity") ?: "", "ERROR"))
				keep(out, o, jstr(o, "statement"), 0, 1);
		}
		json_decref(o);
	}
	free(line);
	fclose(fp);
	if (r)
		ts_statement_log_free(out);
	return r;
}

void ts_statement_log_free(struct ts_statement_log *log)
{
	for (size_t i = 0; i < log->n; i++) {
		free(log->v[i].sql);
		free(log->v[i].params);
		free(log->v[i].app);
		free(log->v[i].state);
		free(log->v[i].message);
	}
	free(log->v);
	memset(log, 0, sizeof(*log));
}
