/*
 * test_command.c: child processes (core/run_command.c), started while
 * other threads run, as a migration tool is while the load's clients and
 * the samplers work.
 */
#include "core/run_command.h"
#include "core/error.h"
#include "core/strbuf.h"
#include "core/strvec.h"

#include <criterion/criterion.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int stop;

/*
 * Another thread busy in the C library while the child is made: it
 * allocates (as the load's clients do between statements) and sets a
 * variable of its own (setenv holds the library's environment lock and
 * allocates under it). A child that calls setenv or malloc after the fork
 * can find either lock taken by a thread it does not have, and waits
 * forever.
 */
static void *busy(void *arg)
{
	size_t base = (size_t)(uintptr_t)arg;
	void *v[64];

	for (unsigned n = 0; !__atomic_load_n(&stop, __ATOMIC_ACQUIRE); n++) {
		for (size_t i = 0; i < 64; i++)
			v[i] = malloc(base + 8 * (i % 6));
		setenv("TWINSTAGE_TEST_BUSY", n & 1 ? "one" : "two", 1);
		for (size_t i = 0; i < 64; i++)
			free(v[i]);
	}
	return NULL;
}

/*
 * The same, on demand: setenv as a forked child of this process would
 * call it. A child that calls it between fork and exec exits 86 instead
 * (what the race above does only now and then, it does every time).
 */
static int forked;

static void mark_child(void)
{
	forked = 1;
}

int setenv(const char *name, const char *value, int overwrite)
{
	static int (*real)(const char *, const char *, int);

	if (forked)
		_exit(86);
	if (!real)
		real = (int (*)(const char *, const char *, int))dlsym(RTLD_NEXT, "setenv");
	return real(name, value, overwrite);
}

/* Runs argv with env set, capturing its output; returns its exit status. */
static int run(struct strbuf *out, const char *const *env, const char *const *argv)
{
	struct child_process cp = CHILD_PROCESS_INIT;
	int status;

	for (size_t i = 0; argv[i]; i++)
		strvec_push(&cp.args, argv[i]);
	for (size_t i = 0; env && env[i]; i++)
		strvec_push(&cp.env, env[i]);
	cp.capture = out;
	status = run_command(&cp);
	child_process_clear(&cp);
	return status;
}

/*
 * Before the fix the child set its environment after fork (setenv, which
 * allocates): with another thread inside malloc at that moment, the child
 * waited forever for a lock no thread of its own would release, and the
 * rehearsal hung with the tool never started.
 */
Test(command, a_child_starts_while_other_threads_allocate, .timeout = 120)
{
	pthread_t th[3];
	const char *env[] = { "TWINSTAGE_TEST_VALUE=set for the child", "HOME", NULL };
	const char *argv[] = { "printenv", "TWINSTAGE_TEST_VALUE", NULL };

	cr_assert_eq(pthread_atfork(NULL, NULL, mark_child), 0);
	/* set before the threads start: they replace it, the array of the environment stays */
	cr_assert_eq(setenv("TWINSTAGE_TEST_BUSY", "zero", 1), 0);
	for (size_t i = 0; i < 3; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, busy, (void *)(uintptr_t)(16 + 8 * i)), 0);
	for (int i = 0; i < 400; i++) {
		struct strbuf out = STRBUF_INIT;
		void *held[97];

		/* this thread's own cache of small blocks left short, as a busy run leaves it */
		for (size_t k = 0; k < 97; k++)
			held[k] = malloc(16 + 8 * ((k + (size_t)i) % 6));
		cr_assert_eq(run(&out, env, argv), 0, "round %d (86: the child called setenv after the fork)", i);
		for (size_t k = 0; k < 97; k++)
			free(held[k]);
		cr_assert_str_eq(out.buf, "set for the child\n", "round %d", i);
		strbuf_release(&out);
	}
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	for (size_t i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
}

Test(command, the_environment_is_ours_with_the_childs_changes)
{
	struct strbuf out = STRBUF_INIT;
	const char *unset[] = { "TWINSTAGE_TEST_OURS", NULL }, *set[] = { "TWINSTAGE_TEST_OURS=theirs", NULL };
	const char *ours[] = { "printenv", "TWINSTAGE_TEST_OURS", NULL };
	const char *path[] = { "PATH=/nonexistent", NULL }, *sh[] = { "sh", "-c", "true", NULL };

	cr_assert_eq(setenv("TWINSTAGE_TEST_OURS", "ours", 1), 0);
	/* ours, as it is */
	cr_assert_eq(run(&out, NULL, ours), 0);
	cr_assert_str_eq(out.buf, "ours\n");
	strbuf_release(&out);
	/* NAME=VALUE replaces it, NAME alone removes it */
	cr_assert_eq(run(&out, set, ours), 0);
	cr_assert_str_eq(out.buf, "theirs\n");
	strbuf_release(&out);
	cr_assert_neq(run(&out, unset, ours), 0, "still set: %s", out.buf);
	strbuf_release(&out);
	/* the last word on a name wins: a later set over a set, a later unset over a set */
	{
		const char *twice[] = { "TWINSTAGE_TEST_OURS=first", "TWINSTAGE_TEST_OURS=last", NULL };
		const char *gone[] = { "TWINSTAGE_TEST_OURS=first", "TWINSTAGE_TEST_OURS", NULL };

		cr_assert_eq(run(&out, twice, ours), 0);
		cr_assert_str_eq(out.buf, "last\n");
		strbuf_release(&out);
		cr_assert_neq(run(&out, gone, ours), 0, "still set: %s", out.buf);
		strbuf_release(&out);
	}
	/* the program is looked for on the PATH the child is given */
	cr_assert_neq(run(&out, path, sh), 0, "sh was found on PATH=/nonexistent");
	cr_assert(strstr(ts_error_message(), "sh: No such file or directory"), "%s", ts_error_message());
	ts_error_clear();
	strbuf_release(&out);
}

Test(command, a_program_that_does_not_exist_is_named)
{
	struct child_process cp = CHILD_PROCESS_INIT;

	strvec_push(&cp.args, "twinstage-no-such-program");
	cr_assert_neq(run_command(&cp), 0);
	cr_assert_str_eq(ts_error_message(), "could not run twinstage-no-such-program: No such file or directory");
	ts_error_clear();
	child_process_clear(&cp);
}
