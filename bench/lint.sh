#!/usr/bin/env bash
# bench/lint.sh: `twinstage lint` on a folder of 2,000 migration files,
# against a user's cheapest check: applying them all with
# `psql --single-transaction` to a scratch database (createdb, psql, dropdb).
# Goal: at least 10x faster.
source "$(dirname "$0")/common.sh"
N=${N:-2000}

mkdir -p "$WORK/migrations"
for i in $(seq 1 "$N"); do
	p=$((i - 1))
	{
		echo "-- migration $i"
		echo "CREATE TABLE t_$i (id bigint PRIMARY KEY, name text NOT NULL, created_at timestamptz DEFAULT now());"
		echo "CREATE INDEX t_${i}_name ON t_$i (name);"
		if [ "$p" -gt 0 ]; then
			echo "SET lock_timeout = '2s';"
			echo "ALTER TABLE t_$p ADD COLUMN note_$i text;"
			echo "CREATE FUNCTION f_$i(x int) RETURNS int LANGUAGE plpgsql AS \$\$ BEGIN RETURN x + $i; END \$\$;"
		fi
	} > "$WORK/migrations/V${i}__step_$i.sql"
done
scratch_start
args=()
for f in $(ls "$WORK/migrations" | sort -V); do args+=(-f "$WORK/migrations/$f"); done

t0=$(now)
"$TWINSTAGE" lint "$WORK/migrations" > "$WORK/lint.out" || true
t_lint=$(elapsed "$t0")
tail -1 "$WORK/lint.out"

t0=$(now)
"$PG_BIN/createdb" -h 127.0.0.1 -p "$SCRATCH_PORT" -U postgres scratch
"$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$SCRATCH_PORT" -U postgres -d scratch \
	--single-transaction -v ON_ERROR_STOP=1 "${args[@]}" >/dev/null
"$PG_BIN/dropdb" -h 127.0.0.1 -p "$SCRATCH_PORT" -U postgres scratch
t_psql=$(elapsed "$t0")

report "lint, $N files vs psql --single-transaction" "$t_lint" "$t_psql" ">= 10x"
