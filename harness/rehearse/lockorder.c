/*
 * lockorder.c: the order in which a migration's transaction and an
 * application's transaction take their locks, compared. See lockorder.h.
 */
#include "rehearse/lockorder.h"
#include "core/strbuf.h"
#include "core/strvec.h"
#include "core/wrapper.h"
#include "report/report.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* PostgreSQL's table-level lock modes, weakest first, and what each conflicts with. */
static const char *const modes[] = { "AccessShareLock", "RowShareLock", "RowExclusiveLock",
				     "ShareUpdateExclusiveLock", "ShareLock", "ShareRowExclusiveLock",
				     "ExclusiveLock", "AccessExclusiveLock" };
static const unsigned conflicts[] = { 0x80, 0xc0, 0xf0, 0xf8, 0xec, 0xfc, 0xfe, 0xff };

static int mode_index(const char *m)
{
	for (int i = 0; i < 8; i++)
		if (!strcmp(modes[i], m))
			return i;
	return -1;
}

int ts_locks_conflict(const char *a, const char *b)
{
	int i = mode_index(a), j = mode_index(b);

	return i >= 0 && j >= 0 && (conflicts[i] >> j & 1);
}

/* One lock a transaction took: on which table, in which mode, at which step, by which statement. */
struct take {
	const char *rel, *mode;
	size_t step;
	int line;
	const char *file;
};

struct order {
	struct take *v;
	size_t n;
};

static void take_add(struct order *o, const char *rel, const char *mode, size_t step, const char *file,
		     int line)
{
	o->v = xrealloc(o->v, (o->n + 1) * sizeof(*o->v));
	o->v[o->n++] = (struct take){ rel, mode, step, line, file };
}

/* The index of app's latest check of the matrix (not the way back, not the load), or -1. */
static long last_check(const struct ts_report *rep, const char *app)
{
	long found = -1;

	for (size_t i = 0; i < rep->n_checks; i++) {
		const struct ts_report_check *c = &rep->checks[i];

		if (!strcmp(c->app, app) && ts_check_in_matrix(c) && c->ran && c->n_cases)
			found = (long)i;
	}
	return found;
}

/* The check of app "while migrating" in this phase, made when there is none yet. */
static struct ts_report_check *during_check(struct ts_report *rep, const char *phase, const char *app)
{
	for (size_t i = 0; i < rep->n_checks; i++) {
		struct ts_report_check *c = &rep->checks[i];

		if (c->role == TS_CHECK_DURING && !strcmp(c->app, app) && ts_report_same_phase(c->phase, phase))
			return c;
	}
	{
		struct ts_report_check *c = ts_report_check_add(rep, app, "dev", TS_CHECK_DURING, 1);

		c->ran = 1;
		c->phase = phase ? xstrdup(phase) : NULL;
		return c;
	}
}

/* The deadlocks one migration (its transaction's order m) can have with one scenario file's (a). */
static void compare(struct ts_report *rep, const char *phase, const char *app, const struct order *m,
		    const struct order *a, const struct ts_report_case *cases)
{
	/* the migration takes x then y (a later statement); the application y then x */
	for (size_t i = 0; i < m->n; i++)
		for (size_t j = 0; j < m->n; j++) {
			const struct take *mx = &m->v[i], *my = &m->v[j], *ay, *ax;

			if (my->step <= mx->step || !strcmp(mx->rel, my->rel))
				continue;
			/* the application's lock on y that the migration's y waits for, and its x after it */
			for (size_t p = 0; p < a->n; p++) {
				struct ts_report_check *chk;
				struct ts_report_case *k;

				ay = &a->v[p];
				if (strcmp(ay->rel, my->rel) || !ts_locks_conflict(ay->mode, my->mode))
					continue;
				ax = NULL;
				for (size_t q = 0; q < a->n && !ax; q++)
					if (a->v[q].step > ay->step && !strcmp(a->v[q].rel, mx->rel) &&
					    ts_locks_conflict(a->v[q].mode, mx->mode))
						ax = &a->v[q];
				if (!ax)
					continue;
				chk = during_check(rep, phase, app);
				k = ts_report_case_add(chk);
				k->file = xstrdup(ax->file);
				k->line = ax->line;
				k->name = xstrfmt("lock order against %s:%d", my->file, my->line);
				k->sql = xstrdup(cases[ax->step].sql ? cases[ax->step].sql : "");
				k->expected = xstrdup("no deadlock with the migration");
				k->got = xstrfmt("a deadlock waiting to happen: %s:%d locks %s (%s) then %s:%d locks %s (%s); "
						 "%s %s:%d locks %s (%s) then %s:%d locks %s (%s): each would wait for the other, "
						 "and PostgreSQL kills one (40P01)",
						 mx->file, mx->line, mx->rel, mx->mode, my->file, my->line, my->rel, my->mode,
						 app, ay->file, ay->line, ay->rel, ay->mode, ax->file, ax->line, ax->rel, ax->mode);
				k->pass = 0;
				chk->failed++;
				return;	/* one pair of this file against this migration says it */
			}
		}
}

void ts_lock_order_judge(struct ts_report *rep, const char *phase, size_t first, const struct strvec *live)
{
	for (size_t mi = first; mi < rep->n_migrations; mi++) {
		const struct ts_report_migration *rm = &rep->migrations[mi];
		struct order m = { 0 };

		/* outside a transaction, each statement lets its locks go before the next one takes its own */
		if (!rm->transactional || strcmp(rm->status ? rm->status : "", "applied"))
			continue;
		for (size_t s = 0; s < rm->n_stmts; s++) {
			json_t *l;
			size_t k;

			json_array_foreach(json_object_get(rm->stmts[s].facts, "locks"), k, l)
				take_add(&m, json_string_value(json_object_get(l, "relation")),
					 json_string_value(json_object_get(l, "mode")), s, rm->file, rm->stmts[s].line);
		}
		for (size_t ai = 0; ai < live->nr && m.n > 1; ai++) {
			const char *app = live->v[ai];
			long at = last_check(rep, app);

			/* each scenario file is one transaction of the application */
			for (size_t from = 0; at >= 0 && from < rep->checks[at].n_cases;) {
				/* (taken again each time: a check added below moves the array) */
				const struct ts_report_check *c = &rep->checks[at];
				struct order a = { 0 };
				size_t to = from;

				while (to < c->n_cases && !strcmp(c->cases[to].file, c->cases[from].file))
					to++;
				for (size_t s = from; s < to; s++) {
					json_t *l;
					size_t k;

					json_array_foreach(c->cases[s].locks, k, l) {
						const char *v = json_string_value(l), *colon = strrchr(v, ':');

						if (colon)
							take_add(&a, v, colon + 1, s, c->cases[s].file, c->cases[s].line);
					}
				}
				/* the relation part of "schema.table:Mode" */
				for (size_t t = 0; t < a.n; t++)
					a.v[t].rel = xstrndup(a.v[t].rel, (size_t)(strrchr(a.v[t].rel, ':') - a.v[t].rel));
				/* steps index the check's cases; the sql of a case is cases[step] */
				compare(rep, phase, app, &m, &a, c->cases);
				for (size_t t = 0; t < a.n; t++)
					free((char *)a.v[t].rel);
				free(a.v);
				from = to;
			}
		}
		free(m.v);
	}
}
