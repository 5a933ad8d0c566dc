/*
 * image.c: recipe → cached qcow2 disk (debootstrap, then libguestfs), the
 * inspection of any disk, and the KVM probe both the image build and the
 * vm backend ask.
 */
#include "env/image.h"
#include "config/ini.h"
#include "core/error.h"
#include "core/progress.h"
#include "core/run_command.h"
#include "core/strbuf.h"
#include "core/util.h"
#include "core/wrapper.h"
#include "env/accel.h"
#include "env/cache.h"
#include "env/guest_init.h"
#include "env/guestfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <guestfs.h>
#include <signal.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <zlib.h>

/*
 * Every image has these: its network, the agent twinstage stops PostgreSQL
 * through; and with init = systemd, a booting distribution.
 */
#define BASE_PACKAGES "iproute2,qemu-guest-agent"
#define SYSTEMD_PACKAGES "systemd-sysv,udev," BASE_PACKAGES
/* Bumped when what a build makes from the same recipe changes. */
#define IMAGE_FORMAT "twinstage-image-3"

struct recipe_ctx {
	struct ts_recipe *r;
	char *dir;
	int head, head_stack;	/* [image] or [stack] seen, and which */
};

static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	double v = strtod(s, &end);
	uint64_t mul = 1;

	if (end == s || !isfinite(v) || v <= 0 || v > 1e15)
		return -1;
	switch (*end) {
	case 'T': case 't': mul <<= 10; /* fall through */
	case 'G': case 'g': mul <<= 10; /* fall through */
	case 'M': case 'm': mul <<= 20; end++; break;
	case '\0': break;
	default: return -1;
	}
	if (*end == 'i')
		end++;
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end)
		return -1;
	*out = (uint64_t)(v * (double)mul);
	return 0;
}

static int recipe_handler(struct ts_ini *ini, const char *section, const char *name, const char *value)
{
	struct recipe_ctx *c = ini->user;
	struct ts_recipe *r = c->r;

	if (!name) {
		if (strcmp(section, "image") && strcmp(section, "stack") && strcmp(section, "postgresql") &&
		    strcmp(section, "files") && strcmp(section, "run"))
			return ts_ini_fail(ini, "unknown section [%s] (image or stack, postgresql, files, run)", section);
		if (!strcmp(section, "image") || !strcmp(section, "stack")) {
			int stack = !strcmp(section, "stack");

			if (c->head && c->head_stack != stack)
				return ts_ini_fail(ini, "a recipe is an [image] or a [stack], not both");
			c->head = 1;
			c->head_stack = r->stack = stack;
		}
		return 1;
	}
	if (!strcmp(section, "stack") && (!strcmp(name, "size") || !strcmp(name, "hostname"))) {
		ts_ini_fail(ini, "\"%s\" is for an [image] (a stack is a root folder, not a disk)", name);
		return 0;
	}
	if (!strcmp(section, "image") || !strcmp(section, "stack")) {
		if (!strcmp(name, "name") || !strcmp(name, "suite") || !strcmp(name, "mirror") ||
		    !strcmp(name, "hostname")) {
			char **slot = !strcmp(name, "name") ? &r->name : !strcmp(name, "suite") ? &r->suite :
				      !strcmp(name, "mirror") ? &r->mirror : &r->hostname;

			if (!*value || (!strcmp(name, "name") && strspn(value, "abcdefghijklmnopqrstuvwxyz"
					"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != strlen(value))) {
				ts_ini_fail(ini, "invalid %s \"%s\"", name, value);
				return 0;
			}
			free(*slot);
			*slot = xstrdup(value);
		} else if (!strcmp(name, "distribution")) {
			if (strcmp(value, "debian")) {
				ts_ini_fail(ini, "distribution \"%s\" is not supported (only \"debian\", with debootstrap)",
					    value);
				return 0;
			}
		} else if (!strcmp(name, "init") && !r->stack) {
			if (strcmp(value, "twinstage") && strcmp(value, "systemd")) {
				ts_ini_fail(ini, "invalid init \"%s\" (twinstage: PostgreSQL started directly, "
					    "or systemd: the root's services too)", value);
				return 0;
			}
			r->systemd = !strcmp(value, "systemd");
		} else if (!strcmp(name, "packages")) {
			strvec_split(&r->packages, value, " ,\t");
		} else if (!strcmp(name, "size")) {
			if (parse_size(value, &r->size) || r->size < (1ull << 30)) {
				ts_ini_fail(ini, "invalid size \"%s\" (a size of at least 1G, as in 4G or 2048M)",
					    value);
				return 0;
			}
		} else {
			ts_ini_fail(ini, "unknown key \"%s\" in [%s] (name, distribution, suite, mirror, packages%s)",
				    name, section, r->stack ? "" : ", size, hostname, init");
			return 0;
		}
	} else if (!strcmp(section, "postgresql")) {
		if (!strcmp(name, "version")) {
			if (strspn(value, "0123456789") != strlen(value) || !*value) {
				ts_ini_fail(ini, "invalid PostgreSQL version \"%s\" (a major version, as in 15)", value);
				return 0;
			}
			free(r->pg_version);
			r->pg_version = xstrdup(value);
		} else if (r->stack && (!strcmp(name, "conf") || !strcmp(name, "hba"))) {
			ts_ini_fail(ini, "\"%s\" is for an [image]: the dev side of a stack takes the production clone's settings",
				    name);
			return 0;
		} else if (!strcmp(name, "conf")) {
			strvec_push(&r->pg_conf, value);
		} else if (!strcmp(name, "hba")) {
			strvec_push(&r->pg_hba, value);
		} else {
			ts_ini_fail(ini, "unknown key \"%s\" in [postgresql] (version, conf, hba)", name);
			return 0;
		}
	} else if (!strcmp(section, "files")) {
		char *host = path_join(c->dir, value);

		if (name[0] != '/' || !is_file(host)) {
			ts_ini_fail(ini, name[0] != '/' ? "\"%s\" is not an absolute path in the guest" :
				    "no file \"%2$s\" to copy to %1$s", name, host);
			free(host);
			return 0;
		}
		strvec_pushl(&r->files, name, host, NULL);
		free(host);
	} else if (!strcmp(section, "run")) {
		if (strcmp(name, "command") || split_command(value, NULL)) {
			ts_ini_fail(ini, strcmp(name, "command") ? "unknown key \"%s\" in [run] (command)" :
				    "command \"%s\" cannot be split into words (" TS_COMMAND_HINT ")",
				    strcmp(name, "command") ? name : value);
			return 0;
		}
		strvec_push(&r->commands, value);
	} else {
		ts_ini_fail(ini, "unknown section [%s] (image, postgresql, files, run)", section);
		return 0;
	}
	return 1;
}

/* Mixes a file's content into the key; -1 when it cannot be read. */
static int key_add_file(uLong *crc, uLong *adler, const char *path)
{
	struct strbuf sb = STRBUF_INIT;

	if (strbuf_read_file(&sb, path) < 0) {
		strbuf_release(&sb);
		return -1;
	}
	*crc = crc32(*crc, (const Bytef *)sb.buf, (uInt)sb.len);
	*adler = adler32(*adler, (const Bytef *)sb.buf, (uInt)sb.len);
	strbuf_release(&sb);
	return 0;
}

int ts_recipe_load(struct ts_recipe *r, const char *path)
{
	struct recipe_ctx c = { .r = r };
	struct ts_ini ini = { .file = path, .what = "recipe", .handler = recipe_handler, .user = &c,
			      .expected = "a recipe: [image] or [stack], [postgresql], [files] and [run] sections" };
	uLong crc = crc32(0L, Z_NULL, 0), adler = adler32(0L, Z_NULL, 0);

	memset(r, 0, sizeof(*r));
	r->path = path_absolute(path);
	c.dir = path_dirname(r->path);
	r->suite = xstrdup("bookworm");
	r->hostname = xstrdup("twinstage");
	r->pg_version = xstrdup("15");
	r->size = 4ull << 30;
	if (ts_ini_parse(&ini, r->path))
		goto fail;
	if (!c.head) {
		ts_error_set(TS_EXIT_USAGE, "%s: neither an [image] nor a [stack] section", path);
		ts_error_hint("a recipe starts with [image] (a guest's disk) or [stack] (a root for the dev side)");
		goto fail;
	}
	if (!r->name) {
		const char *base = strrchr(r->path, '/') + 1;

		r->name = xstrndup(base, strcspn(base, "."));
	}
	crc = crc32(crc, (const Bytef *)IMAGE_FORMAT, sizeof(IMAGE_FORMAT));
	if (!r->stack)	/* and so is the initrd's */
		crc = crc32(crc, (const Bytef *)ts_guest_initrd_init, (uInt)strlen(ts_guest_initrd_init));
	if (!r->stack && !r->systemd) {	/* the init is part of what is built */
		char *init = ts_guest_init_script(r->pg_version);

		crc = crc32(crc, (const Bytef *)init, (uInt)strlen(init));
		adler = adler32(adler, (const Bytef *)init, (uInt)strlen(init));
		free(init);
	}
	key_add_file(&crc, &adler, r->path);
	for (size_t i = 1; i < r->files.nr; i += 2)
		if (key_add_file(&crc, &adler, r->files.v[i])) {
			ts_error_set(TS_EXIT_USAGE, "%s: could not read \"%s\"", path, r->files.v[i]);
			goto fail;
		}
	r->key = xstrfmt("%08lx%08lx", crc & 0xffffffffUL, adler & 0xffffffffUL);
	free(c.dir);
	return 0;
fail:
	free(c.dir);
	ts_recipe_free(r);
	return -1;
}

void ts_recipe_free(struct ts_recipe *r)
{
	free(r->path);
	free(r->name);
	free(r->suite);
	free(r->mirror);
	free(r->hostname);
	free(r->pg_version);
	free(r->key);
	strvec_clear(&r->packages);
	strvec_clear(&r->pg_conf);
	strvec_clear(&r->pg_hba);
	strvec_clear(&r->files);
	strvec_clear(&r->commands);
	memset(r, 0, sizeof(*r));
}

void ts_image_free(struct ts_image *img)
{
	free(img->disk);
	free(img->kernel);
	free(img->vmlinux);
	free(img->initrd);
	free(img->pg_version);
	memset(img, 0, sizeof(*img));
}

/* The first mirror of the Debian archive in the machine's apt sources (deb822 or one-line). */
char *ts_apt_mirror(void)
{
	const char *files[] = { "/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list" };

	for (size_t i = 0; i < 2; i++) {
		struct strbuf sb = STRBUF_INIT;
		char *line, *save = NULL, *found = NULL;

		if (strbuf_read_file(&sb, files[i]) < 0) {
			strbuf_release(&sb);
			continue;
		}
		for (line = strtok_r(sb.buf, "\n", &save); line && !found; line = strtok_r(NULL, "\n", &save)) {
			struct strvec w = STRVEC_INIT;

			strvec_split(&w, line, " \t");
			if (w.nr >= 2 && !strcmp(w.v[0], "URIs:") && !strstr(w.v[1], "security"))
				found = xstrdup(w.v[1]);
			else if (w.nr >= 3 && !strcmp(w.v[0], "deb") && w.v[1][0] != '[' &&
				 !strstr(w.v[1], "security"))
				found = xstrdup(w.v[1]);
			strvec_clear(&w);
		}
		strbuf_release(&sb);
		if (found)
			return found;
	}
	return xstrdup("http://deb.debian.org/debian");
}

int ts_root_write(const char *root, const char *path, const char *text, int append)
{
	char *full = path_join(root, path[0] == '/' ? path + 1 : path);
	char *dir = path_dirname(full);
	int r = mkdir_p(dir, 0755);

	if (!r) {
		FILE *fp = fopen(full, append ? "a" : "w");

		if (!fp || fputs(text, fp) < 0 || fclose(fp))
			r = ts_error_set(TS_EXIT_ENV, "could not write \"%s\": %s", full, strerror(errno));
	}
	free(dir);
	free(full);
	return r;
}

int ts_image_run(struct child_process *cp, const char *log, const char *what)
{
	cp->out_path = log;
	cp->no_stdin = 1;
	if (run_command(cp))
		return ts_error_set(TS_EXIT_ENV, "%s failed", what),
		       ts_error_hint("its output is in %s", log);
	return 0;
}

static int copy_file(const char *from, const char *to)
{
	struct child_process cp = CHILD_PROCESS_INIT;
	int r;

	strvec_pushl(&cp.args, "cp", "--preserve=mode", from, to, NULL);
	cp.quiet = 1;
	r = run_command(&cp);
	child_process_clear(&cp);
	if (r)
		return ts_error_set(TS_EXIT_ENV, "could not copy \"%s\" to \"%s\"", from, to);
	return 0;
}

int ts_recipe_apply(const struct ts_recipe *r, const char *root, const char *log)
{
	int ret = 0;

	for (size_t i = 0; i + 1 < r->files.nr && !ret; i += 2) {
		char *to = path_join(root, r->files.v[i] + 1), *d = path_dirname(to);

		ret = mkdir_p(d, 0755) || copy_file(r->files.v[i + 1], to);
		free(d);
		free(to);
	}
	for (size_t i = 0; i < r->commands.nr && !ret; i++) {
		struct child_process cp = CHILD_PROCESS_INIT;
		char *what = xstrfmt("%s: command \"%s\"", r->path, r->commands.v[i]);

		strvec_pushl(&cp.args, "chroot", root, NULL);
		split_command(r->commands.v[i], &cp.args);
		strvec_push(&cp.env, "DEBIAN_FRONTEND=noninteractive");
		ret = ts_image_run(&cp, log, what);
		child_process_clear(&cp);
		free(what);
	}
	if (!ret) {
		/* the packages debootstrap downloaded: a third of the root, of no use in it */
		char *debs = path_join(root, "var/cache/apt/archives");
		struct strvec names = STRVEC_INIT;

		list_names(debs, ".deb", &names);
		for (size_t i = 0; i < names.nr; i++) {
			char *p = path_join(debs, names.v[i]);

			unlink(p);
			free(p);
		}
		strvec_clear(&names);
		free(debs);
	}
	return ret;
}

/* init = systemd: the network from the user-mode DHCP, and no unit a rehearsal has no use for. */
static int systemd_units(const char *root)
{
	/* units a rehearsal guest has no use for, and one that would hold the boot */
	static const char *const links[][2] = {
		{ "/etc/systemd/system/multi-user.target.wants/systemd-networkd.service",
		  "/lib/systemd/system/systemd-networkd.service" },
		{ "/etc/systemd/system/systemd-networkd-wait-online.service", "/dev/null" },
		{ "/etc/systemd/system/apt-daily.timer", "/dev/null" },
		{ "/etc/systemd/system/apt-daily-upgrade.timer", "/dev/null" },
		{ "/etc/systemd/system/e2scrub_reap.service", "/dev/null" },
	};
	int ret = ts_root_write(root, "/etc/systemd/network/80-twinstage.network",
				"[Match]\nName=en* eth*\n\n[Network]\nDHCP=yes\n", 0);

	for (size_t i = 0; i < sizeof(links) / sizeof(links[0]) && !ret; i++) {
		char *p = path_join(root, links[i][0] + 1), *d = path_dirname(p);

		mkdir_p(d, 0755);
		unlink(p);
		if (symlink(links[i][1], p))
			ret = ts_error_set(TS_EXIT_ENV, "could not link \"%s\": %s", p, strerror(errno));
		free(d);
		free(p);
	}
	return ret;
}

/* twinstage's init (guest_init.h), executable, for the kernel's init= to boot. */
static int own_init(const struct ts_recipe *r, const char *root)
{
	char *text = ts_guest_init_script(r->pg_version), *p = path_join(root, TS_GUEST_INIT + 1);
	int ret = ts_root_write(root, TS_GUEST_INIT, text, 0);

	if (!ret && chmod(p, 0755))
		ret = ts_error_set(TS_EXIT_ENV, "could not make \"%s\" executable: %s", p, strerror(errno));
	free(p);
	free(text);
	return ret;
}

/* The recipe's system, PostgreSQL settings, files and commands, applied to the root. */
static int configure_root(const struct ts_recipe *r, const char *root, const char *log)
{
	char *pgdir = xstrfmt("/etc/postgresql/%s/main", r->pg_version);
	char *conf_d = xstrfmt("%s/conf.d/twinstage.conf", pgdir), *hba = path_join(pgdir, "pg_hba.conf");
	char *full = path_join(root, pgdir + 1), *text;
	struct strbuf sb = STRBUF_INIT;
	int ret = 0;

	if (!is_dir(full)) {
		ret = ts_error_set(TS_EXIT_ENV, "the image has no PostgreSQL %s cluster (%s)", r->pg_version, pgdir);
		ts_error_hint("is postgresql-%s a package of %s?", r->pg_version, r->suite);
		goto out;
	}
	text = xstrfmt("%s\n127.0.0.1 localhost\n127.0.1.1 %s\n", r->hostname, r->hostname);
	ret = ts_root_write(root, "/etc/hosts", strchr(text, '\n') + 1, 0);
	strchr(text, '\n')[1] = '\0';	/* the name alone: a hostname file holds one line */
	ret = ret || ts_root_write(root, "/etc/hostname", text, 0);
	free(text);
	/* root on the one partition twinstage makes */
	ret = ret || ts_root_write(root, "/etc/fstab", "/dev/vda1 / ext4 defaults,noatime 0 1\n", 0);
	for (size_t i = 0; i < r->pg_conf.nr; i++)
		strbuf_addf(&sb, "%s\n", r->pg_conf.v[i]);
	ret = ret || ts_root_write(root, conf_d, sb.buf, 0);
	strbuf_reset(&sb);
	strbuf_addstr(&sb, "# twinstage: the host, through the forwarded loopback port\n");
	for (size_t i = 0; i < r->pg_hba.nr; i++)
		strbuf_addf(&sb, "%s\n", r->pg_hba.v[i]);
	ret = ret || ts_root_write(root, hba, sb.buf, 1);
	if (ret)
		goto out;
	ret = r->systemd ? systemd_units(root) : own_init(r, root);
	if (!ret)
		ret = ts_recipe_apply(r, root, log);
out:
	strbuf_release(&sb);
	free(pgdir);
	free(conf_d);
	free(hba);
	free(full);
	return ret;
}

/*
 * Makes disk (qcow2) from the root folder. libguestfs lays out the disk (an
 * MBR, one partition filling it); mke2fs -d writes the ext4 filesystem of the
 * root straight into that partition of the raw file, on the host, instead
 * of a tar unpacked file by file inside the appliance, which takes minutes
 * under software emulation; qemu-img makes the raw file a sparse qcow2.
 */
static int make_disk(const struct ts_recipe *r, const char *root, const char *raw, const char *disk,
		     const char *log)
{
	guestfs_h *g = ts_guestfs_open();
	struct guestfs_partition_list *parts = NULL;
	struct child_process cp = CHILD_PROCESS_INIT;
	int ret = -1;

	if (!g)
		return -1;
	if (guestfs_disk_create(g, raw, "raw", (int64_t)r->size, -1) ||
	    guestfs_add_drive_opts(g, raw, GUESTFS_ADD_DRIVE_OPTS_FORMAT, "raw", -1)) {
		ts_guestfs_fail(g, "could not create the disk");
		goto out;
	}
	if (guestfs_launch(g)) {
		ts_guestfs_fail(g, "could not start libguestfs");
		ts_error_hint("libguestfs needs a kernel in /boot (package linux-image-amd64); LIBGUESTFS_DEBUG=1 shows why it failed");
		goto out;
	}
	if (guestfs_part_disk(g, "/dev/sda", "mbr") || guestfs_part_set_bootable(g, "/dev/sda", 1, 1) ||
	    !(parts = guestfs_part_list(g, "/dev/sda")) || parts->len != 1 || guestfs_shutdown(g)) {
		ts_guestfs_fail(g, "could not partition the disk");
		goto out;
	}
	strvec_pushl(&cp.args, "mke2fs", "-q", "-F", "-t", "ext4", "-L", "twinstage-root", "-d", root, "-E", NULL);
	strvec_pushf(&cp.args, "offset=%llu", (unsigned long long)parts->val[0].part_start);
	strvec_push(&cp.args, raw);
	strvec_pushf(&cp.args, "%lluk", (unsigned long long)(parts->val[0].part_size / 1024));
	if (ts_image_run(&cp, log, "mke2fs of the image's root"))
		goto out;
	child_process_clear(&cp);
	strvec_pushl(&cp.args, "qemu-img", "convert", "-O", "qcow2", raw, disk, NULL);
	if (ts_image_run(&cp, log, "qemu-img convert of the disk"))
		goto out;
	ret = 0;
out:
	if (parts)
		guestfs_free_partition_list(parts);
	child_process_clear(&cp);
	guestfs_close(g);
	return ret;
}

/* The modules a guest's root needs; modprobe adds what they depend on. */
static const char *const guest_modules[] = {
	"virtio_pci", "virtio_blk", "virtio_net", "virtio_console", "virtio_rng", "ext4", NULL
};

/* The compressions twinstage unpacks, by their magic: a kernel's payload, a module. */
static const struct { const char *magic; size_t len; const char *tool; } packings[] = {
	{ "\xfd" "7zXZ", 5, "xz" }, { "\x28\xb5\x2f\xfd", 4, "zstd" }, { "\x1f\x8b", 2, "gzip" },
};

/* The tool that unpacks data beginning with head (len bytes of it), or NULL: not packed so. */
static const char *unpacker(const char *head, size_t len)
{
	for (size_t k = 0; k < sizeof(packings) / sizeof(packings[0]); k++)
		if (len >= packings[k].len && !memcmp(head, packings[k].magic, packings[k].len))
			return packings[k].tool;
	return NULL;
}

/* Runs `tool -dc from`, its output into the new file `to`, its messages into log. */
static int unpack_to(const char *tool, const char *from, const char *to, const char *log, const char *what)
{
	struct child_process cp = CHILD_PROCESS_INIT;
	int fd = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644), ret;

	if (fd < 0)
		return ts_error_set(TS_EXIT_ENV, "could not write \"%s\": %s", to, strerror(errno));
	strvec_pushl(&cp.args, tool, "-dc", from, NULL);
	cp.pipe_out = fd;
	cp.out_path = log;
	cp.no_stdin = 1;
	ret = run_command(&cp);
	child_process_clear(&cp);
	close(fd);
	if (ret)
		return ts_error_set(TS_EXIT_ENV, "%s could not unpack \"%s\"", tool, what),
		       ts_error_hint("its output is in %s", log);
	return 0;
}

/* Copies a module into the initrd, uncompressed (busybox's insmod reads plain .ko). */
static int copy_module(const char *from, const char *to, const char *log)
{
	char head[8];
	const char *tool;
	int fd = open(from, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, head, sizeof(head));

	if (fd >= 0)
		close(fd);
	if (n < 0)
		return ts_error_set(TS_EXIT_ENV, "could not read the module \"%s\": %s", from, strerror(errno));
	tool = unpacker(head, (size_t)n);
	return tool ? unpack_to(tool, from, to, log, from) : copy_file(from, to);
}

/*
 * The guests' initrd, made here: a static busybox, the host kernel's
 * modules a guest needs in the order modprobe loads them, and an /init
 * (guest_init.c) that loads them, mounts the root and hands it to its
 * init, as an uncompressed cpio. initramfs-tools' own carries the host's
 * hooks (udev, lvm, mdadm's raid modules with their 1 s benchmark, btrfs):
 * 4 to 5 s of every boot under emulation, against a fraction of a second.
 */
static int guest_initrd(const char *kernel, const char *tmp, const char *out, const char *log)
{
	const char *kver = strstr(kernel, "vmlinuz-") + 8;
	char *dir = path_join(tmp, "initrd.d"), *list = path_join(tmp, "initrd.list");
	struct child_process cp = CHILD_PROCESS_INIT;
	struct strbuf deps = STRBUF_INIT, mods = STRBUF_INIT, all = STRBUF_INIT;
	struct strvec names = STRVEC_INIT;	/* the modules' file names, in loading order */
	char *p;
	int ret = 0, fd;

	if (!is_file("/bin/busybox"))
		return ts_error_set(TS_EXIT_ENV, "no /bin/busybox for the guests' initrd"),
		       ts_error_hint("install busybox-static");
	strvec_pushl(&cp.args, "modprobe", "-a", "--show-depends", "--set-version", kver, NULL);
	for (size_t i = 0; guest_modules[i]; i++)
		strvec_push(&cp.args, guest_modules[i]);
	cp.capture = &deps;
	if (run_command(&cp))
		ret = ts_error_set(TS_EXIT_ENV, "modprobe could not list the guests' modules for kernel %s", kver),
		ts_error_hint("it said: %s", deps.buf ? deps.buf : "nothing");
	child_process_clear(&cp);
	for (const char *d[] = { "bin", "dev", "proc", "root", "modules.d", NULL }, **q = d; !ret && *q; q++) {
		p = path_join(dir, *q);
		ret = mkdir_p(p, 0755);
		free(p);
	}
	p = path_join(dir, "bin/busybox");
	ret = ret || copy_file("/bin/busybox", p);
	free(p);
	/* "insmod /lib/modules/.../x.ko " lines, a module once (several share a dependency) */
	for (char *line = deps.buf, *nl; !ret && line && *line; line = nl ? nl + 1 : NULL) {
		char *path, *name, *to;
		const char *b;

		if ((nl = strchr(line, '\n')))
			*nl = '\0';
		if (strncmp(line, "insmod ", 7))
			continue;	/* "builtin x": in the kernel already */
		path = xstrndup(line + 7, strcspn(line + 7, " "));
		b = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
		name = xstrfmt("%.*s.ko", (int)strcspn(b, "."), b);
		if (strvec_find(&names, name) < 0) {
			to = xstrfmt("%s/modules.d/%s", dir, name);
			ret = copy_module(path, to, log);
			strvec_push(&names, name);
			free(to);
		}
		free(name);
		free(path);
	}
	/* /modules for the init; cpio's list of names, a folder before what it holds */
	strbuf_addstr(&all, ".\nbin\nbin/busybox\ndev\nproc\nroot\nmodules\ninit\nmodules.d\n");
	for (size_t i = 0; i < names.nr; i++) {
		strbuf_addf(&mods, "%s\n", names.v[i]);
		strbuf_addf(&all, "modules.d/%s\n", names.v[i]);
	}
	p = path_join(dir, "modules");
	ret = ret || write_file(p, mods.buf ? mods.buf : "", mods.len);
	free(p);
	p = path_join(dir, "init");
	ret = ret || write_file(p, ts_guest_initrd_init, strlen(ts_guest_initrd_init)) || chmod(p, 0755);
	free(p);
	/* cpio reads the names on its stdin: every file of the folder, relative */
	ret = ret || write_file(list, all.buf, all.len);
	if (!ret && (fd = open(list, O_RDONLY | O_CLOEXEC)) >= 0) {
		strvec_pushl(&cp.args, "cpio", "--quiet", "-o", "-H", "newc", "-R", "0:0", "-D", dir, "-O", out, NULL);
		cp.pipe_in = fd;
		cp.out_path = log;
		if (run_command(&cp))
			ret = ts_error_set(TS_EXIT_ENV, "cpio could not make the guests' initrd"),
			ts_error_hint("its output is in %s", log);
		child_process_clear(&cp);
		close(fd);
	} else if (!ret) {
		ret = ts_error_set(TS_EXIT_ENV, "could not read \"%s\": %s", list, strerror(errno));
	}
	strbuf_release(&deps);
	strbuf_release(&mods);
	strbuf_release(&all);
	strvec_clear(&names);
	free(dir);
	free(list);
	return ret;
}

/*
 * The kernel unpacked (an ELF vmlinux) for the guests' direct boot: qemu
 * enters it at its PVH entry point, with no BIOS, real-mode setup or
 * decompression, 4 to 5 s of a boot under emulation. The payload's place
 * is in the bzImage's header (boot protocol 2.08+), its last 4 bytes the
 * size the decompressor appends; the dual-boot station keeps the bzImage.
 */
static int unpacked_kernel(const char *kernel, const char *tmp, const char *out, const char *log)
{
	struct strbuf img = STRBUF_INIT;
	char *payload = path_join(tmp, "kernel.payload");
	const unsigned char *h;
	const char *tool = NULL;
	size_t off, len;
	int ret = -1;

	if (strbuf_read_file(&img, kernel) || img.len < 0x250) {
		ts_error_set(TS_EXIT_ENV, "could not read the kernel \"%s\"", kernel);
		goto out;
	}
	h = (const unsigned char *)img.buf;
	off = ((size_t)(h[0x1f1] ? h[0x1f1] : 4) + 1) * 512 +
	      (h[0x248] | h[0x249] << 8 | h[0x24a] << 16 | (size_t)h[0x24b] << 24);
	len = h[0x24c] | h[0x24d] << 8 | h[0x24e] << 16 | (size_t)h[0x24f] << 24;
	if (!memcmp(img.buf + 0x202, "HdrS", 4) && len > 4 && off + len <= img.len)
		tool = unpacker(img.buf + off, len);
	if (!tool) {
		ts_error_set(TS_EXIT_ENV, "\"%s\" is not a bzImage whose payload twinstage can unpack", kernel);
		ts_error_hint("twinstage unpacks bzImages whose payload is xz, zstd or gzip");
		goto out;
	}
	if (!(ret = write_file(payload, img.buf + off, len - 4)))
		ret = unpack_to(tool, payload, out, log, kernel);
out:
	unlink(payload);
	free(payload);
	strbuf_release(&img);
	return ret;
}

int ts_recipe_write_meta(const struct ts_recipe *r, const char *path, double ms)
{
	char when[32];
	json_t *o;
	int ret;

	iso_time(when, sizeof(when));
	o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:f}", "recipe", r->path, "name", r->name,
		      "key", r->key, "suite", r->suite, "postgresql", r->pg_version,
		      "size", (json_int_t)r->size, "built", when, "build_seconds", ms / 1000.0);
	ret = json_dump_file(o, path, JSON_INDENT(2)) ?
		ts_error_set(TS_EXIT_ENV, "could not write \"%s\"", path) : 0;
	json_decref(o);
	return ret;
}

void ts_step_line(int quiet, const char *what, double t0)
{
	if (!quiet)
		fprintf(stderr, "twinstage: %s (%.0f s)\n", what, (now_ms() - t0) / 1000.0);
}

int ts_root_debootstrap(const struct ts_recipe *r, const char *cache, const char *root, const char *base,
			const char *log, int quiet)
{
	char *mirror = r->mirror ? xstrdup(r->mirror) : ts_apt_mirror();
	/*
	 * one folder per suite: two builds of two suites at once (an image and
	 * a stack) share no file; two of one suite take turns (its lock)
	 */
	char *debs_dir = xstrfmt("%s/debs/%s", cache, r->suite), *debs_lock = xstrfmt("%s.lock", debs_dir);
	struct child_process cp = CHILD_PROCESS_INIT;
	struct strbuf inc = STRBUF_INIT;
	struct ts_progress p = { .what = "debootstrap", .total = 700ull << 20,
				 .probe = ts_progress_dir_probe, .arg = (void *)root, .quiet = quiet };
	double t = now_ms();
	int ret, fd = -1;

	strbuf_addf(&inc, "--include=%s%spostgresql-%s", base, *base ? "," : "", r->pg_version);
	for (size_t i = 0; i < r->packages.nr; i++)
		strbuf_addf(&inc, ",%s", r->packages.v[i]);
	/* the packages downloaded are kept for the next build of any recipe */
	strvec_pushl(&cp.args, "debootstrap", "--variant=minbase", inc.buf, NULL);
	strvec_pushf(&cp.args, "--cache-dir=%s", debs_dir);
	strvec_pushl(&cp.args, r->suite, root, mirror, NULL);
	if ((ret = mkdir_p(debs_dir, 0755)) || (ret = (fd = ts_cache_lock(debs_lock)) < 0 ? -1 : 0))
		goto out;
	if (!quiet)
		fprintf(stderr, "twinstage: %s %s: debootstrap %s from %s (about a minute)\n",
			r->stack ? "stack" : "image", r->name, r->suite, mirror);
	cp.out_path = log;
	cp.no_stdin = 1;
	ret = start_command(&cp);
	if (!ret) {
		ts_progress_watch(&p, &cp);
		ret = finish_command(&cp);
	}
	if (ret) {
		ret = ts_error_set(TS_EXIT_ENV, "debootstrap of %s failed", r->suite);
		ts_error_hint("its output is in %s", log);
		goto out;
	}
	ts_step_line(quiet, "debootstrap done", t);
out:
	if (fd >= 0)
		ts_cache_unlock(fd, debs_lock);
	free(debs_lock);
	child_process_clear(&cp);
	strbuf_release(&inc);
	free(mirror);
	free(debs_dir);
	return ret;
}

static int build(const struct ts_recipe *r, const char *cache, const char *stem, struct ts_image *img,
		 int quiet)
{
	char *tmp = xstrfmt("%s/tmp-%s-%d", cache, stem, (int)getpid());
	char *root = path_join(tmp, "root"), *raw = path_join(tmp, "disk.raw");
	char *log = xstrfmt("%s/%s.build.log", cache, stem), *disk = path_join(tmp, "disk.qcow2");
	char *kernel = NULL, *initrd = NULL;
	char *meta = xstrfmt("%s/%s.json", cache, stem);
	char *initrd_out = path_join(tmp, "initrd"), *vmlinux_out = path_join(tmp, "vmlinux");
	double t0 = now_ms(), t;
	int ret;

	rm_rf(tmp);
	unlink(log);
	if ((ret = mkdir_p(tmp, 0755)))
		goto out;
	if ((ret = ts_root_debootstrap(r, cache, root, r->systemd ? SYSTEMD_PACKAGES : BASE_PACKAGES, log, quiet)))
		goto out;
	if ((ret = configure_root(r, root, log)))
		goto out;
	/* the guests boot the host's kernel directly; its initrd holds virtio_blk and virtio_net */
	kernel = ts_boot_file("/", "vmlinuz-");
	initrd = ts_boot_file("/", "initrd.img-");
	if (!kernel || !initrd) {
		ret = ts_error_set(TS_EXIT_ENV, "no kernel and initrd in /boot for the guests to boot");
		ts_error_hint("install linux-image-amd64 (libguestfs needs it too)");
		goto out;
	}
	if ((ret = guest_initrd(kernel, tmp, initrd_out, log)) ||
	    (ret = unpacked_kernel(kernel, tmp, vmlinux_out, log)))
		goto out;
	if (!quiet)
		fprintf(stderr, "twinstage: image %s: making the disk (libguestfs, mke2fs)\n", r->name);
	t = now_ms();
	if ((ret = make_disk(r, root, raw, disk, log)))
		goto out;
	ts_step_line(quiet, "disk made", t);
	{
		char *final_kernel = xstrfmt("%s/%s.vmlinuz", cache, stem);
		char *final_initrd = xstrfmt("%s/%s.initrd", cache, stem);

		ret = copy_file(kernel, final_kernel) || copy_file(initrd_out, final_initrd) ||
		      (rename(vmlinux_out, img->vmlinux) ?	/* 66 MB, on the cache's own filesystem */
		       ts_error_set(TS_EXIT_ENV, "could not move the kernel to \"%s\": %s", img->vmlinux,
				    strerror(errno)) : 0) ||
		      ts_recipe_write_meta(r, meta, now_ms() - t0);
		/* the disk last: its presence says the image is whole */
		if (!ret && rename(disk, img->disk))
			ret = ts_error_set(TS_EXIT_ENV, "could not move the disk to \"%s\": %s", img->disk,
					   strerror(errno));
		chmod(img->disk, 0644);
		free(final_kernel);
		free(final_initrd);
	}
	img->build_ms = now_ms() - t0;
out:
	rm_rf(tmp);
	free(tmp);
	free(root);
	free(raw);
	free(log);
	free(disk);
	free(kernel);
	free(initrd);
	free(meta);
	free(initrd_out);
	free(vmlinux_out);
	return ret;
}

int ts_image_ensure(const struct ts_recipe *r, struct ts_image *img, int quiet)
{
	char *cache = ts_image_cache_dir();
	char *stem = xstrfmt("%s-%s", r->name, r->key);
	char *lock = xstrfmt("%s/%s.lock", cache, stem);
	int fd = -1, ret;

	memset(img, 0, sizeof(*img));
	if (r->stack)
		return ts_error_set(TS_EXIT_USAGE, "%s is a [stack] recipe, not an [image]", r->path),
		       ts_error_hint("a stack is the dev side's root on the instance backend ([environments] dev_stack)");
	img->disk = xstrfmt("%s/%s.qcow2", cache, stem);
	img->kernel = xstrfmt("%s/%s.vmlinuz", cache, stem);
	img->initrd = xstrfmt("%s/%s.initrd", cache, stem);
	img->vmlinux = xstrfmt("%s/%s.vmlinux", cache, stem);
	img->pg_version = xstrdup(r->pg_version);
	img->own_init = !r->systemd;
	if ((ret = mkdir_p(cache, 0755)))
		goto out;
	/* one build at a time of the same image; the others wait and find it */
	if ((fd = ts_cache_lock(lock)) < 0) {
		ret = -1;
		goto out;
	}
	if (is_file(img->disk) && is_file(img->kernel) && is_file(img->initrd) && is_file(img->vmlinux)) {
		img->cached = 1;
		ret = 0;
		goto out;
	}
	if (geteuid() != 0) {
		ret = ts_error_set(TS_EXIT_ENV, "building image %s needs root (debootstrap)", r->name);
		goto out;
	}
	ret = build(r, cache, stem, img, quiet);
out:
	ts_cache_unlock(fd, lock);
	free(lock);
	free(stem);
	free(cache);
	return ret;
}
