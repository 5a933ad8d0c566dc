/*
 * helpers.c: see helpers.h. Clusters are made with twinstage's own
 * instance backend (initdb + pg_ctl on a free port in a temporary folder),
 * the same code a user runs.
 */
#include "core/error.h"
#include "core/run_command.h"
#include "core/strbuf.h"
#include "core/util.h"
#include "core/wrapper.h"
#include "pg/pg.h"
#include "helpers.h"
#include "env/home.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

char *th_src(const char *rel)
{
	const char *src = getenv("TWINSTAGE_SRC");

	return path_join(src ? src : ".", rel);
}

char *th_tmpdir(void)
{
	char tmpl[] = "/tmp/twinstage-test-XXXXXX";
	char *d = mkdtemp(tmpl);

	cr_assert(d, "mkdtemp failed");
	chmod(d, 0755);
	return xstrdup(d);
}

char *th_user_folder(const char *dir)
{
	char *p = path_join(dir, "my shop");

	cr_assert(!mkdir_p(p, 0755), "mkdir %s", p);
	return p;
}

void th_rmtree(const char *dir)
{
	rm_rf(dir);
}

void th_write(const char *dir, const char *rel, const char *text)
{
	char *p = path_join(dir, rel), *parent = path_dirname(p);

	cr_assert(!mkdir_p(parent, 0755), "mkdir %s", parent);
	cr_assert(!write_file(p, text, strlen(text)), "write %s", p);
	free(parent);
	free(p);
}

char *th_read(const char *dir, const char *rel)
{
	char *p = path_join(dir, rel);
	struct strbuf sb = STRBUF_INIT;
	char *r = NULL;

	if (!strbuf_read_file(&sb, p))
		r = strbuf_detach(&sb);
	strbuf_release(&sb);
	free(p);
	return r;
}

int th_twinstage(const char *cwd, struct strbuf *out, struct strbuf *err, ...)
{
	struct strvec args = STRVEC_INIT;
	va_list ap;
	const char *a;
	int r;

	va_start(ap, err);
	while ((a = va_arg(ap, const char *)))
		strvec_push(&args, a);
	va_end(ap);
	r = th_twinstage_v(cwd, out, err, &args);
	strvec_clear(&args);
	return r;
}

int th_twinstage_v(const char *cwd, struct strbuf *out, struct strbuf *err, const struct strvec *args)
{
	struct child_process cp = CHILD_PROCESS_INIT;
	const char *bin = getenv("TWINSTAGE_BIN");
	char *errf = xstrfmt("%s/.stderr-%d", cwd, (int)getpid());
	struct strbuf dummy = STRBUF_INIT;
	int r;

	strvec_push(&cp.args, bin ? bin : "build/asan/twinstage");
	for (size_t i = 0; i < args->nr; i++)
		strvec_push(&cp.args, args->v[i]);
	/* the program under test is checked for leaks, whatever the runner's setting */
	strvec_push(&cp.env, "ASAN_OPTIONS=detect_leaks=1:exitcode=99");
	cp.dir = cwd;
	cp.no_stdin = 1;
	cp.capture = out ? out : &dummy;
	cp.err_path = errf;
	r = run_command(&cp);
	if (err) {
		struct strbuf e = STRBUF_INIT;

		strbuf_read_file(&e, errf);
		strbuf_add(err, e.buf, e.len);
		strbuf_release(&e);
	}
	{
		struct strbuf e = STRBUF_INIT;

		strbuf_read_file(&e, errf);
		cr_assert(!strstr(e.buf, "Sanitizer") && !strstr(e.buf, "runtime error:"),
			  "twinstage %s: sanitizer report:\n%s", cp.args.v[1], e.buf);
		strbuf_release(&e);
	}
	unlink(errf);
	free(errf);
	child_process_clear(&cp);
	strbuf_release(&dummy);
	return r;
}

int th_run(struct strbuf *out, const char *arg0, ...)
{
	struct child_process cp = CHILD_PROCESS_INIT;
	va_list ap;
	const char *a;
	int r;

	strvec_push(&cp.args, arg0);
	va_start(ap, arg0);
	while ((a = va_arg(ap, const char *)))
		strvec_push(&cp.args, a);
	va_end(ap);
	if (out)
		cp.capture = out;
	else
		cp.quiet = 1;
	cp.no_stdin = 1;
	r = run_command(&cp);
	child_process_clear(&cp);
	return r;
}

void th_project(const char *dir, const char *extra_ini)
{
	char *seed = th_src("scenarios/invoices/seed.sql");
	char *v1 = th_src("scenarios/invoices/apps/v1");
	char *v2 = th_src("scenarios/invoices/apps/v2");
	char *ini = xstrfmt("[project]\nname = tproj\nmigrations = migrations\n\n"
			    "[source]\nseed = %s\n\n"
			    "[app v1]\nscenarios = %s\n\n[app v2]\nscenarios = %s\n\n"
			    "[rehearsal]\ncurrent = v1\nnext = v2\n%s",
			    seed, v1, v2, extra_ini ? extra_ini : "");

	th_write(dir, "twinstage.ini", ini);
	free(ini);
	free(seed);
	free(v1);
	free(v2);
}

static int postgres_procs(const char *needle, char **first)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	int n = 0;

	while (d && (de = readdir(d))) {
		char path[300], buf[4096];
		FILE *fp;
		size_t len;

		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/cmdline", de->d_name);
		if (!(fp = fopen(path, "r")))
			continue;
		len = fread(buf, 1, sizeof(buf) - 1, fp);
		fclose(fp);
		for (size_t i = 0; i < len; i++)
			if (!buf[i])
				buf[i] = ' ';
		buf[len] = '\0';
		if (strstr(buf, "postgres") && strstr(buf, needle)) {
			if (!n && first)
				*first = xstrdup(buf);
			n++;
		}
	}
	if (d)
		closedir(d);
	return n;
}

int th_postgres_procs(const char *needle)
{
	return postgres_procs(needle, NULL);
}

void th_cluster_start(struct th_cluster *c, const char *dbname)
{
	char *ini;

	memset(c, 0, sizeof(*c));
	c->dir = th_tmpdir();
	mkdir_p(c->dir, 0755);
	th_write(c->dir, "migrations/.keep", "");
	ini = xstrfmt("[project]\nname = %s\n", dbname);
	th_write(c->dir, "cluster.ini", ini);
	free(ini);
	{
		char *p = path_join(c->dir, "cluster.ini");

		cr_assert(!ts_config_load(&c->cfg, p, NULL), "config: %s", ts_error_message());
		free(p);
	}
	cr_assert(!ts_env_init(&c->env, &c->cfg), "%s", ts_error_message());
	cr_assert(!ts_env_up(&c->env) && !c->env.ops->create(&c->env, &c->env.prod) &&
		  !c->env.ops->start(&c->env, &c->env.prod), "cluster: %s", ts_error_message());
	c->conninfo = xstrfmt("host=127.0.0.1 port=%d dbname=postgres user=%s", c->env.prod.port, TS_DB_USER);
	{
		char *sql = xstrfmt("CREATE DATABASE %s", dbname);

		th_sql(c->conninfo, sql);
		free(sql);
	}
	free(c->conninfo);
	c->conninfo = xstrfmt("host=127.0.0.1 port=%d dbname=%s user=%s", c->env.prod.port, dbname, TS_DB_USER);
}

void th_cluster_stop(struct th_cluster *c)
{
	ts_env_down(&c->env);
	ts_env_release(&c->env);
	ts_config_free(&c->cfg);
	th_rmtree(c->dir);
	free(c->dir);
	free(c->conninfo);
}

void th_sql(const char *conninfo, const char *sql)
{
	PGconn *conn = ts_pg_connect(conninfo, "the test cluster");

	cr_assert(conn, "%s", ts_error_message());
	cr_assert(!ts_pg_exec(conn, sql), "%s: %s", sql, ts_error_message());
	PQfinish(conn);
}

char *th_value(const char *conninfo, const char *sql)
{
	PGconn *conn = ts_pg_connect(conninfo, "the test cluster");
	PGresult *res;
	char *v;

	cr_assert(conn, "%s", ts_error_message());
	res = PQexec(conn, sql);
	cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s: %s", sql, PQerrorMessage(conn));
	v = xstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	PQfinish(conn);
	return v;
}

json_t *th_latest_report(const char *workdir)
{
	char *p = xstrfmt("%s/reports/latest/report.json", workdir);
	json_error_t e;
	json_t *o = json_load_file(p, 0, &e);

	cr_assert(o, "no report at %s: %s", p, e.text);
	free(p);
	return o;
}

int th_kept_port(const char *workdir, const char *side)
{
	char *p = xstrfmt("%s/env.json", workdir);
	json_t *o = json_load_file(p, 0, NULL);
	int port = (int)json_integer_value(json_object_get(json_object_get(o, side), "port"));

	cr_assert(port > 0, "no port of the %s side in %s", side, p);
	json_decref(o);
	free(p);
	return port;
}

void th_assert_nothing_left(const char *workdir)
{
	static const char *const made[] = { "prod", "dev", "scratch", "snapshots", "env.json", "pool",
					     "vm", "prod.dump", "dev.dump", NULL };
	struct ts_home home = { .workdir = workdir };
	char *outside = ts_home_outside(&home, "/var/tmp");
	struct strvec names = STRVEC_INIT;
	struct strbuf sb = STRBUF_INIT, loops = STRBUF_INIT;
	char *img = path_join(workdir, "pool.img");

	{
		/* where pg_upgrade ran (dev_stack): its sockets and scripts */
		char *upgrade = ts_home_outside(&home, "/tmp");

		cr_assert(!is_dir(upgrade), "%s is left", upgrade);
		free(upgrade);
	}

	for (size_t i = 0; made[i]; i++) {
		char *p = path_join(workdir, made[i]);
		struct stat st;

		cr_assert(lstat(p, &st), "%s is left", p);
		free(p);
	}
	list_names(workdir, "", &names);
	for (size_t i = 0; i < names.nr; i++)
		cr_assert(strncmp(names.v[i], "ddt-", 4), "%s/%s is left", workdir, names.v[i]);
	strvec_clear(&names);
	cr_assert(!is_dir(outside), "%s is left", outside);
	{
		char *who = NULL;

		cr_assert_eq(postgres_procs(workdir, &who), 0, "a server or tool of %s still runs: %s", workdir, who);
		cr_assert_eq(postgres_procs(outside, &who), 0, "a server or tool of %s still runs: %s", outside, who);
	}
	strbuf_read_file(&sb, "/proc/self/mounts");
	cr_assert(!strstr(sb.buf, workdir), "a mount under %s is left:\n%s", workdir, sb.buf);
	cr_assert(!strstr(sb.buf, outside), "a mount under %s is left:\n%s", outside, sb.buf);
	if (is_file(img)) {
		/* no loop device still backs the pool's image */
		cr_assert_eq(th_run(&loops, "losetup", "-j", img, NULL), 0, "losetup failed");
		cr_assert(!loops.len, "loop device left on %s: %s", img, loops.buf);
	}
	strbuf_release(&sb);
	strbuf_release(&loops);
	free(img);
	free(outside);
}

int th_tree_contains(const char *root, const char *needle)
{
	return th_run(NULL, "grep", "-rqs", needle, root, NULL) == 0;
}

void th_bg_start(struct th_bg *b, const char *cwd, ...)
{
	const char *bin = getenv("TWINSTAGE_BIN"), *a;
	va_list ap;

	b->cp = (struct child_process)CHILD_PROCESS_INIT;
	strbuf_init(&b->said);
	strvec_push(&b->cp.args, bin ? bin : "build/asan/twinstage");
	va_start(ap, cwd);
	while ((a = va_arg(ap, const char *)))
		strvec_push(&b->cp.args, a);
	va_end(ap);
	b->cp.dir = cwd;
	b->cp.capture = &b->said;	/* its stdout and stderr, read below as they come */
	b->cp.no_stdin = 1;
	cr_assert(!start_command(&b->cp));
}

int th_bg_read(struct th_bg *b, int ms)
{
	struct pollfd p = { .fd = b->cp.capture_fd, .events = POLLIN };
	char buf[4096];
	ssize_t n;

	if (poll(&p, 1, ms) <= 0)
		return 0;
	if ((n = read(b->cp.capture_fd, buf, sizeof(buf))) <= 0)
		return 1;
	strbuf_add(&b->said, buf, (size_t)n);
	return 0;
}

void th_bg_wait_for_line(struct th_bg *b, const char *line)
{
	for (double t0 = now_ms(); !strstr(b->said.buf, line) && now_ms() - t0 < 120000;)
		if (th_bg_read(b, 1000))
			break;
	cr_assert(strstr(b->said.buf, line), "the run never said \"%s\":\n%s", line, b->said.buf);
}

int th_bg_finish(struct th_bg *b, struct strbuf *said)
{
	int status;

	while (!th_bg_read(b, 1000))
		;
	waitpid(b->cp.pid, &status, 0);
	close(b->cp.capture_fd);
	child_process_clear(&b->cp);
	if (said)
		strbuf_add(said, b->said.buf, b->said.len);
	strbuf_release(&b->said);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void th_bg_kill(struct th_bg *b)
{
	int status;

	kill(b->cp.pid, SIGKILL);
	waitpid(b->cp.pid, &status, 0);
	close(b->cp.capture_fd);
	child_process_clear(&b->cp);
	strbuf_release(&b->said);
}
