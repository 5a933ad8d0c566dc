/*
 * vm_host: the machine libvirt runs the guests on, this one or another one,
 * reached only through libvirt's API and, for the guests' ports, ssh.
 *
 * Files on that machine (the guests' disks, their serial logs, the image)
 * are volumes of libvirt storage pools: created, copied, uploaded, read
 * back and deleted with the storage API, so that the same code serves
 * qemu:///system, qemu:///session and qemu+ssh://host/system. A remote
 * host's 127.0.0.1:PORT (qemu's hostfwd) is brought to this machine's
 * 127.0.0.1:PORT by an ssh tunnel started with the URI's own user, port
 * and key.
 */
#ifndef TS_VM_HOST_H
#define TS_VM_HOST_H

#include <libvirt/libvirt.h>

#include "core/strbuf.h"
#include "core/strvec.h"

struct ts_image;

struct ts_vhost {
	virConnectPtr conn;
	char *uri;
	int remote;		/* another machine: ports through ssh, image uploaded */
	char *server;		/* remote: the host's name, for messages */
	struct strvec ssh;	/* remote: ssh and its options, up to the host (last) */
};

/*
 * Connects to uri. A remote URI must use ssh (qemu+ssh://[user@]host[:port]/
 * system?keyfile=..&no_verify=1): its forwarded ports are reached through
 * the same ssh. Errors: TS_EXIT_USAGE (a URI twinstage cannot use),
 * TS_EXIT_ENV (libvirt unreachable).
 */
int ts_vhost_open(struct ts_vhost *h, const char *uri);
void ts_vhost_close(struct ts_vhost *h);

/* The pool `name` over folder dir on the host: found, or defined, built (mkdir -p) and started. */
virStoragePoolPtr ts_vhost_pool(struct ts_vhost *h, const char *name, const char *dir);
/* Deletes every volume of pool `name`, then the pool and its folder; a missing pool is fine. */
int ts_vhost_pool_remove(struct ts_vhost *h, const char *name);

/* A new empty qcow2 volume `name` in pool on backing (a qcow2 path on the host); its path, or NULL. */
char *ts_vhost_overlay(virStoragePoolPtr pool, const char *name, const char *backing);
/* A standalone qcow2 copy `name` in pool of the disk at from (its chain flattened); its path, or NULL. */
char *ts_vhost_copy(virStoragePoolPtr pool, const char *name, const char *from);
/* The path on the host of volume `name` of pool (new string), or NULL (no error set). */
char *ts_vhost_path(virStoragePoolPtr pool, const char *name);
/* Deletes volume `name` of pool; a missing one is fine. */
int ts_vhost_delete(virStoragePoolPtr pool, const char *name);
/* Reads volume `name` (a serial log, a small file) into out; -1 when there is none. */
int ts_vhost_read(virStoragePoolPtr pool, const char *name, struct strbuf *out);

/*
 * The image's disk, kernel, initrd and unpacked kernel as paths on the host: the cache's
 * own files for a local host; for a remote one, uploaded once into pool
 * "twinstage-images-<crc of dir>" over folder dir, and reused.
 */
int ts_vhost_image(struct ts_vhost *h, const struct ts_image *img, const char *dir, int quiet, char **disk,
		   char **kernel, char **initrd, char **vmlinux);

/*
 * "kvm" or "tcg" for the guests on this host (want: auto, kvm or tcg). A
 * local host asks ts_accel(); a remote one is probed through libvirt (a
 * kernel booted under KVM in a transient guest for up to 20 s, serial to
 * dir, pool's folder), the answer kept in the image cache per URI.
 */
const char *ts_vhost_accel(struct ts_vhost *h, const char *want, virStoragePoolPtr pool, const char *dir,
			   const char *kernel, int quiet, const char **why);

/*
 * Remote hosts: 127.0.0.1:port here forwarded to 127.0.0.1:host_port there
 * by ssh -N -L, started in the background, its pid in pidfile and its
 * output in log; returns once ssh listens here. tunnel_alive: 1 while the
 * pidfile's ssh runs. tunnel_stop: stops it; no pidfile is fine.
 */
int ts_vhost_tunnel(struct ts_vhost *h, int port, int host_port, const char *pidfile, const char *log);
int ts_vhost_tunnel_alive(const char *pidfile);
void ts_vhost_tunnel_stop(const char *pidfile);

/* libvirt's last error message, never NULL. */
const char *ts_vhost_error(void);

#endif
