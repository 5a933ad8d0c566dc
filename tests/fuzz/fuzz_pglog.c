/*
 * fuzz_pglog: a server log read for its statements (csvlog, jsonlog or
 * stderr, by the first byte), each statement through libpg_query's
 * fingerprint and normalization, and the workload written: counts and
 * unreadable lines, or an error naming the file; never a crash.
 */
#include "core/error.h"
#include "core/util.h"
#include "core/wrapper.h"
#include "workload/capture.h"
#include "workload/pglog.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	static const char *const kinds[] = { "csvlog", "jsonlog", "stderr" };
	struct ts_capture_opts o = { .samples = 3, .no_params = n && (data[0] & 4) };
	struct ts_capture c;
	int fd = memfd_create("log", 0);
	char path[64];

	if (fd < 0 || !n)
		goto out;
	if (write(fd, data + 1, n - 1) != (ssize_t)(n - 1))
		goto out;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ts_capture_init(&c, &o, NULL);
	if (!ts_pglog_capture_as(path, kinds[data[0] % 3], &c))
		for (size_t i = 0; i < c.n; i++)
			if (!c.v[i].sql || c.v[i].calls < 1 || c.v[i].samples.nr > 3)
				abort();
	ts_capture_free(&c);
out:
	ts_error_clear();
	if (fd >= 0)
		close(fd);
	return 0;
}
