/*
 * ini: an INI file someone wrote, read with inih, line by line.
 *
 * Lines are read here whole, counted and checked as text (no NUL, UTF-8,
 * no control characters) before inih sees them, so a message's line
 * number is right whatever a line's length, and bytes that are not text
 * never reach a terminal; inih then parses them. A folder, an empty file
 * or one with no section is an error. Every error is TS_EXIT_USAGE and
 * names "file:line". twinstage.ini, its includes and --env files, and the
 * image recipes are read through here.
 */
#ifndef TS_INI_H
#define TS_INI_H

#include <stddef.h>

/* The longest line an INI file may have. */
#define TS_INI_MAX_LINE (64 * 1024)

struct ts_ini {
	const char *file;	/* as shown in messages */
	const char *what;	/* what the file is, for messages: "configuration file" */
	const char *expected;	/* what it should hold: "an [environments] section" */
	const char *hint;	/* a hint when it is not a file (NULL: none) */
	/*
	 * name = value in [section]; returns 0 to stop (with ts_ini_fail). A
	 * section header is given with name and value NULL.
	 */
	int (*handler)(struct ts_ini *ini, const char *section, const char *name, const char *value);
	void *user;
	/* read by the handler */
	int line;		/* the line being read */
	int sections;		/* section headers so far */
	int failed;
	/* the reader's */
	void *fp;
	char *buf;
	size_t cap, len, pos;
};

/* Parses path (ini->file names it) through ini->handler. 0, or -1 (error set). */
int ts_ini_parse(struct ts_ini *ini, const char *path);
/* Sets the error "file:line: message" once (the first is the one to fix); returns 0. */
int ts_ini_fail(struct ts_ini *ini, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
