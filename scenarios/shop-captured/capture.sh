#!/bin/sh
# How workload/v1/captured.sql was made: a stand-in production (seed.sql
# on a cluster of its own, logging every statement as csvlog), v1's traffic
# from pgbench under the role app, then `twinstage capture` from the log.
# Run it again to refresh the file: ./capture.sh [path/to/twinstage]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
ts=$(realpath "${1:-$here/../../build/twinstage}")
bin=$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)
[ -x "$bin/initdb" ] || bin=/usr/lib/postgresql/15/bin
tmp=$(mktemp -d)
as=""
if [ "$(id -u)" = 0 ]; then chown postgres "$tmp"; as="runuser -u postgres --"; fi
port=$(( 20000 + $$ % 20000 ))
trap '$as "$bin/pg_ctl" -D "$tmp/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
$as "$bin/initdb" -D "$tmp/data" -A trust -U postgres >/dev/null
cat >>"$tmp/data/postgresql.conf" <<CONF
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$tmp'
logging_collector = on
log_destination = 'csvlog'
log_directory = 'log'
log_filename = 'pg'
log_statement = 'all'
CONF
$as "$bin/pg_ctl" -D "$tmp/data" -l "$tmp/server.log" -w start >/dev/null
"$bin/psql" -X -q -h 127.0.0.1 -p $port -U postgres -c "CREATE DATABASE shop"
"$bin/psql" -X -q -h 127.0.0.1 -p $port -U postgres -d shop -f "$here/seed.sql"
"$bin/pgbench" -n -M extended -t 200 -c 2 -f "$here/traffic.pgbench" \
	"host=127.0.0.1 port=$port dbname=shop user=app application_name=shop-web" >/dev/null
"$bin/psql" -X -q -d "host=127.0.0.1 port=$port dbname=shop user=app" -c "SELECT 'captured'" >/dev/null
until grep -q "'captured'" "$tmp/data/log/pg.csv" 2>/dev/null; do sleep 0.1; done
cp "$tmp/data/log/pg.csv" "$tmp/pg.csv"
cd "$tmp" && "$ts" capture -c "$here/twinstage.ini" --app v1 --log pg.csv --user app --application shop-web
