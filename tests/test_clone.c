/*
 * test_clone.c: the three ways to make the dev side (cow on a pool,
 * physical, logical), each checked as a user would: the same rows in every
 * table of the source, the production clone and the dev side; the pool
 * twinstage makes as root, and removes; snapshots and reset; a full pool.
 */
#include "core/strbuf.h"
#include "core/util.h"
#include "helpers.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

TH_PROJECT_SUITE(clone);

#define ASSERT_HAS TH_ASSERT_HAS

/* Every user table: "name=rows:md5 of its rows in order", in one string. */
static const char digest_sql[] =
	"SELECT coalesce(string_agg(c.oid::regclass || '=' || (xpath('/row/n/text()', x))[1]::text"
	"       || ':' || (xpath('/row/h/text()', x))[1]::text, ' ' ORDER BY c.oid::regclass::text), '')"
	" FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace,"
	" LATERAL query_to_xml(format('SELECT count(*) AS n, md5(coalesce(string_agg(t::text, ''|''"
	"   ORDER BY t::text), '''')) AS h FROM %s t', c.oid::regclass), false, true, '') x"
	" WHERE c.relkind = 'r' AND s.nspname NOT IN ('pg_catalog', 'information_schema')"
	"   AND c.relname NOT LIKE '%schema_history'";

static int kept_port(const char *side)
{
	char *wd = xstrfmt("%s/.twinstage", dir);
	int port = th_kept_port(wd, side);

	free(wd);
	return port;
}

static char *digest_of(const char *side)
{
	char *ci = xstrfmt("host=127.0.0.1 port=%d dbname=tproj user=postgres", kept_port(side));
	char *d = th_value(ci, digest_sql);

	free(ci);
	return d;
}

/* The dev side holds what the production clone holds, table by table. */
static char *assert_sides_equal(void)
{
	char *prod = digest_of("prod"), *dev = digest_of("dev");

	cr_assert_str_eq(dev, prod, "the dev side differs from the production clone");
	free(dev);
	return prod;
}

/*
 * A source server with the example's seed and a table of 20,000 rows, and
 * a project that copies it by `method`, connecting as `user`.
 */
static void source_project(struct th_cluster *src, const char *method, const char *user)
{
	char *seed = th_src("scenarios/invoices/seed.sql");
	struct strbuf sql = STRBUF_INIT;
	char *extra = xstrfmt("\n[environments]\nclone = %s\n", method);
	char *ini, *s, *with_dsn;

	th_cluster_start(src, "shop");
	strbuf_read_file(&sql, seed);
	th_sql(src->conninfo, sql.buf);
	th_sql(src->conninfo, "CREATE TABLE big AS SELECT i AS id, md5(i::text) AS h,"
			      " timestamptz '2024-01-01' + i * interval '1 s' AS at, ARRAY[i, -i] AS arr"
			      " FROM generate_series(1, 20000) i; ALTER TABLE big ADD PRIMARY KEY (id)");
	if (strcmp(user, "postgres"))
		th_sql(src->conninfo, "CREATE ROLE app LOGIN; GRANT pg_read_all_data TO app");
	th_project(dir, extra);
	ini = th_read(dir, "twinstage.ini");
	s = strstr(ini, "seed = ");
	with_dsn = xstrfmt("%.*sdsn = host=127.0.0.1 port=%d user=%s dbname=shop%s", (int)(s - ini), ini,
			   src->env.prod.port, user, strchr(s, '\n'));
	th_write(dir, "twinstage.ini", with_dsn);
	th_write(dir, "migrations/V1__noop.sql", "SELECT 1;\n");
	free(with_dsn);
	free(ini);
	free(extra);
	strbuf_release(&sql);
	free(seed);
}

/* Up by `method`, then every table equal on the source and both sides, then down. */
static void check_method(struct th_cluster *src, const char *method, const char *user,
			 const char *says)
{
	char *prod, *source;
	int code;

	source_project(src, method, user);
	code = th_twinstage(dir, &out, &err, "up", NULL);
	cr_assert_eq(code, 0, "exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(out, says);
	prod = assert_sides_equal();
	source = th_value(src->conninfo, digest_sql);
	cr_assert_str_eq(prod, source, "the production clone differs from the source");
	cr_assert(strstr(prod, "big=20000:"), "%s", prod);
	cr_assert_eq(th_twinstage(dir, NULL, NULL, "down", "-q", NULL), 0);
	free(prod);
	free(source);
}

static int mounted(const char *path)
{
	struct strbuf sb = STRBUF_INIT;
	char *needle = xstrfmt(" %s ", path);
	int r;

	strbuf_read_file(&sb, "/proc/mounts");
	r = strstr(sb.buf, needle) != NULL;
	strbuf_release(&sb);
	free(needle);
	return r;
}

Test(clone, cow_on_a_pool_twinstage_makes_and_removes)
{
	struct th_cluster src;
	char *pool, *img, *link, *target;
	ssize_t n;
	char buf[4096];

	if (geteuid() != 0)
		cr_skip_test("the pool is a loop mount: root only");
	/* the source lets its superuser replicate: pg_basebackup, then a reflink copy */
	check_method(&src, "cow", "postgres", "clone cow: dev side in");
	ASSERT_HAS(out, "production clone from pg_basebackup");
	pool = xstrfmt("%s/.twinstage/pool", dir);
	img = xstrfmt("%s/.twinstage/pool.img", dir);
	cr_assert(!mounted(pool), "down left the pool mounted");
	cr_assert(is_file(img), "down removes the image only with --purge");

	/* up again: the pool is mounted, and both sides live on it */
	cr_assert_eq(th_twinstage(dir, &out, &err, "up", NULL), 0, "%s", err.buf);
	cr_assert(mounted(pool), "no pool mounted at %s", pool);
	link = xstrfmt("%s/.twinstage/dev/data", dir);
	n = readlink(link, buf, sizeof(buf) - 1);
	cr_assert(n > 0, "%s is not a link into the pool", link);
	buf[n] = '\0';
	target = xstrfmt("%s/dev", pool);
	cr_assert_str_eq(buf, target);
	cr_assert_eq(th_twinstage(dir, &out, &err, "snapshot", NULL), 0);
	ASSERT_HAS(out, "base");
	cr_assert_eq(th_twinstage(dir, &out, &err, "down", "--purge", NULL), 0, "%s", err.buf);
	cr_assert(!mounted(pool), "down --purge left the pool mounted");
	cr_assert(!is_file(img) && !is_dir(pool), "down --purge left the pool behind");
	cr_assert_eq(th_postgres_procs(dir), 0);
	th_cluster_stop(&src);
	free(pool);
	free(img);
	free(link);
	free(target);
}

Test(clone, physical_copy_of_a_source_that_may_not_replicate)
{
	struct th_cluster src;

	/* user app reads everything but may not replicate: dumped, and the report says why */
	check_method(&src, "physical", "app", "clone physical: dev side in");
	ASSERT_HAS(out, "production clone from pg_dump -Fd");
	ASSERT_HAS(out, "may not open a replication connection");
	th_cluster_stop(&src);
}

Test(clone, logical_copy)
{
	struct th_cluster src;

	check_method(&src, "logical", "postgres", "clone logical: dev side in");
	ASSERT_HAS(out, "production clone from pg_dump -Fd");
	cr_assert(!strstr(out.buf, "note:"), "logical was asked for: no note\n%s", out.buf);
	th_cluster_stop(&src);
}

/*
 * A source with a table big enough to be piped on its own (pg_dump -t |
 * pg_restore, while pg_dump -j does the rest from the same snapshot), read
 * as a read-only role: every row on both sides, and what the post-data
 * brings after the data (indexes, a foreign key, a trigger, a refreshed
 * materialized view), the sequences and a generated column.
 */
Test(clone, logical_copy_pipes_the_biggest_tables)
{
	struct th_cluster src;
	char *prod, *source, *ci;
	const char *checks[] = {
		"SELECT count(*) || ':' || sum(twice) FROM wide",
		"SELECT count(*) FROM pg_indexes WHERE tablename = 'wide'",
		"SELECT count(*) FROM pg_constraint WHERE conname = 'wide_big_fk'",
		"SELECT count(*) FROM pg_trigger WHERE tgname = 'wide_touch'",
		"SELECT n FROM wide_count",
		"SELECT last_value FROM wide_id_seq",
	};
	int code;

	source_project(&src, "logical", "app");
	th_sql(src.conninfo, "CREATE TABLE wide (id serial PRIMARY KEY, big_id int, pad text, twice bigint"
			     " GENERATED ALWAYS AS (id * 2) STORED);"
			     " INSERT INTO wide (big_id, pad) SELECT 1 + i % 20000, repeat(md5(i::text), 3)"
			     " FROM generate_series(1, 90000) i;"
			     " ALTER TABLE wide ADD CONSTRAINT wide_big_fk FOREIGN KEY (big_id) REFERENCES big;"
			     " CREATE INDEX ON wide (pad);"
			     " CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS"
			     " $$BEGIN NEW.pad := 'touched'; RETURN NEW; END$$;"
			     " CREATE TRIGGER wide_touch BEFORE INSERT ON wide FOR EACH ROW EXECUTE FUNCTION touch();"
			     " CREATE MATERIALIZED VIEW wide_count AS SELECT count(*) AS n FROM wide;"
			     " GRANT pg_read_all_data TO app");
	code = th_twinstage(dir, &out, &err, "up", NULL);
	cr_assert_eq(code, 0, "exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(err, "copying the source database (user=app dbname=shop host=127.0.0.1 port=");
	ASSERT_HAS(err, "its 1 biggest table piped straight into the prod side, the rest with pg_dump -j");
	ASSERT_HAS(err, "copying the production clone: its 1 biggest table piped straight into the dev side");
	ASSERT_HAS(out, "production clone from pg_dump | pg_restore of its 1 biggest table");
	prod = assert_sides_equal();
	source = th_value(src.conninfo, digest_sql);
	cr_assert_str_eq(prod, source, "the production clone differs from the source");
	cr_assert(strstr(prod, "wide=90000:"), "%s", prod);
	ci = xstrfmt("host=127.0.0.1 port=%d dbname=tproj user=postgres", kept_port("dev"));
	for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
		char *want = th_value(src.conninfo, checks[i]), *got = th_value(ci, checks[i]);

		cr_assert_str_eq(got, want, "%s: %s on the dev side, %s on the source", checks[i], got, want);
		free(want);
		free(got);
	}
	free(ci);
	cr_assert_eq(th_twinstage(dir, NULL, NULL, "down", "-q", NULL), 0);
	free(prod);
	free(source);
	th_cluster_stop(&src);
}

/* A migration that changes schema and data: reset must undo both. */
static void migrating_project(const char *method)
{
	char *extra = xstrfmt("\n[environments]\nclone = %s\n", method);

	th_project(dir, extra);
	th_write(dir, "migrations/V1__change.sql",
		 "CREATE TABLE extra (id int);\nINSERT INTO extra VALUES (1);\n"
		 "UPDATE inovices SET amount = amount * 2;\n");
	free(extra);
	cr_assert_eq(th_twinstage(dir, &out, &err, "up", NULL), 0, "%s", err.buf);
	cr_assert_eq(th_twinstage(dir, &out, &err, "migrate", "-q", NULL), 0, "%s", err.buf);
}

static void assert_dev_is_prod(void)
{
	char *prod = assert_sides_equal();

	cr_assert(!strstr(prod, "extra="), "%s", prod);
	free(prod);
}

Test(clone, reset_returns_the_dev_side_to_before_migrating)
{
	char *prod, *dev;

	if (geteuid() != 0)
		cr_skip_test("the pool is a loop mount: root only");
	migrating_project("cow");
	prod = digest_of("prod");
	dev = digest_of("dev");
	cr_assert(strstr(dev, "extra=1:") && strcmp(prod, dev), "the migration did not change the dev side");
	cr_assert_eq(th_twinstage(dir, &out, &err, "snapshot", "migrated", NULL), 0, "%s", err.buf);
	ASSERT_HAS(out, "dev side saved as \"migrated\"");

	cr_assert_eq(th_twinstage(dir, &out, &err, "reset", NULL), 0, "%s", err.buf);
	ASSERT_HAS(out, "dev side reset to before migrating");
	ASSERT_HAS(out, "(cow)");
	assert_dev_is_prod();
	/* the tracking table went back too: the migration is pending again */
	cr_assert_eq(th_twinstage(dir, &out, &err, "status", NULL), 0);
	ASSERT_HAS(out, "dev   at version none, 1 pending");

	cr_assert_eq(th_twinstage(dir, &out, &err, "reset", "migrated", NULL), 0, "%s", err.buf);
	free(prod);
	prod = digest_of("dev");
	cr_assert_str_eq(prod, dev, "reset migrated did not bring the migrated state back");

	cr_assert_eq(th_twinstage(dir, &out, &err, "reset", "nope", NULL), 2);
	ASSERT_HAS(err, "no snapshot named \"nope\"");
	ASSERT_HAS(err, "base, migrated");
	cr_assert_eq(th_twinstage(dir, &out, &err, "snapshot", "base", NULL), 2);
	cr_assert_eq(th_twinstage(dir, &out, &err, "snapshot", "../x", NULL), 2);
	ASSERT_HAS(err, "invalid snapshot name");
	free(prod);
	free(dev);
}

Test(clone, reset_without_a_pool_copies_the_production_clone_again)
{
	migrating_project("physical");
	cr_assert_eq(th_twinstage(dir, &out, &err, "reset", NULL), 0, "%s", err.buf);
	ASSERT_HAS(out, "(physical)");
	assert_dev_is_prod();
}

Test(clone, rehearse_reuse_resets_the_kept_dev_side)
{
	json_t *rep;
	char *wd = xstrfmt("%s/.twinstage", dir);

	th_project(dir, NULL);
	th_write(dir, "migrations/V1__create_invoices.sql", "CREATE TABLE invoices (LIKE inovices);\n");
	cr_assert_eq(th_twinstage(dir, &out, &err, "rehearse", "--reuse", "--no-load", NULL), 0, "%s", err.buf);
	ASSERT_HAS(err, "no kept environments to reuse");
	cr_assert_eq(th_twinstage(dir, &out, &err, "rehearse", "--reuse", "--no-load", NULL), 0,
		     "%s\n%s", out.buf, err.buf);
	ASSERT_HAS(err, "reusing the kept environments");
	ASSERT_HAS(err, "kept: production clone on");
	/* the migration ran again on a dev side back at the start */
	rep = th_latest_report(wd);
	cr_assert_str_eq(json_string_value(json_object_get(json_object_get(rep, "tracking"), "dev_after")), "1");
	cr_assert(json_is_null(json_object_get(json_object_get(rep, "tracking"), "dev_before")));
	cr_assert_str_eq(json_string_value(json_object_get(rep, "clone_source")), "kept (rehearse --reuse)");
	json_decref(rep);
	free(wd);
}

/* A 300 MiB XFS image mounted at dir/tiny, for a pool the user names. */
static char *tiny_pool(void)
{
	char *img = xstrfmt("%s/tiny.img", dir), *mnt = xstrfmt("%s/tiny", dir);
	int fd = open(img, O_WRONLY | O_CREAT, 0600);

	cr_assert(fd >= 0 && !ftruncate(fd, 300 << 20));
	close(fd);
	cr_assert_eq(th_run(NULL, "mkfs.xfs", "-q", "-m", "reflink=1", img, NULL), 0, "mkfs.xfs failed");
	mkdir_p(mnt, 0755);
	cr_assert_eq(th_run(NULL, "mount", "-o", "loop", img, mnt, NULL), 0, "mount failed");
	free(img);
	return mnt;
}

static void unmount(const char *mnt)
{
	th_run(NULL, "umount", mnt, NULL);
}

Test(clone, a_full_pool_is_a_clear_error_and_leaves_nothing)
{
	char *mnt, *ballast, *extra;
	struct statvfs sv;
	int fd;

	if (geteuid() != 0)
		cr_skip_test("the pool is a loop mount: root only");
	mnt = tiny_pool();
	/* leave 40 MiB: less than a cluster needs */
	ballast = xstrfmt("%s/ballast", mnt);
	cr_assert(!statvfs(mnt, &sv));
	fd = open(ballast, O_WRONLY | O_CREAT, 0600);
	cr_assert(fd >= 0 && !posix_fallocate(fd, 0, (off_t)sv.f_bavail * sv.f_frsize - (40 << 20)));
	close(fd);
	extra = xstrfmt("\n[environments]\nclone = cow\npool = %s\n", mnt);
	th_project(dir, extra);
	th_write(dir, "migrations/V1__noop.sql", "SELECT 1;\n");
	cr_assert_eq(th_twinstage(dir, &out, &err, "up", NULL), 3, "%s\n%s", out.buf, err.buf);
	ASSERT_HAS(err, "the copy-on-write pool");
	ASSERT_HAS(err, "is full: it has 40 MiB free, and the production clone needs about");
	/* nothing half made: no server, nothing of ours on the pool */
	cr_assert_eq(th_postgres_procs(dir), 0);
	{
		char *mine = xstrfmt("%s/.twinstage/env.json", dir);

		cr_assert(!is_file(mine), "the failed up left its state file");
		free(mine);
	}
	/* with room, the same pool works */
	unlink(ballast);
	cr_assert_eq(th_twinstage(dir, &out, &err, "up", NULL), 0, "%s", err.buf);
	ASSERT_HAS(out, "clone cow");
	assert_dev_is_prod();
	cr_assert_eq(th_twinstage(dir, &out, &err, "down", NULL), 0, "%s", err.buf);
	unmount(mnt);
	free(ballast);
	free(extra);
	free(mnt);
}

Test(clone, a_pool_without_reflink_is_refused)
{
	char *plain = xstrfmt("%s/plain", dir), *extra = xstrfmt("\n[environments]\nclone = cow\npool = %s\n", plain);

	mkdir_p(plain, 0755);
	th_project(dir, extra);
	th_write(dir, "migrations/V1__noop.sql", "SELECT 1;\n");
	cr_assert_eq(th_twinstage(dir, &out, &err, "up", NULL), 3, "%s", err.buf);
	ASSERT_HAS(err, "cannot make copy-on-write copies");
	cr_assert_eq(th_postgres_procs(dir), 0);
	free(plain);
	free(extra);
}
