/*
 * fuzz_config: twinstage.ini and an include, read as a user's files are.
 * The input is the main file; after a line "#--include--", the rest is
 * envs.ini, which the main file may include. Reading must end in a
 * configuration or an error with a message, never a crash or a leak.
 */
#include "config/config.h"
#include "core/error.h"
#include "core/strbuf.h"
#include "core/util.h"
#include "core/wrapper.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *dir;

static void remove_dir(void)
{
	rm_rf(dir);
}

static void put(const char *name, const uint8_t *data, size_t n)
{
	char *p = path_join(dir, name);

	write_file(p, (const char *)data, n);
	free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	static const char mark[] = "\n#--include--\n";
	const uint8_t *inc = n >= sizeof(mark) - 1 ? memmem(data, n, mark, sizeof(mark) - 1) : NULL;
	struct ts_config cfg;
	char *path;

	if (!dir) {
		char tmpl[] = "/tmp/twinstage-fuzz-config-XXXXXX";

		dir = xstrdup(mkdtemp(tmpl));
		atexit(remove_dir);
		path = path_join(dir, "migrations");
		mkdir_p(path, 0755);
		free(path);
	}
	put("twinstage.ini", data, inc ? (size_t)(inc - data) : n);
	if (inc)
		put("envs.ini", inc + sizeof(mark) - 1, n - (size_t)(inc - data) - (sizeof(mark) - 1));
	path = path_join(dir, "twinstage.ini");
	if (!ts_config_load(&cfg, path, NULL)) {
		/* what it accepted, it can use */
		if (!cfg.name || !cfg.workdir || !cfg.migrations || !cfg.backend)
			abort();
		ts_config_free(&cfg);
	} else if (!*ts_error_message()) {
		abort();
	}
	ts_error_clear();
	free(path);
	return 0;
}
