/*
 * phase_plan.c: the [phase] sections of the configuration resolved against
 * the migrations folder, before anything is built (a phase naming a
 * version that does not exist fails in milliseconds). See phase_plan.h.
 */
#include "config/phase_plan.h"
#include "config/config.h"
#include "core/error.h"
#include "core/strbuf.h"
#include "core/wrapper.h"
#include "migrate/tracking.h"

#include <stdlib.h>
#include <string.h>

/* The versions of the folder, for a message: "1, 2, 3". */
static char *versions_of(const struct ts_migrations *set)
{
	struct strbuf sb = STRBUF_INIT;

	for (size_t i = 0; i < set->n; i++)
		if (set->v[i].version)
			strbuf_addf(&sb, "%s%s", sb.len ? ", " : "", set->v[i].version);
	return strbuf_detach(&sb);
}

/* Marks in `in` the migrations one item names; 0 when it names none. */
static size_t match_item(const struct ts_migrations *set, const char *item, char *in)
{
	const char *dash = strchr(item, '-');
	size_t found = 0;

	for (size_t i = 0; i < set->n; i++)
		if (!strcmp(set->v[i].file, item)) {
			in[i] = 1;
			return 1;
		}
	for (size_t i = 0; i < set->n; i++) {
		const char *v = set->v[i].version;
		int hit;

		if (!v)
			continue;
		if (dash && dash > item && dash[1]) {
			char *lo = xstrndup(item, (size_t)(dash - item));

			hit = ts_version_cmp(lo, v) <= 0 && ts_version_cmp(v, dash + 1) <= 0;
			free(lo);
		} else {
			hit = !ts_version_cmp(item, v);
		}
		if (hit) {
			in[i] = 1;
			found++;
		}
	}
	return found;
}

int ts_phases_resolve(const struct ts_config *cfg, const struct ts_migrations *set,
		      struct ts_phase_plan **out)
{
	size_t np = cfg->n_phases;
	int *owner = xcalloc(set->n + 1, sizeof(*owner));	/* phase index + 1 */
	char *in = xcalloc(set->n + 1, 1);
	struct ts_phase_plan *plans = xcalloc(np + 1, sizeof(*plans));
	const char *last_version = NULL;
	size_t last_phase = 0;
	int r = 0;

	for (size_t p = 0; p < np && !r; p++) {
		const struct ts_phase *ph = &cfg->phases[p];
		const char *where = ph->migrations_origin ? ph->migrations_origin : ph->origin;
		const char *high = NULL;

		plans[p].cfg = ph;
		for (size_t k = 0; k < ph->migrations.nr && !r; k++) {
			memset(in, 0, set->n);
			if (!match_item(set, ph->migrations.v[k], in)) {
				char *vs = versions_of(set);

				r = ts_error_set(TS_EXIT_USAGE,
						 "%s: [phase %s] migrations: no migration has version or file name \"%s\" (versions here: %s)",
						 where, ph->name, ph->migrations.v[k], *vs ? vs : "none");
				free(vs);
				break;
			}
			for (size_t i = 0; i < set->n && !r; i++) {
				if (!in[i])
					continue;
				if (owner[i] && owner[i] != (int)p + 1)
					r = ts_error_set(TS_EXIT_USAGE,
							 "%s: [phase %s] names %s, which [phase %s] applies already",
							 where, ph->name, set->v[i].file,
							 cfg->phases[owner[i] - 1].name);
				owner[i] = (int)p + 1;
			}
		}
		/* a phase applies only versions above every earlier phase's */
		for (size_t i = 0; i < set->n && !r; i++) {
			const char *v = set->v[i].version;

			if (owner[i] != (int)p + 1 || !v)
				continue;
			if (last_version && ts_version_cmp(v, last_version) <= 0)
				r = ts_error_set(TS_EXIT_USAGE,
						 "%s: [phase %s] applies version %s, which is not above version %s of [phase %s]: phases apply migrations in version order",
						 where, ph->name, v, last_version, cfg->phases[last_phase].name);
			high = v;
		}
		if (high) {
			last_version = high;
			last_phase = p;
		}
	}
	/* a migrate run applies repeatables after the versions */
	for (size_t i = 0; i < set->n; i++)
		if (!owner[i] && set->v[i].repeatable)
			owner[i] = 1;
	for (size_t p = 0; p < np && !r; p++) {
		struct ts_migrations *v = &plans[p].set;

		v->format = set->format;
		v->v = xcalloc(set->n + 1, sizeof(*v->v));
		for (size_t i = 0; i < set->n; i++)
			if (owner[i] == (int)p + 1)
				v->v[v->n++] = set->v[i];
	}
	free(owner);
	free(in);
	if (r) {
		ts_phases_free(plans, np);
		return -1;
	}
	*out = plans;
	return 0;
}

static int in_a_phase(const struct ts_phase_plan *plans, size_t np, const struct ts_migration *m)
{
	for (size_t p = 0; p < np; p++)
		for (size_t i = 0; i < plans[p].set.n; i++)
			if (!strcmp(plans[p].set.v[i].file, m->file))
				return 1;
	return 0;
}

int ts_phases_check_pending(const struct ts_config *cfg, const struct ts_phase_plan *plans,
			    const struct ts_migrations *set, const struct ts_tracker *t,
			    const struct ts_tracking_state *prod)
{
	for (size_t i = 0; i < set->n; i++) {
		const struct ts_migration *m = &set->v[i];
		char *sum = NULL;
		int applied;

		if (in_a_phase(plans, cfg->n_phases, m))
			continue;
		applied = prod && ts_tracking_applied(t, prod, m, &sum);
		free(sum);
		if (!applied) {
			ts_error_set(TS_EXIT_USAGE,
				     "%s: migration %s is pending (production has not applied it), but no [phase] names it",
				     cfg->phases[cfg->n_phases - 1].origin, m->file);
			ts_error_hint("add its version to the migrations of the phase that ships it");
			return -1;
		}
	}
	return 0;
}

void ts_phases_free(struct ts_phase_plan *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i].set.v);	/* the migrations themselves are the folder's */
	free(v);
}
