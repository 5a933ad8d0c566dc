#!/usr/bin/env bash
# bench/replay.sh: a production log replayed. A source logging every
# statement as csvlog (log_statement = all, connections too, as pgreplay
# needs) runs the live version's traffic, STATEMENTS statements of five
# shapes from pgbench's simple protocol under the role app. Then, on the
# same log:
#   - what a user would do: pgreplay -c -j replays it (idle time skipped)
#     into one copy of the source (pg_basebackup), every statement once,
#     comparing nothing;
#   - twinstage: `capture --log` reads the whole log (each shape once, its
#     constants as parameters, 3 samples kept), and `rehearse` runs every
#     sample on the production clone (twice: is it deterministic?) and on
#     the dev side, comparing SQLSTATE, columns and rows.
# Prints the log's statements per second each way, and their ratio.
#
#   goal: at least 1x pgreplay's statements per second, checking two sides
#
# STATEMENTS=100000.
source "$(dirname "$0")/common.sh"
STATEMENTS=${STATEMENTS:-100000}

scratch_start "-c logging_collector=on -c log_destination=csvlog -c log_directory=pglog -c log_filename=pg" \
	"-c log_statement=all -c log_connections=on -c log_disconnections=on -c lc_messages=C"
psql() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$SCRATCH_PORT" -U postgres "$@"; }
psql -c "CREATE DATABASE shop"
psql -d shop -f "$ROOT/scenarios/shop-captured/seed.sql" >/dev/null
grep -v '^--' "$ROOT/scenarios/shop-captured/traffic.pgbench" >"$WORK/traffic.pgbench"
echo "the live version's traffic: $STATEMENTS statements through pgbench -M simple (not timed)..." >&2
"$PG_BIN/pgbench" -n -M simple -c 4 -t $((STATEMENTS / 5 / 4)) -f "$WORK/traffic.pgbench" \
	"host=127.0.0.1 port=$SCRATCH_PORT dbname=shop user=app application_name=shop-web" >/dev/null
psql -d shop -c "SELECT 'traffic done'" >/dev/null
until grep -q "'traffic done'" "$WORK/scratch/pglog/pg.csv" 2>/dev/null; do sleep 0.1; done
cp "$WORK/scratch/pglog/pg.csv" "$WORK/pg.csv"
logged=$(grep -c 'statement: ' "$WORK/pg.csv" || true)

# pgreplay's target: a copy of the source, as it was before the traffic would be best;
# the rows the traffic added change no statement's cost here
TARGET_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$WORK/target" && chmod 700 "$WORK/target" && { chown postgres "$WORK/target" 2>/dev/null || true; }
as_pg "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$SCRATCH_PORT" -U postgres -D "$WORK/target" -X stream
rm -rf "$WORK/target/pglog"
as_pg "$PG_BIN/pg_ctl" -D "$WORK/target" -l "$WORK/target/server.log" -w \
	-o "-p $TARGET_PORT -k $WORK/target -c listen_addresses=127.0.0.1 -c fsync=off -c logging_collector=off -c log_statement=none -c log_connections=off -c log_disconnections=off" start >/dev/null
stop_target() { as_pg "$PG_BIN/pg_ctl" -D "$WORK/target" -m immediate stop >/dev/null 2>&1 || true; cleanup; }
[ -n "${KEEP:-}" ] || trap stop_target EXIT

t0=$(now)
pgreplay -c -j -h 127.0.0.1 -p "$TARGET_PORT" "$WORK/pg.csv" >"$WORK/pgreplay.out" 2>&1
replay_s=$(elapsed "$t0")

p="$WORK/project"
workload_project "ALTER TABLE shop.orders ADD COLUMN customer_name text;"
t0=$(now)
"$TWINSTAGE" capture -c "$p/twinstage.ini" --app v1 --log "$WORK/pg.csv" --user app -q
capture_s=$(elapsed "$t0")
"$TWINSTAGE" rehearse -c "$p/twinstage.ini" -q --format json >"$WORK/report.json" || true
read -r check_s cases failed < <(/usr/bin/python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
ms = sum(s["ms"] for s in r["stages"] if s["name"] in ("baseline", "check"))
cases = [k for c in r["checks"] if c["role"] in ("baseline", "backward") for k in c["cases"]]
print("%.3f" % (ms / 1000), len(cases), sum(1 for k in cases if not k["pass"]))' "$WORK/report.json")

awk -v n="$logged" -v r="$replay_s" -v c="$capture_s" -v x="$check_s" -v k="$cases" -v f="$failed" 'BEGIN {
	t = c + x
	printf "a csvlog of %d statements\n", n
	printf "  pgreplay -j into one side          %8.3f s   %8.0f statements/s\n", r, (r > 0 ? n / r : 0)
	printf "  twinstage capture + check of both  %8.3f s   %8.0f statements/s   (capture %.3f s, check %.3f s: %d cases, %d failed)\n", t, (t > 0 ? n / t : 0), c, x, k, f
	printf "  ratio %.1fx pgreplay'"'"'s statements per second, checking two sides   (goal >= 1x)\n", (t > 0 && r > 0 ? r / t : 0) }'
