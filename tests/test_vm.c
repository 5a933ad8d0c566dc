/*
 * The vm backend, end to end: libvirt's daemons started here, the image of
 * images/debian-pg15.ini built (or found in the cache), real guests booted
 * (software emulation where KVM does not work), both examples rehearsed to
 * the same verdicts as on the instance backend, and nothing left behind:
 * no domain, no overlay. The second example runs through a remote URI,
 * qemu+ssh:// to an sshd of the test's own on this machine: the image
 * uploaded through the storage API, the ports brought back by ssh.
 *
 * One test, in order, so that the daemons and the image serve every step.
 */
#include "core/strbuf.h"
#include "core/util.h"
#include "core/wrapper.h"
#include "helpers.h"
#include "helpers_vm.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#define ASSERT_HAS TH_ASSERT_HAS

static char *dir;
static struct strbuf out = STRBUF_INIT, err = STRBUF_INIT;
static pid_t sshd;
static char *ssh_uri;
static char *project;	/* a project a test made (with its env.ini), brought down by teardown */

/*
 * An sshd of the test's own on 127.0.0.1, root allowed with a fresh key:
 * the "remote" libvirt host of qemu+ssh://root@127.0.0.1:PORT/system.
 */
static void sshd_up(void)
{
	char *ssh = xstrfmt("%s/ssh", dir), *key = xstrfmt("%s/id", ssh), *cfg;
	int port = port_pick_free();

	mkdir(ssh, 0700);
	mkdir("/run/sshd", 0755);
	cr_assert_eq(th_run(NULL, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", xstrfmt("%s/host", ssh), NULL), 0);
	cr_assert_eq(th_run(NULL, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key, NULL), 0);
	cr_assert_eq(th_run(NULL, "cp", xstrfmt("%s.pub", key), xstrfmt("%s/authorized_keys", ssh), NULL), 0);
	cfg = xstrfmt("Port %d\nListenAddress 127.0.0.1\nHostKey %s/host\nAuthorizedKeysFile %s/authorized_keys\n"
		      "PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
		      "UsePAM no\nStrictModes no\nPidFile %s/sshd.pid\n", port, ssh, ssh, ssh);
	th_write(ssh, "sshd_config", cfg);
	cr_assert_eq(th_run(NULL, "/usr/sbin/sshd", "-f", xstrfmt("%s/sshd_config", ssh), "-E",
			    xstrfmt("%s/sshd.log", ssh), NULL), 0, "sshd did not start");
	for (int t = 0; t < 100 && !(sshd = th_pid_of(xstrfmt("%s/sshd.pid", ssh))); t++)
		usleep(50 * 1000);
	cr_assert(sshd, "sshd wrote no pid");
	ssh_uri = xstrfmt("qemu+ssh://root@127.0.0.1:%d/system?keyfile=%s&no_verify=1", port, key);
	free(cfg);
	free(key);
	free(ssh);
}

/* Processes with an argument that holds s (an ssh tunnel left running?). */
static int processes_with(const char *s)
{
	struct strvec pids = STRVEC_INIT;
	struct strbuf cmd = STRBUF_INIT;
	int n = 0;

	list_names("/proc", "", &pids);
	for (size_t i = 0; i < pids.nr; i++) {
		char *path = xstrfmt("/proc/%s/cmdline", pids.v[i]);

		strbuf_reset(&cmd);
		if (atoi(pids.v[i]) > 0 && strbuf_read_file(&cmd, path) >= 0)
			for (size_t off = 0; off < cmd.len; off += strlen(cmd.buf + off) + 1)
				n += !!strstr(cmd.buf + off, s);	/* argv is NUL-separated */
		free(path);
	}
	strbuf_release(&cmd);
	strvec_clear(&pids);
	return n;
}

static void setup(void)
{
	dir = th_tmpdir();
	strbuf_reset(&out);
	strbuf_reset(&err);
	sshd = 0;
	ssh_uri = NULL;
	project = NULL;
}

static void teardown(void)
{
	th_twinstage(dir, NULL, NULL, "down", "-q", NULL);
	if (project)
		th_twinstage(project, NULL, NULL, "down", "-q", "--env", "env.ini", NULL);
	if (ssh_uri) {	/* the image pool of the test's "remote" folder */
		char *images = xstrfmt("%s/remote/images", dir), crc[9], *pool;

		crc32_hex(images, strlen(images), crc);
		pool = xstrfmt("twinstage-images-%s", crc);
		th_run(NULL, "virsh", "-q", "pool-destroy", pool, NULL);
		th_run(NULL, "virsh", "-q", "pool-undefine", pool, NULL);
		free(pool);
		free(images);
	}
	if (sshd)
		kill(sshd, SIGTERM);
	th_rmtree(dir);
	free(dir);
	free(ssh_uri);
	free(project);
	th_libvirt_down();
}

/* Under software emulation a guest boots in about 30 s; the whole test takes minutes. */
TestSuite(vm, .init = setup, .fini = teardown, .timeout = 1500);

/* Rehearses the example on vm (on the test's "remote" host when remote), then on instance: the same results. */
static void rehearse_both(const char *name, int want, int remote)
{
	char *image = th_src("images/debian-pg15.ini"), *p, *said;
	char *ini = remote ? xstrfmt("[environments]\nbackend = vm\nimage = %s\nmemory = 768\nuri = %s\n"
				     "remote_dir = %s/remote\n", image, ssh_uri, dir) :
			     xstrfmt("[environments]\nbackend = vm\nimage = %s\nmemory = 768\n", image);

	p = th_example(dir, name, ini);
	said = th_rehearse_both(dir, p, want, "vm");
	if (remote) {
		char *pools = NULL;
		struct strbuf sb = STRBUF_INIT;

		cr_assert(strstr(said, "uploading the image to 127.0.0.1"), "no upload:\n%s", said);
		/* the guests' pool is gone with them; only the uploaded image stays */
		th_run(&sb, "virsh", "-q", "pool-list", "--all", "--name", NULL);
		pools = strbuf_detach(&sb);
		{	/* this workdir's pool on the "remote" host: twinstage-<crc of host:workdir> */
			char host[256] = "", crc[9], *tagged, *mine;

			gethostname(host, sizeof(host) - 1);
			tagged = xstrfmt("%s:%s/.twinstage", host, p);
			crc32_hex(tagged, strlen(tagged), crc);
			mine = xstrfmt("twinstage-%s\n", crc);
			strbuf_addstr(&sb, pools);
			strbuf_addch(&sb, '\n');
			cr_assert(!strstr(sb.buf, mine), "the guests' pool is left: %s", pools);
			strbuf_reset(&sb);
			free(mine);
			free(tagged);
		}
		free(pools);
		sb = (struct strbuf)STRBUF_INIT;
		th_run(&sb, "ls", xstrfmt("%s/remote", dir), NULL);
		strbuf_rtrim(&sb);
		cr_assert_str_eq(sb.buf, "images", "left in the remote folder: %s", sb.buf);
		strbuf_release(&sb);
		cr_assert_eq(processes_with("ExitOnForwardFailure"), 0, "an ssh tunnel is left running");
	}
	free(said);
	free(ini);
	free(image);
	free(p);
}

/* What `twinstage up` printed of the prod side's port ("prod  running  postgresql://postgres@127.0.0.1:PORT/..."). */
static int prod_port(const char *said)
{
	const char *p = strstr(said, "prod  running  postgresql://postgres@127.0.0.1:");

	cr_assert(p, "no prod line:\n%s", said);
	return atoi(p + strlen("prod  running  postgresql://postgres@127.0.0.1:"));
}

/*
 * The guests boot twinstage's own init, their agent answers, a physical
 * clone stops the production clone cleanly through it (its own log says so
 * when it starts again), and ddt_server = guest restores in a third guest.
 */
static void guests_boot_own_init_and_stop_cleanly(void)
{
	char *image = th_src("images/debian-pg15.ini"), *p, *ci, *v, *crc_name;
	char *ini = xstrfmt("[environments]\nbackend = vm\nimage = %s\nmemory = 768\nclone = physical\n"
			    "ddt_server = guest\n", image);
	char crc[9], *wd;
	struct strbuf sb = STRBUF_INIT;
	int code;

	wd = xstrfmt("%s/physical", dir);	/* a project of its own: the examples below have theirs */
	mkdir(wd, 0755);
	project = p = th_example(wd, "invoices", ini);
	free(wd);
	strbuf_reset(&out);
	strbuf_reset(&err);
	code = th_twinstage(p, &out, &err, "up", "--env", "env.ini", NULL);
	cr_assert_eq(code, 0, "exit %d\n%s\n%s", code, out.buf, err.buf);
	ci = xstrfmt("host=127.0.0.1 port=%d dbname=postgres user=postgres sslmode=disable", prod_port(out.buf));
	/* PID 1 is twinstage's init, not systemd */
	v = th_value(ci, "SELECT encode(pg_read_binary_file('/proc/1/cmdline'), 'escape')");
	cr_assert(strstr(v, "/usr/sbin/twinstage-init"), "PID 1 is \"%s\"", v);
	free(v);
	/* stopped for the physical copy, through the agent, then started: a clean shutdown, not a crash */
	v = th_value(ci, "SELECT pg_read_file('/var/log/postgresql/postgresql-15-main.log')");
	cr_assert(strstr(v, "database system is shut down"), "no clean shutdown in the guest's log:\n%s", v);
	cr_assert(strstr(v, "database system was shut down at"), "no clean start after it:\n%s", v);
	cr_assert(!strstr(v, "was interrupted") && !strstr(v, "not properly shut down"),
		  "the guest's PostgreSQL was not stopped cleanly:\n%s", v);
	free(v);
	/* the agent answers (the live snapshot's freeze goes through it) */
	wd = xstrfmt("%s/.twinstage", p);
	crc32_hex(wd, strlen(wd), crc);
	crc_name = xstrfmt("twinstage-%s-prod", crc);
	cr_assert_eq(th_run(&sb, "virsh", "-q", "qemu-agent-command", crc_name, "{\"execute\":\"guest-ping\"}", NULL), 0,
		     "the guest agent did not answer: %s", sb.buf);
	/* the double dump test in a guest of the image when asked */
	strbuf_reset(&out);
	strbuf_reset(&err);
	code = th_twinstage(p, &out, &err, "ddt", "prod", "--env", "env.ini", NULL);
	cr_assert_eq(code, 0, "exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(err, "the scratch server of the double dump test: in a guest of the image (ddt_server = guest)");
	ASSERT_HAS(err, "the scratch guest accepts connections");
	ASSERT_HAS(err, "lock and stall times are reported, not gated");
	/* a step without --env reaches the guests the configuration of `up` made (env.json keeps the image) */
	strbuf_reset(&out);
	strbuf_reset(&err);
	code = th_twinstage(p, &out, &err, "reset", NULL);
	cr_assert_eq(code, 0, "exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(err, "the dev guest accepts connections");
	code = th_twinstage(p, &out, &err, "down", "-q", "--env", "env.ini", NULL);
	cr_assert_eq(code, 0, "exit %d\n%s\n%s", code, out.buf, err.buf);
	v = th_domains();
	cr_assert(!strstr(v, xstrfmt("twinstage-%s-", crc)), "domains left: %s", v);
	free(v);
	strbuf_release(&sb);
	free(crc_name);
	free(wd);
	free(ci);
	free(ini);
	free(image);
}

Test(vm, image_guests_and_both_examples)
{
	char *recipe = th_src("images/debian-pg15.ini");
	char *disk;
	double t0;
	int code;

	if (geteuid() != 0)
		cr_skip_test("the image build needs root (debootstrap), and the guests qemu:///system");
	th_libvirt_up();
	/* the image: built once (or found), then a second build finds it at once */
	code = th_twinstage(dir, &out, &err, "image", "build", recipe, NULL);
	cr_assert_eq(code, 0, "exit %d\n%s\n%s", code, out.buf, err.buf);
	disk = xstrdup(out.buf);
	disk[strcspn(disk, "\n")] = '\0';
	cr_assert(is_file(disk), "no disk at \"%s\"", disk);
	strbuf_reset(&out);
	strbuf_reset(&err);
	t0 = now_ms();
	code = th_twinstage(dir, &out, &err, "image", "build", recipe, NULL);
	cr_assert_eq(code, 0);
	ASSERT_HAS(err, "cached");
	cr_assert_lt(now_ms() - t0, 5000, "a cached build took %.0f ms", now_ms() - t0);

	/* what the disk holds, by libguestfs inspection */
	strbuf_reset(&out);
	code = th_twinstage(dir, &out, &err, "image", "inspect", disk, NULL);
	cr_assert_eq(code, 0, "exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(out, ": debian 12.");
	ASSERT_HAS(out, "PostgreSQL: 15");
	ASSERT_HAS(out, "hostname twinstage");

	guests_boot_own_init_and_stop_cleanly();
	rehearse_both("invoices", 0, 0);
	sshd_up();
	rehearse_both("rename-breaks", 1, 1);
	free(disk);
	free(recipe);
}

/* `twinstage up` with this vm.ini in a small project exits `want`, saying `message`. */
static void up_fails(const char *vm_ini, int want, const char *message)
{
	int code;

	th_write(dir, "vm.ini", vm_ini);
	strbuf_reset(&out);
	strbuf_reset(&err);
	code = th_twinstage(dir, &out, &err, "up", "--env", "vm.ini", NULL);
	cr_assert_eq(code, want, "exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(err, message);
}

Test(vm, a_missing_daemon_is_an_environment_error)
{
	char *image = th_src("images/debian-pg15.ini");
	char *ini = xstrfmt("[environments]\nbackend = vm\nimage = %s\nuri = qemu:///session?socket=/nonexistent/sock\n",
			    image);

	th_project(dir, "");
	th_write(dir, "migrations/1_t.up.sql", "CREATE TABLE t (id int);\n");
	up_fails(ini, 3, "could not connect to libvirt at qemu:///session?socket=/nonexistent/sock");
	ASSERT_HAS(err, "libvirtd -d");
	free(ini);
	/* a remote host whose guests' ports ssh could not bring here */
	ini = xstrfmt("[environments]\nbackend = vm\nimage = %s\nuri = qemu+tcp://db-lab.invalid/system\n", image);
	up_fails(ini, 2, "libvirt URI \"qemu+tcp://db-lab.invalid/system\": the guests of a remote host are reached through ssh");
	ASSERT_HAS(err, "use qemu+ssh://[user@]db-lab.invalid/system");
	free(ini);
	free(image);
}

Test(vm, bad_vm_settings_name_the_line)
{
	int code;

	th_project(dir, "");
	th_write(dir, "migrations/1_t.up.sql", "CREATE TABLE t (id int);\n");
	up_fails("[environments]\nbackend = vm\nimage = nothere.ini\n", 2, "vm.ini:3: image recipe");
	th_write(dir, "r.ini", "[image]\nsize = 2G\n");
	up_fails("[environments]\nbackend = vm\nimage = r.ini\naccel = fast\n", 2,
		 "vm.ini:4: invalid value for accel: \"fast\" (expected auto, kvm or tcg)");
	up_fails("[environments]\nbackend = vm\nimage = r.ini\nremote_dir = images\n", 2,
		 "vm.ini:4: invalid value for remote_dir: \"images\" (an absolute folder on the libvirt host)");
	up_fails("[environments]\nbackend = vm\nimage = r.ini\nddt_server = scratch\n", 2,
		 "vm.ini:4: invalid value for ddt_server: \"scratch\" (expected host or guest)");
	up_fails("[environments]\nbackend = dualboot\nimage = r.ini\ndev_image = r.ini\n", 2,
		 "dev_image needs backend = vm (the station's two roots are made from one image)");
	up_fails("[environments]\nbackend = vm\nimage = r.ini\ndev_image = r.ini\nupgrade = pg_upgrade\n", 2,
		 "upgrade = pg_upgrade with dev_image: the dev guest is filled with pg_dump of its major (upgrade = dump)");
	up_fails("[environments]\nbackend = vm\nimage = r.ini\ndev_stack = r.ini\n", 2,
		 "dev_stack needs backend = instance");
	ASSERT_HAS(err, "on vm, dev_image = images/debian13-pg17.ini gives the dev guest its own system");
	th_write(dir, "vm.ini", "[environments]\nbackend = vm\nimage = r.ini\n");
	th_write(dir, "r.ini", "[image]\nsize = 2G\n\n[postgresql]\nversoin = 15\n");
	strbuf_reset(&err);
	code = th_twinstage(dir, &out, &err, "image", "build", "r.ini", NULL);
	cr_assert_eq(code, 2);
	ASSERT_HAS(err, "r.ini:5: unknown key \"versoin\" in [postgresql]");
	th_write(dir, "r.ini", "[image]\nsize = 2G\ninit = sysvinit\n");
	strbuf_reset(&err);
	code = th_twinstage(dir, &out, &err, "image", "build", "r.ini", NULL);
	cr_assert_eq(code, 2);
	ASSERT_HAS(err, "r.ini:3: invalid init \"sysvinit\" (twinstage: PostgreSQL started directly, or systemd: the root's services too)");
}

/* `SELECT sql` on the side of a kept workdir (its port from env.json). */
static char *side_value(const char *workdir, const char *side, const char *db, const char *sql)
{
	char *ci = xstrfmt("host=127.0.0.1 port=%d user=postgres dbname=%s sslmode=disable",
			   th_kept_port(workdir, side), db);
	char *v = th_value(ci, sql);

	free(ci);
	return v;
}

/* No libvirt domain of workdir's guests is left. */
static void assert_no_domains(const char *workdir)
{
	char crc[9], *mine, *v = th_domains();

	crc32_hex(workdir, strlen(workdir), crc);
	mine = xstrfmt("twinstage-%s-", crc);
	cr_assert(!strstr(v, mine), "domains left: %s", v);
	free(mine);
	free(v);
}

/*
 * The move to the next major on vm: the production clone a Debian 12
 * guest with PostgreSQL 15, the dev guest its own image, Debian 13 with
 * PostgreSQL 17, filled with 17's pg_dump. The live version's health page
 * fails on the dev side only, as on instance; each guest runs its own
 * system, read from inside it; nothing is lost; nothing is left.
 */
Test(vm, the_dev_guest_runs_its_own_image_of_the_next_major)
{
	char *image = th_src("images/debian-pg15.ini"), *next = th_src("images/debian13-pg17.ini");
	char *ini = xstrfmt("[environments]\nbackend = vm\nimage = %s\ndev_image = %s\nupgrade = dump\nmemory = 768\n",
			    image, next);
	char *p, *wd, *v;
	json_t *rep, *up, *c, *plan = NULL;
	size_t i;
	int code, ddt_dev = 0;

	if (geteuid() != 0)
		cr_skip_test("the image builds need root (debootstrap), and the guests qemu:///system");
	th_libvirt_up();
	project = p = th_example(dir, "upgrade-17", ini);
	wd = xstrfmt("%s/.twinstage", p);
	code = th_twinstage(p, &out, &err, "rehearse", "--env", "env.ini", "--keep", NULL);
	cr_assert_eq(code, 1, "exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(out, "v1 (current)       pass 5/5 (baseline)                FAIL 4/5 (gate)");
	ASSERT_HAS(out, "got error 42703: column \"checkpoints_timed\" does not exist");
	ASSERT_HAS(out, "dev side on PostgreSQL 17");
	ASSERT_HAS(out, "from PostgreSQL 15 by dump");
	ASSERT_HAS(err, "the production clone upgraded (dump) to the image");
	ASSERT_HAS(err, "the dev guest accepts connections");
	/* the dev side's double dump test restores into a guest of 17: this machine has 15 */
	ASSERT_HAS(err, "in a guest of the image (the guests run PostgreSQL 17, this machine 15)");

	/* each guest its own system, asked from inside */
	v = side_value(wd, "dev", "shop", "SELECT pg_read_file('/etc/debian_version') || version()");
	cr_assert(!strncmp(v, "13.", 3) && strstr(v, "PostgreSQL 17."), "the dev guest runs %s", v);
	free(v);
	v = side_value(wd, "prod", "shop", "SELECT pg_read_file('/etc/debian_version') || version()");
	cr_assert(!strncmp(v, "12.", 3) && strstr(v, "PostgreSQL 15."), "the production clone runs %s", v);
	free(v);

	rep = th_latest_report(wd);
	up = json_object_get(rep, "upgrade");
	cr_assert_eq(json_integer_value(json_object_get(up, "from")), 15);
	cr_assert_eq(json_integer_value(json_object_get(up, "to")), 17);
	cr_assert_str_eq(json_string_value(json_object_get(up, "method")), "dump");
	json_array_foreach(json_object_get(up, "plans"), i, c)
		if (strstr(json_string_value(json_object_get(c, "sql")), "placed_at IS NULL"))
			plan = c;
	cr_assert(plan, "the IS NULL report was not measured");
	cr_assert(json_is_true(json_object_get(plan, "plan_changed")));
	json_array_foreach(json_object_get(rep, "data"), i, c)
		if (!strcmp(json_string_value(json_object_get(c, "check")), "ddt") &&
		    !strcmp(json_string_value(json_object_get(c, "side")), "dev")) {
			cr_assert_str_eq(json_string_value(json_object_get(c, "status")), "passed");
			ddt_dev = 1;
		}
	cr_assert(ddt_dev, "no double dump test of the dev side");
	json_decref(rep);

	code = th_twinstage(p, &out, &err, "down", "-q", "--env", "env.ini", NULL);
	cr_assert_eq(code, 0, "exit %d\n%s\n%s", code, out.buf, err.buf);
	assert_no_domains(wd);
	free(wd);
	free(ini);
	free(next);
	free(image);
}

/*
 * The dev side of a cow clone is the running production clone copied,
 * memory and disk, not booted: the same postmaster runs on both (its start
 * time is the same), with the seeded rows, each guest's clock this
 * machine's; a write on one is not on the other; `reset` then boots the
 * dev guest as usual (the copy's definition keeps no incoming migration);
 * nothing is left.
 */
Test(vm, the_dev_guest_is_the_running_production_clone_copied)
{
	char *image = th_src("images/debian-pg15.ini");
	char *ini = xstrfmt("[environments]\nbackend = vm\nimage = %s\nmemory = 768\n", image);
	char *p, *wd, *v, *started;
	const char *sides[] = { "prod", "dev" };
	int code, emulated;

	if (geteuid() != 0)
		cr_skip_test("the image build needs root (debootstrap), and the guests qemu:///system");
	th_libvirt_up();
	project = p = th_example(dir, "invoices", ini);
	wd = xstrfmt("%s/.twinstage", p);
	code = th_twinstage(p, &out, &err, "up", "--env", "env.ini", NULL);
	cr_assert_eq(code, 0, "exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(err, "the dev guest accepts connections");
	ASSERT_HAS(err, "a copy of the running prod guest, memory and disk");
	cr_assert(!strstr(err.buf, "booting the dev guest"), "the dev guest booted:\n%s", err.buf);

	started = side_value(wd, "prod", "invoices", "SELECT pg_postmaster_start_time()");
	v = side_value(wd, "dev", "invoices", "SELECT pg_postmaster_start_time()");
	cr_assert_str_eq(v, started, "the dev side's server is not the production clone's");
	free(v);
	for (int i = 0; i < 2; i++) {
		struct timespec ts;
		char *sql;

		clock_gettime(CLOCK_REALTIME, &ts);
		sql = xstrfmt("SELECT count(*) || ' ' || (abs(extract(epoch from clock_timestamp()) - %lld.%03ld) < 3)"
			      " FROM inovices", (long long)ts.tv_sec, ts.tv_nsec / 1000000);

		v = side_value(wd, sides[i], "invoices", sql);
		cr_assert_str_eq(v, "3000 true", "%s: rows and clock within 3 s: %s", sides[i], v);
		free(v);
		free(sql);
	}
	/* two disks from here on */
	{
		char *ci = xstrfmt("host=127.0.0.1 port=%d user=postgres dbname=invoices sslmode=disable",
				   th_kept_port(wd, "dev"));

		th_sql(ci, "CREATE TABLE only_on_dev AS SELECT 1 AS x");
		free(ci);
	}
	v = side_value(wd, "prod", "invoices", "SELECT count(*) FROM pg_class WHERE relname = 'only_on_dev'");
	cr_assert_str_eq(v, "0", "a write on the dev side reached the production clone");
	free(v);

	strbuf_reset(&out);
	strbuf_reset(&err);
	code = th_twinstage(p, &out, &err, "reset", NULL);
	cr_assert_eq(code, 0, "exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(err, "booting the dev guest");
	v = side_value(wd, "dev", "invoices", "SELECT count(*) FROM pg_class WHERE relname = 'only_on_dev'");
	cr_assert_str_eq(v, "0", "reset kept the dev side's write");
	free(v);
	v = side_value(wd, "dev", "invoices", "SELECT pg_postmaster_start_time()");
	cr_assert(strcmp(v, started), "reset did not boot the dev guest");
	free(v);
	/*
	 * the speed probe runs once for these guests (here at reset, the first
	 * step): a later step scales its gates from the figures env.json keeps
	 */
	emulated = strstr(err.buf, "timing: the guests run under software emulation") != NULL;
	cr_assert(!strstr(err.buf, "measured by an earlier step"), "the first step did not probe:\n%s", err.buf);
	strbuf_reset(&out);
	strbuf_reset(&err);
	code = th_twinstage(p, &out, &err, "ddt", "dev", NULL);
	cr_assert_eq(code, 0, "exit %d\n%s\n%s", code, out.buf, err.buf);
	if (emulated)
		ASSERT_HAS(err, "on this machine (measured by an earlier step on these guests): the timing gates are");
	else
		cr_assert(!strstr(err.buf, "timing:"), "timing gates scaled on KVM:\n%s", err.buf);

	/*
	 * a rehearsal on instance removes the kept guests first, and what
	 * env.json said of them (emulated, their speed) goes with them: the
	 * gates on this machine's servers are the configuration's
	 */
	strbuf_reset(&out);
	strbuf_reset(&err);
	code = th_twinstage(p, &out, &err, "rehearse", NULL);
	cr_assert_eq(code, 0, "exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(err, "removing the environments of an earlier run (backend vm)");
	cr_assert(!strstr(err.buf, "timing:"), "the removed guests' speed scaled the gates on instance:\n%s", err.buf);
	{
		json_t *rep = th_latest_report(wd);

		cr_assert(!json_object_get(rep, "timing") || json_is_null(json_object_get(rep, "timing")),
			  "a timing entry on instance");
		cr_assert_str_eq(json_string_value(json_object_get(rep, "backend")), "instance");
		json_decref(rep);
	}
	assert_no_domains(wd);
	free(started);
	free(wd);
	free(ini);
	free(image);
}
