/*
 * dualboot: a dual-boot station disk, the dev station of one machine with a
 * production-like system and a development system side by side.
 *
 * One disk, an MBR with three partitions: a small ext2 boot partition
 * (label twinstage-boot) holding a kernel, an initrd, extlinux and its
 * extlinux.conf with two entries, `prod` (root LABEL=twinstage-prod,
 * partition 2) and `dev` (root LABEL=twinstage-dev, partition 3), and two
 * more, `dev-from-prod` and `prod-from-dev`, that boot the first's root
 * after the initrd has copied the other root's PostgreSQL data onto it
 * and made the first the default (guest_init.h), and `dev-from-prod-disk`
 * for rehearsals (TS_STATION_AWAIT_DISK); the conf's first
 * TS_STATION_REGION bytes are its DEFAULT line padded to that length, so
 * that the default changes by a write of those bytes in place; and
 * syslinux's MBR boot code; both roots are the recipe's image, each with
 * its own hostname (<hostname>-prod, <hostname>-dev), its own filesystem
 * UUID, and TS_SIDE_MARKER saying which side it is. The roots are found by
 * label, so the disk boots as vda in a guest and as sdX on a machine.
 */
#ifndef TS_DUALBOOT_H
#define TS_DUALBOOT_H

struct ts_recipe;
struct ts_image;

/*
 * The station disk of the recipe whose image is img, in the image cache
 * beside it (<stem>.station-<key of its layout>.qcow2), built when it is not there yet.
 * *disk: its path (new string).
 */
int ts_station_ensure(const struct ts_recipe *r, const struct ts_image *img, char **disk, int quiet);

/* `dualboot build`: the recipe's station disk (cached), copied to out (.raw, .img: raw; else qcow2). */
int ts_station_build(const char *recipe, const char *out, int quiet);

/*
 * Makes `side` ("prod" or "dev") the default entry of the disk (a qcow2 or
 * raw file, an overlay too). data_from: the other side, whose PostgreSQL
 * data (/var/lib/postgresql) is copied onto side's root first, or NULL.
 *
 * From the host, no appliance: the boot partition read with qemu-img and
 * debugfs, the region written in place with qemu-io (well under a
 * second); with data_from the default becomes <side>-from-<data_from>, and
 * the guest's initrd makes the copy at the disk's first boot. A disk whose
 * conf has no region (a station of an earlier twinstage, a default edited
 * by hand) takes the libguestfs way: the conf rewritten and the data
 * copied by the appliance, here and now.
 */
int ts_station_select(const char *disk, const char *side, const char *data_from, int quiet);

/*
 * The disk a rehearsal's guest is given once it holds the data (the
 * production clone's frozen disk, an overlay of it), and the entry that
 * waits for it: dev-from-prod-disk boots the dev root after the initrd has
 * copied the PostgreSQL data of this second disk's prod root (its
 * partition 2) onto it, then makes dev the default, like dev-from-prod.
 * The guest boots its kernel and initrd meanwhile.
 */
#define TS_STATION_AWAIT_DISK "vdb"

/*
 * The default entry made <side>-from-<data_from>-disk, from the host (as
 * ts_station_select does): 0 done; 1 the disk has no such entry (a
 * station of an earlier twinstage); -1 (error set).
 */
int ts_station_select_awaiting(const char *disk, const char *side, const char *data_from, int quiet);

/* `dualboot show`: the entries, the default, and what each root holds. */
int ts_station_show(const char *disk);

/*
 * `dualboot write`: the disk copied to the block device, refused (TS_EXIT_USAGE,
 * nothing written) unless yes, the device is a whole disk, nothing on it is
 * mounted or in use as swap, it does not hold this system's root, and it
 * is at least as large as the disk.
 */
int ts_station_write(const char *disk, const char *device, int yes, int quiet);

/*
 * `dualboot grub-entries`: GRUB menu entries booting the prod and dev roots
 * (a device, LABEL=x or UUID=x each; a device is named by its UUID),
 * their kernel and initrd paths inside each root.
 */
int ts_station_grub_entries(const char *prod, const char *dev, const char *kernel, const char *initrd);

#endif
