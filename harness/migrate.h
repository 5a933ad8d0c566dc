/*
 * migrate: discovering migrations in the formats users already have, and
 * applying the pending ones to the dev side, statement by statement.
 *
 * Formats: Flyway (V3__x.sql, R__x.sql; U3__x.sql undo), golang-migrate
 * (3_x.up.sql / 3_x.down.sql), dbmate (20240101120000_x.sql with
 * "-- migrate:up" / "-- migrate:down"), and plain numbered files
 * (3_x.sql, 003-x.sql). Versions order numerically, segment by segment
 * (10 after 9, 1.10 after 1.9); Flyway repeatables run after all versioned
 * migrations, ordered by description.
 */
#ifndef TS_MIGRATE_H
#define TS_MIGRATE_H

#include <libpq-fe.h>
#include <stddef.h>

struct ts_report;

enum ts_mig_format { TS_FMT_NONE, TS_FMT_FLYWAY, TS_FMT_GOLANG, TS_FMT_DBMATE, TS_FMT_PLAIN };

struct ts_migration {
	char *version;		/* NULL for a repeatable */
	char *description;
	char *file;		/* basename of the up file */
	char *path;
	int repeatable;
	char *up;		/* SQL of the up part */
	int up_line;		/* line of the file where `up` starts */
	char *down;		/* SQL of the down part, or NULL */
	char *down_file;
	int down_line;
	int no_transaction;	/* dbmate "transaction:false" */
	char checksum[9];	/* CRC-32 of the up part */
};

struct ts_migrations {
	enum ts_mig_format format;
	struct ts_migration *v;
	size_t n;
};

/* One statement of a migration, as libpg_query split and parsed it. */
struct ts_stmt {
	char *sql;
	int line;		/* line in the file of its first non-comment line */
	int text_line;		/* line in the file where sql (with its leading comments) starts */
	char *kind;		/* parse node name: "IndexStmt", "AlterTableStmt", ... */
	int no_transaction;	/* cannot run inside a transaction block */
	int transaction_control;	/* BEGIN / COMMIT / ... */
	long batch;		/* "-- twinstage:batch N": rows per batch, 0 for none */
	size_t offset;		/* where sql starts in the text that was parsed */
	struct json_t *node;	/* the parse tree: {"<kind>": {...}} (owned) */
};

const char *ts_mig_format_name(enum ts_mig_format f);

/*
 * Reads the folder: every *.sql file must be a migration of one format.
 * Errors (TS_EXIT_USAGE) name the file.
 */
int ts_migrations_discover(const char *dir, struct ts_migrations *out);
void ts_migrations_free(struct ts_migrations *set);
/*
 * Reads one file as discovery would (its format from its name and
 * markers; a name of no format is a plain file, all of it up).
 */
int ts_migrations_read_file(const char *path, struct ts_migrations *out);

/*
 * Splits and parses sql (which starts at first_line of file) with
 * libpg_query. A syntax error is a TS_EXIT_GATE error "file:line: message".
 */
int ts_stmts_parse(const char *file, const char *sql, int first_line,
		   struct ts_stmt **out, size_t *n);
void ts_stmts_free(struct ts_stmt *v, size_t n);

struct strvec;
/* The identifiers and strings a parse tree names (tables, columns, ...), once each. */
void ts_sql_names(struct json_t *node, struct strvec *out);
/* The same for SQL text; nothing when it does not parse. */
void ts_sql_names_text(const char *sql, struct strvec *out);

/* Number of the line that byte `offset` of text is on, counting from first_line. */
int ts_line_at(const char *text, size_t offset, int first_line);
/* The 1-based column of byte `offset` of text on its line. */
int ts_col_at(const char *text, size_t offset);
/* Offset of the first byte of s that is not whitespace or a comment. */
size_t ts_skip_comments(const char *s);

struct ts_tracker;
struct ts_tracking_state;
/*
 * Applies, on conn, every migration of set that t's tracking table does
 * not list as applied, in order, records each there as the tool would, and
 * in rep, each statement with its lint findings and, when trace is set,
 * its observed locks, rewrites and scans. A migration that fails stops the run (TS_EXIT_GATE); a file
 * changed after it was applied on the dev side (and not in production,
 * `prod`'s table, which may be NULL), or a dirty or failed table, is a
 * TS_EXIT_USAGE error. Returns the number applied, or -1.
 */
struct ts_trace;
int ts_migrations_apply(PGconn *conn, const struct ts_migrations *set, const struct ts_tracker *t,
			const struct ts_tracking_state *prod, struct ts_report *rep,
			struct ts_trace *trace, int verbose);
/*
 * Applies the down part of m (which has one) on conn and takes m out of
 * t's table as the tool's own `down` would. A statement that fails is a
 * TS_EXIT_GATE error "file:line: ...".
 */
int ts_migrations_down(PGconn *conn, const struct ts_migrations *set, const struct ts_tracker *t,
		       const struct ts_migration *m, double *ms);
/* Orders versions numerically, segment by segment; 1 and 1.0 are equal. */
int ts_version_cmp(const char *a, const char *b);

/* Name of twinstage's own tracking table (in schema public). */
#define TS_TRACKING_TABLE "twinstage_schema_history"

#endif
