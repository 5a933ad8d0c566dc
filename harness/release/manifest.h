/*
 * manifest: what a rehearsal rehearsed, kept beside its reports as
 * manifest.json, so that `verify` and `promote` can tell later whether its
 * verdict still holds for the files on disk and for production as it is.
 *
 * It holds the verdict; the pending migrations in order, each with the
 * tool's checksum, the SHA-256 of its file(s), its phase, and the lines of
 * the statements that took a lock blocking writes (promote runs those
 * under lock_timeout); the SHA-256 of every other file the rehearsal read
 * (the configuration and its includes, the seed, the scenarios); the
 * phases; and the states: production's fingerprint and tracking table
 * when the production clone was made, then the dev side's after each
 * phase (after all the migrations, without phases). Production must be at
 * one of those states to be promoted from it. Its shape is
 * schema/manifest.schema.json; "format" is TS_MANIFEST_FORMAT.
 *
 * Paths in it are relative to the configuration file's folder, so a
 * manifest kept as a CI artifact verifies in another checkout.
 */
#ifndef TS_MANIFEST_H
#define TS_MANIFEST_H

#include "config/config.h"
#include "migrate/migrations.h"

struct json_t;
struct ts_run;

#define TS_MANIFEST_NAME "manifest.json"

/* Writes <run's report folder>/manifest.json. -1 and an error on failure. */
int ts_manifest_write(struct ts_run *run);

/*
 * Reads a manifest: a JSON object of a format this twinstage reads, with
 * its states readable. TS_EXIT_USAGE errors name the file.
 */
int ts_manifest_load(const char *path, struct json_t **out);

/* State i of a loaded manifest (fp and st to free), or -1. */
struct ts_fingerprint;
struct ts_tracking_state;
int ts_manifest_state(struct json_t *manifest, size_t i, struct ts_fingerprint *fp,
		      struct ts_tracking_state *st);

/*
 * The files other than migrations that a rehearsal of cfg reads, each
 * {file, role, sha256}: the configuration and what it includes, the seed,
 * every scenario file. -1 and an error when one cannot be read.
 */
int ts_manifest_inputs(const struct ts_config *cfg, struct json_t **out);
/* What a migration's entry says of its file(s): {file, sha256, down_file?, down_sha256?}. */
int ts_manifest_migration_files(const struct ts_config *cfg, const struct ts_migration *m,
				struct json_t *entry);
/* path relative to the configuration's folder when under it, else as is (new string). */
char *ts_manifest_rel(const struct ts_config *cfg, const char *path);

#endif
