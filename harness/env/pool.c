/*
 * pool.c: the copy-on-write pool: a named folder, or an XFS image made
 * with mkfs.xfs and mounted with mount -o loop (argv, no shell), grown
 * with ftruncate, LOOP_SET_CAPACITY and xfs_growfs.
 */
#include "env/pool.h"
#include "core/error.h"
#include "core/progress.h"
#include "core/run_command.h"
#include "core/strbuf.h"
#include "core/util.h"
#include "core/wrapper.h"
#include "env/home.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/loop.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define MIB (1024ull * 1024)

int ts_reflink_works(const char *dir)
{
	char *a = path_join(dir, ".twinstage-reflink-a"), *b = path_join(dir, ".twinstage-reflink-b");
	char block[4096];
	int fa, fb, ok = 0;

	memset(block, 't', sizeof(block));
	fa = open(a, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	fb = open(b, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fa >= 0 && fb >= 0 && write(fa, block, sizeof(block)) == (ssize_t)sizeof(block))
		ok = ioctl(fb, FICLONE, fa) == 0;
	if (fa >= 0)
		close(fa);
	if (fb >= 0)
		close(fb);
	unlink(a);
	unlink(b);
	free(a);
	free(b);
	return ok;
}

char *ts_pool_image_path(const struct ts_pool *pool)
{
	return path_join(pool->home->workdir, "pool.img");
}

char *ts_pool_mountpoint(const struct ts_pool *pool)
{
	char *outside, *p;

	if (ts_home_reachable(pool->home, pool->home->workdir))
		return path_join(pool->home->workdir, "pool");
	outside = ts_home_outside(pool->home, "/var/tmp");
	p = path_join(outside, "pool");
	free(outside);
	return p;
}

static int is_mounted(const char *dir)
{
	struct stat a, b;
	char *parent = xstrfmt("%s/..", dir);
	int r = !stat(dir, &a) && !stat(parent, &b) && a.st_dev != b.st_dev;

	free(parent);
	return r;
}

/* The device mounted on dir ("/dev/loop3"), from /proc/self/mounts, or NULL. */
static char *mount_source(const char *dir)
{
	FILE *fp = fopen("/proc/self/mounts", "r");
	char src[4096], mnt[4096];
	char *found = NULL;

	if (!fp)
		return NULL;
	while (!found && fscanf(fp, "%4095s %4095s %*[^\n]", src, mnt) == 2)
		if (!strcmp(mnt, dir))	/* our paths hold no space, which the file escapes */
			found = xstrdup(src);
	fclose(fp);
	return found;
}

/* Runs a system tool, its output kept for the message. */
static int run_tool(const char *what, const char *hint, ...)
{
	struct child_process cp = CHILD_PROCESS_INIT;
	struct strbuf out = STRBUF_INIT;
	const char *arg;
	va_list ap;
	int r;

	va_start(ap, hint);
	while ((arg = va_arg(ap, const char *)))
		strvec_push(&cp.args, arg);
	va_end(ap);
	cp.capture = &out;
	cp.no_stdin = 1;
	r = run_command(&cp);
	if (r) {
		strbuf_rtrim(&out);
		if (r > 0)
			ts_error_set(TS_EXIT_ENV, "%s: %s", what, out.len ? out.buf : "it failed");
		else
			ts_error_prefix("%s", what);
		if (hint)
			ts_error_hint("%s", hint);
		r = -1;
	}
	child_process_clear(&cp);
	strbuf_release(&out);
	return r;
}

uint64_t ts_pool_free(const struct ts_pool *pool)
{
	struct statvfs sv;

	if (!pool->dir || statvfs(pool->dir, &sv))
		return 0;
	return (uint64_t)sv.f_bavail * sv.f_frsize;
}

int ts_pool_open_named(struct ts_pool *pool, int cow)
{
	const char *dir = pool->named;

	if (!is_dir(dir))
		return ts_error_set(TS_EXIT_ENV, "pool \"%s\" is not a folder", dir),
		       ts_error_hint("make it, on XFS with reflink=1 or on btrfs, or remove [environments] pool to let twinstage make one as root");
	if (cow && !ts_reflink_works(dir))
		return ts_error_set(TS_EXIT_ENV,
				    "pool \"%s\" cannot make copy-on-write copies (its filesystem has no reflink)",
				    dir),
		       ts_error_hint("a pool must be on XFS made with reflink=1, or on btrfs; or set clone = physical");
	if (!ts_home_reachable(pool->home, dir))
		return ts_error_set(TS_EXIT_ENV, "the server user cannot reach pool \"%s\"", dir),
		       ts_error_hint("let the user \"%s\" traverse it (chmod o+x on each folder above it)",
				     pool->home->user);
	free(pool->dir);
	pool->dir = xstrdup(dir);
	return 0;
}

static int mount_image(struct ts_pool *pool, const char *image, const char *mnt)
{
	if (mkdir_p(mnt, 0755))
		return -1;
	if (!is_mounted(mnt) &&
	    run_tool("could not mount the pool image", "mounting a loop device needs root; or name a pool ([environments] pool) or set clone = physical",
		     "mount", "-o", "loop,discard", image, mnt, NULL))
		return -1;
	chmod(mnt, 0755);
	free(pool->dir);
	free(pool->image);
	pool->dir = xstrdup(mnt);
	pool->image = xstrdup(image);
	return 0;
}

int ts_pool_make(struct ts_pool *pool, uint64_t size)
{
	char *image = ts_pool_image_path(pool), *mnt = ts_pool_mountpoint(pool);
	int r = -1;

	if (geteuid() != 0) {
		ts_error_set(TS_EXIT_ENV, "no copy-on-write pool: twinstage makes one only as root");
		ts_error_hint("name a folder on XFS (reflink=1) or btrfs with [environments] pool, or set clone = physical");
		goto out;
	}
	if (!is_file(image)) {
		int fd = open(image, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

		size = (size + 255 * MIB) / (256 * MIB) * (256 * MIB);
		if (fd < 0 || ftruncate(fd, (off_t)size)) {
			ts_error_set(TS_EXIT_ENV, "could not make the pool image \"%s\": %s", image,
				     strerror(errno));
			if (fd >= 0)
				close(fd);
			unlink(image);
			goto out;
		}
		close(fd);
		if (run_tool("could not make an XFS filesystem in the pool image",
			     "install xfsprogs (apt-get install xfsprogs), or set clone = physical",
			     "mkfs.xfs", "-q", "-m", "reflink=1", image, NULL)) {
			unlink(image);
			goto out;
		}
	}
	r = mount_image(pool, image, mnt);
out:
	free(image);
	free(mnt);
	return r;
}

int ts_pool_mount(struct ts_pool *pool)
{
	char *image = ts_pool_image_path(pool), *mnt = ts_pool_mountpoint(pool);
	int r = 0;

	if (is_file(image) && pool->image)
		r = mount_image(pool, image, mnt);
	free(image);
	free(mnt);
	return r;
}

static int grow(struct ts_pool *pool, uint64_t need, uint64_t free_now, const char *what, int quiet)
{
	char *parent = path_dirname(pool->image), *dev = NULL;
	uint64_t add = (need - free_now + 256 * MIB + 63 * MIB) / (64 * MIB) * (64 * MIB);
	char b1[32], b2[32], b3[32];
	struct statvfs host;
	struct stat st;
	int fd = -1, r = -1;

	if (statvfs(parent, &host) || stat(pool->image, &st)) {
		ts_error_set(TS_EXIT_ENV, "could not read the size of the pool image \"%s\": %s",
			     pool->image, strerror(errno));
		goto out;
	}
	if ((uint64_t)host.f_bavail * host.f_frsize < need - free_now + 64 * MIB) {
		ts_error_set(TS_EXIT_ENV, "no room to grow the pool for %s: it needs about %s more, and \"%s\" has %s free",
			     what, ts_human_bytes(need - free_now, b1, sizeof(b1)), parent,
			     ts_human_bytes((uint64_t)host.f_bavail * host.f_frsize, b2, sizeof(b2)));
		ts_error_hint("free space there, or set [project] workdir (the image lives in it) on a larger filesystem");
		goto out;
	}
	dev = mount_source(pool->dir);
	fd = open(pool->image, O_WRONLY | O_CLOEXEC);
	if (!dev || fd < 0 || ftruncate(fd, st.st_size + (off_t)add)) {
		ts_error_set(TS_EXIT_ENV, "could not grow the pool image \"%s\": %s", pool->image,
			     dev ? strerror(errno) : "it is not mounted");
		goto out;
	}
	close(fd);
	fd = open(dev, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || ioctl(fd, LOOP_SET_CAPACITY, 0)) {
		ts_error_set(TS_EXIT_ENV, "could not grow the loop device %s of the pool: %s", dev,
			     strerror(errno));
		goto out;
	}
	if (run_tool("could not grow the pool's filesystem", NULL, "xfs_growfs", "-d", pool->dir, NULL))
		goto out;
	if (!quiet)
		fprintf(stderr, "twinstage: pool: grown to %s for %s (%s free)\n",
			ts_human_bytes((uint64_t)st.st_size + add, b1, sizeof(b1)), what,
			ts_human_bytes(ts_pool_free(pool), b3, sizeof(b3)));
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	free(dev);
	free(parent);
	return r;
}

int ts_pool_ensure(struct ts_pool *pool, uint64_t need, const char *what, int quiet)
{
	uint64_t free_now;
	char b1[32], b2[32];

	if (!pool->dir)
		return 0;
	free_now = ts_pool_free(pool);
	if (free_now >= need)
		return 0;
	if (pool->image)
		return grow(pool, need, free_now, what, quiet);
	ts_error_set(TS_EXIT_ENV, "the copy-on-write pool \"%s\" is full: it has %s free, and %s needs about %s",
		     pool->dir, ts_human_bytes(free_now, b1, sizeof(b1)), what,
		     ts_human_bytes(need, b2, sizeof(b2)));
	return ts_error_hint("free space in it, name a larger pool ([environments] pool), or set clone = physical");
}

int ts_pool_release(struct ts_pool *pool)
{
	char *image = ts_pool_image_path(pool), *mnt = ts_pool_mountpoint(pool);
	int r = 0;

	if (is_file(image) && is_mounted(mnt)) {
		/* a server that just died may hold a file a moment longer */
		for (int i = 0; (r = run_tool("could not unmount the pool", NULL, "umount", mnt, NULL)) && i < 10; i++) {
			ts_error_clear();
			usleep(200000);
		}
		if (r)
			ts_error_hint("see what still uses it with: fuser -vm %s", mnt);
	}
	if (!r && is_dir(mnt) && rmdir(mnt) == 0 && strncmp(mnt, "/var/tmp/", 9) == 0) {
		char *parent = path_dirname(mnt);

		rmdir(parent);
		free(parent);
	}
	if (pool->named) {
		char *mine = ts_home_outside(pool->home, pool->named);

		rmdir(mine);	/* only once it is empty: the sides are gone */
		free(mine);
	}
	free(image);
	free(mnt);
	return r;
}
