/*
 * The dualboot backend and the station disk, end to end: the disk of
 * images/debian-pg15.ini built, booted as one guest by its own bootloader
 * (each side proven by its marker and by a table only that side has), its
 * default flipped and booted again; scenarios/invoices rehearsed on it to
 * the instance backend's verdict; `write` refusing each unsafe device and
 * writing a loop device that reads back equal; GRUB entries GRUB accepts.
 */
#include "core/strbuf.h"
#include "core/util.h"
#include "core/wrapper.h"
#include "helpers.h"
#include "helpers_vm.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define ASSERT_HAS TH_ASSERT_HAS

static char *dir;
static struct strbuf out = STRBUF_INIT, err = STRBUF_INIT;
static char *loops[2];
static char *mounted;

static void setup(void)
{
	dir = th_tmpdir();
	strbuf_reset(&out);
	strbuf_reset(&err);
	loops[0] = loops[1] = mounted = NULL;
}

static void teardown(void)
{
	th_run(NULL, "virsh", "-q", "destroy", "twinstage-test-station", NULL);
	th_run(NULL, "virsh", "-q", "undefine", "twinstage-test-station", NULL);
	if (dir)
		th_twinstage(dir, NULL, NULL, "down", "-q", "-c", xstrfmt("%s/scenarios/invoices/twinstage.ini", dir),
			     "--env", xstrfmt("%s/scenarios/invoices/env.ini", dir), NULL);
	if (mounted)
		th_run(NULL, "umount", mounted, NULL);
	for (int i = 0; i < 2; i++)
		if (loops[i])
			th_run(NULL, "losetup", "-d", loops[i], NULL);
	th_rmtree(dir);
	free(dir);
	th_libvirt_down();
}

TestSuite(dualboot, .init = setup, .fini = teardown, .timeout = 1800);

/* `twinstage dualboot ARGS...` exits want; its output in out and err. */
#define DUALBOOT(want, ...)                                                                          \
	do {                                                                                         \
		int code_;                                                                           \
		strbuf_reset(&out);                                                                  \
		strbuf_reset(&err);                                                                  \
		code_ = th_twinstage(dir, &out, &err, "dualboot", __VA_ARGS__, NULL);                \
		cr_assert_eq(code_, want, "dualboot: exit %d\n%s\n%s", code_, out.buf, err.buf);     \
	} while (0)

/*
 * Boots the station disk as one guest, by its own bootloader (no kernel
 * given), PostgreSQL forwarded to 127.0.0.1:port; returns its conninfo.
 */
static char *boot(const char *disk, int port)
{
	char *xml = xstrfmt(
		"<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>\n"
		"  <name>twinstage-test-station</name><memory unit='MiB'>768</memory><vcpu>2</vcpu>\n"
		"  <os><type arch='x86_64'>hvm</type><boot dev='hd'/></os>\n"
		"  <on_poweroff>destroy</on_poweroff><on_reboot>destroy</on_reboot>\n"
		"  <devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/>\n"
		"    <source file='%s'/><target dev='vda' bus='virtio'/></disk>\n"
		"    <serial type='file'><source path='%s/serial.log'/><target port='0'/></serial>\n"
		"    <memballoon model='none'/></devices>\n"
		"  <qemu:commandline><qemu:arg value='-netdev'/>"
		"<qemu:arg value='user,id=n0,hostfwd=tcp:127.0.0.1:%d-:5432'/>\n"
		"    <qemu:arg value='-device'/><qemu:arg value='virtio-net-pci,netdev=n0,addr=0x1f,romfile='/>"
		"</qemu:commandline>\n</domain>\n", disk, dir, port);
	char *ci = xstrfmt("host=127.0.0.1 port=%d dbname=postgres user=postgres connect_timeout=5", port);

	th_write(dir, "station.xml", xml);
	cr_assert_eq(th_run(NULL, "virsh", "-q", "define", xstrfmt("%s/station.xml", dir), NULL), 0);
	cr_assert_eq(th_run(NULL, "virsh", "-q", "start", "twinstage-test-station", NULL), 0);
	for (int t = 0; PQping(ci) != PQPING_OK; t++) {
		char *serial = th_read(dir, "serial.log");

		cr_assert_lt(t, 600 * 4, "the station did not boot to PostgreSQL in 600 s:\n%s", serial ? serial : "");
		free(serial);
		usleep(250 * 1000);
	}
	free(xml);
	return ci;
}

/* The guest stopped (the test's writes are committed: fsync is on), and undefined. */
static void halt(void)
{
	cr_assert_eq(th_run(NULL, "virsh", "-q", "destroy", "twinstage-test-station", NULL), 0);
	cr_assert_eq(th_run(NULL, "virsh", "-q", "undefine", "twinstage-test-station", NULL), 0);
}

/* The running station is `side`: its marker, its hostname, the root its bootloader chose. */
static void assert_booted(const char *ci, const char *side)
{
	char *marker = th_value(ci, "SELECT pg_read_file('/etc/twinstage-side')");
	char *host = th_value(ci, "SELECT pg_read_file('/etc/hostname')");
	char *cmdline = th_value(ci, "SELECT pg_read_file('/proc/cmdline')");
	char *want_host = xstrfmt("twinstage-%s\n", side), *want_root = xstrfmt("root=LABEL=twinstage-%s ", side);
	char *want_marker = xstrfmt("%s\n", side);

	cr_assert_str_eq(marker, want_marker);
	cr_assert_str_eq(host, want_host);
	cr_assert(strstr(cmdline, want_root), "booted with \"%s\", not %s", cmdline, want_root);
	free(marker);
	free(host);
	free(cmdline);
	free(want_host);
	free(want_root);
	free(want_marker);
}

static int has_table(const char *ci, const char *name)
{
	char *sql = xstrfmt("SELECT count(*) FROM pg_tables WHERE tablename = '%s'", name);
	char *n = th_value(ci, sql);
	int r = atoi(n);

	free(n);
	free(sql);
	return r;
}

/* A loop device over a new sparse file of `size` (e.g. "9G") in dir, partitions scanned; its path. */
static char *loop_of(const char *name, const char *size)
{
	struct strbuf sb = STRBUF_INIT;
	char *file = xstrfmt("%s/%s", dir, name);

	cr_assert_eq(th_run(NULL, "truncate", "-s", size, file, NULL), 0);
	cr_assert_eq(th_run(&sb, "losetup", "-f", "--show", "-P", file, NULL), 0, "losetup: %s", sb.buf);
	strbuf_rtrim(&sb);
	free(file);
	return strbuf_detach(&sb);
}

/* The whole disk that holds this system's root ("/dev/vda"), or NULL when / is on no block device. */
static char *root_disk(void)
{
	struct stat st;
	char link[64], *sys, *part, *name;

	if (stat("/", &st) || !major(st.st_dev))
		return NULL;
	snprintf(link, sizeof(link), "/sys/dev/block/%u:%u", major(st.st_dev), minor(st.st_dev));
	if (!(sys = realpath(link, NULL)))
		return NULL;
	part = xstrfmt("%s/partition", sys);
	if (is_file(part))
		*strrchr(sys, '/') = 0;
	name = xstrfmt("/dev/%s", strrchr(sys, '/') + 1);
	free(part);
	free(sys);
	return is_file(name) || access(name, F_OK) == 0 ? name : NULL;
}

static void station_boots_each_side(const char *disk)
{
	int port = port_pick_free();
	char *ci;

	/* prod by default: its marker, and a table only prod gets */
	ci = boot(disk, port);
	assert_booted(ci, "prod");
	th_sql(ci, "CREATE TABLE only_prod (id int)");
	halt();
	free(ci);

	/* dev, its own data: the roots are apart; the flip is made from the host, no appliance */
	DUALBOOT(0, "select", disk, "dev");
	ASSERT_HAS(err, "boots its dev root by default (edited from the host");
	ci = boot(disk, port);
	assert_booted(ci, "dev");
	cr_assert_eq(has_table(ci, "only_prod"), 0, "the dev root has prod's table");
	halt();
	free(ci);

	/* dev with prod's data: the initrd copies it at the first boot, then makes dev the default */
	DUALBOOT(0, "select", disk, "dev", "--data-from", "prod");
	ASSERT_HAS(err, "boots its dev root by default, the data of the other root copied there at its first boot");
	DUALBOOT(0, "show", disk);
	ASSERT_HAS(out, "dev-from-prod (default): root=LABEL=twinstage-dev");
	ci = boot(disk, port);
	assert_booted(ci, "dev");
	cr_assert_eq(has_table(ci, "only_prod"), 1, "prod's data was not copied onto the dev root");
	th_sql(ci, "CREATE TABLE only_dev (id int)");
	halt();
	free(ci);
	{
		char *serial = th_read(dir, "serial.log");

		cr_assert(serial && strstr(serial, "copying the PostgreSQL data of LABEL=twinstage-prod") &&
				  strstr(serial, "data copied; the default entry is dev"),
			  "the initrd did not say the copy:\n%s", serial ? serial : "");
		free(serial);
	}
	/* booted again: dev, what it did since kept (no second copy) */
	unlink(xstrfmt("%s/serial.log", dir));
	ci = boot(disk, port);
	assert_booted(ci, "dev");
	cr_assert_eq(has_table(ci, "only_dev"), 1, "the second boot copied prod's data again over dev's");
	halt();
	free(ci);
	{
		char *serial = th_read(dir, "serial.log");

		/* the default entry at once: no boot: prompt waited at (Shift held at the start shows it) */
		cr_assert(serial && strstr(serial, "Loading /vmlinuz") && !strstr(serial, "\nboot: "),
			  "the bootloader waited at its prompt:\n%s", serial ? serial : "");
		free(serial);
	}

	DUALBOOT(0, "select", disk, "prod");
	DUALBOOT(0, "show", disk);
	ASSERT_HAS(out, "prod (default): root=LABEL=twinstage-prod");
	ci = boot(disk, port);
	assert_booted(ci, "prod");
	cr_assert_eq(has_table(ci, "only_prod"), 1, "prod's table is gone");
	cr_assert_eq(has_table(ci, "only_dev"), 0, "the prod root has dev's table");
	halt();
	free(ci);
}

static void write_refuses_and_writes(const char *disk)
{
	char *big, *small, *root = root_disk(), *p1;
	struct strbuf sb = STRBUF_INIT;
	char *zeros = xcalloc(1, 4096), head[4096];
	int fd;

	loops[0] = big = loop_of("big.img", "9G");
	loops[1] = small = loop_of("small.img", "1G");

	DUALBOOT(2, "write", disk, "--device", big);
	ASSERT_HAS(err, "without --yes: everything on it (9.0 GiB) is overwritten");
	DUALBOOT(2, "write", disk, "--device", small, "--yes");
	ASSERT_HAS(err, "it holds 1.0 GiB, the disk needs 8.1 GiB");
	DUALBOOT(2, "write", disk, "--device", xstrfmt("%s/big.img", dir), "--yes");
	ASSERT_HAS(err, "not a block device");
	if (root) {
		DUALBOOT(2, "write", disk, "--device", root, "--yes");
		ASSERT_HAS(err, "it holds this system's root filesystem");
	}
	cr_assert_eq(th_run(NULL, "mkfs.ext4", "-q", small, NULL), 0);
	mounted = xstrfmt("%s/mnt", dir);
	mkdir(mounted, 0755);
	cr_assert_eq(th_run(NULL, "mount", small, mounted, NULL), 0);
	DUALBOOT(2, "write", disk, "--device", small, "--yes");
	ASSERT_HAS(err, "a filesystem on it is mounted on");
	/* nothing was written by any refusal: the big device still begins with zeros */
	fd = open(big, O_RDONLY);
	cr_assert(fd >= 0 && read(fd, head, 4096) == 4096);
	close(fd);
	cr_assert(!memcmp(head, zeros, 4096), "a refused write wrote to %s", big);

	DUALBOOT(0, "write", disk, "--device", big, "--yes", "--quiet");
	/* read back: the device holds the disk, and zeros after it */
	cr_assert_eq(th_run(&sb, "qemu-img", "compare", "-f", "qcow2", "-F", "raw", disk, big, NULL), 0,
		     "the device differs from the disk: %s", sb.buf);
	/* its partitions (this kernel does not scan them itself) */
	th_run(NULL, "partx", "-a", big, NULL);
	p1 = xstrfmt("%sp1", big);
	DUALBOOT(2, "write", disk, "--device", p1, "--yes");
	ASSERT_HAS(err, "it is a partition (of /dev/");

	/* GRUB entries for the written roots, by UUID: GRUB's own parser accepts them */
	DUALBOOT(0, "grub-entries", "--prod", xstrfmt("%sp2", big), "--dev", "LABEL=twinstage-dev");
	strbuf_reset(&sb);
	th_run(&sb, "blkid", "-s", "UUID", "-o", "value", xstrfmt("%sp2", big), NULL);
	strbuf_rtrim(&sb);
	cr_assert(sb.len > 0);
	ASSERT_HAS(out, xstrfmt("search --no-floppy --fs-uuid --set=root '%s'", sb.buf));
	ASSERT_HAS(out, xstrfmt("root=UUID=%s ro", sb.buf));
	ASSERT_HAS(out, "search --no-floppy --label --set=root 'twinstage-dev'");
	th_write(dir, "grub.cfg", out.buf);
	strbuf_reset(&sb);
	cr_assert_eq(th_run(&sb, "grub-script-check", xstrfmt("%s/grub.cfg", dir), NULL), 0, "%s", sb.buf);
	th_run(NULL, "partx", "-d", big, NULL);
	strbuf_release(&sb);
	free(zeros);
	free(root);
	free(p1);
}

/* The port of side's line in what `up` printed ("dev   running  postgresql://postgres@127.0.0.1:PORT/..."). */
static int up_port(const char *said, const char *side)
{
	static const char url[] = "postgresql://postgres@127.0.0.1:";
	char *line = xstrfmt("\n%s ", side), *text = xstrfmt("\n%s", said);
	const char *p = strstr(text, line);
	int port;

	p = p ? strstr(p, url) : NULL;
	cr_assert(p, "no %s line:\n%s", side, said);
	port = atoi(p + strlen(url));
	free(line);
	free(text);
	return port;
}

/* The workdir's guests are gone (named twinstage-<crc of the workdir>-<side>), and their folder. */
static void assert_nothing_left(const char *project)
{
	char *wd = xstrfmt("%s/.twinstage", project), crc[9], *mine, *left;

	crc32_hex(wd, strlen(wd), crc);
	mine = xstrfmt("twinstage-%s-", crc);
	left = th_domains();
	cr_assert(!strstr(left, mine), "domains of %s left: %s", wd, left);
	cr_assert(!is_dir(xstrfmt("%s/vm", wd)), "the overlays' folder is left");
	free(left);
	free(mine);
	free(wd);
}

/*
 * The dev guest boots beside the production clone's and is given the
 * clone's disk once it is seeded: `up` has the seeded rows on both sides,
 * `reset` boots the dev side from its snapshot (the data on the dev root
 * already: no second copy), `down` leaves nothing; a seed that fails
 * while the dev guest waits for its data stops the run with the seed's
 * error, and nothing is left either.
 */
static void early_dev_guest(const char *p, const char *ini)
{
	char *v, *serial, *bad, *seed;
	int code;

	strbuf_reset(&out);
	strbuf_reset(&err);
	code = th_twinstage(p, &out, &err, "up", "--env", "env.ini", NULL);
	cr_assert_eq(code, 0, "up: exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(err, "beside the production clone's: its initrd waits for the clone's disk");
	v = th_value(xstrfmt("host=127.0.0.1 port=%d dbname=invoices user=postgres sslmode=disable",
			     up_port(out.buf, "dev")), "SELECT count(*) FROM inovices");
	cr_assert_str_eq(v, "3000", "the dev side has %s of the seeded 3000 rows", v);
	free(v);
	serial = th_read(p, ".twinstage/vm/dev.serial.log");
	cr_assert(serial && strstr(serial, "waiting for /dev/vdb2") &&
			  strstr(serial, "copying the PostgreSQL data of /dev/vdb2") &&
			  strstr(serial, "data copied; the default entry is dev"),
		  "the dev guest's initrd did not say it waited for the clone's disk and copied it:\n%s",
		  serial ? serial : "");
	free(serial);
	strbuf_reset(&out);
	strbuf_reset(&err);
	code = th_twinstage(p, &out, &err, "reset", NULL);
	cr_assert_eq(code, 0, "reset: exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(err, "the dev guest accepts connections");
	ASSERT_HAS(err, "it runs the dev root (marker dev");
	serial = th_read(p, ".twinstage/vm/dev.serial.log");
	cr_assert(serial && strstr(serial, "PostgreSQL 15 starting") && !strstr(serial, "copying the PostgreSQL data"),
		  "the reset dev guest did not boot its dev root as it was:\n%s", serial ? serial : "");
	free(serial);
	code = th_twinstage(p, &out, &err, "down", "-q", "--env", "env.ini", NULL);
	cr_assert_eq(code, 0, "down: exit %d\n%s\n%s", code, out.buf, err.buf);
	assert_nothing_left(p);

	bad = xstrfmt("%s/badseed", dir);
	mkdir(bad, 0755);
	p = th_example(bad, "invoices", ini);
	seed = th_read(p, "seed.sql");
	th_write(p, "seed.sql", xstrfmt("%s\nSELECT 1 / 0;\n", seed));
	strbuf_reset(&out);
	strbuf_reset(&err);
	code = th_twinstage(p, &out, &err, "rehearse", "-c", "twinstage.ini", "--env", "env.ini", NULL);
	cr_assert_eq(code, 2, "a failing seed: exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(err, "beside the production clone's");
	ASSERT_HAS(err, "seed script failed");
	ASSERT_HAS(err, "division by zero");
	assert_nothing_left(p);
	free(seed);
	free(bad);
}

Test(dualboot, station_disk_sides_rehearsal_and_write)
{
	char *recipe = th_src("images/debian-pg15.ini"), *disk = xstrfmt("%s/station.qcow2", dir);
	char *image = th_src("images/debian-pg15.ini"), *ini, *p, *said;

	if (geteuid() != 0)
		cr_skip_test("the station build needs root (debootstrap), the guests qemu:///system, write a loop device");
	th_libvirt_up();
	DUALBOOT(0, "build", recipe, "-o", disk);
	cr_assert(is_file(disk));
	DUALBOOT(0, "show", disk);
	ASSERT_HAS(out, "prod (default): root=LABEL=twinstage-prod");
	ASSERT_HAS(out, "dev: root=LABEL=twinstage-dev");
	ASSERT_HAS(out, "root /dev/sda2: debian 12.");
	ASSERT_HAS(out, "hostname twinstage-prod");
	ASSERT_HAS(out, "hostname twinstage-dev");
	ASSERT_HAS(out, "twinstage side (/etc/twinstage-side): dev");

	station_boots_each_side(disk);

	/* the rehearsal on the station: the same verdict and failed checks as on instance */
	ini = xstrfmt("[environments]\nbackend = dualboot\nimage = %s\nmemory = 768\n", image);
	p = th_example(dir, "invoices", ini);
	said = th_rehearse_both(dir, p, 0, "dualboot");
	cr_assert(strstr(said, "production clone booted the prod root (marker prod, hostname twinstage-prod"),
		  "the report does not prove the prod side:\n%s", said);
	cr_assert(strstr(said, "dev side booted the dev root (marker dev, hostname twinstage-dev, booted with "
			       "root=/dev/vda3)"), "the report does not prove the dev side:\n%s", said);
	{
		/* both guests boot at once; the dev one gets the seeded clone's disk, and boots on while prod is checked */
		const char *early = strstr(said, "), beside the production clone's: its initrd waits for the clone's disk");
		const char *prod_up = strstr(said, "the prod guest accepts connections");

		cr_assert(early && prod_up && early < prod_up, "the dev guest did not boot beside the prod one:\n%s", said);
		cr_assert(strstr(said, "the production clone's disk given to the dev guest, whose initrd copies its data") &&
				  strstr(said, "clone: the dev guest boots on while the production clone is checked"),
			  "the dev guest was not given the clone's disk:\n%s", said);
	}
	early_dev_guest(p, ini);

	write_refuses_and_writes(disk);
	free(said);
	free(p);
	free(ini);
	free(image);
	free(recipe);
	free(disk);
}

Test(dualboot, bad_arguments_are_usage_errors)
{
	DUALBOOT(2, "select", "nothere.qcow2", "prod");
	ASSERT_HAS(err, "no disk \"nothere.qcow2\"");
	th_write(dir, "d.qcow2", "");
	DUALBOOT(2, "select", xstrfmt("%s/d.qcow2", dir), "staging");
	ASSERT_HAS(err, "unknown side \"staging\" (expected prod or dev)");
	DUALBOOT(2, "select", xstrfmt("%s/d.qcow2", dir), "dev", "--data-from", "staging");
	ASSERT_HAS(err, "unknown side \"staging\" to copy the data from (expected prod or dev)");
	DUALBOOT(2, "select", xstrfmt("%s/d.qcow2", dir), "dev", "--data-from", "dev");
	ASSERT_HAS(err, "the dev root's data cannot be copied from itself");
	/* a disk that is no station: said so, from the host, before any appliance */
	cr_assert_eq(th_run(NULL, "qemu-img", "create", "-q", "-f", "qcow2", xstrfmt("%s/blank disk.qcow2", dir), "1G",
			    NULL), 0);
	DUALBOOT(2, "select", xstrfmt("%s/blank disk.qcow2", dir), "dev");
	ASSERT_HAS(err, "blank disk.qcow2 is not a twinstage station disk (no /extlinux.conf on its first partition)");
	DUALBOOT(2, "write", "x.qcow2");
	ASSERT_HAS(err, "--device is required");
	DUALBOOT(2, "grub-entries", "--prod", "sda2");
	ASSERT_HAS(err, "--prod \"sda2\": expected a device, LABEL=x or UUID=x");
	DUALBOOT(2, "flip", "x");
	ASSERT_HAS(err, "unknown command \"flip\"");
	DUALBOOT(0, "--help");
	ASSERT_HAS(out, "grub-entries");
}
