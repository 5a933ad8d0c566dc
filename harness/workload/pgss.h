/*
 * pgss: the statements of pg_stat_statements on [source] dsn, read in a
 * read-only session: each normalized text with its calls, its role and
 * its database, added to a capture.
 */
#ifndef TS_PGSS_H
#define TS_PGSS_H

struct ts_config;
struct ts_capture;

/*
 * Reads pg_stat_statements of the source. *shown gets the source's
 * connection string without its password, for the file's header. A
 * source that cannot be reached, or has no pg_stat_statements, is
 * TS_EXIT_ENV, with what to do in the hint.
 */
int ts_pgss_capture(const struct ts_config *cfg, struct ts_capture *c, char **shown);

/*
 * The database whose statements a capture keeps when --database is not
 * given: the one [source] dsn names, else [project] database (new string).
 */
char *ts_pgss_source_database(const struct ts_config *cfg);

#endif
