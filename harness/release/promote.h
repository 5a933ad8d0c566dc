/*
 * promote: the one place twinstage writes production.
 *
 * It applies exactly the migrations a passing rehearsal rehearsed, and
 * only while its manifest still holds (verify.h): the files unchanged,
 * production at the state the rehearsal started from (or, with --phase,
 * where that phase starts). They run as the rehearsal ran them, through
 * the same code (migrate.h): the tool's table kept as the tool keeps it,
 * batched backfills batch by batch. Each statement that took a lock
 * blocking writes in the rehearsal runs under lock_timeout and is tried
 * again after a wait when it times out, so it never queues in front of
 * the application for long; statement_timeout guards every statement. It
 * stops at the first failure, the tool's table telling the truth, and
 * writes a promotion record beside the manifest.
 *
 * This file is the only one that opens a session on production that may
 * write (tests/check-layers.sh checks that no other file reads the
 * target's connection string but verify.c, which opens it read-only).
 */
#ifndef TS_PROMOTE_H
#define TS_PROMOTE_H

#include "release/verify.h"

struct ts_promote_opts {
	struct ts_verify_opts verify;	/* the manifest, the configuration, --dsn, --phase */
	int dry_run;		/* print the plan, write nothing */
	int lock_timeout_ms;	/* default 2 s */
	int retries;		/* default 5 */
	int statement_timeout_ms;	/* -1: [gate] migration_timeout */
	int quiet;
};

/*
 * Returns the exit code: 0 promoted (or nothing to promote), 1 refused
 * (the manifest does not hold, or its rehearsal did not pass) or a
 * migration failed on production, 2 a usage error, 3 production could not
 * be reached.
 */
int ts_promote(const struct ts_promote_opts *o);

#endif
