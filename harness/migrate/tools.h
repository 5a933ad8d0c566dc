/*
 * tools: what twinstage knows of the migration tools whose migrations are
 * code, run for real ([project] tool): their default commands, the table
 * in which each records what it applied, and which of the statements it
 * sends write that table (closing one of its migrations).
 *
 *	alembic		alembic_version (version_num): one row per head;
 *			"alembic upgrade head", down "alembic downgrade REV|base"
 *	django		django_migrations (app, name, applied): a row per migration;
 *			"python3 manage.py migrate --noinput", down per app
 *			"python3 manage.py migrate APP NAME|zero"
 *	rails		schema_migrations (version) and ar_internal_metadata:
 *			"bin/rails db:migrate", down "bin/rails db:migrate VERSION=V"
 *	sqitch		the registry schema sqitch (changes, events, ...):
 *			"sqitch deploy", down "sqitch revert -y --to CHANGE" (or all)
 *	command		the team's own commands ([migrate] command and down),
 *			no table unless [project] tracking_table names one
 *
 * Nothing here runs a tool: rehearse/tool.c does, on the dev side.
 */
#ifndef TS_TOOLS_H
#define TS_TOOLS_H

#include <libpq-fe.h>

#include "core/strvec.h"

struct json_t;
struct ts_tracking_state;

enum ts_tool { TS_TOOL_NONE, TS_TOOL_ALEMBIC, TS_TOOL_DJANGO, TS_TOOL_RAILS, TS_TOOL_SQITCH,
	       TS_TOOL_COMMAND };

/* "alembic", ...; -1 when unknown. */
int ts_tool_parse(const char *s, enum ts_tool *out);
const char *ts_tool_name(enum ts_tool t);
/* The program a user installs for it, for the hint when it is missing ("alembic", "python3"...). */
const char *ts_tool_default_command(enum ts_tool t);
/* The table its rows are read from ("public.django_migrations"), or NULL (command without tracking_table). */
const char *ts_tool_table(enum ts_tool t, const char *tracking_table);

/*
 * What the tool's table lists on conn, as a tracking state: rows in the
 * order the tool applied them, each version the migration's name as the
 * tool names it ("shop.0002_note", a revision, a Rails version, a Sqitch
 * change), latest the newest. A missing table is an empty state.
 */
int ts_tool_read_state(PGconn *conn, enum ts_tool t, const char *tracking_table,
		       struct ts_tracking_state *st);

/*
 * The commands (each a command line, split later) that take the dev side
 * back from `dev` to `prod`, the way the tool's own down would, built on
 * the words of the up command `up` before its verb (so "-c alembic.ini"
 * or "/usr/bin/python3 manage.py" carry over): Alembic's
 * downgrade to production's revision, Django's migrate of each app to its
 * production migration (or zero), Rails' migrate to production's version,
 * Sqitch's revert to production's last change. None when nothing differs.
 * -1 with a TS_EXIT_USAGE error for a tool with no default way back.
 */
int ts_tool_default_down(enum ts_tool t, const char *up, const struct ts_tracking_state *prod,
			 const struct ts_tracking_state *dev, struct strvec *out);

/*
 * Whether a statement the tool sent (its parse tree) writes the tool's
 * table: the end of one of its migrations. *name gets what the statement
 * names (Alembic's new revision; NULL when the values are parameters or
 * the row is deleted).
 */
int ts_tool_closes(enum ts_tool t, const char *tracking_table, struct json_t *node, char **name);

/*
 * Whether a statement only keeps the tool's own books (creates, reads or
 * writes its table, ar_internal_metadata, Sqitch's registry schema): left
 * out of what the report shows the tool ran. `node` is its parse tree,
 * `names` what it names (sql.h's ts_sql_names).
 */
int ts_tool_bookkeeping(enum ts_tool t, const char *tracking_table, struct json_t *node,
			const struct strvec *names);

/* Whether "schema.table" is one of the tool's own tables (its books, not the application's data). */
int ts_tool_owns(enum ts_tool t, const char *tracking_table, const char *qualified);

#endif
