/*
 * guest_init: how a rehearsal guest boots and stops.
 *
 * A guest's root is a Debian root (PostgreSQL from Debian's packages), but
 * it need not boot a distribution: by default its PID 1 is twinstage's own
 * init (TS_GUEST_INIT, a shell script the image build writes), which mounts
 * the root read-write, brings up the user-mode network the host's port
 * forward arrives on, starts the guest agent and the cluster, and reaps
 * orphans. `TS_GUEST_INIT stop`, run by the host through the agent, stops
 * PostgreSQL cleanly and flushes the disks. A recipe may ask for systemd
 * instead ([image] init = systemd): its own services then start too.
 */
#ifndef TS_GUEST_INIT_H
#define TS_GUEST_INIT_H

#define TS_GUEST_INIT "/usr/sbin/twinstage-init"

/* The init's text for PostgreSQL major `version` (new string). */
char *ts_guest_init_script(const char *version);

/*
 * The /init of the guests' initrd (image.c makes the initrd: a static
 * busybox, the modules listed in /modules, this script): it loads the
 * modules, mounts the root= of the kernel's command line read-only and
 * hands it to its init= (or /sbin/init). Its text is part of an image's key.
 *
 * On the dual-boot station, twinstage.data_from=LABEL=<other root> and
 * twinstage.then=<side> (the <side>-from-<other> entry, dualboot.h) make it
 * copy the other root's /var/lib/postgresql onto this root first, then
 * make <side> the default entry (twinstage.entry names the entry booted,
 * whose default it replaces) by rewriting the first TS_STATION_REGION
 * bytes of the boot partition's extlinux.conf in place; it powers the
 * guest off, saying why on the console, when either fails. A data_from
 * that is a device (/dev/vdb2) is a partition of a disk the host attaches
 * to the running guest once that disk holds the data: the initrd waits for
 * it, its kernel and initrd already loaded.
 */
#define TS_STATION_REGION 40
#define TS_STATION_REGION_STR "40"
extern const char ts_guest_initrd_init[];

/*
 * What a guest's kernel command line adds after root= and console=: own_init
 * boots TS_GUEST_INIT, else the root's systemd: "" or " init=...".
 */
const char *ts_guest_cmdline_tail(int own_init);

#endif
