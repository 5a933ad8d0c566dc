#!/usr/bin/env bash
# bench/load.sh: what watching the application costs it. The load of
# `twinstage migrate --load` (pgbench's TPC-B-like transaction as a scenario,
# on 4 clients, rolled back) runs against the dev side of a kept pair while
# a migration holds a transaction open for SECONDS_EACH (so the sampler
# does all it does during a real one: pg_stat_activity, and
# pg_blocking_pids() for every session waiting on a lock, which pgbench's
# branch updates often are), once with the sampler every 10 ms and once
# without (sample_ms = 0), alternating, ROUNDS times each, in the same run
# on the same data. Prints the application's throughput during the
# migration both ways and their ratio.
#
#   goal: with sampling / without >= 0.95
#
# SCALE=10 (pgbench scale of the source), SECONDS_EACH=5, ROUNDS=3.
source "$(dirname "$0")/common.sh"
SCALE=${SCALE:-10}
SECONDS_EACH=${SECONDS_EACH:-5}
ROUNDS=${ROUNDS:-5}

echo "building the source: pgbench -i -s $SCALE (not timed)..." >&2
scratch_start
as_pg "$PG_BIN/createdb" -h 127.0.0.1 -p "$SCRATCH_PORT" -U postgres bench
as_pg "$PG_BIN/pgbench" -i -q -s "$SCALE" -h 127.0.0.1 -p "$SCRATCH_PORT" -U postgres bench >/dev/null 2>&1

P="$WORK/project"
mkdir -p "$P/migrations" "$P/apps/v1"
cat > "$P/apps/v1/01_tpcb.sql" <<'SQL'
-- pgbench's built-in transaction, for one account of one teller of one branch

-- @name update the account
-- @expect rows 1
UPDATE pgbench_accounts SET abalance = abalance + 7 WHERE aid = (SELECT 1 + (random() * 99999)::int);

-- @name read a balance
-- @expect rows 1
SELECT abalance FROM pgbench_accounts WHERE aid = (SELECT 1 + (random() * 99999)::int);

-- @name update the teller
-- @expect rows 1
UPDATE pgbench_tellers SET tbalance = tbalance + 7 WHERE tid = (SELECT 1 + (random() * 9)::int);

-- @name update the branch
-- @expect rows 1
UPDATE pgbench_branches SET bbalance = bbalance + 7 WHERE bid = (SELECT 1 + (random() * 9)::int);

-- @name record the history
-- @expect rows 1
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 1, 1, 7, CURRENT_TIMESTAMP);
SQL
ini() { # ini SAMPLE_MS
	cat <<INI
[project]
name = load-bench
database = bench
migrations = migrations
workdir = $WORK/state
[source]
dsn = host=127.0.0.1 port=$SCRATCH_PORT user=postgres dbname=bench
[app v1]
scenarios = apps/v1
[rehearsal]
current = v1
[load]
clients = 4
sample_ms = $1
before_ms = 200
after_ms = 0
INI
}
ini 10 > "$P/sampled.ini"
ini 0 > "$P/unsampled.ini"
cp "$P/sampled.ini" "$P/twinstage.ini"
echo "cloning it to a kept pair with twinstage up (not timed)..." >&2
"$TWINSTAGE" up -c "$P/twinstage.ini" -q >/dev/null

# throughput sampled|unsampled N: statements/s of the load while migration N runs
throughput() {
	echo "SELECT pg_sleep($SECONDS_EACH);" > "$P/migrations/${2}_hold.up.sql"
	"$TWINSTAGE" migrate -c "$P/$1.ini" --load -q | awk '$1 == "during" { print $(NF - 1) }'
}

on=0 off=0
for r in $(seq "$ROUNDS"); do
	a=$(throughput sampled $((2 * r - 1)))
	b=$(throughput unsampled $((2 * r)))
	echo "round $r: sampled $a statements/s, unsampled $b statements/s" >&2
	on=$(awk -v x="$on" -v y="$a" 'BEGIN { print x + y }')
	off=$(awk -v x="$off" -v y="$b" 'BEGIN { print x + y }')
done
awk -v a="$on" -v b="$off" -v n="$ROUNDS" -v s="$SECONDS_EACH" 'BEGIN {
	printf "%-44s sampled %8.0f/s   unsampled %8.0f/s   ratio %5.3f   (goal >= 0.95)\n",
		"application throughput, " n " x " s " s each way", a / n, b / n, (b > 0 ? a / b : 0) }'
