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

#include <errno.h>
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

/* A table whose data the dump holds: its TOC entry's file, and its name on the side dumped. */
struct dumped {
	int id;			/* <dir>/<id>.dat */
	char *shown;		/* schema.name */
	char *qualified;	/* quoted, for COPY */
};

/* A TABLE DATA entry of the dump's list: the table's OID on the side dumped, its file's number. */
struct entry {
	unsigned oid;
	int id;
};

static int by_oid(const void *a, const void *b)
{
	unsigned x = ((const struct entry *)a)->oid, y = ((const struct entry *)b)->oid;

	return x < y ? -1 : x > y;
}

/*
 * The tables whose data the dump holds (pg_restore -l: "ID; 0 OID TABLE
 * DATA ..."), named by their OID in the side's catalog: the list's names
 * are not quoted. A table of the side the dump holds no data of is a
 * failure (*missing): nothing may be lost. NULL when the side's catalog
 * could not be read (error set).
 */
static struct dumped *dumped_tables(struct ddt *d, PGconn *a, const char *list, size_t *n, int *missing)
{
	PGresult *res = ts_pg_rows(a, "SELECT c.oid, format('%s.%s', n.nspname, c.relname),"
				      " format('%I.%I', n.nspname, c.relname)"
				      " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
				      " WHERE c.relkind = 'r' AND c.relpersistence <> 't'"
				      " AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
				      " AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'"
				      " AND NOT EXISTS (SELECT FROM pg_depend x WHERE x.classid = 'pg_class'::regclass"
				      " AND x.objid = c.oid AND x.deptype = 'e')"
				      " ORDER BY 2", "the tables of the side dumped");
	struct entry *e = NULL;
	struct dumped *v;
	size_t ne = 0, alloc = 0;
	int rows;

	*n = 0;
	*missing = 0;
	if (!res)
		return NULL;
	for (const char *l = list; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		int id, used = 0;
		unsigned cat, obj;

		if (sscanf(l, "%d; %u %u %n", &id, &cat, &obj, &used) == 3 && used &&
		    !strncmp(l + used, "TABLE DATA ", 11)) {
			if (ne == alloc) {
				alloc = alloc ? 2 * alloc : 64;
				e = xrealloc(e, alloc * sizeof(*e));
			}
			e[ne].oid = obj;
			e[ne++].id = id;
		}
	}
	qsort(e, ne, sizeof(*e), by_oid);
	rows = PQntuples(res);
	v = xcalloc((size_t)rows + 1, sizeof(*v));
	for (int i = 0; i < rows && !*missing; i++) {
		struct entry key = { (unsigned)strtoul(PQgetvalue(res, i, 0), NULL, 10), 0 };
		const struct entry *hit = ne ? bsearch(&key, e, ne, sizeof(*e), by_oid) : NULL;

		if (hit) {
			v[*n].id = hit->id;
			v[*n].shown = xstrdup(PQgetvalue(res, i, 1));
			v[*n].qualified = xstrdup(PQgetvalue(res, i, 2));
			(*n)++;
		} else {
			char *object = xstrfmt("TABLE DATA %s", PQgetvalue(res, i, 1));

			fail(d, object, "the dump holds no data of table %s", PQgetvalue(res, i, 1));
			free(object);
			*missing = 1;
		}
	}
	PQclear(res);
	free(e);
	return v;
}

/*
 * The session on the scratch server writes COPY as pg_dump's did on the
 * side: its settings (DateStyle, IntervalStyle, extra_float_digits as
 * pg_dump sets them; the side's time zone, encoding, money and bytea
 * output), and every scan from a table's first page.
 */
static int copy_like_pg_dump(PGconn *a, PGconn *b)
{
	PGresult *res = ts_pg_rows(a, "SELECT format('SET TimeZone = %L; SET client_encoding = %L; SET bytea_output = %L',"
				      " current_setting('TimeZone'), current_setting('server_encoding'),"
				      " current_setting('bytea_output')), format('SET lc_monetary = %L', current_setting('lc_monetary'))",
				      "the side's settings");
	int r;

	if (!res)
		return -1;
	r = ts_pg_exec(b, PQgetvalue(res, 0, 0)) ||
	    ts_pg_exec(b, "SET DateStyle = ISO; SET IntervalStyle = postgres; SET extra_float_digits = 3;"
			  " SET synchronize_seqscans = off") ? -1 : 0;
	/* a locale this machine lacks: money is then written in this machine's (a difference, if any, is shown) */
	if (!r && ts_pg_exec(b, PQgetvalue(res, 0, 1)))
		ts_error_clear();
	PQclear(res);
	return r;
}

/*
 * One table: the rows of its dump file (COPY text, as pg_dump wrote it)
 * against COPY of the restored table, row by row in the order both were
 * written (the restore loads each table with one COPY, in the dump's
 * order). 0 equal, 1 differs (failure set), -1 error.
 */
static int compare_table(struct ddt *d, PGconn *b, const char *dir, const struct dumped *t, long long *rows)
{
	char *path = xstrfmt("%s/%d.dat", dir, t->id), *sql, *lit, *line = NULL, *got = NULL;
	FILE *fp = fopen(path, "r");
	PGresult *res;
	size_t cap = 0;
	long long n = 0;
	int r = -1, more = 1;

	if (!fp) {
		ts_error_set(TS_EXIT_ENV, "could not read \"%s\": %s", path, strerror(errno));
		free(path);
		return -1;
	}
	/* the restored table's columns, as pg_dump lists them: stored ones, in order */
	lit = PQescapeLiteral(b, t->qualified, strlen(t->qualified));
	sql = xstrfmt("SELECT 'COPY %s (' || string_agg(quote_ident(attname), ', ' ORDER BY attnum) || ') TO STDOUT'"
		      " FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped"
		      " AND attgenerated = ''", t->qualified, lit ? lit : "NULL");
	PQfreemem(lit);
	res = ts_pg_rows(b, sql, "the restored table's columns");
	free(sql);
	if (!res)
		goto out;
	if (PQgetisnull(res, 0, 0)) {
		char *object = xstrfmt("TABLE %s", t->shown);

		PQclear(res);
		fail(d, object, "table %s is missing after the restore", t->shown);
		free(object);
		r = 1;
		goto out;
	}
	sql = xstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	res = PQexec(b, sql);
	free(sql);
	if (PQresultStatus(res) != PGRES_COPY_OUT) {
		char *e = ts_pg_result_error(res);

		ts_error_set(TS_EXIT_ENV, "could not read the restored table %s: %s", t->shown, e);
		free(e);
		PQclear(res);
		goto out;
	}
	PQclear(res);
	for (;;) {
		ssize_t len = more ? getline(&line, &cap, fp) : -1;
		int glen;

		if (len >= 0 && !strcmp(line, "\\.\n"))
			len = -1, more = 0;	/* the end of the table's rows in the file */
		PQfreemem(got);
		got = NULL;
		glen = PQgetCopyData(b, &got, 0);
		if (len < 0 && glen < 0)
			break;
		if (len < 0 || glen < 0 || (size_t)glen != (size_t)len || memcmp(line, got, (size_t)len)) {
			char *object = xstrfmt("TABLE DATA %s", t->shown);

			fail(d, object, "the data of %s differs after the restore at row %lld", t->shown, n + 1);
			excerpt(d, "dumped:   %.*s", len < 0 ? 11 : (int)len - 1, len < 0 ? "(no row)" : line);
			excerpt(d, "restored: %.*s", glen < 0 ? 11 : glen - 1, glen < 0 ? "(no row)" : got);
			free(object);
			r = 1;
			break;
		}
		n++;
	}
	if (r == 1) {	/* the rest of the restored rows, read to the end of the COPY */
		PQfreemem(got);
		got = NULL;
		while (PQgetCopyData(b, &got, 0) > 0)
			PQfreemem(got), got = NULL;
	} else {
		r = 0;
	}
	while ((res = PQgetResult(b)))
		PQclear(res);
	*rows += n;
out:
	PQfreemem(got);
	free(line);
	fclose(fp);
	free(path);
	return r;
}

/*
 * The data restored against the data dumped: each table's dump file read
 * once, streamed against the restored table; the side is not read again.
 */
static int compare_data(struct ddt *d, const char *dir, const char *list)
{
	struct ts_env *env = d->env;
	PGconn *a = ts_env_connect(env, d->side, NULL);
	PGconn *b = a ? ts_env_connect(env, &env->scratch, NULL) : NULL;
	struct dumped *t = NULL;
	size_t n = 0;
	long long rows = 0;
	int r = -1, missing = 0;

	if (!b || !(t = dumped_tables(d, a, list, &n, &missing)) || copy_like_pg_dump(a, b))
		goto out;
	PQfinish(a);
	a = NULL;
	r = missing;
	for (size_t i = 0; i < n && !r; i++)
		r = compare_table(d, b, dir, &t[i], &rows);
	json_object_set_new(d->res, "tables", json_integer((json_int_t)n));
	json_object_set_new(d->res, "rows", json_integer(rows));
out:
	for (size_t i = 0; t && i < n; i++) {
		free(t[i].shown);
		free(t[i].qualified);
	}
	free(t);
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

/* The dump's table of contents, as pg_restore -l lists it, in *list (and kept at path for -L). */
static int dump_list(struct ddt *d, const char *dir, const char *path, struct strbuf *list)
{
	struct child_process cp = CHILD_PROCESS_INIT;
	int r;

	ts_env_side_tool(d->env, d->side, &cp, "pg_restore");
	strvec_pushl(&cp.args, "--list", "-f", path, dir, NULL);
	r = ts_tool_run(d->env, &cp, "ddt-list.log", TS_EXIT_ENV, "could not list the dump");
	if (!r && strbuf_read_file(list, path) < 0)
		r = ts_error_set(TS_EXIT_ENV, "could not read \"%s\": %s", path, strerror(errno));
	return r;
}

/*
 * The list again at path, without the entries pg_dump --schema-only does
 * not write (the data; the refresh of materialized views; large objects),
 * so that pg_restore --schema-only -L gives what pg_dump --schema-only of
 * the side would have.
 */
static int schema_list(const char *path, const char *list)
{
	static const char *const data[] = { "TABLE DATA ", "SEQUENCE SET ", "MATERIALIZED VIEW DATA ", "BLOB",
					    "LARGE OBJECT", NULL };
	struct strbuf sb = STRBUF_INIT;
	int r;

	for (const char *l = list, *e; *l; l = *e ? e + 1 : e) {
		int id, used = 0, keep = 1;
		unsigned cat, obj;

		e = strchrnul(l, '\n');
		if (sscanf(l, "%d; %u %u %n", &id, &cat, &obj, &used) == 3 && used)
			for (size_t i = 0; data[i]; i++)
				keep &= strncmp(l + used, data[i], strlen(data[i])) != 0;
		if (keep)
			strbuf_addf(&sb, "%.*s\n", (int)(e - l), l);
	}
	r = write_file(path, sb.buf, sb.len);
	strbuf_release(&sb);
	return r;
}

int ts_ddt_run(struct ts_env *env, struct ts_side *side, int verbose, json_t **out)
{
	struct ddt d = { env, side, NULL, verbose, now_ms() };
	struct child_process cp = CHILD_PROCESS_INIT, cq = CHILD_PROCESS_INIT;
	char *name = xstrfmt("ddt-%s", side->name);
	char *dir = path_join(env->cfg->workdir, name);
	char *dump_a = xstrfmt("%s.a.sql", dir), *dump_b = xstrfmt("%s.b.sql", dir);
	char *list_path = xstrfmt("%s.list", dir), *log = NULL, *what;
	struct strbuf list = STRBUF_INIT;
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

	/* 3. the data of every table: the restored rows against the dump's own files */
	t = now_ms();
	if ((r = dump_list(&d, dir, list_path, &list)))
		goto out;
	cmp = compare_data(&d, dir, list.buf);
	step(&d, "compare the data", t);
	if (cmp < 0) {
		r = -1;
		goto out;
	}
	if (cmp)
		goto done;

	/*
	 * 4. both schemas as pg_dump writes them: the side's from the dump
	 * (pg_restore --schema-only of its list, without what pg_dump's own
	 * --schema-only leaves out), the restored one dumped meanwhile
	 */
	t = now_ms();
	tool_for(env, &env->scratch, &cq, "pg_dump");
	strvec_pushl(&cq.args, "--schema-only", "-f", dump_b, NULL);
	r = ts_tool_start(env, &cq, "ddt-schema-b.log");
	if (!r) {
		ts_env_side_tool(env, side, &cp, "pg_restore");
		strvec_pushl(&cp.args, "--schema-only", "-L", list_path, "-f", dump_a, dir, NULL);
		if (!(s = schema_list(list_path, list.buf)))
			s = ts_tool_run(env, &cp, "ddt-schema-a.log", TS_EXIT_ENV, "could not read the schema from the dump");
		else
			child_process_clear(&cp);
		r = ts_tool_finish(&cq, TS_EXIT_ENV, "could not dump the restored schema") || s ? -1 : 0;
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
	unlink(list_path);
	strbuf_release(&list);
	free(list_path);
	free(dump_a);
	free(dump_b);
	free(dir);
	free(name);
	free(log);
	return r;
}
