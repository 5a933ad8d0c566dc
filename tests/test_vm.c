/*
 * The vm backend, end to end: libvirt's daemons started here, the image of
 * images/debian-pg15.ini built (or found in the cache), real guests booted
 * (software emulation where KVM does not work), both examples rehearsed to
 * the same verdicts as on the instance backend, and nothing left behind:
 * no domain, no overlay.
 *
 * One test, in order, so that the daemons and the image serve every step.
 */
#include "helpers.h"
#include "util.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ASSERT_HAS TH_ASSERT_HAS

static char *dir;
static struct strbuf out = STRBUF_INIT, err = STRBUF_INIT;
static pid_t daemons[2];

/* The pid a daemon wrote, 0 when it is not running. */
static pid_t pid_of(const char *pidfile)
{
	char *text = th_read("/", pidfile);
	pid_t pid = text ? (pid_t)atoi(text) : 0;

	free(text);
	return pid > 0 && kill(pid, 0) == 0 ? pid : 0;
}

/* libvirtd and virtlogd, started unless they run; the ones started here are stopped at the end. */
static void daemons_up(void)
{
	static const char *const names[2][2] = { { "virtlogd", "/run/virtlogd.pid" },
						 { "libvirtd", "/run/libvirtd.pid" } };

	for (int i = 0; i < 2; i++) {
		daemons[i] = 0;
		if (pid_of(names[i][1]))
			continue;
		cr_assert_eq(th_run(NULL, names[i][0], "-d", NULL), 0, "could not start %s", names[i][0]);
		for (int t = 0; t < 100 && !(daemons[i] = pid_of(names[i][1])); t++)
			usleep(100 * 1000);
		cr_assert(daemons[i], "%s did not write %s", names[i][0], names[i][1]);
	}
}

static void setup(void)
{
	dir = th_tmpdir();
	strbuf_reset(&out);
	strbuf_reset(&err);
	daemons[0] = daemons[1] = 0;
}

static void teardown(void)
{
	th_twinstage(dir, NULL, NULL, "down", "-q", NULL);
	th_rmtree(dir);
	free(dir);
	for (int i = 1; i >= 0; i--)
		if (daemons[i])
			kill(daemons[i], SIGTERM);
}

/* Under software emulation a guest boots in about 30 s; the whole test takes minutes. */
TestSuite(vm, .init = setup, .fini = teardown, .timeout = 1500);

/* The names of the domains libvirt has, one per line. */
static char *domains(void)
{
	struct strbuf sb = STRBUF_INIT;

	th_run(&sb, "virsh", "-q", "-c", "qemu:///system", "list", "--all", "--name", NULL);
	strbuf_rtrim(&sb);
	return strbuf_detach(&sb);
}

/*
 * A copy of an example under dir/scenarios/name (it includes ../../envs),
 * its workdir its own, with a vm environment file beside it.
 */
static char *example(const char *name)
{
	char *src = th_src(xstrfmt("scenarios/%s", name)), *envs = th_src("envs");
	char *to = xstrfmt("%s/scenarios/%s", dir, name), *image = th_src("images/debian-pg15.ini");
	char *ini, *parent = xstrfmt("%s/scenarios", dir);

	mkdir(parent, 0755);
	cr_assert_eq(th_run(NULL, "cp", "-a", src, to, NULL), 0);
	if (!is_dir(xstrfmt("%s/envs", dir)))
		cr_assert_eq(th_run(NULL, "cp", "-a", envs, dir, NULL), 0);
	th_rmtree(xstrfmt("%s/.twinstage", to));
	ini = xstrfmt("[environments]\nbackend = vm\nimage = %s\nmemory = 768\n", image);
	th_write(to, "vm.ini", ini);
	free(ini);
	free(src);
	free(envs);
	free(image);
	free(parent);
	return to;
}

static json_t *report_of(const char *project)
{
	char *wd = xstrfmt("%s/.twinstage", project);
	json_t *rep = th_latest_report(wd);

	free(wd);
	return rep;
}

/* The checks of a report that failed, one line each: version, side, role, phase, cases failed. */
static char *failures(json_t *rep)
{
	struct strbuf sb = STRBUF_INIT;
	json_t *checks = json_object_get(rep, "checks"), *c;
	size_t i;

	cr_assert(json_array_size(checks) > 0, "the report has no checks");
	json_array_foreach(checks, i, c) {
		json_int_t n = json_integer_value(json_object_get(c, "failed"));
		const char *phase = json_string_value(json_object_get(c, "phase"));

		if (n > 0)
			strbuf_addf(&sb, "%s on %s (%s) %s: %lld failed\n",
				    json_string_value(json_object_get(c, "app")),
				    json_string_value(json_object_get(c, "side")),
				    json_string_value(json_object_get(c, "role")), phase ? phase : "-", (long long)n);
	}
	return strbuf_detach(&sb);
}

static void rehearse_both(const char *name, int want)
{
	char *p = example(name), *ini = xstrfmt("%s/twinstage.ini", p), *env = xstrfmt("%s/vm.ini", p);
	json_t *vm, *inst;
	char *f_vm, *f_inst, *left;
	int code;

	strbuf_reset(&out);
	strbuf_reset(&err);
	code = th_twinstage(dir, &out, &err, "rehearse", "-c", ini, "--env", env, NULL);
	cr_assert_eq(code, want, "%s on vm: exit %d\n%s\n%s", name, code, out.buf, err.buf);
	ASSERT_HAS(err, "booting the prod guest");
	ASSERT_HAS(err, "the dev guest accepts connections");
	ASSERT_HAS(out, "backend vm, clone cow");
	vm = report_of(p);
	/* the same project on two local clusters */
	strbuf_reset(&out);
	strbuf_reset(&err);
	code = th_twinstage(dir, &out, &err, "rehearse", "-c", ini, NULL);
	cr_assert_eq(code, want, "%s on instance: exit %d\n%s\n%s", name, code, out.buf, err.buf);
	inst = report_of(p);
	cr_assert_str_eq(json_string_value(json_object_get(vm, "verdict")),
			 json_string_value(json_object_get(inst, "verdict")));
	f_vm = failures(vm);
	f_inst = failures(inst);
	cr_assert_str_eq(f_vm, f_inst, "failed checks differ:\nvm:\n%s\ninstance:\n%s", f_vm, f_inst);
	/* nothing left: no domain, no disk */
	left = domains();
	cr_assert(!strstr(left, "twinstage-"), "domains left: %s", left);
	cr_assert(!is_dir(xstrfmt("%s/.twinstage/vm", p)), "the overlays' folder is left");
	free(left);
	free(f_vm);
	free(f_inst);
	json_decref(vm);
	json_decref(inst);
	free(ini);
	free(env);
	free(p);
}

Test(vm, image_guests_and_both_examples)
{
	char *recipe = th_src("images/debian-pg15.ini");
	char *disk;
	double t0;
	int code;

	if (geteuid() != 0)
		cr_skip_test("the image build needs root (debootstrap), and the guests qemu:///system");
	daemons_up();
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

	rehearse_both("invoices", 0);
	rehearse_both("rename-breaks", 1);
	free(disk);
	free(recipe);
}

Test(vm, a_missing_daemon_is_an_environment_error)
{
	char *image = th_src("images/debian-pg15.ini");
	char *ini = xstrfmt("[environments]\nbackend = vm\nimage = %s\nuri = qemu:///session?socket=/nonexistent/sock\n",
			    image);
	int code;

	th_project(dir, "");
	th_write(dir, "migrations/1_t.up.sql", "CREATE TABLE t (id int);\n");
	th_write(dir, "vm.ini", ini);
	code = th_twinstage(dir, &out, &err, "up", "--env", "vm.ini", NULL);
	cr_assert_eq(code, 3, "exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(err, "could not connect to libvirt at qemu:///session?socket=/nonexistent/sock");
	ASSERT_HAS(err, "libvirtd -d");
	free(ini);
	free(image);
}

Test(vm, bad_vm_settings_name_the_line)
{
	int code;

	th_project(dir, "");
	th_write(dir, "migrations/1_t.up.sql", "CREATE TABLE t (id int);\n");
	th_write(dir, "vm.ini", "[environments]\nbackend = vm\nimage = nothere.ini\n");
	code = th_twinstage(dir, &out, &err, "up", "--env", "vm.ini", NULL);
	cr_assert_eq(code, 2, "exit %d\n%s\n%s", code, out.buf, err.buf);
	ASSERT_HAS(err, "vm.ini:3: image recipe");
	th_write(dir, "vm.ini", "[environments]\nbackend = vm\nimage = r.ini\naccel = fast\n");
	th_write(dir, "r.ini", "[image]\nsize = 2G\n");
	strbuf_reset(&err);
	code = th_twinstage(dir, &out, &err, "up", "--env", "vm.ini", NULL);
	cr_assert_eq(code, 2);
	ASSERT_HAS(err, "vm.ini:4: invalid value for accel: \"fast\" (expected auto, kvm or tcg)");
	th_write(dir, "vm.ini", "[environments]\nbackend = vm\nimage = r.ini\n");
	th_write(dir, "r.ini", "[image]\nsize = 2G\n\n[postgresql]\nversoin = 15\n");
	strbuf_reset(&err);
	code = th_twinstage(dir, &out, &err, "image", "build", "r.ini", NULL);
	cr_assert_eq(code, 2);
	ASSERT_HAS(err, "r.ini:5: unknown key \"versoin\" in [postgresql]");
}
