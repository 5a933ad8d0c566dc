#!/usr/bin/env bash
# bench/capture.sh: a workload of 10,000 distinct statements, captured from
# pg_stat_statements and checked on both sides. A source with 100 tables of
# ten columns runs 10,000 statements of distinct shapes once each, as the
# application role; then `twinstage capture --app v1` reads them (read-only)
# and `twinstage rehearse` prepares each one and makes its generic plan on
# the production clone and on the dev side (a no-op migration, so that every
# statement is checked and none fails). Prints statements per second (the
# capture, and the check of both sides: the report's baseline and check
# stages), and the time against what a user would take for one pass over
# both schemas: pg_dump --schema-only of the source, twice.
#
# TABLES=100 SHAPES=100 (statements = TABLES x SHAPES).
source "$(dirname "$0")/common.sh"
TABLES=${TABLES:-100}
SHAPES=${SHAPES:-100}
N=$((TABLES * SHAPES))

scratch_start "-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.max=$((N + 2000))"
psql() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$SCRATCH_PORT" -U postgres "$@"; }
psql -c "CREATE DATABASE shop"
psql -d shop -c "CREATE EXTENSION pg_stat_statements; CREATE ROLE app LOGIN"
echo "making $TABLES tables and $N statements of distinct shapes (not timed)..." >&2
# tables named by letters: libpg_query's fingerprint takes t14 and t41 for one
# table (numbered partitions), so numbered tables would be fewer shapes
name() { awk -v i="$1" 'BEGIN { a = "abcdefghijklmnopqrstuvwxyz"; printf "t_%s%s", substr(a, 1 + int(i / 26) % 26, 1), substr(a, 1 + i % 26, 1) }'; }
{
	for t in $(seq 0 $((TABLES - 1))); do
		n=$(name "$t")
		echo "CREATE TABLE $n (id int PRIMARY KEY, c0 int, c1 int, c2 int, c3 int, c4 int, c5 int, c6 int, c7 int, c8 int, c9 int);"
		echo "INSERT INTO $n SELECT g, g, g, g, g, g, g, g, g, g, g FROM generate_series(1, 100) g;"
	done
	echo "GRANT SELECT ON ALL TABLES IN SCHEMA public TO app;"
} | psql -d shop
# shape s of a table: the column it reads and the column it filters on (10 x 10)
awk -v t="$TABLES" -v s="$SHAPES" 'BEGIN {
	a = "abcdefghijklmnopqrstuvwxyz"
	for (i = 0; i < t; i++) for (k = 0; k < s; k++)
		printf "SELECT c%d FROM t_%s%s WHERE c%d = %d;\n", k % 10, substr(a, 1 + int(i / 26) % 26, 1), substr(a, 1 + i % 26, 1), int(k / 10) % 10, 1 + k
	}' >"$WORK/statements.sql"
psql -d "host=127.0.0.1 port=$SCRATCH_PORT dbname=shop user=app" -f "$WORK/statements.sql" >/dev/null

p="$WORK/project"
workload_project "SELECT 1;" "$(printf '\n[gate]\nddt = off')"

t0=$(now)
"$TWINSTAGE" capture -c "$p/twinstage.ini" --app v1 --user app -q
capture_s=$(elapsed "$t0")
kept=$(grep -c '^-- @calls' "$p/workload/v1/captured.sql")
"$TWINSTAGE" rehearse -c "$p/twinstage.ini" -q --format json >"$WORK/report.json" || true
check_s=$(/usr/bin/python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
print("%.3f" % (sum(s["ms"] for s in r["stages"] if s["name"] in ("baseline", "check")) / 1000))' "$WORK/report.json")
failed=$(/usr/bin/python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
print(sum(c["failed"] for c in r["checks"]), sum(len(c["cases"]) for c in r["checks"] if c["role"] in ("baseline", "backward")))' "$WORK/report.json")

t0=$(now)
for side in prod dev; do
	"$PG_BIN/pg_dump" --schema-only -h 127.0.0.1 -p "$SCRATCH_PORT" -U postgres -d shop -f "$WORK/schema-$side.sql"
done
dump_s=$(elapsed "$t0")

awk -v n="$N" -v k="$kept" -v c="$capture_s" -v x="$check_s" -v d="$dump_s" -v f="$failed" 'BEGIN {
	split(f, ff, " ")
	printf "captured %d of %d distinct statements in %.3f s (%.0f statements/s)\n", k, n, c, (c > 0 ? k / c : 0)
	printf "checked on both sides in %.3f s (%.0f statements/s on each side; %d cases run, %d failed)\n", x, (x > 0 ? 2 * k / x : 0), ff[2], ff[1]
	printf "capture and check %.3f s   pg_dump --schema-only of both sides %.3f s   %.1fx that one pass over the schemas\n", c + x, d, (d > 0 ? (c + x) / d : 0) }'
