/*
 * cmd_init.c: `twinstage init` writes a commented twinstage.ini to start from.
 */
#include "cmd.h"
#include "config.h"
#include "error.h"
#include "run.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

static const char usage[] =
"usage: twinstage init [-c twinstage.ini] [--force]\n"
"\n"
"Writes a commented configuration file to edit. Refuses to overwrite an\n"
"existing one unless --force is given.\n";

int cmd_init(int argc, char **argv)
{
	struct ts_opts o;
	const char *path;
	int done, code;

	code = cmd_parse_options(argc, argv, "init", usage, "config force help", &o, &done);
	if (done)
		return code;
	path = o.config ? o.config : "twinstage.ini";
	if (!o.force && (is_file(path) || is_dir(path))) {
		ts_error_set(TS_EXIT_USAGE, "\"%s\" already exists", path);
		ts_error_hint("use --force to overwrite it");
		return ts_error_print();
	}
	if (write_file(path, ts_config_template, strlen(ts_config_template)))
		return ts_error_print();
	printf("wrote %s: edit [project], [source] and the [app] sections, then run \"twinstage rehearse\"\n",
	       path);
	return 0;
}
