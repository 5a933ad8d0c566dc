/*
 * accel: how guests run on this machine: KVM where it really works, else
 * software emulation (TCG). Also the kernels a probe or a guest boots.
 */
#ifndef TS_ACCEL_H
#define TS_ACCEL_H

/*
 * "kvm" where KVM works on this machine, else "tcg"; want is auto, kvm or
 * tcg. auto probes once (a kernel booted under KVM for a few seconds) and
 * keeps the answer in the cache folder; why says what it found.
 */
const char *ts_accel(const char *want, const char **why);

/*
 * What probe(arg, why) answered (1: KVM works), kept in the image cache's
 * file under stamp (what the answer holds for): "kvm" or "tcg".
 */
const char *ts_accel_cached(const char *file, const char *stamp, int (*probe)(void *, const char **),
			    void *arg, const char **why);

/* The newest file of root/boot whose name starts with prefix (new string), or NULL. */
char *ts_boot_file(const char *root, const char *prefix);

#endif
