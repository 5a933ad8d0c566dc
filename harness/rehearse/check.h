/*
 * check: what the application versions see after migrating.
 *
 *   - the compatibility matrix: each version's scenarios (or command)
 *     against a side, one check of the report per version and side, with
 *     its role (baseline, backward, next, forward, after rollback);
 *   - the schema diff of the production clone and the dev side, each
 *     change classified and tied to the migration statement that made it,
 *     then, once the matrix ran, to the scenarios it broke (the evidence).
 */
#ifndef TS_CHECK_H
#define TS_CHECK_H

#include "report/report.h"

struct ts_run;
struct ts_side;

/* Runs one check of the compatibility matrix. */
int ts_run_check(struct ts_run *run, const char *app, struct ts_side *side,
		 enum ts_check_role role, int gating);
/* Runs the checks that remain after migrating (skipping dev when a migration failed). */
int ts_run_matrix(struct ts_run *run, int baseline_too);
/* Reads both schemas and records the classified changes, each tied to its statement. */
int ts_run_schema(struct ts_run *run);
/* After the matrix: ties breaking changes to the scenarios they broke; notes the others. */
void ts_run_evidence(struct ts_run *run);

#endif
