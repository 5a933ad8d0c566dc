/*
 * render_load.c: what the load saw while the dev side migrated, as text
 * and Markdown, and as a picture (SVG) that the Markdown links and the
 * HTML report holds. (Its part of the verdict is report.c's.)
 */
#include "report/render_load.h"
#include "core/strbuf.h"
#include "core/strvec.h"
#include "core/wrapper.h"
#include "report/format.h"
#include "report/report.h"

#include <jansson.h>
#include <math.h>
#include <string.h>

char *ts_report_timeline_name(json_t *entry)
{
	const char *p = json_string_value(json_object_get(entry, "phase"));

	return p ? xstrfmt("timeline-phase-%s.svg", p) : xstrdup("timeline.svg");
}

static void window_line(json_t *w, const char *name, int markdown, FILE *out)
{
	if (!w)
		return;
	if (markdown) {
		if (!json_object_get(w, "p50_ms")) {
			fprintf(out, "| %s | - | - | - | 0 |\n", name);
			return;
		}
		fprintf(out, "| %s | %.1f ms | %.1f ms | %.1f ms | %.0f |\n", name, ts_json_num(w, "p50_ms"),
			ts_json_num(w, "p99_ms"), ts_json_num(w, "max_ms"), ts_json_num(w, "per_s"));
		return;
	}
	if (!json_object_get(w, "p50_ms")) {
		fprintf(out, "    %-7s no statement finished\n", name);
		return;
	}
	fprintf(out, "    %-7s p50 %7.1f ms   p99 %7.1f ms   max %7.1f ms   %6.0f statements/s\n", name,
		ts_json_num(w, "p50_ms"), ts_json_num(w, "p99_ms"), ts_json_num(w, "max_ms"), ts_json_num(w, "per_s"));
}

/* The lines of one entry, the same for text and Markdown. */
void ts_report_load_lines(const struct ts_report *r, json_t *e, struct strvec *out)
{
	json_t *s, *q, *err;
	size_t i;

	if ((s = json_object_get(e, "stall")) && json_is_object(s)) {
		char *line = ts_report_stall_line(r, s);

		strvec_pushf(out, "longest stall: %s (%s)", line, ts_json_str(s, "sql"));
		free(line);
	} else {
		strvec_pushf(out, "longest stall: none: no application statement waited on the migration%s",
			     ts_json_num(e, "sample_ms") ? "" : " (not sampled: sample_ms = 0)");
	}
	json_array_foreach(json_object_get(e, "stalls"), i, s)
		if (json_array_size(json_object_get(e, "stalls")) > 1) {
			char *who = ts_report_stall_who(s);

			strvec_pushf(out, "  %s: %d statement%s waited, the longest %.0f ms (%s)",
				     ts_json_str(s, "migration"), (int)json_integer_value(json_object_get(s, "waits")),
				     json_integer_value(json_object_get(s, "waits")) == 1 ? "" : "s",
				     ts_json_num(s, "ms"), who);
			free(who);
		}
	json_array_foreach(json_object_get(e, "lock_queues"), i, q)
		if (!json_integer_value(json_object_get(q, "queued")))
			/* it waited, and no one behind it: nothing to advise */
			strvec_pushf(out, "lock wait: %s waited %.0f ms for its lock behind %s; no application statement queued behind it",
				     ts_json_str(q, "migration"), ts_json_num(q, "waited_ms"), ts_json_str(q, "behind"));
		else
			strvec_pushf(out, "lock-queue stall: %s waited %.0f ms for its lock behind %s, and %d application statement%s queued behind it, up to %.0f ms. Set lock_timeout before it (SET lock_timeout = '1s') and retry it when it times out: a migration that gives up and retries stalls no one; one that waits in the queue stalls everyone",
			     ts_json_str(q, "migration"), ts_json_num(q, "waited_ms"), ts_json_str(q, "behind"),
			     (int)json_integer_value(json_object_get(q, "queued")),
			     json_integer_value(json_object_get(q, "queued")) == 1 ? "" : "s",
			     ts_json_num(q, "max_queued_ms"));
	if (!json_array_size(json_object_get(e, "errors")))
		strvec_pushf(out, "errors during the migration: none");
	json_array_foreach(json_object_get(e, "errors"), i, err) {
		if (json_object_get(err, "file"))
			strvec_pushf(out, "error during the migration: %s %s:%d \"%s\": %s (%d of %d runs)%s%s",
				     ts_json_str(err, "app"), ts_json_str(err, "file"),
				     (int)json_integer_value(json_object_get(err, "line")), ts_json_str(err, "name"),
				     ts_json_str(err, "got"), (int)json_integer_value(json_object_get(err, "failed")),
				     (int)json_integer_value(json_object_get(err, "runs")),
				     *ts_json_str(err, "migration") ? ", while " : "", ts_json_str(err, "migration"));
		else
			strvec_pushf(out, "error during the migration: the load command failed: %s",
				     ts_json_str(err, "got"));
	}
}

char *ts_report_load_title(json_t *e)
{
	struct strbuf sb = STRBUF_INIT;
	json_t *v;
	size_t i;

	strbuf_addstr(&sb, "load during the migration");
	if (json_is_string(json_object_get(e, "phase")))
		strbuf_addf(&sb, " of phase %s", ts_json_str(e, "phase"));
	if (!strcmp(ts_json_str(e, "mode"), "command")) {
		strbuf_addf(&sb, ": %s", ts_json_str(e, "command"));
	} else {
		strbuf_addstr(&sb, ": ");
		json_array_foreach(json_object_get(e, "apps"), i, v)
			strbuf_addf(&sb, "%s%s", i ? ", " : "", json_string_value(v));
		strbuf_addf(&sb, " on %d client%s", (int)ts_json_num(e, "clients"), ts_json_num(e, "clients") == 1 ? "" : "s");
	}
	if (ts_json_num(e, "sample_ms"))
		strbuf_addf(&sb, ", locks sampled every %.0f ms (%.0f samples)", ts_json_num(e, "sample_ms"),
			    ts_json_num(e, "samples"));
	strbuf_addf(&sb, "; migration %.0f ms", ts_json_num(e, "migration_ms"));
	return strbuf_detach(&sb);
}

void ts_report_render_load(const struct ts_report *r, int markdown, FILE *out)
{
	json_t *e;
	size_t i;

	json_array_foreach(r->load, i, e) {
		struct strvec lines = STRVEC_INIT;
		char *title = ts_report_load_title(e);

		ts_report_load_lines(r, e, &lines);
		if (markdown) {
			char *svg = ts_report_timeline_name(e);

			fprintf(out, "### ");
			ts_md_escape(out, title);
			fputs("\n\n", out);
			if (json_object_get(e, "before")) {
				fprintf(out, "| latency | p50 | p99 | max | statements/s |\n|---|---|---|---|---|\n");
				window_line(json_object_get(e, "before"), "before", 1, out);
				window_line(json_object_get(e, "during"), "during", 1, out);
				window_line(json_object_get(e, "after"), "after", 1, out);
				fputc('\n', out);
			}
			for (size_t k = 0; k < lines.nr; k++) {
				fprintf(out, "- ");
				ts_md_escape(out, lines.v[k]);
				fputc('\n', out);
			}
			fprintf(out, "\n![timeline of the migration and the application](%s)\n\n", svg);
			free(svg);
		} else {
			fprintf(out, "\n%s\n", title);
			if (json_object_get(e, "before")) {
				fprintf(out, "  latency\n");
				window_line(json_object_get(e, "before"), "before", 0, out);
				window_line(json_object_get(e, "during"), "during", 0, out);
				window_line(json_object_get(e, "after"), "after", 0, out);
			}
			for (size_t k = 0; k < lines.nr; k++)
				fprintf(out, "  %s\n", lines.v[k]);
		}
		free(title);
		strvec_clear(&lines);
	}
}

/* ---- the timeline ---- */

#define SVG_W 960.0
#define SVG_L 120.0		/* room for the lane labels */
#define SVG_R 20.0
#define LAT_H 110.0

struct scale {
	double span;
};

static double sx(const struct scale *s, double t)
{
	if (t < 0)
		t = 0;
	if (t > s->span)
		t = s->span;
	return SVG_L + t / s->span * (SVG_W - SVG_L - SVG_R);
}

/* Latency on a log scale from 0.1 ms to `top` ms, in [y0, y0 + LAT_H]. */
static double sy(double ms, double top, double y0)
{
	double lo = log10(0.1), hi = log10(top), v = log10(ms < 0.1 ? 0.1 : ms > top ? top : ms);

	return y0 + LAT_H - (v - lo) / (hi - lo) * LAT_H;
}

static void svg_text(FILE *out, double x, double y, const char *anchor, const char *style, const char *s)
{
	fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" %s>", x, y, anchor, style);
	ts_xml_escape(out, s);
	fputs("</text>\n", out);
}

void ts_report_timeline_svg(const struct ts_report *r, json_t *e, FILE *out)
{
	json_t *t = json_object_get(e, "timeline"), *v, *stall = json_object_get(e, "stall");
	struct scale s = { .span = ts_json_num(t, "span_ms") > 1 ? ts_json_num(t, "span_ms") : 1 };
	int lanes = (int)json_integer_value(json_object_get(t, "lanes"));
	double top = 1000, y_mig = 40, y_lat = 90, y_wait = y_lat + LAT_H + 30, h, step;
	double m0 = json_number_value(json_array_get(json_object_get(t, "migration_ms"), 0));
	double m1 = json_number_value(json_array_get(json_object_get(t, "migration_ms"), 1));
	char *title = ts_report_load_title(e), buf[64];
	size_t i;

	json_array_foreach(json_object_get(t, "latency"), i, v)
		while (json_number_value(json_array_get(v, 1)) > top)
			top *= 10;
	if (r->max_stall_ms > top)
		top = pow(10, ceil(log10(r->max_stall_ms)));
	if (lanes < 1)
		lanes = 1;
	h = y_wait + lanes * 14.0 + 40;
	fprintf(out, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\" font-size=\"11\">\n",
		SVG_W, h, SVG_W, h);
	fprintf(out, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
	svg_text(out, 8, 14, "start", "font-weight=\"bold\"", title);
	free(title);
	/* the migration's window, behind every lane */
	fprintf(out, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#fff4d6\"/>\n", sx(&s, m0),
		y_mig - 6, fmax(sx(&s, m1) - sx(&s, m0), 1), h - y_mig - 20);
	/* time axis */
	/* 1, 2, 5 times a power of ten: at most 8 ticks */
	for (step = 1; s.span / step > 8;)
		step *= fmod(log10(step), 1.0) < 0.2 || fmod(log10(step), 1.0) > 0.8 ? 2 : fmod(log10(step), 1.0) < 0.5 ? 2.5 : 2;
	for (double x = 0; x <= s.span; x += step) {
		fprintf(out, "<line x1=\"%.1f\" y1=\"26\" x2=\"%.1f\" y2=\"%.0f\" stroke=\"#ddd\"/>\n", sx(&s, x),
			sx(&s, x), h - 24);
		snprintf(buf, sizeof(buf), step >= 1000 ? "%.0f s" : step >= 100 && x ? "%.1f s" : "%.0f ms",
			 step >= 100 && x ? x / 1000 : x);
		svg_text(out, sx(&s, x), 24, "middle", "fill=\"#666\"", buf);
	}
	/* lane 1: the migration's statements, with the waits for their locks */
	svg_text(out, 8, y_mig + 14, "start", "", "migration");
	json_array_foreach(json_object_get(t, "statements"), i, v) {
		double a = json_number_value(json_array_get(v, 0)), b = json_number_value(json_array_get(v, 1));
		double w = fmax(sx(&s, b) - sx(&s, a), 1.5);

		fprintf(out, "<rect x=\"%.1f\" y=\"%.0f\" width=\"%.1f\" height=\"22\" fill=\"%s\"><title>",
			sx(&s, a), y_mig, w, i % 2 ? "#5b8bd0" : "#3a6bb5");
		ts_xml_escape(out, json_string_value(json_array_get(v, 2)));
		fprintf(out, " (%.0f ms): ", b - a);
		ts_xml_escape(out, json_string_value(json_array_get(v, 3)));
		fputs("</title></rect>\n", out);
		if (w > 70)
			svg_text(out, sx(&s, a) + 3, y_mig + 15, "start", "fill=\"white\"",
				 json_string_value(json_array_get(v, 2)));
	}
	json_array_foreach(json_object_get(e, "lock_queues"), i, v) {
		json_t *st;
		size_t k;

		json_array_foreach(json_object_get(t, "statements"), k, st)
			if (!strcmp(json_string_value(json_array_get(st, 2)), ts_json_str(v, "migration"))) {
				double a = json_number_value(json_array_get(st, 0));

				fprintf(out, "<rect x=\"%.1f\" y=\"%.0f\" width=\"%.1f\" height=\"22\" fill=\"#d9534f\" fill-opacity=\"0.8\"><title>waiting for its lock: %.0f ms</title></rect>\n",
					sx(&s, a), y_mig, fmax(sx(&s, a + ts_json_num(v, "waited_ms")) - sx(&s, a), 1.5),
					ts_json_num(v, "waited_ms"));
				break;
			}
	}
	/* lane 2: application latency, the slowest statement per slice of time */
	svg_text(out, 8, y_lat + 14, "start", "", "app latency");
	svg_text(out, 8, y_lat + 28, "start", "fill=\"#666\"", "(log scale)");
	for (double d = 0.1; d <= top * 1.001; d *= 10) {
		snprintf(buf, sizeof(buf), d >= 1000 ? "%.0f s" : d >= 1 ? "%.0f ms" : "%.1f ms",
			 d >= 1000 ? d / 1000 : d);
		fprintf(out, "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" stroke=\"#eee\"/>\n", SVG_L,
			sy(d, top, y_lat), SVG_W - SVG_R, sy(d, top, y_lat));
		svg_text(out, SVG_L - 4, sy(d, top, y_lat) + 4, "end", "fill=\"#666\"", buf);
	}
	json_array_foreach(json_object_get(t, "latency"), i, v) {
		double a = json_number_value(json_array_get(v, 0)), ms = json_number_value(json_array_get(v, 1));

		fprintf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#444\" stroke-width=\"2\"/>\n",
			sx(&s, a), y_lat + LAT_H, sx(&s, a), sy(ms, top, y_lat));
		if (json_integer_value(json_array_get(v, 3)))
			fprintf(out, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"#d9534f\"><title>%d error(s)</title></circle>\n",
				sx(&s, a), y_lat + 4, (int)json_integer_value(json_array_get(v, 3)));
	}
	if (r->max_stall_ms > 0) {
		fprintf(out, "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" stroke=\"#d9534f\" stroke-dasharray=\"4 3\"/>\n",
			SVG_L, sy(r->max_stall_ms, top, y_lat), SVG_W - SVG_R, sy(r->max_stall_ms, top, y_lat));
		svg_text(out, SVG_L + 4, sy(r->max_stall_ms, top, y_lat) - 3, "start", "fill=\"#d9534f\"",
			 "gate.max_stall_ms");
	}
	/* lanes 3...: each client, red where it waited on the migration */
	svg_text(out, 8, y_wait - 6, "start", "", "waits on the migration");
	for (int c = 0; c < lanes; c++) {
		snprintf(buf, sizeof(buf), "client %d", c + 1);
		svg_text(out, SVG_L - 4, y_wait + c * 14.0 + 10, "end", "fill=\"#666\"", buf);
		fprintf(out, "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" stroke=\"#eee\"/>\n", SVG_L,
			y_wait + c * 14.0 + 6, SVG_W - SVG_R, y_wait + c * 14.0 + 6);
	}
	json_array_foreach(json_object_get(t, "waits"), i, v) {
		double a = json_number_value(json_array_get(v, 1)), b = json_number_value(json_array_get(v, 2));
		int lane = (int)json_integer_value(json_array_get(v, 0));

		fprintf(out, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"10\" fill=\"#d9534f\"><title>waited %.0f ms</title></rect>\n",
			sx(&s, a), y_wait + lane * 14.0 + 1, fmax(sx(&s, b) - sx(&s, a), 1.5), b - a);
	}
	/* the longest stall, marked across the picture */
	if (json_is_object(stall) && json_object_get(stall, "end_ms")) {
		double x = sx(&s, ts_json_num(stall, "end_ms"));

		snprintf(buf, sizeof(buf), "stall %.0f ms", ts_json_num(stall, "ms"));
		fprintf(out, "<line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\" stroke=\"#b52b27\" stroke-width=\"1.5\"/>\n",
			x, y_mig - 6, x, h - 24);
		if (x > SVG_W - 160)
			svg_text(out, x - 3, y_lat + 40, "end", "fill=\"#b52b27\" font-weight=\"bold\"", buf);
		else
			svg_text(out, x + 3, y_lat + 40, "start", "fill=\"#b52b27\" font-weight=\"bold\"", buf);
	}
	svg_text(out, 8, h - 8, "start", "fill=\"#666\"",
		 "yellow: the migration ran; blue: its statements; red: waiting for a lock; dots: application errors");
	fputs("</svg>\n", out);
}
