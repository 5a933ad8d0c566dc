/*
 * tool_log.c: the tool's statements as the dev side's log has them, made
 * into its migrations in the report. See tool_log.h.
 */
#include "rehearse/tool_log.h"
#include "core/error.h"
#include "core/strbuf.h"
#include "core/strvec.h"
#include "core/util.h"
#include "core/wrapper.h"
#include "migrate/lint.h"
#include "migrate/sql.h"
#include "migrate/tools.h"
#include "pg/statement_log.h"
#include "pg/trace.h"
#include "rehearse/run.h"
#include "rehearse/scenario.h"
#include "rehearse/tool_watch.h"

#include <pg_query.h>
#include <stdlib.h>
#include <string.h>

/* ---- what the log says, grouped into the tool's migrations ---- */

/* One statement the tool sent, as the log has it, and what twinstage makes of it. */
struct sent {
	struct ts_logged *e;
	json_t *node;		/* the parse tree of its first statement, or NULL */
	const char *kind;	/* "AlterTableStmt", ... or "" */
	int in_tx;		/* ran inside BEGIN ... COMMIT */
	double tx_end;		/* when its transaction ended (server clock), or its own end */
	int closes;		/* writes the tool's table: the end of a migration */
	char *closes_name;
	int shown;		/* part of what the report lists */
	char *fingerprint;	/* libpg_query's: the same statement with other values has the same */
	json_t *locks;		/* [{relation, mode, blocking, held_ms, over_gate}] */
	json_t *rewrites;
};

static const char *tx_kind(json_t *node)
{
	return json_string_value(json_object_get(json_object_get(node, "TransactionStmt"), "kind"));
}

/* Reads the tool's statements: parse trees, transactions, which close a migration and which show. */
static struct sent *read_sent(struct ts_run *run, struct ts_statement_log *log, size_t *n)
{
	struct sent *v = xcalloc(log->n + 1, sizeof(*v));
	const char *table = ts_tool_table(run->cfg.tool, run->cfg.tracking_table);

	for (size_t i = 0; i < log->n; i++) {
		struct sent *s = &v[i];
		struct ts_stmt *stmts = NULL;
		size_t k = 0;

		s->e = &log->v[i];
		s->kind = "";
		s->tx_end = s->e->end_ms;
		{
			PgQueryFingerprintResult fr = pg_query_fingerprint(s->e->sql);

			s->fingerprint = xstrdup(fr.error || !fr.fingerprint_str ? "" : fr.fingerprint_str);
			pg_query_free_fingerprint_result(fr);
		}
		/*
		 * The same statement with other values (a data migration's UPDATE
		 * per row) has the tree of the one before but for its constants,
		 * and what twinstage reads of it is its shape: parsed once.
		 */
		if (i && *s->fingerprint && !strcmp(s->fingerprint, v[i - 1].fingerprint) && v[i - 1].node &&
		    strcmp(v[i - 1].kind, "TransactionStmt")) {
			s->node = json_incref(v[i - 1].node);
			s->kind = xstrdup(v[i - 1].kind);
		} else if (!ts_stmts_parse("log", s->e->sql, 1, &stmts, &k) && k) {
			s->node = json_incref(stmts[0].node);
			s->kind = stmts[0].kind;
			stmts[0].kind = NULL;	/* kept: freed with the entry */
		}
		ts_error_clear();
		ts_stmts_free(stmts, k);
		if (!s->kind)
			s->kind = "";
		s->closes = ts_tool_closes(run->cfg.tool, run->cfg.tracking_table, s->node, &s->closes_name);
		if (!s->closes && table) {
			struct strvec names = STRVEC_INIT;

			ts_sql_names(s->node, &names);
			s->shown = !ts_tool_bookkeeping(run->cfg.tool, run->cfg.tracking_table, s->node, &names);
			strvec_clear(&names);
		} else if (!s->closes) {
			s->shown = 1;
		}
		/* reads and the session's own settings are not what a migration changes */
		if (!strcmp(s->kind, "SelectStmt") || !strcmp(s->kind, "VariableSetStmt") ||
		    !strcmp(s->kind, "VariableShowStmt") || !strcmp(s->kind, "TransactionStmt") ||
		    !strcmp(s->kind, "") || !strcmp(s->kind, "ExplainStmt"))
			s->shown = 0;
		s->locks = json_array();
		s->rewrites = json_array();
	}
	/*
	 * Sqitch keeps its registry in a session of its own (psql runs the
	 * scripts), with its search_path on the registry: all that session
	 * sends is bookkeeping.
	 */
	for (size_t i = 0; run->cfg.tool == TS_TOOL_SQITCH && i < log->n; i++)
		if (v[i].closes)
			for (size_t k = 0; k < log->n; k++)
				if (v[k].e->pid == v[i].e->pid)
					v[k].shown = 0;
	/* each session's transactions, from its BEGIN and COMMIT as logged */
	for (size_t i = 0; i < log->n; i++) {
		const char *k = tx_kind(v[i].node);
		int open = 0;

		if (!k || (strcmp(k, "TRANS_STMT_BEGIN") && strcmp(k, "TRANS_STMT_START")))
			continue;
		for (size_t j = i + 1; j < log->n; j++) {
			const char *e;

			if (v[j].e->pid != v[i].e->pid)
				continue;
			e = tx_kind(v[j].node);
			if (e && (!strcmp(e, "TRANS_STMT_COMMIT") || !strcmp(e, "TRANS_STMT_ROLLBACK"))) {
				for (size_t m = i + 1; m < j; m++)
					if (v[m].e->pid == v[i].e->pid) {
						v[m].in_tx = 1;
						v[m].tx_end = v[j].e->end_ms;
					}
				open = 0;
				break;
			}
			open = 1;
		}
		if (open)	/* never committed: it ends with the session, as far as the log knows */
			for (size_t m = i + 1; m < log->n; m++)
				if (v[m].e->pid == v[i].e->pid)
					v[m].in_tx = 1;
	}
	*n = log->n;
	return v;
}

static void sent_free(struct sent *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		json_decref(v[i].node);
		free((char *)(v[i].kind && *v[i].kind ? v[i].kind : NULL));
		free(v[i].closes_name);
		free(v[i].fingerprint);
		json_decref(v[i].locks);
		json_decref(v[i].rewrites);
	}
	free(v);
}

/* Whether a statement of this kind takes a relation lock of this mode (PostgreSQL's lock table). */
static int takes(const char *kind, const char *mode)
{
	static const struct { const char *mode, *kinds; } by[] = {
		{ "AccessExclusiveLock", " AlterTableStmt DropStmt RenameStmt TruncateStmt ReindexStmt ClusterStmt "
					 "VacuumStmt LockStmt RefreshMatViewStmt " },
		{ "ExclusiveLock", " RefreshMatViewStmt LockStmt " },
		{ "ShareRowExclusiveLock", " CreateTrigStmt AlterTableStmt LockStmt " },
		{ "ShareLock", " IndexStmt LockStmt " },
		{ "ShareUpdateExclusiveLock", " VacuumStmt IndexStmt AlterTableStmt CommentStmt LockStmt " },
		{ "RowExclusiveLock", " InsertStmt UpdateStmt DeleteStmt MergeStmt CopyStmt LockStmt " },
		{ "RowShareLock", " SelectStmt LockStmt " },
	};
	char *k = xstrfmt(" %s ", kind);
	int hit = !strcmp(mode, "AccessShareLock");	/* anything that reads takes it */

	for (size_t i = 0; i < sizeof(by) / sizeof(by[0]) && !hit; i++)
		hit = !strcmp(by[i].mode, mode) && strstr(by[i].kinds, k);
	free(k);
	return hit;
}

static int names_rel(const struct sent *s, const char *rel)
{
	struct strvec names = STRVEC_INIT;
	const char *dot = strrchr(rel, '.');
	int hit;

	ts_sql_names(s->node, &names);
	hit = strvec_find(&names, dot ? dot + 1 : rel) >= 0;
	strvec_clear(&names);
	return hit;
}

/*
 * The statement that took a lock first seen at `first` in session pid: a
 * lock is held to the end of the transaction, so it may have been taken
 * by any of the transaction's statements up to the one running then. The
 * earliest of those that names the table and takes that mode; else the
 * one running then.
 */
static struct sent *taker(struct sent *v, size_t n, int pid, const char *rel, const char *mode, double first)
{
	struct sent *now = NULL, *best = NULL;

	for (size_t i = 0; i < n; i++)
		if (v[i].e->pid == pid && v[i].e->end_ms - v[i].e->ms <= first + 1)
			now = &v[i];
	if (!now) {
		for (size_t i = 0; i < n && !now; i++)
			if (v[i].e->pid == pid)
				now = &v[i];
		return now;
	}
	if (!now->in_tx)
		return now;
	for (struct sent *p = now;; p--) {
		if (p->e->pid == pid) {
			if (!p->in_tx || p->tx_end != now->tx_end)
				break;
			if (p->shown && names_rel(p, rel) && takes(p->kind, mode))
				best = p;
		}
		if (p == v)
			break;
	}
	return best ? best : now;
}

/*
 * Each lock the sampler saw goes to the statement that took it, held from
 * that statement's start to the end of its transaction (or the last time
 * it was seen). Locks on tables the tool made, and on its own table, are
 * not findings.
 */
static void attribute_locks(struct ts_run *run, struct sent *v, size_t n, const struct ts_tool_watch *s,
			    json_t *before)
{
	for (size_t k = 0; k < s->n; k++) {
		const struct ts_seen_lock *l = &s->v[k];
		struct sent *at;
		double held, end;
		json_t *lock, *same = NULL, *x;
		size_t i;

		if (!json_object_get(before, l->rel) || !strcmp(l->rel, run->tracker.table))
			continue;
		if (!(at = taker(v, n, l->pid, l->rel, l->mode, l->first)))
			continue;
		/* a lock the tool's bookkeeping took is reported with the statement before it */
		for (size_t p = (size_t)(at - v) + 1; !at->shown && p-- > 0;)
			if (v[p].shown && v[p].e->pid == at->e->pid && v[p].in_tx && at->in_tx)
				at = &v[p];
		if (!at->shown)
			continue;
		/*
		 * Held to the end of its transaction; a statement on its own
		 * releases it when it ends, however often the same lock is seen
		 * again (the next row's UPDATE takes it anew).
		 */
		end = at->in_tx ? at->tx_end : at->e->end_ms;
		if (at->in_tx && l->last > end)
			end = l->last;
		held = end - (at->e->end_ms - at->e->ms);
		json_array_foreach(at->locks, i, x)
			if (!strcmp(json_string_value(json_object_get(x, "relation")), l->rel) &&
			    !strcmp(json_string_value(json_object_get(x, "mode")), l->mode))
				same = x;
		if (same) {
			if (held > json_number_value(json_object_get(same, "held_ms")))
				json_object_set_new(same, "held_ms", json_real(held));
			continue;
		}
		lock = json_pack("{s:s, s:s, s:b, s:f}", "relation", l->rel, "mode", l->mode, "blocking",
				 ts_lock_blocks(l->mode), "held_ms", held);
		json_object_set_new(lock, "over_gate", json_boolean(ts_lock_blocks(l->mode) && run->cfg.max_lock_ms > 0 &&
								    held > run->cfg.max_lock_ms));
		json_array_append_new(at->locks, lock);
	}
}

/* A table whose file changed was rewritten: by the last statement that locked it exclusively, or named it. */
static void attribute_rewrites(struct sent *v, size_t n, json_t *before, json_t *after)
{
	const char *table;
	json_t *f;

	json_object_foreach(before, table, f) {
		json_t *now = json_object_get(after, table), *l;
		const char *dot = strrchr(table, '.');
		struct sent *by = NULL;
		size_t k;

		if (!now || json_equal(now, f))
			continue;
		/* what the parse tree says rewrites it: a column's type changed, a CLUSTER, a VACUUM FULL ... */
		for (size_t i = 0; i < n; i++) {
			struct strvec acts = STRVEC_INIT, names = STRVEC_INIT;
			char *alter = xstrfmt("alter-column:%s:", dot ? dot + 1 : table);

			ts_sql_acts(v[i].node, &acts);
			ts_sql_names(v[i].node, &names);
			for (size_t a = 0; a < acts.nr; a++)
				if (!strncmp(acts.v[a], alter, strlen(alter)))
					by = &v[i];
			if ((!strcmp(v[i].kind, "ClusterStmt") || !strcmp(v[i].kind, "VacuumStmt") ||
			     !strcmp(v[i].kind, "TruncateStmt")) && strvec_find(&names, dot ? dot + 1 : table) >= 0)
				by = &v[i];
			free(alter);
			strvec_clear(&acts);
			strvec_clear(&names);
		}
		for (size_t i = 0; !by && i < n; i++) {
			json_array_foreach(v[i].locks, k, l)
				if (!strcmp(json_string_value(json_object_get(l, "relation")), table) &&
				    !strcmp(json_string_value(json_object_get(l, "mode")), "AccessExclusiveLock"))
					by = &v[i];
		}
		for (size_t i = 0; !by && i < n; i++) {
			struct strvec names = STRVEC_INIT;

			ts_sql_names(v[i].node, &names);
			if (v[i].shown && strvec_find(&names, dot ? dot + 1 : table) >= 0)
				by = &v[i];
			strvec_clear(&names);
		}
		if (by)
			json_array_append_new(by->rewrites, json_string(table));
	}
}

/* Whether g[i] repeats g[i - 1] with other values (folded into one line of the report). */
static int repeats(struct sent **g, size_t i)
{
	return i && *g[i]->fingerprint && !strcmp(g[i]->fingerprint, g[i - 1]->fingerprint) &&
	       g[i]->e->pid == g[i - 1]->e->pid;
}

/*
 * The lint's findings on a migration's statements, read as the log shows
 * they ran: one statement of each run of repeats (a data migration's
 * UPDATE per row is linted once, as it is shown once).
 */
static void lint_group(struct ts_run *run, const char *name, struct sent **g, size_t n, json_t **out)
{
	struct strbuf text = STRBUF_INIT;
	int *starts = xcalloc(n + 1, sizeof(*starts)), line = 1, in_tx = 0;
	size_t *at = xcalloc(n + 1, sizeof(*at)), m = 0, k;
	struct ts_stmt *stmts;

	for (size_t i = 0; i < n; i++) {
		out[i] = json_array();
		in_tx |= g[i]->in_tx;
		if (repeats(g, i))
			continue;
		at[m] = i;
		starts[m++] = line;
		strbuf_addstr(&text, g[i]->e->sql);
		strbuf_addstr(&text, ";\n");
		for (const char *p = g[i]->e->sql; *p; p++)
			line += *p == '\n';
		line++;
	}
	starts[m] = line;
	if (!ts_stmts_parse(name, text.buf ? text.buf : "", 1, &stmts, &k)) {
		struct ts_lint lint = { 0 };

		ts_lint_stmts(&lint, name, text.buf, 1, stmts, k, TS_FMT_NONE, !in_tx);
		for (size_t f = 0; f < lint.n; f++)
			for (size_t j = 0; j < m; j++)
				if (lint.v[f].stmt_line >= starts[j] && lint.v[f].stmt_line < starts[j + 1]) {
					json_t *js = ts_lint_finding_json(&lint.v[f]);

					/* the line is the statement's number in the migration */
					json_object_set_new(js, "line", json_integer((json_int_t)j + 1));
					json_array_append_new(out[at[j]], js);
				}
		ts_lint_free(&lint);
		ts_stmts_free(stmts, k);
	}
	ts_error_clear();
	(void)run;
	free(starts);
	free(at);
	strbuf_release(&text);
}

/* Folds b's locks into a's: each once, held as long as the longest. */
static void merge_locks(json_t *a, json_t *b)
{
	json_t *l, *m;
	size_t i, j;

	json_array_foreach(b, i, l) {
		json_t *same = NULL;

		json_array_foreach(a, j, m)
			if (json_equal(json_object_get(m, "relation"), json_object_get(l, "relation")) &&
			    json_equal(json_object_get(m, "mode"), json_object_get(l, "mode")))
				same = m;
		if (!same)
			json_array_append(a, l);
		else if (json_number_value(json_object_get(l, "held_ms")) > json_number_value(json_object_get(same, "held_ms")))
			json_object_set(same, "held_ms", json_object_get(l, "held_ms"));
	}
}

/*
 * One of the tool's migrations in the report: its statements, their facts.
 * A run of the same statement with other values (a data migration's
 * UPDATE per row: the same libpg_query fingerprint) is one line, with how
 * many times it ran.
 */
static struct ts_report_migration *report_group(struct ts_run *run, const char *name, struct sent **g, size_t n,
						double delta)
{
	struct ts_report_migration *rm = ts_report_migration_add(&run->rep, name);
	json_t **lint = xcalloc(n + 1, sizeof(*lint));
	double first = 0, last = 0;
	int number = 0;

	rm->version = xstrdup(name);
	rm->description = xstrdup(ts_tool_name(run->cfg.tool));
	rm->status = xstrdup("applied");
	rm->numbered = 1;
	rm->transactional = n > 0;
	if (run->phase)
		rm->phase = xstrdup(run->phase);
	lint_group(run, name, g, n, lint);
	for (size_t i = 0; i < n; i++) {
		struct ts_logged *e = g[i]->e;
		struct ts_report_stmt *rs;
		struct strvec names = STRVEC_INIT, acts = STRVEC_INIT;
		json_t *a = json_array(), *b = json_array();
		size_t same = i, k;
		double ms = 0, longest = 0;
		char *line;

		while (same + 1 < n && repeats(g, same + 1))
			same++;
		for (k = i; k <= same; k++) {
			ms += g[k]->e->ms;
			if (g[k]->e->ms > longest)
				longest = g[k]->e->ms;
			if (k > i)
				merge_locks(g[i]->locks, g[k]->locks);
		}
		line = ts_oneline(e->sql);
		rs = ts_report_stmt_add(rm, ++number, ms, line);
		free(line);
		for (k = i; k <= same; k++)
			rm->transactional &= g[k]->in_tx;
		if (!i || e->end_ms - e->ms < first)
			first = e->end_ms - e->ms;
		if (g[same]->e->end_ms > last)
			last = g[same]->e->end_ms;
		rs->at = e->end_ms - e->ms - delta;
		rs->facts = json_pack("{s:O, s:O, s:[], s:o}", "locks", g[i]->locks, "rewrites", g[i]->rewrites,
				      "scans", "lint", lint[i]);
		for (k = i + 1; k <= same; k++) {
			json_array_extend(json_object_get(rs->facts, "rewrites"), g[k]->rewrites);
			json_decref(lint[k]);
			lint[k] = NULL;
		}
		if (same > i)
			json_object_set_new(rs->facts, "repeated", json_pack("{s:I, s:f}", "times",
									     (json_int_t)(same - i + 1), "longest_ms", longest));
		ts_sql_names(g[i]->node, &names);
		for (k = 0; k < names.nr; k++)
			json_array_append_new(a, json_string(names.v[k]));
		ts_sql_acts(g[i]->node, &acts);
		for (k = 0; k < acts.nr; k++)
			json_array_append_new(b, json_string(acts.v[k]));
		json_object_set_new(rs->facts, "names", a);
		json_object_set_new(rs->facts, "acts", b);
		if (e->params)
			json_object_set_new(rs->facts, "params", json_string(e->params));
		strvec_clear(&names);
		strvec_clear(&acts);
		i = same;
	}
	rm->ms = n ? last - first : 0;
	free(lint);
	return rm;
}

/*
 * Cuts the statements into the tool's migrations at each write to its
 * table, names each (what the statement wrote, else the table's new rows
 * in order), and records them; what comes after the last one is the one
 * that failed (when the command did) or the tool's own work after its
 * migrations.
 */
static void report_groups(struct ts_run *run, struct sent *v, size_t n, const struct strvec *recorded,
			  int failed, const char *command, double delta, struct ts_report_migration **last)
{
	struct sent **g = xcalloc(n + 1, sizeof(*g));
	size_t ng = 0, named = 0;
	char *prev = NULL;

	*last = NULL;
	for (size_t i = 0; i < n; i++) {
		if (v[i].shown)
			g[ng++] = &v[i];
		if (v[i].closes) {
			char *name = v[i].closes_name ? xstrdup(v[i].closes_name) :
				     named < recorded->nr ? xstrdup(recorded->v[named]) :
				     xstrfmt("%s migration %zu", ts_tool_name(run->cfg.tool), named + 1);

			/* a deletion (Django's unapply, a revert) records nothing new: it is not a migration up */
			if (strcmp(v[i].kind, "DeleteStmt")) {
				named++;
				*last = report_group(run, name, g, ng, delta);
				free(prev);
				prev = name;
				ng = 0;
			} else {
				free(name);
			}
		}
	}
	{
		int has_table = ts_tool_table(run->cfg.tool, run->cfg.tracking_table) != NULL;

		/* what comes after the last write to its table (or all of it, with no table) */
		if (ng || failed || (!has_table && !*last)) {
			char *name = !has_table ? xstrdup(command) :
				     failed ? (prev ? xstrfmt("the migration after %s", prev) : xstrdup("its first migration")) :
				     xstrfmt("%s's own work after its migrations", ts_tool_name(run->cfg.tool));

			*last = report_group(run, name, g, ng, delta);
			free(name);
		}
	}
	free(prev);
	free(g);
}

void ts_tool_log_report(struct ts_run *run, struct ts_statement_log *log, const struct ts_tool_watch *w,
			json_t *files0, json_t *files1, const struct strvec *recorded, int failed,
			const char *command, double delta, struct ts_report_migration **last)
{
	size_t n = 0;
	struct sent *v = read_sent(run, log, &n);

	attribute_locks(run, v, n, w, files0);
	attribute_rewrites(v, n, files0, files1);
	report_groups(run, v, n, recorded, failed, command, delta, last);
	sent_free(v, n);
}
