/*
 * fuzz_migrations: migration discovery and version order. Each line of the
 * input names a file of a migrations folder (its text is the line after a
 * tab, when there is one); the folder is read as twinstage reads one, and
 * the versions it finds must come out in a total, numeric order.
 */
#include "core/error.h"
#include "core/strbuf.h"
#include "core/util.h"
#include "core/wrapper.h"
#include "migrate/migrations.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static char *dir;

static void remove_dir(void)
{
	rm_rf(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	char *text = xstrndup((const char *)data, n), *save = NULL;
	struct ts_migrations set;

	if (!dir) {
		char tmpl[] = "/tmp/twinstage-fuzz-migrations-XXXXXX";

		dir = xstrdup(mkdtemp(tmpl));
		atexit(remove_dir);
	}
	rm_rf(dir);
	mkdir_p(dir, 0755);
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *tab = strchr(line, '\t'), *p;

		if (tab)
			*tab = '\0';
		if (!*line || strchr(line, '/') || !strcmp(line, ".") || !strcmp(line, ".."))
			continue;
		p = path_join(dir, line);
		write_file(p, tab ? tab + 1 : "SELECT 1;\n", strlen(tab ? tab + 1 : "SELECT 1;\n"));
		free(p);
	}
	if (!ts_migrations_discover(dir, &set)) {
		for (size_t i = 0; i + 1 < set.n; i++) {
			const struct ts_migration *a = &set.v[i], *b = &set.v[i + 1];

			if (a->version && b->version &&
			    (ts_version_cmp(a->version, b->version) > 0 ||
			     ts_version_cmp(b->version, a->version) < 0))
				abort();
		}
		for (size_t i = 0; i < set.n; i++)
			if (set.v[i].version && ts_version_cmp(set.v[i].version, set.v[i].version))
				abort();
		ts_migrations_free(&set);
	}
	ts_error_clear();
	free(text);
	return 0;
}
