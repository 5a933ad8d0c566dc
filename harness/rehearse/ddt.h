/*
 * ddt: the double dump test (Lino's, applied to plain PostgreSQL).
 *
 * A side is dumped (pg_dump, directory format, in parallel), restored into
 * a fresh database on the scratch server (pg_restore, in parallel: a new
 * cluster, so no role exists there but the superuser, as on a new
 * machine), and both are dumped again and compared: the schema as
 * pg_dump writes it, and the data of every table row by row in a
 * deterministic order (see equal.h). They must be identical.
 *
 * What it catches (each confirmed on PostgreSQL 15): a function used by
 * an index or CHECK constraint whose body depends on search_path (pg_dump
 * restores with an empty one); rows that violate a foreign key because
 * they were written with session_replication_role = replica (the restore
 * re-adds the key and validates it); an object owned by a role that does
 * not exist where the dump is restored.
 */
#ifndef TS_DDT_H
#define TS_DDT_H

#include "env/env.h"

struct json_t;

/*
 * Runs the test on `side` (database env->cfg->dbname). The outcome is a
 * new JSON object in *out: {check: "ddt", side, status: "passed" |
 * "failed", object, failure, excerpt: [lines], tables, rows, ms, steps}.
 * -1 (error slot set) when the test itself could not run.
 */
int ts_ddt_run(struct ts_env *env, struct ts_side *side, int verbose, struct json_t **out);

#endif
