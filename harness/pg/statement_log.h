/*
 * statement_log: what a server's jsonlog says its sessions ran, read with
 * jansson, one JSON object per line (PostgreSQL 15's log_destination =
 * jsonlog). A session that runs with log_min_duration_statement = 0 logs
 * each statement when it ends, with its duration ("duration: 1.2 ms
 * statement: ..." for the simple protocol, "... execute <name>: ..." with
 * its parameters in "detail" for the extended one); a statement that
 * fails is logged with its error ("statement", "state_code", "message").
 */
#ifndef TS_STATEMENT_LOG_H
#define TS_STATEMENT_LOG_H

#include <stddef.h>
#include <sys/types.h>

struct ts_logged {
	int pid;
	double end_ms;		/* when it ended (the line's timestamp), Unix epoch ms */
	double ms;		/* how long it ran; 0 for an error */
	char *sql;		/* the statement's text */
	char *params;		/* "$1 = '...', $2 = ..." (extended protocol), or NULL */
	char *app;		/* application_name, or NULL */
	char *state;		/* an error's SQLSTATE, or NULL when it succeeded */
	char *message;		/* an error's message, or NULL */
};

struct ts_statement_log {
	struct ts_logged *v;
	size_t n;
	size_t lines;		/* lines read, kept or not */
};

/*
 * Reads the log at path from byte `from` on, until a line whose message
 * holds `marker` (a statement a session of ours ran after the others
 * ended: everything before it is written), waiting up to wait_ms for it to
 * come. Lines of sessions whose application_name starts with `skip_app`
 * are left out. -1 and an error naming the file and line for a line that
 * is not JSON, or when the marker never came.
 */
int ts_statement_log_read(const char *path, off_t from, const char *marker, int wait_ms, const char *skip_app,
			  struct ts_statement_log *out);
void ts_statement_log_free(struct ts_statement_log *log);

/* "2026-12-01 23:05:47.294 UTC" as Unix epoch milliseconds (UTC only), or -1. */
double ts_log_time_ms(const char *s);

#endif
