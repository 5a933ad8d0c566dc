/*
 * format: what every renderer of the report shares: text escaped for the
 * format it is written into.
 */
#ifndef TS_FORMAT_H
#define TS_FORMAT_H

#include <stdio.h>

/* s in Markdown text: table pipes, emphasis and tags escaped, newlines as spaces. */
void ts_md_escape(FILE *out, const char *s);
/* s in XML text or an attribute (control characters become spaces). */
void ts_xml_escape(FILE *out, const char *s);

/*
 * s in a GitHub Actions workflow command: %, CR and LF encoded, and in a
 * property (file=, title=) also ':' and ','.
 */
void ts_github_escape(FILE *out, const char *s, int property);

/* "0.68 ms -> 0.02 ms, 34x faster" (or "2.1x slower", "as fast") into buf, which it returns. */
char *ts_speed_text(double before_ms, double after_ms, char *buf, size_t len);

#endif
