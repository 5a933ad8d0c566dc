/*
 * upgrade: the dev side on the next PostgreSQL major ([environments]
 * dev_stack). The production clone stays on production's major, on this
 * machine; the dev side is made from it on the stack's (stack.h):
 *
 *   pg_upgrade  --check, then pg_upgrade of the cleanly stopped production
 *               clone (--clone on a copy-on-write pool, else --copy: the
 *               production clone is read, never changed), as a team would
 *               upgrade production;
 *   dump        pg_dump of the new major from the production clone,
 *               pg_restore into a new server (clone.c's logical path).
 *
 * Both then ANALYZE both sides (pg_upgrade carries no statistics), and the
 * settings the production clone sets that the new major removed or gave
 * another default are noted.
 */
#ifndef TS_UPGRADE_H
#define TS_UPGRADE_H

#include "env/env.h"

#include <jansson.h>

/*
 * Finds or builds the stack (production's major read from the running
 * production clone) and puts the dev side on it: env->stack, dev.on_stack,
 * initdb's options as the production clone was made. *info gets
 * {"stack", "from", "to", "method", "steps": {}} (a new object).
 */
int ts_upgrade_prepare(struct ts_env *env, json_t **info);

/* pg_upgrade of the production clone into the dev side, started; the steps into info. */
int ts_upgrade_run(struct ts_env *env, json_t *info);

/* After the dev side is filled: ANALYZE on both sides, the settings compared; into info. */
int ts_upgrade_finish(struct ts_env *env, json_t *info);

#endif
