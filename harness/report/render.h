/*
 * render: the report for people and for CI, every format from the one
 * model (report.h): text for a terminal, Markdown for a CI summary, HTML
 * with the load's timelines inline, JSON (report.json, the model itself)
 * and JUnit XML. A rehearsal writes them all under the reports folder;
 * `twinstage report` renders a saved report.json again.
 */
#ifndef TS_RENDER_H
#define TS_RENDER_H

#include <stdio.h>

struct ts_report;

enum ts_report_format { TS_FMT_TEXT, TS_FMT_JSON, TS_FMT_JUNIT, TS_FMT_MARKDOWN, TS_FMT_HTML,
			 TS_FMT_GITHUB, TS_FMT_COMMENT };
/*
 * "text", "json", "junit", "markdown" (or "md"), "html", "github" (GitHub
 * Actions annotations, and the Markdown report appended to
 * $GITHUB_STEP_SUMMARY when it is set), "comment" (a pull-request comment
 * for the reviewers of a migration); -1 when unknown.
 */
int ts_report_format_parse(const char *s, enum ts_report_format *out);
void ts_report_render(const struct ts_report *r, enum ts_report_format f, FILE *out);

/* Writes every format under <dir>/<run_id>/ and points <dir>/latest at it. */
int ts_report_write(const struct ts_report *r, const char *dir, char **out_dir);

/* Prints the data checks alone (for `twinstage ddt`), text or json. */
void ts_report_render_data(const struct ts_report *r, enum ts_report_format f, FILE *out);
/* Prints the schema changes alone (for `twinstage diff`), text or json. */
void ts_report_render_schema(const struct ts_report *r, enum ts_report_format f, FILE *out);
/* The HTML report: the verdict, each timeline inline, the text report. */
void ts_report_render_html(const struct ts_report *r, FILE *out);

#endif
