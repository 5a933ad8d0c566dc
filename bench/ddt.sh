#!/usr/bin/env bash
# bench/ddt.sh: the double dump test and data equality on a database of
# about 1 GiB (pgbench at scale 70, and two wide tables), each against what
# a user would do instead, in the same run on the same data:
#
#   double dump test   `twinstage ddt` (parallel dump, parallel restore into a
#                      fresh cluster, schema and data compared as they stream)
#                      vs the shell recipe: pg_dump > a.sql; createdb x;
#                      psql x < a.sql; pg_dump x > b.sql; diff a.sql b.sql
#                      goal: at most half its time (ratio >= 2x)
#   data equality      `twinstage equal` (every table, both sides, row by row
#                      in key order) vs one pg_dump of the database
#                      goal: at most its time (ratio >= 1x)
#
# SCALE=70 by default; SCALE=10 makes a quick run of about 150 MiB.
source "$(dirname "$0")/common.sh"
SCALE=${SCALE:-70}
WIDE=${WIDE:-$((SCALE * 3000))}

echo "building the source: pgbench -i -s $SCALE and two wide tables of $WIDE rows (not timed)..." >&2
scratch_start
as_pg "$PG_BIN/createdb" -h 127.0.0.1 -p "$SCRATCH_PORT" -U postgres bench
as_pg "$PG_BIN/pgbench" -i -q -s "$SCALE" -h 127.0.0.1 -p "$SCRATCH_PORT" -U postgres bench >/dev/null 2>&1
as_pg "$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$SCRATCH_PORT" -U postgres -d bench -v ON_ERROR_STOP=1 <<SQL
CREATE TABLE customers (id bigint PRIMARY KEY, name text NOT NULL, email text, street text,
    city text, zip text, country text, phone text, notes text, score numeric(10, 2),
    tags text[], profile jsonb, created_at timestamptz NOT NULL, updated_at timestamptz);
INSERT INTO customers
SELECT i, 'customer ' || i, 'c' || i || '@example.com', i || ' long street name', 'city ' || (i % 1000),
       lpad((i % 99999)::text, 5, '0'), 'country ' || (i % 200), '+1-555-' || lpad(i::text, 7, '0'),
       repeat('note ', 10 + i % 20), (i % 10000) / 100.0, ARRAY['a' || i % 7, 'b' || i % 11],
       jsonb_build_object('level', i % 5, 'since', 2000 + i % 25), now() - i * interval '1 minute', now()
FROM generate_series(1, $WIDE) i;
CREATE TABLE events (customer_id bigint, kind text, payload jsonb, at timestamptz);
INSERT INTO events
SELECT i % $WIDE, 'kind' || i % 13, jsonb_build_object('n', i, 'text', repeat('x', 40)),
       timestamptz '2024-01-01' + i * interval '1 second'
FROM generate_series(1, $WIDE) i;
SQL
size=$(as_pg "$PG_BIN/psql" -X -At -h 127.0.0.1 -p "$SCRATCH_PORT" -U postgres -d bench \
	-c "SELECT pg_size_pretty(pg_database_size('bench'))")
echo "source database: $size" >&2

P="$WORK/project"
mkdir -p "$P/migrations"
cat > "$P/twinstage.ini" <<INI
[project]
name = ddt-bench
database = bench
migrations = migrations
workdir = $WORK/state
[source]
dsn = host=127.0.0.1 port=$SCRATCH_PORT user=postgres dbname=bench
INI
echo "cloning it to a kept pair with twinstage up (not timed)..." >&2
"$TWINSTAGE" up -c "$P/twinstage.ini" -q >/dev/null
dev=$(kept_port "$P/twinstage.ini" 2)
as_pg "$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$dev" -U postgres -d bench -c "CHECKPOINT" >/dev/null

PGDUMP=("$PG_BIN/pg_dump" -h 127.0.0.1 -p "$dev" -U postgres)

# the shell recipe, on the dev side, restoring next to it as `createdb x` does
t0=$(now)
"${PGDUMP[@]}" bench > "$WORK/a.sql"
"$PG_BIN/createdb" -h 127.0.0.1 -p "$dev" -U postgres x
"$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$dev" -U postgres -d x -f "$WORK/a.sql" >/dev/null 2>&1
"${PGDUMP[@]}" x > "$WORK/b.sql"
if diff "$WORK/a.sql" "$WORK/b.sql" > "$WORK/recipe.diff"; then verdict=identical; else
	verdict="differ in $(grep -c '^[<>]' "$WORK/recipe.diff") lines"; fi
t_recipe=$(elapsed "$t0")
echo "shell recipe: the dumps $verdict ($(grep -c '^[<>] .restrict\|^[<>] .unrestrict' "$WORK/recipe.diff" || true) of them are pg_dump's random \\restrict keys)" >&2
"$PG_BIN/dropdb" -h 127.0.0.1 -p "$dev" -U postgres x
rm -f "$WORK/a.sql" "$WORK/b.sql"

t0=$(now)
"$TWINSTAGE" ddt -c "$P/twinstage.ini" -q > "$WORK/ddt.out" || true
t_ddt=$(elapsed "$t0")
sed -n 2p "$WORK/ddt.out" >&2

t0=$(now)
"${PGDUMP[@]}" bench > /dev/null
t_dump=$(elapsed "$t0")

t0=$(now)
"$TWINSTAGE" equal -c "$P/twinstage.ini" -q > "$WORK/equal.out" || true
t_equal=$(elapsed "$t0")
sed -n 2p "$WORK/equal.out" >&2

report "double dump test, $size" "$t_ddt" "$t_recipe" ">= 2x"
report "data equality of both sides, $size" "$t_equal" "$t_dump" ">= 1x (one pg_dump)"
