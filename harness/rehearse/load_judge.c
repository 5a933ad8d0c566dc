/*
 * load_judge.c: what the load saw, judged once it stopped: failures of the
 * live versions while migrating, stalls (who waited on which migration
 * statement, directly or queued behind it), lock queues, latency before,
 * during and after, and the timeline. See load.h for what each means.
 */
#include "config/config.h"
#include "core/strbuf.h"
#include "core/util.h"
#include "core/wrapper.h"
#include "rehearse/load_judge.h"
#include "rehearse/load_impl.h"
#include "rehearse/scenario.h"
#include "rehearse/scenario_run.h"
#include "report/report.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

/* ---- judging what was seen ---- */

/* A statement of the migration, with when it ran. */
struct mstmt {
	const struct ts_report_migration *m;
	const struct ts_report_stmt *s;
};

struct judge {
	struct ts_load *l;
	struct mstmt *ms;
	size_t n_ms;
	double mig_t0, mig_t1;
};

/* Which migration statement a wait at ts on `relation` is owed to. */
static const struct mstmt *owed_to(const struct judge *j, double ts, const char *relation)
{
	const struct mstmt *best = NULL;

	/* the latest statement before ts that took a blocking lock on that table ... */
	for (size_t i = 0; relation && i < j->n_ms; i++) {
		json_t *lk;
		size_t k;

		if (j->ms[i].s->at > ts)
			break;
		json_array_foreach(json_object_get(j->ms[i].s->facts, "locks"), k, lk)
			if (json_is_true(json_object_get(lk, "blocking")) &&
			    !strcmp(ts_json_str(lk, "relation"), relation))
				best = &j->ms[i];
	}
	if (best)
		return best;
	/* ... or the one running then */
	for (size_t i = 0; i < j->n_ms; i++)
		if (j->ms[i].s->at <= ts)
			best = &j->ms[i];
	return best;
}

static struct client *client_of(struct ts_load *l, int pid)
{
	for (size_t i = 0; i < l->n_clients; i++)
		if (l->clients[i].pid == pid)
			return &l->clients[i];
	return NULL;
}

/* The client's statement running at ts (or the last one before it), or NULL. */
static const struct rec *rec_at(const struct client *c, double ts, int running_only)
{
	size_t lo = 0, hi = c ? c->n : 0;
	const struct rec *best;

	/* a client appends in start order: the last record that started by ts */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (c->recs[mid].t0 <= ts)
			lo = mid + 1;
		else
			hi = mid;
	}
	best = lo ? &c->recs[lo - 1] : NULL;
	if (best && running_only && best->t1 < ts)
		return NULL;
	return best;
}

/* The scenario statement a record ran. */
static const struct ts_scenario_stmt *rec_stmt(const struct client *c, const struct rec *r)
{
	return &c->app->sc[r->sc].stmts[r->st];
}

static const char *rec_file(const struct client *c, const struct rec *r)
{
	return c->app->sc[r->sc].file;
}

/* "02_report.sql:4 \"slow report\"" */
static char *rec_where(const struct client *c, const struct rec *r)
{
	return xstrfmt("%s:%d \"%s\"", rec_file(c, r), rec_stmt(c, r)->line, rec_stmt(c, r)->name);
}

/* An application statement that waited on the migration. */
struct episode {
	int pid;
	double start, end;	/* its wait, as the sampler saw it (or the client timed it) */
	double ms;
	const struct mstmt *owed;
	const struct client *c;
	const struct rec *r;
	char *query;		/* for [load] command */
};

/* pids that wait on the migration in one sample (the rows [a, b)), directly or behind others. */
static int waits_on(const struct srow *rows, size_t a, size_t b, int pid, int target, int depth)
{
	for (size_t i = a; i < b; i++) {
		if (rows[i].pid != pid)
			continue;
		for (size_t k = 0; k < rows[i].nb; k++)
			if (rows[i].blockers[k] == target ||
			    (depth < 8 && rows[i].blockers[k] != pid &&
			     waits_on(rows, a, b, rows[i].blockers[k], target, depth + 1)))
				return 1;
	}
	return 0;
}

static json_t *window_stats(struct ts_load *l, double from, double to, int (*in)(const struct rec *, double, double))
{
	double *lat = NULL;
	size_t n = 0, alloc = 0;
	json_t *o;

	for (size_t i = 0; i < l->n_clients; i++)
		for (size_t k = 0; k < l->clients[i].n; k++) {
			const struct rec *r = &l->clients[i].recs[k];

			if (!in(r, from, to))
				continue;
			if (n == alloc) {
				alloc = alloc ? 2 * alloc : 1024;
				lat = xrealloc(lat, alloc * sizeof(*lat));
			}
			lat[n++] = r->t1 - r->t0;
		}
	o = json_pack("{s:I, s:f}", "statements", (json_int_t)n,
		      "per_s", to > from ? (double)n * 1000.0 / (to - from) : 0.0);
	if (n) {
		sort_doubles(lat, n);
		json_object_set_new(o, "p50_ms", json_real(lat[(n - 1) / 2]));
		json_object_set_new(o, "p99_ms", json_real(lat[(size_t)ceil(0.99 * (double)n) - 1]));
		json_object_set_new(o, "max_ms", json_real(lat[n - 1]));
	}
	free(lat);
	return o;
}

static int in_before(const struct rec *r, double a, double b) { return r->t1 < b && r->t0 >= a; }
static int in_during(const struct rec *r, double a, double b) { return r->t1 >= a && r->t0 <= b; }
static int in_after(const struct rec *r, double a, double b) { return r->t0 > a && r->t0 <= b; }

static char *mstmt_where(const struct mstmt *m)
{
	return m ? xstrfmt("%s:%d", m->m->file, m->s->line) : xstrdup("?");
}

/* The application statements that waited on the migration, from the samples. */
static size_t find_episodes(struct judge *j, struct episode **out)
{
	struct ts_load *l = j->l;
	struct episode *e = NULL;
	size_t n = 0;

	for (size_t a = 0, b; a < l->n_rows; a = b) {
		for (b = a; b < l->n_rows && l->rows[b].ts == l->rows[a].ts; b++)
			;
		for (size_t i = a; i < b; i++) {
			const struct srow *row = &l->rows[i];
			double start = row->ts - row->wait_ms;
			struct client *c;
			const struct rec *r;
			size_t k;

			if (row->pid == l->mig_pid || !row->nb ||
			    !waits_on(l->rows, a, b, row->pid, l->mig_pid, 0))
				continue;
			c = client_of(l, row->pid);
			r = c ? rec_at(c, row->ts, 1) : NULL;
			for (k = 0; k < n; k++)
				if (e[k].pid == row->pid &&
				    (r ? e[k].r == r : fabs(e[k].start - start) < 2.0))
					break;
			if (k == n) {
				e = xrealloc(e, (n + 1) * sizeof(*e));
				memset(&e[n], 0, sizeof(*e));
				e[n].pid = row->pid;
				e[n].start = start;
				e[n].c = c;
				e[n].r = r;
				e[n].owed = owed_to(j, row->ts, row->relation);
				e[n].query = xstrdup(row->query);
				n++;
			}
			e[k].end = row->ts;
			e[k].ms = r ? r->t1 - r->t0 : row->wait_ms;
			if (r) {
				e[k].start = r->t0;
				e[k].end = r->t1;
			}
		}
	}
	*out = e;
	return n;
}

static json_t *episode_json(const struct episode *e, double t0, double max_stall_ms)
{
	json_t *o = json_object();
	char *where = mstmt_where(e->owed);

	json_object_set_new(o, "ms", json_real(e->ms));
	json_object_set_new(o, "start_ms", json_real(e->start - t0));
	json_object_set_new(o, "end_ms", json_real(e->end - t0));
	json_object_set_new(o, "migration", json_string(where));
	json_object_set_new(o, "sql", json_string(e->owed ? e->owed->s->sql : ""));
	if (e->r) {
		json_object_set_new(o, "app", json_string(e->c->app->app->name));
		json_object_set_new(o, "app_file", json_string(rec_file(e->c, e->r)));
		json_object_set_new(o, "app_line", json_integer(rec_stmt(e->c, e->r)->line));
		json_object_set_new(o, "name", json_string(rec_stmt(e->c, e->r)->name));
	} else {
		json_object_set_new(o, "app", json_string("[load] command"));
		json_object_set_new(o, "name", json_string(e->query ? e->query : ""));
	}
	json_object_set_new(o, "over_gate", json_boolean(max_stall_ms > 0 && e->ms > max_stall_ms));
	free(where);
	return o;
}

/* Per migration statement: the longest wait owed to it, and how many. */
static json_t *stalls_json(struct judge *j, struct episode *e, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < j->n_ms; i++) {
		const struct episode *worst = NULL;
		size_t waits = 0;
		json_t *o;

		for (size_t k = 0; k < n; k++)
			if (e[k].owed == &j->ms[i]) {
				waits++;
				if (!worst || e[k].ms > worst->ms)
					worst = &e[k];
			}
		if (!worst)
			continue;
		o = episode_json(worst, j->l->t0, j->l->cfg->max_stall_ms);
		json_object_set_new(o, "waits", json_integer((json_int_t)waits));
		json_array_append_new(a, o);
	}
	return a;
}

/*
 * The migration waited for a lock behind an application session while
 * others queued behind it: one entry per migration statement that did.
 */
static json_t *lock_queues_json(struct judge *j, struct episode *e, size_t n)
{
	struct ts_load *l = j->l;
	json_t *a = json_array();

	for (size_t i = 0; i < j->n_ms; i++) {
		const struct mstmt *m = &j->ms[i];
		double waited = 0, first = 0, last = 0, max_q = 0;
		char *behind = NULL;
		size_t queued = 0;
		struct tally { int pid, seen; double ts; } *tally = NULL;
		size_t n_tally = 0;
		const struct tally *who = NULL;

		for (size_t r = 0; r < l->n_rows; r++) {
			const struct srow *row = &l->rows[r];

			if (row->pid != l->mig_pid || !row->nb || row->ts < m->s->at ||
			    row->ts > m->s->at + m->s->ms + 1)
				continue;
			if (!first)
				first = row->ts;
			last = row->ts;
			if (row->wait_ms > waited)
				waited = row->wait_ms;
			for (size_t k = 0; k < row->nb; k++) {
				size_t t;

				for (t = 0; t < n_tally && tally[t].pid != row->blockers[k]; t++)
					;
				if (t == n_tally) {
					tally = xrealloc(tally, ++n_tally * sizeof(*tally));
					tally[t].pid = row->blockers[k];
					tally[t].seen = 0;
				}
				tally[t].seen++;
				tally[t].ts = row->ts;
			}
		}
		/* behind whom: the session that blocked it in the most samples */
		for (size_t t = 0; t < n_tally; t++)
			if (!who || tally[t].seen > who->seen)
				who = &tally[t];
		if (who) {
			struct client *c = client_of(l, who->pid);
			const struct rec *rc = c ? rec_at(c, who->ts, 0) : NULL;

			if (rc) {
				char *where = rec_where(c, rc);

				behind = xstrfmt("%s's transaction (at %s)", c->app->app->name, where);
				free(where);
			} else {
				const struct srow *br = NULL;

				for (size_t q = 0; q < l->n_rows; q++)
					if (l->rows[q].ts == who->ts && l->rows[q].pid == who->pid)
						br = &l->rows[q];
				behind = br ? xstrfmt("session %d (%s: %s)", who->pid, br->state, br->query)
					    : xstrfmt("session %d", who->pid);
			}
		}
		free(tally);
		if (!behind)
			continue;
		for (size_t k = 0; k < n; k++)
			if (e[k].owed == m && e[k].end >= first - waited && e[k].start <= last) {
				queued++;
				if (e[k].ms > max_q)
					max_q = e[k].ms;
			}
		{
			char *where = mstmt_where(m);

			json_array_append_new(a, json_pack("{s:s, s:s, s:f, s:s, s:I, s:f}", "migration", where,
							   "sql", m->s->sql, "waited_ms", waited, "behind", behind,
							   "queued", (json_int_t)queued, "max_queued_ms", max_q));
			free(where);
		}
		free(behind);
	}
	return a;
}

/* The picture's data: statements, latency per time bucket, waits per client. */
static json_t *timeline_json(struct judge *j, struct episode *e, size_t n)
{
	struct ts_load *l = j->l;
	double span = l->stopped_at - l->t0, width = span / 300 > 10 ? span / 300 : 10;
	size_t nb = (size_t)(span / width) + 1;
	double *max = xcalloc(nb, sizeof(*max));
	size_t *count = xcalloc(nb, sizeof(*count)), *errors = xcalloc(nb, sizeof(*errors));
	json_t *t = json_object(), *a = json_array(), *lat = json_array(), *waits = json_array();

	json_object_set_new(t, "span_ms", json_real(span));
	json_object_set_new(t, "migration_ms", json_pack("[f, f]", j->mig_t0 - l->t0, j->mig_t1 - l->t0));
	json_object_set_new(t, "lanes", json_integer((json_int_t)(l->n_clients ? l->n_clients : 1)));
	for (size_t i = 0; i < j->n_ms; i++) {
		char *where = mstmt_where(&j->ms[i]);

		json_array_append_new(a, json_pack("[f, f, s, s]", j->ms[i].s->at - l->t0,
						   j->ms[i].s->at - l->t0 + j->ms[i].s->ms, where,
						   j->ms[i].s->sql));
		free(where);
	}
	json_object_set_new(t, "statements", a);
	for (size_t i = 0; i < l->n_clients; i++)
		for (size_t k = 0; k < l->clients[i].n; k++) {
			const struct rec *r = &l->clients[i].recs[k];
			size_t b = (size_t)((r->t0 - l->t0) / width);

			if (b >= nb)
				continue;
			if (r->t1 - r->t0 > max[b])
				max[b] = r->t1 - r->t0;
			count[b]++;
			errors[b] += !r->ok;
		}
	for (size_t b = 0; b < nb; b++)
		if (count[b])
			json_array_append_new(lat, json_pack("[f, f, I, I]", (double)b * width, max[b],
							     (json_int_t)count[b], (json_int_t)errors[b]));
	json_object_set_new(t, "latency", lat);
	for (size_t k = 0; k < n; k++)	/* a command's sessions share one lane */
		json_array_append_new(waits, json_pack("[I, f, f]", (json_int_t)(e[k].c ? e[k].c - l->clients : 0),
						       e[k].start - l->t0, e[k].end - l->t0));
	json_object_set_new(t, "waits", waits);
	free(max);
	free(count);
	free(errors);
	return t;
}

/* One check per replayed version: each statement, and whether it failed while migrating. */
static void record_checks(struct judge *j, json_t *errors)
{
	struct ts_load *l = j->l;

	for (size_t a = 0; a < l->n_apps; a++) {
		const struct app_load *al = &l->apps[a];
		struct ts_report_check *chk =
			ts_report_check_add(j->l->rep, al->app->name, "dev", TS_CHECK_DURING, 1);

		chk->ran = 1;
		chk->ms = l->stopped_at - l->t0;
		chk->phase = j->l->phase ? xstrdup(j->l->phase) : NULL;
		for (size_t f = 0; f < al->n; f++)
			for (size_t s = 0; s < al->sc[f].n; s++) {
				const struct ts_scenario_stmt *st = &al->sc[f].stmts[s];
				struct ts_report_case *k;
				const struct rec *bad = NULL;
				size_t runs = 0, failed = 0;
				int before = 0;

				for (size_t i = 0; i < l->n_clients; i++) {
					const struct client *c = &l->clients[i];

					if (c->app != al)
						continue;
					for (size_t q = 0; q < c->n; q++) {
						const struct rec *r = &c->recs[q];

						if (r->sc != f || r->st != s)
							continue;
						if (r->t0 < j->mig_t0) {
							before |= !r->ok;
							continue;
						}
						runs++;
						if (!r->ok && !failed++)
							bad = r;
					}
				}
				/* failing under load alone says nothing of the migration (a note says so) */
				if (before)
					continue;
				k = ts_report_case_add(chk);
				k->file = xstrdup(al->sc[f].file);
				k->name = xstrdup(st->name);
				k->line = st->line;
				k->sql = ts_oneline(st->sql);
				k->expected = ts_scenario_expect_text(st);
				if (!bad) {
					k->pass = 1;
					k->got = xstrfmt("%zu run%s, none failed", runs, runs == 1 ? "" : "s");
					continue;
				}
				{
					const struct mstmt *m = owed_to(j, bad->t0, NULL);
					char *where = mstmt_where(m);
					int during = bad->t0 <= j->mig_t1 && m;

					k->got = xstrfmt("%s in %zu of %zu runs, first %.0f ms after the migration started%s%s",
							 bad->got, failed, runs, bad->t0 - j->mig_t0,
							 during ? ", while " : "", during ? where : "");
					json_array_append_new(errors, json_pack("{s:s, s:s, s:i, s:s, s:s, s:f, s:I, s:I, s:s}",
						"app", al->app->name, "file", al->sc[f].file, "line", st->line,
						"name", st->name, "got", bad->got, "at_ms", bad->t0 - j->mig_t0,
						"failed", (json_int_t)failed, "runs", (json_int_t)runs,
						"migration", during ? where : ""));
					free(where);
					chk->failed++;
				}
			}
	}
}

static void note_errors_before(struct judge *j)
{
	struct ts_load *l = j->l;

	for (size_t i = 0; i < l->n_clients; i++) {
		const struct client *c = &l->clients[i];

		for (size_t q = 0; q < c->n; q++)
			if (!c->recs[q].ok && c->recs[q].t1 < j->mig_t0) {
				char *name = rec_where(c, &c->recs[q]);

				ts_report_note(j->l->rep,
					       "load: %s %s failed before the migration started (%s): under load alone, whatever the migration does, so it was not judged while migrating; a scenario replayed on several clients must not depend on running alone",
					       c->app->app->name, name, c->recs[q].got);
				free(name);
				return;
			}
	}
}

void ts_load_finish(struct ts_load *l, size_t first, double mig_t0, double mig_t1)
{
	struct judge j = { .l = l, .mig_t0 = mig_t0, .mig_t1 = mig_t1 };
	struct episode *e = NULL;
	size_t n_e;
	json_t *entry, *apps = json_array(), *errors = json_array(), *stalls, *worst = NULL;

	ts_load_stop(l);
	for (size_t i = first; i < l->rep->n_migrations; i++)
		for (size_t k = 0; k < l->rep->migrations[i].n_stmts; k++) {
			j.ms = xrealloc(j.ms, (j.n_ms + 1) * sizeof(*j.ms));
			j.ms[j.n_ms].m = &l->rep->migrations[i];
			j.ms[j.n_ms++].s = &l->rep->migrations[i].stmts[k];
		}
	n_e = find_episodes(&j, &e);
	for (size_t i = 0; i < l->n_apps; i++)
		json_array_append_new(apps, json_string(l->apps[i].app->name));
	entry = json_pack("{s:o, s:o, s:s, s:I, s:i, s:I, s:f, s:f, s:f}",
			  "phase", l->phase ? json_string(l->phase) : json_null(), "apps", apps,
			  "mode", l->command ? "command" : "scenarios", "clients", (json_int_t)l->n_clients,
			  "sample_ms", l->sample_ms, "samples", (json_int_t)l->n_samples,
			  "migration_ms", mig_t1 - mig_t0, "before_ms", mig_t0 - l->t0,
			  "after_ms", l->stopped_at - mig_t1);
	if (l->command) {
		json_object_set_new(entry, "command", json_string(l->cfg->load_command));
		if (l->exited) {
			int code = WIFEXITED(l->status) ? WEXITSTATUS(l->status) : 128 + WTERMSIG(l->status);
			char *out = ts_tail_lines(l->log, 10);

			if (code)
				json_array_append_new(errors, json_pack("{s:s, s:s, s:f}", "app", "[load] command",
									"got", out ? out : "", "at_ms",
									l->stopped_at - mig_t0));
			ts_report_note(l->rep, "load: the command ended by itself (exit %d) %.0f ms %s the migration started; its log is %s",
				       code, fabs(l->stopped_at - mig_t0), l->stopped_at < mig_t0 ? "before" : "after", l->log);
			free(out);
		}
	} else {
		json_object_set_new(entry, "before", window_stats(l, l->t0, mig_t0, in_before));
		json_object_set_new(entry, "during", window_stats(l, mig_t0, mig_t1, in_during));
		json_object_set_new(entry, "after", window_stats(l, mig_t1, l->stopped_at, in_after));
		record_checks(&j, errors);
		note_errors_before(&j);
		for (size_t i = 0; i < l->n_clients; i++)
			if (l->clients[i].lost)
				ts_report_note(l->rep, "load: client %zu stopped early: %s", i + 1, l->clients[i].lost);
	}
	json_object_set_new(entry, "errors", errors);
	stalls = stalls_json(&j, e, n_e);
	{
		json_t *v;
		size_t i;

		json_array_foreach(stalls, i, v)
			if (!worst || json_number_value(json_object_get(v, "ms")) >
					      json_number_value(json_object_get(worst, "ms")))
				worst = v;
	}
	json_object_set(entry, "stall", worst ? worst : json_null());
	json_object_set_new(entry, "stalls", stalls);
	json_object_set_new(entry, "lock_queues", lock_queues_json(&j, e, n_e));
	json_object_set_new(entry, "timeline", timeline_json(&j, e, n_e));
	if (!l->rep->load)
		l->rep->load = json_array();
	json_array_append_new(l->rep->load, entry);
	for (size_t i = 0; i < n_e; i++)
		free(e[i].query);
	free(e);
	free(j.ms);
	ts_load_free(l);
}
