/*
 * render_junit: the report as JUnit XML (junit.xml).
 */
#ifndef TS_RENDER_JUNIT_H
#define TS_RENDER_JUNIT_H

#include <stdio.h>

struct ts_report;

void ts_report_render_junit(const struct ts_report *r, FILE *out);

#endif
