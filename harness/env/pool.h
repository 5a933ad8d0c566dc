/*
 * pool: the copy-on-write storage the two sides live on when the dev side
 * is a reflink copy of the production clone (clone = cow).
 *
 * Either a folder the user names ([environments] pool = /srv/twinstage),
 * on XFS with reflink=1 or on btrfs, where each workdir keeps its data in
 * twinstage-<crc>/; or, as root when none is named, an XFS image file
 * <workdir>/pool.img that twinstage makes, loop-mounts, grows when the
 * data needs more room, and unmounts with `down` (`down --purge` removes
 * the file with the workdir). The image is sparse and mounted with
 * discard: it takes on the host only what the clusters hold.
 */
#ifndef TS_POOL_H
#define TS_POOL_H

#include <stdint.h>

struct ts_home;

/*
 * The pool of one workdir. ts_env_init fills home and named; the pool
 * functions fill dir and image, which env.json keeps for later commands.
 */
struct ts_pool {
	const struct ts_home *home;	/* the workdir and the server user */
	const char *named;	/* [environments] pool, or NULL */
	char *dir;		/* where the sides live: the named folder or the image's mount point; NULL: no pool */
	char *image;		/* the XFS image twinstage made (<workdir>/pool.img), or NULL */
};

/* 1 when a file in dir can be cloned (FICLONE: XFS reflink, btrfs), else 0. */
int ts_reflink_works(const char *dir);

/* Checks the named pool and sets pool->dir. cow: it must give reflinks. */
int ts_pool_open_named(struct ts_pool *pool, int cow);
/*
 * Makes (or finds) <workdir>/pool.img, at least `size` bytes, mounts it and
 * sets pool->dir and pool->image. Needs root, mkfs.xfs and a loop device.
 */
int ts_pool_make(struct ts_pool *pool, uint64_t size);
/* Mounts the image of an earlier run again if it is not (after a reboot). */
int ts_pool_mount(struct ts_pool *pool);
/*
 * At least `need` bytes free for `what` ("the production clone"): an
 * image twinstage made grows; a named pool that is too small is an error
 * (TS_EXIT_ENV) saying how much it has and needs. No pool: nothing to do.
 * quiet: no line when it grows.
 */
int ts_pool_ensure(struct ts_pool *pool, uint64_t need, const char *what, int quiet);
/* Bytes free on the pool (0 without one). */
uint64_t ts_pool_free(const struct ts_pool *pool);
/*
 * Unmounts the image twinstage made, if it is mounted, and removes the
 * folders the pool held for this workdir. The image file stays.
 */
int ts_pool_release(struct ts_pool *pool);

/* Where the image of this workdir is, and where it is mounted (new strings). */
char *ts_pool_image_path(const struct ts_pool *pool);
char *ts_pool_mountpoint(const struct ts_pool *pool);

#endif
