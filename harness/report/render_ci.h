/*
 * render_ci: the report where a CI system shows it: GitHub Actions
 * annotations on the migration lines and the failing scenario statements,
 * and a pull-request comment with what reviewers of a migration ask for
 * (per migration: its time, its locks and how long each blocked writes,
 * the WAL it wrote, the tables and indexes it grew; the live version's
 * verdict; the stalls under load).
 */
#ifndef TS_RENDER_CI_H
#define TS_RENDER_CI_H

#include <stdio.h>

struct ts_report;

/* "::error file=migrations/V3__x.sql,line=4,title=...::message" lines, one per finding. */
void ts_report_render_github(const struct ts_report *r, FILE *out);
/* The pull-request comment, in Markdown. */
void ts_report_render_comment(const struct ts_report *r, FILE *out);

#endif
