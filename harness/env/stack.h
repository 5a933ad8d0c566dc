/*
 * stack: the system the dev side runs on when it is not the machine's own
 * ([environments] dev_stack): a Debian root made with debootstrap from a
 * recipe (stacks/NAME.ini, read by image.h's reader, [stack] section), holding
 * the recipe's PostgreSQL major and production's, the one pg_upgrade reads
 * the production clone with. It is kept in the image cache (cache.h), keyed
 * by the recipe's content and production's major, built once under a lock.
 *
 * Programs run "on" a stack in a mount namespace where the root's /usr
 * stands in for the machine's (run_command.h, usr_root): every other path,
 * the workdir, the pool, /tmp and /etc/passwd, is the machine's, so a
 * cluster's folder is the same path for both majors.
 */
#ifndef TS_STACK_H
#define TS_STACK_H

#include "env/image.h"

struct ts_stack {
	char *root;		/* <cache>/<name>-<key>-from<N>: the root folder */
	char *version;		/* its PostgreSQL major: "17" */
	char *bin;		/* its programs, a path inside the root: /usr/lib/postgresql/17/bin */
	char *old_bin;		/* production's major's programs in it: /usr/lib/postgresql/15/bin */
	char *suite;		/* trixie */
	int cached;		/* found, not built */
	double build_ms;
};

/* Reads a stack recipe (image.h's reader): an [image] one is refused (TS_EXIT_USAGE). */
int ts_stack_recipe_load(struct ts_recipe *r, const char *path);
/* 0 for a [stack] recipe, else the error. */
int ts_stack_recipe_kind(const struct ts_recipe *r);

/*
 * The recipe of the dev side's next major: dev_stack's [stack] (image 0),
 * or dev_image's [image] (image 1), whose suite and major then make the
 * stack of that major's programs on this machine (its pg_dump, say).
 */
int ts_stack_recipe_load_next(struct ts_recipe *r, const char *path, int image);
/*
 * Finds the recipe's stack, with production's major old_major (0: the
 * newest on this machine), in the cache, or builds it there (root only).
 * Errors: TS_EXIT_ENV, with the build log named.
 */
int ts_stack_ensure(const struct ts_recipe *r, int old_major, struct ts_stack *st, int quiet);
void ts_stack_free(struct ts_stack *st);

/* The major of the PostgreSQL programs in folder bin (15), run on root (NULL: here); 0 when unknown. */
int ts_pg_bin_major(const char *root, const char *bin);

#endif
