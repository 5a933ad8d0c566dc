/*
 * cmd_image.c: `twinstage image build RECIPE` and `twinstage image inspect DISK`.
 */
#include "cmd/cmd.h"
#include "core/error.h"
#include "env/guestfs.h"
#include "env/image.h"
#include "env/stack.h"

#include <stdio.h>
#include <string.h>

static const char image_usage[] =
	"usage: twinstage image build RECIPE [--quiet]\n"
	"       twinstage image inspect DISK\n\n"
	"build    makes the guest image of a recipe (images/*.ini) for the vm backend:\n"
	"         debootstrap, the recipe's settings, then a qcow2 disk made with libguestfs.\n"
	"         Kept in a cache keyed by the recipe's content (a second build is instant):\n"
	"         /var/cache/twinstage/images as root, else ~/.cache/twinstage/images,\n"
	"         or $TWINSTAGE_IMAGE_CACHE. Prints the disk's path. Needs root.\n"
	"         A stack recipe (stacks/*.ini, [stack]) makes the dev side's root instead,\n"
	"         with production's PostgreSQL major (the newest here) beside the recipe's;\n"
	"         prints the root's path.\n"
	"inspect  shows what any disk holds: its OS, PostgreSQL versions and data size.\n";

static int image_build(const char *recipe, int quiet)
{
	struct ts_recipe r;
	struct ts_image img;
	int code = 0;

	if (ts_recipe_load(&r, recipe))
		return ts_error_print();
	if (r.stack) {
		struct ts_stack st;

		if (ts_stack_ensure(&r, 0, &st, quiet)) {
			code = ts_error_print();
		} else {
			if (!quiet && st.cached)
				fprintf(stderr, "twinstage: stack %s: cached (recipe key %s)\n", r.name, r.key);
			else if (!quiet)
				fprintf(stderr, "twinstage: stack %s: built in %.0f s\n", r.name, st.build_ms / 1000.0);
			printf("%s\n", st.root);
		}
		ts_stack_free(&st);
		ts_recipe_free(&r);
		return code;
	}
	if (ts_image_ensure(&r, &img, quiet)) {
		code = ts_error_print();
	} else {
		if (!quiet && img.cached)
			fprintf(stderr, "twinstage: image %s: cached (recipe key %s)\n", r.name, r.key);
		else if (!quiet)
			fprintf(stderr, "twinstage: image %s: built in %.0f s\n", r.name, img.build_ms / 1000.0);
		printf("%s\n", img.disk);
	}
	ts_image_free(&img);
	ts_recipe_free(&r);
	return code;
}

int cmd_image(int argc, char **argv)
{
	int quiet = 0;
	const char *verb = argc > 1 ? argv[1] : NULL, *arg = NULL;

	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--quiet") || !strcmp(argv[i], "-q")) {
			quiet = 1;
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(image_usage, stdout);
			return 0;
		} else if (argv[i][0] == '-' || arg) {
			fprintf(stderr, "twinstage image: unexpected argument \"%s\"\n%s", argv[i], image_usage);
			return TS_EXIT_USAGE;
		} else {
			arg = argv[i];
		}
	}
	if (verb && (!strcmp(verb, "--help") || !strcmp(verb, "-h"))) {
		fputs(image_usage, stdout);
		return 0;
	}
	if (!verb || (strcmp(verb, "build") && strcmp(verb, "inspect")) || !arg) {
		fputs(image_usage, stderr);
		return TS_EXIT_USAGE;
	}
	if (!strcmp(verb, "build"))
		return image_build(arg, quiet);
	return ts_image_inspect(arg) ? ts_error_print() : 0;
}
