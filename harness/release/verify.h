/*
 * verify: whether a rehearsal's manifest still holds. Every file it names
 * is read again from disk, and production's fingerprint (its schema, its
 * tracking table, its server) is read again from production, in a
 * read-only session, and compared with the states the rehearsal saw.
 *
 * Production is the target `promote` would write ([target] dsn, --dsn or
 * TWINSTAGE_TARGET_DSN), else the [source] dsn; with neither (a seeded
 * rehearsal and no target), only the files are checked, and it says so.
 */
#ifndef TS_VERIFY_H
#define TS_VERIFY_H

#include "config/config.h"
#include "core/strvec.h"
#include "migrate/migrations.h"
#include "migrate/tracking.h"

struct json_t;

struct ts_verify_opts {
	const char *manifest;	/* path of manifest.json */
	const char *config;	/* -c (default twinstage.ini) */
	const char *env_file;	/* --env */
	const char *dsn;	/* --dsn: the target, or NULL */
	const char *phase;	/* --phase: production must be ready for this one */
};

struct ts_verify {
	struct json_t *manifest;
	struct ts_config cfg;
	struct ts_migrations set;
	struct ts_tracker tracker;	/* as the rehearsal used it (schema-qualified) */
	int have_cfg, have_set, have_tracker;
	struct strvec problems;	/* each a reason the manifest does not hold */
	struct strvec notes;	/* what was found, for a person */
	const char *dsn;	/* production's connection string (not owned), or NULL */
	const char *dsn_from;	/* "--dsn", "TWINSTAGE_TARGET_DSN", "[target] dsn", "[source] dsn" */
	char *shown;		/* dsn with its password hidden */
	int reached;		/* production was read */
	size_t inputs, migrations;	/* how many files were checked */
	/*
	 * The manifest's states: the index production is at (-1: none), the
	 * one it must be at to promote (the phase's start), and the one a
	 * promotion leads to (the phase's end).
	 */
	int at, want, done;
	struct json_t *phase;	/* the manifest's entry of --phase, or NULL */
};

/*
 * Checks o->manifest. Returns the exit code: 0 it holds, 1 it does not
 * (v->problems says why), 2 a usage or configuration error, 3 production
 * could not be reached (the error slot says why, then).
 */
int ts_verify_run(const struct ts_verify_opts *o, struct ts_verify *v);
/* What verify found, for a person: the notes, then the problems. */
void ts_verify_print(const struct ts_verify *v, const char *manifest_path);
void ts_verify_free(struct ts_verify *v);

/*
 * Where production's write credentials come from, first found: --dsn
 * (opt), TWINSTAGE_TARGET_DSN, [target] dsn. NULL when none; *from names
 * the one used. A --dsn that holds a password is refused (TS_EXIT_USAGE):
 * the process list shows every argument.
 */
int ts_release_target(const struct ts_config *cfg, const char *opt, const char **dsn, const char **from);

#endif
