/*
 * tools.c: each migration tool's table, commands and closing statements.
 * See tools.h.
 */
#include "migrate/tools.h"
#include "core/error.h"
#include "core/strbuf.h"
#include "core/util.h"
#include "core/wrapper.h"
#include "migrate/tracking.h"
#include "pg/pg.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const struct tool {
	const char *name;
	const char *command;	/* the default up command */
	const char *verb;	/* the word of it the down command replaces, or keeps */
	const char *table;	/* as the tool names it (the search_path finds it) */
	const char *rows;	/* the rows, in the order applied */
} tools[] = {
	[TS_TOOL_ALEMBIC] = { "alembic", "alembic upgrade head", "upgrade", "alembic_version",
			      "SELECT version_num FROM alembic_version ORDER BY 1" },
	[TS_TOOL_DJANGO] = { "django", "python3 manage.py migrate --noinput", "migrate", "django_migrations",
			     "SELECT app || '.' || name FROM django_migrations ORDER BY id" },
	[TS_TOOL_RAILS] = { "rails", "bin/rails db:migrate", "db:migrate", "schema_migrations",
			    "SELECT version FROM schema_migrations ORDER BY version" },
	[TS_TOOL_SQITCH] = { "sqitch", "sqitch deploy", "deploy", "sqitch.changes",
			     "SELECT change FROM sqitch.changes ORDER BY committed_at, change_id" },
	[TS_TOOL_COMMAND] = { "command", NULL, NULL, NULL, NULL },
};

int ts_tool_parse(const char *s, enum ts_tool *out)
{
	for (int i = TS_TOOL_ALEMBIC; i <= TS_TOOL_COMMAND; i++)
		if (!strcmp(s, tools[i].name)) {
			*out = (enum ts_tool)i;
			return 0;
		}
	return -1;
}

const char *ts_tool_name(enum ts_tool t)
{
	return t == TS_TOOL_NONE ? "files" : tools[t].name;
}

const char *ts_tool_default_command(enum ts_tool t)
{
	return t == TS_TOOL_NONE ? NULL : tools[t].command;
}

const char *ts_tool_table(enum ts_tool t, const char *tracking_table)
{
	if (t == TS_TOOL_NONE)
		return NULL;
	return tracking_table ? tracking_table : tools[t].table;
}

int ts_tool_read_state(PGconn *conn, enum ts_tool t, const char *tracking_table, struct ts_tracking_state *st)
{
	const char *table = ts_tool_table(t, tracking_table);
	char *sql = NULL, *what;
	PGresult *res;
	int r;

	memset(st, 0, sizeof(*st));
	if (!table)
		return 0;
	what = xstrfmt("%s's table", tools[t].name);
	r = ts_pg_table_exists(conn, table, what, &st->exists);
	free(what);
	if (r || !st->exists)
		return r;
	if (!tracking_table && tools[t].rows) {
		sql = xstrdup(tools[t].rows);
	} else {
		char *q = ts_pg_qualified(table);
		char *dot = strchr(q, '.');
		char *s = xstrndup(q, (size_t)(dot - q)), *n = xstrdup(dot + 1);
		char *qs = ts_pg_ident(conn, s), *qn = ts_pg_ident(conn, n);

		/* a table of the team's own: its first column, in its order */
		sql = xstrfmt("SELECT * FROM %s.%s ORDER BY 1", qs, qn);
		free(q);
		free(s);
		free(n);
		free(qs);
		free(qn);
	}
	what = xstrfmt("read %s's table \"%s\"", tools[t].name, table);
	res = ts_pg_rows(conn, sql, what);
	free(what);
	free(sql);
	if (!res)
		return -1;
	st->rows = xcalloc((size_t)PQntuples(res) + 1, sizeof(*st->rows));
	for (int i = 0; i < PQntuples(res); i++) {
		st->rows[st->n].version = xstrdup(PQgetvalue(res, i, 0));
		st->rows[st->n].success = 1;
		st->n++;
	}
	PQclear(res);
	if (st->n) {
		/* Alembic's heads, all of them; the others' last applied */
		struct strbuf sb = STRBUF_INIT;

		if (t == TS_TOOL_ALEMBIC)
			for (size_t i = 0; i < st->n; i++)
				strbuf_addf(&sb, "%s%s", i ? "," : "", st->rows[i].version);
		else
			strbuf_addstr(&sb, st->rows[st->n - 1].version);
		st->latest = strbuf_detach(&sb);
	}
	return 0;
}

static int listed(const struct ts_tracking_state *st, const char *v)
{
	for (size_t i = 0; i < st->n; i++)
		if (!strcmp(st->rows[i].version, v))
			return 1;
	return 0;
}

/* The up command's words before its verb ("python3 manage.py" for "... migrate --noinput"). */
static char *prefix_before(const char *up, const char *verb, int keep_verb)
{
	struct strvec w = STRVEC_INIT;
	struct strbuf sb = STRBUF_INIT;
	size_t i;

	if (split_command(up, &w))
		return NULL;
	for (i = 0; i < w.nr && strcmp(w.v[i], verb); i++)
		;
	if (i == w.nr) {
		strvec_clear(&w);
		return NULL;
	}
	for (size_t k = 0; k < i + (keep_verb ? 1 : 0); k++) {
		char *q = shell_quote(w.v[k]);

		strbuf_addf(&sb, "%s%s", k ? " " : "", q);
		free(q);
	}
	strvec_clear(&w);
	return strbuf_detach(&sb);
}

int ts_tool_default_down(enum ts_tool t, const char *up, const struct ts_tracking_state *prod,
			 const struct ts_tracking_state *dev, struct strvec *out)
{
	char *pre;
	int differs = 0;

	if (t == TS_TOOL_COMMAND || t == TS_TOOL_NONE)
		return ts_error_set(TS_EXIT_USAGE, "tool = command has no way back of its own: give [migrate] down");
	for (size_t i = 0; i < dev->n; i++)
		differs |= !listed(prod, dev->rows[i].version);
	for (size_t i = 0; i < prod->n; i++)
		differs |= !listed(dev, prod->rows[i].version);
	if (!differs)
		return 0;
	if (!(pre = prefix_before(up ? up : tools[t].command, tools[t].verb,
				  t == TS_TOOL_DJANGO || t == TS_TOOL_RAILS))) {
		ts_error_set(TS_EXIT_USAGE, "cannot tell the way back from [migrate] command \"%s\" (no \"%s\" in it)",
			     up, tools[t].verb);
		return ts_error_hint("give [migrate] down, the command that takes the dev side back to production's state");
	}
	switch (t) {
	case TS_TOOL_ALEMBIC:
		if (prod->n > 1) {
			free(pre);
			return ts_error_set(TS_EXIT_USAGE, "production's alembic_version has %zu heads: give [migrate] down",
					    prod->n);
		}
		strvec_pushf(out, "%s downgrade %s", pre, prod->n ? prod->rows[0].version : "base");
		break;
	case TS_TOOL_DJANGO: {
		/* each app with new migrations, back to its last one in production; later apps first */
		struct strvec apps = STRVEC_INIT;

		for (size_t i = dev->n; i-- > 0;) {
			const char *v = dev->rows[i].version, *dot = strchr(v, '.');
			char *app;

			if (!dot || listed(prod, v))
				continue;
			app = xstrndup(v, (size_t)(dot - v));
			if (strvec_find(&apps, app) < 0)
				strvec_push(&apps, app);
			free(app);
		}
		for (size_t a = 0; a < apps.nr; a++) {
			const char *to = "zero";
			size_t n = strlen(apps.v[a]);

			for (size_t i = 0; i < prod->n; i++)
				if (!strncmp(prod->rows[i].version, apps.v[a], n) && prod->rows[i].version[n] == '.')
					to = prod->rows[i].version + n + 1;
			strvec_pushf(out, "%s %s %s --noinput", pre, apps.v[a], to);
		}
		strvec_clear(&apps);
		break;
	}
	case TS_TOOL_RAILS:
		strvec_pushf(out, "%s VERSION=%s", pre, prod->latest ? prod->latest : "0");
		break;
	case TS_TOOL_SQITCH:
		if (prod->latest)
			strvec_pushf(out, "%s revert -y --to %s", pre, prod->latest);
		else
			strvec_pushf(out, "%s revert -y", pre);
		break;
	default:
		break;
	}
	free(pre);
	return 0;
}

static const char *jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* The string constant of a parse-tree expression ('3f2a'), or NULL. */
static const char *string_const(json_t *expr)
{
	json_t *c = json_object_get(expr, "A_Const");

	return c ? jstr(json_object_get(c, "sval"), "sval") : NULL;
}

int ts_tool_closes(enum ts_tool t, const char *tracking_table, json_t *node, char **name)
{
	const char *table = ts_tool_table(t, tracking_table), *kind = NULL;
	json_t *body = NULL, *rel;
	char *want_schema = NULL;
	const char *want, *dot;
	int hit;

	*name = NULL;
	if (!table || !json_is_object(node))
		return 0;
	json_object_foreach(node, kind, body)
		break;
	if (!kind || (strcmp(kind, "InsertStmt") && strcmp(kind, "UpdateStmt") && strcmp(kind, "DeleteStmt")))
		return 0;
	rel = json_object_get(body, "relation");
	dot = strchr(table, '.');
	want = dot ? dot + 1 : table;
	if (dot)
		want_schema = xstrndup(table, (size_t)(dot - table));
	hit = jstr(rel, "relname") && !strcmp(jstr(rel, "relname"), want) &&
	      (!want_schema || !jstr(rel, "schemaname") || !strcmp(jstr(rel, "schemaname"), want_schema));
	free(want_schema);
	if (!hit)
		return 0;
	/* Alembic's new revision: UPDATE ... SET version_num='x', or INSERT ... VALUES ('x') */
	if (t == TS_TOOL_ALEMBIC && !strcmp(kind, "UpdateStmt")) {
		json_t *tl = json_array_get(json_object_get(body, "targetList"), 0);
		const char *v = string_const(json_object_get(json_object_get(tl, "ResTarget"), "val"));

		if (v)
			*name = xstrdup(v);
	} else if (t == TS_TOOL_ALEMBIC && !strcmp(kind, "InsertStmt")) {
		json_t *sel = json_object_get(json_object_get(body, "selectStmt"), "SelectStmt");
		json_t *row = json_object_get(json_array_get(json_object_get(sel, "valuesLists"), 0), "List");
		const char *v = string_const(json_array_get(json_object_get(row, "items"), 0));

		if (v)
			*name = xstrdup(v);
	}
	return 1;
}

/* Whether the tree holds key: value anywhere (a schemaname, say). */
static int holds(json_t *node, const char *key, const char *value)
{
	const char *k;
	json_t *v;
	size_t i;

	if (json_is_array(node)) {
		json_array_foreach(node, i, v)
			if (holds(v, key, value))
				return 1;
		return 0;
	}
	json_object_foreach(node, k, v)
		if (json_is_string(v) ? !strcmp(k, key) && !strcmp(json_string_value(v), value) : holds(v, key, value))
			return 1;
	return 0;
}

int ts_tool_bookkeeping(enum ts_tool t, const char *tracking_table, json_t *node, const struct strvec *names)
{
	const char *table = ts_tool_table(t, tracking_table), *dot;

	if (!table)
		return 0;
	dot = strrchr(table, '.');
	if (strvec_find(names, dot ? dot + 1 : table) >= 0)
		return 1;
	if (t == TS_TOOL_RAILS && strvec_find(names, "ar_internal_metadata") >= 0)
		return 1;
	/* Sqitch's registry: its own schema */
	return t == TS_TOOL_SQITCH && (holds(node, "schemaname", "sqitch") || strvec_find(names, "sqitch") >= 0);
}

int ts_tool_owns(enum ts_tool t, const char *tracking_table, const char *qualified)
{
	const char *table = ts_tool_table(t, tracking_table), *dot = strchr(qualified, '.');
	const char *name = dot ? dot + 1 : qualified, *tdot;

	if (!table)
		return 0;
	tdot = strrchr(table, '.');
	if (!strcmp(name, tdot ? tdot + 1 : table))
		return 1;
	if (t == TS_TOOL_RAILS && !strcmp(name, "ar_internal_metadata"))
		return 1;
	return t == TS_TOOL_SQITCH && dot && (size_t)(dot - qualified) == 6 && !strncmp(qualified, "sqitch", 6);
}
