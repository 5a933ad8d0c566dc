/*
 * config_impl: what config.c and config_check.c share, and no one else.
 */
#ifndef TS_CONFIG_IMPL_H
#define TS_CONFIG_IMPL_H

struct ts_config;
struct strvec;

/*
 * The defaults of what the files left out, then each value checked
 * against the others (a folder that must exist, a backend a tool needs, a
 * phase's apps). origins holds "section.key\tfile:line" of each key set:
 * an error names where the value was written. Returns 0 or a
 * TS_EXIT_USAGE error.
 */
int ts_config_check(struct ts_config *cfg, const struct strvec *origins);

#endif
