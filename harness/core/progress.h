/*
 * progress: a copy, dump or restore told while it runs. On a terminal, a
 * line redrawn in place once the step has taken a second (how much is
 * done, the rate, the time left); in a CI log, one line when the step
 * ends, if it took more than a second. Nothing at all with quiet.
 *
 *	struct ts_progress p = { .what = "restoring into the dev side",
 *				 .total = bytes, .probe = db_bytes, .arg = conn };
 *	ts_tool_start(env, &cp, "x.log");
 *	ts_progress_watch(&p, &cp);
 *	r = ts_tool_finish(&cp, ...);
 */
#ifndef TS_PROGRESS_H
#define TS_PROGRESS_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

struct child_process;

struct ts_progress {
	const char *what;		/* "copying the production clone to the dev side" */
	uint64_t total;			/* bytes expected; 0 when unknown */
	uint64_t (*probe)(void *arg);	/* bytes done so far */
	void *arg;
	int quiet;
	/* filled by ts_progress_watch */
	double ms;
	uint64_t done;
};

/* Waits until cp exits (it is reaped; finish_command gives its status). */
void ts_progress_watch(struct ts_progress *p, struct child_process *cp);

/* The bytes of the regular files under a folder (0 when it is not there). */
uint64_t ts_dir_bytes(const char *dir);
/* A probe reading ts_dir_bytes of arg (a path). */
uint64_t ts_progress_dir_probe(void *arg);

/*
 * One line of progress on stderr, "twinstage: <what>", for a terminal and
 * a CI log alike; nothing with quiet.
 */
void ts_say(int quiet, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ts_vsay(int quiet, const char *fmt, va_list ap);

/* "1 h", "30 min", "1.5 s", "500 ms" into buf. */
const char *ts_human_ms(double ms, char *buf, size_t len);
/* "1.2 GiB", "512 MiB", "20 kiB" into buf. */
const char *ts_human_bytes(uint64_t n, char *buf, size_t len);

#endif
