/*
 * error: one error slot, in the style of libgit2's git_error_last().
 *
 * Functions below main.c and the cmd_* functions never print errors and
 * never exit: they return -1 (or another negative number) and leave the
 * message here, with the class of the failure, which decides the exit code.
 * The caller decides whether to print it, add context, or recover.
 *
 * Messages follow PostgreSQL's frontend style: lowercase, no trailing
 * period, the object quoted, the cause after a colon. A hint goes on a
 * second line.
 */
#ifndef TS_ERROR_H
#define TS_ERROR_H

/* The documented exit codes of every twinstage command. */
enum ts_exit {
	TS_EXIT_OK = 0,		/* compatible / success */
	TS_EXIT_GATE = 1,	/* the gate failed: an incompatibility was found */
	TS_EXIT_USAGE = 2,	/* usage or configuration error */
	TS_EXIT_ENV = 3,	/* an environment could not be provisioned or reached */
};

/* Records a message of the given class; always returns -1. */
int ts_error_set(enum ts_exit cls, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Adds a hint shown on a second line; returns -1. */
int ts_error_hint(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prepends "context: " to the current message, keeping its class; returns -1. */
int ts_error_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *ts_error_message(void);
const char *ts_error_hint_text(void);
enum ts_exit ts_error_class(void);
void ts_error_clear(void);
/* Prints "twinstage: error: MSG" (and the hint) to stderr; returns the class as an exit code. */
int ts_error_print(void);

/* Set by the SIGINT/SIGTERM handler; long steps check it and stop. */
extern volatile int ts_interrupted;

#endif
