/*
 * stack.c: recipe → cached root folder for the dev side (debootstrap of
 * the recipe's suite with its PostgreSQL, then production's major from the
 * machine's own suite, as Debian 12's postgresql-15 installs into a
 * Debian 13 root), and the major of a folder of server programs.
 */
#include "env/stack.h"
#include "core/error.h"
#include "core/run_command.h"
#include "core/strbuf.h"
#include "core/util.h"
#include "core/wrapper.h"
#include "env/cache.h"

#include <dirent.h>
#include <stdarg.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Bumped when what a build makes from the same recipe changes. */
#define STACK_FORMAT "twinstage-stack-1"

void ts_stack_free(struct ts_stack *st)
{
	free(st->root);
	free(st->version);
	free(st->bin);
	free(st->old_bin);
	free(st->suite);
	memset(st, 0, sizeof(*st));
}

int ts_pg_bin_major(const char *root, const char *bin)
{
	struct child_process cp = CHILD_PROCESS_INIT;
	struct strbuf out = STRBUF_INIT;
	const char *v;
	int major = 0;

	strvec_pushf(&cp.args, "%s/pg_ctl", bin);
	strvec_push(&cp.args, "--version");
	cp.usr_root = root;
	cp.capture = &out;
	cp.no_stdin = 1;
	/* "pg_ctl (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)" */
	if (!run_command(&cp) && (v = strstr(out.buf, ") ")))
		major = atoi(v + 2);
	ts_error_clear();
	child_process_clear(&cp);
	strbuf_release(&out);
	return major;
}

/* The newest PostgreSQL major installed here (/usr/lib/postgresql/N/bin/initdb), or 0. */
static int newest_here(void)
{
	DIR *d = opendir("/usr/lib/postgresql");
	struct dirent *de;
	int best = 0;

	while (d && (de = readdir(d))) {
		char *p = xstrfmt("/usr/lib/postgresql/%s/bin/initdb", de->d_name);

		if (atoi(de->d_name) > best && !access(p, X_OK))
			best = atoi(de->d_name);
		free(p);
	}
	if (d)
		closedir(d);
	return best;
}

/* This machine's Debian suite (VERSION_CODENAME of /etc/os-release), or NULL. */
static char *suite_here(void)
{
	struct strbuf sb = STRBUF_INIT;
	char *found = NULL, *p;

	if (!strbuf_read_file(&sb, "/etc/os-release") && (p = strstr(sb.buf, "VERSION_CODENAME=")) &&
	    (p == sb.buf || p[-1] == '\n')) {
		p += strlen("VERSION_CODENAME=");
		p += *p == '"';
		found = xstrndup(p, strcspn(p, "\"\n"));
		if (!*found) {
			free(found);
			found = NULL;
		}
	}
	strbuf_release(&sb);
	return found;
}

static int chroot_run(const char *root, const char *log, const char *what, ...)
{
	struct child_process cp = CHILD_PROCESS_INIT;
	va_list ap;
	const char *arg;
	int r;

	strvec_pushl(&cp.args, "chroot", root, NULL);
	va_start(ap, what);
	while ((arg = va_arg(ap, const char *)))
		strvec_push(&cp.args, arg);
	va_end(ap);
	strvec_pushl(&cp.env, "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C.UTF-8", NULL);
	r = ts_image_run(&cp, log, what);
	child_process_clear(&cp);
	return r;
}

/*
 * Production's major from the machine's suite, into the root: its apt
 * source added, no cluster made and no server started by the packages.
 */
static int add_old_major(const char *root, const char *mirror, const char *suite, int major,
			 const char *log)
{
	char *source = xstrfmt("deb %s %s main\n", mirror, suite);
	char *pkg = xstrfmt("postgresql-%d/%s", major, suite);
	char *what = xstrfmt("installing %s into the stack", pkg);
	char *resolv = path_join(root, "etc/resolv.conf"), *policy = path_join(root, "usr/sbin/policy-rc.d");
	int r;

	unlink(resolv);	/* it may be a link into a system the root does not run */
	r = ts_root_write(root, "/etc/apt/sources.list.d/twinstage-production.list", source, 0) ||
	    ts_root_write(root, "/usr/sbin/policy-rc.d", "#!/bin/sh\nexit 101\n", 0) ||
	    ts_root_write(root, "/etc/postgresql-common/createcluster.conf", "\ncreate_main_cluster = false\n", 1);
	if (!r) {
		struct strbuf sb = STRBUF_INIT;

		/* apt in the root resolves the mirror's name as the machine does */
		if (!strbuf_read_file(&sb, "/etc/resolv.conf"))
			r = ts_root_write(root, "/etc/resolv.conf", sb.buf, 0);
		strbuf_release(&sb);
	}
	if (!r) {
		chmod(policy, 0755);
		r = chroot_run(root, log, "apt-get update in the stack", "apt-get", "update", "-q", NULL) ||
		    chroot_run(root, log, what, "apt-get", "install", "-y", "-q", "--no-install-recommends", pkg,
			       NULL) ? -1 : 0;
		if (r)
			ts_error_hint("is postgresql-%d a package of %s? (its output is in %s)", major, suite, log);
	}
	unlink(policy);
	free(policy);
	free(resolv);
	free(source);
	free(pkg);
	free(what);
	return r;
}

static int build(const struct ts_recipe *r, const char *cache, const char *stem, int old_major,
		 struct ts_stack *st, int quiet)
{
	char *tmp = xstrfmt("%s/tmp-%s-%d", cache, stem, (int)getpid());
	char *root = path_join(tmp, "root"), *log = xstrfmt("%s/%s.build.log", cache, stem);
	char *meta = xstrfmt("%s/%s.json", cache, stem), *here = suite_here();
	char *mirror = r->mirror ? xstrdup(r->mirror) : ts_apt_mirror();
	double t0 = now_ms(), t;
	int ret;

	rm_rf(tmp);
	unlink(log);
	if ((ret = mkdir_p(tmp, 0755)) || (ret = ts_root_debootstrap(r, cache, root, "", log, quiet)))
		goto out;
	if (old_major != atoi(r->pg_version)) {
		if (!here) {
			ret = ts_error_set(TS_EXIT_ENV, "this machine's Debian suite is unknown (no VERSION_CODENAME in /etc/os-release)");
			ts_error_hint("the stack installs production's PostgreSQL %d from the machine's suite", old_major);
			goto out;
		}
		if (!quiet)
			fprintf(stderr, "twinstage: stack %s: adding production's PostgreSQL %d from %s\n", r->name,
				old_major, here);
		t = now_ms();
		if ((ret = add_old_major(root, mirror, here, old_major, log)))
			goto out;
		ts_step_line(quiet, "production's major added", t);
	}
	if ((ret = ts_recipe_apply(r, root, log)))
		goto out;
	{
		char *lib = path_join(root, "lib"), *pg = xstrfmt("%s%s/postgres", root, st->bin);
		char *old = xstrfmt("%s%s/pg_ctl", root, st->old_bin);
		struct stat sb;

		if (lstat(lib, &sb) || !S_ISLNK(sb.st_mode))
			ret = ts_error_set(TS_EXIT_ENV, "the stack's root has no merged /usr (%s is not a link)", lib),
			ts_error_hint("twinstage runs a stack's programs with its /usr; Debian 12 and later roots have it");
		else if (access(pg, X_OK) || access(old, X_OK))
			ret = ts_error_set(TS_EXIT_ENV, "the stack's root has no %s", access(pg, X_OK) ? pg : old),
			ts_error_hint("the build's output is in %s", log);
		free(lib);
		free(pg);
		free(old);
	}
	if (!ret)
		ret = ts_recipe_write_meta(r, meta, now_ms() - t0);
	/* the root last: its presence says the stack is whole */
	if (!ret && rename(root, st->root))
		ret = ts_error_set(TS_EXIT_ENV, "could not move the stack to \"%s\": %s", st->root, strerror(errno));
	st->build_ms = now_ms() - t0;
out:
	rm_rf(tmp);
	free(tmp);
	free(root);
	free(log);
	free(meta);
	free(here);
	free(mirror);
	return ret;
}

int ts_stack_recipe_kind(const struct ts_recipe *r)
{
	if (!r->stack)
		return ts_error_set(TS_EXIT_USAGE, "%s is an [image] recipe, not a [stack]", r->path),
		       ts_error_hint("dev_stack names a stacks/*.ini recipe; images are for the vm backend's guests");
	return 0;
}

int ts_stack_recipe_load(struct ts_recipe *r, const char *path)
{
	if (ts_recipe_load(r, path))
		return -1;
	if (ts_stack_recipe_kind(r)) {
		ts_recipe_free(r);
		return -1;
	}
	return 0;
}

int ts_stack_recipe_load_next(struct ts_recipe *r, const char *path, int image)
{
	if (!image)
		return ts_stack_recipe_load(r, path);
	if (ts_recipe_load(r, path))
		return -1;
	if (r->stack) {
		ts_recipe_free(r);
		return ts_error_set(TS_EXIT_USAGE, "%s is a [stack] recipe, not an [image]", path),
		       ts_error_hint("dev_image names an images/*.ini recipe: the dev guest's disk");
	}
	/* the guest's suite and major, as a root of programs here: not its packages, files or commands */
	strvec_clear(&r->packages);
	strvec_clear(&r->files);
	strvec_clear(&r->commands);
	strvec_clear(&r->pg_conf);
	strvec_clear(&r->pg_hba);
	r->stack = 1;
	return 0;
}

int ts_stack_ensure(const struct ts_recipe *r, int old_major, struct ts_stack *st, int quiet)
{
	char *cache = ts_image_cache_dir(), *stem, *lock;
	int fd = -1, ret = 0;

	memset(st, 0, sizeof(*st));
	if (!r->stack)
		return ts_stack_recipe_kind(r);
	if (!old_major)
		old_major = newest_here();
	stem = xstrfmt("%s-%s-from%d", r->name, r->key, old_major);
	lock = xstrfmt("%s/%s.lock", cache, stem);
	st->root = path_join(cache, stem);
	st->version = xstrdup(r->pg_version);
	st->bin = xstrfmt("/usr/lib/postgresql/%s/bin", r->pg_version);
	st->old_bin = xstrfmt("/usr/lib/postgresql/%d/bin", old_major);
	st->suite = xstrdup(r->suite);
	/* a whole stack never changes (it is moved into place when whole): no lock to read it */
	if (is_dir(st->root)) {
		st->cached = 1;
		goto out;
	}
	if ((ret = mkdir_p(cache, 0755)))
		goto out;
	/* one build at a time of the same stack; the others wait and find it */
	if ((fd = ts_cache_lock(lock)) < 0) {
		ret = -1;
		goto out;
	}
	if (is_dir(st->root)) {
		st->cached = 1;
		goto out;
	}
	if (geteuid() != 0) {
		ret = ts_error_set(TS_EXIT_ENV, "building stack %s needs root (debootstrap)", r->name);
		ts_error_hint("run it once as root (twinstage image build %s); later runs find it in %s", r->path,
			      cache);
		goto out;
	}
	ret = build(r, cache, stem, old_major, st, quiet);
out:
	ts_cache_unlock(fd, lock);
	free(lock);
	free(stem);
	free(cache);
	if (ret)
		ts_stack_free(st);
	return ret;
}
