/*
 * cmd_dualboot.c: `twinstage dualboot build|select|show|write|grub-entries`.
 */
#include "cmd/cmd.h"
#include "core/error.h"
#include "env/dualboot.h"

#include <stdio.h>
#include <string.h>

static const char dualboot_usage[] =
	"usage: twinstage dualboot build RECIPE [-o DISK] [--quiet]\n"
	"       twinstage dualboot select DISK prod|dev [--data-from prod|dev] [--quiet]\n"
	"       twinstage dualboot show DISK\n"
	"       twinstage dualboot write DISK --device /dev/sdX [--yes] [--quiet]\n"
	"       twinstage dualboot grub-entries [--prod ROOT] [--dev ROOT] [--kernel PATH] [--initrd PATH]\n\n"
	"A dual-boot station disk: one disk, a boot partition (extlinux, entries prod and dev),\n"
	"and two root partitions made from the recipe's image (images/*.ini), each with its own\n"
	"hostname and the marker /etc/twinstage-side. The backend `dualboot` rehearses on it.\n\n"
	"build         makes the recipe's station disk (cached beside its image) and prints its\n"
	"              path; -o copies it to DISK (.raw or .img: raw, else qcow2). Needs root.\n"
	"select        makes prod or dev the entry the disk boots by default, from the host (a\n"
	"              station of an earlier twinstage: with libguestfs); --data-from the other\n"
	"              side: its PostgreSQL data copied onto this side's root at the next boot\n"
	"              (the initrd makes the copy, then the default is this side).\n"
	"show          lists the entries, the default, and what each root holds.\n"
	"write         copies the disk to a block device, for a physical station; refused unless\n"
	"              --yes is given, the device is a whole disk, nothing on it is mounted or\n"
	"              swap, it does not hold this system's root, and it is large enough.\n"
	"grub-entries  prints GRUB menu entries for a machine that has the two roots on its own\n"
	"              partitions: ROOT is a device, LABEL=x or UUID=x (default: the station's\n"
	"              labels twinstage-prod and twinstage-dev); kernel /vmlinuz, initrd /initrd.img.\n\n"
	"exit codes: 0 done, 2 usage error or a refused write (nothing written),\n"
	"3 a tool or libguestfs failed\n";

int cmd_dualboot(int argc, char **argv)
{
	const char *verb = argc > 1 ? argv[1] : NULL, *args[2] = { NULL, NULL };
	const char *out = NULL, *device = NULL, *prod = NULL, *dev = NULL, *data_from = NULL;
	const char *kernel = "/vmlinuz", *initrd = "/initrd.img";
	int quiet = 0, yes = 0, nargs = 0, want, r;

	if (!verb || !strcmp(verb, "--help") || !strcmp(verb, "-h")) {
		fputs(dualboot_usage, verb ? stdout : stderr);
		return verb ? 0 : TS_EXIT_USAGE;
	}
	want = !strcmp(verb, "build") || !strcmp(verb, "show") ? 1 : !strcmp(verb, "select") ? 2 :
	       !strcmp(verb, "write") ? 1 : !strcmp(verb, "grub-entries") ? 0 : -1;
	if (want < 0) {
		fprintf(stderr, "twinstage dualboot: unknown command \"%s\"\n%s", verb, dualboot_usage);
		return TS_EXIT_USAGE;
	}
	for (int i = 2; i < argc; i++) {
		const char **slot = !strcmp(argv[i], "-o") || !strcmp(argv[i], "--output") ? &out :
				    !strcmp(argv[i], "--device") ? &device : !strcmp(argv[i], "--prod") ? &prod :
				    !strcmp(argv[i], "--dev") ? &dev : !strcmp(argv[i], "--kernel") ? &kernel :
				    !strcmp(argv[i], "--initrd") ? &initrd :
				    !strcmp(argv[i], "--data-from") ? &data_from : NULL;

		if (slot && i + 1 < argc) {
			*slot = argv[++i];
		} else if (slot) {
			fprintf(stderr, "twinstage dualboot: %s needs a value\n", argv[i]);
			return TS_EXIT_USAGE;
		} else if (!strcmp(argv[i], "--quiet") || !strcmp(argv[i], "-q")) {
			quiet = 1;
		} else if (!strcmp(argv[i], "--yes")) {
			yes = 1;
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(dualboot_usage, stdout);
			return 0;
		} else if (argv[i][0] == '-' || nargs >= want) {
			fprintf(stderr, "twinstage dualboot %s: unexpected argument \"%s\"\n%s", verb, argv[i],
				dualboot_usage);
			return TS_EXIT_USAGE;
		} else {
			args[nargs++] = argv[i];
		}
	}
	if (nargs < want || (!strcmp(verb, "write") && !device)) {
		fprintf(stderr, "twinstage dualboot %s: %s\n%s", verb,
			nargs < want ? "missing arguments" : "--device is required", dualboot_usage);
		return TS_EXIT_USAGE;
	}
	if (!strcmp(verb, "build"))
		r = ts_station_build(args[0], out, quiet);
	else if (!strcmp(verb, "select"))
		r = ts_station_select(args[0], args[1], data_from, quiet);
	else if (!strcmp(verb, "show"))
		r = ts_station_show(args[0]);
	else if (!strcmp(verb, "write"))
		r = ts_station_write(args[0], device, yes, quiet);
	else
		r = ts_station_grub_entries(prod, dev, kernel, initrd);
	return r ? ts_error_print() : 0;
}
