# bench/common.sh: what the benchmarks share. Sourced, not run.
#
# Each benchmark times twinstage and what a user would do instead, in the
# same run on the same data, and prints both and their ratio. They are not
# tests: they assert nothing, they measure.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TWINSTAGE=${TWINSTAGE:-$ROOT/build/twinstage}
PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)}
WORK=$(mktemp -d /tmp/twinstage-bench.XXXXXX)
chmod 755 "$WORK"
SCRATCH_PID=""

as_pg() {
	if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

cleanup() {
	if [ -n "$SCRATCH_PID" ]; then as_pg "$PG_BIN/pg_ctl" -D "$WORK/scratch" -m immediate stop >/dev/null 2>&1 || true; fi
	if [ -f "$WORK/project/twinstage.ini" ]; then "$TWINSTAGE" down -c "$WORK/project/twinstage.ini" --purge >/dev/null 2>&1 || true; fi
	rm -rf "$WORK"
}
[ -n "${KEEP:-}" ] || trap cleanup EXIT

# A scratch cluster on a free port, as a user would have one: sets SCRATCH_PORT.
# Arguments are more server options ("-c name=value ...").
scratch_start() {
	SCRATCH_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	mkdir -p "$WORK/scratch" && chown -R postgres "$WORK/scratch" 2>/dev/null || true
	as_pg "$PG_BIN/initdb" -D "$WORK/scratch" -U postgres -A trust --no-sync >/dev/null
	as_pg "$PG_BIN/pg_ctl" -D "$WORK/scratch" -l "$WORK/scratch/log" -w \
		-o "-p $SCRATCH_PORT -k $WORK/scratch -c listen_addresses=127.0.0.1 -c fsync=off $*" start >/dev/null
	SCRATCH_PID=1
}

# kept_port INI N: the port of the Nth side (1 production clone, 2 dev side) kept by `up`.
kept_port() {
	"$TWINSTAGE" status -c "$1" | grep -o '127.0.0.1:[0-9]*' | sed -n "${2}p" | cut -d: -f2
}

# Seconds since the epoch, with nanoseconds.
now() { date +%s.%N; }

# elapsed START: seconds since START, 3 decimals.
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }

# report NAME TWINSTAGE_S BASELINE_S GOAL: prints both times and the ratio.
report() {
	awk -v n="$1" -v t="$2" -v b="$3" -v g="$4" 'BEGIN {
		printf "%-44s twinstage %8.3f s   baseline %8.3f s   ratio %6.1fx faster   (goal %s)\n",
			n, t, b, (t > 0 ? b / t : 0), g }'
}

# workload_project MIGRATION [MORE-INI]: $WORK/project, a project whose source
# is the scratch cluster's database shop, with one migration and no
# scenario: v1 is the workload `twinstage capture` writes, run as role app.
workload_project() {
	local p="$WORK/project"
	mkdir -p "$p/migrations"
	echo "$1" >"$p/migrations/V1__change.sql"
	cat >"$p/twinstage.ini" <<INI
[project]
name = shop
migrations = migrations

[source]
dsn = host=127.0.0.1 port=$SCRATCH_PORT dbname=shop user=postgres

[environments]
include = $ROOT/envs/local.ini

[app v1]
role = app

[rehearsal]
current = v1

[load]
enabled = false
${2:-}
INI
}

# libvirt_up: libvirt's daemons started when they do not run; libvirt_down stops those.
LIBVIRT_STARTED=""
libvirt_up() {
	for d in virtlogd libvirtd; do
		if ! [ -f /run/$d.pid ] || ! kill -0 "$(cat /run/$d.pid)" 2>/dev/null; then
			if [ "$d" = libvirtd ]; then
				# under a subreaper: these machines' pid 1 reaps a stopped
				# guest's qemu only every second or two, and libvirt waits
				# for it (tests/helpers_vm.c says more)
				setsid tini -s -- libvirtd </dev/null >/dev/null 2>&1 &
				for _ in $(seq 100); do kill -0 "$(cat /run/libvirtd.pid 2>/dev/null)" 2>/dev/null && break; sleep 0.1; done
			else
				$d -d
			fi
			LIBVIRT_STARTED="$LIBVIRT_STARTED $d"
		fi
	done
	sleep 1
}
libvirt_down() {
	for d in $LIBVIRT_STARTED; do kill "$(cat /run/$d.pid)" 2>/dev/null || true; done
}

# rehearse_vs_instance BACKEND GOAL: scenarios/invoices rehearsed on BACKEND
# (vm or dualboot) with images/debian-pg15.ini, then on instance; both times,
# both exit codes, the ratio. Prints each guest's boot line of an `up` first.
rehearse_vs_instance() {
	local p="$WORK/project" t code_g=0 code_i=0 g i
	rm -rf "$p" && cp -a "$ROOT/scenarios/invoices" "$p" && rm -rf "$p/.twinstage"
	# the example includes ../../envs/local.ini: the copy includes the repository's own
	sed -i "s#^include = ../../envs/#include = $ROOT/envs/#" "$p/twinstage.ini"
	printf '[environments]\nbackend = %s\nimage = %s\n' "$1" "$ROOT/images/debian-pg15.ini" > "$p/guests.ini"
	t=$(now)
	"$TWINSTAGE" up -c "$p/twinstage.ini" --env "$p/guests.ini" 2> "$WORK/up.log" >/dev/null ||
		{ cat "$WORK/up.log"; exit 1; }
	echo "  both sides accepting connections $(elapsed "$t") s after \`up\` started them (goal: within 20 s on vm):"
	grep -o 'the [a-z]* guest accepts connections ([0-9.]* s)[^;]*' "$WORK/up.log" | sed 's/^/    /'
	"$TWINSTAGE" down -c "$p/twinstage.ini" --env "$p/guests.ini" -q >/dev/null
	t=$(now)
	"$TWINSTAGE" rehearse -c "$p/twinstage.ini" --env "$p/guests.ini" >/dev/null 2>&1 || code_g=$?
	g=$(elapsed "$t")
	t=$(now)
	"$TWINSTAGE" rehearse -c "$p/twinstage.ini" >/dev/null 2>&1 || code_i=$?
	i=$(elapsed "$t")
	awk -v b="$1" -v v="$g" -v i="$i" -v cg="$code_g" -v ci="$code_i" -v goal="$2" 'BEGIN {
		printf "%-44s %s %6.1f s   instance %6.1f s   %.1fx as long (goal: within %s; exit %s and %s)\n",
			"rehearse scenarios/invoices", b, v, i, v / i, goal, cg, ci }'
}
