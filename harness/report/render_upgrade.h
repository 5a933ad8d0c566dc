/*
 * render_upgrade: the dev side on the next major (report.upgrade), for the
 * text and Markdown reports: how it was upgraded and in how long, what
 * pg_upgrade left for the user, the settings that changed, and the
 * statements whose plan changed or that got slower, both plans shown.
 */
#ifndef TS_RENDER_UPGRADE_H
#define TS_RENDER_UPGRADE_H

#include <stdio.h>

struct ts_report;

/* Nothing when the run had no dev_stack. */
void ts_report_render_upgrade(const struct ts_report *r, int markdown, FILE *out);

#endif
