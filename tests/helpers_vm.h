/*
 * helpers_vm: what the tests that boot guests share (test_vm.c,
 * test_dualboot.c): libvirt's daemons, the examples on a backend of
 * guests, and the comparison of their reports with the instance backend's.
 */
#ifndef TS_TEST_HELPERS_VM_H
#define TS_TEST_HELPERS_VM_H

#include <sys/types.h>

/* The pid a daemon wrote in pidfile, 0 when it is not running. */
pid_t th_pid_of(const char *pidfile);

/*
 * libvirtd and virtlogd for a test: started unless they run. The tests
 * that boot guests may run at once: each holds a shared lock while it
 * uses them, and the last one out stops the daemons the tests started.
 */
void th_libvirt_up(void);
void th_libvirt_down(void);

/* The names of the domains libvirt has, one per line (new string). */
char *th_domains(void);

/*
 * A copy of the example `name` under dir/scenarios (with dir/envs, which it
 * includes), its workdir its own, no time limits on locks and stalls, and
 * env.ini beside it holding env_ini. Returns the project's folder.
 */
char *th_example(const char *dir, const char *name, const char *env_ini);

/*
 * Rehearses the project with --env env.ini (exit want), then on the
 * instance backend (the same exit), and asserts the same verdict and the
 * same failed checks, and no domain or disk left. Returns what the first
 * run printed, stdout then stderr (new string).
 */
char *th_rehearse_both(const char *dir, const char *project, int want, const char *backend);

#endif
