/*
 * query: what PostgreSQL's parser (libpg_query) says of one application
 * statement, a captured one or a scenario's: whether it is a query or a
 * utility statement, whether it orders its rows at the top level, the
 * parameters it takes, its fingerprint, and the constants of a literal
 * statement taken out as parameters. No SQL is scanned by hand here.
 */
#ifndef TS_QUERY_H
#define TS_QUERY_H

#include <stddef.h>

struct strvec;

struct ts_query_shape {
	int query;		/* SELECT, INSERT, UPDATE, DELETE, MERGE or VALUES: what PREPARE takes */
	int ordered;		/* a SELECT with ORDER BY at the top level: its rows come in that order */
	int params;		/* the highest $n it uses, 0 for none */
	char kind[48];		/* the parse node: "SelectStmt", "TransactionStmt", ... */
	int catalog_only;	/* it reads only system catalogs and calls only their functions (pg_*, information_schema) */
};

/* Reads sql's first statement; -1 (the parser's message in the error slot, TS_EXIT_USAGE) when it does not parse. */
int ts_query_shape(const char *sql, struct ts_query_shape *out);

/*
 * A list of SQL constants, as `-- @params` holds them ("'42', 'acme',
 * NULL", numbers, true/false, casts of them such as '7'::int): their
 * number in *n, or -1 with an error naming what is not a constant.
 */
int ts_query_constants(const char *list, size_t *n);

/* libpg_query's fingerprint of sql (constants and $n ignored), 16 hex digits; -1 when it does not parse. */
int ts_query_fingerprint(const char *sql, char out[17]);

/*
 * A statement with its constants written in it (the simple protocol's
 * log line) as pg_stat_statements would keep it: *normalized with $1, $2
 * ... (pg_query_normalize) and the constants' texts, in their order, in
 * constants. -1 when it does not parse, or when the constants could not be
 * matched one for one to the parameters (then neither is set).
 */
int ts_query_normalize(const char *sql, char **normalized, struct strvec *constants);

/*
 * The values of a log's "parameters: $1 = '42', $2 = NULL" (the text after
 * "parameters: "), by the scanner, in the order of $n, into values: each
 * an SQL constant as the server wrote it. -1 when it does not read so.
 */
int ts_query_log_params(const char *text, struct strvec *values);

#endif
