/*
 * image: guest images for the vm backend, built from a recipe (an INI file
 * under images/) and kept in a cache keyed by the recipe's content.
 *
 * A build is debootstrap of the recipe's suite and packages into a
 * temporary root, the recipe's PostgreSQL settings, files and commands
 * applied to it, then a qcow2 disk made with libguestfs: a partition table,
 * one ext4 partition, the root copied in. The kernel and initrd of the
 * image are kept beside the disk, for direct kernel boot. A second build of
 * the same recipe finds the cached disk and does nothing. The cache is
 * cache.h; libguestfs and inspection, guestfs.h; the KVM probe, accel.h.
 */
#ifndef TS_IMAGE_H
#define TS_IMAGE_H

#include <stdint.h>

#include "core/strvec.h"

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
	int stack;		/* a [stack] recipe (stack.h), not an [image] */
	int systemd;		/* [image] init = systemd: the guests boot the root's systemd, not twinstage's init */
};

/* What a built image is made of: files in the cache. */
struct ts_image {
	char *disk;		/* <cache>/<name>-<key>.qcow2 */
	char *kernel, *initrd;	/* the bzImage (the dual-boot station's), the initrd */
	char *vmlinux;		/* the kernel unpacked, for a direct boot (its PVH entry) */
	char *pg_version;
	int own_init;		/* boots twinstage's init (guest_init.h), not systemd */
	int cached;		/* found, not built */
	double build_ms;
};

/* Reads a recipe; errors name file:line (TS_EXIT_USAGE). */
int ts_recipe_load(struct ts_recipe *r, const char *path);
void ts_recipe_free(struct ts_recipe *r);

/*
 * Finds the recipe's image in the cache, or builds it there. quiet: no
 * progress lines. Errors: TS_EXIT_ENV (a tool failed; the log is named).
 */
int ts_image_ensure(const struct ts_recipe *r, struct ts_image *img, int quiet);
void ts_image_free(struct ts_image *img);

/*
 * What image and stack builds share. debootstrap of the recipe's suite into
 * root, with base (comma-separated, may be empty), postgresql-N and the
 * recipe's packages, from its mirror or the machine's (ts_apt_mirror), its
 * downloads kept in <cache>/debs/<suite>; output to log, progress unless quiet.
 */
int ts_root_debootstrap(const struct ts_recipe *r, const char *cache, const char *root, const char *base,
			const char *log, int quiet);
/* The recipe's [files] copied into root, its [run] commands run there (chroot), the downloads dropped. */
int ts_recipe_apply(const struct ts_recipe *r, const char *root, const char *log);
/* Writes text to path inside root (append: at its end), its folders made. */
int ts_root_write(const char *root, const char *path, const char *text, int append);
/* The first Debian mirror of the machine's apt sources (new string). */
char *ts_apt_mirror(void);
/* <cache>/<stem>.json: what was built from which recipe, when, in how long. */
int ts_recipe_write_meta(const struct ts_recipe *r, const char *path, double ms);
/* "twinstage: WHAT (N s)" unless quiet. */
void ts_step_line(int quiet, const char *what, double t0);

struct child_process;
/* Runs cp, its output to log; on failure an error naming what and the log (TS_EXIT_ENV). */
int ts_image_run(struct child_process *cp, const char *log, const char *what);

#endif
