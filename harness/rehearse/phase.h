/*
 * phase: a rollout in several releases, rehearsed in order (the four part
 * migration: write twice / read old, backfill, read new / stop writing
 * old, delete old). The phases are planned in config/phase_plan.h.
 *
 * Each [phase] applies its migrations on the dev side; then every version
 * runs there (the ones the phase names must pass, the others are shown
 * for information), its `equal` declarations must hold, and its down parts
 * must lead back to the state before it, where the versions live then
 * work again; the phase is then applied again and the next one begins.
 */
#ifndef TS_PHASE_H
#define TS_PHASE_H

struct ts_run;

/*
 * The part of `rehearse` after the baseline, phase by phase, then the
 * checks of the end state (schema, double dump test, untouched data,
 * top-level [equal]). 0 even when a check fails (that is in the report).
 */
int ts_run_phases(struct ts_run *run);

#endif
