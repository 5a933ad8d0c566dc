/*
 * guestfs.c: libguestfs (C API) as twinstage opens it, and what inspection
 * says a disk holds. See guestfs.h.
 */
#include "env/guestfs.h"
#include "core/error.h"
#include "core/progress.h"
#include "core/util.h"
#include "env/accel.h"

#include <guestfs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A libguestfs handle with our error handling, the direct backend, and TCG where KVM fails. */
guestfs_h *ts_guestfs_open(void)
{
	guestfs_h *g = guestfs_create();
	const char *why;

	if (!g) {
		ts_error_set(TS_EXIT_ENV, "could not create a libguestfs handle");
		return NULL;
	}
	guestfs_set_error_handler(g, NULL, NULL);
	if (!getenv("LIBGUESTFS_BACKEND"))
		guestfs_set_backend(g, "direct");
	if (!strcmp(ts_accel("auto", &why), "tcg") && !getenv("LIBGUESTFS_BACKEND_SETTINGS")) {
		char *settings[] = { (char *)"force_tcg", NULL };

		guestfs_set_backend_settings(g, settings);
	}
	return g;
}

int ts_guestfs_fail(guestfs_h *g, const char *what)
{
	const char *e = guestfs_last_error(g);

	ts_error_set(TS_EXIT_ENV, "%s: %s", what, e ? e : "libguestfs failed");
	return -1;
}

int ts_inspect_root(guestfs_h *g, const char *root)
{
	char *distro = guestfs_inspect_get_distro(g, root);
	char *host = guestfs_inspect_get_hostname(g, root);
	int major = guestfs_inspect_get_major_version(g, root);
	int minor = guestfs_inspect_get_minor_version(g, root);
	char **pg, *marker = NULL;
	int64_t data = -1;

	printf("root %s: %s %d.%d, hostname %s\n", root, distro ? distro : "unknown OS", major, minor,
	       host ? host : "unknown");
	free(distro);
	free(host);
	if (guestfs_mount_ro(g, root, "/"))
		return ts_guestfs_fail(g, root);
	pg = guestfs_is_dir(g, "/usr/lib/postgresql") > 0 ? guestfs_ls(g, "/usr/lib/postgresql") : NULL;
	printf("  PostgreSQL: ");
	for (size_t j = 0; pg && pg[j]; j++) {
		printf("%s%s", j ? ", " : "", pg[j]);
		free(pg[j]);
	}
	printf("%s\n", pg && pg[0] ? "" : "none");
	free(pg);
	if (guestfs_is_dir(g, "/var/lib/postgresql") > 0)
		data = guestfs_du(g, "/var/lib/postgresql");
	if (data >= 0) {
		char b[32];

		printf("  data (/var/lib/postgresql): %s\n", ts_human_bytes((uint64_t)data * 1024, b, sizeof(b)));
	}
	if (guestfs_is_file(g, TS_SIDE_MARKER) > 0 && (marker = guestfs_cat(g, TS_SIDE_MARKER))) {
		marker[strcspn(marker, "\n")] = 0;
		printf("  twinstage side (%s): %s\n", TS_SIDE_MARKER, marker);
		free(marker);
	}
	guestfs_umount_all(g);
	return 0;
}

int ts_image_inspect(const char *disk)
{
	guestfs_h *g;
	char **roots = NULL;
	int ret = -1;

	if (!is_file(disk))
		return ts_error_set(TS_EXIT_USAGE, "no disk \"%s\"", disk);
	if (!(g = ts_guestfs_open()))
		return -1;
	if (guestfs_add_drive_opts(g, disk, GUESTFS_ADD_DRIVE_OPTS_READONLY, 1, -1) || guestfs_launch(g)) {
		ts_guestfs_fail(g, disk);
		goto out;
	}
	if (!(roots = guestfs_inspect_os(g)) || !roots[0]) {
		ts_error_set(TS_EXIT_ENV, "%s: no operating system found on it", disk);
		goto out;
	}
	printf("disk %s\n", disk);
	for (size_t i = 0; roots[i]; i++)
		if (ts_inspect_root(g, roots[i]))
			goto out;
	ret = 0;
out:
	free_strings(roots);
	guestfs_close(g);
	return ret;
}
