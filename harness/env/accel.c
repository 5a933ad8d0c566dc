/*
 * accel.c: does KVM work here? /dev/kvm existing is not enough (on some
 * hosts qemu aborts or hangs with it), so a probe boots the host's kernel
 * under KVM for a few seconds and watches its console; the answer is kept
 * in the image cache, per kernel. See accel.h.
 */
#include "env/accel.h"
#include "core/run_command.h"
#include "core/strbuf.h"
#include "core/strvec.h"
#include "core/util.h"
#include "core/wrapper.h"
#include "env/cache.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

/* The newest file of root/boot whose name starts with prefix (new string), or NULL. */
char *ts_boot_file(const char *root, const char *prefix)
{
	char *boot = path_join(root, "boot");
	struct strvec names = STRVEC_INIT;
	char *found = NULL;

	list_names(boot, "", &names);
	for (size_t i = 0; i < names.nr; i++)
		if (!strncmp(names.v[i], prefix, strlen(prefix)))
			free(found), found = path_join(boot, names.v[i]);
	strvec_clear(&names);
	free(boot);
	return found;
}

/* A kernel to probe KVM with: the host's, from /boot. */
static char *probe_kernel(void)
{
	return ts_boot_file("/", "vmlinuz-");
}

/* Boots a kernel under KVM for a few seconds: does it get as far as printing? */
static int kvm_boots(const char **why)
{
	char *kernel = probe_kernel(), *log = NULL;
	struct child_process cp = CHILD_PROCESS_INIT;
	struct strbuf out = STRBUF_INIT;
	double t0;
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC), ok = 0;

	if (fd < 0) {
		*why = "no usable /dev/kvm";
		goto out;
	}
	close(fd);
	if (!kernel) {
		*why = "no kernel in /boot to probe KVM with";
		goto out;
	}
	log = xstrfmt("/tmp/twinstage-kvm-probe-%d.log", (int)getpid());
	strvec_pushl(&cp.args, "qemu-system-x86_64", "-accel", "kvm", "-cpu", "host", "-m", "128",
		     "-nodefaults", "-display", "none", "-no-reboot", "-kernel", kernel, "-append",
		     "console=ttyS0 panic=-1", "-serial", NULL);
	strvec_pushf(&cp.args, "file:%s", log);
	cp.quiet = 1;
	cp.no_stdin = 1;
	cp.own_group = 1;
	if (start_command(&cp)) {
		*why = "qemu-system-x86_64 could not be started";
		goto out;
	}
	t0 = now_ms();
	while (!poll_command(&cp) && now_ms() - t0 < 20000)
		usleep(100 * 1000);
	if (!cp.exited) {
		kill(-cp.pid, SIGKILL);
		finish_command(&cp);
		*why = "KVM hangs here (a probe kernel printed nothing for 20 s)";
		goto out;
	}
	strbuf_read_file(&out, log);
	if (strstr(out.buf ? out.buf : "", "Linux version")) {
		ok = 1;
		*why = "KVM works (probed)";
	} else {
		*why = "KVM fails here (qemu stopped before the probe kernel printed)";
	}
out:
	if (log)
		unlink(log);
	free(log);
	free(kernel);
	strbuf_release(&out);
	child_process_clear(&cp);
	return ok;
}

const char *ts_accel_cached(const char *file, const char *stamp, int (*probe)(void *, const char **),
			    void *arg, const char **why)
{
	char *cache = ts_image_cache_dir(), *path = path_join(cache, file);
	struct strbuf sb = STRBUF_INIT;
	size_t n = strlen(stamp);
	const char *answer;

	if (strbuf_read_file(&sb, path) >= 0 && sb.len > n + 4 && !strncmp(sb.buf, stamp, n) && sb.buf[n] == '\n') {
		char *rest = sb.buf + n + 1;

		answer = !strncmp(rest, "kvm", 3) ? "kvm" : "tcg";
		rest[strcspn(rest, "\n")] = '\0';
		*why = xstrdup(rest + 4);	/* kept for the process, like the answer */
	} else {
		int ok = probe(arg, why);
		char *text = xstrfmt("%s\n%s %s\n", stamp, ok ? "kvm" : "tcg", *why);

		answer = ok ? "kvm" : "tcg";
		if (!mkdir_p(cache, 0755))
			write_file(path, text, strlen(text));
		free(text);
	}
	strbuf_release(&sb);
	free(path);
	free(cache);
	return answer;
}

static int kvm_boots_here(void *arg, const char **why)
{
	(void)arg;
	return kvm_boots(why);
}

const char *ts_accel(const char *want, const char **why)
{
	static const char *answer, *reason;
	struct utsname u;
	char *stamp;

	if (!strcmp(want, "kvm") || !strcmp(want, "tcg")) {
		*why = "set in the configuration";
		return want;
	}
	if (!answer) {
		/* the answer holds for this kernel: kept in the cache, keyed by its release */
		uname(&u);
		stamp = xstrfmt("%s %s", u.release, u.version);
		answer = ts_accel_cached("kvm-probe", stamp, kvm_boots_here, NULL, &reason);
		free(stamp);
	}
	*why = reason;
	return answer;
}
