/*
 * cache: what twinstage keeps between runs, built once: guest images,
 * station disks, the KVM probe's answers. /var/cache/twinstage/images as
 * root (libvirt's qemu user must read it), else ~/.cache/twinstage/images,
 * or $TWINSTAGE_IMAGE_CACHE.
 */
#ifndef TS_CACHE_H
#define TS_CACHE_H

/* The folder the cache is in (new string). */
char *ts_image_cache_dir(void);

/*
 * What the cache builds one at a time (an image, a station disk): lock file
 * `lock` taken, waiting for another build of it; the fd, or -1 (error
 * set). unlock closes it (fd -1: nothing to close); the file stays (see cache.c).
 */
int ts_cache_lock(const char *lock);
void ts_cache_unlock(int fd, const char *lock);

#endif
