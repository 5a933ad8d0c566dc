/*
 * safety: nothing lost on the way, and a way back. Each check here is a
 * data check of the report ({check, name, side, status, gating, object,
 * failure, excerpt}), tagged with the [phase] being rehearsed:
 *
 *   - ddt: the double dump test of a side (ddt.h);
 *   - untouched: every table no migration statement changed holds the same
 *     rows on both sides (equal.h);
 *   - equal: each [equal OLD NEW], OLD on the production clone and NEW on
 *     the dev side, through its column mapping;
 *   - rollback: the down migrations, then the schema, the untouched data
 *     and the versions live before, as they were.
 */
#ifndef TS_SAFETY_H
#define TS_SAFETY_H

struct strvec;
struct ts_phase;
struct ts_run;
struct ts_schema;
struct ts_side;

/*
 * The double dump test of a side, recorded as a data check; on the dev
 * side, a failure the production clone already had does not fail the gate.
 * 0 even when the test fails (that is in the report); -1 when it could not run.
 */
int ts_run_ddt(struct ts_run *run, struct ts_side *side);
/*
 * After migrating: the tables the migration did not touch hold the same
 * rows on both sides, and each [equal OLD NEW] holds.
 */
int ts_run_equal(struct ts_run *run);
/* Each `equal = OLD NEW` of a phase: OLD on the production clone, NEW on the dev side now. */
int ts_run_equal_phase(struct ts_run *run, const struct ts_phase *ph);
/*
 * After the matrix: the down parts of what was applied, newest first; then
 * the dev side's schema must equal the production clone's, the current
 * version's scenarios pass again, and untouched tables are still equal.
 */
int ts_run_rollback(struct ts_run *run);
/*
 * The same, in general: the down parts of what this run applied (with
 * run->phase set: what that phase applied), newest first; then the schema
 * must be `before` again (NULL: the production clone's), untouched tables
 * equal, and `apps` (the versions live before) pass. *passed: 1 when the
 * way back was rehearsed and held, or there was none to rehearse.
 */
int ts_run_rollback_phase(struct ts_run *run, const struct ts_schema *before,
			  const struct strvec *apps, int *passed);
/* Records a data check that failed on the dev side (tagged with run->phase). */
void ts_run_data_failed(struct ts_run *run, const char *check, const char *name, const char *object,
			const char *failure, int gating);

#endif
