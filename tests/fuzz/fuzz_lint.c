/*
 * fuzz_lint: a migration's SQL split into statements (libpg_query) and
 * linted as each tool would run it. The first byte picks the tool and
 * whether the file runs outside a transaction.
 */
#include "core/error.h"
#include "core/wrapper.h"
#include "migrate/lint.h"
#include "migrate/sql.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	struct ts_lint lint = { 0 };
	struct ts_stmt *stmts;
	size_t k;
	enum ts_mig_format fmt;
	char *sql;

	if (!n)
		return 0;
	fmt = (enum ts_mig_format)(data[0] % 5);
	sql = xstrndup((const char *)data + 1, n - 1);
	if (!ts_stmts_parse("fuzz.sql", sql, 1, &stmts, &k)) {
		for (size_t i = 0; i < k; i++)
			if (stmts[i].line < 1 || stmts[i].offset > strlen(sql))
				abort();
		ts_stmts_free(stmts, k);
	}
	ts_error_clear();
	ts_lint_sql(&lint, "fuzz.sql", sql, 1, fmt, data[0] & 0x80);
	for (size_t i = 0; i < lint.n; i++)
		if (!lint.v[i].rule || !lint.v[i].message || lint.v[i].line < 0)
			abort();
	ts_lint_free(&lint);
	ts_error_clear();
	free(sql);
	return 0;
}
