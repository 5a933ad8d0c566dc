/*
 * migrations: the migration files of a folder, in the formats users
 * already have, and their order.
 *
 * Formats: Flyway (V3__x.sql, R__x.sql; U3__x.sql undo), golang-migrate
 * (3_x.up.sql / 3_x.down.sql), dbmate (20240101120000_x.sql with
 * "-- migrate:up" / "-- migrate:down"), and plain numbered files
 * (3_x.sql, 003-x.sql); Prisma's folders (20240101120000_init/migration.sql,
 * in name order). Versions order numerically, segment by segment
 * (10 after 9, 1.10 after 1.9); Flyway repeatables run after all versioned
 * migrations, ordered by description.
 */
#ifndef TS_MIGRATIONS_H
#define TS_MIGRATIONS_H

#include <stddef.h>

enum ts_mig_format { TS_FMT_NONE, TS_FMT_FLYWAY, TS_FMT_GOLANG, TS_FMT_DBMATE, TS_FMT_PLAIN, TS_FMT_PRISMA };

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

const char *ts_mig_format_name(enum ts_mig_format f);

/*
 * Reads the folder: every *.sql file must be a migration of one format,
 * or every subfolder a Prisma migration (a migration.sql in it). A folder
 * that holds neither, but other things, is an error that says what it
 * found and what is expected; an empty one holds no migration. Errors
 * (TS_EXIT_USAGE) name the file.
 */
int ts_migrations_discover(const char *dir, struct ts_migrations *out);
void ts_migrations_free(struct ts_migrations *set);
/*
 * Reads one file as discovery would (its format from its name and
 * markers; a name of no format is a plain file, all of it up).
 */
int ts_migrations_read_file(const char *path, struct ts_migrations *out);

/* Orders versions numerically, segment by segment; 1 and 1.0 are equal. */
int ts_version_cmp(const char *a, const char *b);

#endif
