/*
 * load_impl: what the load's two halves share: load.c (load.h) starts the
 * clients, the sampler or the command, which record what each saw;
 * load_judge.c (load_judge.h) stops them, reads those records and writes
 * the verdict into the report. Only those two files include this.
 */
#ifndef TS_LOAD_IMPL_H
#define TS_LOAD_IMPL_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stddef.h>

#include "core/run_command.h"

struct ts_app;
struct ts_config;
struct ts_env;
struct ts_report;
struct ts_scenario;

/* One statement a client ran. */
struct rec {
	double t0, t1;
	unsigned sc, st;	/* scenario file and statement of the client's version */
	int ok;
	char *got;		/* what happened, when !ok */
};

struct app_load {
	const struct ts_app *app;
	struct ts_scenario *sc;
	size_t n;
	/*
	 * Production's mix, when its statements carry @calls: each one's
	 * file and statement, and the running sum of the calls, for a pick
	 * weighted by them. n_mix is 0 when none does.
	 */
	unsigned *mix_sc, *mix_st;
	double *mix_sum;
	size_t n_mix;
};

struct client {
	struct ts_load *l;
	size_t idx;
	const struct app_load *app;
	PGconn *conn;
	PGcancel *cancel;
	int pid;
	struct rec *recs;
	size_t n, alloc;
	char *lost;		/* why it stopped before it was told to */
	unsigned seed;		/* rand_r's, for production's mix */
	pthread_t th;
	int started;
};

/* A session seen waiting for a lock, or (in the same sample) one it waited on. */
struct srow {
	double ts;
	int pid;
	int *blockers;		/* pg_blocking_pids(); NULL when it did not wait */
	size_t nb;
	char *relation;		/* "schema.table" it waited for, or NULL */
	double wait_ms;		/* since its statement started */
	char *state;
	char *query;
};

struct ts_load {
	/* the ts_load_ctx it was started with (load.h) */
	struct ts_env *env;
	struct ts_report *rep;
	const char *phase;
	int quiet;
	const struct ts_config *cfg;	/* env->cfg: [load] */
	struct app_load *apps;
	size_t n_apps;
	struct client *clients;
	size_t n_clients;
	int mig_pid;
	int sample_ms;
	int stop;		/* read and written with __atomic */
	double t0, stopped_at;

	PGconn *sconn;		/* the sampler's */
	pthread_t sth;
	int sampling;
	struct srow *rows;
	size_t n_rows, alloc_rows, n_samples;

	struct child_process cp;	/* [load] command */
	int command;
	char *log;
	int exited;		/* the command ended by itself: its status */
	int status;
};

/* Lets the load run after_ms more, then stops every thread and the command. */
void ts_load_stop(struct ts_load *l);
/* Frees l and everything it holds (its connections closed). */
void ts_load_free(struct ts_load *l);

#endif
