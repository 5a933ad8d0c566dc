/*
 * strbuf: one growable string type, used everywhere instead of fixed
 * buffers and strcat (borrowed from git's strbuf.h).
 *
 * Invariants: buf is never NULL once initialised (it points at a shared
 * empty string until something is added), buf[len] is always '\0', and
 * alloc is the size of the allocation (0 while buf is the shared empty
 * string). A strbuf may hold NUL bytes; len is the truth.
 */
#ifndef TS_STRBUF_H
#define TS_STRBUF_H

#include <stdarg.h>
#include <stddef.h>

struct strbuf {
	size_t alloc;
	size_t len;
	char *buf;
};

extern char strbuf_slopbuf[];
#define STRBUF_INIT { 0, 0, strbuf_slopbuf }

void strbuf_init(struct strbuf *sb);
/* Frees the buffer and re-initialises sb to empty. */
void strbuf_release(struct strbuf *sb);
/* Returns the string and leaves sb empty; the caller frees the result. */
char *strbuf_detach(struct strbuf *sb);
void strbuf_grow(struct strbuf *sb, size_t extra);
void strbuf_reset(struct strbuf *sb);
void strbuf_setlen(struct strbuf *sb, size_t len);
void strbuf_add(struct strbuf *sb, const void *data, size_t len);
void strbuf_addstr(struct strbuf *sb, const char *s);
void strbuf_addch(struct strbuf *sb, int c);
void strbuf_addf(struct strbuf *sb, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void strbuf_vaddf(struct strbuf *sb, const char *fmt, va_list ap);
/* Appends s escaped for XML text and attributes (control characters become spaces). */
void strbuf_add_xml(struct strbuf *sb, const char *s);
/* The last `lines` lines of sb, trailing whitespace trimmed (new string), or NULL when it is blank. */
char *strbuf_tail_lines(struct strbuf *sb, int lines);
/* Removes trailing whitespace. */
void strbuf_rtrim(struct strbuf *sb);
/* Reads a whole file; returns 0, or -1 with errno set. */
int strbuf_read_file(struct strbuf *sb, const char *path);

/* printf into a new string (the caller frees it). */
char *xstrfmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
