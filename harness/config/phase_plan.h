/*
 * phase_plan: the [phase] sections of a rollout in several releases (the
 * four part migration), resolved against the migrations folder: which
 * migrations each phase applies. Planning needs no database; rehearsing
 * the phases is rehearse/phase.h.
 */
#ifndef TS_PHASE_PLAN_H
#define TS_PHASE_PLAN_H

#include <stddef.h>

#include "migrate/migrations.h"

struct ts_config;
struct ts_phase;
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

#endif
