/*
 * cache.c: the folder where built images, station disks and the KVM
 * probe's answers are kept between runs, and the lock that lets one build
 * of a thing run at a time. See cache.h.
 */
#include "env/cache.h"
#include "core/error.h"
#include "core/strbuf.h"
#include "core/util.h"
#include "core/wrapper.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

char *ts_image_cache_dir(void)
{
	const char *e = getenv("TWINSTAGE_IMAGE_CACHE"), *home;

	if (e && *e)
		return path_absolute(e);
	/* root's images are read by the qemu user of libvirt: a folder anyone may walk */
	if (geteuid() == 0)
		return xstrdup("/var/cache/twinstage/images");
	if ((e = getenv("XDG_CACHE_HOME")) && *e)
		return path_join(e, "twinstage/images");
	home = getenv("HOME");
	return xstrfmt("%s/.cache/twinstage/images", home ? home : "/tmp");
}

int ts_cache_lock(const char *lock)
{
	int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);

	if (fd < 0 || flock(fd, LOCK_EX)) {
		ts_error_set(TS_EXIT_ENV, "could not lock \"%s\": %s", lock, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

void ts_cache_unlock(int fd, const char *lock)
{
	/*
	 * The file stays: removed, a run waiting on it would go on holding the
	 * old file's lock while the next one locks a new file of that name.
	 */
	(void)lock;
	if (fd >= 0)
		close(fd);
}
