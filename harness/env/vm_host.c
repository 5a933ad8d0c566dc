/*
 * vm_host.c: the libvirt host, its storage pools and, for a remote one,
 * ssh tunnels to its loopback ports. See vm_host.h.
 */
#include "env/vm_host.h"
#include "core/error.h"
#include "core/run_command.h"
#include "core/strbuf.h"
#include "core/util.h"
#include "core/wrapper.h"
#include "env/accel.h"
#include "env/image.h"

#include <errno.h>
#include <fcntl.h>
#include <libvirt/virterror.h>
#include <libxml/uri.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void quiet_errors(void *data, virErrorPtr err)
{
	(void)data;
	(void)err;
}

const char *ts_vhost_error(void)
{
	const char *m = virGetLastErrorMessage();

	return m && *m ? m : "unknown libvirt error";
}

/* The ssh options of the URI's query (keyfile, no_verify, known_hosts), as libvirt reads them. */
static void ssh_options(struct strvec *ssh, const char *query)
{
	struct strvec kv = STRVEC_INIT;

	strvec_split(&kv, query ? query : "", "&");
	for (size_t i = 0; i < kv.nr; i++) {
		char *eq = strchr(kv.v[i], '='), *value;

		if (!eq)
			continue;
		*eq = '\0';
		value = xmlURIUnescapeString(eq + 1, 0, NULL);
		if (!strcmp(kv.v[i], "keyfile")) {
			strvec_pushl(ssh, "-i", value, NULL);
		} else if (!strcmp(kv.v[i], "no_verify") && strcmp(value, "0")) {
			strvec_pushl(ssh, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
				     NULL);
		} else if (!strcmp(kv.v[i], "known_hosts")) {
			strvec_push(ssh, "-o");
			strvec_pushf(ssh, "UserKnownHostsFile=%s", value);
		}
		xmlFree(value);
	}
	strvec_clear(&kv);
}

/* Local or remote, and for a remote host the ssh to reach it with. */
static int parse_uri(struct ts_vhost *h, const char *uri)
{
	xmlURIPtr u = xmlParseURI(uri);
	const char *transport;
	int r = 0;

	if (!u || !u->scheme) {
		r = ts_error_set(TS_EXIT_USAGE, "libvirt URI \"%s\" could not be read", uri);
		goto out;
	}
	if (!u->server || !*u->server)
		goto out;	/* this machine: qemu:///system, qemu:///session, qemu+unix:// */
	transport = strchr(u->scheme, '+');
	if (!transport || (strcmp(transport, "+ssh") && strcmp(transport, "+libssh") &&
			   strcmp(transport, "+libssh2"))) {
		r = ts_error_set(TS_EXIT_USAGE,
				 "libvirt URI \"%s\": the guests of a remote host are reached through ssh", uri);
		ts_error_hint("use qemu+ssh://[user@]%s/system: twinstage forwards each guest's port with ssh",
			      u->server);
		goto out;
	}
	h->remote = 1;
	h->server = xstrdup(u->server);
	strvec_pushl(&h->ssh, "ssh", "-o", "BatchMode=yes", NULL);
	if (u->port > 0) {
		strvec_push(&h->ssh, "-p");
		strvec_pushf(&h->ssh, "%d", u->port);
	}
	if (u->user)
		strvec_pushl(&h->ssh, "-l", u->user, NULL);
	ssh_options(&h->ssh, u->query_raw);
	strvec_push(&h->ssh, u->server);
out:
	if (u)
		xmlFreeURI(u);
	return r;
}

int ts_vhost_open(struct ts_vhost *h, const char *uri)
{
	memset(h, 0, sizeof(*h));
	h->uri = xstrdup(uri);
	if (parse_uri(h, uri)) {
		ts_vhost_close(h);
		return -1;
	}
	virSetErrorFunc(NULL, quiet_errors);
	h->conn = virConnectOpen(uri);
	if (!h->conn) {
		ts_error_set(TS_EXIT_ENV, "could not connect to libvirt at %s: %s", uri, ts_vhost_error());
		if (h->remote)
			ts_error_hint("check that \"%s virsh list\" works: twinstage uses the same ssh",
				      h->ssh.v[0]);
		else
			ts_error_hint("start the daemons (as root: libvirtd -d; virtlogd -d), or set [environments] uri");
		ts_vhost_close(h);
		return -1;
	}
	return 0;
}

void ts_vhost_close(struct ts_vhost *h)
{
	if (h->conn)
		virConnectClose(h->conn);
	free(h->uri);
	free(h->server);
	strvec_clear(&h->ssh);
	memset(h, 0, sizeof(*h));
}

virStoragePoolPtr ts_vhost_pool(struct ts_vhost *h, const char *name, const char *dir)
{
	virStoragePoolPtr p = virStoragePoolLookupByName(h->conn, name);

	if (!p) {
		struct strbuf x = STRBUF_INIT;

		strbuf_addstr(&x, "<pool type='dir'><name>");
		strbuf_add_xml(&x, name);
		strbuf_addstr(&x, "</name><target><path>");
		strbuf_add_xml(&x, dir);
		strbuf_addstr(&x, "</path><permissions><mode>0755</mode></permissions></target></pool>");
		p = virStoragePoolDefineXML(h->conn, x.buf, 0);
		strbuf_release(&x);
		if (!p)	/* defined by another run meanwhile? */
			p = virStoragePoolLookupByName(h->conn, name);
		if (!p) {
			ts_error_set(TS_EXIT_ENV, "could not define the storage pool \"%s\" (%s): %s", name, dir,
				     ts_vhost_error());
			return NULL;
		}
	}
	if (virStoragePoolIsActive(p) != 1 && (virStoragePoolBuild(p, 0) || virStoragePoolCreate(p, 0)) &&
	    virStoragePoolIsActive(p) != 1) {
		ts_error_set(TS_EXIT_ENV, "could not start the storage pool \"%s\" (%s): %s", name, dir,
			     ts_vhost_error());
		virStoragePoolFree(p);
		return NULL;
	}
	return p;
}

int ts_vhost_pool_remove(struct ts_vhost *h, const char *name)
{
	virStoragePoolPtr p = virStoragePoolLookupByName(h->conn, name);
	virStorageVolPtr *vols = NULL;
	int n, r = 0;

	if (!p)
		return 0;
	if (virStoragePoolIsActive(p) == 1 || !virStoragePoolCreate(p, 0)) {
		virStoragePoolRefresh(p, 0);
		n = virStoragePoolListAllVolumes(p, &vols, 0);
		for (int i = 0; i < n; i++) {
			if (!r && virStorageVolDelete(vols[i], 0))
				r = ts_error_set(TS_EXIT_ENV, "could not delete \"%s\": %s",
						 virStorageVolGetName(vols[i]), ts_vhost_error());
			virStorageVolFree(vols[i]);
		}
		free(vols);
		if (!r && (virStoragePoolDestroy(p) || virStoragePoolDelete(p, 0)))
			r = ts_error_set(TS_EXIT_ENV, "could not remove the storage pool \"%s\": %s", name,
					 ts_vhost_error());
	}
	if (!r && virStoragePoolUndefine(p))
		r = ts_error_set(TS_EXIT_ENV, "could not undefine the storage pool \"%s\": %s", name,
				 ts_vhost_error());
	virStoragePoolFree(p);
	return r;
}

static char *vol_path(virStorageVolPtr v)
{
	char *p = virStorageVolGetPath(v), *copy = p ? xstrdup(p) : NULL;

	free(p);
	virStorageVolFree(v);
	return copy;
}

char *ts_vhost_path(virStoragePoolPtr pool, const char *name)
{
	virStorageVolPtr v = virStorageVolLookupByName(pool, name);

	ts_error_clear();
	return v ? vol_path(v) : NULL;
}

int ts_vhost_delete(virStoragePoolPtr pool, const char *name)
{
	virStorageVolPtr v = virStorageVolLookupByName(pool, name);
	int r = 0;

	if (!v) {
		/* maybe written behind libvirt's back (a serial log): look again */
		virStoragePoolRefresh(pool, 0);
		if (!(v = virStorageVolLookupByName(pool, name)))
			return 0;
	}
	if (virStorageVolDelete(v, 0))
		r = ts_error_set(TS_EXIT_ENV, "could not delete \"%s\": %s", name, ts_vhost_error());
	virStorageVolFree(v);
	return r;
}

/* <volume>: name, a qcow2 target (or raw of `bytes`), then `rest` (new string). */
static char *volume_xml(const char *name, const char *format, unsigned long long bytes, const char *rest)
{
	struct strbuf x = STRBUF_INIT;

	strbuf_addstr(&x, "<volume><name>");
	strbuf_add_xml(&x, name);
	strbuf_addstr(&x, "</name>");
	if (bytes)
		strbuf_addf(&x, "<capacity unit='bytes'>%llu</capacity>", bytes);
	strbuf_addf(&x, "<target><format type='%s'/>%s<permissions><mode>0644</mode></permissions></target>",
		    format, !strcmp(format, "qcow2") ? "<compat>1.1</compat>" : "");
	strbuf_addstr(&x, rest);
	strbuf_addstr(&x, "</volume>");
	return strbuf_detach(&x);
}

char *ts_vhost_overlay(virStoragePoolPtr pool, const char *name, const char *backing)
{
	struct strbuf rest = STRBUF_INIT;
	virStorageVolPtr v;
	char *xml;

	if (ts_vhost_delete(pool, name))
		return NULL;
	strbuf_addstr(&rest, "<backingStore><path>");
	strbuf_add_xml(&rest, backing);
	strbuf_addstr(&rest, "</path><format type='qcow2'/></backingStore>");
	xml = volume_xml(name, "qcow2", 0, rest.buf);
	v = virStorageVolCreateXML(pool, xml, 0);
	free(xml);
	strbuf_release(&rest);
	if (!v) {
		ts_error_set(TS_EXIT_ENV, "could not make the overlay \"%s\" on \"%s\": %s", name, backing,
			     ts_vhost_error());
		return NULL;
	}
	return vol_path(v);
}

char *ts_vhost_copy(virStoragePoolPtr pool, const char *name, const char *from)
{
	virStorageVolPtr src = virStorageVolLookupByPath(virStoragePoolGetConnect(pool), from), v = NULL;
	char *xml;

	if (!src || ts_vhost_delete(pool, name)) {
		if (!src)
			ts_error_set(TS_EXIT_ENV, "could not find the disk \"%s\" to copy: %s", from, ts_vhost_error());
		if (src)
			virStorageVolFree(src);
		return NULL;
	}
	xml = volume_xml(name, "qcow2", 0, "");
	v = virStorageVolCreateXMLFrom(pool, xml, src, 0);
	free(xml);
	virStorageVolFree(src);
	if (!v) {
		ts_error_set(TS_EXIT_ENV, "could not copy \"%s\" to \"%s\": %s", from, name, ts_vhost_error());
		return NULL;
	}
	return vol_path(v);
}

static int recv_into(virStreamPtr st, const char *data, size_t n, void *opaque)
{
	(void)st;
	strbuf_add(opaque, data, n);
	return (int)n;
}

static int send_from(virStreamPtr st, char *data, size_t n, void *opaque)
{
	(void)st;
	return (int)read(*(int *)opaque, data, n);
}

int ts_vhost_read(virStoragePoolPtr pool, const char *name, struct strbuf *out)
{
	virStorageVolPtr v;
	virStreamPtr st;
	int r = -1;

	virStoragePoolRefresh(pool, 0);
	if (!(v = virStorageVolLookupByName(pool, name))) {
		ts_error_clear();
		return -1;
	}
	st = virStreamNew(virStoragePoolGetConnect(pool), 0);
	if (st && !virStorageVolDownload(v, st, 0, 0, 0)) {
		if (virStreamRecvAll(st, recv_into, out) || virStreamFinish(st))
			virStreamAbort(st);
		else
			r = 0;
	}
	if (st)
		virStreamFree(st);
	virStorageVolFree(v);
	return r;
}

/* Uploads the local file to a new volume `name` of pool; its path on the host, or NULL. */
static char *upload(virStoragePoolPtr pool, const char *name, const char *local)
{
	off_t size = file_size(local);
	int fd = open(local, O_RDONLY | O_CLOEXEC);
	virStorageVolPtr v = NULL;
	virStreamPtr st = NULL;
	char *xml, *path = NULL;

	if (fd < 0) {
		ts_error_set(TS_EXIT_ENV, "could not open \"%s\": %s", local, strerror(errno));
		return NULL;
	}
	xml = volume_xml(name, "raw", size > 0 ? (unsigned long long)size : 1, "");
	if (!ts_vhost_delete(pool, name) && (v = virStorageVolCreateXML(pool, xml, 0)) &&
	    (st = virStreamNew(virStoragePoolGetConnect(pool), 0)) &&
	    !virStorageVolUpload(v, st, 0, (unsigned long long)size, 0)) {
		if (virStreamSendAll(st, send_from, &fd) || virStreamFinish(st))
			virStreamAbort(st);
		else
			path = virStorageVolGetPath(v);
	}
	if (!path)
		ts_error_set(TS_EXIT_ENV, "could not upload \"%s\" to the libvirt host: %s", local, ts_vhost_error());
	if (st)
		virStreamFree(st);
	if (v)
		virStorageVolFree(v);
	free(xml);
	close(fd);
	return path;
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

int ts_vhost_image(struct ts_vhost *h, const struct ts_image *img, const char *dir, int quiet, char **disk,
		   char **kernel, char **initrd, char **vmlinux)
{
	const char *files[4] = { img->disk, img->kernel, img->initrd, img->vmlinux };
	char **out[4] = { disk, kernel, initrd, vmlinux };
	virStoragePoolPtr pool;
	char *marker, *uploaded, crc[9], *name;
	int have, r = 0;

	if (!h->remote) {
		for (int i = 0; i < 4; i++)
			*out[i] = xstrdup(files[i]);
		return 0;
	}
	/* named by its folder: a pool defined before over another folder is not this one */
	crc32_hex(dir, strlen(dir), crc);
	name = xstrfmt("twinstage-images-%s", crc);
	pool = ts_vhost_pool(h, name, dir);
	free(name);
	if (!pool)
		return -1;
	virStoragePoolRefresh(pool, 0);
	/* the marker is uploaded last: without it, an upload was cut short */
	marker = xstrfmt("%s.uploaded", base_name(img->disk));
	uploaded = ts_vhost_path(pool, marker);
	have = uploaded != NULL;
	free(uploaded);
	for (int i = 0; i < 4 && have; i++)
		have = !!(*out[i] = ts_vhost_path(pool, base_name(files[i])));
	if (!have) {
		double t0 = now_ms();

		if (!quiet)
			fprintf(stderr, "twinstage: uploading the image to %s (%.0f MB, once)\n", h->server,
				(double)(file_size(img->disk) + file_size(img->kernel) + file_size(img->initrd) +
					  file_size(img->vmlinux)) / 1e6);
		for (int i = 0; i < 4 && !r; i++) {
			free(*out[i]);
			if (!(*out[i] = upload(pool, base_name(files[i]), files[i])))
				r = -1;
		}
		if (!r) {
			char *p = upload(pool, marker, "/dev/null");

			r = p ? 0 : -1;
			free(p);
		}
		if (!r && !quiet)
			fprintf(stderr, "twinstage: image uploaded (%.0f s)\n", (now_ms() - t0) / 1000.0);
	}
	for (int i = 0; i < 4 && r; i++) {
		free(*out[i]);
		*out[i] = NULL;
	}
	free(marker);
	virStoragePoolFree(pool);
	return r;
}

struct probe {
	struct ts_vhost *h;
	virStoragePoolPtr pool;
	const char *dir, *kernel;
	int quiet;
};

/* A kernel under KVM in a transient guest of the host: does it get as far as printing? */
static int remote_kvm_boots(void *arg, const char **why)
{
	struct probe *pr = arg;
	char *name = xstrfmt("twinstage-kvm-probe-%d", (int)getpid());
	char *log = xstrfmt("%s.serial.log", name), *log_path = path_join(pr->dir, log);
	struct strbuf x = STRBUF_INIT, out = STRBUF_INIT;
	virDomainPtr d;
	double t0;
	int ok = 0;

	strbuf_addstr(&x, "<domain type='kvm'><name>");
	strbuf_add_xml(&x, name);
	strbuf_addstr(&x, "</name><memory unit='MiB'>128</memory><vcpu>1</vcpu><os><type arch='x86_64'>hvm</type>"
			  "<kernel>");
	strbuf_add_xml(&x, pr->kernel);
	strbuf_addstr(&x, "</kernel><cmdline>console=ttyS0 panic=-1</cmdline></os><cpu mode='host-passthrough'/>"
			  "<on_poweroff>destroy</on_poweroff><on_reboot>destroy</on_reboot><on_crash>destroy</on_crash>"
			  "<devices><serial type='file'><source path='");
	strbuf_add_xml(&x, log_path);
	strbuf_addstr(&x, "'/><target port='0'/></serial><memballoon model='none'/></devices></domain>");
	if (!pr->quiet)
		fprintf(stderr, "twinstage: does KVM work on %s? (a probe, up to 20 s, once)\n", pr->h->server);
	if (!(d = virDomainCreateXML(pr->h->conn, x.buf, 0))) {
		*why = "the libvirt host has no usable KVM";
		goto out;
	}
	t0 = now_ms();
	while (virDomainIsActive(d) == 1 && now_ms() - t0 < 20000)
		usleep(100 * 1000);
	if (virDomainIsActive(d) == 1) {
		virDomainDestroy(d);
		*why = "KVM hangs on the libvirt host (a probe kernel did not finish in 20 s)";
	} else if (!ts_vhost_read(pr->pool, log, &out) && strstr(out.buf, "Linux version")) {
		ok = 1;
		*why = "KVM works on the libvirt host (probed)";
	} else {
		*why = "KVM fails on the libvirt host (the probe kernel printed nothing)";
	}
	virDomainFree(d);
	ts_vhost_delete(pr->pool, log);
out:
	ts_error_clear();
	strbuf_release(&x);
	strbuf_release(&out);
	free(log_path);
	free(log);
	free(name);
	return ok;
}

const char *ts_vhost_accel(struct ts_vhost *h, const char *want, virStoragePoolPtr pool, const char *dir,
			   const char *kernel, int quiet, const char **why)
{
	struct probe pr = { h, pool, dir, kernel, quiet };
	char *host, *file, *stamp, crc[9];
	unsigned long version = 0;
	const char *answer;

	if (!h->remote || strcmp(want, "auto"))
		return ts_accel(want, why);
	/* kept per URI and hypervisor version */
	host = virConnectGetHostname(h->conn);
	virConnectGetVersion(h->conn, &version);
	crc32_hex(h->uri, strlen(h->uri), crc);
	file = xstrfmt("kvm-probe-%s", crc);
	stamp = xstrfmt("%s %s %lu", h->uri, host ? host : "?", version);
	answer = ts_accel_cached(file, stamp, remote_kvm_boots, &pr, why);
	free(host);
	free(file);
	free(stamp);
	return answer;
}

/* The pid of pidfile's ssh while it runs, else 0. */
static pid_t tunnel_pid(const char *pidfile)
{
	struct strbuf sb = STRBUF_INIT;
	char *proc;
	pid_t pid = 0;

	if (strbuf_read_file(&sb, pidfile) >= 0)
		pid = (pid_t)atoi(sb.buf);
	strbuf_release(&sb);
	if (pid <= 0)
		return 0;
	proc = xstrfmt("/proc/%d/stat", (int)pid);
	if (strbuf_read_file(&sb, proc) < 0 || !strstr(sb.buf, "(ssh) ") || strstr(sb.buf, ") Z "))
		pid = 0;	/* gone, a zombie, or the pid is another program's now */
	free(proc);
	strbuf_release(&sb);
	return pid;
}

int ts_vhost_tunnel_alive(const char *pidfile)
{
	return tunnel_pid(pidfile) > 0;
}

void ts_vhost_tunnel_stop(const char *pidfile)
{
	pid_t pid = tunnel_pid(pidfile);

	if (pid > 0) {
		kill(pid, SIGTERM);
		for (int i = 0; i < 100; i++) {
			/* reaped when it is this run's child; otherwise gone (or a zombie of another) */
			pid_t w = waitpid(pid, NULL, WNOHANG);

			if (w == pid || (w < 0 && tunnel_pid(pidfile) != pid))
				break;
			usleep(20 * 1000);
		}
	}
	unlink(pidfile);
}

int ts_vhost_tunnel(struct ts_vhost *h, int port, int host_port, const char *pidfile, const char *log)
{
	struct child_process cp = CHILD_PROCESS_INIT;
	struct strbuf out = STRBUF_INIT;
	char pid[32];
	double t0;
	int r = 0;

	ts_vhost_tunnel_stop(pidfile);
	unlink(log);
	/* -v: ssh says when it listens ("Local forwarding listening on"), nothing else would */
	strvec_pushl(&cp.args, h->ssh.v[0], "-v", NULL);
	for (size_t i = 1; i + 1 < h->ssh.nr; i++)
		strvec_push(&cp.args, h->ssh.v[i]);
	strvec_pushl(&cp.args, "-N", "-o", "ExitOnForwardFailure=yes", "-o", "ServerAliveInterval=15", "-L", NULL);
	strvec_pushf(&cp.args, "127.0.0.1:%d:127.0.0.1:%d", port, host_port);
	strvec_push(&cp.args, h->server);
	cp.out_path = log;	/* stdout too: it outlives this run, and must not hold its caller's pipes */
	cp.no_stdin = 1;
	cp.outlive = 1;
	if (start_command(&cp)) {
		child_process_clear(&cp);
		return ts_error_prefix("could not start ssh to forward port %d from %s", port, h->server);
	}
	t0 = now_ms();
	for (;;) {
		strbuf_reset(&out);
		strbuf_read_file(&out, log);
		if (strstr(out.buf, "Local forwarding listening on"))
			break;
		if (!poll_command(&cp) || now_ms() - t0 > 30000 || ts_interrupted) {
			const char *last;

			if (!cp.exited)
				kill(cp.pid, SIGTERM);
			finish_command(&cp);
			strbuf_rtrim(&out);
			last = strrchr(out.buf, '\n');
			r = ts_error_set(TS_EXIT_ENV, "could not forward port %d from %s with ssh: %s", port, h->server,
					 out.len ? (last ? last + 1 : out.buf) : "it stopped");
			ts_error_hint("its messages are in %s", log);
			break;
		}
		usleep(50 * 1000);
	}
	if (!r) {
		snprintf(pid, sizeof(pid), "%d\n", (int)cp.pid);
		r = write_file(pidfile, pid, strlen(pid));
	}
	strbuf_release(&out);
	child_process_clear(&cp);
	return r;
}
