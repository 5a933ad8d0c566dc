/*
 * fuzz_batch: a backfill statement rewritten into a limited batch. Whatever
 * twinstage accepts to batch, the statement it writes, and the count it
 * asks first, must parse.
 */
#include "core/error.h"
#include "core/strbuf.h"
#include "core/wrapper.h"
#include "migrate/batch.h"
#include "migrate/sql.h"

#include <pg_query.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int parses(const char *sql)
{
	PgQueryParseResult pr = pg_query_parse(sql);
	int ok = !pr.error;

	pg_query_free_parse_result(pr);
	return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	char *sql = xstrfmt("-- twinstage:batch 100\n%.*s", (int)n, (const char *)data);
	struct ts_stmt *stmts;
	size_t k;

	if (memchr(data, '\0', n) || ts_stmts_parse("fuzz.sql", sql, 1, &stmts, &k)) {
		ts_error_clear();
		free(sql);
		return 0;
	}
	for (size_t i = 0; i < k; i++) {
		char *out = NULL, *count = NULL;

		if (!stmts[i].batch)
			continue;
		if (!ts_batch_rewrite(&stmts[i], stmts[i].batch, &out, &count) &&
		    (!parses(out) || !parses(count)))
			abort();
		free(out);
		free(count);
		ts_error_clear();
	}
	ts_stmts_free(stmts, k);
	free(sql);
	return 0;
}
