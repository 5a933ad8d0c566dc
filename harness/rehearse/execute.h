/*
 * execute: one scenario statement run the way its annotations say, on one
 * side, and what came back kept to be compared with the other side.
 *
 *	-- @role app                      SET ROLE app, with app's own settings
 *	-- @params '42', NULL             PREPARE, then EXECUTE with these
 *	-- @expect prepares               PREPARE, then EXPLAIN EXECUTE of the
 *	                                  generic plan (plan_cache_mode =
 *	                                  force_generic_plan), NULL for each $n
 *
 * Anything else is sent as it is written. The caller holds the
 * transaction and the savepoint around it; ts_execute_end() releases or
 * rolls back the savepoint and drops the prepared statement (PREPARE is
 * not undone by a rollback), in one round trip.
 */
#ifndef TS_EXECUTE_H
#define TS_EXECUTE_H

#include <libpq-fe.h>
#include <stddef.h>

#include "core/strvec.h"

/* What a statement gave: an error, or its columns and rows. */
struct ts_outcome {
	int ok;
	char sqlstate[6];
	char *error;		/* the server's message, when !ok */
	struct strvec cols;	/* column names */
	struct strvec rows;	/* each row, its values joined (see ts_outcome_row_text) */
	long count;		/* rows returned, or affected when none are */
	int returns_rows;
};

/*
 * A session's role as statements switch it: the role set, and the
 * settings its ALTER ROLE ... SET gave, with the values to restore.
 */
struct ts_role_state {
	char *role;		/* NULL: the session's own (the superuser) */
	struct strvec names, saved;
	struct strvec missing;	/* roles asked for that the side does not have */
};

/*
 * Runs sql on conn in the caller's transaction: with params (one @params
 * line, or NULL), or when prepares as the EXPLAIN of its generic plan with
 * a NULL for each of its nparams parameters (the highest $n it uses, as
 * PREPARE infers them); *res gets the statement's result, for
 * ts_scenario_judge. 1 when a statement was prepared, 0 when not.
 */
int ts_execute(PGconn *conn, const char *sql, int prepares, int nparams, const char *params, PGresult **res);
/* Ends the savepoint (undo: ROLLBACK TO, else RELEASE) and drops what was prepared; -1 on failure. */
int ts_execute_end(PGconn *conn, const char *savepoint, int undo, int prepared);

/*
 * Switches conn to role (NULL: back to the session's own) before a
 * statement, outside its savepoint, with the role's settings from
 * pg_db_role_setting applied as a login would. A role the side lacks is
 * recorded in state->missing and the statement runs as the session's
 * own. -1 when the switch failed for another reason (error set).
 */
int ts_role_switch(PGconn *conn, struct ts_role_state *state, const char *role);
/* The transaction ended, and with it the role and its settings: the session's own again (missing stays). */
void ts_role_state_ended(struct ts_role_state *state);
void ts_role_state_free(struct ts_role_state *state);

/* Keeps what res says, rows and all. */
void ts_outcome_read(const PGresult *res, struct ts_outcome *out);
void ts_outcome_free(struct ts_outcome *o);

/*
 * Whether the dev side's outcome is the production clone's: the same
 * SQLSTATE, the same columns, the same rows (in order when ordered, as a
 * multiset otherwise; only their number when shape_only). 1 when the
 * same; 0 with *why saying the first difference, both sides shown.
 */
int ts_outcome_same(const struct ts_outcome *prod, const struct ts_outcome *dev, int ordered,
		    int shape_only, char **why);

/* Two outcomes of the same side alike (for the twice-run check of determinism). */
int ts_outcome_alike(const struct ts_outcome *a, const struct ts_outcome *b, int ordered);

#endif
