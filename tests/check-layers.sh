#!/usr/bin/env bash
# The layout's two rules, checked from the #include lines of harness/
# (see harness/README.md):
#   1. a file includes only headers of its own layer and the layers below;
#   2. no files include each other in a circle, directly or through others
#      (a file and its header count as one: x.c and x.h are "x").
# Prints each violation and exits 1; prints one line and exits 0 when none.
set -u
cd "$(dirname "$0")/../harness" || exit 2
layers=(core pg report migrate config workload env rehearse release cmd)
rank() {
	local i
	for i in "${!layers[@]}"; do
		[ "${layers[$i]}" = "$1" ] && { echo "$i"; return; }
	done
	echo 99	# main.c, above every layer
}
fail=0
edges=$(mktemp)
trap 'rm -f "$edges"' EXIT
files=$(find . -name '*.[ch]' | sed 's|^\./||' | sort)
for f in $files; do
	from=${f%.*}
	folder=${f%%/*}
	[ "$folder" = "$f" ] && folder=main
	case " ${layers[*]} main " in
	*" $folder "*) ;;
	*) echo "layers: $f is in folder \"$folder\", which is not a layer (${layers[*]})"; fail=1 ;;
	esac
	while IFS= read -r inc; do
		[ -n "$inc" ] || continue
		to=${inc%.h}
		to_layer=${inc%%/*}
		if [ "$to_layer" = "$inc" ]; then
			echo "layers: $f includes \"$inc\" without its folder (write \"<layer>/$inc\")"
			fail=1
			continue
		fi
		if [ ! -f "$inc" ]; then
			echo "layers: $f includes \"$inc\", which does not exist"
			fail=1
			continue
		fi
		if [ "$(rank "$to_layer")" -gt "$(rank "$folder")" ]; then
			echo "layers: $f ($folder) includes $inc from a higher layer ($to_layer)"
			fail=1
		fi
		[ "$to" != "$from" ] && echo "$from $to" >>"$edges"
	done < <(sed -n 's/^#include "\(.*\)"/\1/p' "$f")
done
# Production is written only by promote, and the code shows it: its
# connection strings ([source] dsn, [target] dsn) are read only where they
# are parsed, where the source is copied (read-only), and in verify (which
# opens production read-only and hands promote its target); a session is
# opened only by pg/ (the helpers), env/ (the two sides) and promote.
while IFS= read -r hit; do
	case "${hit%%:*}" in
	config/config.c | config/config_check.c | rehearse/clone.c | release/verify.c | workload/pgss.c) ;;
	*) echo "layers: ${hit%%:*} reads production's connection string (${hit#*:}); only config/ (config.c, config_check.c), rehearse/clone.c, release/verify.c and workload/pgss.c (read-only) may"; fail=1 ;;
	esac
done < <(grep -rnoE 'cfg(->|\.)(target_dsn|dsn)\b' --include='*.c' . | sed 's|^\./||')
while IFS= read -r hit; do
	case "${hit%%:*}" in
	pg/pg.c | env/env.c | release/promote.c) ;;
	*) echo "layers: ${hit%%:*} opens a database session itself (${hit#*:}); only pg/pg.c, env/env.c and release/promote.c may"; fail=1 ;;
	esac
done < <(grep -rnoE 'PQconnectdb(Params)?|PQconnectStart(Params)?' --include='*.c' . | sed 's|^\./||')
# tsort names the files of any circle on stderr
loops=$(sort -u "$edges" | tsort 2>&1 >/dev/null)
if [ -n "$loops" ]; then
	echo "layers: files that include each other in a circle:"
	echo "$loops" | sed -e "s/^tsort: -: input contains a loop:/  a circle:/" -e "s/^tsort: /    /"
	fail=1
fi
if [ $fail = 0 ]; then
	echo "layers: $(echo "$files" | wc -w) files in ${#layers[@]} layers, each including only its own layer and those below, no circles"
fi
exit $fail
