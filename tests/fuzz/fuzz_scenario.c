/*
 * fuzz_scenario: a scenario file (annotated SQL) parsed: statements, their
 * lines and expectations, or an error naming file:line.
 */
#include "core/error.h"
#include "core/util.h"
#include "core/wrapper.h"
#include "rehearse/scenario.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	char *text = xstrndup((const char *)data, n);
	struct ts_scenario sc;

	if (!check_text("fuzz.sql", text, strlen(text), "a scenario") &&
	    !ts_scenario_parse_text("fuzz.sql", text, &sc)) {
		for (size_t i = 0; i < sc.n; i++)
			if (!sc.stmts[i].sql || !sc.stmts[i].name || sc.stmts[i].line < 1)
				abort();
		ts_scenario_free(&sc);
	}
	ts_error_clear();
	free(text);
	return 0;
}
