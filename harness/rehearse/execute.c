/*
 * execute.c: a scenario statement run as its annotations say, and its
 * outcome compared across the two sides. See execute.h.
 */
#include "rehearse/execute.h"
#include "core/error.h"
#include "core/strbuf.h"
#include "core/wrapper.h"
#include "pg/pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STMT_NAME "twinstage_stmt"
#define NULL_MARK "\x1e"	/* a NULL value in a row's key */
#define VALUE_SEP '\x1f'

static PGresult *prepare(PGconn *conn, const char *sql)
{
	char *q = xstrfmt("PREPARE " STMT_NAME " AS %s", sql);
	PGresult *res = PQexec(conn, q);

	free(q);
	return res;
}

/*
 * EXPLAIN EXECUTE of the generic plan, a NULL for each parameter, with
 * plan_cache_mode set for it (local: gone with the savepoint), in one
 * round trip.
 */
static PGresult *explain_generic(PGconn *conn, int nparams)
{
	struct strbuf sb = STRBUF_INIT;
	PGresult *res;

	strbuf_addstr(&sb, "SET LOCAL plan_cache_mode = force_generic_plan; EXPLAIN EXECUTE " STMT_NAME);
	for (int i = 0; i < nparams; i++)
		strbuf_addstr(&sb, i ? ", NULL" : "(NULL");
	if (nparams)
		strbuf_addch(&sb, ')');
	res = PQexec(conn, sb.buf);
	strbuf_release(&sb);
	return res;
}

int ts_execute(PGconn *conn, const char *sql, int prepares, int nparams, const char *params, PGresult **res)
{
	if (!prepares && !params) {
		*res = PQexec(conn, sql);
		return 0;
	}
	*res = prepare(conn, sql);
	if (PQresultStatus(*res) != PGRES_COMMAND_OK)
		return 0;
	PQclear(*res);
	if (prepares) {
		*res = explain_generic(conn, nparams);
	} else {
		char *q = xstrfmt("EXECUTE " STMT_NAME "(%s)", params);

		*res = PQexec(conn, q);
		free(q);
	}
	return 1;
}

int ts_execute_end(PGconn *conn, const char *savepoint, int undo, int prepared)
{
	char *q = xstrfmt("%s SAVEPOINT %s%s", undo ? "ROLLBACK TO" : "RELEASE", savepoint,
			  prepared ? "; DEALLOCATE " STMT_NAME : "");
	int r = ts_pg_exec(conn, q);

	free(q);
	return r;
}

/* ---- roles ---- */

static int set_config(PGconn *conn, const char *name, const char *value)
{
	const char *vals[] = { name, value };
	PGresult *res = PQexecParams(conn, "SELECT set_config($1, $2, false)", 2, NULL, vals, NULL, NULL, 0);
	int r = PQresultStatus(res) == PGRES_TUPLES_OK ? 0 : -1;

	if (r) {
		char *e = ts_pg_result_error(res);

		ts_error_set(TS_EXIT_ENV, "could not set %s: %s", name, e);
		free(e);
	}
	PQclear(res);
	return r;
}

static int restore_settings(PGconn *conn, struct ts_role_state *s)
{
	int r = 0;

	for (size_t i = s->names.nr; i-- > 0 && !r;)
		r = set_config(conn, s->names.v[i], s->saved.v[i]);
	strvec_clear(&s->names);
	strvec_clear(&s->saved);
	return r;
}

/* The role's own settings, as a login to this database would get them; the database's last. */
static int apply_settings(PGconn *conn, struct ts_role_state *s, const char *role)
{
	const char *vals[] = { role };
	PGresult *res = PQexecParams(conn,
		"SELECT split_part(c, '=', 1), substr(c, strpos(c, '=') + 1),"
		"       coalesce(current_setting(split_part(c, '=', 1), true), '')"
		" FROM pg_db_role_setting s, unnest(s.setconfig) WITH ORDINALITY AS u(c, o)"
		" WHERE s.setrole = (SELECT oid FROM pg_roles WHERE rolname = $1)"
		"   AND s.setdatabase IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()))"
		" ORDER BY s.setdatabase, u.o", 1, NULL, vals, NULL, NULL, 0);
	int r = 0;

	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		char *e = ts_pg_result_error(res);

		ts_error_set(TS_EXIT_ENV, "could not read the settings of role %s: %s", role, e);
		free(e);
		PQclear(res);
		return -1;
	}
	for (int i = 0; i < PQntuples(res) && !r; i++) {
		if (strvec_find(&s->names, PQgetvalue(res, i, 0)) < 0) {
			strvec_push(&s->names, PQgetvalue(res, i, 0));
			strvec_push(&s->saved, PQgetvalue(res, i, 2));
		}
		r = set_config(conn, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1));
	}
	PQclear(res);
	return r;
}

static int role_exists(PGconn *conn, const char *role, int *exists)
{
	const char *vals[] = { role };
	PGresult *res = PQexecParams(conn, "SELECT 1 FROM pg_roles WHERE rolname = $1", 1, NULL, vals, NULL,
				     NULL, 0);
	int r = PQresultStatus(res) == PGRES_TUPLES_OK ? 0 : -1;

	*exists = !r && PQntuples(res) > 0;
	if (r)
		ts_error_set(TS_EXIT_ENV, "could not look up role %s", role);
	PQclear(res);
	return r;
}

int ts_role_switch(PGconn *conn, struct ts_role_state *s, const char *role)
{
	int exists = 0;
	char *q, *id;
	int r;

	if (role && strvec_find(&s->missing, role) >= 0)
		role = NULL;
	if ((!role && !s->role) || (role && s->role && !strcmp(role, s->role)))
		return 0;
	if (restore_settings(conn, s))
		return -1;
	free(s->role);
	s->role = NULL;
	if (role && role_exists(conn, role, &exists))
		return -1;
	if (role && !exists)
		strvec_push(&s->missing, role);
	if (!role || !exists)
		return ts_pg_exec(conn, "RESET ROLE");
	if (!(id = ts_pg_ident(conn, role)))
		return -1;
	q = xstrfmt("SET ROLE %s", id);
	free(id);
	r = ts_pg_exec(conn, q);
	free(q);
	if (!r)
		s->role = xstrdup(role);
	return r || apply_settings(conn, s, role) ? -1 : 0;
}

void ts_role_state_ended(struct ts_role_state *s)
{
	free(s->role);
	s->role = NULL;
	strvec_clear(&s->names);
	strvec_clear(&s->saved);
}

void ts_role_state_free(struct ts_role_state *s)
{
	ts_role_state_ended(s);
	strvec_clear(&s->missing);
}

/* ---- outcomes ---- */

void ts_outcome_read(const PGresult *res, struct ts_outcome *o)
{
	ExecStatusType s = PQresultStatus(res);
	struct strbuf sb = STRBUF_INIT;

	memset(o, 0, sizeof(*o));
	o->ok = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK || s == PGRES_EMPTY_QUERY;
	if (!o->ok) {
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

		snprintf(o->sqlstate, sizeof(o->sqlstate), "%s", state ? state : "?????");
		o->error = ts_pg_result_error(res);
		return;
	}
	o->returns_rows = s == PGRES_TUPLES_OK;
	for (int i = 0; i < PQnfields(res); i++)
		strvec_push(&o->cols, PQfname(res, i));
	for (int i = 0; o->returns_rows && i < PQntuples(res); i++) {
		strbuf_reset(&sb);
		for (int k = 0; k < PQnfields(res); k++) {
			if (k)
				strbuf_addch(&sb, VALUE_SEP);
			strbuf_addstr(&sb, PQgetisnull(res, i, k) ? NULL_MARK : PQgetvalue(res, i, k));
		}
		strvec_push(&o->rows, sb.buf);
	}
	strbuf_release(&sb);
	o->count = o->returns_rows ? PQntuples(res) : *PQcmdTuples((PGresult *)res) ? atol(PQcmdTuples((PGresult *)res)) : 0;
}

void ts_outcome_free(struct ts_outcome *o)
{
	free(o->error);
	strvec_clear(&o->cols);
	strvec_clear(&o->rows);
	memset(o, 0, sizeof(*o));
}

/* "(1, acme, NULL)", at most about 120 characters; "(none)" past the last row. */
static char *row_text(const struct strvec *rows, size_t i)
{
	struct strbuf sb = STRBUF_INIT;

	if (i >= rows->nr)
		return xstrdup("(no such row)");
	strbuf_addch(&sb, '(');
	for (const char *p = rows->v[i]; *p && sb.len < 120; p++) {
		if (*p == VALUE_SEP)
			strbuf_addstr(&sb, ", ");
		else if (*p == NULL_MARK[0])
			strbuf_addstr(&sb, "NULL");
		else
			strbuf_addch(&sb, *p);
	}
	strbuf_addstr(&sb, sb.len >= 120 ? "...)" : ")");
	return strbuf_detach(&sb);
}

static char *outcome_text(const struct ts_outcome *o)
{
	if (!o->ok)
		return xstrfmt("error %s", o->error ? o->error : o->sqlstate);
	return o->returns_rows ? xstrfmt("%ld row%s", o->count, o->count == 1 ? "" : "s") :
				 xstrfmt("ok, %ld row%s affected", o->count, o->count == 1 ? "" : "s");
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void sorted(const struct strvec *in, struct strvec *out)
{
	for (size_t i = 0; i < in->nr; i++)
		strvec_push(out, in->v[i]);
	if (out->nr > 1)
		qsort(out->v, out->nr, sizeof(*out->v), cmp_str);
}

static char *joined(const struct strvec *v)
{
	struct strbuf sb = STRBUF_INIT;

	for (size_t i = 0; i < v->nr; i++)
		strbuf_addf(&sb, "%s%s", i ? ", " : "", v->v[i]);
	return strbuf_detach(&sb);
}

int ts_outcome_same(const struct ts_outcome *p, const struct ts_outcome *d, int ordered, int shape_only,
		    char **why)
{
	struct strvec ps = STRVEC_INIT, ds = STRVEC_INIT;
	const struct strvec *pr = &p->rows, *dr = &d->rows;
	int same = 1;
	size_t i;

	if (p->ok != d->ok || (!p->ok && strcmp(p->sqlstate, d->sqlstate))) {
		if (why) {
			char *a = outcome_text(p), *b = outcome_text(d);

			*why = xstrfmt("production clone: %s; dev side: %s", a, b);
			free(a);
			free(b);
		}
		return 0;
	}
	if (!p->ok)
		return 1;
	for (i = 0; i < p->cols.nr || i < d->cols.nr; i++)
		if (i >= p->cols.nr || i >= d->cols.nr || strcmp(p->cols.v[i], d->cols.v[i]))
			break;
	if (i < p->cols.nr || i < d->cols.nr) {
		if (why) {
			char *a = joined(&p->cols), *b = joined(&d->cols);

			*why = xstrfmt("other columns: production clone (%s), dev side (%s)", a, b);
			free(a);
			free(b);
		}
		return 0;
	}
	if (p->count != d->count || shape_only) {
		same = p->count == d->count;
		if (!same && why)
			*why = xstrfmt("production clone: %ld row%s; dev side: %ld", p->count, p->count == 1 ? "" : "s",
				       d->count);
		if (same || !p->returns_rows)
			return same;
	}
	if (!ordered) {
		sorted(pr, &ps);
		sorted(dr, &ds);
		pr = &ps;
		dr = &ds;
	}
	for (i = 0; i < pr->nr || i < dr->nr; i++)
		if (i >= pr->nr || i >= dr->nr || strcmp(pr->v[i], dr->v[i]))
			break;
	if (i < pr->nr || i < dr->nr) {
		if (why) {
			char *a = row_text(pr, i), *b = row_text(dr, i), *prev = same ? NULL : *why;

			*why = xstrfmt("%s%sfirst differing row%s: production clone %s, dev side %s",
				       prev ? prev : "", prev ? "; " : "",
				       ordered || (pr->nr <= 1 && dr->nr <= 1) ? "" : " (sorted)", a, b);
			free(prev);
			free(a);
			free(b);
		}
		same = 0;
	}
	strvec_clear(&ps);
	strvec_clear(&ds);
	return same;
}

int ts_outcome_alike(const struct ts_outcome *a, const struct ts_outcome *b, int ordered)
{
	return ts_outcome_same(a, b, ordered, 0, NULL);
}
