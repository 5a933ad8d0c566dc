/*
 * plans: with dev_stack, each statement of the live version (its scenarios
 * and its captured workload) explained and timed on both majors, before
 * any migration, so that what differs is the server and nothing else.
 *
 * A statement is explained (EXPLAIN (FORMAT JSON), with costs) and run
 * once to warm up, then 5 times (3 when it takes over half a second),
 * each run undone; the median is its time. Its plan's shape (the nodes,
 * their join types, tables and indexes, without costs or row counts) is
 * compared between the sides. Statements that fail alone (they need an
 * earlier one of their file) or that EXPLAIN cannot take (SET, DDL) are
 * counted, not measured: whether they work is the compatibility matrix's.
 *
 * A statement slower on the dev side by more than gate.max_slowdown (and
 * by at least 1 ms, under which a ratio is noise) fails the gate, heaviest
 * first (the time lost times production's @calls); a changed plan alone is
 * reported, not failed.
 */
#ifndef TS_PLANS_H
#define TS_PLANS_H

#include "rehearse/run.h"

/* The "plans" stage: a data check in the report, the statements in report.upgrade.plans. */
int ts_run_plans(struct ts_run *run);

/* A plan's shape (new string): "Hash Join (Inner) [Seq Scan on a, Hash [Seq Scan on b]]". */
struct json_t;
char *ts_plan_shape(struct json_t *plan);

#endif
