/*
 * guestfs: libguestfs handles as twinstage uses them (errors kept for the
 * error slot, the direct backend, TCG where KVM fails), and what
 * inspection finds on a disk or a root.
 */
#ifndef TS_GUESTFS_H
#define TS_GUESTFS_H

typedef struct guestfs_h guestfs_h;

/* Each side's root of a dual-boot station holds its name ("prod", "dev") here. */
#define TS_SIDE_MARKER "/etc/twinstage-side"

/* A libguestfs handle: errors kept for ts_guestfs_fail, the direct backend, TCG where KVM fails. */
guestfs_h *ts_guestfs_open(void);
/* Sets the error "what: libguestfs's last error"; returns -1. */
int ts_guestfs_fail(guestfs_h *g, const char *what);
/* Prints what the inspected root holds (OS, hostname, PostgreSQL, data, side marker); it mounts and unmounts it. */
int ts_inspect_root(guestfs_h *g, const char *root);

/* Prints what a disk holds (OS, PostgreSQL, data size), read with libguestfs inspection. */
int ts_image_inspect(const char *disk);

#endif
