/*
 * ddt.c: dump → restore into a fresh cluster → dump again → identical?
 */
#include "rehearse/ddt.h"
#include "core/error.h"
#include "core/strbuf.h"
#include "core/util.h"
#include "core/wrapper.h"
#include "env/tool.h"
#include "pg/equal.h"
#include "pg/pg.h"

/* Parallel jobs for pg_dump and pg_restore: the machines this runs on have two cores or more. */
#define DDT_JOBS "2"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct ddt {
	struct ts_env *env;
	struct ts_side *side;
	json_t *res;
	int verbose;
	double t0;
};

static void step(struct ddt *d, const char *name, double t0)
{
	double ms = now_ms() - t0;

	json_object_set_new(json_object_get(d->res, "steps"), name, json_real(ms));
	if (d->verbose)
		fprintf(stderr, "    %s: %.0f ms\n", name, ms);
}

static void fail(struct ddt *d, const char *object, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void fail(struct ddt *d, const char *object, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	json_object_set_new(d->res, "status", json_string("failed"));
	json_object_set_new(d->res, "object", json_string(object));
	json_object_set_new(d->res, "failure", json_string(msg ? msg : object));
	free(msg);
}

static void excerpt(struct ddt *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void excerpt(struct ddt *d, const char *fmt, ...)
{
	va_list ap;
	char *line;

	va_start(ap, fmt);
	if (vasprintf(&line, fmt, ap) >= 0) {
		json_array_append_new(json_object_get(d->res, "excerpt"), json_string(line));
		free(line);
	}
	va_end(ap);
}

static void tool_for(struct ts_env *env, struct ts_side *side, struct child_process *cp,
		     const char *tool)
{
	char *db = ts_pg_dbname_arg(env->cfg->dbname);

	ts_env_side_tool(env, side, cp, tool);
	ts_env_child_env(env, side, cp);
	strvec_pushf(&cp->args, "--dbname=%s", db);
	free(db);
}

/* "pg_restore: from TOC entry 218; 1259 16468 TABLE owned app_owner" → "TABLE owned". */
static char *toc_object(const char *line)
{
	const char *p = strstr(line, "from TOC entry ");
	const char *end;
	int skip = 0;

	p = p ? strchr(p, ';') : NULL;
	if (!p)
		return NULL;
	/* "; <catalog oid> <object oid> " */
	for (p++; *p && skip < 3; p++)
		if (*p == ' ')
			skip++;
	end = p + strlen(p);
	while (end > p && (end[-1] == '\n' || end[-1] == '\r'))
		end--;
	/* the last word is the owner */
	{
		const char *sp = end;

		while (sp > p && sp[-1] != ' ')
			sp--;
		if (sp > p)
			end = sp - 1;
	}
	return xstrndup(p, (size_t)(end - p));
}

/*
 * Reads pg_restore's log: each error, the object it was restoring (from
 * the "from TOC entry" line before it) and the lines that explain it.
 */
static void restore_errors(struct ddt *d, const char *log)
{
	struct strbuf sb = STRBUF_INIT;
	char *object = NULL, *save = NULL;
	int errors = 0, in_error = 0, lines = 0;

	if (strbuf_read_file(&sb, log))
		return;
	for (char *l = strtok_r(sb.buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		char *e, *err = strstr(l, "pg_restore: error:");

		/* with -j, two workers' lines can run together: "...TOC entry 1; ...pg_restore: error: ..." */
		if (strstr(l, "from TOC entry ")) {
			free(object);
			object = toc_object(l);
			in_error = 0;
			if (!err)
				continue;
		}
		if (err) {
			e = strstr(err, "ERROR:");
			e = e ? e + 6 : err + 18;
			while (*e == ' ')
				e++;
			if (!errors++) {
				fail(d, object ? object : "the restore",
				     "the restore fails at %s: %s", object ? object : "an object", e);
				in_error = 1;
			} else {
				in_error = 0;
			}
		} else if (in_error && strncmp(l, "pg_restore:", 11)) {
			const char *t = l + strspn(l, " \t");

			/* the position markers of a query mean nothing without the query */
			if (lines < 4 && *t && *t != '^' && strncmp(t, "LINE ", 5) && strncmp(t, "QUERY:", 6)) {
				excerpt(d, "%s", t);
				lines++;
			}
		} else if (!strncmp(l, "pg_restore:", 11)) {
			in_error = 0;
		}
	}
	if (errors > 1) {
		const char *f = json_string_value(json_object_get(d->res, "failure"));
		char *more = xstrfmt("%s (and %d more error%s, all in %s)", f, errors - 1,
				     errors > 2 ? "s" : "", log);

		json_object_set_new(d->res, "failure", json_string(more));
		free(more);
	}
	if (!errors)
		fail(d, "the restore", "pg_restore failed; its output is in %s", log);
	free(object);
	strbuf_release(&sb);
}

/* The next line of a schema dump that is not psql's per-dump \restrict key. */
static const char *next_line(const char *p, const char **end)
{
	while (*p) {
		const char *e = strchr(p, '\n');

		e = e ? e : p + strlen(p);
		if (strncmp(p, "\\restrict ", 10) && strncmp(p, "\\unrestrict ", 12)) {
			*end = e;
			return p;
		}
		p = *e ? e + 1 : e;
	}
	*end = p;
	return NULL;
}

/* "-- Name: x; Type: INDEX; Schema: public; Owner: postgres" → "INDEX public.x". */
static char *dump_object(const char *start, const char *at)
{
	const char *p = at;

	while (p > start) {
		const char *bol = p;

		while (bol > start && bol[-1] != '\n')
			bol--;
		if (!strncmp(bol, "-- Name: ", 9)) {
			char name[256], type[128], schema[128] = "-";

			if (sscanf(bol, "-- Name: %255[^;]; Type: %127[^;]; Schema: %127[^;];", name, type,
				   schema) >= 2)
				return strcmp(schema, "-") ? xstrfmt("%s %s.%s", type, schema, name)
							   : xstrfmt("%s %s", type, name);
		}
		p = bol > start ? bol - 1 : start;
	}
	return xstrdup("the start of the schema");
}

static int compare_schema(struct ddt *d, const char *path_a, const char *path_b)
{
	struct strbuf a = STRBUF_INIT, b = STRBUF_INIT;
	const char *pa, *pb, *ea, *eb;
	int r = 0;

	if (strbuf_read_file(&a, path_a) || strbuf_read_file(&b, path_b)) {
		strbuf_release(&a);
		strbuf_release(&b);
		return -1;
	}
	pa = next_line(a.buf, &ea);
	pb = next_line(b.buf, &eb);
	while (pa && pb && ea - pa == eb - pb && !memcmp(pa, pb, (size_t)(ea - pa))) {
		pa = next_line(*ea ? ea + 1 : ea, &ea);
		pb = next_line(*eb ? eb + 1 : eb, &eb);
	}
	if (pa || pb) {
		char *object = pa ? dump_object(a.buf, pa) : dump_object(b.buf, pb);

		fail(d, object, "the schema restored differs at %s", object);
		excerpt(d, "%s side:  %.*s", d->side->name, pa ? (int)(ea - pa) : 11,
			pa ? pa : "(end of it)");
		excerpt(d, "restored: %.*s", pb ? (int)(eb - pb) : 11, pb ? pb : "(end of it)");
		free(object);
		r = 1;
	}
	strbuf_release(&a);
	strbuf_release(&b);
	return r;
}

static int compare_data(struct ddt *d)
{
	struct ts_env *env = d->env;
	PGconn *a = ts_env_connect(env, d->side, NULL);
	PGconn *b = a ? ts_env_connect(env, &env->scratch, NULL) : NULL;
	struct ts_rels ra = { 0 }, rb = { 0 };
	long long rows = 0;
	int r = -1;

	if (!b || ts_rels_read(a, NULL, &ra) || ts_rels_read(b, NULL, &rb))
		goto out;
	r = 0;
	for (size_t i = 0; i < ra.n && !r; i++) {
		const struct ts_rel *t = ts_rels_find(&rb, ra.v[i].shown);
		struct ts_cmp c;

		if (!t) {
			fail(d, ra.v[i].shown, "table %s is missing after the restore", ra.v[i].shown);
			r = 1;
			break;
		}
		if (ts_table_compare(a, &ra.v[i], b, t, NULL, NULL, 0, &c)) {
			r = -1;
			break;
		}
		rows += c.rows[0];
		if (c.at >= 0) {
			char *object = xstrfmt("TABLE DATA %s", ra.v[i].shown);

			fail(d, object, "the data of %s differs after the restore at %s (%lld rows, %lld restored)",
			     ra.v[i].shown, c.key, c.rows[0], c.rows[1]);
			excerpt(d, "%s side:  %s", d->side->name, c.row[0] ? c.row[0] : "(no row)");
			excerpt(d, "restored: %s", c.row[1] ? c.row[1] : "(no row)");
			free(object);
			r = 1;
		}
		ts_cmp_free(&c);
	}
	json_object_set_new(d->res, "tables", json_integer((json_int_t)ra.n));
	json_object_set_new(d->res, "rows", json_integer(rows));
out:
	ts_rels_free(&ra);
	ts_rels_free(&rb);
	PQfinish(a);
	PQfinish(b);
	return r;
}

/*
 * pg_restore of the dump in `dir` into the scratch server: -1 when it could
 * not run; else 0, and its errors (pg_restore goes on past them and exits
 * with 1) become the test's failure, *errors set.
 */
static int restore(struct ddt *d, const char *dir, int *errors)
{
	struct child_process cp = CHILD_PROCESS_INIT;
	char *name = xstrfmt("ddt-%s-restore.log", d->side->name);
	char *log = ts_tool_log(d->env, name);
	int s;

	tool_for(d->env, &d->env->scratch, &cp, "pg_restore");
	strvec_pushl(&cp.args, "--verbose", "--jobs=" DDT_JOBS, dir, NULL);
	cp.out_path = log;
	s = run_command(&cp);
	child_process_clear(&cp);
	*errors = s == 1;
	if (s > 1)
		ts_error_set(TS_EXIT_ENV, "pg_restore exited with %d; its output is in %s", s, log);
	else if (*errors)
		restore_errors(d, log);
	free(log);
	free(name);
	return s < 0 || s > 1 ? -1 : 0;
}

int ts_ddt_run(struct ts_env *env, struct ts_side *side, int verbose, json_t **out)
{
	struct ddt d = { env, side, NULL, verbose, now_ms() };
	struct child_process cp = CHILD_PROCESS_INIT, cq = CHILD_PROCESS_INIT;
	char *name = xstrfmt("ddt-%s", side->name);
	char *dir = path_join(env->cfg->workdir, name);
	char *dump_a = xstrfmt("%s.a.sql", dir), *dump_b = xstrfmt("%s.b.sql", dir);
	char *log = NULL, *what;
	double t;
	int r, s, errors = 0, cmp;

	d.res = json_pack("{s:s, s:s, s:s, s:[], s:{}}", "check", "ddt", "side", side->name,
			  "status", "passed", "excerpt", "steps");
	*out = NULL;
	rm_rf(dir);

	/* 1. dump in parallel, while the scratch server starts (initdb takes a second) */
	t = now_ms();
	tool_for(env, side, &cp, "pg_dump");
	strvec_pushl(&cp.args, "--format=directory", "--jobs=" DDT_JOBS, "--compress=0", "-f", dir, NULL);
	log = xstrfmt("%s-dump.log", name);
	r = ts_tool_start(env, &cp, log);
	free(log);
	log = NULL;
	if (!r) {
		s = ts_env_scratch_up(env, side);
		what = xstrfmt("could not dump the %s side", side->name);
		r = ts_tool_finish(&cp, TS_EXIT_ENV, what) || s ? -1 : 0;
		free(what);
	}
	if (!r) {
		/*
		 * production's roles (the production clone's), for the owners and
		 * grants production has: a role only a migration made is not
		 * among them, and its restore fails as a dump of the database
		 * would fail on another server
		 */
		struct child_process roles = CHILD_PROCESS_INIT;

		ts_env_child_env(env, &env->prod, &roles);
		r = ts_tool_copy_roles(env, &roles, env->cfg->dbname, &env->scratch, name);
		child_process_clear(&roles);
	}
	if (!r)
		r = ts_env_create_database(env, &env->scratch, 1);
	if (r)
		goto out;
	step(&d, "dump", t);

	/*
	 * 2. restore in parallel; the scratch server has wal_level = minimal,
	 * and pg_restore loads each table it just made in the transaction that
	 * empties it, so the loads write no WAL. (Restoring the indexes while
	 * the data is compared was measured: on two cores it is slower.)
	 */
	t = now_ms();
	r = restore(&d, dir, &errors);
	step(&d, "restore", t);
	if (r)
		goto out;
	if (errors)
		goto done;

	/* 3. the data of every table, in the same order on both */
	t = now_ms();
	cmp = compare_data(&d);
	step(&d, "compare the data", t);
	if (cmp < 0) {
		r = -1;
		goto out;
	}
	if (cmp)
		goto done;

	/* 4. both schemas as pg_dump writes them, at once */
	t = now_ms();
	tool_for(env, side, &cp, "pg_dump");
	strvec_pushl(&cp.args, "--schema-only", "-f", dump_a, NULL);
	tool_for(env, &env->scratch, &cq, "pg_dump");
	strvec_pushl(&cq.args, "--schema-only", "-f", dump_b, NULL);
	r = ts_tool_start(env, &cp, "ddt-schema-a.log");
	if (!r) {
		s = ts_tool_start(env, &cq, "ddt-schema-b.log");
		r = ts_tool_finish(&cp, TS_EXIT_ENV, "could not dump the schema") ? -1 : 0;
		if (!s && ts_tool_finish(&cq, TS_EXIT_ENV, "could not dump the restored schema"))
			r = -1;
		if (s)
			r = -1;
	}
	if (!r)
		r = compare_schema(&d, dump_a, dump_b) < 0 ? -1 : 0;
	step(&d, "compare the schemas", t);
	if (r)
		goto out;
done:
	json_object_set_new(d.res, "ms", json_real(now_ms() - d.t0));
	*out = d.res;
	d.res = NULL;
out:
	json_decref(d.res);
	/* the dump folder can be as large as the data: never kept */
	rm_rf(dir);
	unlink(dump_a);
	unlink(dump_b);
	free(dump_a);
	free(dump_b);
	free(dir);
	free(name);
	free(log);
	return r;
}
