/*
 * helpers: what the tests share: temporary projects, running the twinstage
 * binary as a user would, and real PostgreSQL clusters on free ports.
 */
#ifndef TS_TEST_HELPERS_H
#define TS_TEST_HELPERS_H

#include "core/run_command.h"
#include "core/strbuf.h"
#include "env/env.h"

/* A fresh folder under /tmp, traversable by the server user; removed by th_rmtree. */
char *th_tmpdir(void);
void th_rmtree(const char *dir);
/* dir/"my shop", made: a folder a user would have, with a space in its name (new string). */
char *th_user_folder(const char *dir);
/* Writes dir/rel (making folders) with the given text. */
void th_write(const char *dir, const char *rel, const char *text);
/* Reads dir/rel, or NULL. */
char *th_read(const char *dir, const char *rel);

/* Runs the twinstage binary with args (NULL-terminated) in cwd; returns the exit code. */
int th_twinstage(const char *cwd, struct strbuf *out, struct strbuf *err, ...);
/* The same with the arguments in a vector. */
struct strvec;
int th_twinstage_v(const char *cwd, struct strbuf *out, struct strbuf *err, const struct strvec *args);

/*
 * Runs a program (argv: NULL-terminated, no shell) and returns its exit
 * code; its output into out, or nowhere when out is NULL.
 */
int th_run(struct strbuf *out, const char *arg0, ...);
/* Writes a project with the invoices example's seed and apps, and these migrations. */
void th_project(const char *dir, const char *extra_ini);

/* Count of running postgres processes whose command line mentions needle. */
int th_postgres_procs(const char *needle);
/*
 * Fails the test when anything a run of workdir can make is still there:
 * the sides' and snapshots' folders, env.json, the scratch server, the
 * double dump test's files, dumps, the pool's mount point; its folder
 * outside the workdir (/var/tmp/twinstage-<crc>); a server process whose
 * data lives in either; a mount or loop device of either. (Logs, reports,
 * the lock, the marker and the pool's image file are kept by `down`.)
 */
void th_assert_nothing_left(const char *workdir);

/* A real cluster of our own, for tests that talk to PostgreSQL directly. */
struct th_cluster {
	char *dir;
	struct ts_config cfg;
	struct ts_env env;
	char *conninfo;
};
void th_cluster_start(struct th_cluster *c, const char *dbname);
void th_cluster_stop(struct th_cluster *c);
void th_sql(const char *conninfo, const char *sql);
/* The first value of the first row of sql's result (new string). */
char *th_value(const char *conninfo, const char *sql);

/* The report.json a run wrote last under workdir (asserts it exists; json_decref it). */
struct json_t;
struct json_t *th_latest_report(const char *workdir);
/* The port of a kept side ("prod", "dev") of workdir, from its env.json (asserts it has one). */
int th_kept_port(const char *workdir, const char *side);

/* Fails the test unless the strbuf sb holds needle, showing what it holds. */
#define TH_ASSERT_HAS(sb, needle) \
	cr_assert(strstr((sb).buf, needle), "output lacks \"%s\":\n%s", needle, (sb).buf)

/*
 * The fixture of a suite that runs twinstage as a user would: a fresh
 * folder `dir`, its output in `out` and `err`, and whatever a test did,
 * no server left behind.
 */
#define TH_PROJECT_SUITE(suite) \
	static char *dir; \
	static struct strbuf out = STRBUF_INIT, err = STRBUF_INIT; \
	static void suite##_setup(void) \
	{ \
		dir = th_tmpdir(); \
		strbuf_reset(&out); \
		strbuf_reset(&err); \
	} \
	static void suite##_teardown(void) \
	{ \
		th_twinstage(dir, NULL, NULL, "down", "-q", NULL); \
		th_rmtree(dir); \
		free(dir); \
	} \
	TestSuite(suite, .init = suite##_setup, .fini = suite##_teardown, .timeout = 300)

/* Greps every file under root for needle. */
int th_tree_contains(const char *root, const char *needle);

/* twinstage running in the background, what it prints read as it comes. */
struct th_bg {
	struct child_process cp;
	struct strbuf said;
};
/* Starts the twinstage binary in cwd with args (NULL-terminated). */
void th_bg_start(struct th_bg *b, const char *cwd, ...);
/* Reads what it printed for up to ms; 1 once it has closed its output (it ended). */
int th_bg_read(struct th_bg *b, int ms);
/* Reads until `line` is in what it printed, 120 s at most (asserts it came). */
void th_bg_wait_for_line(struct th_bg *b, const char *line);
/* Its exit code, once it ended; what it printed is appended to said (may be NULL). */
int th_bg_finish(struct th_bg *b, struct strbuf *said);
void th_bg_kill(struct th_bg *b);

/* Absolute path of a file of the source tree. */
char *th_src(const char *rel);

#endif
