/*
 * phase: a rollout in several releases, rehearsed in order (the four part
 * migration: write twice / read old, backfill, read new / stop writing
 * old, delete old).
 *
 * Each [phase] applies its migrations on the dev side; then every version
 * runs there (the ones the phase names must pass, the others are shown
 * for information), its `equal` declarations must hold, and its down parts
 * must lead back to the state before it, where the versions live then
 * work again; the phase is then applied again and the next one begins.
 */
#ifndef TS_PHASE_H
#define TS_PHASE_H

#include "migrate.h"

struct ts_config;
struct ts_phase;
struct ts_run;
struct ts_tracker;
struct ts_tracking_state;

struct ts_phase_plan {
	const struct ts_phase *cfg;
	struct ts_migrations set;	/* its migrations: a view of the folder's, not owned */
};

/*
 * Resolves each phase's `migrations` (versions, ranges A-B, or file names)
 * against the folder's migrations, with no database. Errors (TS_EXIT_USAGE)
 * name the configuration line: an unknown version, a migration in two
 * phases, phases out of version order. Repeatables no phase names go with
 * the first.
 */
int ts_phases_resolve(const struct ts_config *cfg, const struct ts_migrations *set,
		      struct ts_phase_plan **out);
/*
 * Once production's tracking table is read: a migration of the folder that
 * production has not applied must belong to a phase (TS_EXIT_USAGE).
 */
int ts_phases_check_pending(const struct ts_config *cfg, const struct ts_phase_plan *plans,
			    const struct ts_migrations *set, const struct ts_tracker *t,
			    const struct ts_tracking_state *prod);
void ts_phases_free(struct ts_phase_plan *v, size_t n);

/*
 * The part of `rehearse` after the baseline, phase by phase, then the
 * checks of the end state (schema, double dump test, untouched data,
 * top-level [equal]). 0 even when a check fails (that is in the report).
 */
int ts_run_phases(struct ts_run *run);

#endif
