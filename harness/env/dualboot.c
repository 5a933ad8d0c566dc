/*
 * dualboot.c: the dual-boot station disk (see dualboot.h): built, flipped
 * and shown with libguestfs, written to a block device with qemu-img after
 * the checks a person would make by hand, and GRUB entries for a machine
 * that has the two roots already.
 *
 * The build lays the partitions out in one libguestfs session, copies the
 * image's root filesystem into both root partitions with qemu-img on the
 * host (an appliance under software emulation would copy gigabytes slowly),
 * then gives each root its name and fills the boot partition in a second
 * session.
 */
#include "env/dualboot.h"
#include "core/error.h"
#include "core/progress.h"
#include "core/run_command.h"
#include "core/strbuf.h"
#include "core/util.h"
#include "core/wrapper.h"
#include "env/cache.h"
#include "env/guest_init.h"
#include "env/guestfs.h"
#include "env/image.h"

#include <blkid/blkid.h>
#include <errno.h>
#include <fcntl.h>
#include <guestfs.h>
#include <jansson.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <zlib.h>

#define BOOT_BYTES (128ull << 20)
#define FIRST_SECTOR 2048ull
#define EXTLINUX_CONF "/extlinux.conf"
#define AWAIT_DISK TS_STATION_AWAIT_DISK

static const char *const sides[] = { "prod", "dev" };

static int side_index(const char *side)
{
	for (int i = 0; i < 2; i++)
		if (!strcmp(side, sides[i]))
			return i;
	return -1;
}

/* The syslinux MBR boot code: 440 bytes from the extlinux or syslinux-common package. */
static int read_mbr(struct strbuf *sb)
{
	static const char *const paths[] = { "/usr/lib/EXTLINUX/mbr.bin", "/usr/lib/syslinux/mbr/mbr.bin" };

	for (size_t i = 0; i < 2; i++)
		if (!strbuf_read_file(sb, paths[i]) && sb->len == 440)
			return 0;
		else
			strbuf_reset(sb);
	ts_error_set(TS_EXIT_ENV, "no MBR boot code (/usr/lib/EXTLINUX/mbr.bin)");
	ts_error_hint("install extlinux");
	return -1;
}

/*
 * The first CONF_REGION bytes of the station's extlinux.conf: its DEFAULT
 * line and a comment that pads it, the same length whatever the entry, so
 * that the default is changed by writing those bytes in place: from the
 * host into the disk (host_select), or by the guest's initrd after a first
 * boot's data copy (guest_init.c writes the same text).
 */
#define CONF_REGION TS_STATION_REGION

static char *conf_region(const char *label)
{
	struct strbuf sb = STRBUF_INIT;

	strbuf_addf(&sb, "DEFAULT %s\n", label);
	while (sb.len < CONF_REGION - 1)
		strbuf_addch(&sb, '#');
	strbuf_addch(&sb, '\n');
	return strbuf_detach(&sb);
}

/* conf begins with a region (a station of this twinstage, its default not edited by hand). */
static int has_region(const char *conf)
{
	const char *nl = strchr(conf, '\n');
	char *label, *want;
	int ok;

	if (strncmp(conf, "DEFAULT ", 8) || !nl || nl == conf + 8 || (size_t)(nl - conf) > CONF_REGION - 3)
		return 0;
	label = xstrndup(conf + 8, (size_t)(nl - conf - 8));
	want = conf_region(label);
	ok = strlen(conf) >= CONF_REGION && !memcmp(conf, want, CONF_REGION);
	free(label);
	free(want);
	return ok;
}

/*
 * Entries prod and dev boot their roots; <side>-from-<other> boots side's
 * root after the initrd has copied the other root's PostgreSQL data onto
 * it, and makes <side> the default (once: its first boot); dev-from-prod-disk
 * the same from the prod root of a second disk, attached when it holds the
 * data (AWAIT_DISK: a rehearsal's dev guest, booting beside the production
 * clone's).
 */
static char *extlinux_conf(const char *def, int own_init)
{
	struct strbuf sb = STRBUF_INIT;
	char *region = conf_region(def);

	/*
	 * No prompt unless asked for: each boot of a rehearsal's guest waited
	 * the 2 s of TIMEOUT at it, which nobody types at.
	 */
	strbuf_addf(&sb, "%s# twinstage dual-boot station: `twinstage dualboot select DISK prod|dev` sets DEFAULT\n"
			 "# (the first two lines, their length fixed); hold Shift as it starts for the boot:\n"
			 "# prompt, and type prod or dev there to choose once (dev-from-prod-disk is a rehearsal's\n"
			 "# dev guest: it waits for a second disk)\nPROMPT 0\nTIMEOUT 50\n"
			 "SERIAL 0 115200\n", region);
	for (int i = 0; i < 5; i++) {
		/* prod, dev, prod-from-dev, dev-from-prod, dev-from-prod-disk */
		const char *side = sides[i == 4 || i % 2], *other = sides[!(i == 4 || i % 2)];
		char *name = i < 2 ? xstrdup(side) : xstrfmt("%s-from-%s%s", side, other, i == 4 ? "-disk" : "");
		char *from = i == 4 ? xstrfmt("/dev/" AWAIT_DISK "%d", 2 + side_index(other)) :
				      xstrfmt("LABEL=twinstage-%s", other);
		char *copy = i < 2 ? xstrdup("") : xstrfmt(" twinstage.data_from=%s twinstage.then=%s twinstage.entry=%s",
							    from, side, name);

		/*
		 * a rehearsal's entry names its root by device: the second disk,
		 * a station too, has the same labels (present from the start when
		 * a guest that crashed is booted again with it)
		 */
		char *root = i == 4 ? xstrfmt("/dev/vda%d", 2 + side_index(side)) : xstrfmt("LABEL=twinstage-%s", side);

		strbuf_addf(&sb, "\nLABEL %s\n  LINUX /vmlinuz\n  INITRD /initrd.img\n"
				 "  APPEND root=%s ro console=tty0 console=ttyS0 net.ifnames=0%s%s\n",
			    name, root, ts_guest_cmdline_tail(own_init), copy);
		free(root);
		free(name);
		free(from);
		free(copy);
	}
	free(region);
	return strbuf_detach(&sb);
}

/*
 * "image.qcow2" as qemu's option syntax wants it, the partition of bytes
 * [offset, offset + size): driver=raw,offset=..,size=..,file.driver=FMT,
 * file.file.filename=PATH (commas in the path doubled).
 */
static char *partition_opts(const char *path, const char *fmt, uint64_t offset, uint64_t size)
{
	struct strbuf sb = STRBUF_INIT;

	strbuf_addf(&sb, "driver=raw,offset=%llu,size=%llu,file.driver=%s,file.file.driver=file,file.file.filename=",
		    (unsigned long long)offset, (unsigned long long)size, fmt);
	for (const char *p = path; *p; p++)
		strbuf_addstr(&sb, *p == ',' ? ",," : (char[]){ *p, 0 });
	return strbuf_detach(&sb);
}

static int write_text(guestfs_h *g, const char *path, const char *text)
{
	return guestfs_write(g, path, text, strlen(text)) ? ts_guestfs_fail(g, path) : 0;
}

/*
 * Session 1: out made and laid out: three partitions, the roots the size of
 * the image's one partition (read from the image, added read-only beside
 * it), the boot filesystem. out is sized for two roots as large as the
 * image's whole disk: a few MiB more than they need, and sparse.
 */
static int lay_out(const char *image, const char *out, uint64_t *root_start, uint64_t *root_size,
		   uint64_t *img_start)
{
	guestfs_h *g = ts_guestfs_open();
	struct guestfs_partition_list *parts = NULL;
	int64_t image_bytes;
	int ret = -1;

	if (!g)
		return -1;
	*root_start = FIRST_SECTOR * 512 + BOOT_BYTES;
	if ((image_bytes = guestfs_disk_virtual_size(g, image)) < 0 ||
	    guestfs_disk_create(g, out, "qcow2", (int64_t)*root_start + 2 * image_bytes + (1 << 20), -1) ||
	    guestfs_add_drive_opts(g, out, GUESTFS_ADD_DRIVE_OPTS_FORMAT, "qcow2", -1) ||
	    guestfs_add_drive_opts(g, image, GUESTFS_ADD_DRIVE_OPTS_READONLY, 1, GUESTFS_ADD_DRIVE_OPTS_FORMAT,
				   "qcow2", -1) || guestfs_launch(g)) {
		ts_guestfs_fail(g, image);
		goto out;
	}
	if (!(parts = guestfs_part_list(g, "/dev/sdb")) || parts->len != 1) {
		ts_guestfs_fail(g, "the image should have one partition");
		goto out;
	}
	*img_start = parts->val[0].part_start;
	*root_size = parts->val[0].part_size & ~511ull;
	{
		int64_t s1 = FIRST_SECTOR, e1 = s1 + BOOT_BYTES / 512 - 1;
		int64_t s2 = e1 + 1, e2 = s2 + *root_size / 512 - 1, s3 = e2 + 1, e3 = s3 + *root_size / 512 - 1;

		if (guestfs_part_init(g, "/dev/sda", "mbr") || guestfs_part_add(g, "/dev/sda", "p", s1, e1) ||
		    guestfs_part_add(g, "/dev/sda", "p", s2, e2) || guestfs_part_add(g, "/dev/sda", "p", s3, e3) ||
		    guestfs_part_set_bootable(g, "/dev/sda", 1, 1) || guestfs_mkfs(g, "ext2", "/dev/sda1") ||
		    guestfs_set_label(g, "/dev/sda1", "twinstage-boot") || guestfs_shutdown(g)) {
			ts_guestfs_fail(g, "could not lay out the station disk");
			goto out;
		}
	}
	ret = 0;
out:
	if (parts)
		guestfs_free_partition_list(parts);
	guestfs_close(g);
	return ret;
}

/* Session 2: each root named (label, UUID, hostname, fstab, marker), the boot partition filled. */
static int name_roots(const struct ts_recipe *r, const struct ts_image *img, const char *out)
{
	guestfs_h *g = ts_guestfs_open();
	struct strbuf mbr = STRBUF_INIT;
	char *conf = NULL;
	int ret = -1;

	if (!g || read_mbr(&mbr))
		goto out;
	if (guestfs_add_drive_opts(g, out, GUESTFS_ADD_DRIVE_OPTS_FORMAT, "qcow2", -1) || guestfs_launch(g)) {
		ts_guestfs_fail(g, out);
		goto out;
	}
	for (int i = 0; i < 2; i++) {
		char *dev = xstrfmt("/dev/sda%d", i + 2), *label = xstrfmt("twinstage-%s", sides[i]);
		char *host = xstrfmt("%s-%s", r->hostname, sides[i]);
		char *hostname = xstrfmt("%s\n", host);
		char *hosts = xstrfmt("127.0.0.1 localhost\n127.0.1.1 %s\n", host);
		char *fstab = xstrfmt("LABEL=%s / ext4 defaults,noatime 0 1\n", label);
		char *marker = xstrfmt("%s\n", sides[i]);
		int bad = guestfs_set_uuid_random(g, dev) || guestfs_set_label(g, dev, label) ||
			  guestfs_mount(g, dev, "/") ? ts_guestfs_fail(g, dev) : 0;

		bad = bad || write_text(g, "/etc/hostname", hostname) || write_text(g, "/etc/hosts", hosts) ||
		      write_text(g, "/etc/fstab", fstab) || write_text(g, TS_SIDE_MARKER, marker) ||
		      (guestfs_umount_all(g) ? ts_guestfs_fail(g, dev) : 0);
		free(dev);
		free(label);
		free(host);
		free(hostname);
		free(hosts);
		free(fstab);
		free(marker);
		if (bad)
			goto out;
	}
	conf = extlinux_conf("prod", img->own_init);
	if (guestfs_mount(g, "/dev/sda1", "/") || guestfs_upload(g, img->kernel, "/vmlinuz") ||
	    guestfs_upload(g, img->initrd, "/initrd.img") || write_text(g, EXTLINUX_CONF, conf) ||
	    guestfs_extlinux(g, "/") || guestfs_umount_all(g) ||
	    guestfs_pwrite_device(g, "/dev/sda", mbr.buf, mbr.len, 0) != (int)mbr.len || guestfs_shutdown(g)) {
		ts_guestfs_fail(g, "could not make the station disk bootable");
		goto out;
	}
	ret = 0;
out:
	free(conf);
	strbuf_release(&mbr);
	if (g)
		guestfs_close(g);
	return ret;
}

static int build(const struct ts_recipe *r, const struct ts_image *img, const char *out, const char *log,
		 int quiet)
{
	uint64_t root_start, root_size, img_start;
	double t0 = now_ms();

	if (!quiet)
		fprintf(stderr, "twinstage: station %s: laying out the disk (libguestfs)\n", r->name);
	if (lay_out(img->disk, out, &root_start, &root_size, &img_start))
		return -1;
	for (int i = 0; i < 2; i++) {
		struct child_process cp = CHILD_PROCESS_INIT;
		char *what = xstrfmt("qemu-img convert of the image's root into the %s root", sides[i]), *src, *dst;
		int r2;

		if (!quiet)
			fprintf(stderr, "twinstage: station %s: copying the image's root to the %s root\n", r->name,
				sides[i]);
		strvec_pushl(&cp.args, "qemu-img", "convert", "-n", "--image-opts", NULL);
		src = partition_opts(img->disk, "qcow2", img_start, root_size);
		dst = partition_opts(out, "qcow2", root_start + i * root_size, root_size);
		strvec_pushl(&cp.args, src, "--target-image-opts", dst, NULL);
		r2 = ts_image_run(&cp, log, what);
		child_process_clear(&cp);
		free(what);
		free(src);
		free(dst);
		if (r2)
			return -1;
	}
	if (!quiet)
		fprintf(stderr, "twinstage: station %s: naming the roots, installing extlinux\n", r->name);
	if (name_roots(r, img, out))
		return -1;
	if (!quiet)
		fprintf(stderr, "twinstage: station %s: built in %.0f s\n", r->name, (now_ms() - t0) / 1000.0);
	return 0;
}

int ts_station_ensure(const struct ts_recipe *r, const struct ts_image *img, char **disk, int quiet)
{
	size_t n = strlen(img->disk) - strlen(".qcow2");
	/* named by its layout too: a station of an earlier layout is not taken for this one's */
	char *conf = extlinux_conf("prod", img->own_init);
	uLong key = crc32(crc32(0L, Z_NULL, 0), (const Bytef *)conf, (uInt)strlen(conf));
	char *stem = xstrfmt("%.*s.station-%08lx", (int)n, img->disk, key & 0xffffffffUL);
	char *lock = xstrfmt("%s.lock", stem), *tmp = xstrfmt("%s.tmp-%d", stem, (int)getpid());
	char *log = xstrfmt("%s.log", stem);
	int fd, ret = 0;

	free(conf);
	*disk = xstrfmt("%s.qcow2", stem);
	/* one build at a time; the others wait and find it */
	if ((fd = ts_cache_lock(lock)) < 0) {
		ret = -1;
	} else if (!is_file(*disk)) {
		unlink(log);
		ret = build(r, img, tmp, log, quiet);
		/* the disk last, whole */
		if (!ret && rename(tmp, *disk))
			ret = ts_error_set(TS_EXIT_ENV, "could not move the station disk to \"%s\": %s", *disk,
					   strerror(errno));
		chmod(*disk, 0644);
		unlink(tmp);
	}
	if (ret)
		ts_error_prefix("the station disk of %s", r->name);
	ts_cache_unlock(fd, lock);
	free(lock);
	free(stem);
	free(tmp);
	free(log);
	if (ret) {
		free(*disk);
		*disk = NULL;
	}
	return ret;
}

/* "raw" for .raw and .img, else "qcow2". */
static const char *format_of(const char *path)
{
	const char *dot = strrchr(path, '.');

	return dot && (!strcmp(dot, ".raw") || !strcmp(dot, ".img")) ? "raw" : "qcow2";
}

int ts_station_build(const char *recipe, const char *out, int quiet)
{
	struct ts_recipe r;
	struct ts_image img;
	char *disk = NULL;
	int ret;

	if (ts_recipe_load(&r, recipe))
		return -1;
	ret = ts_image_ensure(&r, &img, quiet) || ts_station_ensure(&r, &img, &disk, quiet) ? -1 : 0;
	if (!ret && out) {
		struct child_process cp = CHILD_PROCESS_INIT;
		char *log = xstrfmt("%s.log", out);

		strvec_pushl(&cp.args, "qemu-img", "convert", "-O", format_of(out), disk, out, NULL);
		ret = ts_image_run(&cp, log, "qemu-img convert of the station disk");
		if (!ret)
			unlink(log);
		child_process_clear(&cp);
		free(log);
	}
	if (!ret)
		printf("%s\n", out ? out : disk);
	free(disk);
	ts_image_free(&img);
	ts_recipe_free(&r);
	return ret;
}

/* A session on the station disk path (read-only or not), launched; NULL with the error set. */
static guestfs_h *open_disk(const char *disk, int readonly)
{
	struct stat st;
	guestfs_h *g;
	char *fmt = NULL;

	if (stat(disk, &st))
		return ts_error_set(TS_EXIT_USAGE, "no disk \"%s\"", disk), NULL;
	if (!(g = ts_guestfs_open()))
		return NULL;
	/* the format from the file's content: an overlay is qcow2 whatever its name */
	fmt = guestfs_disk_format(g, disk);
	if (!fmt || guestfs_add_drive_opts(g, disk, GUESTFS_ADD_DRIVE_OPTS_READONLY, readonly,
					   GUESTFS_ADD_DRIVE_OPTS_FORMAT, fmt, -1) || guestfs_launch(g)) {
		ts_guestfs_fail(g, disk);
		guestfs_close(g);
		g = NULL;
	}
	free(fmt);
	return g;
}

/* The boot partition's extlinux.conf (new string), the boot partition mounted at mnt; NULL: not a station. */
static char *read_conf(guestfs_h *g, const char *disk, const char *mnt)
{
	char *path = xstrfmt("%s%s", strcmp(mnt, "/") ? mnt : "", EXTLINUX_CONF), *conf = NULL;

	if (guestfs_mount(g, "/dev/sda1", mnt) || guestfs_is_file(g, path) <= 0 || !(conf = guestfs_cat(g, path)))
		ts_error_set(TS_EXIT_USAGE, "%s is not a twinstage station disk (no %s on its first partition)",
			     disk, EXTLINUX_CONF),
		ts_error_hint("make one with \"twinstage dualboot build RECIPE -o DISK\"");
	free(path);
	return conf;
}

/* The line after l's, or NULL after the last one. */
static const char *next_line(const char *l)
{
	const char *nl = strchr(l, '\n');

	return nl && nl[1] ? nl + 1 : NULL;
}

/* The value of conf's DEFAULT line (new string), or NULL. */
static char *conf_default(const char *conf)
{
	for (const char *l = conf; l && *l; l = next_line(l))
		if (!strncasecmp(l, "DEFAULT ", 8))
			return xstrndup(l + 8, strcspn(l + 8, " \t\r\n"));
	return NULL;
}

/* conf with its DEFAULT line set to side (new string); a region stays one. */
static char *conf_set_default(const char *conf, const char *side)
{
	struct strbuf sb = STRBUF_INIT;
	int done = 0;

	if (has_region(conf)) {
		char *region = conf_region(side);

		strbuf_addstr(&sb, region);
		strbuf_addstr(&sb, conf + CONF_REGION);
		free(region);
		return strbuf_detach(&sb);
	}

	for (const char *l = conf; l && *l;) {
		const char *nl = strchr(l, '\n');
		size_t len = nl ? (size_t)(nl - l + 1) : strlen(l);

		if (!done && !strncasecmp(l, "DEFAULT ", 8)) {
			strbuf_addf(&sb, "DEFAULT %s\n", side);
			done = 1;
		} else {
			strbuf_add(&sb, l, len);
		}
		l += len;
	}
	if (!done)
		strbuf_addf(&sb, "DEFAULT %s\n", side);
	return strbuf_detach(&sb);
}

/* "qcow2" or "raw": the file's first bytes, qcow2's magic or not (an overlay is qcow2 whatever its name). */
static const char *disk_format(const char *path)
{
	unsigned char magic[4] = { 0 };
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, magic, sizeof(magic)) : -1;

	if (fd >= 0)
		close(fd);
	return n == 4 && !memcmp(magic, "QFI\xfb", 4) ? "qcow2" : "raw";
}

/* debugfs's answer to request on the ext2 image raw, its banner and errors left out. */
static int debugfs(const char *raw, const char *request, struct strbuf *out)
{
	struct child_process cp = CHILD_PROCESS_INIT;
	int r;

	strbuf_reset(out);
	strvec_pushl(&cp.args, "debugfs", "-R", request, raw, NULL);
	cp.capture = out;
	cp.err_path = "/dev/null";
	r = run_command(&cp);
	child_process_clear(&cp);
	return r ? ts_error_set(TS_EXIT_ENV, "debugfs -R \"%s\" failed (exit %d)", request, r) : 0;
}

/* The boot partition of disk (its qemu options opts) read out into the raw file raw. */
static int boot_out(const char *disk, const char *opts, const char *raw)
{
	struct child_process cp = CHILD_PROCESS_INIT;
	struct strbuf said = STRBUF_INIT;
	int r;

	unlink(raw);
	strvec_pushl(&cp.args, "qemu-img", "convert", "--image-opts", opts, "-O", "raw", raw, NULL);
	cp.capture = &said;
	r = run_command(&cp);
	child_process_clear(&cp);
	strbuf_rtrim(&said);
	if (r)
		ts_error_set(TS_EXIT_ENV, "could not read the boot partition of %s: %s", disk, said.buf);
	strbuf_release(&said);
	return r ? -1 : 0;
}

/*
 * The default entry set by an edit from the host, no appliance: the boot
 * partition read out (qemu-img), its extlinux.conf and where that file's
 * first block lies read there by debugfs (e2fsprogs), the region written
 * in place by qemu-io, read back to be sure. With from >= 0 the entry is
 * <side>-from-<from>, whose initrd copies the data at the first boot
 * (awaiting: <side>-from-<from>-disk, from a disk attached later).
 * 1: the conf has no region or no such entry (a station of an earlier
 * twinstage, a default edited by hand): the caller takes the libguestfs
 * way; 0: done; -1 (error set).
 */
static int host_select(const char *disk, int i, int from, int awaiting, int quiet)
{
	char *dir = xstrfmt("%s/twinstage-boot-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	char *raw = NULL, *opts = NULL, *label = NULL, *region = NULL, *entry = NULL, *write = NULL;
	struct strbuf sb = STRBUF_INIT;
	unsigned long long block = 0, size = 0;
	double t0 = now_ms();
	struct stat st;
	int ret = -1;

	if (stat(disk, &st)) {
		free(dir);
		return ts_error_set(TS_EXIT_USAGE, "no disk \"%s\"", disk);
	}
	if (!mkdtemp(dir)) {
		ts_error_set(TS_EXIT_ENV, "could not make a folder \"%s\": %s", dir, strerror(errno));
		free(dir);
		return -1;
	}
	raw = path_join(dir, "boot.raw");
	{
		/* qemu-io runs in dir */
		char *abs = realpath(disk, NULL);

		opts = partition_opts(abs ? abs : disk, disk_format(disk), FIRST_SECTOR * 512, BOOT_BYTES);
		free(abs);
	}
	if (boot_out(disk, opts, raw) || debugfs(raw, "cat " EXTLINUX_CONF, &sb))
		goto out;
	if (!sb.len) {
		ts_error_set(TS_EXIT_USAGE, "%s is not a twinstage station disk (no %s on its first partition)", disk,
			     EXTLINUX_CONF);
		ts_error_hint("make one with \"twinstage dualboot build RECIPE -o DISK\"");
		goto out;
	}
	label = from >= 0 ? xstrfmt("%s-from-%s%s", sides[i], sides[from], awaiting ? "-disk" : "") : xstrdup(sides[i]);
	entry = xstrfmt("\nLABEL %s\n", label);
	if (!has_region(sb.buf) || !strstr(sb.buf, entry)) {
		ret = 1;
		goto out;
	}
	if (debugfs(raw, "bmap " EXTLINUX_CONF " 0", &sb))
		goto out;
	block = strtoull(sb.buf, NULL, 10);
	if (debugfs(raw, "stats", &sb))
		goto out;
	for (const char *l = sb.buf; l && *l; l = next_line(l))
		if (!strncmp(l, "Block size:", 11))
			size = strtoull(l + 11, NULL, 10);
	if (!block || !size) {
		ret = 1;	/* not where debugfs says files are: the libguestfs way */
		goto out;
	}
	region = conf_region(label);
	{
		struct child_process cp = CHILD_PROCESS_INIT;
		char *file = path_join(dir, "region");
		int r;

		/* the region's file named relative to dir: qemu-io splits its command at spaces */
		write = xstrfmt("write -q -s region %llu %d", block * size, CONF_REGION);
		strvec_pushl(&cp.args, "qemu-io", "--image-opts", opts, "-c", write, NULL);
		cp.dir = dir;
		cp.capture = &sb;
		strbuf_reset(&sb);
		r = write_file(file, region, CONF_REGION) ? -1 : run_command(&cp);
		child_process_clear(&cp);
		free(file);
		strbuf_rtrim(&sb);
		if (r) {
			ts_error_set(TS_EXIT_ENV, "could not write the default entry into %s: %s", disk, sb.buf);
			goto out;
		}
	}
	if (boot_out(disk, opts, raw) || debugfs(raw, "cat " EXTLINUX_CONF, &sb))
		goto out;
	if (sb.len < CONF_REGION || memcmp(sb.buf, region, CONF_REGION)) {
		ts_error_set(TS_EXIT_ENV, "the default entry written into %s did not read back as %s", disk, label);
		goto out;
	}
	if (!quiet)
		fprintf(stderr, "twinstage: %s boots its %s root by default%s (edited from the host, %.1f s)\n", disk,
			sides[i], awaiting ? ", the data of a disk attached to it later copied there" :
			from >= 0 ? ", the data of the other root copied there at its first boot" : "",
			(now_ms() - t0) / 1000.0);
	ret = 0;
out:
	rm_rf(dir);
	free(dir);
	free(raw);
	free(opts);
	free(label);
	free(entry);
	free(region);
	free(write);
	strbuf_release(&sb);
	return ret;
}

/* The libguestfs way: the conf rewritten, the data copied by the appliance. */
static int guestfs_select(const char *disk, int i, int from, int quiet)
{
	const char *side = sides[i];
	char *conf = NULL, *updated = NULL;
	double t0 = now_ms();
	guestfs_h *g;
	int ret = -1;

	if (!(g = open_disk(disk, 0)))
		return -1;
	if (guestfs_mkmountpoint(g, "/boot") || guestfs_mkmountpoint(g, "/from") || guestfs_mkmountpoint(g, "/to")) {
		ts_guestfs_fail(g, disk);
		goto out;
	}
	if (!(conf = read_conf(g, disk, "/boot")))
		goto out;
	if (from >= 0) {
		/* the other side's PostgreSQL data onto this side's root: what a person would copy by hand */
		char *src = xstrfmt("/dev/sda%d", from + 2), *dst = xstrfmt("/dev/sda%d", i + 2);
		int bad = guestfs_mount_ro(g, src, "/from") || guestfs_mount(g, dst, "/to") ||
			  guestfs_rm_rf(g, "/to/var/lib/postgresql") ||
			  guestfs_cp_a(g, "/from/var/lib/postgresql", "/to/var/lib/");

		if (bad)
			ts_guestfs_fail(g, "could not copy the PostgreSQL data from one root to the other");
		free(src);
		free(dst);
		if (bad)
			goto out;
	}
	updated = conf_set_default(conf, side);
	if (write_text(g, "/boot" EXTLINUX_CONF, updated))
		goto out;
	if (guestfs_umount_all(g) || guestfs_shutdown(g)) {
		ts_guestfs_fail(g, disk);
		goto out;
	}
	if (!quiet)
		fprintf(stderr, "twinstage: %s boots its %s root by default%s (%.0f s)\n", disk, side,
			from >= 0 ? ", with the data of the other root" : "", (now_ms() - t0) / 1000.0);
	ret = 0;
out:
	free(conf);
	free(updated);
	guestfs_close(g);
	return ret;
}

int ts_station_select(const char *disk, const char *side, const char *data_from, int quiet)
{
	int i = side_index(side), from = data_from ? side_index(data_from) : -1;
	int r;

	if (i < 0)
		return ts_error_set(TS_EXIT_USAGE, "unknown side \"%s\" (expected prod or dev)", side);
	if (data_from && from < 0)
		return ts_error_set(TS_EXIT_USAGE, "unknown side \"%s\" to copy the data from (expected prod or dev)",
				    data_from);
	if (from == i)
		return ts_error_set(TS_EXIT_USAGE, "the %s root's data cannot be copied from itself", side);
	if ((r = host_select(disk, i, from, 0, quiet)) <= 0)
		return r;
	return guestfs_select(disk, i, from, quiet);
}

int ts_station_select_awaiting(const char *disk, const char *side, const char *data_from, int quiet)
{
	int i = side_index(side), from = side_index(data_from);

	if (i < 0 || from < 0 || from == i)
		return ts_error_set(TS_EXIT_USAGE, "no entry boots the %s root with the data of the %s root of another disk",
				    side, data_from);
	return host_select(disk, i, from, 1, quiet);
}

int ts_station_show(const char *disk)
{
	guestfs_h *g = open_disk(disk, 1);
	char *conf = NULL, *def = NULL, **roots = NULL;
	int ret = -1;

	if (!g)
		return -1;
	if (!(conf = read_conf(g, disk, "/")))
		goto out;
	def = conf_default(conf);
	printf("disk %s\nentries (extlinux, on the boot partition):\n", disk);
	for (const char *l = conf; l && *l; l = next_line(l)) {
		const char *t = l + strspn(l, " \t");

		if (!strncasecmp(t, "LABEL ", 6)) {
			char *name = xstrndup(t + 6, strcspn(t + 6, " \t\r\n"));

			printf("  %s%s", name, def && !strcmp(def, name) ? " (default)" : "");
			free(name);
		} else if (!strncasecmp(t, "APPEND ", 7)) {
			printf(": %.*s\n", (int)strcspn(t + 7, "\r\n"), t + 7);
		}
	}
	guestfs_umount_all(g);
	/* the OS, its version and hostname of each root: libguestfs inspection */
	roots = guestfs_inspect_os(g);
	for (int i = 0; i < 2; i++) {
		char *dev = xstrfmt("/dev/sda%d", i + 2);
		int bad = ts_inspect_root(g, dev);

		free(dev);
		if (bad)
			goto out;
	}
	ret = 0;
out:
	free_strings(roots);
	free(conf);
	free(def);
	guestfs_close(g);
	return ret;
}

/* --- dualboot write ------------------------------------------------------- */

/* The sysfs folder of block device dev (new string), or NULL. */
static char *sys_of(dev_t dev)
{
	char link[64];

	snprintf(link, sizeof(link), "/sys/dev/block/%u:%u", major(dev), minor(dev));
	return realpath(link, NULL);
}

/*
 * The name of the whole disk the block device of sysfs folder sys is, or is
 * a partition of ("sda" for .../sda/sda2); *partition says which (new string).
 */
static char *whole_disk(const char *sys, int *partition)
{
	char *part = path_join(sys, "partition"), *disk = is_file(part) ? path_dirname(sys) : xstrdup(sys);
	char *name = xstrdup(strrchr(disk, '/') + 1);

	*partition = is_file(part);
	free(part);
	free(disk);
	return name;
}

/*
 * 1 when block device dev lives on the whole disk `disk` (a sysfs name): it
 * is the disk, one of its partitions, or built on them (device mapper,
 * md: its slaves, followed down).
 */
static int on_disk(dev_t dev, const char *disk, int depth)
{
	char *sys = sys_of(dev), *whole, *slaves;
	struct strvec names = STRVEC_INIT;
	int found, partition;

	if (!sys || depth > 8) {
		free(sys);
		return 0;
	}
	whole = whole_disk(sys, &partition);
	found = !strcmp(whole, disk);
	free(whole);
	slaves = path_join(sys, "slaves");
	list_names(slaves, "", &names);
	for (size_t i = 0; i < names.nr && !found; i++) {
		char *d = xstrfmt("/sys/class/block/%s/dev", names.v[i]);
		struct strbuf sb = STRBUF_INIT;
		unsigned ma, mi;

		if (!strbuf_read_file(&sb, d) && sscanf(sb.buf, "%u:%u", &ma, &mi) == 2)
			found = on_disk(makedev(ma, mi), disk, depth + 1);
		strbuf_release(&sb);
		free(d);
	}
	strvec_clear(&names);
	free(slaves);
	free(sys);
	return found;
}

/* What of disk is in use: a mount point or swap on it (new string), or NULL. */
static char *in_use(const char *disk)
{
	struct strbuf sb = STRBUF_INIT;
	char *what = NULL;

	strbuf_read_file(&sb, "/proc/self/mountinfo");
	for (char *l = sb.buf, *nl; l && *l && !what; l = nl ? nl + 1 : NULL) {
		unsigned ma, mi;
		char point[4096];

		nl = strchr(l, '\n');
		if (sscanf(l, "%*u %*u %u:%u %*s %4095s", &ma, &mi, point) == 3 && ma &&
		    on_disk(makedev(ma, mi), disk, 0))
			what = xstrfmt("a filesystem on it is mounted on %s", point);
	}
	strbuf_reset(&sb);
	strbuf_read_file(&sb, "/proc/swaps");
	for (char *l = sb.buf, *nl; l && *l && !what; l = nl ? nl + 1 : NULL) {
		char dev[4096];
		struct stat st;

		nl = strchr(l, '\n');
		if (sscanf(l, "%4095s", dev) == 1 && !stat(dev, &st) && S_ISBLK(st.st_mode) &&
		    on_disk(st.st_rdev, disk, 0))
			what = xstrfmt("%s on it is in use as swap", dev);
	}
	strbuf_release(&sb);
	return what;
}

/* The virtual size of disk image path, from qemu-img info; 0 with the error set. */
static uint64_t image_size(const char *path)
{
	struct child_process cp = CHILD_PROCESS_INIT;
	struct strbuf out = STRBUF_INIT;
	json_t *o = NULL;
	json_int_t size = 0;

	strvec_pushl(&cp.args, "qemu-img", "info", "--output=json", path, NULL);
	cp.capture = &out;
	cp.no_stdin = 1;
	if (run_command(&cp) || !(o = json_loads(out.buf, 0, NULL)) ||
	    json_unpack(o, "{s:I}", "virtual-size", &size) || size <= 0) {
		ts_error_set(TS_EXIT_USAGE, "\"%s\" is not a disk image qemu-img can read", path);
		size = 0;
	}
	json_decref(o);
	strbuf_release(&out);
	child_process_clear(&cp);
	return (uint64_t)size;
}

int ts_station_write(const char *disk, const char *device, int yes, int quiet)
{
	struct stat st, rootst;
	char *sys = NULL, *name = NULL, *use = NULL;
	uint64_t need, have = 0;
	char b1[32], b2[32];
	double t0;
	int fd, partition, ret = -1;

	if (!is_file(disk))
		return ts_error_set(TS_EXIT_USAGE, "no disk \"%s\"", disk);
	if (!(need = image_size(disk)))
		return -1;
	if (stat(device, &st) || !S_ISBLK(st.st_mode))
		return ts_error_set(TS_EXIT_USAGE, "refusing to write to %s: not a block device", device),
		       ts_error_hint("to copy the disk to a file: qemu-img convert -O raw DISK FILE");
	if (!(sys = sys_of(st.st_rdev))) {
		ts_error_set(TS_EXIT_USAGE, "refusing to write to %s: the kernel does not list it as a block device",
			     device);
		goto out;
	}
	name = whole_disk(sys, &partition);
	if (partition) {
		ts_error_set(TS_EXIT_USAGE, "refusing to write to %s: it is a partition (of /dev/%s)", device, name);
		ts_error_hint("the station disk holds its own partition table: name the whole disk");
		goto out;
	}
	if (!stat("/", &rootst) && on_disk(rootst.st_dev, name, 0)) {
		ts_error_set(TS_EXIT_USAGE, "refusing to write to %s: it holds this system's root filesystem", device);
		goto out;
	}
	if ((use = in_use(name))) {
		ts_error_set(TS_EXIT_USAGE, "refusing to write to %s: %s", device, use);
		ts_error_hint("unmount it first");
		goto out;
	}
	if ((fd = open(device, O_RDONLY | O_CLOEXEC)) < 0 || ioctl(fd, BLKGETSIZE64, &have)) {
		ts_error_set(TS_EXIT_USAGE, "refusing to write to %s: %s", device, strerror(errno));
		if (fd >= 0)
			close(fd);
		goto out;
	}
	close(fd);
	if (have < need) {
		ts_error_set(TS_EXIT_USAGE, "refusing to write to %s: it holds %s, the disk needs %s", device,
			     ts_human_bytes(have, b1, sizeof(b1)), ts_human_bytes(need, b2, sizeof(b2)));
		goto out;
	}
	if (!yes) {
		ts_error_set(TS_EXIT_USAGE, "refusing to write to %s without --yes: everything on it (%s) is overwritten",
			     device, ts_human_bytes(have, b1, sizeof(b1)));
		ts_error_hint("it is not mounted and does not hold this system's root; add --yes to write");
		goto out;
	}
	if (!quiet)
		fprintf(stderr, "twinstage: writing %s (%s) to %s\n", disk, ts_human_bytes(need, b2, sizeof(b2)),
			device);
	t0 = now_ms();
	{
		struct child_process cp = CHILD_PROCESS_INIT;
		int r;

		/* -n: the device exists; -t none: no page cache between the disk and the device */
		strvec_pushl(&cp.args, "qemu-img", "convert", "-n", "-t", "none", "-O", "raw", NULL);
		if (!quiet)
			strvec_push(&cp.args, "-p");
		strvec_pushl(&cp.args, disk, device, NULL);
		cp.no_stdin = 1;
		r = run_command(&cp);
		child_process_clear(&cp);
		if (r) {
			ts_error_set(TS_EXIT_ENV, "qemu-img could not write %s to %s", disk, device);
			goto out;
		}
	}
	/* the new partition table, for the kernel */
	if ((fd = open(device, O_RDONLY | O_CLOEXEC)) >= 0) {
		ioctl(fd, BLKRRPART);
		close(fd);
	}
	if (!quiet)
		fprintf(stderr, "twinstage: %s written to %s in %.1f s\n", disk, device, (now_ms() - t0) / 1000.0);
	ret = 0;
out:
	free(use);
	free(name);
	free(sys);
	return ret;
}

/* --- dualboot grub-entries ------------------------------------------------ */

/* "LABEL=x", "UUID=x" or a device (read for its UUID) as GRUB's search option and value, and root= (new strings). */
static int root_spec(const char *side, const char *spec, char **search, char **value, char **root)
{
	if (!strncmp(spec, "LABEL=", 6) && spec[6]) {
		*search = xstrdup("--label");
		*value = xstrdup(spec + 6);
	} else if (!strncmp(spec, "UUID=", 5) && spec[5]) {
		*search = xstrdup("--fs-uuid");
		*value = xstrdup(spec + 5);
	} else if (spec[0] == '/') {
		char *uuid = blkid_get_tag_value(NULL, "UUID", spec);

		if (!uuid)
			return ts_error_set(TS_EXIT_USAGE, "--%s %s: no filesystem UUID found on it", side, spec),
			       ts_error_hint("name the root as LABEL=x or UUID=x, or run as root");
		*search = xstrdup("--fs-uuid");
		*value = uuid;
	} else {
		return ts_error_set(TS_EXIT_USAGE, "--%s \"%s\": expected a device, LABEL=x or UUID=x", side, spec);
	}
	*root = xstrfmt("%s=%s", strcmp(*search, "--label") ? "UUID" : "LABEL", *value);
	return 0;
}

int ts_station_grub_entries(const char *prod, const char *dev, const char *kernel, const char *initrd)
{
	const char *specs[2] = { prod ? prod : "LABEL=twinstage-prod", dev ? dev : "LABEL=twinstage-dev" };
	char *search[2] = { NULL }, *value[2] = { NULL }, *root[2] = { NULL };
	int ret = 0;

	for (int i = 0; i < 2 && !ret; i++)
		ret = root_spec(sides[i], specs[i], &search[i], &value[i], &root[i]);
	for (int i = 0; i < 2 && !ret; i++)
		if (strchr(value[i], '\'') || strchr(kernel, '\'') || strchr(initrd, '\''))
			ret = ts_error_set(TS_EXIT_USAGE, "a quote in a root, kernel or initrd is not supported");
	if (!ret) {
		printf("# twinstage dual-boot entries: append them to /etc/grub.d/40_custom, then run update-grub.\n"
		       "# grub-reboot twinstage-dev boots the dev root once; grub-set-default twinstage-prod for good.\n");
		for (int i = 0; i < 2; i++)
			printf("menuentry 'twinstage %s (root %s)' --id twinstage-%s {\n"
			       "\tinsmod part_msdos\n\tinsmod part_gpt\n\tinsmod ext2\n"
			       "\tsearch --no-floppy %s --set=root '%s'\n"
			       "\tlinux '%s' root=%s ro\n\tinitrd '%s'\n}\n",
			       sides[i], root[i], sides[i], search[i], value[i], kernel, root[i], initrd);
	}
	for (int i = 0; i < 2; i++) {
		free(search[i]);
		free(value[i]);
		free(root[i]);
	}
	return ret;
}
