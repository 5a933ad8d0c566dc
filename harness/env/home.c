/*
 * home.c: the folders of a workdir outside it, and whether the server user
 * can reach a path (the x bit of every folder on the way, for its uid, its
 * group or others). See home.h.
 */
#include "env/home.h"
#include "core/strbuf.h"
#include "core/util.h"
#include "core/wrapper.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

char *ts_home_outside(const struct ts_home *h, const char *base)
{
	char crc[9];

	crc32_hex(h->workdir, strlen(h->workdir), crc);
	return xstrfmt("%s/twinstage-%s", base, crc);
}

int ts_home_reachable(const struct ts_home *h, const char *path)
{
	char *p = xstrdup(path);
	int ok = 1;

	if (!h->as_user) {
		free(p);
		return 1;
	}
	for (char *s = p; s && ok; s = strchr(s + 1, '/')) {
		struct stat st;
		char c = s[1];

		s[1] = '\0';
		if (!stat(p, &st)) {
			mode_t m = st.st_mode;

			ok = (m & S_IXOTH) || (st.st_gid == h->gid && (m & S_IXGRP)) ||
			     (st.st_uid == h->uid && (m & S_IXUSR));
		}
		s[1] = c;
	}
	free(p);
	return ok;
}
