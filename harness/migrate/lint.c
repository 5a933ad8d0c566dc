/*
 * lint.c: the rules, as walks over libpg_query's JSON parse tree.
 *
 * Every rule asks the same two questions of a statement: which table does
 * it touch (a RangeVar), and did this migration create that table? Only
 * tables that existed before the migration hold rows and have readers, so
 * only they make a hazard.
 */
#include "migrate/lint.h"
#include "core/error.h"
#include "core/strbuf.h"
#include "core/strvec.h"
#include "core/util.h"
#include "core/wrapper.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const struct rule {
	const char *id;
	enum ts_lint_level level;
	const char *recipe;
} rules[] = {
	{ "drop-table", TS_LINT_ERROR,
	  "release a version that no longer reads or writes the table first; drop it in a later migration" },
	{ "drop-column", TS_LINT_ERROR,
	  "release a version that no longer reads or writes the column first (ignore it in the ORM); drop it in a later migration" },
	{ "rename-table", TS_LINT_ERROR,
	  "create the new table, write both, backfill, read the new one, then drop the old one (the four part migration)" },
	{ "rename-column", TS_LINT_ERROR,
	  "add the new column, write both, backfill in batches, read the new one, then drop the old one" },
	{ "change-column-type", TS_LINT_ERROR,
	  "add a column of the new type, write both, backfill in batches, switch reads, then drop the old column" },
	{ "set-not-null", TS_LINT_ERROR,
	  "ADD CONSTRAINT ... CHECK (col IS NOT NULL) NOT VALID, then VALIDATE CONSTRAINT, then SET NOT NULL (it uses the validated check and does not scan)" },
	{ "not-null-without-default", TS_LINT_ERROR,
	  "add the column nullable or with a constant DEFAULT, backfill it, then enforce NOT NULL with a NOT VALID check" },
	{ "volatile-default", TS_LINT_ERROR,
	  "add the column without a default, then ALTER COLUMN ... SET DEFAULT for new rows, and backfill existing rows in batches" },
	{ "index-not-concurrent", TS_LINT_ERROR,
	  "CREATE INDEX CONCURRENTLY, in a migration that does not run in a transaction" },
	{ "drop-index-not-concurrent", TS_LINT_ERROR,
	  "DROP INDEX CONCURRENTLY, in a migration that does not run in a transaction (its ACCESS EXCLUSIVE lock on the table, queued behind a reader, stops every query and can deadlock with the application)" },
	{ "concurrently-in-transaction", TS_LINT_ERROR,
	  "give it a migration of its own that runs outside a transaction (dbmate: \"-- migrate:up transaction:false\"; golang-migrate: one statement in the file)" },
	{ "constraint-not-valid", TS_LINT_ERROR,
	  "add the constraint NOT VALID, then ALTER TABLE ... VALIDATE CONSTRAINT in a later transaction (its lock lets reads and writes through)" },
	{ "validate-in-same-transaction", TS_LINT_ERROR,
	  "VALIDATE CONSTRAINT in a later transaction (a migration of its own): in the one that added it NOT VALID, the scan runs under the ADD's lock, which blocks writes" },
	{ "unique-without-index", TS_LINT_ERROR,
	  "CREATE UNIQUE INDEX CONCURRENTLY first, then ADD CONSTRAINT ... UNIQUE (or PRIMARY KEY) USING INDEX" },
	{ "missing-lock-timeout", TS_LINT_WARNING,
	  "SET lock_timeout = '2s' before it (and retry on timeout), so it cannot queue behind a long transaction and block every query after it" },
	{ "statements-after-lock", TS_LINT_WARNING,
	  "put the ACCESS EXCLUSIVE statement last in its transaction, or in a migration of its own, so the lock is released right after it" },
	{ "syntax-error", TS_LINT_ERROR, "fix the statement; PostgreSQL would reject the migration" },
};

static const char *const volatile_functions[] = {
	"clock_timestamp", "random", "gen_random_uuid", "uuid_generate_v1", "uuid_generate_v1mc",
	"uuid_generate_v4", "timeofday", "nextval", NULL,
};

static const char *const serial_types[] = {
	"serial", "bigserial", "smallserial", "serial2", "serial4", "serial8", NULL,
};

static const struct rule *rule_get(const char *id)
{
	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
		if (!strcmp(rules[i].id, id))
			return &rules[i];
	abort();
}

static int in_list(const char *const *list, const char *s)
{
	for (; s && *list; list++)
		if (!strcmp(*list, s))
			return 1;
	return 0;
}

/* One migration being linted. */
struct ctx {
	struct ts_lint *out;
	const char *file, *sql;
	int first_line;
	const struct ts_stmt *st;	/* the statement being looked at */
	struct strvec created;		/* tables and indexes this migration created */
	int lock_timeout;		/* SET lock_timeout seen */
	int in_tx;			/* the statement runs in a transaction with the ones before it */
	struct strvec not_valid;	/* "table.constraint" added NOT VALID in the open transaction */
};

static const char *jstr(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static int jtrue(json_t *o, const char *key)
{
	return json_is_true(json_object_get(o, key));
}

/* "schema.name" or "name" of a RangeVar (new string). */
static char *rel_name(json_t *rv)
{
	const char *schema = jstr(rv, "schemaname"), *name = jstr(rv, "relname");

	if (!name)
		return xstrdup("?");
	return schema ? xstrfmt("%s.%s", schema, name) : xstrdup(name);
}

/* A name from a List of String nodes, as in DropStmt objects. */
static char *list_name(json_t *list)
{
	struct strbuf sb = STRBUF_INIT;
	size_t i;
	json_t *it;

	json_array_foreach(json_object_get(json_object_get(list, "List"), "items"), i, it) {
		if (sb.len)
			strbuf_addch(&sb, '.');
		strbuf_addstr(&sb, jstr(json_object_get(it, "String"), "sval") ?: "?");
	}
	return strbuf_detach(&sb);
}

static const char *unqualified(const char *name)
{
	const char *dot = strrchr(name, '.');

	return dot ? dot + 1 : name;
}

static int was_created(struct ctx *c, const char *name)
{
	for (size_t i = 0; i < c->created.nr; i++)
		if (!strcmp(c->created.v[i], name) ||
		    !strcmp(unqualified(c->created.v[i]), unqualified(name)))
			return 1;
	return 0;
}

/* 1 when the statement's leading comments say "twinstage:ignore" for rule. */
static int ignored(const struct ts_stmt *st, const char *rule)
{
	size_t end = ts_skip_comments(st->sql);
	char *head = xstrndup(st->sql, end), *p = head;
	int found = 0;

	while (!found && (p = strstr(p, "twinstage:ignore"))) {
		size_t len = strlen(rule);

		p += strlen("twinstage:ignore");
		while (*p && *p != '\n') {
			p += strspn(p, " \t,");
			if (!strncmp(p, rule, len) && (!p[len] || strchr(" \t,\r\n", p[len])))
				found = 1;
			p += strcspn(p, " \t,\n");
		}
	}
	free(head);
	return found;
}

static void finding(struct ctx *c, const char *rule_id, json_t *at, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Records a finding at the node `at` (its "location"), or at the statement. */
static void finding(struct ctx *c, const char *rule_id, json_t *at, const char *fmt, ...)
{
	const struct rule *r = rule_get(rule_id);
	struct ts_lint_finding *f;
	json_t *loc = at ? json_object_get(at, "location") : NULL;
	size_t off;
	va_list ap;

	if (ignored(c->st, rule_id))
		return;
	off = json_is_integer(loc) && json_integer_value(loc) >= 0 ?
		(size_t)json_integer_value(loc) : c->st->offset + ts_skip_comments(c->st->sql);
	c->out->v = xrealloc(c->out->v, (c->out->n + 1) * sizeof(*c->out->v));
	f = &c->out->v[c->out->n++];
	memset(f, 0, sizeof(*f));
	f->file = xstrdup(c->file);
	f->line = ts_line_at(c->sql, off, c->first_line);
	f->col = ts_col_at(c->sql, off);
	f->stmt_line = c->st->line;
	f->rule = r->id;
	f->level = r->level;
	f->recipe = r->recipe;
	va_start(ap, fmt);
	if (vasprintf(&f->message, fmt, ap) < 0)
		abort();
	va_end(ap);
	if (r->level == TS_LINT_ERROR)
		c->out->errors++;
	else
		c->out->warnings++;
}

/* Name of the first volatile function called anywhere in expr, or NULL. */
static const char *volatile_call(json_t *expr)
{
	const char *key, *found = NULL;
	json_t *v;
	size_t i;

	if (json_is_array(expr)) {
		json_array_foreach(expr, i, v)
			if ((found = volatile_call(v)))
				return found;
		return NULL;
	}
	if (!json_is_object(expr))
		return NULL;
	json_object_foreach(expr, key, v) {
		if (!strcmp(key, "FuncCall")) {
			json_t *names = json_object_get(v, "funcname");
			const char *fn = jstr(json_object_get(json_array_get(names,
				json_array_size(names) - 1), "String"), "sval");

			if (in_list(volatile_functions, fn))
				return fn;
		}
		if ((found = volatile_call(v)))
			return found;
	}
	return NULL;
}

static const char *type_name(json_t *coldef)
{
	json_t *names = json_object_get(json_object_get(coldef, "typeName"), "names");

	return jstr(json_object_get(json_array_get(names, json_array_size(names) - 1), "String"),
		    "sval");
}

/* ADD COLUMN on an existing table. */
static void lint_add_column(struct ctx *c, const char *table, json_t *coldef)
{
	const char *col = jstr(coldef, "colname") ?: "?", *fn;
	int notnull = 0, has_default = 0;
	json_t *con, *dflt = NULL;
	size_t i;

	json_array_foreach(json_object_get(coldef, "constraints"), i, con) {
		const char *t = jstr(json_object_get(con, "Constraint"), "contype");

		if (!t)
			continue;
		if (!strcmp(t, "CONSTR_NOTNULL") || !strcmp(t, "CONSTR_PRIMARY"))
			notnull = 1;
		else if (!strcmp(t, "CONSTR_DEFAULT"))
			has_default = 1, dflt = json_object_get(json_object_get(con, "Constraint"), "raw_expr");
		else if (!strcmp(t, "CONSTR_IDENTITY") || !strcmp(t, "CONSTR_GENERATED"))
			has_default = 1;
	}
	if (in_list(serial_types, type_name(coldef))) {
		finding(c, "volatile-default", coldef,
			"adding %s column \"%s\" to existing table %s fills it from a sequence: the table is rewritten under an ACCESS EXCLUSIVE lock",
			type_name(coldef), col, table);
		return;
	}
	if (dflt && (fn = volatile_call(dflt)))
		finding(c, "volatile-default", coldef,
			"column \"%s\" added to existing table %s with the volatile default %s(): the table is rewritten under an ACCESS EXCLUSIVE lock",
			col, table, fn);
	if (notnull && !has_default)
		finding(c, "not-null-without-default", coldef,
			"column \"%s\" added to existing table %s as NOT NULL without a default: it fails on a table with rows, and the live version's inserts do not write it",
			col, table);
}

static void lint_constraint(struct ctx *c, const char *table, json_t *con)
{
	const char *t = jstr(con, "contype") ?: "";
	const char *name = jstr(con, "conname");

	if ((!strcmp(t, "CONSTR_CHECK") || !strcmp(t, "CONSTR_FOREIGN")) && jtrue(con, "skip_validation") &&
	    name && c->in_tx)
		strvec_pushf(&c->not_valid, "%s.%s", table, name);
	if ((!strcmp(t, "CONSTR_CHECK") || !strcmp(t, "CONSTR_FOREIGN")) &&
	    !jtrue(con, "skip_validation"))
		finding(c, "constraint-not-valid", con,
			"%s constraint %s%s%son existing table %s is validated while it holds a lock that blocks writes: a scan of the whole table",
			!strcmp(t, "CONSTR_CHECK") ? "CHECK" : "FOREIGN KEY", name ? "\"" : "",
			name ?: "", name ? "\" " : "", table);
	if ((!strcmp(t, "CONSTR_UNIQUE") || !strcmp(t, "CONSTR_PRIMARY") ||
	     !strcmp(t, "CONSTR_EXCLUSION")) && !jstr(con, "indexname"))
		finding(c, "unique-without-index", con,
			"%s constraint on existing table %s builds its index under an ACCESS EXCLUSIVE lock",
			!strcmp(t, "CONSTR_PRIMARY") ? "PRIMARY KEY" :
			!strcmp(t, "CONSTR_UNIQUE") ? "UNIQUE" : "EXCLUDE", table);
}

/*
 * Looks at one statement. Returns 1 when it takes ACCESS EXCLUSIVE on a
 * table that existed before the migration, with that table in *locked.
 */
static int lint_stmt(struct ctx *c, json_t *body, const char *kind, char **locked)
{
	json_t *rv = json_object_get(body, "relation");
	char *table = rv ? rel_name(rv) : NULL;
	int existing = table && !was_created(c, table), access_exclusive = 0;
	size_t i;
	json_t *it;

	*locked = NULL;
	if (!strcmp(kind, "CreateStmt") && table) {
		strvec_push(&c->created, table);
	} else if (!strcmp(kind, "CreateTableAsStmt")) {
		json_t *into = json_object_get(json_object_get(body, "into"), "IntoClause");

		if (into) {
			char *n = rel_name(json_object_get(into, "rel"));

			strvec_push(&c->created, n);
			free(n);
		}
	} else if (!strcmp(kind, "VariableSetStmt")) {
		const char *name = jstr(body, "name");

		if (name && !strcmp(name, "lock_timeout"))
			c->lock_timeout = 1;
	} else if (!strcmp(kind, "IndexStmt")) {
		const char *idx = jstr(body, "idxname");

		if (existing && !jtrue(body, "concurrent"))
			finding(c, "index-not-concurrent", rv,
				"CREATE INDEX on existing table %s without CONCURRENTLY blocks its writes for as long as the build takes",
				table);
		if (idx)
			strvec_push(&c->created, idx);
	} else if (!strcmp(kind, "DropStmt")) {
		const char *type = jstr(body, "removeType") ?: "";

		json_array_foreach(json_object_get(body, "objects"), i, it) {
			char *name = list_name(it);

			if (!was_created(c, name) && !strcmp(type, "OBJECT_TABLE")) {
				finding(c, "drop-table", NULL,
					"drops table %s, which the live version may still read or write",
					name);
				access_exclusive = 1;
				if (!*locked)
					*locked = xstrdup(name);
			} else if (!was_created(c, name) && !strcmp(type, "OBJECT_INDEX") &&
				   !jtrue(body, "concurrent")) {
				finding(c, "drop-index-not-concurrent", NULL,
					"DROP INDEX %s without CONCURRENTLY takes an ACCESS EXCLUSIVE lock on its table",
					name);
			}
			free(name);
		}
	} else if (!strcmp(kind, "RenameStmt") && existing) {
		const char *type = jstr(body, "renameType") ?: "";

		if (!strcmp(type, "OBJECT_TABLE"))
			finding(c, "rename-table", rv,
				"renames table %s to \"%s\": the live version still uses the old name",
				table, jstr(body, "newname") ?: "?");
		else if (!strcmp(type, "OBJECT_COLUMN"))
			finding(c, "rename-column", rv,
				"renames column \"%s\" of %s to \"%s\": the live version still uses the old name",
				jstr(body, "subname") ?: "?", table, jstr(body, "newname") ?: "?");
		access_exclusive = 1;
	} else if (!strcmp(kind, "AlterTableStmt") && existing) {
		json_array_foreach(json_object_get(body, "cmds"), i, it) {
			json_t *cmd = json_object_get(it, "AlterTableCmd");
			const char *sub = jstr(cmd, "subtype") ?: "";
			const char *col = jstr(cmd, "name") ?: "?";
			json_t *def = json_object_get(cmd, "def");

			if (strcmp(sub, "AT_ValidateConstraint") && strcmp(sub, "AT_SetStatistics"))
				access_exclusive = 1;
			if (!strcmp(sub, "AT_AddColumn"))
				lint_add_column(c, table, json_object_get(def, "ColumnDef"));
			else if (!strcmp(sub, "AT_DropColumn"))
				finding(c, "drop-column", rv,
					"drops column \"%s\" of %s, which the live version may still read or write",
					col, table);
			else if (!strcmp(sub, "AT_AlterColumnType"))
				finding(c, "change-column-type", json_object_get(def, "ColumnDef") ?: rv,
					"changes the type of column \"%s\" of %s: the table is rewritten under an ACCESS EXCLUSIVE lock, and the live version may not read the new type",
					col, table);
			else if (!strcmp(sub, "AT_SetNotNull"))
				finding(c, "set-not-null", rv,
					"SET NOT NULL on column \"%s\" of %s scans the whole table under an ACCESS EXCLUSIVE lock, and fails inserts of the live version that do not write it",
					col, table);
			else if (!strcmp(sub, "AT_AddConstraint"))
				lint_constraint(c, table, json_object_get(def, "Constraint"));
			else if (!strcmp(sub, "AT_ValidateConstraint")) {
				char *key = xstrfmt("%s.%s", table, col);

				if (c->in_tx && strvec_find(&c->not_valid, key) >= 0)
					finding(c, "validate-in-same-transaction", rv,
						"validates constraint \"%s\" of %s in the transaction that added it NOT VALID: the scan of every row runs under the lock that blocks writes, as if NOT VALID had not been written",
						col, table);
				free(key);
			}
		}
	} else if ((!strcmp(kind, "TruncateStmt") || !strcmp(kind, "ClusterStmt")) && existing) {
		access_exclusive = 1;
	} else if (!strcmp(kind, "VacuumStmt")) {
		json_array_foreach(json_object_get(body, "options"), i, it) {
			const char *o = jstr(json_object_get(it, "DefElem"), "defname");

			if (o && !strcmp(o, "full"))
				access_exclusive = 1;
		}
	}
	if (access_exclusive && !*locked && table)
		*locked = xstrdup(table);
	free(table);
	return access_exclusive && *locked;
}

static int is_concurrent(const struct ts_stmt *st, json_t *body)
{
	return st->no_transaction && (jtrue(body, "concurrent") || !strcmp(st->kind, "ReindexStmt"));
}

void ts_lint_stmts(struct ts_lint *out, const char *file, const char *sql, int first_line,
		   const struct ts_stmt *stmts, size_t n, enum ts_mig_format fmt,
		   int no_transaction)
{
	struct ctx c = { .out = out, .file = file, .sql = sql, .first_line = first_line,
			 .created = STRVEC_INIT, .not_valid = STRVEC_INIT };
	/* golang-migrate and Prisma send a file as one query string: several statements, one transaction */
	int tool_tx = (fmt == TS_FMT_DBMATE && !no_transaction) ||
		      ((fmt == TS_FMT_GOLANG || fmt == TS_FMT_PRISMA) && n > 1);
	int whole_tx = tool_tx, explicit_tx = 0;

	/* twinstage and Flyway run a file in one transaction unless it cannot be */
	if (!tool_tx && fmt != TS_FMT_GOLANG && fmt != TS_FMT_PRISMA && !no_transaction) {
		whole_tx = 1;
		for (size_t i = 0; i < n; i++)
			if (stmts[i].no_transaction || stmts[i].transaction_control)
				whole_tx = 0;
	}
	out->files++;
	out->stmts += n;
	for (size_t i = 0; i < n; i++) {
		const struct ts_stmt *st = &stmts[i];
		const char *kind = st->kind ? st->kind : "";
		json_t *body = json_object_get(st->node, kind);
		char *locked;

		c.st = st;
		if (st->transaction_control) {
			const char *k = jstr(body, "kind") ?: "";

			explicit_tx = !strcmp(k, "TRANS_STMT_BEGIN") || !strcmp(k, "TRANS_STMT_START");
			strvec_clear(&c.not_valid);	/* a COMMIT ends what it added */
			continue;
		}
		c.in_tx = whole_tx || explicit_tx;
		if (is_concurrent(st, body) && (explicit_tx || tool_tx))
			finding(&c, "concurrently-in-transaction", NULL,
				"%s CONCURRENTLY cannot run inside a transaction block, and %s",
				!strcmp(kind, "IndexStmt") ? "CREATE INDEX" :
				!strcmp(kind, "DropStmt") ? "DROP INDEX" : "REINDEX",
				explicit_tx ? "this file opened one with BEGIN" :
				fmt == TS_FMT_DBMATE ? "dbmate runs this migration in one" :
				fmt == TS_FMT_PRISMA ? "Prisma runs a migration of several statements as one" :
				"golang-migrate runs a file of several statements as one");
		if (lint_stmt(&c, body, kind, &locked)) {
			size_t after = 0;

			if (!c.lock_timeout)
				finding(&c, "missing-lock-timeout", NULL,
					"takes an ACCESS EXCLUSIVE lock on %s with no lock_timeout set: queued behind a long transaction, it blocks every query on the table",
					locked);
			if (whole_tx || explicit_tx)
				for (size_t j = i + 1; j < n && !stmts[j].transaction_control; j++)
					after += strcmp(stmts[j].kind ? stmts[j].kind : "", "VariableSetStmt") != 0;
			if (after)
				finding(&c, "statements-after-lock", NULL,
					"%zu more statement%s run%s in the same transaction while the ACCESS EXCLUSIVE lock on %s is held",
					after, after == 1 ? "" : "s", after == 1 ? "s" : "", locked);
		}
		free(locked);
	}
	strvec_clear(&c.created);
	strvec_clear(&c.not_valid);
}

void ts_lint_sql(struct ts_lint *out, const char *file, const char *sql, int first_line,
		 enum ts_mig_format fmt, int no_transaction)
{
	struct ts_stmt *stmts;
	size_t n;

	if (ts_stmts_parse(file, sql, first_line, &stmts, &n)) {
		struct ts_lint_finding *f;
		const char *msg = ts_error_message();
		const char *colon = strchr(msg, ':');

		out->v = xrealloc(out->v, (out->n + 1) * sizeof(*out->v));
		f = &out->v[out->n++];
		memset(f, 0, sizeof(*f));
		f->file = xstrdup(file);
		/* the message is "file:line: text" */
		f->line = f->stmt_line = colon ? atoi(colon + 1) : first_line;
		f->col = 1;
		f->rule = "syntax-error";
		f->level = TS_LINT_ERROR;
		f->recipe = rule_get("syntax-error")->recipe;
		colon = colon ? strchr(colon + 1, ':') : NULL;
		f->message = xstrdup(colon ? colon + 2 : msg);
		out->errors++;
		out->files++;
		ts_error_clear();
		return;
	}
	ts_lint_stmts(out, file, sql, first_line, stmts, n, fmt, no_transaction);
	ts_stmts_free(stmts, n);
}

/* Lints one file; in a folder, down parts are not linted (they undo on purpose). */
static int lint_file(struct ts_lint *out, const char *path, int in_folder)
{
	struct ts_migrations set;

	if (ts_migrations_read_file(path, &set))
		return -1;
	for (size_t i = 0; i < set.n; i++) {
		const struct ts_migration *m = &set.v[i];

		if (m->up)
			ts_lint_sql(out, path, m->up, m->up_line, set.format, m->no_transaction);
		else if (!in_folder && m->down)
			ts_lint_sql(out, path, m->down, m->down_line, set.format, m->no_transaction);
	}
	ts_migrations_free(&set);
	return 0;
}

int ts_lint_paths(struct ts_lint *out, char **paths, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (is_dir(paths[i])) {
			struct strvec names = STRVEC_INIT;
			int r = list_sql_files(paths[i], "migrations", &names);

			if (!r && !names.nr) {
				/* no *.sql here: Prisma's folders, or a layout that is refused with what it holds */
				struct ts_migrations set;

				if (ts_migrations_discover(paths[i], &set))
					return -1;
				for (size_t j = 0; j < set.n; j++)
					ts_lint_sql(out, set.v[j].path, set.v[j].up, set.v[j].up_line, set.format,
						    set.v[j].no_transaction);
				ts_migrations_free(&set);
			}
			for (size_t j = 0; j < names.nr && !r; j++) {
				char *p = path_join(paths[i], names.v[j]);

				r = lint_file(out, p, 1);
				free(p);
			}
			strvec_clear(&names);
			if (r)
				return -1;
		} else if (is_file(paths[i])) {
			if (lint_file(out, paths[i], 0))
				return -1;
		} else {
			return ts_error_set(TS_EXIT_USAGE, "\"%s\" is not a file or a folder", paths[i]);
		}
	}
	return 0;
}

void ts_lint_free(struct ts_lint *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].file);
		free(l->v[i].message);
	}
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static const char *level_name(enum ts_lint_level l)
{
	return l == TS_LINT_ERROR ? "error" : "warning";
}

void ts_lint_render_text(const struct ts_lint *l, FILE *out)
{
	for (size_t i = 0; i < l->n; i++) {
		const struct ts_lint_finding *f = &l->v[i];

		fprintf(out, "%s:%d:%d: %s [%s] %s\n    safe: %s\n", f->file, f->line, f->col,
			level_name(f->level), f->rule, f->message, f->recipe);
	}
	fprintf(out, "%zu file%s, %zu statement%s: %zu error%s, %zu warning%s\n", l->files,
		l->files == 1 ? "" : "s", l->stmts, l->stmts == 1 ? "" : "s", l->errors,
		l->errors == 1 ? "" : "s", l->warnings, l->warnings == 1 ? "" : "s");
}

json_t *ts_lint_finding_json(const struct ts_lint_finding *f)
{
	return json_pack("{s:s, s:i, s:i, s:s, s:s, s:s, s:s}", "file", f->file, "line", f->line,
			 "col", f->col, "rule", f->rule, "level", level_name(f->level),
			 "message", f->message, "recipe", f->recipe);
}

void ts_lint_render_json(const struct ts_lint *l, FILE *out)
{
	json_t *arr = json_array(), *doc;

	for (size_t i = 0; i < l->n; i++)
		json_array_append_new(arr, ts_lint_finding_json(&l->v[i]));
	doc = json_pack("{s:I, s:I, s:I, s:I, s:o}", "files", (json_int_t)l->files,
			"statements", (json_int_t)l->stmts, "errors", (json_int_t)l->errors,
			"warnings", (json_int_t)l->warnings, "findings", arr);
	json_dumpf(doc, out, JSON_INDENT(2));
	fputc('\n', out);
	json_decref(doc);
}
