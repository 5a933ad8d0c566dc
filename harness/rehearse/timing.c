/*
 * timing.c: the timing gates scaled to an emulated guest's speed (timing.h).
 */
#include "rehearse/timing.h"
#include "core/error.h"
#include "core/strbuf.h"
#include "core/util.h"
#include "core/wrapper.h"
#include "pg/pg.h"
#include "rehearse/run.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>

/*
 * CPU-bound in the executor, no table, no I/O: the same work on any server
 * of any major. About 25 ms here and 400 ms in an emulated guest: the four
 * runs cost a rehearsal under 2 s (three times as many rows cost it 5 s
 * for the same factor within its rounding).
 */
#define PROBE_SQL "SELECT count(*) FROM generate_series(1, 100000) AS g WHERE g % 7 = 3"

/* The probe's median time on side, in ms, after a warm-up; -1 (error set) when it could not run. */
static double probe(struct ts_env *env, struct ts_side *side)
{
	PGconn *c = ts_env_connect(env, side, "postgres");
	double ms[3] = { 0 };
	int bad = !c || ts_pg_exec(c, PROBE_SQL);

	for (int i = 0; i < 3 && !bad; i++) {
		double t = now_ms();

		bad = ts_pg_exec(c, PROBE_SQL);
		ms[i] = now_ms() - t;
	}
	PQfinish(c);
	if (bad)
		return -1;
	sort_doubles(ms, 3);
	return ms[1];
}

/* *v scaled by factor (0 stays 0: no gate); its value before, for the report. */
static json_t *scale(double *v, double factor, int gating)
{
	json_t *o = json_pack("{s:f}", "set", *v);

	if (*v > 0)
		*v = gating ? round(*v * factor) : 0;
	json_object_set_new(o, "used", json_real(*v));
	return o;
}

/*
 * The probe's medians on the production clone and on this machine (-1: no
 * server here) into env->probe_ms, measured once for the environments:
 * kept in env.json when they are kept, so that a later step reads them.
 * 1: they are an earlier step's, 0: measured now, -1 (error set).
 */
static int measure(struct ts_env *env)
{
	double guest, host = -1;

	if (env->probe_ms[0] > 0)
		return 1;
	if ((guest = probe(env, &env->prod)) < 0)
		return ts_error_prefix("the speed probe on the production clone");
	switch (ts_env_scratch_up_here(env, &env->prod)) {
	case -1:
		return ts_error_prefix("the speed probe on this machine");
	case 1:
		if ((host = probe(env, &env->scratch)) < 0)
			return ts_error_prefix("the speed probe on this machine");
	}
	env->probe_ms[0] = guest;
	env->probe_ms[1] = host;
	return is_file(env->state_path) && ts_env_save(env) ? -1 : 0;
}

int ts_run_timing(struct ts_run *run)
{
	struct ts_env *env = &run->env;
	struct ts_config *cfg = &run->cfg;
	double guest, host, factor = 1, lock = cfg->max_lock_ms, stall = cfg->max_stall_ms;
	double st = cfg->statement_timeout_ms, mt = cfg->migration_timeout_ms;
	const char *why, *when;
	int gating, earlier;
	char *reason;

	json_decref(run->rep.timing);
	run->rep.timing = NULL;
	if (!env->emulated)
		return 0;
	if ((earlier = measure(env)) < 0)
		return -1;
	guest = env->probe_ms[0];
	host = env->probe_ms[1];
	when = earlier ? " (measured by an earlier step on these guests)" : "";
	gating = host > 0;
	if (gating)
		factor = fmax(1.0, round(guest / fmax(host, 0.1) * 10) / 10);
	run->rep.timing = json_pack("{s:b, s:s, s:f, s:o?, s:f, s:b, s:{s:o, s:o, s:o, s:o}}",
				    "emulated", 1, "probe", PROBE_SQL, "guest_ms", guest, "host_ms",
				    gating ? json_real(host) : NULL, "factor", factor, "gating", gating,
				    "gates", "max_lock_ms", scale(&lock, factor, gating), "max_stall_ms",
				    scale(&stall, factor, gating), "statement_timeout_ms", scale(&st, factor, 1),
				    "migration_timeout_ms", scale(&mt, factor, 1));
	why = env->emulated_why && *env->emulated_why ? env->emulated_why : "KVM is not used";
	reason = gating ? xstrfmt("the guests run under software emulation; %s. A fixed probe took %.0f ms in a guest "
				  "and %.0f ms on this machine%s: the timing gates are %.1fx what the configuration says "
				  "(max_lock_ms %.0f, max_stall_ms %.0f)", why, guest, host, when, factor, lock, stall) :
			  xstrfmt("the guests run under software emulation; %s. No server of this machine ran the speed "
				  "probe to compare with (its PostgreSQL is not the guests' major, or ddt_server = guest)%s: "
				  "lock and stall times are reported, not gated", why, when);
	json_object_set_new(run->rep.timing, "reason", json_string(reason));
	json_object_set_new(run->rep.timing, "measured_earlier", json_boolean(earlier));
	run->slowness = factor;
	cfg->max_lock_ms = lock;
	cfg->max_stall_ms = stall;
	cfg->statement_timeout_ms = (int)st;
	cfg->migration_timeout_ms = (int)mt;
	run->rep.max_lock_ms = lock;
	run->rep.max_stall_ms = stall;
	ts_run_say(run, "timing: %s", reason);
	free(reason);
	return 0;
}
