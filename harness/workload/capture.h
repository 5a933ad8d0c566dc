/*
 * capture: the live version's statements, as production ran them, made
 * into a workload: scenario files (annotated SQL, rehearse/scenario.h)
 * that a team reviews and commits beside its migrations.
 *
 * Statements come from pg_stat_statements (pgss.h) or from server logs
 * (pglog.h). Each is read by libpg_query: utility statements are skipped,
 * a literal one has its constants taken out as parameters, and statements
 * of one shape (one fingerprint) are one entry, their calls added up and
 * up to `samples` parameter sets kept. The file is written in fingerprint
 * order, so a capture taken again makes a small diff.
 */
#ifndef TS_CAPTURE_H
#define TS_CAPTURE_H

#include <stddef.h>
#include <stdio.h>
#include <time.h>

#include "core/strvec.h"

struct ts_capture_opts {
	const char *user, *application, *database;	/* filters, or NULL */
	long min_calls;
	time_t since, until;	/* logs only; 0: no bound */
	int samples;		/* parameter sets kept per statement */
	int no_params;		/* keep only the normalized text: no production values */
	const char *log_prefix;	/* stderr logs: log_line_prefix */
};

/* One statement shape. */
struct ts_captured {
	char fp[17];
	char *sql;		/* with $1 ... for its constants and parameters, or as written */
	int params;		/* the $n it takes */
	int literal;		/* its constants could not be taken out: kept as it ran */
	long calls;
	struct strvec samples;	/* each: "'42', NULL", SQL constants */
	struct strvec roles;	/* who ran it, and how often (role_calls) */
	long *role_calls;
};

/* What was skipped, by reason, and where the unreadable lines are. */
enum ts_skip {
	TS_SKIP_UTILITY, TS_SKIP_TWINSTAGE, TS_SKIP_DATABASE, TS_SKIP_USER, TS_SKIP_APPLICATION,
	TS_SKIP_TIME, TS_SKIP_UNPARSED, TS_SKIP_CATALOG, TS_SKIP_HIDDEN, TS_SKIP_MIN_CALLS,
	TS_SKIP_VALUES, TS_SKIP_TOOLS, TS_SKIP_N
};

struct ts_capture {
	struct ts_captured *v;
	size_t n, alloc;
	const struct ts_capture_opts *opts;
	const char *database;	/* the rehearsed database: others are skipped (unless --database) */
	char *database_read;	/* the one the source's dsn names, when database was NULL (owned) */
	size_t seen;		/* statements read */
	long calls_seen;
	size_t skipped[TS_SKIP_N];
	struct strvec utility_kinds;	/* "SET", "BEGIN", ... for the summary */
	size_t unreadable;	/* log lines (or records) that could not be read */
	struct strvec unreadable_at;	/* "file:line", the first few */
	size_t entries_read;	/* log entries read, over all files */
};

void ts_capture_init(struct ts_capture *c, const struct ts_capture_opts *o, const char *database);
void ts_capture_free(struct ts_capture *c);

/* What one statement record says (a pg_stat_statements row, a log entry). */
struct ts_capture_rec {
	const char *sql;	/* may hold several statements (a simple query) */
	const char *role, *database, *application;
	long calls;		/* 1 for a log line */
	const char *params;	/* the extended protocol's "$1 = '42', $2 = NULL", or NULL */
	int normalized;		/* the text already has $n for its constants (pg_stat_statements) */
	time_t when;		/* 0: not known */
};

void ts_capture_add(struct ts_capture *c, const struct ts_capture_rec *r);

/* An unreadable log line, counted and named. */
void ts_capture_unreadable(struct ts_capture *c, const char *file, long line);

/*
 * Writes dir/captured.sql (made, or replaced whole: nothing else in dir
 * is touched) with the statements kept, and returns how many were; -1
 * when the file could not be written. source names where they came from
 * in its header (no password).
 */
long ts_capture_write(struct ts_capture *c, const char *dir, const char *app, const char *source,
		      char **written);

/* What was kept and skipped, with counts, for the user. */
void ts_capture_summary(const struct ts_capture *c, long kept, FILE *out);

/* "2026-12-02 10:00[:00]" (a log's own zone): its time, or -1. */
time_t ts_capture_time(const char *s);

#endif
