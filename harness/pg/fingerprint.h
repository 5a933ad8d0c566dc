/*
 * fingerprint: what a database is, in a form that can be kept in a file
 * and compared later: its schema as the catalog snapshot reads it (every
 * object, its attributes without oids or positions), a SHA-256 of that,
 * and the server it runs on (version, system identifier where the role
 * may read it).
 *
 * The manifest of a rehearsal keeps the production clone's fingerprint,
 * and the dev side's after each phase; `verify` and `promote` read
 * production's again, read-only, and compare. The schema is read with
 * search_path = pg_catalog, so that names print qualified the same way
 * whatever the session's or role's search_path.
 */
#ifndef TS_FINGERPRINT_H
#define TS_FINGERPRINT_H

#include <libpq-fe.h>

#include "core/strvec.h"

struct json_t;

struct ts_fingerprint {
	char schema_sha256[65];
	struct json_t *schema;	/* [[kind, name, table | null, {attrs}], ...], sorted */
	size_t objects;
	int server_version_num;	/* 150008 */
	char *server_version;	/* "15.8 (Debian 15.8-0+deb12u1)" */
	char *system_identifier;	/* pg_control_system(), or NULL where not readable */
};

/*
 * Reads conn's database: its schema (leaving out the table `skip`, the
 * tool's tracking table) and its server. Changes conn's search_path: give
 * it a connection of its own. -1 and an error on failure.
 */
int ts_fingerprint_read(PGconn *conn, const char *skip, struct ts_fingerprint *fp);
void ts_fingerprint_free(struct ts_fingerprint *fp);
/* Only the server's part: its version and, where readable, its system identifier. */
int ts_fingerprint_read_server(PGconn *conn, struct ts_fingerprint *fp);

/* As kept in a manifest (a new reference), and back (-1: not a fingerprint). */
struct json_t *ts_fingerprint_to_json(const struct ts_fingerprint *fp);
int ts_fingerprint_from_json(struct json_t *j, struct ts_fingerprint *fp);

/* 1 when both describe the same schema. */
int ts_fingerprint_same_schema(const struct ts_fingerprint *a, const struct ts_fingerprint *b);
/*
 * What changed from `was` to `now`, one line per object, as a person
 * reads it: "column public.orders.note added", "index public.x_idx
 * changed: ...". Appended to out.
 */
void ts_fingerprint_changes(const struct ts_fingerprint *was, const struct ts_fingerprint *now,
			    struct strvec *out);

#endif
