/*
 * test_schema.c: the catalog snapshot and the classified diff, and the
 * per-statement trace (locks, rewrites, scans), on a real cluster.
 */
#include "core/error.h"
#include "core/util.h"
#include "migrate/migrate.h"
#include "migrate/tracking.h"
#include "pg/pg.h"
#include "pg/schema.h"
#include "pg/trace.h"
#include "report/report.h"
#include "helpers.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const struct ts_schema_change *find(const struct ts_schema_diff *d, const char *kind,
					   const char *name)
{
	for (size_t i = 0; i < d->n; i++)
		if (!strcmp(d->v[i].kind, kind) && !strcmp(d->v[i].name, name))
			return &d->v[i];
	return NULL;
}

static void expect(const struct ts_schema_diff *d, const char *kind, const char *name,
		   const char *change, enum ts_change_class cls)
{
	const struct ts_schema_change *c = find(d, kind, name);

	cr_assert(c, "no change for %s %s", kind, name);
	cr_assert_str_eq(c->change, change, "%s %s: %s", kind, name, c->change);
	cr_assert_eq(c->cls, cls, "%s %s %s is %s (%s)", kind, name, change,
		     ts_change_class_name(c->cls), c->detail ? c->detail : "");
}

Test(schema, diff_classifies_each_kind_of_change, .timeout = 120)
{
	struct th_cluster c;
	struct ts_schema before, after;
	struct ts_schema_diff d;
	PGconn *conn;

	th_cluster_start(&c, "diff");
	th_sql(c.conninfo,
	       "CREATE TYPE status AS ENUM ('draft', 'sent', 'paid');"
	       "CREATE TYPE mood AS ENUM ('ok');"
	       "CREATE TABLE gone (id int);"
	       "CREATE TABLE old_name (id int PRIMARY KEY, label text);"
	       "CREATE TABLE t (id int PRIMARY KEY, a int, b text, c text, d int, e text NOT NULL, f varchar(10), g text);"
	       "CREATE VIEW v AS SELECT id, a FROM t;"
	       "CREATE FUNCTION fn_gone() RETURNS int LANGUAGE sql AS 'SELECT 1';"
	       "CREATE FUNCTION fn_body() RETURNS int LANGUAGE sql AS 'SELECT 1';"
	       "CREATE TABLE twinstage_schema_history (version text);");
	conn = ts_pg_connect(c.conninfo, "test");
	cr_assert(conn);
	cr_assert_eq(ts_schema_snapshot(conn, "twinstage_schema_history", &before), 0, "%s", ts_error_message());
	th_sql(c.conninfo,
	       "CREATE TABLE fresh (id int);"
	       "DROP TABLE gone;"
	       "ALTER TABLE old_name RENAME TO new_name;"
	       "ALTER TABLE t ADD COLUMN nullable text;"
	       "ALTER TABLE t ADD COLUMN required text NOT NULL;"
	       "ALTER TABLE t ADD COLUMN defaulted int NOT NULL DEFAULT 0;"
	       "ALTER TABLE t RENAME COLUMN b TO b2;"
	       "ALTER TABLE t DROP COLUMN c CASCADE;"
	       "ALTER TABLE t ALTER COLUMN d TYPE bigint;"
	       "ALTER TABLE t ALTER COLUMN g TYPE int USING length(g);"
	       "ALTER TABLE t ALTER COLUMN f TYPE varchar(20);"
	       "ALTER TABLE t ALTER COLUMN a SET NOT NULL;"
	       "ALTER TABLE t ALTER COLUMN e DROP NOT NULL;"
	       "ALTER TABLE t ADD CONSTRAINT a_positive CHECK (a > 0);"
	       "ALTER TABLE t ADD CONSTRAINT d_positive CHECK (d > 0) NOT VALID;"
	       "CREATE INDEX t_a ON t (a);"
	       "DROP VIEW v;"
	       "DROP FUNCTION fn_gone();"
	       "CREATE OR REPLACE FUNCTION fn_body() RETURNS int LANGUAGE sql AS 'SELECT 2';"
	       "CREATE FUNCTION fn_new() RETURNS int LANGUAGE sql AS 'SELECT 3';"
	       "ALTER TYPE status ADD VALUE 'void';"
	       "DROP TYPE mood; CREATE TYPE mood AS ENUM ('happy');"
	       "INSERT INTO twinstage_schema_history VALUES ('1');"
	       "ALTER TABLE twinstage_schema_history ADD COLUMN x int;");
	cr_assert_eq(ts_schema_snapshot(conn, "twinstage_schema_history", &after), 0, "%s", ts_error_message());
	ts_schema_diff(&before, &after, &d);

	expect(&d, "table", "public.fresh", "added", TS_CHANGE_ADDITIVE);
	expect(&d, "table", "public.gone", "dropped", TS_CHANGE_BREAKING);
	expect(&d, "table", "public.new_name", "renamed", TS_CHANGE_BREAKING);
	cr_assert_str_eq(find(&d, "table", "public.new_name")->old_name, "public.old_name");
	cr_assert(!find(&d, "column", "public.gone.id"), "a dropped table's columns go with it");
	cr_assert(!find(&d, "column", "public.new_name.label"), "a renamed table's columns go with it");
	cr_assert(!find(&d, "index", "public.old_name_pkey"), "its index moved with it");
	expect(&d, "column", "public.t.nullable", "added", TS_CHANGE_ADDITIVE);
	expect(&d, "column", "public.t.required", "added", TS_CHANGE_BREAKING);
	expect(&d, "column", "public.t.defaulted", "added", TS_CHANGE_ADDITIVE);
	expect(&d, "column", "public.t.b2", "renamed", TS_CHANGE_BREAKING);
	expect(&d, "column", "public.t.c", "dropped", TS_CHANGE_BREAKING);
	expect(&d, "column", "public.t.d", "changed", TS_CHANGE_RISKY);	/* int -> bigint widens */
	expect(&d, "column", "public.t.g", "changed", TS_CHANGE_BREAKING);	/* text -> int */
	expect(&d, "column", "public.t.f", "changed", TS_CHANGE_RISKY);	/* varchar(10) -> (20) */
	expect(&d, "column", "public.t.a", "changed", TS_CHANGE_BREAKING);	/* made NOT NULL */
	cr_assert(strstr(find(&d, "column", "public.t.a")->detail, "NOT NULL"));
	expect(&d, "column", "public.t.e", "changed", TS_CHANGE_ADDITIVE);	/* NOT NULL dropped */
	expect(&d, "constraint", "public.t.a_positive", "added", TS_CHANGE_RISKY);
	expect(&d, "constraint", "public.t.d_positive", "added", TS_CHANGE_ADDITIVE);
	expect(&d, "index", "public.t_a", "added", TS_CHANGE_ADDITIVE);
	expect(&d, "view", "public.v", "dropped", TS_CHANGE_BREAKING);
	expect(&d, "function", "public.fn_gone()", "dropped", TS_CHANGE_BREAKING);
	expect(&d, "function", "public.fn_body()", "changed", TS_CHANGE_RISKY);
	expect(&d, "function", "public.fn_new()", "added", TS_CHANGE_ADDITIVE);
	expect(&d, "enum", "public.status", "changed", TS_CHANGE_ADDITIVE);
	expect(&d, "enum", "public.mood", "changed", TS_CHANGE_BREAKING);
	cr_assert(strstr(find(&d, "enum", "public.mood")->detail, "'ok' dropped"));
	for (size_t i = 0; i < d.n; i++)
		cr_assert(!strstr(d.v[i].name, "twinstage_schema_history"), "the tracking table is left out");

	ts_schema_diff_free(&d);
	ts_schema_free(&before);
	ts_schema_free(&after);
	PQfinish(conn);
	th_cluster_stop(&c);
}

/* Applies dir's migrations with a trace; returns the report (to free). */
static void traced_apply(struct th_cluster *c, const char *dir, double max_lock_ms,
			 struct ts_report *rep)
{
	struct ts_migrations set;
	struct ts_tracker t;
	struct ts_trace trace;
	PGconn *conn = ts_pg_connect(c->conninfo, "test");

	cr_assert(conn);
	cr_assert_eq(ts_migrations_discover(dir, &set), 0, "%s", ts_error_message());
	ts_tracker_init(&t, ts_tracking_for_format(set.format), NULL);
	ts_report_init(rep, "trace");
	rep->max_lock_ms = max_lock_ms;
	cr_assert_eq(ts_trace_start(&trace, conn, ts_pg_connect(c->conninfo, "the observer"), max_lock_ms, NULL), 0,
		     "%s", ts_error_message());
	cr_assert_geq(ts_migrations_apply(conn, &set, &t, NULL, rep, &trace, 0), 0, "%s",
		      ts_error_message());
	ts_trace_end(&trace);
	ts_tracker_release(&t);
	ts_migrations_free(&set);
	PQfinish(conn);
}

static json_t *lock_on(const struct ts_report_stmt *s, const char *mode)
{
	json_t *l;
	size_t i;

	json_array_foreach(json_object_get(s->facts, "locks"), i, l)
		if (!strcmp(json_string_value(json_object_get(l, "mode")), mode) &&
		    !strcmp(json_string_value(json_object_get(l, "relation")), "public.big"))
			return l;
	return NULL;
}

static int lists(const struct ts_report_stmt *s, const char *key, const char *table)
{
	json_t *v;
	size_t i;

	json_array_foreach(json_object_get(s->facts, key), i, v)
		if (!strcmp(json_string_value(v), table))
			return 1;
	return 0;
}

Test(schema, trace_observes_rewrites_locks_and_scans, .timeout = 180)
{
	struct th_cluster c;
	struct ts_report rep;
	char *dir = th_tmpdir();
	const struct ts_report_stmt *alter, *check, *cic, *add;
	json_t *l;

	th_cluster_start(&c, "trace");
	th_sql(c.conninfo, "CREATE TABLE big (id int PRIMARY KEY, v int, note text);"
			   "INSERT INTO big SELECT g, g, 'n' FROM generate_series(1, 300000) g;");
	th_write(dir, "1_alter.sql",
		 "ALTER TABLE big ALTER COLUMN v TYPE bigint;\n"
		 "ALTER TABLE big ADD CONSTRAINT v_positive CHECK (v > 0);\n"
		 "ALTER TABLE big ADD COLUMN extra text;\n");
	th_write(dir, "2_index.sql", "CREATE INDEX CONCURRENTLY big_note ON big (note, v);\n");
	traced_apply(&c, dir, 1, &rep);
	cr_assert_eq(rep.n_migrations, 2);
	alter = &rep.migrations[0].stmts[0];
	check = &rep.migrations[0].stmts[1];
	add = &rep.migrations[0].stmts[2];
	cic = &rep.migrations[1].stmts[0];

	/* the type change rewrote the table under ACCESS EXCLUSIVE, held until COMMIT */
	cr_assert(lists(alter, "rewrites", "public.big"), "%s", json_dumps(alter->facts, 0));
	l = lock_on(alter, "AccessExclusiveLock");
	cr_assert(l, "%s", json_dumps(alter->facts, 0));
	cr_assert(json_is_true(json_object_get(l, "blocking")));
	cr_assert_geq(json_number_value(json_object_get(l, "held_ms")), alter->ms,
		      "held from the statement to COMMIT");
	cr_assert(json_is_true(json_object_get(l, "over_gate")), "max_lock_ms = 1");
	/* the CHECK was validated by a scan of the whole table, and nothing rewritten */
	cr_assert(lists(check, "scans", "public.big"), "%s", json_dumps(check->facts, 0));
	cr_assert(!lists(check, "rewrites", "public.big"));
	/* the lock was already held: it is counted once, at the statement that took it */
	cr_assert_null(lock_on(add, "AccessExclusiveLock"));
	/* CREATE INDEX CONCURRENTLY, seen by sampling: a lock that lets writes through */
	l = lock_on(cic, "ShareUpdateExclusiveLock");
	cr_assert(l, "%s", json_dumps(cic->facts, 0));
	cr_assert(!json_is_true(json_object_get(l, "blocking")));
	cr_assert(!json_is_true(json_object_get(l, "over_gate")));
	cr_assert_null(lock_on(cic, "AccessExclusiveLock"));
	cr_assert_null(lock_on(cic, "ShareLock"));

	ts_report_decide(&rep);
	cr_assert_eq(rep.exit_code, 1);
	cr_assert(strstr(rep.reason, "1_alter.sql:1 holds AccessExclusiveLock on public.big"), "%s",
		  rep.reason);
	ts_report_free(&rep);
	th_cluster_stop(&c);
	th_rmtree(dir);
	free(dir);
}
