/*
 * progress.c: polling a child (every 100 ms once it has run a while) and
 * telling how far it got.
 */
#include "core/progress.h"
#include "core/run_command.h"
#include "core/util.h"

#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

const char *ts_human_bytes(uint64_t n, char *buf, size_t len)
{
	static const char *const units[] = { "bytes", "kiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (!u)
		snprintf(buf, len, "%llu bytes", (unsigned long long)n);
	else
		snprintf(buf, len, v < 10 ? "%.1f %s" : "%.0f %s", v, units[u]);
	return buf;
}

static __thread uint64_t walk_total;

static int add_file(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)path;
	(void)ftw;
	if (flag == FTW_F && S_ISREG(st->st_mode))
		walk_total += (uint64_t)st->st_size;
	return 0;
}

uint64_t ts_dir_bytes(const char *dir)
{
	walk_total = 0;
	if (dir && is_dir(dir))
		nftw(dir, add_file, 32, FTW_PHYS);
	return walk_total;
}

uint64_t ts_progress_dir_probe(void *arg)
{
	return ts_dir_bytes(arg);
}

static void line(const struct ts_progress *p, double ms, int final, FILE *out)
{
	char done[32], total[32], rate[32];
	double per_s = ms > 0 ? (double)p->done * 1000.0 / ms : 0;

	ts_human_bytes(p->done, done, sizeof(done));
	ts_human_bytes((uint64_t)per_s, rate, sizeof(rate));
	if (final) {
		fprintf(out, "twinstage: %s: %s in %.1f s (%s/s)\n", p->what, done, ms / 1000.0, rate);
		return;
	}
	fprintf(out, "\r\033[Ktwinstage: %s: %s", p->what, done);
	if (p->total) {
		fprintf(out, " of %s", ts_human_bytes(p->total, total, sizeof(total)));
		if (per_s > 0 && p->done < p->total)
			fprintf(out, ", %s/s, %.0f s left", rate,
				(double)(p->total - p->done) / per_s);
		else if (per_s > 0)
			fprintf(out, ", %s/s, finishing", rate);
	} else if (per_s > 0) {
		fprintf(out, ", %s/s", rate);
	}
	fflush(out);
}

void ts_progress_watch(struct ts_progress *p, struct child_process *cp)
{
	double t0 = now_ms(), last = 0;
	int tty = !p->quiet && isatty(fileno(stderr)), drawn = 0;
	useconds_t nap = 2000;

	while (poll_command(cp)) {
		double ms;

		/* a copy-on-write copy ends in milliseconds: look often at first */
		usleep(nap);
		if (nap < 100000)
			nap *= 2;
		ms = now_ms() - t0;
		if (!tty || ms < 1000 || ms - last < 250)
			continue;
		last = ms;
		p->done = p->probe ? p->probe(p->arg) : 0;
		line(p, ms, 0, stderr);
		drawn = 1;
	}
	p->ms = now_ms() - t0;
	if (p->probe)
		p->done = p->probe(p->arg);
	if (drawn)
		fputs("\r\033[K", stderr);
	if (!p->quiet && p->ms >= 1000)
		line(p, p->ms, 1, stderr);
}

void ts_vsay(int quiet, const char *fmt, va_list ap)
{
	if (quiet)
		return;
	fputs("twinstage: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void ts_say(int quiet, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ts_vsay(quiet, fmt, ap);
	va_end(ap);
}

const char *ts_human_ms(double ms, char *buf, size_t len)
{
	if (ms >= 3600000 && !fmod(ms, 3600000))
		snprintf(buf, len, "%.0f h", ms / 3600000);
	else if (ms >= 60000 && !fmod(ms, 60000))
		snprintf(buf, len, "%.0f min", ms / 60000);
	else if (ms >= 1000)
		snprintf(buf, len, "%g s", ms / 1000);
	else
		snprintf(buf, len, "%.0f ms", ms);
	return buf;
}
