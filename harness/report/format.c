/*
 * format.c: escaping for the formats the renderers write (Markdown, XML for
 * JUnit, SVG and HTML). See format.h.
 */
#include "report/format.h"
#include "core/strbuf.h"

#include <stdio.h>

void ts_md_escape(FILE *out, const char *s)
{
	for (; s && *s; s++) {
		if (*s == '|' || *s == '`' || *s == '*' || *s == '_' || *s == '<' || *s == '>')
			fputc('\\', out);
		fputc(*s == '\n' ? ' ' : *s, out);
	}
}

void ts_xml_escape(FILE *out, const char *s)
{
	struct strbuf sb = STRBUF_INIT;

	strbuf_add_xml(&sb, s);
	fputs(sb.buf, out);
	strbuf_release(&sb);
}

void ts_github_escape(FILE *out, const char *s, int property)
{
	for (; s && *s; s++) {
		if (*s == '%')
			fputs("%25", out);
		else if (*s == '\r')
			fputs("%0D", out);
		else if (*s == '\n')
			fputs("%0A", out);
		else if (property && *s == ':')
			fputs("%3A", out);
		else if (property && *s == ',')
			fputs("%2C", out);
		else
			fputc(*s, out);
	}
}
