/*
 * test_lint.c: every rule fires on its hazard and stays quiet on the safe
 * form; positions, ignores, formats and the command's exit codes.
 */
#include "core/error.h"
#include "core/strbuf.h"
#include "migrate/lint.h"
#include "helpers.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

/* Lints sql as a plain migration file and returns the findings. */
static void lint(struct ts_lint *l, const char *sql, enum ts_mig_format fmt, int no_tx)
{
	memset(l, 0, sizeof(*l));
	ts_lint_sql(l, "m.sql", sql, 1, fmt, no_tx);
}

static int has(const struct ts_lint *l, const char *rule)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i].rule, rule))
			return 1;
	return 0;
}

static const struct ts_lint_finding *get(const struct ts_lint *l, const char *rule)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i].rule, rule))
			return &l->v[i];
	cr_assert_fail("no finding %s", rule);
	return NULL;
}

/* The rule fires on bad and not on good (both run as twinstage would run a plain file). */
static void rule_case(const char *rule, const char *bad, const char *good)
{
	struct ts_lint l;

	lint(&l, bad, TS_FMT_PLAIN, 0);
	cr_assert(has(&l, rule), "%s should fire on: %s", rule, bad);
	ts_lint_free(&l);
	lint(&l, good, TS_FMT_PLAIN, 0);
	cr_assert(!has(&l, rule), "%s should not fire on: %s", rule, good);
	ts_lint_free(&l);
}

/* The level rule has on sql, and how many errors sql has in all. */
static enum ts_lint_level level_of(const char *sql, const char *rule, size_t *errors)
{
	struct ts_lint l;
	enum ts_lint_level level;

	lint(&l, sql, TS_FMT_PLAIN, 0);
	level = get(&l, rule)->level;
	*errors = l.errors;
	ts_lint_free(&l);
	return level;
}

Test(lint, drop_table)
{
	rule_case("drop-table", "DROP TABLE invoices;",
		  "CREATE TABLE scratch (id int);\nDROP TABLE scratch;");
}

Test(lint, drop_column)
{
	rule_case("drop-column", "ALTER TABLE invoices DROP COLUMN customer;",
		  "CREATE TABLE t (a int, b int);\nALTER TABLE t DROP COLUMN b;");
}

Test(lint, rename_table_and_column)
{
	rule_case("rename-table", "ALTER TABLE invoices RENAME TO bills;",
		  "CREATE VIEW bills AS SELECT * FROM invoices;");
	rule_case("rename-column", "ALTER TABLE invoices RENAME COLUMN customer TO client;",
		  "ALTER TABLE invoices ADD COLUMN client text;");
}

Test(lint, change_column_type)
{
	rule_case("change-column-type", "ALTER TABLE invoices ALTER COLUMN amount TYPE numeric;",
		  "ALTER TABLE invoices ADD COLUMN amount_exact numeric;");
}

Test(lint, set_not_null)
{
	rule_case("set-not-null", "ALTER TABLE invoices ALTER COLUMN customer SET NOT NULL;",
		  "ALTER TABLE invoices ADD CONSTRAINT customer_nn CHECK (customer IS NOT NULL) NOT VALID;");
}

Test(lint, not_null_without_default)
{
	rule_case("not-null-without-default", "ALTER TABLE invoices ADD COLUMN currency text NOT NULL;",
		  "ALTER TABLE invoices ADD COLUMN currency text NOT NULL DEFAULT 'EUR';");
}

Test(lint, volatile_default)
{
	rule_case("volatile-default",
		  "ALTER TABLE invoices ADD COLUMN seen timestamptz DEFAULT clock_timestamp();",
		  "ALTER TABLE invoices ADD COLUMN seen timestamptz DEFAULT now();");
	rule_case("volatile-default", "ALTER TABLE invoices ADD COLUMN n bigserial;",
		  "ALTER TABLE invoices ADD COLUMN n bigint;");
}

Test(lint, index_not_concurrent)
{
	struct ts_lint l;

	rule_case("index-not-concurrent", "CREATE INDEX ON invoices (customer);",
		  "CREATE INDEX CONCURRENTLY ON invoices (customer);");
	lint(&l, "CREATE TABLE t (a int);\nCREATE INDEX t_a ON t (a);", TS_FMT_PLAIN, 0);
	cr_assert_eq(l.n, 0, "an index on a table created just before is fine");
	ts_lint_free(&l);
}

Test(lint, drop_index_not_concurrent)
{
	size_t errors;

	rule_case("drop-index-not-concurrent", "DROP INDEX invoices_customer;",
		  "DROP INDEX CONCURRENTLY invoices_customer;");
	/* an error, like its sibling: its ACCESS EXCLUSIVE lock, queued, stops the table and deadlocks */
	cr_assert_eq(level_of("DROP INDEX invoices_customer;", "drop-index-not-concurrent", &errors),
		     TS_LINT_ERROR);
	cr_assert_eq(errors, 1);
}

Test(lint, validating_in_the_transaction_that_added_not_valid)
{
	struct ts_lint l;
	size_t errors;
	static const char both[] =
		"ALTER TABLE invoices ADD CONSTRAINT invoices_customer_fk FOREIGN KEY (customer_id)\n"
		"  REFERENCES customers (id) NOT VALID;\n"
		"ALTER TABLE invoices VALIDATE CONSTRAINT invoices_customer_fk;\n";

	/* Flyway and twinstage run the file in one transaction: the point of NOT VALID is lost */
	cr_assert_eq(level_of(both, "validate-in-same-transaction", &errors), TS_LINT_ERROR);
	lint(&l, both, TS_FMT_FLYWAY, 0);
	cr_assert_eq(get(&l, "validate-in-same-transaction")->line, 3);
	ts_lint_free(&l);
	/* so does golang-migrate with two statements in the file, and an explicit BEGIN */
	lint(&l, both, TS_FMT_GOLANG, 0);
	cr_assert(has(&l, "validate-in-same-transaction"));
	ts_lint_free(&l);
	/* a COMMIT between them, or a migration of its own, is the recipe */
	lint(&l, "BEGIN;\nALTER TABLE invoices ADD CONSTRAINT c CHECK (amount > 0) NOT VALID;\nCOMMIT;\n"
		 "ALTER TABLE invoices VALIDATE CONSTRAINT c;\n", TS_FMT_PLAIN, 0);
	cr_assert(!has(&l, "validate-in-same-transaction"));
	ts_lint_free(&l);
	lint(&l, "ALTER TABLE invoices VALIDATE CONSTRAINT invoices_customer_fk;\n", TS_FMT_FLYWAY, 0);
	cr_assert(!has(&l, "validate-in-same-transaction"));
	ts_lint_free(&l);
}

Test(lint, concurrently_in_transaction)
{
	struct ts_lint l;

	rule_case("concurrently-in-transaction",
		  "BEGIN;\nCREATE INDEX CONCURRENTLY i ON invoices (customer);\nCOMMIT;",
		  "CREATE INDEX CONCURRENTLY i ON invoices (customer);");
	/* dbmate wraps the file unless told not to */
	lint(&l, "CREATE INDEX CONCURRENTLY i ON invoices (customer);", TS_FMT_DBMATE, 0);
	cr_assert(has(&l, "concurrently-in-transaction"));
	cr_assert(strstr(get(&l, "concurrently-in-transaction")->message, "dbmate"));
	ts_lint_free(&l);
	lint(&l, "CREATE INDEX CONCURRENTLY i ON invoices (customer);", TS_FMT_DBMATE, 1);
	cr_assert(!has(&l, "concurrently-in-transaction"), "transaction:false");
	ts_lint_free(&l);
	/* golang-migrate runs several statements as one implicit transaction */
	lint(&l, "SET lock_timeout = '1s';\nCREATE INDEX CONCURRENTLY i ON invoices (customer);",
	     TS_FMT_GOLANG, 0);
	cr_assert(has(&l, "concurrently-in-transaction"));
	ts_lint_free(&l);
	lint(&l, "CREATE INDEX CONCURRENTLY i ON invoices (customer);", TS_FMT_GOLANG, 0);
	cr_assert(!has(&l, "concurrently-in-transaction"));
	ts_lint_free(&l);
}

Test(lint, constraint_not_valid)
{
	rule_case("constraint-not-valid",
		  "ALTER TABLE invoices ADD CONSTRAINT positive CHECK (amount > 0);",
		  "ALTER TABLE invoices ADD CONSTRAINT positive CHECK (amount > 0) NOT VALID;");
	rule_case("constraint-not-valid",
		  "ALTER TABLE invoices ADD CONSTRAINT fk FOREIGN KEY (customer_id) REFERENCES customers (id);",
		  "ALTER TABLE invoices ADD CONSTRAINT fk FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID;");
}

Test(lint, unique_without_index)
{
	rule_case("unique-without-index", "ALTER TABLE invoices ADD CONSTRAINT u UNIQUE (number);",
		  "ALTER TABLE invoices ADD CONSTRAINT u UNIQUE USING INDEX invoices_number;");
	rule_case("unique-without-index", "ALTER TABLE invoices ADD PRIMARY KEY (id);",
		  "ALTER TABLE invoices ADD CONSTRAINT pk PRIMARY KEY USING INDEX invoices_id;");
}

Test(lint, missing_lock_timeout)
{
	size_t errors;

	rule_case("missing-lock-timeout", "ALTER TABLE invoices ADD COLUMN note text;",
		  "SET lock_timeout = '2s';\nALTER TABLE invoices ADD COLUMN note text;");
	cr_assert_eq(level_of("ALTER TABLE invoices ADD COLUMN note text;", "missing-lock-timeout", &errors),
		     TS_LINT_WARNING);
	cr_assert_eq(errors, 0, "adding a nullable column is not an error");
}

Test(lint, statements_after_lock)
{
	struct ts_lint l;

	rule_case("statements-after-lock",
		  "SET lock_timeout = '2s';\nALTER TABLE invoices ADD COLUMN note text;\nUPDATE invoices SET note = '';",
		  "SET lock_timeout = '2s';\nUPDATE invoices SET amount = amount;\nALTER TABLE invoices ADD COLUMN note text;");
	lint(&l, "SET lock_timeout = '2s';\nALTER TABLE invoices ADD COLUMN note text;\nUPDATE invoices SET note = '';\nSELECT 1;",
	     TS_FMT_PLAIN, 0);
	cr_assert(strstr(get(&l, "statements-after-lock")->message, "2 more statements"),
		  "%s", get(&l, "statements-after-lock")->message);
	ts_lint_free(&l);
}

Test(lint, positions_are_file_line_col)
{
	struct ts_lint l;
	const struct ts_lint_finding *f;

	lint(&l, "-- add a column\nSET lock_timeout = '1s';\n\nALTER TABLE invoices\n    ADD COLUMN seen timestamptz DEFAULT clock_timestamp();\n",
	     TS_FMT_PLAIN, 0);
	f = get(&l, "volatile-default");
	cr_assert_eq(f->line, 5);
	cr_assert_eq(f->col, 16, "the column definition, got col %d", f->col);
	cr_assert_eq(f->stmt_line, 4);
	cr_assert_eq(f->level, TS_LINT_ERROR);
	cr_assert(strstr(f->recipe, "backfill"));
	ts_lint_free(&l);
}

Test(lint, comments_strings_and_bodies_are_not_statements)
{
	struct ts_lint l;

	lint(&l, "-- DROP TABLE invoices;\n/* ALTER TABLE invoices DROP COLUMN a; */\n"
		 "INSERT INTO notes VALUES ('DROP TABLE invoices;');\n"
		 "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN DROP TABLE invoices; END $$;\n",
	     TS_FMT_PLAIN, 0);
	cr_assert_eq(l.n, 0, "first: %s", l.n ? l.v[0].rule : "");
	cr_assert_eq(l.stmts, 2);
	ts_lint_free(&l);
}

Test(lint, ignore_comment_silences_one_statement)
{
	struct ts_lint l;

	lint(&l, "SET lock_timeout = '1s';\n-- twinstage:ignore drop-column\nALTER TABLE invoices DROP COLUMN legacy;\n"
		 "ALTER TABLE invoices DROP COLUMN other;\n",
	     TS_FMT_PLAIN, 0);
	cr_assert_eq(l.errors, 1);
	cr_assert_eq(get(&l, "drop-column")->line, 4, "only the second drop is reported");
	ts_lint_free(&l);
}

Test(lint, syntax_error_is_a_finding)
{
	struct ts_lint l;

	lint(&l, "SELECT 1;\nALTER TABLE invoices ADD COLUM x int;\n", TS_FMT_PLAIN, 0);
	cr_assert_eq(l.errors, 1);
	cr_assert_eq(get(&l, "syntax-error")->line, 2);
	ts_lint_free(&l);
}

Test(lint, command_exit_codes_and_formats)
{
	char *dir = th_tmpdir();
	struct strbuf out = STRBUF_INIT, err = STRBUF_INIT;

	th_write(dir, "migrations/V1__create.sql", "CREATE TABLE t (id int);\nCREATE INDEX ON t (id);\n");
	th_write(dir, "migrations/V2__drop.sql", "ALTER TABLE t DROP COLUMN id;\n");
	th_write(dir, "migrations/U2__drop.sql", "DROP TABLE t;\n");
	th_write(dir, "ok/V1__add.sql", "SET lock_timeout = '1s';\nALTER TABLE t ADD COLUMN note text;\n");
	cr_assert_eq(th_twinstage(dir, &out, &err, "lint", "migrations", NULL), 1, "%s", err.buf);
	cr_assert(strstr(out.buf, "migrations/V2__drop.sql:1:13: error [drop-column]"), "%s", out.buf);
	cr_assert(!strstr(out.buf, "U2__drop"), "down parts are not linted in a folder:\n%s", out.buf);
	cr_assert(strstr(out.buf, "2 files, 3 statements: 1 error, 1 warning"), "%s", out.buf);
	strbuf_reset(&out);
	cr_assert_eq(th_twinstage(dir, &out, &err, "lint", "ok", NULL), 0, "%s", out.buf);
	strbuf_reset(&out);
	cr_assert_eq(th_twinstage(dir, &out, &err, "lint", "--format", "json", "migrations/V2__drop.sql", NULL), 1);
	cr_assert(strstr(out.buf, "\"rule\": \"drop-column\""), "%s", out.buf);
	cr_assert(strstr(out.buf, "\"errors\": 1"), "%s", out.buf);
	strbuf_reset(&err);
	cr_assert_eq(th_twinstage(dir, &out, &err, "lint", "missing", NULL), 2);
	cr_assert(strstr(err.buf, "\"missing\" is not a file or a folder"), "%s", err.buf);
	strbuf_release(&out);
	strbuf_release(&err);
	th_rmtree(dir);
	free(dir);
}
