/*
 * test_tracking.c: each tool's tracking table read and written as the tool
 * does, dirty and failed states refused, drift reported, and Flyway's
 * checksum equal to Flyway's own.
 */
#include "core/error.h"
#include "core/strbuf.h"
#include "core/util.h"
#include "migrate/migrate.h"
#include "migrate/tracking.h"
#include "pg/pg.h"
#include "report/report.h"
#include "helpers.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * Reference values: Flyway's ChecksumCalculator (CRC-32 of each line's
 * UTF-8 bytes without its terminator, a leading BOM dropped, as a signed
 * int) run on java.util.zip.CRC32 with OpenJDK 17 for these texts.
 */
Test(tracking, flyway_checksum_matches_flyway)
{
	static const struct { const char *text; int sum; } known[] = {
		{ "SELECT 1;\n", 78787420 },
		{ "CREATE TABLE invoices (\n    id bigint PRIMARY KEY\n);\n", 1662240044 },
		{ "CREATE TABLE invoices (\r\n    id bigint PRIMARY KEY\r\n);\r\n", 1662240044 },
		{ "\xEF\xBB\xBFSELECT 1;\n", 78787420 },
		{ "-- caf\xC3\xA9\nSELECT '\xC3\xA9';\r", 856315270 },
		{ "", 0 },
	};

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		cr_assert_eq(ts_flyway_checksum(known[i].text, strlen(known[i].text)), known[i].sum,
			     "case %zu", i);
}

static char *dir;
static struct th_cluster c;

static void setup(void)
{
	dir = th_tmpdir();
	th_cluster_start(&c, "trk");
}

static void teardown(void)
{
	th_cluster_stop(&c);
	th_rmtree(dir);
	free(dir);
}

TestSuite(tracking_db, .init = setup, .fini = teardown, .timeout = 120);

/* Applies the folder with its format's tool; returns what apply returned. */
static int apply(struct ts_report *rep)
{
	struct ts_migrations set;
	struct ts_tracker t;
	PGconn *conn = ts_pg_connect(c.conninfo, "test");
	int r;

	cr_assert(conn);
	cr_assert_eq(ts_migrations_discover(dir, &set), 0, "%s", ts_error_message());
	ts_tracker_init(&t, ts_tracking_for_format(set.format), NULL);
	ts_report_init(rep, "t");
	r = ts_migrations_apply(conn, &set, &t, NULL, rep, NULL, 0);
	ts_tracker_release(&t);
	ts_migrations_free(&set);
	PQfinish(conn);
	return r;
}

static char *value(const char *sql)
{
	return th_value(c.conninfo, sql);
}

#define ASSERT_VALUE(sql, want)                                          \
	do {                                                             \
		char *v_ = value(sql);                                   \
		cr_assert_str_eq(v_, want, "%s", sql);                   \
		free(v_);                                                \
	} while (0)

Test(tracking_db, golang_migrate_keeps_one_row_and_migrations_can_read_it)
{
	struct ts_report rep;

	th_write(dir, "1_a.up.sql", "CREATE TABLE a (id int);\n");
	/* real migrations read the tool's table: during 2, it says 2, dirty */
	th_write(dir, "2_b.up.sql",
		 "DO $$ BEGIN\n"
		 "  IF (SELECT version FROM schema_migrations WHERE dirty) IS DISTINCT FROM 2 THEN\n"
		 "    RAISE EXCEPTION 'schema_migrations does not say 2';\n"
		 "  END IF;\n"
		 "END $$;\n"
		 "CREATE TABLE b (id int);\n");
	cr_assert_eq(apply(&rep), 2, "%s", ts_error_message());
	ts_report_free(&rep);
	ASSERT_VALUE("SELECT count(*) FROM schema_migrations", "1");
	ASSERT_VALUE("SELECT version::text || ' ' || dirty::text FROM schema_migrations", "2 false");
	ASSERT_VALUE("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'schema_migrations'::regclass AND attname = 'version'", "bigint");

	/* a dirty table is refused, naming the version */
	th_sql(c.conninfo, "UPDATE schema_migrations SET dirty = true");
	th_write(dir, "3_c.up.sql", "CREATE TABLE c (id int);\n");
	cr_assert_eq(apply(&rep), -1);
	cr_assert_eq(ts_error_class(), TS_EXIT_USAGE);
	cr_assert(strstr(ts_error_message(), "is dirty at version 2"), "%s", ts_error_message());
	ts_report_free(&rep);
}

Test(tracking_db, dbmate_records_each_version)
{
	struct ts_report rep;

	th_write(dir, "20240101000000_a.sql", "-- migrate:up\nCREATE TABLE a (id int);\n-- migrate:down\nDROP TABLE a;\n");
	th_write(dir, "20240202000000_b.sql", "-- migrate:up\nCREATE TABLE b (id int);\n");
	cr_assert_eq(apply(&rep), 2, "%s", ts_error_message());
	ts_report_free(&rep);
	ASSERT_VALUE("SELECT string_agg(version, ',' ORDER BY version) FROM schema_migrations",
		     "20240101000000,20240202000000");
	ASSERT_VALUE("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'schema_migrations'::regclass AND attname = 'version'",
		     "character varying(255)");
	cr_assert_eq(apply(&rep), 0, "nothing pending: %s", ts_error_message());
	ts_report_free(&rep);
}

Test(tracking_db, flyway_history_rows_repeatables_and_failed_rows)
{
	struct ts_report rep;
	char *want;

	th_write(dir, "V1__create_a.sql", "CREATE TABLE a (id int);\n");
	th_write(dir, "V1_1__create_b.sql", "CREATE TABLE b (id int);\n");
	th_write(dir, "R__view_a.sql", "CREATE OR REPLACE VIEW va AS SELECT id FROM a;\n");
	cr_assert_eq(apply(&rep), 3, "%s", ts_error_message());
	ts_report_free(&rep);
	want = xstrfmt("1|1|create a|SQL|V1__create_a.sql|%d|t",
		       ts_flyway_checksum("CREATE TABLE a (id int);\n", 25));
	ASSERT_VALUE("SELECT concat_ws('|', installed_rank, version, description, type, script, checksum, success)"
		     " FROM flyway_schema_history WHERE installed_rank = 1", want);
	free(want);
	ASSERT_VALUE("SELECT version FROM flyway_schema_history WHERE installed_rank = 2", "1.1");
	ASSERT_VALUE("SELECT (version IS NULL)::text FROM flyway_schema_history WHERE script = 'R__view_a.sql'", "true");
	ASSERT_VALUE("SELECT (installed_by = current_user)::text FROM flyway_schema_history LIMIT 1", "true");

	/* an unchanged repeatable does not run again; a changed one does */
	cr_assert_eq(apply(&rep), 0);
	ts_report_free(&rep);
	th_write(dir, "R__view_a.sql", "CREATE OR REPLACE VIEW va AS SELECT id, 1 AS one FROM a;\n");
	cr_assert_eq(apply(&rep), 1);
	ts_report_free(&rep);
	ASSERT_VALUE("SELECT count(*) FROM flyway_schema_history WHERE script = 'R__view_a.sql'", "2");

	/* a failed row is refused, naming the version */
	th_sql(c.conninfo, "INSERT INTO flyway_schema_history VALUES (9, '2', 'broken', 'SQL', 'V2__broken.sql', 0, 'x', now(), 1, false)");
	cr_assert_eq(apply(&rep), -1);
	cr_assert(strstr(ts_error_message(), "records a failed migration: version 2 (broken)"), "%s", ts_error_message());
	ts_report_free(&rep);
}

Test(tracking_db, drift_names_missing_and_changed_files)
{
	struct ts_migrations set;
	struct ts_tracker t;
	struct ts_tracking_state st;
	struct strvec drift = STRVEC_INIT;
	struct ts_report rep;
	PGconn *conn;

	th_write(dir, "V1__a.sql", "CREATE TABLE a (id int);\n");
	th_write(dir, "V2__b.sql", "CREATE TABLE b (id int);\n");
	cr_assert_eq(apply(&rep), 2, "%s", ts_error_message());
	ts_report_free(&rep);
	th_write(dir, "V1__a.sql", "CREATE TABLE a (id bigint);\n");
	unlink(path_join(dir, "V2__b.sql"));

	conn = ts_pg_connect(c.conninfo, "test");
	cr_assert_eq(ts_migrations_discover(dir, &set), 0);
	ts_tracker_init(&t, TS_TRACK_FLYWAY, NULL);
	cr_assert_eq(ts_tracking_read(conn, &t, &st), 0);
	ts_tracking_drift(&t, &st, &set, &drift);
	cr_assert_eq(drift.nr, 2);
	cr_assert(strstr(drift.v[0], "V1__a.sql differs from what production applied"), "%s", drift.v[0]);
	cr_assert(strstr(drift.v[1], "version 2 (b) is applied in production but has no file"), "%s", drift.v[1]);
	strvec_clear(&drift);
	ts_tracking_state_free(&st);
	ts_tracker_release(&t);
	ts_migrations_free(&set);
	PQfinish(conn);
}
