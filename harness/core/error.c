/*
 * error.c: the single error slot (see error.h). One slot is enough because
 * every error travels straight up to the cmd_* function that prints it, and
 * only the main thread ever sets, reads or clears it. twinstage has other
 * threads while the load runs (rehearse/load.c: the clients and the
 * sampler); they call nothing that sets an error: each keeps what went
 * wrong in its own record (a client's `lost`), which the main thread reads
 * once they have stopped.
 */
#include "core/error.h"
#include "core/strbuf.h"

#include <stdarg.h>
#include <stdio.h>

static struct strbuf msg = STRBUF_INIT;
static struct strbuf hint = STRBUF_INIT;
static enum ts_exit cls = TS_EXIT_OK;
volatile int ts_interrupted;

int ts_error_set(enum ts_exit c, const char *fmt, ...)
{
	va_list ap;

	strbuf_reset(&msg);
	strbuf_reset(&hint);
	va_start(ap, fmt);
	strbuf_vaddf(&msg, fmt, ap);
	va_end(ap);
	strbuf_rtrim(&msg);
	cls = c;
	return -1;
}

int ts_error_hint(const char *fmt, ...)
{
	va_list ap;

	strbuf_reset(&hint);
	va_start(ap, fmt);
	strbuf_vaddf(&hint, fmt, ap);
	va_end(ap);
	return -1;
}

int ts_error_prefix(const char *fmt, ...)
{
	struct strbuf n = STRBUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	strbuf_vaddf(&n, fmt, ap);
	va_end(ap);
	strbuf_addstr(&n, ": ");
	strbuf_add(&n, msg.buf, msg.len);
	strbuf_release(&msg);
	msg = n;
	return -1;
}

const char *ts_error_message(void)
{
	return msg.len ? msg.buf : "unknown error";
}

const char *ts_error_hint_text(void)
{
	return hint.len ? hint.buf : NULL;
}

enum ts_exit ts_error_class(void)
{
	return cls == TS_EXIT_OK ? TS_EXIT_USAGE : cls;
}

void ts_error_clear(void)
{
	strbuf_reset(&msg);
	strbuf_reset(&hint);
	cls = TS_EXIT_OK;
}

int ts_error_print(void)
{
	fprintf(stderr, "twinstage: error: %s\n", ts_error_message());
	if (hint.len)
		fprintf(stderr, "hint: %s\n", hint.buf);
	return (int)ts_error_class();
}
