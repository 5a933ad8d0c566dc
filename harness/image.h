/*
 * image: guest images for the vm backend, built from a recipe (an INI file
 * under images/) and kept in a cache keyed by the recipe's content.
 *
 * A build is debootstrap of the recipe's suite and packages into a
 * temporary root, the recipe's PostgreSQL settings, files and commands
 * applied to it, then a qcow2 disk made with libguestfs: a partition table,
 * one ext4 partition, the root copied in. The kernel and initrd of the
 * image are kept beside the disk, for direct kernel boot. A second build of
 * the same recipe finds the cached disk and does nothing.
 */
#ifndef TS_IMAGE_H
#define TS_IMAGE_H

#include <stdint.h>

#include "strvec.h"

struct ts_recipe {
	char *path;		/* absolute */
	char *name;		/* [image] name, else the file's base name */
	char *suite;		/* bookworm */
	char *mirror;		/* NULL: the machine's apt mirror */
	struct strvec packages;	/* besides the ones every image has */
	uint64_t size;		/* bytes of the disk */
	char *hostname;
	char *pg_version;	/* "15" */
	struct strvec pg_conf;	/* postgresql.conf lines */
	struct strvec pg_hba;	/* pg_hba.conf lines */
	struct strvec files;	/* pairs: guest path, absolute host path */
	struct strvec commands;	/* each run in the image's root, no shell */
	char *key;		/* 16 hex digits of the recipe's content */
};

/* What a built image is made of: files in the cache. */
struct ts_image {
	char *disk;		/* <cache>/<name>-<key>.qcow2 */
	char *kernel, *initrd;
	char *pg_version;
	int cached;		/* found, not built */
	double build_ms;
};

/*
 * What the cache builds one at a time (an image, a station disk): lock file
 * `lock` taken, waiting for another build of it; the fd, or -1 (error
 * set). unlock closes it (fd -1: nothing to close) and removes the file.
 */
int ts_cache_lock(const char *lock);
void ts_cache_unlock(int fd, const char *lock);

/* Reads a recipe; errors name file:line (TS_EXIT_USAGE). */
int ts_recipe_load(struct ts_recipe *r, const char *path);
void ts_recipe_free(struct ts_recipe *r);

/* The folder images are cached in (new string). */
char *ts_image_cache_dir(void);

/*
 * Finds the recipe's image in the cache, or builds it there. quiet: no
 * progress lines. Errors: TS_EXIT_ENV (a tool failed; the log is named).
 */
int ts_image_ensure(const struct ts_recipe *r, struct ts_image *img, int quiet);
void ts_image_free(struct ts_image *img);

/* Each side's root of a dual-boot station holds its name ("prod", "dev") here. */
#define TS_SIDE_MARKER "/etc/twinstage-side"

struct child_process;
typedef struct guestfs_h guestfs_h;

/* Runs cp, its output to log; on failure an error naming what and the log (TS_EXIT_ENV). */
int ts_image_run(struct child_process *cp, const char *log, const char *what);

/* A libguestfs handle: errors kept for ts_guestfs_fail, the direct backend, TCG where KVM fails. */
guestfs_h *ts_guestfs_open(void);
/* Sets the error "what: libguestfs's last error"; returns -1. */
int ts_guestfs_fail(guestfs_h *g, const char *what);
/* Prints what the inspected root holds (OS, hostname, PostgreSQL, data, side marker); it mounts and unmounts it. */
int ts_inspect_root(guestfs_h *g, const char *root);

/* Prints what a disk holds (OS, PostgreSQL, data size), read with libguestfs inspection. */
int ts_image_inspect(const char *disk);

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

#endif
