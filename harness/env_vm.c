/*
 * env_vm.c: each side a libvirt guest on a qcow2 overlay of an image built
 * from a recipe (image.c).
 *
 * A side's disk is <home>/<side>.qcow2, an overlay whose chain ends at the
 * cached base image; <home> is <workdir>/vm, or a folder under /var/tmp when
 * libvirt's qemu user cannot walk down to the workdir. PostgreSQL in the
 * guest is reached on 127.0.0.1:<side's port>, forwarded by qemu's
 * user-mode network to the guest's 5432; nothing talks to a guest address.
 *
 * A snapshot freezes a side's disk into a read-only layer (a rename) and
 * puts a new empty overlay on it for the side and one for the copy: O(1)
 * whatever the size. Guests are stopped by stopping PostgreSQL through the
 * guest agent, then destroyed (a minimal guest ignores ACPI). Domains are
 * named twinstage-<crc of the workdir>-<side>, so `down` finds them after a
 * run that was killed.
 */
#include "env.h"
#include "error.h"
#include "image.h"
#include "pg.h"
#include "run_command.h"
#include "strbuf.h"
#include "util.h"

#include <errno.h>
#include <jansson.h>
#include <libvirt/libvirt-qemu.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct vm_state {
	virConnectPtr conn;
	struct ts_image img;
	int have_img;
	const char *accel;	/* "kvm" or "tcg" */
	const char *accel_why;
	char *home;
};

static void quiet_errors(void *data, virErrorPtr err)
{
	(void)data;
	(void)err;
}

static const char *virt_error(void)
{
	const char *m = virGetLastErrorMessage();

	return m && *m ? m : "unknown libvirt error";
}

static struct vm_state *state(struct ts_env *env)
{
	struct vm_state *st = env->backend;

	if (!st) {
		st = xcalloc(1, sizeof(*st));
		env->backend = st;
		if (ts_env_reachable(env, env->cfg->workdir)) {
			st->home = path_join(env->cfg->workdir, "vm");
		} else {
			char *out = ts_env_outside(env, "/var/tmp");

			st->home = path_join(out, "vm");
			free(out);
		}
	}
	return st;
}

static virConnectPtr conn(struct ts_env *env)
{
	struct vm_state *st = state(env);

	if (st->conn)
		return st->conn;
	virSetErrorFunc(NULL, quiet_errors);
	st->conn = virConnectOpen(env->cfg->vm_uri);
	if (!st->conn) {
		ts_error_set(TS_EXIT_ENV, "could not connect to libvirt at %s: %s", env->cfg->vm_uri, virt_error());
		ts_error_hint("start the daemons (as root: libvirtd -d; virtlogd -d), or set [environments] uri");
	}
	return st->conn;
}

static void vm_release(struct ts_env *env)
{
	struct vm_state *st = env->backend;

	if (!st)
		return;
	if (st->conn)
		virConnectClose(st->conn);
	if (st->have_img)
		ts_image_free(&st->img);
	free(st->home);
	free(st);
	env->backend = NULL;
}

/* Builds the image of the recipe, or finds it in the cache; decides the accelerator. */
static int image(struct ts_env *env)
{
	struct vm_state *st = state(env);
	struct ts_recipe r;
	int ret;

	if (st->have_img)
		return 0;
	if (ts_recipe_load(&r, env->cfg->vm_image))
		return -1;
	ret = ts_image_ensure(&r, &st->img, env->quiet);
	ts_recipe_free(&r);
	if (ret)
		return ts_error_prefix("the image of the guests");
	st->have_img = 1;
	st->accel = ts_accel(env->cfg->vm_accel, &st->accel_why);
	return 0;
}

/* The domain's name: twinstage-<crc>-<side>, "snapshots/x" as "snapshots-x" (new string). */
static char *domain_name(const struct ts_env *env, const struct ts_side *side)
{
	char crc[9], *s;

	crc32_hex(env->cfg->workdir, strlen(env->cfg->workdir), crc);
	s = xstrfmt("twinstage-%s-%s", crc, side->name);
	for (char *p = s; *p; p++)
		if (*p == '/')
			*p = '-';
	return s;
}

static char *disk_path(struct ts_env *env, const struct ts_side *side)
{
	return xstrfmt("%s/%s.qcow2", state(env)->home, side->name);
}

static char *serial_path(struct ts_env *env, const struct ts_side *side)
{
	return xstrfmt("%s/%s.serial.log", state(env)->home, side->name);
}

/* The side's domain, or NULL when it is not defined (no error set). */
static virDomainPtr lookup(struct ts_env *env, const struct ts_side *side)
{
	char *name = domain_name(env, side);
	virDomainPtr d = conn(env) ? virDomainLookupByName(conn(env), name) : NULL;

	free(name);
	return d;
}

static void xml_add(struct strbuf *sb, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&': strbuf_addstr(sb, "&amp;"); break;
		case '<': strbuf_addstr(sb, "&lt;"); break;
		case '>': strbuf_addstr(sb, "&gt;"); break;
		case '\'': strbuf_addstr(sb, "&apos;"); break;
		case '"': strbuf_addstr(sb, "&quot;"); break;
		default: strbuf_addch(sb, *s);
		}
	}
}

static void xml_tag(struct strbuf *sb, const char *fmt_open, const char *value, const char *close)
{
	strbuf_addstr(sb, fmt_open);
	xml_add(sb, value);
	strbuf_addstr(sb, close);
}

/*
 * The domain of a side: direct kernel boot of the image's kernel, the
 * overlay as its disk, the serial console to a file, the guest agent's
 * channel, and qemu's user network with 127.0.0.1:port forwarded to 5432.
 * (libvirt 9.0 refuses passt and drops <portForward> on a user interface:
 * qemu's own hostfwd is passed through <qemu:commandline>.)
 */
static int define(struct ts_env *env, struct ts_side *side)
{
	struct vm_state *st = state(env);
	const struct ts_config *cfg = env->cfg;
	int kvm = !strcmp(st->accel, "kvm");
	char *name = domain_name(env, side), *disk = disk_path(env, side), *serial = serial_path(env, side);
	char *fwd = xstrfmt("user,id=ts0,hostfwd=tcp:127.0.0.1:%d-:5432", side->port);
	struct strbuf x = STRBUF_INIT;
	virDomainPtr d;

	strbuf_addf(&x, "<domain type='%s' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>\n",
		    kvm ? "kvm" : "qemu");
	xml_tag(&x, "  <name>", name, "</name>\n");
	strbuf_addf(&x, "  <memory unit='MiB'>%d</memory>\n  <vcpu>%d</vcpu>\n", cfg->vm_memory, cfg->vm_vcpus);
	strbuf_addstr(&x, "  <os>\n    <type arch='x86_64'>hvm</type>\n");
	xml_tag(&x, "    <kernel>", st->img.kernel, "</kernel>\n");
	xml_tag(&x, "    <initrd>", st->img.initrd, "</initrd>\n");
	strbuf_addstr(&x, "    <cmdline>root=/dev/vda1 ro console=ttyS0 net.ifnames=0</cmdline>\n  </os>\n");
	if (kvm)
		strbuf_addstr(&x, "  <cpu mode='host-passthrough'/>\n");
	else	/* TCG's code cache: 128 MiB instead of a quarter of the memory, no slower */
		strbuf_addstr(&x, "  <features><tcg><tb-cache unit='MiB'>128</tb-cache></tcg></features>\n");
	strbuf_addstr(&x, "  <on_poweroff>destroy</on_poweroff>\n  <on_reboot>destroy</on_reboot>\n"
			  "  <on_crash>destroy</on_crash>\n  <devices>\n"
			  "    <disk type='file' device='disk'>\n      <driver name='qemu' type='qcow2'/>\n");
	xml_tag(&x, "      <source file='", disk, "'/>\n");
	strbuf_addstr(&x, "      <target dev='vda' bus='virtio'/>\n    </disk>\n    <serial type='file'>\n");
	xml_tag(&x, "      <source path='", serial, "'/>\n");
	strbuf_addstr(&x, "      <target port='0'/>\n    </serial>\n"
			  "    <channel type='unix'>\n      <target type='virtio' name='org.qemu.guest_agent.0'/>\n"
			  "    </channel>\n    <memballoon model='none'/>\n  </devices>\n  <qemu:commandline>\n"
			  "    <qemu:arg value='-netdev'/>\n");
	xml_tag(&x, "    <qemu:arg value='", fwd, "'/>\n");
	strbuf_addstr(&x, "    <qemu:arg value='-device'/>\n    <qemu:arg value='virtio-net-pci,netdev=ts0,addr=0x1f,romfile='/>\n"
			  "  </qemu:commandline>\n</domain>\n");
	d = virDomainDefineXML(conn(env), x.buf);
	if (!d)
		ts_error_set(TS_EXIT_ENV, "could not define the %s guest: %s", side->name, virt_error());
	else
		virDomainFree(d);
	strbuf_release(&x);
	free(fwd);
	free(name);
	free(disk);
	free(serial);
	return d ? 0 : -1;
}

/* qemu-img create: an empty overlay at path on backing (O(1)). */
static int overlay(const char *backing, const char *path)
{
	struct child_process cp = CHILD_PROCESS_INIT;
	struct strbuf out = STRBUF_INIT;
	int r;

	unlink(path);
	strvec_pushl(&cp.args, "qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", backing, path,
		     NULL);
	cp.capture = &out;
	cp.no_stdin = 1;
	r = run_command(&cp);
	child_process_clear(&cp);
	if (r) {
		strbuf_rtrim(&out);
		ts_error_set(TS_EXIT_ENV, "could not make the overlay \"%s\": %s", path,
			     out.len ? out.buf : "qemu-img failed");
	}
	strbuf_release(&out);
	return r ? -1 : 0;
}

static int vm_running(struct ts_env *env, struct ts_side *side)
{
	virDomainPtr d = lookup(env, side);
	int r = d && virDomainIsActive(d) == 1;

	if (d)
		virDomainFree(d);
	ts_error_clear();
	return r;
}

static int vm_create(struct ts_env *env, struct ts_side *side)
{
	struct vm_state *st = state(env);
	char *disk, *dir;
	int r;

	if (!conn(env) || image(env))
		return -1;
	disk = disk_path(env, side);
	dir = path_dirname(disk);
	r = mkdir_p(dir, 0755) || mkdir_p(side->dir, 0755) || overlay(st->img.disk, disk) ? -1 : 0;
	if (!r)
		r = define(env, side);
	free(dir);
	free(disk);
	return r;
}

/* The last lines of a guest's serial console (new string). */
static char *serial_tail(struct ts_env *env, const struct ts_side *side, int lines)
{
	char *path = serial_path(env, side);
	struct strbuf sb = STRBUF_INIT;
	const char *p;
	int n = 0;

	if (strbuf_read_file(&sb, path) < 0 || !sb.len) {
		free(path);
		strbuf_release(&sb);
		return xstrdup("(the serial console printed nothing)");
	}
	free(path);
	strbuf_rtrim(&sb);
	for (p = sb.buf + sb.len; p > sb.buf; p--)
		if (p[-1] == '\n' && ++n == lines)
			break;
	p = xstrdup(p);
	strbuf_release(&sb);
	return (char *)p;
}

/* Until PostgreSQL in the guest accepts a connection on the forwarded port. */
static int wait_ready(struct ts_env *env, struct ts_side *side, virDomainPtr d, double t0)
{
	struct vm_state *st = state(env);
	int timeout = env->cfg->vm_boot_timeout ? env->cfg->vm_boot_timeout :
		      !strcmp(st->accel, "kvm") ? 120 : 600;
	char *ci = xstrfmt("host=127.0.0.1 port=%d dbname=postgres user=%s connect_timeout=5", side->port,
			   TS_DB_USER);
	int r = -1;

	for (;;) {
		char *tail;

		if (PQping(ci) == PQPING_OK) {
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
		usleep(250 * 1000);
	}
	free(ci);
	return r;
}

static int vm_start(struct ts_env *env, struct ts_side *side)
{
	struct vm_state *st = state(env);
	virDomainPtr d;
	char *serial;
	double t0 = now_ms();
	int r;

	if (!conn(env) || image(env))
		return -1;
	if (vm_running(env, side))
		return 0;
	if (port_in_use(side->port)) {
		if (ts_env_repick_port(env, side))
			return ts_error_set(TS_EXIT_ENV, "port %d for the %s side is already in use", side->port,
					    side->name);
		if (define(env, side))
			return -1;
	}
	if (!(d = lookup(env, side)))
		return ts_error_set(TS_EXIT_ENV, "the %s guest is not defined", side->name),
		       ts_error_hint("run \"twinstage down\", then build the environments again");
	serial = serial_path(env, side);
	write_file(serial, "", 0);
	free(serial);
	if (!env->quiet)
		fprintf(stderr, "twinstage: booting the %s guest (%s)\n", side->name,
			!strcmp(st->accel, "kvm") ? "KVM" : "software emulation: about 30 s");
	if (virDomainCreate(d)) {
		r = ts_error_set(TS_EXIT_ENV, "could not start the %s guest: %s", side->name, virt_error());
	} else {
		r = wait_ready(env, side, d, t0);
		if (!r && !env->quiet)
			fprintf(stderr, "twinstage: the %s guest accepts connections (%.0f s)\n", side->name,
				(now_ms() - t0) / 1000.0);
	}
	virDomainFree(d);
	return r;
}

/* Runs argv in the guest through its agent; -1 when the agent did not answer or it failed. */
static int agent_run(virDomainPtr d, const char *const *argv)
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
	for (int i = 0; i < 300; i++) {
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
 * PostgreSQL stopped cleanly (systemctl, through the guest agent), the disks
 * flushed, then the guest destroyed. Where the agent does not answer, a
 * checkpoint first: the next start then has almost no WAL to replay.
 */
static int vm_stop(struct ts_env *env, struct ts_side *side)
{
	static const char *const stop_pg[] = { "/usr/bin/systemctl", "stop", "postgresql", NULL };
	static const char *const sync_all[] = { "/usr/bin/sync", NULL };
	virDomainPtr d = lookup(env, side);
	int r = 0;

	ts_error_clear();
	if (!d)
		return 0;
	if (virDomainIsActive(d) == 1) {
		if (agent_run(d, stop_pg) || agent_run(d, sync_all)) {
			PGconn *c = ts_env_connect(env, side, "postgres");

			if (c)
				ts_pg_exec(c, "CHECKPOINT");
			PQfinish(c);
			ts_error_clear();
		}
		if (virDomainDestroy(d))
			r = ts_error_set(TS_EXIT_ENV, "could not stop the %s guest: %s", side->name, virt_error());
	}
	virDomainFree(d);
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
			r = ts_error_set(TS_EXIT_ENV, "could not destroy the %s guest: %s", side->name, virt_error());
		if (!r && virDomainUndefine(d))
			r = ts_error_set(TS_EXIT_ENV, "could not undefine the %s guest: %s", side->name, virt_error());
		virDomainFree(d);
	}
	disk = disk_path(env, side);
	serial = serial_path(env, side);
	if (!r && ((unlink(disk) && errno != ENOENT) || (unlink(serial) && errno != ENOENT) || rm_rf(side->dir)))
		r = ts_error_set(TS_EXIT_ENV, "could not remove the %s guest's files (%s): %s", side->name, disk,
				 strerror(errno));
	free(disk);
	free(serial);
	return r;
}

/* A name for a new frozen layer under <home>/layers (new string). */
static char *new_layer(struct ts_env *env)
{
	char *dir = path_join(state(env)->home, "layers"), *p = NULL;

	if (mkdir_p(dir, 0755)) {
		free(dir);
		return NULL;
	}
	for (int i = 1; !p || is_file(p); i++) {
		free(p);
		p = xstrfmt("%s/%d.qcow2", dir, i);
	}
	free(dir);
	return p;
}

static int is_snapshot(const struct ts_side *side)
{
	return !strncmp(side->name, "snapshots/", 10);
}

/*
 * `from`'s disk becomes a read-only layer; `from` and `to` each get a new
 * overlay on it. Not cow: `to` is a standalone copy (qemu-img convert).
 */
static int vm_snapshot(struct ts_env *env, struct ts_side *from, struct ts_side *to, int cow)
{
	int was = vm_running(env, from), r;
	char *fdisk = disk_path(env, from), *tdisk = disk_path(env, to), *layer = NULL, *tdir;

	if (!conn(env) || image(env) || vm_stop(env, from) || vm_destroy(env, to)) {
		r = -1;
		goto out;
	}
	tdir = path_dirname(tdisk);
	r = mkdir_p(tdir, 0755) || mkdir_p(to->dir, 0755) ? -1 : 0;
	free(tdir);
	if (r)
		goto out;
	if (cow) {
		if (!(layer = new_layer(env)) || rename(fdisk, layer)) {
			r = ts_error_set(TS_EXIT_ENV, "could not freeze the %s guest's disk: %s", from->name,
					 strerror(errno));
			goto out;
		}
		r = overlay(layer, fdisk) || overlay(layer, tdisk) ? -1 : 0;
	} else {
		struct child_process cp = CHILD_PROCESS_INIT;

		strvec_pushl(&cp.args, "qemu-img", "convert", "-O", "qcow2", fdisk, tdisk, NULL);
		cp.quiet = 1;
		if (run_command(&cp))
			r = ts_error_set(TS_EXIT_ENV, "could not copy the %s guest's disk to \"%s\"", from->name,
					 tdisk);
		child_process_clear(&cp);
	}
	if (!r && !is_snapshot(to))
		r = define(env, to);
	if (!r && was)
		r = vm_start(env, from);
out:
	free(fdisk);
	free(tdisk);
	free(layer);
	return r;
}

/* The layers and the folder the disks were in, once every side is gone. */
static int vm_cleanup(struct ts_env *env)
{
	struct vm_state *st = state(env);
	char *outside = ts_env_outside(env, "/var/tmp");
	int r = rm_rf(st->home);

	if (!r && is_dir(outside))
		r = rm_rf(outside);
	free(outside);
	return r;
}

const struct ts_env_ops ts_env_vm_ops = {
	.name = "vm",
	.create = vm_create,
	.start = vm_start,
	.stop = vm_stop,
	.destroy = vm_destroy,
	.running = vm_running,
	.snapshot = vm_snapshot,
	.receive = NULL,
	.cleanup = vm_cleanup,
	.release = vm_release,
	.overlays = 1,
};
