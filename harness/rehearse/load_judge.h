/*
 * load_judge: the load stopped after the migration, and what it saw judged
 * (the rules are in load.h).
 */
#ifndef TS_LOAD_JUDGE_H
#define TS_LOAD_JUDGE_H

#include <stddef.h>

struct ts_load;

/*
 * The migration ran from mig_t0 to mig_t1 (now_ms()) and recorded its
 * statements in the ctx's rep's migrations from `first` on: lets the load run
 * after_ms more, stops it, and records what it saw in the ctx's rep (the load
 * entry, one check per live version, notes). Frees l.
 */
void ts_load_finish(struct ts_load *l, size_t first, double mig_t0, double mig_t1);

#endif
