/*
 * render_upgrade.c: report.upgrade as people read it.
 */
#include "report/render_upgrade.h"
#include "report/format.h"
#include "report/report.h"

#include <jansson.h>
#include <string.h>

static double ms(json_t *o, const char *key)
{
	return json_number_value(json_object_get(json_object_get(o, "steps"), key));
}

void ts_report_render_upgrade(const struct ts_report *r, int markdown, FILE *out)
{
	json_t *u = r->upgrade, *v, *plans;
	const char *item = markdown ? "- " : "  ";
	size_t i, shown = 0;

	if (!u || !json_object_get(u, "to"))
		return;
	fprintf(out, markdown ? "\n## The dev side on PostgreSQL %d\n\n" : "\ndev side on PostgreSQL %d\n",
		(int)json_integer_value(json_object_get(u, "to")));
	if (json_is_true(json_object_get(u, "kept"))) {
		fprintf(out, "%sstack %s (Debian %s), kept from an earlier run (rehearse --reuse), upgraded from PostgreSQL %d by %s\n",
			item, ts_json_str(u, "stack"), ts_json_str(u, "suite"),
			(int)json_integer_value(json_object_get(u, "from")), ts_json_str(u, "method"));
	} else {
		fprintf(out, "%sstack %s (Debian %s%s), from PostgreSQL %d by %s%s%s", item, ts_json_str(u, "stack"),
			ts_json_str(u, "suite"), json_is_true(json_object_get(u, "stack_cached")) ? ", cached" : ", built now",
			(int)json_integer_value(json_object_get(u, "from")), ts_json_str(u, "method"),
			*ts_json_str(u, "mode") ? " --" : "", ts_json_str(u, "mode"));
		if (!strcmp(ts_json_str(u, "method"), "pg_upgrade"))
			fprintf(out, ": check %.1f s, upgrade %.1f s, ANALYZE %.1f s\n", ms(u, "check_ms") / 1000.0,
				ms(u, "upgrade_ms") / 1000.0, ms(u, "analyze_ms") / 1000.0);
		else
			fprintf(out, ": ANALYZE %.1f s\n", ms(u, "analyze_ms") / 1000.0);
	}
	if (json_object_get(u, "image"))
		fprintf(out, "%sthe dev guest boots its own image, %s (the stack holds the programs that filled it)\n",
			item, ts_json_str(u, "image"));
	json_array_foreach(json_object_get(u, "left"), i, v)
		fprintf(out, "%spg_upgrade left %s: run it on production after its upgrade\n", item,
			json_string_value(v));
	json_array_foreach(json_object_get(u, "settings"), i, v) {
		if (!strcmp(ts_json_str(v, "change"), "removed"))
			fprintf(out, "%ssetting %s = %s (%s): PostgreSQL %d does not have it\n", item,
				ts_json_str(v, "name"), ts_json_str(v, "set"), ts_json_str(v, "source"),
				(int)json_integer_value(json_object_get(u, "to")));
		else
			fprintf(out, "%ssetting %s = %s (%s): its default changed from %s to %s\n", item,
				ts_json_str(v, "name"), ts_json_str(v, "set"), ts_json_str(v, "source"),
				ts_json_str(v, "old_default"), ts_json_str(v, "new_default"));
	}
	plans = json_object_get(u, "plans");
	json_array_foreach(plans, i, v) {
		int over = json_is_true(json_object_get(v, "over_gate"));
		int slow = json_is_true(json_object_get(v, "slower"));
		int changed = json_is_true(json_object_get(v, "plan_changed"));
		char speed[96];

		if (!slow && !changed)
			continue;
		if (!shown++)
			fprintf(out, markdown ? "\nStatements whose plan changed or that got slower, heaviest first:\n\n" :
				"  statements whose plan changed or that got slower, heaviest first\n");
		fprintf(out, "%s%s %s:%d \"%s\": %s%s%s\n", markdown ? "- " : "    ", ts_json_str(v, "app"),
			ts_json_str(v, "file"), (int)json_integer_value(json_object_get(v, "line")), ts_json_str(v, "name"),
			ts_speed_text(json_number_value(json_object_get(v, "prod_ms")),
				      json_number_value(json_object_get(v, "dev_ms")), speed, sizeof(speed)),
			over ? ", over gate.max_slowdown" : "", changed ? ", plan changed" : "");
		fprintf(out, markdown ? "  `%s`\n" : "      %s\n", ts_json_str(v, "sql"));
		if (changed)
			fprintf(out, markdown ? "  - before: `%s`\n  - after: `%s`\n" :
				"      plan before: %s\n      plan after:  %s\n", ts_json_str(v, "prod_shape"),
				ts_json_str(v, "dev_shape"));
	}
	if (plans && !shown)
		fprintf(out, "%s%zu statements measured on both: the same plans, none slower\n", item,
			json_array_size(plans));
}
