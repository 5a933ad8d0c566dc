#!/usr/bin/env bash
# bench/schema.sh: the schema of a database with 5,000 tables (each with a
# primary key, an index, a CHECK constraint and a default), read on both
# sides of a kept environment pair and compared: `twinstage diff` (two
# catalog snapshots and the classified diff) against what a user would do,
# `pg_dump --schema-only` of each side and `diff` of the two dumps.
# Goal: at most half the time (a ratio of at least 2x).
source "$(dirname "$0")/common.sh"
N=${N:-5000}

P="$WORK/project"
mkdir -p "$P/migrations"
awk -v n="$N" 'BEGIN {
	for (i = 1; i <= n; i++) {
		printf "CREATE TABLE t_%d (id bigint PRIMARY KEY, name text NOT NULL, amount int CHECK (amount >= 0), created_at timestamptz DEFAULT now());\n", i
		printf "CREATE INDEX t_%d_name ON t_%d (name);\n", i, i
	}
}' > "$P/seed.sql"
echo "ALTER TABLE t_1 ADD COLUMN note text;" > "$P/migrations/V1__note.sql"
cat > "$P/twinstage.ini" <<INI
[project]
name = schema-bench
database = bench
migrations = migrations
workdir = $WORK/state
[source]
seed = seed.sql
INI
echo "building a pair with $N tables (not timed)..." >&2
"$TWINSTAGE" up -c "$P/twinstage.ini" -q >/dev/null
"$TWINSTAGE" migrate -c "$P/twinstage.ini" -q >/dev/null
prod=$(kept_port "$P/twinstage.ini" 1)
dev=$(kept_port "$P/twinstage.ini" 2)

t0=$(now)
"$TWINSTAGE" diff -c "$P/twinstage.ini" > "$WORK/diff.out" || true
t_ts=$(elapsed "$t0")
head -1 "$WORK/diff.out"

t0=$(now)
"$PG_BIN/pg_dump" --schema-only -h 127.0.0.1 -p "$prod" -U postgres bench > "$WORK/prod.sql"
"$PG_BIN/pg_dump" --schema-only -h 127.0.0.1 -p "$dev" -U postgres bench > "$WORK/dev.sql"
diff "$WORK/prod.sql" "$WORK/dev.sql" > /dev/null || true
t_dump=$(elapsed "$t0")

report "schema of $N tables, both sides, compared" "$t_ts" "$t_dump" ">= 2x"
