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

char *ts_speed_text(double before_ms, double after_ms, char *buf, size_t len)
{
	double r = before_ms > 0 ? after_ms / before_ms : 1;

	if (r >= 1.05)
		snprintf(buf, len, "%.2f ms -> %.2f ms, %.1fx slower", before_ms, after_ms, r);
	else if (r <= 0.95)
		snprintf(buf, len, "%.2f ms -> %.2f ms, %.1fx faster", before_ms, after_ms, after_ms > 0 ? 1 / r : 0);
	else
		snprintf(buf, len, "%.2f ms -> %.2f ms, as fast", before_ms, after_ms);
	return buf;
}
