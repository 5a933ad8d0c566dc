/*
 * render_load: the load during the migration, for the renderers: its
 * section of the text and Markdown reports, and its timeline (SVG), one
 * per migration run (per phase in a rollout).
 */
#ifndef TS_RENDER_LOAD_H
#define TS_RENDER_LOAD_H

#include <stdio.h>

struct json_t;
struct strvec;
struct ts_report;

/* The load section: text, or Markdown with a link to the timeline. */
void ts_report_render_load(const struct ts_report *r, int markdown, FILE *out);
/* The timeline of one entry of r->load, as SVG; its file name next to the reports. */
void ts_report_timeline_svg(const struct ts_report *r, struct json_t *entry, FILE *out);
char *ts_report_timeline_name(struct json_t *entry);
/* One entry's title ("load during phase 2: v1 on 4 clients", new string) and its lines. */
char *ts_report_load_title(struct json_t *e);
void ts_report_load_lines(const struct ts_report *r, struct json_t *e, struct strvec *out);

#endif
