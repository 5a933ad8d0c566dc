/*
 * pglog: the statements of PostgreSQL server logs, added to a capture.
 *
 * Three formats, told by the file's name and first line: csvlog (read with
 * libcsv), jsonlog (jansson), and stderr with a log_line_prefix
 * (opts->log_prefix, Debian's "%m [%p] %q%u@%d " by default). Statements
 * are those of log_statement = all and of log_min_duration_statement:
 * "statement: ..." of the simple protocol, and "execute <name>: ..." of the
 * extended one with its "parameters: $1 = ..." detail. A line that cannot
 * be read is counted and named, not fatal; a file with no line of a
 * PostgreSQL log is an error.
 */
#ifndef TS_PGLOG_H
#define TS_PGLOG_H

struct ts_capture;

/* Debian's log_line_prefix. */
#define TS_PGLOG_DEFAULT_PREFIX "%m [%p] %q%u@%d "

int ts_pglog_capture(const char *path, struct ts_capture *c);
/* The same, read as kind ("csvlog", "jsonlog" or "stderr"; NULL: told as above). */
int ts_pglog_capture_as(const char *path, const char *kind, struct ts_capture *c);

#endif
