/*
 * lockorder: deadlocks waiting to happen, found from what each side does,
 * not from the luck of the load.
 *
 * A migration that runs in one transaction takes its locks statement by
 * statement (the trace records which statement took which lock on which
 * table); a scenario file of a live version is one transaction of the
 * application, and the matrix records which statement took which lock.
 * When the migration takes a lock on A before one on B, the application
 * takes B before A, and each lock conflicts with the other's on the same
 * table, each can end up waiting for the other: a deadlock, PostgreSQL
 * then kills one of them (40P01). That is reported every time, naming both
 * statements and both orders, whether or not the load happened to hit it.
 */
#ifndef TS_LOCKORDER_H
#define TS_LOCKORDER_H

#include <stddef.h>

struct strvec;
struct ts_report;

/*
 * The migrations recorded in rep from `first` on (applied in [phase]
 * `phase`, or NULL), against the versions in `live`, each as its last
 * matrix check recorded it: a failing case of the version's check "while
 * migrating" (made when the load made none) for each pair in opposite
 * orders.
 */
void ts_lock_order_judge(struct ts_report *rep, const char *phase, size_t first, const struct strvec *live);

/* 1 when a lock of mode a and one of mode b on the same table conflict ("RowExclusiveLock", ...). */
int ts_locks_conflict(const char *a, const char *b);

#endif
