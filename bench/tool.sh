#!/usr/bin/env bash
# bench/tool.sh: what watching a migration tool costs it. The bundled
# Django and Alembic examples (their expand-first releases, with ROWS
# orders: Django's data migration sends one UPDATE per row, each of them
# logged) run on the dev side of a kept pair, returned to its snapshot
# before each run: once by the tool alone, as a user runs it, and once by
# `twinstage migrate`, which runs the same command with every statement
# logged (jsonlog) and the tool's locks sampled (every 10 to 25 ms, so
# that reading pg_locks takes at most a twentieth of the time). Alternating,
# ROUNDS times each, in the same run on the same data. Prints the medians:
# how long the command ran, watched (as `twinstage migrate` says) and
# alone, and their ratio; then all of `twinstage migrate`, which also reads
# the log back, groups it into the report and reads the tables and state.
#
#   goal: the command watched at least 0.9x the speed of alone
#
# ROWS=20000, ROUNDS=7.
source "$(dirname "$0")/common.sh"
ROWS=${ROWS:-20000}
ROUNDS=${ROUNDS:-7}

# the kept pairs go, whatever happens
down_all() {
	for i in "$WORK"/*/twinstage.ini; do [ -f "$i" ] && "$TWINSTAGE" down -c "$i" --purge >/dev/null 2>&1; done
	cleanup
}
[ -n "${KEEP:-}" ] || trap down_all EXIT

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

bench_tool() { # bench_tool EXAMPLE TOOL-COMMAND...
	local example=$1 p="$WORK/$1" ini port t0 watched=() alone=() ran=()
	shift
	cp -r "$ROOT/scenarios/$example" "$p"
	rm -rf "$p"/.twinstage*
	sed -i "s|include = ../../envs/local.ini|include = $ROOT/envs/local.ini|; s|generate_series(1, [0-9]*)|generate_series(1, $ROWS)|" \
		"$p/twinstage.ini" "$p/seed.sql"
	printf '\n[load]\nenabled = false\n' >>"$p/twinstage.ini"
	ini="$p/twinstage.ini"
	echo "$example: building the sides with $ROWS orders (not timed)..." >&2
	"$TWINSTAGE" up -c "$ini" -q
	port=$(kept_port "$ini" 2)
	for i in $(seq "$ROUNDS"); do
		"$TWINSTAGE" reset -c "$ini" -q >/dev/null
		t0=$(now)
		(cd "$p" && env PGHOST=127.0.0.1 PGPORT="$port" PGDATABASE=shop PGUSER=postgres \
			DATABASE_URL="postgresql://postgres@127.0.0.1:$port/shop" "$@" >/dev/null 2>&1)
		alone+=("$(elapsed "$t0")")
		"$TWINSTAGE" reset -c "$ini" -q >/dev/null
		t0=$(now)
		# the verdict is not the point here (Django's backfill holds its lock for long)
		"$TWINSTAGE" migrate -c "$ini" >"$WORK/migrate.out" 2>&1 || true
		watched+=("$(elapsed "$t0")")
		ran+=("$(sed -n 's/.*migrate: the command ran \([0-9.]*\) s;.*/\1/p' "$WORK/migrate.out")")
	done
	"$TWINSTAGE" down -c "$ini" -q
	local a w r
	a=$(printf '%s\n' "${alone[@]}" | median)
	w=$(printf '%s\n' "${watched[@]}" | median)
	r=$(printf '%s\n' "${ran[@]}" | median)
	awk -v n="$example: $* (median of $ROUNDS)" -v w="$w" -v a="$a" -v r="$r" 'BEGIN {
		printf "%s\n  the command, watched %7.3f s   alone %7.3f s   %.2fx the speed of alone   (goal >= 0.9x)\n", n, r, a, (r > 0 ? a / r : 0)
		printf "  all of twinstage migrate %7.3f s (reading back what it sent, the tables, the state)   %.2fx\n", w, (w > 0 ? a / w : 0) }'
}

bench_tool django-shop /usr/bin/python3 manage.py migrate --noinput
bench_tool alembic-shop alembic upgrade head
