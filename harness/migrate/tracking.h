/*
 * tracking: the table in which a migration tool records what it applied,
 * read and written exactly as that tool does, so that a dev side migrated
 * by twinstage is indistinguishable from one migrated by the tool itself,
 * and migrations that read or write that table work as in production.
 *
 *	golang-migrate	schema_migrations (version bigint PRIMARY KEY, dirty boolean NOT NULL):
 *			one row, the latest version; dirty while a migration runs
 *	dbmate		schema_migrations (version varchar(255) PRIMARY KEY): a row per version
 *	flyway		flyway_schema_history, with Flyway's own CRC-32 checksums
 *	prisma		_prisma_migrations: a row per migration, its SHA-256, started
 *			before it runs and finished after, so a failure stays recorded
 *	twinstage	twinstage_schema_history, for plain numbered files
 *
 * What is pending is what the production clone's table does not list.
 */
#ifndef TS_TRACKING_H
#define TS_TRACKING_H

#include <libpq-fe.h>
#include <stddef.h>

#include "core/strvec.h"
#include "migrate/migrations.h"

struct json_t;

enum ts_tracking_tool { TS_TRACK_AUTO, TS_TRACK_TWINSTAGE, TS_TRACK_GOLANG, TS_TRACK_DBMATE,
			TS_TRACK_FLYWAY, TS_TRACK_PRISMA };

struct ts_tracker {
	enum ts_tracking_tool tool;
	char *table;		/* as given (may be schema-qualified), never NULL */
};

/* One row of what a tool lists as applied. */
struct ts_applied {
	char *version;		/* NULL for a Flyway repeatable */
	char *description;
	char *checksum;		/* as the tool keeps it, or NULL */
	int success;
};

struct ts_tracking_state {
	int exists;		/* the table is there */
	int dirty;		/* golang-migrate: the latest migration did not finish */
	char *latest;		/* the newest version applied, or NULL */
	struct ts_applied *rows;
	size_t n;
};

/* Parses "auto", "golang-migrate", ...; -1 when unknown. */
int ts_tracking_tool_parse(const char *s, enum ts_tracking_tool *out);
const char *ts_tracking_tool_name(enum ts_tracking_tool t);
/* The tool for a folder's format, when the configuration says auto. */
enum ts_tracking_tool ts_tracking_for_format(enum ts_mig_format f);
/* Fills t; table NULL means the tool's default name. */
void ts_tracker_init(struct ts_tracker *t, enum ts_tracking_tool tool, const char *table);
void ts_tracker_release(struct ts_tracker *t);

/* Flyway's checksum of a file's text: CRC-32 of its lines without terminators, BOM dropped. */
int ts_flyway_checksum(const char *text, size_t len);
/* The checksum m would have in t's table, as text ("" when the tool keeps none). */
char *ts_tracking_checksum(const struct ts_tracker *t, const struct ts_migration *m);

/*
 * Makes t->table schema-qualified, as the tool finds it on conn: where the
 * search_path finds it, else current_schema(), where the tool would make
 * it. Both sides then use that one table, whatever their search_path.
 */
int ts_tracking_resolve(PGconn *conn, struct ts_tracker *t);

/* Reads the table (a missing table is an empty state). */
int ts_tracking_read(PGconn *conn, const struct ts_tracker *t, struct ts_tracking_state *st);
void ts_tracking_state_free(struct ts_tracking_state *st);
/* A copy of from into to (to is overwritten, not freed). */
void ts_tracking_state_copy(struct ts_tracking_state *to, const struct ts_tracking_state *from);

/*
 * Refuses a state the tool itself would refuse to migrate from (a dirty
 * golang-migrate table, a failed Flyway row): TS_EXIT_USAGE naming the
 * version. `side` names the side in the message.
 */
int ts_tracking_check(const struct ts_tracker *t, const struct ts_tracking_state *st,
		      const char *side);
/*
 * Drift: versions the table lists that the folder does not have, and
 * (Flyway) applied files whose checksum differs. One line each into out.
 */
void ts_tracking_drift(const struct ts_tracker *t, const struct ts_tracking_state *st,
		       const struct ts_migrations *set, struct strvec *out);

/* 1 when st lists m as applied (and, for a repeatable, with its current checksum). */
int ts_tracking_applied(const struct ts_tracker *t, const struct ts_tracking_state *st,
			const struct ts_migration *m, char **recorded_checksum);

/* Creates the table when it is missing, as the tool would. */
int ts_tracking_prepare(PGconn *conn, const struct ts_tracker *t);
/* Before m runs, outside its transaction (golang-migrate marks itself dirty). */
int ts_tracking_begin(PGconn *conn, const struct ts_tracker *t, const struct ts_migration *m);
/* Records m, inside its transaction when it has one. */
int ts_tracking_record(PGconn *conn, const struct ts_tracker *t, const struct ts_migration *m,
		       double ms, int success);

/*
 * Takes m out of the table after its down part ran, inside its transaction:
 * golang-migrate goes back to version prev (none: an empty table), dbmate
 * and twinstage delete its row, Flyway adds an UNDO_SQL row.
 */
int ts_tracking_unrecord(PGconn *conn, const struct ts_tracker *t, const struct ts_migration *m,
			 const char *prev, double ms);

/* A state as kept in a manifest (a new reference), and back (-1: not one). */
struct json_t *ts_tracking_state_to_json(const struct ts_tracking_state *st);
int ts_tracking_state_from_json(struct json_t *j, struct ts_tracking_state *st);
/*
 * How `now` differs from `was` (the versions, and each row's checksum and
 * outcome; not the times), one line each into out ("<who> is at version
 * 9, the rehearsal was against 8"). Nothing added: the same.
 */
void ts_tracking_compare(const struct ts_tracker *t, const struct ts_tracking_state *was,
			 const struct ts_tracking_state *now, const char *who, struct strvec *out);

/* Name of twinstage's own tracking table (in schema public). */
#define TS_TRACKING_TABLE "twinstage_schema_history"

#endif
