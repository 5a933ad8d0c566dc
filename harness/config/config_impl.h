/*
 * config_impl: what config_check.c takes from config.c, and no one else.
 * config.c reads the files; config_check.c (ts_config_load) calls it, then
 * checks what was read: the calls go one way.
 */
#ifndef TS_CONFIG_IMPL_H
#define TS_CONFIG_IMPL_H

struct ts_config;
struct strvec;

/*
 * cfg set to the defaults, then path (and env_file, its [environments]
 * only) read into it through inih, every key checked on its own line.
 * origins gets "section.key\tfile:line" of each key set. Returns 0 or a
 * TS_EXIT_USAGE error; on an error cfg holds what was read so far
 * (ts_config_free releases it).
 */
int ts_config_read(struct ts_config *cfg, const char *path, const char *env_file, struct strvec *origins);

#endif
