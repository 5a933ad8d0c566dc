/*
 * clone: how production's data reaches the two sides.
 *
 * The source is read, never written: it is opened only by pg_dump, in a
 * session made read-only with default_transaction_read_only, and this
 * file is the only one that ever receives its connection string. Nothing
 * in twinstage has a way to send a statement to the source.
 */
#ifndef TS_CLONE_H
#define TS_CLONE_H

#include "env.h"

/* Fills the (started, empty) production clone from [source]. */
int ts_clone_source(struct ts_env *env);

/*
 * Makes the dev side a copy of the production clone and starts it.
 * `method` is "physical" (a file copy of the stopped cluster: reflink where
 * the filesystem has it), "logical" (pg_dump | pg_restore), or "auto".
 * *used receives the method that ran (a static string).
 */
int ts_clone_dev(struct ts_env *env, const char *method, const char **used);

#endif
