#!/usr/bin/env bash
# bench/upgrade.sh: the dev side ready on the next PostgreSQL major, at
# about 1 GiB and 4 GiB, against what a user would do by hand, in the same
# run on the same data:
#
#   twinstage  `twinstage up` with dev_stack = stacks/debian13-pg17.ini: the
#              production clone (PostgreSQL 15, pg_basebackup of the source,
#              not counted) upgraded to 17 with pg_upgrade --check, then
#              pg_upgrade --clone on the copy-on-write pool, started, and
#              ANALYZE on both sides: the "dev side in N s" `up` prints
#   baseline   a new PostgreSQL 17 server (initdb, pg_ctl start), the roles
#              (pg_dumpall --globals-only | psql), then pg_dump -Fc of 17
#              from the source | pg_restore into it, and ANALYZE
#
# Goal: twinstage faster, by more at 4 GiB than at 1 GiB (pg_upgrade --clone
# does not copy the data files; a dump and restore rewrites them and
# rebuilds every index).
#
# Needs root (the pool, the stack's build). The stack is built first if it
# is not cached (not timed). SCALES="70 280" by default; SCALES=10 is quick.
source "$(dirname "$0")/common.sh"
SCALES=${SCALES:-70 280}
RECIPE=$ROOT/stacks/debian13-pg17.ini

echo "the stack (built once, cached; not timed)..." >&2
STACK=$("$TWINSTAGE" image build -q "$RECIPE")

# stack_run CMD...: CMD with the stack's /usr (PostgreSQL 17's programs), as twinstage runs them
stack_run() {
	unshare -m --propagation private -- bash -c \
		'mount --bind "$1/usr" /usr && mount --bind "$1/etc/ld.so.cache" /etc/ld.so.cache && shift && exec "$@"' \
		_ "$STACK" "$@"
}
B17=/usr/lib/postgresql/17/bin

for scale in $SCALES; do
	echo "scale $scale: pgbench -i -s $scale on PostgreSQL 15 (not timed)..." >&2
	scratch_start
	as_pg "$PG_BIN/createdb" -h 127.0.0.1 -p "$SCRATCH_PORT" -U postgres bench
	as_pg "$PG_BIN/pgbench" -i -q -s "$scale" -h 127.0.0.1 -p "$SCRATCH_PORT" -U postgres bench >/dev/null 2>&1
	size=$(as_pg "$PG_BIN/psql" -X -At -h 127.0.0.1 -p "$SCRATCH_PORT" -U postgres -d bench \
		-c "SELECT pg_size_pretty(pg_database_size('bench'))")

	P="$WORK/project"
	mkdir -p "$P/migrations"
	cat > "$P/twinstage.ini" <<INI
[project]
name = upgrade-bench
database = bench
migrations = migrations
workdir = $WORK/state
[source]
dsn = host=127.0.0.1 port=$SCRATCH_PORT user=postgres dbname=bench
[environments]
include = $ROOT/envs/local.ini
dev_stack = $RECIPE
INI
	"$TWINSTAGE" up -c "$P/twinstage.ini" > "$WORK/up.out" 2> "$WORK/up.err"
	t_ts=$(grep -o 'dev side in [0-9.]* s' "$WORK/up.out" | grep -o '[0-9.]*' | head -1)
	grep -E 'pg_upgrade --clone|ANALYZE' "$WORK/up.err" >&2 || true
	"$TWINSTAGE" down -c "$P/twinstage.ini" --purge -q >/dev/null

	# by hand: a new 17 server, then the source dumped into it with 17's pg_dump
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	new="$WORK/new17"
	mkdir -p "$new" && chown postgres "$new"
	t0=$(now)
	stack_run runuser -u postgres -- $B17/initdb -D "$new/data" -U postgres -A trust --no-sync >/dev/null
	stack_run runuser -u postgres -- $B17/pg_ctl -D "$new/data" -l "$new/log" -w \
		-o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=off" start >/dev/null
	stack_run runuser -u postgres -- bash -c "$B17/pg_dumpall -h 127.0.0.1 -p $SCRATCH_PORT -U postgres --globals-only |
		$B17/psql -X -q -h 127.0.0.1 -p $port -U postgres -d postgres >/dev/null 2>&1
		$B17/createdb -h 127.0.0.1 -p $port -U postgres bench &&
		$B17/pg_dump -Fc -h 127.0.0.1 -p $SCRATCH_PORT -U postgres bench |
		$B17/pg_restore -h 127.0.0.1 -p $port -U postgres -d bench &&
		$B17/psql -X -q -h 127.0.0.1 -p $port -U postgres -d bench -c ANALYZE"
	t_base=$(elapsed "$t0")
	stack_run runuser -u postgres -- $B17/pg_ctl -D "$new/data" -m immediate -w stop >/dev/null
	rm -rf "$new"
	as_pg "$PG_BIN/pg_ctl" -D "$WORK/scratch" -m immediate -w stop >/dev/null
	rm -rf "$WORK/scratch" "$P"
	SCRATCH_PID=""
	report "dev side on PostgreSQL 17, $size" "$t_ts" "$t_base" "faster, more so at 4 GiB"
done
