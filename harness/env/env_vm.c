/*
 * env_vm.c: each side a libvirt guest on a qcow2 overlay of an image built
 * from a recipe (image.c), on this machine or a remote libvirt host
 * (vm_host.c).
 *
 * A side's disk is a volume of the workdir's storage pool, twinstage-<tag>,
 * over <home>: <workdir>/vm (or a folder under /var/tmp when libvirt's qemu
 * user cannot walk down to the workdir), or <remote_dir>/twinstage-<tag> on
 * a remote host. The volume's name is kept in <side dir>/disk. PostgreSQL
 * in the guest is reached on 127.0.0.1:<side's port>, forwarded by qemu's
 * user-mode network to the guest's 5432 (and from a remote host's loopback
 * to this one's by ssh); nothing talks to a guest address.
 *
 * A snapshot freezes a side's disk into a read-only layer (the side moves
 * to a new overlay on it) and puts one more overlay on it for the copy:
 * O(1) whatever the size. The copy of a running guest on this machine is
 * the running guest itself, its memory migrated by qemu into a guest on
 * the new overlay (fork_running): no boot. Guests are stopped by stopping PostgreSQL through
 * the guest agent, then destroyed (a minimal guest ignores ACPI). Domains
 * are named twinstage-<tag>-<side>, the tag a crc of the workdir (and of
 * this machine's name for a remote host), so `down` finds them after a run
 * that was killed.
 */
#include "core/error.h"
#include "core/strbuf.h"
#include "core/util.h"
#include "core/wrapper.h"
#include "env/dualboot.h"
#include "env/env.h"
#include "env/guest_init.h"
#include "env/guestfs.h"
#include "env/image.h"
#include "env/vm_host.h"
#include "pg/pg.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <libvirt/libvirt-qemu.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* A built image and its files as paths on the libvirt host. */
struct guest_image {
	struct ts_image img;
	int have;
	char *base, *kernel, *initrd, *vmlinux;
};

struct vm_state {
	struct ts_vhost host;
	int connected;
	virStoragePoolPtr pool;
	/* [0] the guests' image; [1] with dev_image, the dev guest's (and its scratch server's) */
	struct guest_image im[2];
	const char *accel;	/* "kvm" or "tcg" */
	const char *accel_why;
	char tag[9];		/* crc of the workdir (and of this machine, for a remote host) */
	char *home;		/* the pool's folder on the libvirt host */
	int dualboot;		/* the dualboot backend: the base is the image's station disk */
	/*
	 * dualboot: the dev guest booted early (vm_early), beside the
	 * production clone's; its initrd waits for the disk its data comes
	 * from (1), or copies it (2, attached by vm_snapshot); 0 once seen
	 * ready, or none booted early. early_t0: when it was started.
	 */
	int awaiting;
	double early_t0;
};

static struct vm_state *state(struct ts_env *env)
{
	struct vm_state *st = env->backend;

	if (!st) {
		st = xcalloc(1, sizeof(*st));
		st->dualboot = env->ops == &ts_env_dualboot_ops;
		env->backend = st;
	}
	return st;
}

/* The pool's name (new string). */
static char *pool_name(struct ts_env *env)
{
	return xstrfmt("twinstage-%s", state(env)->tag);
}

/*
 * Connected to libvirt, with the workdir's pool: NULL (error set) when not.
 * It sets the tag and home every name below is made of: call it first.
 */
static virConnectPtr conn(struct ts_env *env)
{
	struct vm_state *st = state(env);
	char *name;

	if (st->pool)
		return st->host.conn;
	if (!st->connected) {
		if (ts_vhost_open(&st->host, env->cfg->vm_uri))
			return NULL;
		st->connected = 1;
	}
	if (!st->home && st->host.remote) {
		char host[256] = "", *tagged;

		gethostname(host, sizeof(host) - 1);
		tagged = xstrfmt("%s:%s", host, env->cfg->workdir);
		crc32_hex(tagged, strlen(tagged), st->tag);
		free(tagged);
		st->home = xstrfmt("%s/twinstage-%s", env->cfg->vm_remote_dir, st->tag);
	} else if (!st->home) {
		crc32_hex(env->cfg->workdir, strlen(env->cfg->workdir), st->tag);
		if (ts_home_reachable(&env->home, env->cfg->workdir)) {
			st->home = path_join(env->cfg->workdir, "vm");
		} else {
			char *out = ts_home_outside(&env->home, "/var/tmp");

			st->home = path_join(out, "vm");
			free(out);
		}
	}
	name = pool_name(env);
	st->pool = ts_vhost_pool(&st->host, name, st->home);
	free(name);
	return st->pool ? st->host.conn : NULL;
}

static void vm_release(struct ts_env *env)
{
	struct vm_state *st = env->backend;

	if (!st)
		return;
	if (st->pool)
		virStoragePoolFree(st->pool);
	if (st->connected)
		ts_vhost_close(&st->host);
	for (int i = 0; i < 2; i++) {
		if (st->im[i].have)
			ts_image_free(&st->im[i].img);
		free(st->im[i].base);
		free(st->im[i].kernel);
		free(st->im[i].initrd);
		free(st->im[i].vmlinux);
	}
	free(st->home);
	free(st);
	env->backend = NULL;
}

/* Builds (or finds) image i: the guests' recipe, or with dev_image the dev guest's; uploads it for a remote host. */
static int image_of(struct ts_env *env, int i)
{
	struct vm_state *st = state(env);
	struct guest_image *im = &st->im[i];
	struct ts_recipe r;
	char *images;
	int ret;

	if (im->have)
		return 0;
	if (!env->images[i])
		return ts_error_set(TS_EXIT_USAGE, "no image recipe for the guests"),
		       ts_error_hint("give the configuration that made them (--env), or run \"twinstage down\"");
	if (ts_recipe_load(&r, env->images[i]))
		return -1;
	ret = ts_image_ensure(&r, &im->img, env->quiet);
	if (!ret && st->dualboot) {
		char *station = NULL;

		/* the guests boot the station disk's own bootloader: it is their base */
		if (!(ret = ts_station_ensure(&r, &im->img, &station, env->quiet))) {
			free(im->img.disk);
			im->img.disk = station;
		}
	}
	ts_recipe_free(&r);
	if (ret)
		return ts_error_prefix(i ? "the image of the dev guest" : "the image of the guests");
	im->have = 1;
	images = path_join(env->cfg->vm_remote_dir, "images");
	ret = ts_vhost_image(&st->host, &im->img, images, env->quiet, &im->base, &im->kernel, &im->initrd,
			     &im->vmlinux);
	free(images);
	if (ret) {
		im->have = 0;
		ts_image_free(&im->img);
	}
	return ret;
}

/* Builds the images, or finds them in the cache; decides the accelerator. */
static int image(struct ts_env *env)
{
	struct vm_state *st = state(env);

	if (st->im[0].have && (!env->images[1] || st->im[1].have))
		return 0;
	if (!conn(env))
		return -1;
	if (st->dualboot && st->host.remote)
		return ts_error_set(TS_EXIT_USAGE, "backend dualboot needs libvirt on this machine, not %s",
				    st->host.server),
		       ts_error_hint("the station disk's boot entry is flipped with libguestfs, on the disk's file; "
				     "use backend = vm for a remote host");
	if (image_of(env, 0) || (env->images[1] && image_of(env, 1)))
		return -1;
	if (st->accel)
		return 0;
	st->accel = ts_vhost_accel(&st->host, env->cfg->vm_accel, st->pool, st->home, st->im[0].kernel, env->quiet,
				   &st->accel_why);
	if (strcmp(st->accel, "kvm") && !env->emulated) {
		env->emulated = 1;
		free(env->emulated_why);
		env->emulated_why = xstrdup(st->accel_why ? st->accel_why : "KVM is not used");
		/* kept, for the steps that find the guests running (`twinstage migrate`) */
		if (is_file(env->state_path) && ts_env_save(env))
			return -1;
	}
	return 0;
}

/* The image a side boots: the dev image for a side on the next stack (dev_image), else the guests'. */
static const struct guest_image *image_for(struct ts_env *env, const struct ts_side *side)
{
	struct vm_state *st = state(env);

	return side->on_stack && st->im[1].have ? &st->im[1] : &st->im[0];
}

/* A side's name in file and domain names: "snapshots/x" as "snapshots-x" (new string). */
static char *flat_name(const char *prefix, const struct ts_side *side, const char *suffix)
{
	char *s = xstrfmt("%s%s%s", prefix, side->name, suffix);

	for (char *p = s; *p; p++)
		if (*p == '/')
			*p = '-';
	return s;
}

/* twinstage-<tag>-<side> (new string). */
static char *domain_name(struct ts_env *env, const struct ts_side *side)
{
	char *prefix = xstrfmt("twinstage-%s-", state(env)->tag), *s = flat_name(prefix, side, "");

	free(prefix);
	return s;
}

/* The volume of the side's serial console, and its path on the host (new strings). */
static char *serial_name(const struct ts_side *side)
{
	return flat_name("", side, ".serial.log");
}

static char *serial_path(struct ts_env *env, const struct ts_side *side)
{
	char *name = serial_name(side), *p = path_join(state(env)->home, name);

	free(name);
	return p;
}

/* Files of the side on this machine: the name of its disk's volume, its ssh tunnel (new strings). */
static char *side_file(const struct ts_side *side, const char *name)
{
	return path_join(side->dir, name);
}

/* The text of the side's file `name`, trimmed (new string), or NULL when it has none. */
static char *side_read(const struct ts_side *side, const char *name)
{
	char *p = side_file(side, name);
	struct strbuf sb = STRBUF_INIT;
	int r = strbuf_read_file(&sb, p);

	free(p);
	strbuf_rtrim(&sb);
	if (r < 0 || !sb.len) {
		strbuf_release(&sb);
		return NULL;
	}
	return strbuf_detach(&sb);
}

static int side_write(const struct ts_side *side, const char *name, const char *text)
{
	char *p = side_file(side, name);
	int r = mkdir_p(side->dir, 0755) || write_file(p, text, strlen(text)) ? -1 : 0;

	free(p);
	return r;
}

/*
 * The port qemu forwards to the guest's 5432 on the libvirt host: the
 * side's own port on this machine; on a remote host another one, kept in
 * <side dir>/host_port (fresh: a new one), that the side's ssh tunnel
 * brings to the side's port here. (Two numbers, so that a remote host that
 * is this machine works too.)
 */
static int host_port(struct ts_env *env, const struct ts_side *side, int fresh)
{
	char *kept, buf[32];
	int p = 0;

	if (!state(env)->host.remote)
		return side->port;
	if (!fresh && (kept = side_read(side, "host_port"))) {
		p = atoi(kept);
		free(kept);
	}
	while (p <= 0 || p == side->port)
		p = port_pick_free();
	snprintf(buf, sizeof(buf), "%d", p);
	side_write(side, "host_port", buf);
	return p;
}

/* The path of the side's disk on the host (new string), or NULL (error set). */
static char *disk_path(struct ts_env *env, const struct ts_side *side)
{
	char *name = side_read(side, "disk"), *p = name ? ts_vhost_path(state(env)->pool, name) : NULL;

	if (!p)
		ts_error_set(TS_EXIT_ENV, "the %s guest has no disk", side->name),
		ts_error_hint("run \"twinstage down\", then build the environments again");
	free(name);
	return p;
}

/* <side>.<n>.qcow2, n the first number no volume has (new string). */
static char *next_disk_name(struct ts_env *env, const struct ts_side *side)
{
	char *name = NULL, *path = NULL;

	for (int n = 1; !name || (path = ts_vhost_path(state(env)->pool, name)); n++) {
		char sfx[32];

		free(path);
		path = NULL;
		free(name);
		snprintf(sfx, sizeof(sfx), ".%d.qcow2", n);
		name = flat_name("", side, sfx);
	}
	return name;
}

/*
 * A new overlay for the side on backing, or a copy of the disk at `copy`
 * when backing is NULL; it becomes the side's disk. The disks a side had
 * before are layers under others' overlays now.
 */
static int new_disk(struct ts_env *env, struct ts_side *side, const char *backing, const char *copy)
{
	struct vm_state *st = state(env);
	char *name = next_disk_name(env, side), *path;
	int r;

	path = backing ? ts_vhost_overlay(st->pool, name, backing) : ts_vhost_copy(st->pool, name, copy);
	r = path ? side_write(side, "disk", name) : -1;
	free(path);
	free(name);
	return r;
}

/* The side's domain, or NULL when it is not defined (no error set). */
static virDomainPtr lookup(struct ts_env *env, const struct ts_side *side)
{
	char *name;
	virDomainPtr d;

	if (!conn(env))	/* first: the name depends on the host */
		return NULL;
	name = domain_name(env, side);
	d = virDomainLookupByName(conn(env), name);
	free(name);
	return d;
}

static void xml_tag(struct strbuf *sb, const char *fmt_open, const char *value, const char *close)
{
	strbuf_addstr(sb, fmt_open);
	strbuf_add_xml(sb, value);
	strbuf_addstr(sb, close);
}

/*
 * The domain of a side: direct kernel boot of the image's kernel, the
 * overlay as its disk, the serial console to a file, the guest agent's
 * channel, and qemu's user network with 127.0.0.1:port forwarded to 5432.
 * (libvirt 9.0 refuses passt and drops <portForward> on a user interface:
 * qemu's own hostfwd is passed through <qemu:commandline>.)
 */
static int define_as(struct ts_env *env, struct ts_side *side, int incoming, int hotplug)
{
	struct vm_state *st = state(env);
	const struct ts_config *cfg = env->cfg;
	int kvm = !strcmp(st->accel, "kvm");
	char *name, *disk = disk_path(env, side), *serial, *fwd;
	struct strbuf x = STRBUF_INIT;
	virDomainPtr d;

	if (!disk)
		return -1;
	name = domain_name(env, side);
	serial = serial_path(env, side);
	fwd = xstrfmt("user,id=ts0,hostfwd=tcp:127.0.0.1:%d-:5432", host_port(env, side, 0));

	strbuf_addf(&x, "<domain type='%s' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>\n",
		    kvm ? "kvm" : "qemu");
	xml_tag(&x, "  <name>", name, "</name>\n");
	if ((d = lookup(env, side))) {	/* defined again (a new disk, a new port): the same domain */
		char uuid[VIR_UUID_STRING_BUFLEN];

		if (!virDomainGetUUIDString(d, uuid))
			xml_tag(&x, "  <uuid>", uuid, "</uuid>\n");
		virDomainFree(d);
	}
	strbuf_addf(&x, "  <memory unit='MiB'>%d</memory>\n  <vcpu>%d</vcpu>\n", cfg->vm_memory, cfg->vm_vcpus);
	strbuf_addstr(&x, "  <os>\n    <type arch='x86_64'>hvm</type>\n");
	if (st->dualboot) {	/* the disk's own MBR, extlinux and default entry */
		strbuf_addstr(&x, "    <boot dev='hd'/>\n  </os>\n");
	} else {
		const struct guest_image *im = image_for(env, side);

		xml_tag(&x, "    <kernel>", im->vmlinux, "</kernel>\n");
		xml_tag(&x, "    <initrd>", im->initrd, "</initrd>\n");
		strbuf_addf(&x, "    <cmdline>root=/dev/vda1 ro console=ttyS0 net.ifnames=0 quiet%s</cmdline>\n  </os>\n",
			    ts_guest_cmdline_tail(im->img.own_init));
	}
	/*
	 * ACPI only for a guest given a disk while it runs (PCI hotplug on
	 * i440fx is ACPI's): the kernel's ACPI start costs a boot 0.4 s here.
	 * TCG's code cache: 128 MiB instead of a quarter of the memory, no
	 * slower.
	 */
	if (hotplug || !kvm)
		strbuf_addf(&x, "  <features>%s%s</features>\n", hotplug ? "<acpi/>" : "",
			    kvm ? "" : "<tcg><tb-cache unit='MiB'>128</tb-cache></tcg>");
	if (kvm)
		strbuf_addstr(&x, "  <cpu mode='host-passthrough'/>\n");
	else	/*
		 * The RDRAND instruction TCG emulates: the kernel's random pool
		 * is ready at once, not 2 s into the boot, PostgreSQL waiting on it
		 */
		strbuf_addstr(&x, "  <cpu mode='custom' match='exact'><model fallback='forbid'>qemu64</model>"
				  "<feature policy='require' name='rdrand'/></cpu>\n");
	strbuf_addstr(&x, "  <on_poweroff>destroy</on_poweroff>\n  <on_reboot>destroy</on_reboot>\n"
			  "  <on_crash>destroy</on_crash>\n  <devices>\n"
			  "    <disk type='file' device='disk'>\n      <driver name='qemu' type='qcow2'/>\n");
	xml_tag(&x, "      <source file='", disk, "'/>\n");
	strbuf_addstr(&x, "      <target dev='vda' bus='virtio'/>\n    </disk>\n    <serial type='file'>\n");
	xml_tag(&x, "      <source path='", serial, "' append='off'/>\n");
	strbuf_addstr(&x, "      <target port='0'/>\n    </serial>\n"
			  "    <channel type='unix'>\n      <target type='virtio' name='org.qemu.guest_agent.0'/>\n"
			  "    </channel>\n    <memballoon model='none'/>\n  </devices>\n  <qemu:commandline>\n"
			  "    <qemu:arg value='-netdev'/>\n");
	xml_tag(&x, "    <qemu:arg value='", fwd, "'/>\n");
	strbuf_addstr(&x, "    <qemu:arg value='-device'/>\n    <qemu:arg value='virtio-net-pci,netdev=ts0,addr=0x1f,romfile='/>\n");
	if (incoming)	/* it waits for another guest's memory on that loopback port (fork_running) */
		strbuf_addf(&x, "    <qemu:arg value='-incoming'/>\n    <qemu:arg value='tcp:127.0.0.1:%d'/>\n", incoming);
	strbuf_addstr(&x, "  </qemu:commandline>\n</domain>\n");
	d = virDomainDefineXML(conn(env), x.buf);
	if (!d)
		ts_error_set(TS_EXIT_ENV, "could not define the %s guest: %s", side->name, ts_vhost_error());
	else
		virDomainFree(d);
	strbuf_release(&x);
	free(fwd);
	free(name);
	free(disk);
	free(serial);
	return d ? 0 : -1;
}

/* dualboot: the side is the dev guest booted early, not seen ready yet (vm_early). */
static int is_early(struct ts_env *env, const struct ts_side *side)
{
	return state(env)->awaiting && !strcmp(side->name, "dev");
}

/* The side's domain as it boots (the early dev guest's: a disk to come, hot-plugged). */
static int define(struct ts_env *env, struct ts_side *side)
{
	return define_as(env, side, 0, is_early(env, side));
}

/* The side's ssh tunnel, for a remote host: its pid file and its log (new strings). */
static char *tunnel_pidfile(const struct ts_side *side)
{
	return side_file(side, "tunnel.pid");
}

static void tunnel_stop(struct ts_env *env, const struct ts_side *side)
{
	char *pidfile = tunnel_pidfile(side);

	ts_vhost_tunnel_stop(pidfile);
	free(pidfile);
}

/* For a remote host: the side's port brought here, unless it already is. */
static int tunnel(struct ts_env *env, const struct ts_side *side)
{
	char *pidfile = tunnel_pidfile(side), *log = side_file(side, "tunnel.log");
	int r = 0;

	if (state(env)->host.remote && !ts_vhost_tunnel_alive(pidfile))
		r = ts_vhost_tunnel(&state(env)->host, side->port, host_port(env, side, 0), pidfile, log);
	free(pidfile);
	free(log);
	return r;
}

/* The guest runs (and, for a remote host, so does its tunnel when `tunneled`). */
static int active(struct ts_env *env, struct ts_side *side, int tunneled)
{
	virDomainPtr d = lookup(env, side);
	int r = d && virDomainIsActive(d) == 1;
	char *pidfile = tunnel_pidfile(side);

	if (r && tunneled && state(env)->host.remote)
		r = ts_vhost_tunnel_alive(pidfile);
	free(pidfile);
	if (d)
		virDomainFree(d);
	ts_error_clear();
	return r;
}

static int vm_running(struct ts_env *env, struct ts_side *side)
{
	return active(env, side, 1);
}

static int is_snapshot(const struct ts_side *side)
{
	return !strncmp(side->name, "snapshots/", 10);
}

/* dualboot: the station's root a side boots, "dev" for the dev side, "prod" for the others. */
static const char *own_root(const struct ts_side *side)
{
	return strcmp(side->name, "dev") ? "prod" : "dev";
}

/*
 * dualboot: the side's disk, whose PostgreSQL data is on root `data` and
 * which boots root `boots` by default (the disk it is an overlay of: a new
 * overlay of the station boots prod), made to boot the side's own root,
 * the data copied there when it is on the other one (by the guest, at
 * the disk's first boot: dualboot.h). A disk that already boots its own
 * root with its data there is left as it is (a reset of the dev side,
 * say). <side dir>/root says which root holds the data (or will, once
 * the disk has booted), <side dir>/boots which one the disk boots.
 */
static int station_side(struct ts_env *env, struct ts_side *side, const char *data, const char *boots)
{
	const char *want = own_root(side);
	char *disk;
	int r;

	if (!state(env)->dualboot)
		return 0;
	/* a snapshot never boots: it keeps the data where it is */
	if (is_snapshot(side) || (!strcmp(want, data) && !strcmp(want, boots)))
		return side_write(side, "root", data) || side_write(side, "boots", is_snapshot(side) ? boots : want);
	if (!(disk = disk_path(env, side)))
		return -1;
	r = ts_station_select(disk, want, strcmp(data, want) ? data : NULL, env->quiet) ||
	    side_write(side, "root", want) || side_write(side, "boots", want);
	free(disk);
	return r;
}

static int vm_create(struct ts_env *env, struct ts_side *side)
{
	if (!conn(env) || image(env) || new_disk(env, side, image_for(env, side)->base, NULL) ||
	    station_side(env, side, own_root(side), "prod"))
		return -1;
	return define(env, side);
}

/* The last lines of a guest's serial console (new string). */
static char *serial_tail(struct ts_env *env, const struct ts_side *side, int lines)
{
	char *name = serial_name(side), *tail = NULL;
	struct strbuf sb = STRBUF_INIT;

	if (!ts_vhost_read(state(env)->pool, name, &sb))
		tail = strbuf_tail_lines(&sb, lines);
	free(name);
	strbuf_release(&sb);
	return tail ? tail : xstrdup("(the serial console printed nothing)");
}

/* Until PostgreSQL in the guest accepts a connection on the forwarded port. */
static int wait_ready(struct ts_env *env, struct ts_side *side, virDomainPtr d, double t0)
{
	struct vm_state *st = state(env);
	int timeout = env->cfg->vm_boot_timeout ? env->cfg->vm_boot_timeout :
		      !strcmp(st->accel, "kvm") ? 120 : 600;
	/* no TLS, as in ts_env_connect_app: each try's handshake is a guest's slowest work */
	char *ci = xstrfmt("host=127.0.0.1 port=%d dbname=postgres user=%s connect_timeout=5 sslmode=disable",
			   side->port, TS_DB_USER);
	int r = -1;

	for (;;) {
		/* connected: ready; anything else that answered, PQping tells apart */
		int answered = ts_pg_answers_within(ci, 500);
		char *tail;

		if (answered == 2 || (answered == 1 && PQping(ci) == PQPING_OK)) {
			r = 0;
			break;
		}
		if (ts_interrupted) {
			ts_error_set(TS_EXIT_ENV, "interrupted while the %s guest was starting", side->name);
			break;
		}
		if (virDomainIsActive(d) != 1 || now_ms() - t0 > timeout * 1000.0) {
			tail = serial_tail(env, side, 15);
			ts_error_set(TS_EXIT_ENV, virDomainIsActive(d) != 1 ?
				     "the %s guest stopped before PostgreSQL accepted connections" :
				     "PostgreSQL in the %s guest did not accept connections within %d s",
				     side->name, timeout);
			ts_error_hint("the end of its serial console:\n%s", tail);
			free(tail);
			break;
		}
		usleep(100 * 1000);
	}
	free(ci);
	return r;
}

/* A new port for the side, and its domain defined again with it. */
static int repick(struct ts_env *env, struct ts_side *side)
{
	int old = side->port;

	if (ts_env_repick_port(env, side))
		return ts_error_set(TS_EXIT_ENV, "port %d for the %s side is already in use", old, side->name),
		       ts_error_hint("set prod_port and dev_port to 0 to let twinstage pick free ones");
	return define(env, side);
}

static int vm_booted(struct ts_env *env, struct ts_side *side, char **out);

/* The domain is off because its guest crashed (libvirt's word for it). */
static int crashed(virDomainPtr d)
{
	int state = 0, reason = 0;

	return !virDomainGetState(d, &state, &reason, 0) && state == VIR_DOMAIN_SHUTOFF &&
	       reason == VIR_DOMAIN_SHUTOFF_CRASHED;
}

/*
 * Starts the side's defined guest, said with how it boots (`how`: NULL, or
 * what it waits for), on a port free here; *dp: its domain (to free).
 */
static int launch(struct ts_env *env, struct ts_side *side, const char *how, virDomainPtr *dp)
{
	struct vm_state *st = state(env);
	virDomainPtr d;
	int r, tries = 0;

	*dp = NULL;
	if (port_in_use(side->port) && repick(env, side))
		return -1;
	if (!(d = lookup(env, side)))
		return ts_error_set(TS_EXIT_ENV, "the %s guest is not defined", side->name),
		       ts_error_hint("run \"twinstage down\", then build the environments again");
	if (!env->quiet)
		fprintf(stderr, "twinstage: booting the %s guest (%s)%s%s\n", side->name,
			!strcmp(st->accel, "kvm") ? "KVM" :
			st->dualboot ? "software emulation, by the disk's bootloader: 10 to 35 s" :
				       "software emulation: 5 to 20 s", how ? ", " : "", how ? how : "");
	/* the port may have been taken meanwhile, or on a remote host: qemu then refuses its hostfwd */
	while ((r = virDomainCreate(d)) && ++tries < 5 && strstr(ts_vhost_error(), "forwarding rule") &&
	       !(st->host.remote ? (host_port(env, side, 1), define(env, side)) : repick(env, side))) {
		virDomainFree(d);
		if (!(d = lookup(env, side)))
			return -1;
	}
	if (r) {
		virDomainFree(d);
		return ts_error_set(TS_EXIT_ENV, "could not start the %s guest: %s", side->name, ts_vhost_error());
	}
	*dp = d;
	return 0;
}

static int attach_data(struct ts_env *env, struct ts_side *side, virDomainPtr d);

/*
 * Until the started guest d accepts connections, then which root it runs,
 * said with the seconds since t0. Under software emulation a guest now and
 * then crashes while its kernel boots, on the same image that boots the
 * other side: booted once more, as a user would, and said (the early dev
 * guest given its data disk again). Any other stop is an error.
 */
static int boot_wait(struct ts_env *env, struct ts_side *side, virDomainPtr d, double t0)
{
	struct vm_state *st = state(env);
	char *booted = NULL;
	int r = tunnel(env, side) || wait_ready(env, side, d, t0) ? -1 : 0;

	if (r && crashed(d) && !ts_interrupted) {
		if (!env->quiet)
			fprintf(stderr, "twinstage: the %s guest crashed while booting (%s); booting it once more\n",
				side->name, strcmp(st->accel, "kvm") ? "software emulation" : "KVM");
		ts_error_clear();
		t0 = now_ms();
		r = virDomainCreate(d) ? ts_error_set(TS_EXIT_ENV, "could not start the %s guest again: %s",
						      side->name, ts_vhost_error()) :
		    (st->awaiting == 2 && is_early(env, side) && attach_data(env, side, d)) ||
		    wait_ready(env, side, d, t0) ? -1 : 0;
	}
	r = r || vm_booted(env, side, &booted) ? -1 : 0;
	if (!r && !env->quiet)
		fprintf(stderr, "twinstage: the %s guest accepts connections (%.0f s)%s%s\n", side->name,
			(now_ms() - t0) / 1000.0, booted ? "; it runs the " : "", booted ? booted : "");
	free(booted);
	return r;
}

/*
 * Every thread of a local guest's qemu at CPU priority `nice`: the early
 * dev guest boots at 10 while the production clone's boot and seeding,
 * which the run waits on, take the cores; 0 again once it is waited for.
 * As root only (a priority raised again needs it); nothing elsewhere.
 */
static void guest_nice(struct ts_env *env, const struct ts_side *side, int nice)
{
	char *name, *file, *text = NULL, *tasks;
	struct strbuf sb = STRBUF_INIT;
	struct dirent *e;
	DIR *dir;

	if (geteuid() || state(env)->host.remote)
		return;
	name = domain_name(env, side);
	file = xstrfmt("/run/libvirt/qemu/%s.pid", name);
	if (!strbuf_read_file(&sb, file))
		text = strbuf_detach(&sb);
	strbuf_release(&sb);
	tasks = text && atoi(text) > 0 ? xstrfmt("/proc/%d/task", atoi(text)) : NULL;
	if (tasks && (dir = opendir(tasks))) {
		while ((e = readdir(dir)))
			if (atoi(e->d_name) > 0)
				setpriority(PRIO_PROCESS, (id_t)atoi(e->d_name), nice);
		closedir(dir);
	}
	free(tasks);
	free(text);
	free(file);
	free(name);
}

/* The early dev guest (vm_early) seen ready, its seconds counted from its start. */
static int early_ready(struct ts_env *env, struct ts_side *side)
{
	struct vm_state *st = state(env);
	virDomainPtr d = lookup(env, side);
	int r;

	if (!d)
		return ts_error_set(TS_EXIT_ENV, "the %s guest is not defined", side->name);
	if (st->awaiting == 1) {
		virDomainFree(d);
		return ts_error_set(TS_EXIT_ENV, "the %s guest waits for the disk of its data, which was not made",
				    side->name);
	}
	guest_nice(env, side, 0);
	r = boot_wait(env, side, d, st->early_t0);
	st->awaiting = 0;
	virDomainFree(d);
	return r;
}

static int vm_start(struct ts_env *env, struct ts_side *side)
{
	virDomainPtr d;
	double t0 = now_ms();
	int r;

	if (!conn(env) || image(env))
		return -1;
	if (is_early(env, side))
		return early_ready(env, side);
	if (active(env, side, 0))
		return tunnel(env, side);
	if (launch(env, side, NULL, &d))
		return -1;
	r = boot_wait(env, side, d, t0);
	virDomainFree(d);
	return r;
}

/*
 * Runs argv in the guest through its agent, waiting up to `seconds` for it
 * to end; -1 when the agent did not answer or it failed.
 */
static int agent_run(virDomainPtr d, const char *const *argv, int seconds)
{
	json_t *args = json_array(), *cmd, *res;
	char *text, *answer;
	json_int_t pid;
	int r = -1;

	for (size_t i = 1; argv[i]; i++)
		json_array_append_new(args, json_string(argv[i]));
	cmd = json_pack("{s:s, s:{s:s, s:o}}", "execute", "guest-exec", "arguments", "path", argv[0], "arg", args);
	text = json_dumps(cmd, JSON_COMPACT);
	json_decref(cmd);
	answer = virDomainQemuAgentCommand(d, text, 10, 0);
	free(text);
	res = answer ? json_loads(answer, 0, NULL) : NULL;
	free(answer);
	if (!res || json_unpack(res, "{s:{s:I}}", "return", "pid", &pid)) {
		json_decref(res);
		return -1;
	}
	json_decref(res);
	text = xstrfmt("{\"execute\":\"guest-exec-status\",\"arguments\":{\"pid\":%lld}}", (long long)pid);
	for (double t0 = now_ms(); now_ms() - t0 < seconds * 1000.0;) {
		int exited = 0, code = -1;

		answer = virDomainQemuAgentCommand(d, text, 10, 0);
		res = answer ? json_loads(answer, 0, NULL) : NULL;
		free(answer);
		if (!res || json_unpack(res, "{s:{s:b, s?:i}}", "return", "exited", &exited, "exitcode", &code)) {
			json_decref(res);
			break;
		}
		json_decref(res);
		if (exited) {
			r = code == 0 ? 0 : -1;
			break;
		}
		usleep(50 * 1000);
	}
	free(text);
	return r;
}

/*
 * PostgreSQL stopped cleanly through the guest agent (twinstage's init, or
 * systemctl on a systemd image), the disks flushed, then the guest
 * destroyed. Where the agent does not answer, a checkpoint first: the next
 * start then has almost no WAL to replay.
 */
static int vm_stop(struct ts_env *env, struct ts_side *side)
{
	static const char *const own_stop[] = { TS_GUEST_INIT, "stop", NULL };
	static const char *const stop_pg[] = { "/usr/bin/systemctl", "stop", "postgresql", NULL };
	static const char *const sync_all[] = { "/usr/bin/sync", NULL };
	virDomainPtr d = lookup(env, side);
	int r = 0;

	ts_error_clear();
	if (!d)
		return 0;
	if (virDomainIsActive(d) == 1) {
		/* the image's init first: an image of another kind has no such file, and says so at once */
		if (agent_run(d, own_stop, 180) && (agent_run(d, stop_pg, 180) || agent_run(d, sync_all, 60))) {
			PGconn *c = ts_env_connect(env, side, "postgres");

			if (c)
				ts_pg_exec(c, "CHECKPOINT");
			PQfinish(c);
			ts_error_clear();
		}
		if (virDomainDestroy(d))
			r = ts_error_set(TS_EXIT_ENV, "could not stop the %s guest: %s", side->name, ts_vhost_error());
	}
	virDomainFree(d);
	tunnel_stop(env, side);
	return r;
}

static int vm_destroy(struct ts_env *env, struct ts_side *side)
{
	virDomainPtr d;
	char *disk, *serial;
	int r = 0;

	if (!conn(env))
		return -1;
	if ((d = lookup(env, side))) {
		if (virDomainIsActive(d) == 1 && virDomainDestroy(d))
			r = ts_error_set(TS_EXIT_ENV, "could not destroy the %s guest: %s", side->name, ts_vhost_error());
		if (!r && virDomainUndefine(d))
			r = ts_error_set(TS_EXIT_ENV, "could not undefine the %s guest: %s", side->name, ts_vhost_error());
		virDomainFree(d);
	}
	tunnel_stop(env, side);
	if (is_early(env, side))
		state(env)->awaiting = 0;
	disk = side_read(side, "data_disk");
	if (!r && disk)
		r = ts_vhost_delete(state(env)->pool, disk);
	free(disk);
	disk = side_read(side, "disk");
	serial = serial_name(side);
	if (!r && disk)
		r = ts_vhost_delete(state(env)->pool, disk);
	if (!r)
		r = ts_vhost_delete(state(env)->pool, serial);
	if (!r && rm_rf(side->dir))
		r = ts_error_set(TS_EXIT_ENV, "could not remove \"%s\": %s", side->dir, strerror(errno));
	free(disk);
	free(serial);
	return r;
}

/*
 * A running guest's disk frozen where it stands, the guest left running:
 * libvirt makes a new overlay its disk (an external, disk-only snapshot
 * with no metadata; the persistent definition follows). A running guest's
 * filesystems are frozen by its agent meanwhile, and PostgreSQL on a copy
 * of the layer starts as after a crash of its server, from its WAL; a
 * paused guest's disk is taken as it is, in step with its memory.
 */
static int freeze_running(struct ts_env *env, struct ts_side *side, int paused)
{
	struct vm_state *st = state(env);
	char *name = next_disk_name(env, side), *path = path_join(st->home, name);
	char *data = side_read(side, "data_disk");
	virDomainPtr d = lookup(env, side);
	virDomainSnapshotPtr snap = NULL;
	struct strbuf x = STRBUF_INIT;
	unsigned flags = VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY | VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA |
			 VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC;
	int r = -1;

	strbuf_addstr(&x, "<domainsnapshot><disks><disk name='vda' snapshot='external' type='file'><source file='");
	strbuf_add_xml(&x, path);
	strbuf_addstr(&x, "'/><driver type='qcow2'/></disk>");
	/* the disk the early dev guest copied its data from, read-only: not a layer of the side */
	if (data)
		strbuf_addstr(&x, "<disk name='" TS_STATION_AWAIT_DISK "' snapshot='no'/>");
	strbuf_addstr(&x, "</disks></domainsnapshot>");
	free(data);
	if (d && paused) {
		snap = virDomainSnapshotCreateXML(d, x.buf, flags);
	} else if (d && !(snap = virDomainSnapshotCreateXML(d, x.buf, flags | VIR_DOMAIN_SNAPSHOT_CREATE_QUIESCE))) {
		/* no agent to freeze the filesystems: a checkpoint, then the disk as it is */
		PGconn *c = ts_env_connect(env, side, "postgres");

		if (c)
			ts_pg_exec(c, "CHECKPOINT");
		PQfinish(c);
		snap = virDomainSnapshotCreateXML(d, x.buf, flags);
	}
	if (!snap)
		ts_error_set(TS_EXIT_ENV, "could not freeze the %s guest's disk: %s", side->name, ts_vhost_error());
	else
		r = side_write(side, "disk", name);
	if (snap)
		virDomainSnapshotFree(snap);
	if (d)
		virDomainFree(d);
	virStoragePoolRefresh(st->pool, 0);
	strbuf_release(&x);
	free(path);
	free(name);
	return r;
}

/* A QMP command to the guest's qemu, its answer parsed (NULL: error set). */
static json_t *qmp(virDomainPtr d, const char *cmd)
{
	char *answer = NULL;
	json_t *res;

	if (virDomainQemuMonitorCommand(d, cmd, &answer, 0) ||
	    !(res = json_loads(answer, 0, NULL))) {
		free(answer);
		ts_error_set(TS_EXIT_ENV, "qemu did not answer %s: %s", cmd, ts_vhost_error());
		return NULL;
	}
	free(answer);
	return res;
}

/* Until the migration qemu runs for d ends: 0 when it completed, -1 (error set) when not. */
static int migrated(virDomainPtr d)
{
	for (double t0 = now_ms(); now_ms() - t0 < 300 * 1000.0; usleep(50 * 1000)) {
		json_t *res = qmp(d, "{\"execute\":\"query-migrate\"}");
		const char *status = "", *why = NULL;

		if (!res)
			return -1;
		json_unpack(res, "{s:{s?:s, s?:s}}", "return", "status", &status, "error-desc", &why);
		if (!strcmp(status, "completed")) {
			json_decref(res);
			return 0;
		}
		if (!strcmp(status, "failed") || !strcmp(status, "cancelled")) {
			ts_error_set(TS_EXIT_ENV, "the memory copy %s: %s", status, why ? why : "qemu gave no reason");
			json_decref(res);
			return -1;
		}
		json_decref(res);
		if (ts_interrupted)
			return ts_error_set(TS_EXIT_ENV, "interrupted while copying a guest's memory");
	}
	return ts_error_set(TS_EXIT_ENV, "the memory copy did not end within 300 s");
}

/*
 * A guest's clock set to this machine's (a paused guest's clock stood
 * still), by `date` run through its agent, trying for up to `seconds`: the
 * agent of a guest that has just arrived answers after a moment. (Not the
 * agent's own guest-set-time: it then waits for hwclock, 1 to 2 s here.)
 */
static void clock_now(virDomainPtr d, int seconds)
{
	for (double t0 = now_ms();; usleep(100 * 1000)) {
		struct timespec ts;
		char at[64];
		const char *argv[] = { "/usr/bin/date", "-u", "-s", at, NULL };

		clock_gettime(CLOCK_REALTIME, &ts);
		snprintf(at, sizeof(at), "@%lld.%09ld", (long long)ts.tv_sec, ts.tv_nsec);
		if (!agent_run(d, argv, 10) || now_ms() - t0 > seconds * 1000.0)
			break;
	}
	ts_error_clear();
}

/* qemu's own word on whether d's virtual CPUs run (1), or not (0); -1 (error set) when it does not answer. */
static int cpus_run(virDomainPtr d)
{
	json_t *res = qmp(d, "{\"execute\":\"query-status\"}");
	int running = 0;

	if (!res || json_unpack(res, "{s:{s:b}}", "return", "running", &running)) {
		json_decref(res);
		return ts_error_set(TS_EXIT_ENV, "qemu did not say whether the guest runs");
	}
	json_decref(res);
	return running;
}

/*
 * d runs, resumed when it does not; -1 (error set) when it does not.
 * qemu is asked, not libvirt: after a migration libvirt did not start, the
 * incoming guest takes the paused state of the one it came from while
 * libvirt may still hold it for running.
 */
static int resumed(virDomainPtr d)
{
	int st = 0, reason = 0, run = cpus_run(d);

	if (run < 0)
		return -1;
	if (run)
		return 0;
	if (!virDomainGetState(d, &st, &reason, 0) && st == VIR_DOMAIN_PAUSED) {
		if (virDomainResume(d))
			return ts_error_set(TS_EXIT_ENV, "%s", ts_vhost_error());
	} else {
		json_decref(qmp(d, "{\"execute\":\"cont\"}"));
	}
	return cpus_run(d) == 1 ? 0 : ts_error_set(TS_EXIT_ENV, "qemu did not resume the guest");
}

/*
 * `to` as a copy of the running `from`, booted by nothing: `from` is paused,
 * its disk frozen in step with its memory, and `to` started on an overlay
 * of `layer` (its disk) as the incoming end of a qemu migration of `from`'s memory
 * over a loopback port; then both run on from where `from` stood, its
 * PostgreSQL already accepting connections (3 to 4 s under emulation,
 * against 15 to 20 s for a boot). 1 when it could not be done: `to` then
 * has its overlay and its domain, to be booted, and the reason was said.
 */
static int fork_running(struct ts_env *env, struct ts_side *from, struct ts_side *to, const char *layer)
{
	virDomainPtr src = lookup(env, from), dst = NULL;
	double t0 = now_ms();
	char *why = NULL;
	int port = port_pick_free(), r = -1, copied = 0;

	if (!src)
		return ts_error_set(TS_EXIT_ENV, "the %s guest is not defined", from->name);
	if (virDomainSuspend(src)) {
		r = ts_error_set(TS_EXIT_ENV, "could not pause the %s guest: %s", from->name, ts_vhost_error());
		goto out;
	}
	if (freeze_running(env, from, 1) || new_disk(env, to, layer, NULL) || define_as(env, to, port, 0) ||
	    !(dst = lookup(env, to))) {
		why = xstrdup(ts_error_message());
		goto resume;
	}
	if (virDomainCreate(dst)) {
		ts_error_set(TS_EXIT_ENV, "could not start the %s guest: %s", to->name, ts_vhost_error());
	} else {
		char *cmd = xstrfmt("{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"tcp:127.0.0.1:%d\"}}", port);
		json_t *res = qmp(src, cmd);

		copied = res && !migrated(src);
		json_decref(res);
		free(cmd);
	}
	if (!copied) {
		why = xstrdup(ts_error_message());
		json_decref(qmp(src, "{\"execute\":\"migrate_cancel\"}"));
		virDomainDestroy(dst);
	} else if (resumed(dst)) {
		why = xstrfmt("could not resume the %s guest: %s", to->name, ts_error_message());
		virDomainDestroy(dst);
		copied = 0;
	}
resume:
	/* after a completed copy qemu hands the disk back to `from` */
	if (resumed(src)) {
		r = ts_error_set(TS_EXIT_ENV, "could not resume the %s guest: %s", from->name, ts_error_message());
		goto out;
	}
	if (!dst) {	/* the layer or the new domain failed: an error */
		r = ts_error_set(TS_EXIT_ENV, "%s", why);
		goto out;
	}
	clock_now(src, 5);
	if (!copied) {	/* said, then booted like any guest */
		if (!env->quiet)
			fprintf(stderr, "twinstage: the %s guest could not be copied from the running %s guest (%s); it boots\n",
				to->name, from->name, why);
		r = define(env, to) ? -1 : 1;
		goto out;
	}
	/* its next start is a boot; the running guest keeps what it was started with */
	r = define(env, to) || tunnel(env, to) || wait_ready(env, to, dst, t0) ? -1 : 0;
	if (!r)
		clock_now(dst, 10);
	if (!r && !env->quiet)
		fprintf(stderr, "twinstage: the %s guest accepts connections (%.1f s): a copy of the running %s guest, memory and disk\n",
			to->name, (now_ms() - t0) / 1000.0, from->name);
out:
	if (dst)
		virDomainFree(dst);
	virDomainFree(src);
	free(why);
	return r;
}

/* `to` can be made from a running `from` by fork_running. */
static int can_fork(struct ts_env *env, const struct ts_side *from, const struct ts_side *to)
{
	struct vm_state *st = state(env);

	/* dualboot: a side boots its own root; a remote host: the loopback port is there */
	return !st->dualboot && !st->host.remote && !is_snapshot(to) && image_for(env, from) == image_for(env, to);
}

/* The early dev guest's data disk (<side dir>/data_disk) hot-plugged into d, read-only. */
static int attach_data(struct ts_env *env, struct ts_side *side, virDomainPtr d)
{
	char *name = side_read(side, "data_disk"), *path = name ? ts_vhost_path(state(env)->pool, name) : NULL;
	struct strbuf x = STRBUF_INIT;
	int r = 0;

	if (!path) {
		free(name);
		return ts_error_set(TS_EXIT_ENV, "the %s guest has no disk to copy its data from", side->name);
	}
	strbuf_addstr(&x, "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='");
	strbuf_add_xml(&x, path);
	strbuf_addstr(&x, "'/><target dev='" TS_STATION_AWAIT_DISK "' bus='virtio'/><readonly/></disk>");
	if (virDomainAttachDeviceFlags(d, x.buf, VIR_DOMAIN_AFFECT_LIVE))
		r = ts_error_set(TS_EXIT_ENV, "could not give the %s guest the disk of its data: %s", side->name,
				 ts_vhost_error());
	strbuf_release(&x);
	free(path);
	free(name);
	return r;
}

/*
 * dualboot: the dev guest booted now, beside the production clone's, before
 * the clone holds what the dev side is a copy of: an overlay of the
 * station whose default entry, dev-from-prod-disk (dualboot.h), waits in
 * the initrd for a second disk; vm_snapshot gives it the production
 * clone's frozen disk then, and its initrd copies the data from there. Its
 * firmware, bootloader, the kernel's decompression and start (about half
 * of a boot here) overlap the clone's boot and seeding; 1: booting. Nothing
 * is done (0) for vm, a remote host or a station without that entry: the
 * dev guest then boots after the copy, as before.
 */
static int vm_early(struct ts_env *env, struct ts_side *side)
{
	struct vm_state *st = state(env);
	virDomainPtr d;
	char *disk;
	int r;

	if (!st->dualboot || strcmp(side->name, "dev"))
		return 0;
	if (!conn(env) || image(env))
		return -1;
	if (st->host.remote)
		return 0;
	if (new_disk(env, side, image_for(env, side)->base, NULL) || !(disk = disk_path(env, side)))
		return -1;
	r = ts_station_select_awaiting(disk, own_root(side), "prod", 1);
	free(disk);
	if (r)
		return r < 0 ? -1 : 0;
	st->awaiting = 1;
	st->early_t0 = now_ms();
	if (define(env, side) ||
	    launch(env, side, "beside the production clone's: its initrd waits for the clone's disk", &d)) {
		st->awaiting = 0;
		return -1;
	}
	virDomainFree(d);
	guest_nice(env, side, 10);
	return 1;
}

/*
 * dualboot: the early dev guest `to` given its data: the running `from`
 * frozen (freeze_running), an overlay of the layer hot-plugged into `to`
 * as TS_STATION_AWAIT_DISK, read-only; its initrd copies the PostgreSQL
 * data of the disk's prod root onto the dev root, makes dev the default
 * and boots on (vm_start waits for it). `from` goes on running.
 */
static int attach_clone(struct ts_env *env, struct ts_side *from, struct ts_side *to)
{
	struct vm_state *st = state(env);
	char *layer = disk_path(env, from), *name = flat_name("", to, ".data.qcow2"), *path = NULL;
	virDomainPtr d = NULL;
	int r = -1;

	if (!layer || freeze_running(env, from, 0) || !(path = ts_vhost_overlay(st->pool, name, layer)) ||
	    side_write(to, "data_disk", name) || side_write(to, "root", own_root(to)) ||
	    side_write(to, "boots", own_root(to)))
		goto out;
	if (!(d = lookup(env, to))) {
		ts_error_set(TS_EXIT_ENV, "the %s guest is not defined", to->name);
		goto out;
	}
	st->awaiting = 2;
	if (virDomainIsActive(d) != 1) {	/* it crashed while booting: once more, as vm_start does */
		if (!env->quiet)
			fprintf(stderr, "twinstage: the %s guest stopped while it waited for its data; booting it once more\n",
				to->name);
		st->early_t0 = now_ms();
		if (virDomainCreate(d)) {
			ts_error_set(TS_EXIT_ENV, "could not start the %s guest again: %s", to->name, ts_vhost_error());
			goto out;
		}
	}
	r = attach_data(env, to, d);
	if (!r && !env->quiet)
		fprintf(stderr, "twinstage: the production clone's disk given to the dev guest, whose initrd copies its data\n");
out:
	if (d)
		virDomainFree(d);
	free(layer);
	free(name);
	free(path);
	return r;
}

/*
 * `from`'s disk becomes a read-only layer: `from` and `to` each get a new
 * overlay on it; a running `from` goes on running. Not cow: `from` is
 * stopped and `to` is a standalone copy, the chain flattened.
 */
static int vm_snapshot(struct ts_env *env, struct ts_side *from, struct ts_side *to, int cow)
{
	struct vm_state *st = state(env);
	int was, r = -1;
	char *layer = NULL;

	if (!conn(env) || image(env))
		return -1;
	was = active(env, from, 0);
	/* the dev guest booted early: given the frozen clone; or a copy of it waits for it to be up */
	if (is_early(env, to) && st->awaiting == 1 && cow && was)
		return attach_clone(env, from, to);
	if (is_early(env, from) && early_ready(env, from))
		return -1;
	if (vm_destroy(env, to) || !(layer = disk_path(env, from)))
		goto out;
	if (cow && was && can_fork(env, from, to)) {
		r = fork_running(env, from, to, layer) < 0 ? -1 : 0;	/* `to` defined, running or to be booted */
		goto out;
	} else if (cow && was) {
		r = freeze_running(env, from, 0) || new_disk(env, to, layer, NULL) ? -1 : 0;
	} else if (vm_stop(env, from)) {
		goto out;
	} else if (cow) {
		r = new_disk(env, from, layer, NULL) || (!is_snapshot(from) && define(env, from)) ||
		    new_disk(env, to, layer, NULL) ? -1 : 0;
	} else {
		r = new_disk(env, to, NULL, layer);
	}
	if (!r && st->dualboot) {
		char *data = side_read(from, "root"), *boots = side_read(from, "boots");

		/* an unknown default (a workdir of an earlier version): flipped, to be sure */
		r = station_side(env, to, data ? data : own_root(from), boots ? boots : "unknown");
		free(data);
		free(boots);
	}
	if (!r && !is_snapshot(to))
		r = define(env, to);
	if (!r && was && !cow)
		r = vm_start(env, from);
out:
	free(layer);
	return r;
}

/*
 * dualboot: the root the running side booted, read from inside the guest
 * (the marker, the hostname, the kernel's command line) by its PostgreSQL;
 * an error when it is not the side's own.
 */
static int vm_booted(struct ts_env *env, struct ts_side *side, char **out)
{
	static const char sql[] = "SELECT pg_read_file('" TS_SIDE_MARKER "'), pg_read_file('/etc/hostname'), "
				  "pg_read_file('/proc/cmdline')";
	const char *want = own_root(side);
	PGconn *c;
	PGresult *res = NULL;
	char *v[3] = { NULL, NULL, NULL }, *root;
	int r = -1;

	*out = NULL;
	if (!state(env)->dualboot)
		return 0;
	if (!(c = ts_env_connect(env, side, "postgres")))
		return -1;
	res = PQexec(c, sql);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		char *e = ts_pg_result_error(res);

		ts_error_set(TS_EXIT_ENV, "could not read which root the %s guest booted: %s", side->name, e);
		free(e);
		goto out;
	}
	for (int i = 0; i < 3; i++) {
		const char *t = PQgetvalue(res, 0, i);

		v[i] = xstrndup(t, strcspn(t, "\n"));
	}
	root = strstr(v[2], "root=");
	if (root)
		root[strcspn(root, " ")] = 0;
	if (strcmp(v[0], want)) {
		ts_error_set(TS_EXIT_ENV, "the %s guest booted the \"%s\" root, not the %s root (marker %s, hostname %s, %s)",
			     side->name, v[0], want, TS_SIDE_MARKER, v[1], root ? root : "no root= on the command line");
		goto out;
	}
	*out = xstrfmt("%s root (marker %s, hostname %s, booted with %s)", v[0], v[0], v[1],
		       root ? root : "no root=");
	r = 0;
out:
	for (int i = 0; i < 3; i++)
		free(v[i]);
	PQclear(res);
	PQfinish(c);
	return r;
}

/* The pool (the layers, the serial logs, its folder), once every side is gone. */
static int vm_cleanup(struct ts_env *env)
{
	struct vm_state *st = state(env);
	char *name, *outside;
	int r;

	if (!conn(env))
		return -1;
	name = pool_name(env);
	r = ts_vhost_pool_remove(&st->host, name);
	free(name);
	if (st->host.remote || r)
		return r;
	outside = ts_home_outside(&env->home, "/var/tmp");
	r = rm_rf(st->home);
	if (!r && is_dir(outside))
		r = rm_rf(outside);
	free(outside);
	return r;
}

/* The operations of both backends of guests: they differ by name only (st->dualboot). */
#define GUEST_OPS(backend_name)                                                                   \
	{                                                                                         \
		.name = backend_name, .create = vm_create, .start = vm_start, .stop = vm_stop,     \
		.destroy = vm_destroy, .running = vm_running, .snapshot = vm_snapshot,             \
		.early = vm_early, .receive = NULL, .cleanup = vm_cleanup, .release = vm_release, .booted = vm_booted, \
		.overlays = 1,                                                                    \
	}

const struct ts_env_ops ts_env_vm_ops = GUEST_OPS("vm");

/*
 * The same guests on a dual-boot station disk: each side an overlay of the
 * recipe's station disk, booted by the disk's own bootloader, its default
 * entry flipped to the side's root (the dev side's overlay gets the
 * production clone's data copied onto the dev root).
 */
const struct ts_env_ops ts_env_dualboot_ops = GUEST_OPS("dualboot");
