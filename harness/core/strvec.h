/*
 * strvec: a NULL-terminated, growable array of owned strings; the argv and
 * envp of child processes, and any list of names (git's strvec).
 */
#ifndef TS_STRVEC_H
#define TS_STRVEC_H

#include <stddef.h>

struct strvec {
	char **v;	/* always NULL-terminated once anything was pushed */
	size_t nr;
	size_t alloc;
};

#define STRVEC_INIT { NULL, 0, 0 }

void strvec_push(struct strvec *sv, const char *s);
void strvec_pushf(struct strvec *sv, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void strvec_pushl(struct strvec *sv, ...);	/* NULL-terminated list */
void strvec_clear(struct strvec *sv);
/* Index of s in sv, or -1. */
int strvec_find(const struct strvec *sv, const char *s);
/* Pushes the words of s between any of seps, without blanks around them. */
void strvec_split(struct strvec *sv, const char *s, const char *seps);

#endif
