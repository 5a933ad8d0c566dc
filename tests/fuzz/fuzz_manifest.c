/*
 * fuzz_manifest: manifest.json as verify and promote read it, from a CI
 * artifact that may be damaged, truncated or edited by hand. Reading must
 * end in a manifest whose every state checks out (its schema matching its
 * SHA-256) or an error with a message, never a crash or a leak; and what
 * was accepted can be compared with itself.
 */
#include "core/error.h"
#include "core/strvec.h"
#include "core/util.h"
#include "core/wrapper.h"
#include "pg/fingerprint.h"
#include "release/manifest.h"

#include <jansson.h>
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
	json_t *m;
	char *path;

	if (!dir) {
		char tmpl[] = "/tmp/twinstage-fuzz-manifest-XXXXXX";

		dir = xstrdup(mkdtemp(tmpl));
		atexit(remove_dir);
	}
	path = path_join(dir, "manifest.json");
	write_file(path, (const char *)data, n);
	if (!ts_manifest_load(path, &m)) {
		json_t *s;
		size_t i;

		json_array_foreach(json_object_get(m, "states"), i, s) {
			struct ts_fingerprint fp;
			struct strvec changes = STRVEC_INIT;

			if (ts_fingerprint_from_json(json_object_get(s, "fingerprint"), &fp))
				abort();	/* the loader checked it */
			ts_fingerprint_changes(&fp, &fp, &changes);
			if (changes.nr)
				abort();	/* a schema differs from itself */
			strvec_clear(&changes);
			ts_fingerprint_free(&fp);
		}
		json_decref(m);
	} else if (!*ts_error_message()) {
		abort();
	}
	ts_error_clear();
	free(path);
	return 0;
}
