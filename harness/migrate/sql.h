/*
 * sql: SQL text split into statements and read as parse trees, with
 * libpg_query (PostgreSQL's own parser), and positions in a file.
 *
 * Comments, string literals and dollar-quoted bodies are never mistaken
 * for statement boundaries, and whether a statement can run in a
 * transaction block (CREATE INDEX CONCURRENTLY, VACUUM, ...) is read from
 * its parse tree rather than guessed from its text. Every stage that reads
 * SQL (applying, lint, batches, scenarios, the schema's evidence) splits
 * it here.
 */
#ifndef TS_SQL_H
#define TS_SQL_H

#include <stddef.h>

struct json_t;
struct strvec;

/* One statement, as libpg_query split and parsed it. */
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

/*
 * Splits and parses sql (which starts at first_line of file) with
 * libpg_query. A syntax error is a TS_EXIT_GATE error "file:line: message";
 * a wrong batch annotation a TS_EXIT_USAGE one.
 */
int ts_stmts_parse(const char *file, const char *sql, int first_line,
		   struct ts_stmt **out, size_t *n);
void ts_stmts_free(struct ts_stmt *v, size_t n);

/* The identifiers and strings a parse tree names (tables, columns, ...), once each. */
void ts_sql_names(struct json_t *node, struct strvec *out);
/* The same for SQL text; nothing when it does not parse. */
void ts_sql_names_text(const char *sql, struct strvec *out);
/*
 * What a statement does to the schema, read from its parse tree, one
 * "action:table[:name]" each, names unqualified: "add-column:orders:note",
 * "drop-column:orders:note", "alter-column:orders:amount",
 * "rename-column:orders:old:new", "create-table:orders", "drop-table:orders",
 * "rename:old:new", "create-index:orders:orders_note_idx",
 * "drop-index:orders_note_idx", "add-constraint:orders:orders_fk",
 * "drop-constraint:...", "validate-constraint:...", "create-view:v",
 * "drop-view:v", "create-function:f", "drop-function:f",
 * "create-trigger:orders:trg", "drop-trigger:orders:trg", "type:e",
 * "sequence:s", "extension:e", "alter-table:orders" (anything else it alters),
 * and the rows it writes: "update:orders:col,col" (the columns it assigns),
 * "insert:orders", "delete:orders".
 */
void ts_sql_acts(struct json_t *node, struct strvec *out);

/* The setting a SET statement sets ("lock_timeout"), or NULL for any other statement. */
const char *ts_sql_sets(struct json_t *node);

/* Number of the line that byte `offset` of text is on, counting from first_line. */
int ts_line_at(const char *text, size_t offset, int first_line);
/* The 1-based column of byte `offset` of text on its line. */
int ts_col_at(const char *text, size_t offset);
/* Offset of the first byte of s that is not whitespace or a comment. */
size_t ts_skip_comments(const char *s);

/* The annotation on a comment line before a backfill statement (see batch.h). */
#define TS_BATCH_MARK "twinstage:batch"
/*
 * The batch size the comments before a statement ask for (0: none), or -1
 * with an error "file:line: ..." when the annotation or the statement's
 * shape is wrong.
 */
long ts_batch_size(const char *file, const struct ts_stmt *st);

#endif
