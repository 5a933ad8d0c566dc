/*
 * render_junit.c: the report as JUnit XML, for CI systems that show test
 * results: one test suite per check of the matrix, one for the
 * migrations (a failed one, or one that fails the gate by its locks,
 * stalls or lint), and one for the data checks.
 */
#include "report/render_junit.h"
#include "report/format.h"
#include "report/report.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

void ts_report_render_junit(const struct ts_report *r, FILE *out)
{
	size_t tests = 0, failures = 0;

	for (size_t i = 0; i < r->n_checks; i++) {
		tests += r->checks[i].n_cases ? r->checks[i].n_cases : 1;
		if (r->checks[i].gating || r->checks[i].role == TS_CHECK_BASELINE)
			failures += r->checks[i].failed;
	}
	{
		json_t *v;
		size_t i;

		json_array_foreach(r->data, i, v) {
			tests++;
			failures += ts_report_data_fails(v);
		}
	}
	for (size_t i = 0; i < r->n_migrations; i++) {
		char *why = ts_report_gate_failure(r, &r->migrations[i]);

		tests++;
		failures += (r->migrations[i].status && !strcmp(r->migrations[i].status, "failed")) || why;
		free(why);
	}
	fprintf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"twinstage ");
	ts_xml_escape(out, r->project);
	fprintf(out, "\" tests=\"%zu\" failures=\"%zu\" errors=\"%d\">\n", tests, failures, r->error ? 1 : 0);
	fprintf(out, "  <testsuite name=\"migrations\" tests=\"%zu\">\n", r->n_migrations);
	for (size_t i = 0; i < r->n_migrations; i++) {
		const struct ts_report_migration *m = &r->migrations[i];
		char *why = ts_report_gate_failure(r, m);

		fprintf(out, "    <testcase classname=\"migrations\" name=\"");
		ts_xml_escape(out, m->file);
		fprintf(out, "\" time=\"%.3f\">", m->ms / 1000.0);
		if ((m->status && !strcmp(m->status, "failed")) || why) {
			fprintf(out, "<failure message=\"");
			ts_xml_escape(out, why ? why : m->error);
			fprintf(out, "\"/>");
		} else if (m->status && !strcmp(m->status, "not run")) {
			fprintf(out, "<skipped message=\"an earlier migration failed\"/>");
		}
		free(why);
		fprintf(out, "</testcase>\n");
	}
	fprintf(out, "  </testsuite>\n");
	for (size_t i = 0; i < r->n_checks; i++) {
		const struct ts_report_check *c = &r->checks[i];
		int counts = c->gating || c->role == TS_CHECK_BASELINE;

		fprintf(out, "  <testsuite name=\"");
		ts_xml_escape(out, c->app);
		fprintf(out, " on %s%s%s (%s)\" tests=\"%zu\" failures=\"%zu\" time=\"%.3f\">\n", c->side,
			c->phase ? " after phase " : "", c->phase ? c->phase : "", ts_check_role_name(c->role), c->n_cases ? c->n_cases : 1, counts ? c->failed : 0,
			c->ms / 1000.0);
		if (!c->ran) {
			fprintf(out, "    <testcase classname=\"%s\" name=\"", c->side);
			ts_xml_escape(out, c->app);
			fprintf(out, "\"><skipped message=\"");
			ts_xml_escape(out, c->skip);
			fprintf(out, "\"/></testcase>\n");
		}
		for (size_t j = 0; j < c->n_cases; j++) {
			const struct ts_report_case *k = &c->cases[j];

			fprintf(out, "    <testcase classname=\"");
			ts_xml_escape(out, c->app);
			fprintf(out, ".%s.", c->side);
			ts_xml_escape(out, k->file);
			fprintf(out, "\" name=\"");
			ts_xml_escape(out, k->name);
			fprintf(out, " (line %d)\">", k->line);
			if (!k->pass) {
				fprintf(out, counts ? "<failure message=\"expected " : "<skipped message=\"warning only: expected ");
				ts_xml_escape(out, k->expected);
				fprintf(out, ", got ");
				ts_xml_escape(out, k->got);
				fprintf(out, "\">");
				ts_xml_escape(out, k->sql);
				if (c->output) {
					fputc('\n', out);
					ts_xml_escape(out, c->output);
				}
				fprintf(out, counts ? "</failure>" : "</skipped>");
			} else if (k->uncheckable) {
				/* not the migration's doing: skipped, with why */
				fprintf(out, "<skipped message=\"not checkable: ");
				ts_xml_escape(out, k->uncheckable);
				fprintf(out, "\"/>");
			}
			fprintf(out, "</testcase>\n");
		}
		fprintf(out, "  </testsuite>\n");
	}
	if (r->data) {
		json_t *v, *e;
		size_t i, j, nf = 0;

		json_array_foreach(r->data, i, v)
			nf += ts_report_data_fails(v);
		fprintf(out, "  <testsuite name=\"data safety\" tests=\"%zu\" failures=\"%zu\">\n",
			json_array_size(r->data), nf);
		json_array_foreach(r->data, i, v) {
			int failed = !strcmp(ts_json_str(v, "status"), "failed");

			fprintf(out, "    <testcase classname=\"data.%s\" name=\"", ts_json_str(v, "check"));
			ts_xml_escape(out, ts_json_str(v, "name"));
			fprintf(out, "\" time=\"%.3f\">", json_number_value(json_object_get(v, "ms")) / 1000.0);
			if (failed || !strcmp(ts_json_str(v, "status"), "skipped")) {
				const char *tag = !failed ? "skipped" : ts_report_data_fails(v) ? "failure" : "skipped";

				fprintf(out, "<%s message=\"%s", tag, failed && !ts_report_data_fails(v) ? "warning only: " : "");
				ts_xml_escape(out, ts_json_str(v, "failure"));
				fprintf(out, "\">");
				json_array_foreach(json_object_get(v, "excerpt"), j, e) {
					ts_xml_escape(out, json_string_value(e));
					fputc('\n', out);
				}
				fprintf(out, "</%s>", tag);
			}
			fprintf(out, "</testcase>\n");
		}
		fprintf(out, "  </testsuite>\n");
	}
	if (r->error) {
		fprintf(out, "  <testsuite name=\"rehearsal\" tests=\"1\" errors=\"1\">\n"
			     "    <testcase classname=\"rehearsal\" name=\"run\"><error message=\"");
		ts_xml_escape(out, r->error);
		fprintf(out, "\"/></testcase>\n  </testsuite>\n");
	}
	fprintf(out, "</testsuites>\n");
}
