/*
 * wrapper: allocation that cannot fail. Each returns memory or aborts with
 * "twinstage: out of memory"; a size of 0 is a valid, freeable allocation,
 * and xstrdup(NULL) is "".
 */
#ifndef TS_WRAPPER_H
#define TS_WRAPPER_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

#endif
