/*
 * ini.c: inih fed by a reader that reads whole lines (getline), counts and
 * checks them, then hands them to inih in the chunks its buffer takes.
 * See ini.h.
 */
#include "config/ini.h"
#include "core/error.h"
#include "core/strbuf.h"
#include "core/util.h"
#include "core/wrapper.h"

#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int ts_ini_fail(struct ts_ini *ini, const char *fmt, ...)
{
	struct strbuf sb = STRBUF_INIT;
	va_list ap;

	if (ini->failed)
		return 0;
	va_start(ap, fmt);
	strbuf_vaddf(&sb, fmt, ap);
	va_end(ap);
	ts_error_set(TS_EXIT_USAGE, "%s:%d: %s", ini->file, ini->line, sb.buf);
	strbuf_release(&sb);
	ini->failed = 1;
	return 0;
}

/* A section header: counted, and given to the handler (inih only gives it name = value). */
static void header(struct ts_ini *ini, const char *line)
{
	const char *p = line, *end;
	char *section;

	while (*p == ' ' || *p == '\t')
		p++;
	if (*p != '[' || !(end = strchr(p, ']')))
		return;
	ini->sections++;
	section = xstrndup(p + 1, (size_t)(end - p - 1));
	if (!ini->handler(ini, section, NULL, NULL))
		ini->failed = 1;
	free(section);
}

static char *reader(char *str, int num, void *stream)
{
	struct ts_ini *ini = stream;
	size_t n;

	if (ini->failed)
		return NULL;
	if (ini->pos == ini->len) {
		ssize_t got = getline(&ini->buf, &ini->cap, ini->fp);

		if (got <= 0)
			return NULL;
		ini->len = (size_t)got;
		ini->pos = 0;
		ini->line++;
		if (ini->len > TS_INI_MAX_LINE) {
			ts_ini_fail(ini, "the line is %zu bytes long; a line holds at most %d", ini->len,
				    TS_INI_MAX_LINE);
			return NULL;
		}
		if (check_text(ini->file, ini->buf, ini->len, "INI text: [section] and name = value lines")) {
			/* check_text counts the lines of what it is given: this one */
			char *why = xstrdup(ts_error_message()), *colon = strstr(why, ": ");

			ts_ini_fail(ini, "%s", colon ? colon + 2 : why);
			free(why);
			return NULL;
		}
		header(ini, ini->buf);
		if (ini->failed)
			return NULL;
	}
	n = ini->len - ini->pos;
	if (n > (size_t)num - 1)
		n = (size_t)num - 1;
	memcpy(str, ini->buf + ini->pos, n);
	str[n] = '\0';
	ini->pos += n;
	return str;
}

static int pair(void *user, const char *section, const char *name, const char *value)
{
	struct ts_ini *ini = user;

	if (ini->failed)
		return 0;
	if (!ini->handler(ini, section, name, value))
		ini->failed = 1;
	return !ini->failed;
}

int ts_ini_parse(struct ts_ini *ini, const char *path)
{
	struct stat st;
	FILE *fp;
	int r;

	ini->line = ini->sections = ini->failed = 0;
	ini->buf = NULL;
	ini->cap = ini->len = ini->pos = 0;
	if (!(fp = fopen(path, "r")))
		return ts_error_set(TS_EXIT_USAGE, "could not open %s \"%s\": %s", ini->what, ini->file,
				    strerror(errno));
	if (fstat(fileno(fp), &st) || !S_ISREG(st.st_mode)) {
		fclose(fp);
		ts_error_set(TS_EXIT_USAGE, "%s \"%s\" is %s, not a file", ini->what, ini->file,
			     S_ISDIR(st.st_mode) ? "a folder" : "a special file");
		return ini->hint ? ts_error_hint("%s", ini->hint) : -1;
	}
	/* Debian's inih has a 200-byte line buffer: let it grow to what the reader gives */
	ini_use_stack = 0;
	ini_allow_realloc = 1;
	ini_max_line = TS_INI_MAX_LINE + 3;	/* the newline, a CR and the NUL */
	/* indented lines are not continuations: people indent for reading */
	ini_allow_multiline = 0;
	ini->fp = fp;
	r = ini_parse_stream(reader, ini, pair, ini);
	fclose(fp);
	free(ini->buf);
	ini->buf = NULL;
	ini->fp = NULL;
	if (ini->failed)
		return -1;
	if (r > 0)
		return ts_error_set(TS_EXIT_USAGE, "%s:%d: syntax error: expected \"[section]\" or \"name = value\"",
				    ini->file, r);
	if (r < 0)
		return ts_error_set(TS_EXIT_USAGE, "could not read %s \"%s\"", ini->what, ini->file);
	if (!ini->line)
		return ts_error_set(TS_EXIT_USAGE, "%s: the file is empty (expected %s)", ini->file, ini->expected);
	if (!ini->sections)
		return ts_error_set(TS_EXIT_USAGE, "%s: no [section] in it (expected %s)", ini->file, ini->expected);
	return 0;
}
