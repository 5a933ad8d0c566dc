#!/usr/bin/env bash
# bench/clone.sh: how long until both sides accept connections with the
# source's data, per clone method, against what a user would write instead,
# in the same run on the same data:
#
#   baseline   pg_dump -Fc SOURCE | pg_restore into the production clone, and
#              again into the dev side (two servers already running: their
#              initdb is not counted, which favours the baseline)
#   cow        twinstage up with clone = cow: the production clone by
#              pg_basebackup, the dev side a reflink copy on an XFS pool
#   physical   twinstage up with clone = physical: pg_basebackup, then a file
#              copy of the stopped production clone
#   logical    twinstage up with clone = logical for both sides: the biggest
#              tables piped pg_dump -t | pg_restore, pg_dump -Fd -j of the rest
#              (goal: at least 1x the baseline)
#
# Goals: the cow dev side from the production clone under 1 s at every size
# (it must not grow with the size); physical at least 5x faster than the
# baseline; `twinstage reset` after a migration under 1 s (against the
# baseline's way back: drop the dev database, pg_dump | pg_restore again).
#
# Needs root (the cow pool is a loop-mounted XFS image). SCALES="70 280" by
# default: pgbench -i -s 70 is about 1 GiB, -s 280 about 4 GiB. SCALES=10 is
# a quick run.
source "$(dirname "$0")/common.sh"
SCALES=${SCALES:-70 280}
METHODS=${METHODS:-cow physical logical}

as_psql() { as_pg "$PG_BIN/psql" -X -q -h 127.0.0.1 -U postgres "$@"; }

# A plain cluster of a user's, on a free port: new_cluster DIR, sets PORT.
new_cluster() {
	PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	mkdir -p "$1" && chown postgres "$1"
	as_pg "$PG_BIN/initdb" -D "$1/data" -U postgres -A trust --no-sync >/dev/null
	as_pg "$PG_BIN/pg_ctl" -D "$1/data" -l "$1/log" -w \
		-o "-p $PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=off" start >/dev/null
}
stop_cluster() { as_pg "$PG_BIN/pg_ctl" -D "$1/data" -m fast -w stop >/dev/null; rm -rf "$1"; }

# count SIDE_PORT: rows of pgbench_accounts there (proves the data arrived)
count() { as_psql -p "$1" -d bench -At -c "SELECT count(*) FROM pgbench_accounts"; }

for scale in $SCALES; do
	echo "== pgbench -i -s $scale: building the source (not timed)..." >&2
	new_cluster "$WORK/source"; SRC=$PORT
	as_pg "$PG_BIN/createdb" -h 127.0.0.1 -p "$SRC" -U postgres bench
	as_pg "$PG_BIN/pgbench" -i -q -s "$scale" -h 127.0.0.1 -p "$SRC" -U postgres bench >/dev/null 2>&1
	as_psql -p "$SRC" -d bench -c "CHECKPOINT"
	size=$(as_psql -p "$SRC" -d bench -At -c "SELECT pg_size_pretty(pg_database_size('bench'))")
	rows=$(count "$SRC")
	echo "source: $size, $rows accounts" >&2

	echo "baseline: pg_dump -Fc | pg_restore into two running servers..." >&2
	new_cluster "$WORK/b-prod"; BP=$PORT
	new_cluster "$WORK/b-dev"; BD=$PORT
	t=$(now)
	for p in $BP $BD; do
		as_pg "$PG_BIN/createdb" -h 127.0.0.1 -p "$p" -U postgres bench
		as_pg "$PG_BIN/pg_dump" -Fc -h 127.0.0.1 -p "$SRC" -U postgres bench |
			as_pg "$PG_BIN/pg_restore" -h 127.0.0.1 -p "$p" -U postgres -d bench
	done
	base=$(elapsed "$t")
	[ "$(count "$BD")" = "$rows" ] || { echo "baseline lost rows" >&2; exit 1; }
	t=$(now)
	as_pg "$PG_BIN/dropdb" -h 127.0.0.1 -p "$BD" -U postgres bench
	as_pg "$PG_BIN/createdb" -h 127.0.0.1 -p "$BD" -U postgres bench
	as_pg "$PG_BIN/pg_dump" -Fc -h 127.0.0.1 -p "$SRC" -U postgres bench |
		as_pg "$PG_BIN/pg_restore" -h 127.0.0.1 -p "$BD" -U postgres -d bench
	base_reset=$(elapsed "$t")
	stop_cluster "$WORK/b-prod"; stop_cluster "$WORK/b-dev"
	echo "baseline: both sides in $base s, the dev side again in $base_reset s" >&2

	for m in $METHODS; do
		P="$WORK/project"
		rm -rf "$P"; mkdir -p "$P/migrations"
		cat > "$P/migrations/V1__rewrite.sql" <<SQL
UPDATE pgbench_branches SET bbalance = bbalance + 1;
ALTER TABLE pgbench_tellers ADD COLUMN note text DEFAULT 'migrated';
SQL
		cat > "$P/twinstage.ini" <<INI
[project]
name = clone-bench
database = bench
migrations = migrations
workdir = $WORK/state-$m
[source]
dsn = host=127.0.0.1 port=$SRC user=postgres dbname=bench
[environments]
clone = $m
INI
		t=$(now)
		"$TWINSTAGE" up -c "$P/twinstage.ini" -q > "$WORK/up.txt"
		total=$(elapsed "$t")
		dev_s=$(sed -n 's/^clone [a-z]*: dev side in \([0-9.]*\) s.*/\1/p' "$WORK/up.txt")
		dev=$(kept_port "$P/twinstage.ini" 2)
		[ "$(count "$dev")" = "$rows" ] || { echo "$m lost rows" >&2; exit 1; }
		grep -E '^(clone|note)' "$WORK/up.txt" | sed "s/^/  $m: /" >&2
		report "s$scale $m: both sides up with the data" "$total" "$base" \
			"$(case $m in physical) echo '>= 5x';; cow) echo 'faster';; *) echo '>= 1x';; esac)"
		echo "s$scale $m: the dev side from the production clone in $dev_s s$([ "$m" = cow ] && echo ' (goal < 1 s)')"
		if [ "$m" = cow ]; then
			"$TWINSTAGE" migrate -c "$P/twinstage.ini" -q >/dev/null
			t=$(now)
			"$TWINSTAGE" reset -c "$P/twinstage.ini" -q >/dev/null
			reset_s=$(elapsed "$t")
			[ "$(as_psql -p "$dev" -d bench -At -c "SELECT count(*) FROM information_schema.columns WHERE column_name = 'note'")" = 0 ] ||
				{ echo "reset left the migration" >&2; exit 1; }
			report "s$scale cow: twinstage reset (goal < 1 s)" "$reset_s" "$base_reset" "< 1 s"
		fi
		"$TWINSTAGE" down -c "$P/twinstage.ini" --purge -q >/dev/null
	done
	stop_cluster "$WORK/source"
done
